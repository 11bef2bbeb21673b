"""From a trained network to a usable model: `model.pt` (save, load, refuse hostile files), TorchScript and ONNX
export with parity on real Fashion-MNIST test images, and `predict` on PNG files written from the test set.

One DARTS_V2 network at the quick size (8 channels, 5 cells) is trained for two steps by the real CLI; parity
does not need a good network, only the same one.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nasviz
from nasviz.cli import EXIT_USAGE, main
from nasviz.data import loading as nasviz_data
from nasviz.data.loading import eval_batches, load_dataset, normalize
from nasviz.deploy.export import METADATA_KEY, Logits
from nasviz.deploy.model_file import FORMAT, MODEL_FILE, load_model, read_model_file, save_model
from nasviz.errors import CheckpointError
from nasviz.space.genotypes import FIXTURES
from nasviz.space.network import EvalNetwork
from nasviz.train.scratch import ScratchConfig, train_from_scratch
from nasviz.train.steps import accuracy

HAS_DEBIAN = all(
    (Path(nasviz_data.DEBIAN_FASHION_MNIST) / f"{f}.gz").is_file() for f in nasviz_data.FASHION_MNIST_FILES
)
pytestmark = pytest.mark.skipif(not HAS_DEBIAN, reason="Debian package dataset-fashion-mnist is not installed")

TOLERANCE = 1e-4
"""Largest allowed |logit difference| between an export and the PyTorch model (float32; measured: ~1e-6)."""
PARITY_IMAGES = 256
TEST_IMAGES = 64


def nasviz_cli(*args: str, cwd: Path, data_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NASVIZ_DATA": str(data_root), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "nasviz", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == EXIT_USAGE, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasviz: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nasviz-data")


@pytest.fixture(scope="module")
def fashion(data_root):
    return load_dataset("fashion-mnist", data_root, download=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root, fashion) -> Path:
    """`python -m nasviz train` of DARTS_V2 at the quick size for two steps; its output folder."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = nasviz_cli("train", "--genotype", "DARTS_V2", "--dataset", "fashion-mnist", "--epochs", "1",
                      "--channels", "8", "--layers", "5", "--train-size", "64", "--batch-size", "32",
                      "--test-size", str(TEST_IMAGES), "--quiet", "--out", str(out), cwd=out.parent,
                      data_root=data_root)
    assert done.returncode == 0, done.stderr
    assert str(out / MODEL_FILE) in done.stdout
    return out


@pytest.fixture(scope="module")
def real_batch(fashion) -> torch.Tensor:
    """The first PARITY_IMAGES Fashion-MNIST test images, normalised as in training."""
    return normalize(fashion.test_images[:PARITY_IMAGES], fashion.mean, fashion.std)


# --- model.pt -------------------------------------------------------------------------------------------------
def test_train_writes_a_model_file_that_loads_weights_only(trained, fashion):
    state = torch.load(trained / MODEL_FILE, weights_only=True)
    assert state["format"] == FORMAT and state["version"] == 1
    assert state["genotype"] == str(FIXTURES["DARTS_V2"]) and state["dataset"] == "fashion-mnist"
    assert state["input_shape"] == [1, 28, 28] and state["classes"] == fashion.classes
    assert (state["channels"], state["layers"], state["auxiliary"]) == (8, 5, True)
    assert state["mean"] == list(fashion.mean) and state["std"] == list(fashion.std)
    train_json = json.loads((trained / "train.json").read_text())
    assert state["info"]["test_accuracy"] == train_json["test_accuracy"] and state["info"]["epochs"] == 1
    assert all(t.device.type == "cpu" for t in state["state_dict"].values())


def test_the_loaded_model_reproduces_the_test_accuracy_of_training(trained, fashion):
    net = nasviz.load_model(trained / MODEL_FILE)  # the lazy export
    assert isinstance(net, EvalNetwork) and not net.training
    assert net.model_info.classes == tuple(fashion.classes) and net.model_info.input_shape == (1, 28, 28)
    test = eval_batches(fashion.test_images[:TEST_IMAGES], fashion.test_labels[:TEST_IMAGES], 256, fashion.mean,
                        fashion.std)
    assert accuracy(net, None, test) == json.loads((trained / "train.json").read_text())["test_accuracy"]


def test_save_and_load_round_trip_gives_the_same_logits(tmp_path, fashion, real_batch):
    kept = []
    config = ScratchConfig(epochs=1, channels=4, layers=3, batch_size=16, train_size=32, test_size=16, device="cpu")
    train_from_scratch(FIXTURES["PC_DARTS"], fashion, config, progress=False, on_model=kept.append)
    original = kept[0].eval()
    path = save_model(tmp_path / "m.pt", original, fashion, {"note": "round trip", "skipped": [1, 2]})
    loaded = load_model(path).to(memory_format=torch.channels_last)  # as trained, so the same kernels run
    x = real_batch[:32].contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.equal(loaded(x), original(x))
    assert loaded.model_info.genotype == str(FIXTURES["PC_DARTS"])
    assert loaded.model_info.info == {"note": "round trip"}  # only numbers and text are kept
    assert {k: v.shape for k, v in loaded.state_dict().items()} == {k: v.shape for k, v in
                                                                     original.state_dict().items()}


