"""Shared by the tests/test_reliability_*.py files: tiny settings, genotype text, snapshots of folders, the shared
runs (a search stopped after generation 1, the uninterrupted command-line reference run), the command line in
this process and in a real one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nasviz import cli
from nasviz.runs import rundir
from nasviz.runs.rundir import load_history
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search

REPO = Path(__file__).resolve().parents[1]
MAIN_NB = str(REPO / "notebooks" / "03_search.ipynb")
TINY = dict(warmup_steps=4, population=2, generations=2, finetune_steps=2, fitness_images=32, weight_images=64,
            batch_size=16, eval_batch_size=32, bn_batches=1, checkpoint_every=2, top_k=2, record_before=False)
# the CLI runs that are killed: one generation more, so every moment to kill at comes while the process still runs
CLI_SETTINGS = dict(TINY, generations=3)
DEADLINE_S = 240.0
PAYLOAD = "__import__('os').system('touch MARKER')"


def tiny(**overrides) -> SearchConfig:
    return SearchConfig.from_preset("smoke", **{**TINY, **overrides})


def cells(normal: str, reduce: str | None = None) -> str:
    """Genotype text with `normal` as the normal cell's pair list (the reduce cell: a valid one)."""
    valid = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
             "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)]")
    return (f"Genotype(normal={normal}, normal_concat=[2, 3, 4, 5], reduce={reduce or valid}, "
            f"reduce_concat=[2, 3, 4, 5])")


def pairs(*edges: tuple[str, int]) -> str:
    return "[" + ", ".join(f"({op!r}, {i})" for op, i in edges) + "]"


GOOD = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)]


def with_edge(k: int, edge: tuple[str, int]) -> str:
    edges = list(GOOD)
    edges[k] = edge
    return cells(pairs(*edges))


def everything(folder: Path) -> dict[str, bytes]:
    """Every file of a user's folder, the lock file included (a command that refuses a folder creates nothing)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def snapshot(folder: Path) -> dict[str, bytes]:
    """The run's files and their bytes (the lock file records who last wrote there, not the run)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != rundir.LOCK}


@pytest.fixture(scope="module")
def gen1_run(tmp_path_factory) -> Path:
    """A tiny search stopped after generation 1 of 2 (a checkpoint, history and result.json), made from an empty
    working directory beside it (`test_a_run_writes_only_inside_its_directory` checks both)."""
    base = tmp_path_factory.mktemp("shared")
    (base / "cwd").mkdir()
    cwd = os.getcwd()
    os.chdir(base / "cwd")
    try:
        search = Search(tiny(), base / "gen1")
        search.step()
        search.step()
    finally:
        os.chdir(cwd)
    assert search.generation == 1 and not search.done
    return base / "gen1"


@pytest.fixture
def run_copy(gen1_run, tmp_path) -> Path:
    """A private copy of `gen1_run` that a test may change."""
    return Path(shutil.copytree(gen1_run, tmp_path / "copy"))


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Ten 8x8 grayscale PNGs in two classes (8 for training, 2 held out)."""
    return png_classes(tmp_path / "images", 5, lambda i, c: 40 * i + c)


def png_classes(root: Path, per_class: int, grey: Callable[[int, int], int]) -> Path:
    """`root` with two class folders of `per_class` 8x8 grayscale PNGs each, image i of class c of grey value
    `grey(i, c)`."""
    from PIL import Image

    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (8, 8), color=grey(i, c)).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.fixture
def ctx(tmp_path, gen1_run, image_folder) -> dict[str, Any]:
    """Paths the bad-input cases refer to: {out} (must stay absent), {run}, {file}, {empty}, {missing}, {mine} and
    {trained} (a user's folders: must stay as they are), ..."""
    (tmp_path / "a-file.txt").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text('{"my": "own settings"}\n')
    (tmp_path / "mine" / "notes.txt").write_text("mine\n")
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "model.pt").write_bytes(b"my own model")
    return {"out": str(tmp_path / "out"), "run": str(gen1_run), "file": str(tmp_path / "a-file.txt"),
            "empty": str(tmp_path / "empty"), "missing": str(tmp_path / "missing"), "images": str(image_folder),
            "tmp": str(tmp_path), "mine": str(tmp_path / "mine"), "trained": str(tmp_path / "trained")}


USERS = ("mine", "trained")


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`nasviz.cli.main(argv)` in this process: (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_cli(*args: str, cwd: Path, timeout: float = DEADLINE_S) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "nasviz", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def cli_search_args(run_dir: Path) -> list[str]:
    sets = [a for k, v in CLI_SETTINGS.items() for a in ("--set", f"{k}={v}")]
    return ["search", "--preset", "smoke", "--seed", "0", *sets, "--out", str(run_dir), "--quiet"]


def start_search(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "nasviz", *cli_search_args(run_dir)], cwd=run_dir.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    """Poll `condition` until it holds; fail if the process ends first or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the search ended (code {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {DEADLINE_S} s")
        time.sleep(0.01)  # a polling interval, not a wait for the event


def has_generation(run_dir: Path, g: int) -> Callable[[], bool]:
    return lambda: any(r.get("generation") == g for r in rundir.read_jsonl(run_dir / rundir.HISTORY))


def best(run_dir: Path) -> tuple[str, float, list]:
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert result["finished"]
    return result["best_genotype"], result["best_fitness"], result["top_k"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[tuple, list[dict]]:
    """The uninterrupted CLI run with the same seed and settings: its best and its history."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    done = subprocess_cli(*cli_search_args(run_dir), cwd=run_dir.parent)
    assert done.returncode == 0, done.stderr
    return best(run_dir), load_history(run_dir)


def assert_resumes_to_the_reference(run_dir: Path, reference) -> None:
    rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)  # the previous complete version is there and loads
    done = subprocess_cli("search", "--resume", str(run_dir), "--quiet", cwd=run_dir.parent)
    assert done.returncode == 0, done.stderr
    ref_best, ref_rows = reference
    assert best(run_dir) == ref_best
    rows = load_history(run_dir)
    assert [r["generation"] for r in rows] == list(range(CLI_SETTINGS["generations"] + 1))
    assert [r["fitness"] for r in rows] == [r["fitness"] for r in ref_rows]
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # no leftovers of torn writes
    # events.jsonl was cut back to the checkpoint, as history.jsonl is: every training step logged once
    steps = [(e["phase"], e["generation"], e["step"]) for e in rundir.read_jsonl(run_dir / rundir.EVENTS)
             if e.get("type") == "train_step"]
    c = CLI_SETTINGS
    assert len(steps) == len(set(steps)) == c["warmup_steps"] + c["generations"] * c["finetune_steps"]
