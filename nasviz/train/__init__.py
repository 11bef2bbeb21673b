"""Layer `train`: training and evaluating networks. The supernet's training steps, BatchNorm recalibration,
accuracy and fitness, and the device (`steps`); from-scratch training (`scratch`); learning-rate schedules
(`schedule`); mixed precision (`precision`); data-parallel ranks (`distributed`). It may import the base
modules, `nasviz.space` and `nasviz.data`; the layers above it (`runs` and up) may import it.

The names below load on first use (torch is imported then).
"""

from nasviz.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["accuracy", "check_finite", "fitness", "pick_device", "prepare_model", "recalibrate_bn",
                     "train_step", "train_steps"], "steps"),
    **dict.fromkeys(["ScratchConfig", "train_from_scratch"], "scratch"),
    "autocast": "precision",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
