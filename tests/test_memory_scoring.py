"""Memory is checked before it is allocated for the searches without a supernet too (issue 26): a zero-cost proxy
scores each network on `proxy_batch_size` images, and a final pick by retraining trains networks at `batch_size`
(with table fitness as with any other); their data and networks are estimated first, and a setting that cannot fit
is refused in one line naming it and the memory available, before the images are resized or a network is built."""

from __future__ import annotations

import pytest

from nasviz import cli
from nasviz.errors import ConfigError
from nasviz.search.config import SearchConfig
from nasviz.train import memory


def run_cli(argv: list, capsys) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("sets, fragment", [
    (["fitness=naswot", "image_size=512", "proxy_batch_size=1024"], "image_size=512 with proxy_batch_size=1024"),
    (["fitness=grad_norm", "image_size=320", "proxy_batch_size=1024", "channels=16"],
     "image_size=320 with proxy_batch_size=1024, channels=16"),
    (["fitness=synflow", "image_size=1024", "final_pick=retrain", "batch_size=4096", "weight_images=40000",
      "fitness_images=5000"], "image_size=1024 with batch_size=4096"),
])
def test_a_proxy_search_too_big_for_memory_is_refused_in_one_line_before_allocating(sets, fragment, tmp_path,
                                                                                     capsys):
    argv = ["search", "--preset", "smoke", *[a for s in sets for a in ("--set", s)], "--out", tmp_path / "o", "--quiet"]
    code, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0] and "available" in lines[0] and "allowed: a smaller image_size" in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def test_a_table_search_whose_final_pick_cannot_fit_is_refused_before_it_starts(tmp_path, capsys):
    sets = ["fitness=table", "space=mini", "final_pick=retrain", "batch_size=8192", "channels=512",
            "weight_images=40000", "fitness_images=5000"]
    argv = ["search", "--preset", "smoke", *[a for s in sets for a in ("--set", s)], "--out", tmp_path / "o", "--quiet"]
    code, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "with batch_size=8192, channels=512" in lines[0] and "available" in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def test_the_scoring_estimate_grows_with_the_batch_and_the_image_and_a_small_search_fits():
    config = SearchConfig.from_preset("smoke", fitness="naswot")
    shape, classes, images = (1, 28, 28), 10, 70_000
    memory.check_scoring(config, shape, classes, images, 28, {"proxy_batch_size": 64}, available=8 * 10**9)

    def needs(side: int, batch: int) -> float:
        """The smallest memory that the setting passes with (bisection on `available`)."""
        low, high = 1, 10**15
        while high - low > high // 1000:
            mid = (low + high) // 2
            try:
                memory.check_scoring(config, shape, classes, images, side, {"proxy_batch_size": batch}, available=mid)
                high = mid
            except ConfigError:
                low = mid
        return high

    assert needs(28, 256) > needs(28, 64) and needs(56, 64) > needs(28, 64)
    with pytest.raises(ConfigError, match=r"image_size=56 with proxy_batch_size=64, .* but this machine has 1 MB"):
        memory.check_scoring(SearchConfig.from_preset("smoke", fitness="naswot", image_size=56), shape, classes,
                             images, 56, {"proxy_batch_size": 64}, available=10**6)


def test_without_a_network_batch_only_the_data_is_checked():
    config = SearchConfig.from_preset("smoke", fitness="synflow")
    memory.check_scoring(config, (1, 28, 28), 10, 70_000, 28, {}, available=10**9)
    with pytest.raises(ConfigError, match=r"images of 28x28 \(70,000 images in memory\) needs about"):
        memory.check_scoring(config, (1, 28, 28), 10, 70_000, 28, {}, available=10**7)
