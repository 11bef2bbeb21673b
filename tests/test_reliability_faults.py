"""Reliability and safety: faults and diverging training (kill -9 at several moments, SIGINT, truncated checkpoints,
interrupted writes; a NaN loss stops training and keeps the last good checkpoint)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import reliability_support as shared
import torch
from reliability_support import (
    DEADLINE_S,
    assert_resumes_to_the_reference,
    everything,
    has_generation,
    run_cli,
    snapshot,
    start_search,
    tiny,
    wait_for,
)

from nasviz.data.loading import BatchStream, ImageData
from nasviz.errors import CheckpointError, DivergedError
from nasviz.runs import rundir
from nasviz.runs.rundir import load_history
from nasviz.search.loop import Search
from nasviz.space.genotypes import Genotype
from nasviz.train.scratch import ScratchConfig, train_from_scratch

# the shared fixtures (`reliability_support`) this file's tests use
ctx = shared.ctx
gen1_run = shared.gen1_run
image_folder = shared.image_folder
reference = shared.reference
run_copy = shared.run_copy


# --- 2. faults: kill -9 at several moments, SIGINT, truncated checkpoints ----------------------------------
@pytest.mark.parametrize("moment", ["first-warmup-checkpoint", "generation-0", "generation-1"])
def test_kill_9_at_any_moment_then_resume_ends_like_the_uninterrupted_run(moment, tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = start_search(run_dir)
    if moment == "first-warmup-checkpoint":
        wait_for(lambda: (run_dir / rundir.CHECKPOINT).exists(), proc, "checkpoint during warm-up")
    else:
        wait_for(has_generation(run_dir, int(moment[-1])), proc, f"{moment} in history.jsonl")
    assert proc.poll() is None, "the search finished before it could be killed"
    proc.kill()  # SIGKILL: no handler, no cleanup
    assert proc.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    proc.stderr.close()
    assert_resumes_to_the_reference(run_dir, reference)


def test_sigint_stops_after_a_consistent_checkpoint_and_resumes_to_the_same_result(tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = start_search(run_dir)
    wait_for(has_generation(run_dir, 0), proc, "generation 0 in history.jsonl")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=DEADLINE_S) == 130
    err = proc.stderr.read()
    proc.stderr.close()
    assert "Traceback" not in err
    state = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert not result["finished"] and result["generation"] == state["generation"] >= 0
    assert [r["generation"] for r in load_history(run_dir)] == list(range(state["generation"] + 1))
    assert_resumes_to_the_reference(run_dir, reference)


@pytest.mark.parametrize("cut", ["empty", "100-bytes", "half", "last-10-bytes", "garbage"])
def test_a_truncated_or_corrupt_checkpoint_is_an_error_naming_the_file(run_copy, cut, capsys):
    path = run_copy / rundir.CHECKPOINT
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "100-bytes": data[:100], "half": data[: len(data) // 2],
                      "last-10-bytes": data[:-10], "garbage": b"\x00garbage" * 512}[cut])
    before = snapshot(run_copy)
    with pytest.raises(CheckpointError, match="truncated(,| or) corrupt") as info:
        Search.resume(run_copy)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    code, _, err = run_cli(["search", "--resume", str(run_copy)], capsys)
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1
    assert snapshot(run_copy) == before


def test_an_interrupted_write_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    rundir.write_json(path, {"version": 1})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", disk_full)
    with pytest.raises(CheckpointError, match="cannot write .*result.json: No space left on device"):
        rundir.write_json(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left behind


def test_a_line_torn_by_a_crash_does_not_hide_the_lines_appended_after_it(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text('{"type": "a"}\n{"type": "tor')  # killed in the middle of a line
    appender = rundir.JsonlAppender(log)
    appender({"type": "b"})
    appender.close()
    assert rundir.read_jsonl(log) == [{"type": "a"}, {"type": "b"}]


# --- 4. diverging training -----------------------------------------------------------------------------------
@pytest.fixture
def nan_batches(monkeypatch):
    """Make every training batch NaN (the engine's and from-scratch training's stream alike)."""
    original = BatchStream.next

    def poisoned(self):
        x, y = original(self)
        return torch.full_like(x, float("nan")), y

    monkeypatch.setattr(BatchStream, "next", poisoned)
    return monkeypatch


def test_a_nan_loss_in_fine_tuning_names_step_and_lr_and_keeps_the_last_checkpoint(run_copy, nan_batches):
    files = {name: (run_copy / name).read_bytes() for name in (rundir.CHECKPOINT, rundir.RESULT, rundir.HISTORY)}
    search = Search.resume(run_copy)
    steps = search.steps
    with pytest.raises(DivergedError) as info:
        search.step()
    message = str(info.value)
    assert f"finetune diverged: loss is nan at step {steps} with learning rate 0.05" in message
    assert str(run_copy / rundir.CHECKPOINT) in message and "\n" not in message
    assert {name: (run_copy / name).read_bytes() for name in files} == files
    nan_batches.undo()  # with good batches again, the last good checkpoint resumes and finishes
    result = Search.resume(run_copy).run()
    assert result["finished"] and result["generation"] == 2


def test_a_huge_learning_rate_diverges_with_an_error_and_the_files_stay(run_copy):
    files = {name: (run_copy / name).read_bytes() for name in (rundir.CHECKPOINT, rundir.RESULT)}
    search = Search.resume(run_copy, {"lr": 1e6, "finetune_steps": 8}, force=True)  # the largest rate allowed
    with pytest.raises(DivergedError, match=r"finetune diverged: .* at step \d+ with learning rate 1e\+06"):
        search.step()
    assert {name: (run_copy / name).read_bytes() for name in files} == files
    rundir.load_checkpoint(run_copy / rundir.CHECKPOINT)


def test_a_nan_loss_in_warm_up_stops_before_any_checkpoint(tmp_path, nan_batches):
    search = Search(tiny(), tmp_path / "r")
    with pytest.raises(DivergedError, match="warmup diverged: loss is nan at step 0 with learning rate 0.05"):
        search.run()
    assert not (tmp_path / "r" / rundir.CHECKPOINT).exists()


@pytest.mark.parametrize("where", ["new", "mine"])
def test_a_failed_training_leaves_nothing_behind(where, ctx, nan_batches, capsys):
    out = Path(ctx["out" if where == "new" else "mine"])
    before = everything(out) if out.exists() else None
    code, _, err = run_cli(["train", "--genotype", "DARTS_V2", "--epochs", "1", "--channels", "4", "--layers", "3",
                            "--batch-size", "8", "--train-size", "16", "--test-size", "8", "--out", str(out),
                            "--quiet"], capsys)
    assert code == 2 and "training diverged: loss is nan" in err and len(err.strip().splitlines()) == 1, err
    assert (not out.exists()) if where == "new" else everything(out) == before  # not even the lock file


def test_a_nan_loss_in_final_training_names_step_and_lr(nan_batches):
    g = torch.Generator().manual_seed(0)
    data = ImageData("tiny", torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=g),
                     torch.arange(16) % 2, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4) % 2,
                     ["a", "b"], (0.5,), (0.25,), "memory", True)
    config = ScratchConfig(epochs=1, channels=4, layers=3, batch_size=8, cutout=0)
    with pytest.raises(DivergedError, match="training diverged: loss is nan at step 0 with learning rate 0.025"):
        train_from_scratch(Genotype.parse("DARTS_V2"), data, config, progress=False)
