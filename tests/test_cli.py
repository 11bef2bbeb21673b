"""Tests for the engine commands of the CLI: `python -m nasviz info | data | train`, and how user errors look.

The commands that matter most run as real subprocesses (exit code, stdout, stderr exactly as a user sees them);
further error cases call `nasviz.cli.main` in-process, which is the same code path without the start-up cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasviz.cli import EXIT_USAGE, main
from nasviz.data import loading as nasviz_data
from nasviz.space.genotypes import FIXTURES

HAS_DEBIAN = all(
    (Path(nasviz_data.DEBIAN_FASHION_MNIST) / f"{f}.gz").is_file() for f in nasviz_data.FASHION_MNIST_FILES
)
needs_debian = pytest.mark.skipif(not HAS_DEBIAN, reason="Debian package dataset-fashion-mnist is not installed")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A fresh dataset root shared by this module's commands, so Fashion-MNIST is extracted only once."""
    return tmp_path_factory.mktemp("nasviz-data")


@pytest.fixture(autouse=True)
def isolated_data(data_root, monkeypatch):
    """In-process commands never touch the user's ~/.cache/nasviz/data either."""
    monkeypatch.setenv("NASVIZ_DATA", str(data_root))


def nasviz(*args: str, cwd: Path, data_root: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "NASVIZ_DATA": str(data_root), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "nasviz", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_user_error(code: int, stderr: str, *fragments: str) -> None:
    """Exit code 2 and exactly one line on stderr, naming the bad value; never a traceback."""
    assert code == EXIT_USAGE, (code, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("nasviz: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, stderr)


# ------------------------------------------------------------------------------------------------ subprocesses


def test_info_darts_v2_cifar10(tmp_path):
    empty_root = tmp_path / "no-data"
    result = nasviz("info", "--genotype", "DARTS_V2", "--dataset", "cifar10", "--layers", "20", "--channels", "36",
                    "--json", cwd=tmp_path, data_root=empty_root)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["params"] == 3_349_342
    assert out["flops"] > 0
    assert (out["dataset"], out["layers"], out["channels"]) == ("cifar10", 20, 36)
    assert out["genotype"].startswith("Genotype(normal=[('sep_conv_3x3', 0)")
    assert not empty_root.exists()  # describing a built-in dataset's network loads (and downloads) no data


@needs_debian
def test_data_fashion_mnist_offline(tmp_path, data_root):
    result = nasviz("data", "fashion-mnist", "--json", cwd=tmp_path, data_root=data_root)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["name"], out["train"], out["test"], out["shape"]) == ("fashion-mnist", 60000, 10000, [1, 28, 28])
    assert len(out["classes"]) == 10 and out["classes"][0] == "T-shirt/top"
    assert "debian" in out["source"] and str(data_root) in out["source"]
    assert (data_root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


@needs_debian
def test_train_writes_train_json(tmp_path, data_root):
    out_dir = tmp_path / "run"
    result = nasviz("train", "--genotype", "DARTS_V2", "--dataset", "fashion-mnist", "--epochs", "1",
                    "--channels", "4", "--layers", "3", "--train-size", "256", "--test-size", "128",
                    "--out", str(out_dir), cwd=tmp_path, data_root=data_root)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    saved = json.loads((out_dir / "train.json").read_text())
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert saved["test_images"] == 128 and saved["train_images"] == 256
    assert saved["dataset"] == "fashion-mnist" and saved["params"] > 0 and saved["flops"] > 0
    assert saved["config"]["epochs"] == 1 and saved["config"]["channels"] == 4 and saved["config"]["layers"] == 3
    assert len(saved["history"]) == 1
    assert "test accuracy" in result.stdout and str(out_dir / "train.json") in result.stdout
    assert str(out_dir / "model.pt") in result.stdout and (out_dir / "model.pt").is_file()  # see test_deploy.py


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["info", "--genotype", "DARTS_V2", "--dataset", "cifar-10"], ["'cifar-10'", "did you mean 'cifar10'"]),
        (["info", "--genotype", "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce=[])"],
         ["normal", "2", "8"]),
        (["train", "--genotype", "DARTS_V2", "--set", "epoch=1", "--out", "run"], ["'epoch'", "did you mean 'epochs'"]),
        (["search", "--preset", "quik", "--out", "run"], ["'quik'", "did you mean 'quick'"]),
    ],
    ids=["unknown-dataset", "bad-genotype", "unknown-set-key", "bad-preset"],
)
def test_user_errors_in_a_subprocess(tmp_path, data_root, args, fragments):
    result = nasviz(*args, cwd=tmp_path, data_root=data_root)
    assert_user_error(result.returncode, result.stderr, *fragments)
    assert result.stdout == ""
    assert not (tmp_path / "run").exists()  # a rejected command creates no run directory