class Exploit:
    """Pickles as a call of os.system: loading it unsafely would create MARKER."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_model_file_carrying_code_is_refused_without_running_it(trained, pngs, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    for how in ("torch.save", "pickle.dump"):
        path = tmp_path / f"{how}.pt"
        state = {**torch.load(trained / MODEL_FILE, weights_only=True), "payload": Exploit(marker)}
        if how == "torch.save":
            torch.save(state, path)
        else:
            with open(path, "wb") as f:
                pickle.dump(state, f, protocol=2)
        with pytest.raises(CheckpointError, match="not a safe nasviz model file: it refers to code"):
            load_model(path)
        code, _, err = run_main(["predict", "--model", str(path), str(pngs)], capsys)
        one_line_error(code, err, str(path), "refused to load it")
    assert not marker.exists()


def _variant(trained: Path, tmp_path: Path, name: str, change) -> Path:
    state = torch.load(trained / MODEL_FILE, weights_only=True)
    change(state)
    path = tmp_path / f"{name}.pt"
    torch.save(state, path)
    return path


def _drop(key):
    return lambda s: s.pop(key)


def _set(key, value):
    return lambda s: s.update({key: value})


def _weight(change):
    def apply(s):
        change(s["state_dict"])
    return apply


@pytest.mark.parametrize("name, change, message", [
    ("checkpoint", _set("format", "nasviz-checkpoint"), "is not a nasviz model file"),
    ("version", _set("version", 7), "model file version 7"),
    ("no-weights", _drop("state_dict"), "it lacks state_dict"),
    ("channels", _set("channels", 3), "channels=3 is out of range"),
    ("shape", _set("input_shape", [1, 28]), "input_shape [1, 28]"),
    ("std", _set("std", [0.0]), "std > 0"),
    ("classes", _set("classes", "T-shirt"), "classes is str"),
    ("auxiliary", _set("auxiliary", "yes"), "auxiliary is 'yes'; expected bool"),
    ("genotype", _set("genotype", "__import__('os').system('touch MARKER')"), "invalid genotype"),
    ("layers", _set("layers", 6), "weights do not fit the network it describes"),
    ("missing", _weight(lambda w: w.pop("classifier.weight")), "1 missing (e.g. classifier.weight)"),
    ("extra", _weight(lambda w: w.update(extra=torch.zeros(1))), "1 unexpected (e.g. extra)"),
    ("resized", _weight(lambda w: w.update({"classifier.bias": torch.zeros(3)})), "needs [10]"),
    ("not-a-tensor", _weight(lambda w: w.update({"classifier.bias": [0.0] * 10})), "map names to tensors"),
])
def test_a_wrong_model_file_is_refused_in_one_line(trained, tmp_path, capsys, name, change, message):
    path = _variant(trained, tmp_path, name, change)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
    code, _, err = run_main(["export", "--model", str(path), "--format", "torchscript", "--out",
                             str(tmp_path / "x.ts")], capsys)
    one_line_error(code, err, message)
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "x.ts").exists()


def test_truncated_and_missing_model_files_are_refused(trained, tmp_path):
    data = (trained / MODEL_FILE).read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_model_file(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="no model file at"):
        load_model(tmp_path / "absent.pt")


# --- export ---------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_matches_pytorch_on_real_test_images(trained, tmp_path, real_batch, capsys):
    out = tmp_path / "model.ts"
    code, stdout, err = run_main(["export", "--model", str(trained / MODEL_FILE), "--format", "torchscript",
                                  "--out", str(out)], capsys)
    assert code == 0, err
    assert str(out) in stdout and "torchscript" in stdout
    extra = {f"{METADATA_KEY}.json": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra[f"{METADATA_KEY}.json"])
    net = load_model(trained / MODEL_FILE)
    assert meta["classes"] == list(net.model_info.classes) and meta["mean"] == list(net.model_info.mean)
    with torch.inference_mode():
        expected = net(real_batch)
        got = module(real_batch)
        assert module(real_batch[:1]).shape == (1, 10)
    assert (got - expected).abs().max().item() <= TOLERANCE
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert not any("aux_head" in name for name, _ in module.named_parameters())


def test_onnx_export_runs_in_onnxruntime_and_matches_pytorch_on_real_test_images(trained, tmp_path, real_batch,
                                                                                   capsys):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "model.onnx"
    code, stdout, err = run_main(["export", "--model", str(trained / MODEL_FILE), "--format", "ONNX",
                                  "--out", str(out)], capsys)
    assert code == 0, err
    assert str(out) in stdout
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert meta["genotype"] == str(FIXTURES["DARTS_V2"]) and meta["input_shape"] == [1, 28, 28]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (image,), (logits,) = session.get_inputs(), session.get_outputs()
    assert (image.name, logits.name) == ("image", "logits")
    net = load_model(trained / MODEL_FILE)
    with torch.inference_mode():
        expected = net(real_batch)
    for batch in (real_batch, real_batch[:1]):  # the batch size is free
        got = torch.from_numpy(session.run(None, {"image": batch.numpy()})[0])
        assert (got - expected[: len(batch)]).abs().max().item() <= TOLERANCE
        assert torch.equal(got.argmax(1), expected[: len(batch)].argmax(1))


def test_the_exported_module_is_the_network_without_its_auxiliary_head(trained, real_batch):
    net = load_model(trained / MODEL_FILE)
    logits = Logits(net)
    assert logits.net.aux_head is None and net.aux_head is not None  # the model itself is left as it was
    with torch.inference_mode():
        assert torch.equal(logits(real_batch[:8]), net(real_batch[:8]))


@pytest.mark.parametrize("argv, fragments", [
    (["--format", "onxx", "--out", "m.onnx"], ["unknown export format 'onxx'", "did you mean 'onnx'"]),
    (["--format", "torchscript", "--out", "."], ["is a directory"]),
])
def test_export_refuses_bad_arguments_in_one_line(trained, tmp_path, capsys, monkeypatch, argv, fragments):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(["export", "--model", str(trained / MODEL_FILE), *argv], capsys)
    one_line_error(code, err, *fragments)


# --- predict --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pngs(tmp_path_factory, fashion) -> Path:
    """The first 12 test images as grayscale PNG files, named by index and true class."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pngs")
    for i in range(12):
        label = fashion.classes[int(fashion.test_labels[i])].replace("/", "-")
        Image.fromarray(fashion.test_images[i, 0].numpy(), mode="L").save(folder / f"{i:02d}-{label}.png")
    return folder


