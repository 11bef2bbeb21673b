"""Export a trained `model.pt` to TorchScript or ONNX, for use without nasviz.

Both exports map a float32 batch of *normalised* images, N x C x H x W with the model file's input shape
(``(pixel / 255 - mean) / std`` per channel), to N logits; the batch size is free. The auxiliary head, used
only in training, is left out. The model file's description (genotype, classes, mean, std, ...) travels with
the export: as the extra file ``nasviz.json`` of the TorchScript archive (`torch.jit.load(...,
_extra_files={"nasviz.json": ""})`) and as the ONNX model's metadata property ``nasviz``.

TorchScript uses `torch.jit.trace` (the network's Python control flow depends only on the genotype and the
image size, both fixed). ONNX uses `torch.onnx.export` (the `torch.export`-based exporter) and needs the
optional packages of the ``export`` extra (`pip install 'nasviz[export]'`: onnx, onnxscript, onnxruntime);
`onnx.checker` checks every file written.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nasviz.deploy.model_file import ModelInfo, load_model
from nasviz.errors import ConfigError, suggest
from nasviz.runs.out_file import check_out_file, write_out_file
from nasviz.runs.regular_files import open_regular
from nasviz.runs.rundir import check_path

FORMATS: tuple[str, ...] = ("torchscript", "onnx")
INPUT_NAME, OUTPUT_NAME = "image", "logits"
METADATA_KEY = "nasviz"
"""Name of the TorchScript extra file (plus ``.json``) and of the ONNX metadata property holding the description."""
CHECK_BATCH = 8
"""Seeded random inputs on which `export_model` compares the export with the PyTorch network."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    bytes: int
    max_abs_error: float
    """Largest |logit difference| between the export and the PyTorch network on `CHECK_BATCH` random inputs."""


class Logits(nn.Module):
    """The deployable part of an `EvalNetwork`: images in, logits out (no auxiliary head, no genotype argument)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).cpu().eval()
        self.net.aux_head, self.net.aux_index = None, -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def check_out_name(fmt: str, out: Path) -> None:
    """ConfigError unless the file name `out` agrees with the format: ``.onnx`` for onnx and only for onnx (a
    TorchScript archive named .onnx, or an ONNX file named otherwise, would be opened by the wrong runtime)."""
    named_onnx = out.suffix.lower() == ".onnx"
    if named_onnx != (fmt == "onnx"):
        allowed = "a name ending in .onnx" if fmt == "onnx" else "a name not ending in .onnx, e.g. model.pt"
        other = "" if fmt == "onnx" else " (or --format onnx)"
        raise ConfigError(f"out={str(out)!r} does not fit format {fmt!r}; allowed: {allowed}{other}", setting="out")


def check_format(fmt: str) -> str:
    """Return `fmt` lower-cased, or raise `ConfigError` naming the allowed formats."""
    text = str(fmt).strip().lower()
    if text not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}{suggest(text, FORMATS)}; allowed: {', '.join(FORMATS)}")
    return text


def onnx_missing() -> list[str]:
    """The optional packages ONNX export and its checks need that are not installed (empty: all there)."""
    import importlib.util

    return [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]


def check_onnx_available() -> None:
    missing = onnx_missing()
    if missing:
        raise ConfigError(f"ONNX export needs the optional package(s) {', '.join(missing)}: "
                          "pip install 'nasviz[export]' (or onnx onnxscript onnxruntime)")


def example_inputs(info: ModelInfo, n: int = 2, seed: int = 0) -> torch.Tensor:
    """`n` seeded standard-normal inputs of the model's shape (normalised images look roughly like this)."""
    return torch.randn(n, *info.input_shape, generator=torch.Generator().manual_seed(seed))


def torchscript_bytes(net: nn.Module, info: ModelInfo) -> bytes:
    """A traced TorchScript archive of `net`'s logits, with the description as extra file ``nasviz.json``."""
    with _quiet():
        traced = torch.jit.trace(Logits(net), example_inputs(info), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={f"{METADATA_KEY}.json": json.dumps(info.to_dict())})
    return buffer.getvalue()


def onnx_bytes(net: nn.Module, info: ModelInfo) -> bytes:
    """An ONNX model of `net`'s logits (dynamic batch size, weights inside), checked by `onnx.checker`."""
    check_onnx_available()
    import onnx

    with _quiet():
        program = torch.onnx.export(
            Logits(net), (example_inputs(info),), dynamo=True, external_data=False, verbose=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=1 << 16)}},
        )
    proto = program.model_proto
    for node in proto.graph.node:  # the exporter's per-node notes (Python stack traces, local paths): half the file
        del node.metadata_props[:]
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(info.to_dict())})
    proto.doc_string = f"nasviz {info.dataset} classifier; input: normalised images, output: logits"
    data = proto.SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return data


def export_model(model: str | Path, fmt: str, out: str | Path, force: bool = False) -> ExportReport:
    """Export the model file `model` to the new file `out` and compare it with the PyTorch network. An `out` that
    exists is refused unless `force` (see `nasviz.runs.out_file`); the export is checked before it takes its name, so a
    failure leaves no file behind."""
    fmt = check_format(fmt)
    out = check_path(out)
    if out.is_dir():
        raise ConfigError(f"{out} is a directory; give the file to write, e.g. {out / ('model.' + fmt)}",
                          setting="out")
    check_out_name(fmt, out)
    out = check_out_file(out, force)
    if fmt == "onnx":
        check_onnx_available()
    net = load_model(model)
    data = torchscript_bytes(net, net.model_info) if fmt == "torchscript" else onnx_bytes(net, net.model_info)
    x = example_inputs(net.model_info, CHECK_BATCH, seed=1)
    with torch.inference_mode():
        expected = net(x)
    errors: list[float] = []

    def compare(written: Path) -> None:
        errors.append((run_exported(written, x, fmt) - expected).abs().max().item())

    write_out_file(out, data, force, check=compare)
    return ExportReport(path=out, format=fmt, bytes=len(data), max_abs_error=errors[0])


def run_exported(path: str | Path, x: torch.Tensor, fmt: str | None = None) -> torch.Tensor:
    """Logits of an exported file on `x`: `fmt` "onnx" runs it in onnxruntime, "torchscript" as TorchScript; None:
    a ``.onnx`` file or one that is not a zip archive in onnxruntime, anything else as TorchScript."""
    path = Path(path)
    if fmt == "onnx" or (fmt is None and (path.suffix.lower() == ".onnx" or _is_onnx(path))):
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])
    with _quiet():  # torch 2.10+ calls TorchScript deprecated (FutureWarning); it still loads and runs
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return module(x)


def _is_onnx(path: Path) -> bool:
    with open_regular(path) as f:
        return not f.read(4).startswith(b"PK")  # a TorchScript archive is a zip file


@contextlib.contextmanager
def _quiet():
    """Silence the tracer's and exporter's warnings and progress lines (stdout), which say nothing actionable."""
    with warnings.catch_warnings(), open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        warnings.simplefilter("ignore")
        yield
