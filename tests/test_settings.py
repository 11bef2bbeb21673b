"""nasviz.settings: one declarative validator for every configuration (SearchConfig and ScratchConfig)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from nasviz.errors import ConfigError
from nasviz.search.config import SearchConfig
from nasviz.settings import build, check_device_name, setting, validate
from nasviz.train.scratch import ScratchConfig


@dataclass
class Toy:
    batch: int = setting(8, low=1)
    size: int | None = setting(None, low="batch")
    width: int = setting(4, low=2, high=16, even=True, note=" (halved by reductions)")
    rate: float = setting(0.1, positive=True)
    share: float = setting(0.5, low=0, below=1)
    mode: str = setting("a", choices=("alpha", "a", "b"))
    device: str = setting("cpu", check=check_device_name)
    flag: bool = True


@pytest.mark.parametrize("values, message", [
    ({"batch": 0}, "batch=0 is out of range; allowed: an integer >= 1"),
    ({"size": 4}, "size=4 is smaller than batch=8; allowed: size >= batch (or a smaller batch)"),  # another setting
    ({"width": 5}, "width=5 is out of range; allowed: an even integer in 2..16 (halved by reductions)"),
    ({"width": 18}, "width=18 is out of range; allowed: an even integer in 2..16"),
    ({"rate": 0}, "rate=0.0 must be a positive number"),
    ({"share": 1}, "share=1.0 is out of range; allowed: [0, 1)"),
    ({"mode": "alpa"}, "unknown mode 'alpa' (did you mean 'alpha'?); allowed: alpha, a, b"),
    ({"device": "gpu"}, "device='gpu' is not allowed"),
    ({"flag": "maybe"}, "flag='maybe' is not allowed; allowed: true or false"),
    ({"batch": "two"}, "batch='two' is not allowed; allowed: an integer"),
    ({"rate": "inf"}, "rate=inf is not allowed; allowed: a finite number"),
    ({"batch": 2.5}, "batch=2.5 has the wrong type; allowed: an integer"),
    ({"bach": 2}, "unknown toy setting 'bach' (did you mean 'batch'?); allowed: batch, size, width"),
])
def test_one_line_errors_name_the_value_and_what_is_allowed(values, message):
    with pytest.raises(ConfigError) as info:
        build(Toy(), values, what="toy setting")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_text_is_turned_into_each_settings_type():
    toy = build(Toy(), {"batch": "4", "size": "none", "rate": "1", "share": "0", "flag": "off", "mode": "b"})
    assert (toy.batch, toy.size, toy.rate, toy.share, toy.flag, toy.mode) == (4, None, 1.0, 0.0, False, "b")
    assert isinstance(toy.rate, float) and build(Toy(), {"rate": 2}).rate == 2.0


def test_types_are_checked_before_rules_and_a_direct_construction_validates_too():
    with pytest.raises(ConfigError, match="batch='x' has the wrong type"):  # not 'out of range' of size
        validate(Toy(batch="x", size=1))
    validate(Toy())


def test_both_configurations_share_the_rules_of_their_common_settings():
    """channels, layers, seed and device mean the same in a search and in from-scratch training."""
    for name, value in (("channels", 5), ("layers", 0), ("seed", -1), ("device", "tpu"), ("lr", 0),
                        ("momentum", 1.0), ("weight_decay", -1.0)):
        with pytest.raises(ConfigError) as search_error:
            SearchConfig().replace(**{name: value})
        with pytest.raises(ConfigError) as scratch_error:
            ScratchConfig.from_settings({name: value})
        assert str(search_error.value) == str(scratch_error.value), name


def test_every_search_setting_is_documented():
    """The README promises it: every SearchConfig field has an attribute docstring (read from the source)."""
    import ast
    import inspect

    source = ast.parse(inspect.getsource(SearchConfig))
    body = source.body[0].body
    documented = {node.target.id for node, after in zip(body, body[1:])
                  if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
                  and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)}
    assert documented == {f.name for f in dataclasses.fields(SearchConfig)}
    assert not hasattr(SearchConfig, "offspring_per_generation")  # a dead setting, removed
