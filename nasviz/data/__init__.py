"""Layer `data`: the images a search and a training see. What is known about a dataset without loading it
(`datasets`), loading it whole into memory (`loading`) and making batches of it (`batches`). It may import the
base modules and `nasviz.space`; `train`, `runs`, `table`, `search`, `deploy` and the front ends may import it.

The names below load on first use (torch is imported then).
"""

from nasviz.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["IMAGE_EXTENSIONS", "ImageData", "dataset_info", "default_root", "load_dataset", "read_image",
                     "resized"], "loading"),
    **dict.fromkeys(["Batch", "BatchStream", "augment", "crop_padding_for", "eval_batches", "normalize",
                     "split_indices"], "batches"),
    **dict.fromkeys(["BUILTIN", "DATASETS", "check_dataset_name"], "datasets"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