# ------------------------------------------------------------------------------------------------ in-process


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors exit from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv,fragments",
    [
        (["info", "--genotype", "DARTS_V3"], ["'DARTS_V3'", "DARTS_V2"]),
        (["data", "fashion-mnst"], ["'fashion-mnst'", "did you mean 'fashion-mnist'"]),
        (["info", "--genotype", "__import__('os').system('echo hi')"], ["not a Genotype(...) call"]),
        (["info", "--genotype", "DARTS_V2", "--channels", "5"], ["--channels 5", "even"]),
        (["info", "--genotype", "DARTS_V2", "--layers", "0"], ["--layers 0"]),
        (["info", "--genotype", "DARTS_V2", "--layers", "many"], ["--layers", "'many'"]),
        (["info"], ["--genotype"]),
        (["frobnicate"], ["'frobnicate'"]),
        ([], ["command"]),
        (["train", "--genotype", "DARTS_V2", "--set", "epochs", "--out", "run"], ["--set 'epochs'", "key=value"]),
        (["train", "--genotype", "DARTS_V2", "--set", "lr=fast", "--out", "run"], ["lr", "fast"]),
        (["train", "--genotype", "DARTS_V2", "--channels", "3", "--out", "run"], ["channels=3", "even"]),
        (["train", "--genotype", "DARTS_V2", "--epochs", "0", "--out", "run"], ["epochs=0"]),
        (["train", "--genotype", "DARTS_V2", "--dataset", "cifar1O", "--out", "run"], ["did you mean 'cifar10'"]),
        (["train", "--genotype", "DARTS_V2"], ["--out"]),
        (["search", "--preset", "smoke"], ["--out"]),
        (["search", "--preset", "smoke", "--set", "populaton=4", "--out", "run"], ["did you mean 'population'"]),
    ],
)
def test_user_errors_in_process(tmp_path, monkeypatch, capsys, argv, fragments):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(argv, capsys)
    assert_user_error(code, err, *fragments)
    assert out == ""
    assert not (tmp_path / "run").exists()


def test_missing_dataset_offline_is_a_user_error(tmp_path, capsys):
    code, out, err = run_main(["data", "cifar10", "--root", str(tmp_path / "empty"), "--offline"], capsys)
    assert_user_error(code, err, "cifar10", str(tmp_path / "empty"))


def test_train_out_must_be_a_directory(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    code, out, err = run_main(["train", "--genotype", "DARTS_V2", "--out", str(target)], capsys)
    assert_user_error(code, err, str(target), "not a directory")
    assert target.read_text() == "keep me"


def test_info_text_output(capsys):
    code, out, err = run_main(["info", "--genotype", "DARTS_V2", "--dataset", "fashion-mnist", "--layers", "8",
                               "--channels", "16"], capsys)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].startswith("Genotype(") and "fashion-mnist, 8 cells, 16 channels" in lines[1]
    assert "M parameters" in lines[1] and "MFLOPs" in lines[1]


def test_info_accepts_genotype_text_and_a_run_directory(tmp_path, capsys):
    """Full DARTS text (longer than a file name may be) and a run directory's best genotype both work."""
    text = str(FIXTURES["DARTS_V2"]).replace("[2, 3, 4, 5]", "range(2, 6)")
    assert len(text) > 255  # once crashed with OSError 'File name too long' while probing for a run directory
    small = ["--dataset", "fashion-mnist", "--layers", "3", "--channels", "4", "--json"]
    code, out, _ = run_main(["info", "--genotype", "DARTS_V2", *small], capsys)
    assert code == 0
    expected = json.loads(out)
    code, out, err = run_main(["info", "--genotype", text, *small], capsys)
    assert code == 0, err
    assert json.loads(out) == expected
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text(json.dumps({"best_genotype": text}))
    code, out, err = run_main(["info", "--genotype", str(run_dir), *small], capsys)
    assert code == 0, err
    assert json.loads(out) == expected
    (run_dir / "result.json").write_text(json.dumps({"best_genotype": None}))
    code, _, err = run_main(["info", "--genotype", str(run_dir)], capsys)
    assert_user_error(code, err, "no best genotype")


def test_every_option_of_every_command_has_a_help_text():
    import argparse

    from nasviz.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"info", "data", "search", "train", "render", "report", "demo", "batch"} <= set(commands)
    for name, parser in commands.items():
        for action in parser._actions:
            assert action.help, f"nasviz {name} {'/'.join(action.option_strings) or action.dest} has no help text"


def test_train_help_explains_its_options(capsys):
    code, out, _ = run_main(["train", "--help"], capsys)
    assert code == 0
    for option, words in (("--epochs", "training epochs"), ("--train-size", "train on"), ("--set", "ScratchConfig")):
        line = next(line for line in out.splitlines() if line.strip().startswith(option))
        assert words in out[out.index(line):].split("\n  -")[0], (option, line)


def test_an_engine_error_names_the_commands_own_option(tmp_path, capsys):
    """The engine says what is wrong with a setting; the command line says which of its options gives it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.jsonl").write_text("")
    code, _, err = run_main(["search", "--preset", "smoke", "--out", str(run)], capsys)
    assert_user_error(code, err, f"{run} already holds a search run", "--out DIR", "--resume DIR")
    code, _, err = run_main(["search", "--resume", str(tmp_path / "missing")], capsys)
    assert_user_error(code, err, "does not exist", "--resume DIR")
