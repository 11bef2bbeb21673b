"""Latency on the user's own device: profile the pieces of a search network once, predict any genotype's latency
by a sum (`predict`), and check the prediction against whole exported networks (`validate`).

Layer: beside `nasviz.export` (deployment), above the space (`nasviz.space`, `nasviz.cells`, `nasviz.supernet`,
`nasviz.network`); it never imports the search, whose budget imports it.
"""

from nasviz.latency.budget import config_layout
from nasviz.latency.layout import Layout
from nasviz.latency.profile import (
    MAKE,
    Profile,
    breakdown,
    default_path,
    fastest,
    load_profile,
    make_profile,
    predict,
    save_profile,
)

__all__ = ["MAKE", "Layout", "Profile", "breakdown", "config_layout", "default_path", "fastest", "load_profile",
           "make_profile", "predict", "save_profile", "validate"]


def validate(profile: Profile, n: int = 50, seed: int = 0, **timing):
    """`nasviz.latency.validation.validate` (imported when called: it needs scipy)."""
    from nasviz.latency.validation import validate as run

    return run(profile, n, seed, **timing)