def test_predict_on_pngs_of_the_test_set_gives_the_models_own_answers(trained, pngs, fashion, capsys):
    code, stdout, err = run_main(["predict", "--model", str(trained / MODEL_FILE), str(pngs), "--json"], capsys)
    assert code == 0, err
    rows = json.loads(stdout)
    assert [Path(r["file"]).name for r in rows] == sorted(p.name for p in pngs.iterdir())
    net = load_model(trained / MODEL_FILE)
    with torch.inference_mode():
        probs = torch.softmax(net(normalize(fashion.test_images[:12], fashion.mean, fashion.std)), 1)
    for row, expected in zip(rows, probs):
        (top,) = row["predictions"]
        assert top["class"] == fashion.classes[int(expected.argmax())]
        assert top["probability"] == pytest.approx(float(expected.max()), abs=1e-6)


def test_predict_converts_and_resizes_like_training(trained, pngs, tmp_path, capsys):
    from PIL import Image

    gray = sorted(pngs.iterdir())[0]
    with Image.open(gray) as im:
        im.convert("RGB").save(tmp_path / "rgb.png")  # same pixels, three channels
        im.resize((56, 56), Image.Resampling.NEAREST).save(tmp_path / "big.png")  # every pixel doubled
        im.save(tmp_path / "photo.jpg", quality=95)
    code, stdout, err = run_main(["predict", "--model", str(trained / MODEL_FILE), "--top", "3", str(gray),
                                  str(tmp_path / "rgb.png"), str(tmp_path / "big.png"), str(tmp_path / "photo.jpg")],
                                 capsys)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 4 and all(len(line.split(": ", 1)[1].split(", ")) == 3 for line in lines)
    answers = [line.split(": ", 1)[1] for line in lines]
    assert answers[1] == answers[0]  # RGB -> L gives back the gray pixels
    classes = load_model(trained / MODEL_FILE).model_info.classes
    assert all(answer.split(", ")[0].rsplit(" ", 1)[0] in classes for answer in answers)


def test_predict_refuses_bad_input_in_one_line(trained, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "not-an-image.png").write_text("hello")
    model = str(trained / MODEL_FILE)
    for argv, fragment in (
        ([str(tmp_path / "absent.png")], "is neither an image file nor a folder"),
        ([str(tmp_path / "empty")], "no images in folder"),
        ([str(tmp_path / "not-an-image.png")], "cannot read image"),
        (["--top", "0", str(tmp_path)], "--top 0 is out of range"),
    ):
        code, _, err = run_main(["predict", "--model", model, *argv], capsys)
        one_line_error(code, err, fragment)


def test_model_file_holds_only_plain_values(trained):
    """What `weights_only` accepts, and nothing that needs nasviz to unpickle."""
    raw = (trained / MODEL_FILE).read_bytes()
    assert b"nasviz.space.network" not in raw and b"EvalNetwork" not in raw
    torch.load(io.BytesIO(raw), weights_only=True)
