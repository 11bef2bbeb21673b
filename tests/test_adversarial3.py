"""A fresh hostile pass over issue 26's classes (round 3, after its fixes): what it found is tested here. An option
given twice with different values is refused in one line (argparse took the last silently); a latency profile is
distrusted as every run file is (a FIFO or folder is one line and never waited on; JSON nested too deeply is
damaged, not a RecursionError)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasviz import cli

ROOT = Path(__file__).resolve().parents[1]


def refused(argv: list, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, fragment", [
    (["search", "--seed", "1", "--seed", "2", "--out", "o"], "argument --seed: given twice ('1' and '2')"),
    (["search", "--nproc-per-node", "2", "--nproc-per-node", "3", "--out", "o"], "--nproc-per-node: given twice"),
    (["train", "--genotype", "DARTS_V2", "--epochs", "1", "--epochs", "2", "--out", "o"], "--epochs: given twice"),
    (["batch", "nb.ipynb", "--grid", "seed=1", "--jobs", "1", "--jobs=2", "--out", "o"], "--jobs: given twice"),
    (["search", "--out", "a", "--out", "b"], "--out: given twice"),
])
def test_an_option_given_twice_with_different_values_is_refused(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fragment in refused(argv, capsys)
    assert list(tmp_path.iterdir()) == []


def test_an_option_given_twice_with_the_same_value_is_accepted(tmp_path, capsys):
    args = cli.build_parser().parse_args(["search", "--seed", "3", "--seed", "3", "--quiet", "--quiet", "--out", "o"])
    assert args.seed == "3" and args.quiet and not hasattr(args, "_nasviz_given")


def nasviz(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nasviz", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not a regular file"),
    (lambda p: p.mkdir(), "is a folder, not a regular file"),
    (lambda p: p.write_text("[" * 100_000), "nested too deeply"),
    (lambda p: p.write_text("{" * 3 + "]"), "cannot be read"),
])
def test_a_latency_profile_is_distrusted_like_a_run_file(make, fragment, tmp_path):
    profile = tmp_path / "profile.json"
    make(profile)
    for argv in (["info", "--genotype", "DARTS_V2", "--latency", str(profile)],
                 ["search", "--preset", "smoke", "--set", f"latency_profile={profile}", "--set", "max_latency_ms=5",
                  "--out", str(tmp_path / "o")]):
        done = nasviz(*argv)
        err = done.stderr.strip()
        assert done.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert fragment in err and str(profile) in err, err
    assert not (tmp_path / "o").exists()
