"""Layer `deploy`: a found network outside the search. The model file (`model_file`: save and load a trained
network), export to TorchScript or ONNX (`export`) and prediction on image files (`predict.predict`). It may
import every layer up to and including `search`; `viz`, `notebooks`, `headless` and `cli` may import it.

The names below load on first use (torch is imported then).
"""

from nasviz.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["MODEL_FILE", "load_model", "save_model", "scratch_info"], "model_file"),
    **dict.fromkeys(["export_model", "onnx_missing"], "export"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
