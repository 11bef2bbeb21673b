"""Layer `latency`: latency on the user's own device. Profile the pieces of a search network once
(`profile.make_profile`), predict any genotype's latency by a sum (`predict`), check the prediction against whole
exported networks (`validate`), and what the search's size budget uses (`budget`). It imports `space`, `data` and
`runs` (and the base modules), never the search: `search` imports it. Its command line (`latency.cli`) belongs to
the top layer with `nasviz.cli`.

The names below load on first use (torch is imported then).
"""

from nasviz.lazy import lazy_exports

_EXPORTS = {
    "Layout": "layout",
    **dict.fromkeys(["MAKE", "Profile", "breakdown", "default_path", "fastest", "load_profile", "make_profile",
                     "predict", "save_profile"], "profile"),
    "config_layout": "budget",
    "validate": "validation",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
