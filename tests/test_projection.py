"""A search that would run for days says so before it starts, with how to cap it (`nasviz.projection`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasviz.search import Search, projection
from nasviz.search.config import SearchConfig

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ROOT / "benchmarks" / "results" / "quick-search_eval-throughput_full_threads2_idle.jsonl"


def test_the_counts_are_those_of_a_real_quick_search():
    record = json.loads(MEASURED.read_text().splitlines()[0])["results"]
    p = projection.project(SearchConfig.from_preset("quick"), 28 * 28, 2)
    assert (p.steps, p.evaluations) == (record["supernet_steps"]["total"], record["evaluations"])
    assert record["engine_search_wall_s"] / 2 < p.seconds < record["engine_search_wall_s"] * 2


def test_the_issues_search_of_centuries_is_said_with_a_cap_that_fits_a_day():
    config = SearchConfig.from_preset("smoke", population=10000, generations=1000000)
    note = projection.long_search_note(config, 28 * 28, 2)
    assert note is not None and note.startswith("nasviz: warning: projected work") and "\n" not in note
    assert "years" in note and "30,000,010,000 evaluations" in note
    fits = projection.project(config, 28 * 28, 2).generations_in(projection.DAY_S)
    assert f"generations={fits} fits in about a day" in note
    assert projection.project(config.replace(generations=fits), 28 * 28, 2).seconds <= projection.DAY_S
    assert projection.project(config.replace(generations=fits + 1), 28 * 28, 2).seconds > projection.DAY_S


@pytest.mark.parametrize("preset, cuda, warned", [
    ("smoke", False, False), ("quick", False, False), ("paper", False, True), ("paper", True, False)])
def test_only_searches_beyond_a_day_are_warned_about(preset, cuda, warned):
    config = SearchConfig.from_preset(preset)
    assert (projection.long_search_note(config, 32 * 32, 2, cuda) is not None) == warned


def test_a_search_prints_the_warning_before_it_starts(tmp_path, capsys, monkeypatch):
    config = SearchConfig.from_preset("smoke", generations=1000000, finetune_steps=1000)  # beyond a day anywhere
    search = Search(config, tmp_path / "run", progress=False)

    def stop_at_once() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(search, "warmup", stop_at_once)
    with pytest.raises(KeyboardInterrupt):
        search.run()
    err = capsys.readouterr().err
    assert "nasviz: warning: projected work" in err and "fits in about a day" in err
