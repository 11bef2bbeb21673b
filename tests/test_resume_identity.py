"""A resume continues only the run's own checkpoint, and says what it repairs (issue 26): a checkpoint of another run,
or an older copy of the run's own, is refused in one line even once result.json is gone (events.jsonl's checkpoint
events name the run; history.jsonl must not record generations past the checkpoint); a missing or damaged
result.json, config.json or events.jsonl is rewritten from the checkpoint with one note each, never silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nasviz import cli
from nasviz.runs import events, rundir
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search

TINY = dict(warmup_steps=4, population=2, generations=2, finetune_steps=2, fitness_images=32, weight_images=64,
            batch_size=16, eval_batch_size=32, bn_batches=1, checkpoint_every=2, top_k=2, record_before=False)
STATE_FILES = (rundir.CONFIG, rundir.HISTORY, rundir.EVENTS, rundir.RESULT, rundir.CHECKPOINT)


def run_cli(argv: list, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def stopped_in_warmup(run: Path, seed: int = 0) -> Path:
    """A tiny search stopped after its first warm-up checkpoint (generation -1)."""
    search = Search(SearchConfig.from_preset("smoke", **{**TINY, "seed": seed}), run)
    search.subscribe(lambda e: search.request_stop() if isinstance(e, events.TrainStep) else None)
    search.run()
    assert search.generation == -1 and (run / rundir.CHECKPOINT).exists()
    return run


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != rundir.LOCK}


@pytest.fixture(scope="module")
def warm(tmp_path_factory) -> Path:
    """Run A stopped in its warm-up, and (beside it) a copy of its warm-up checkpoint."""
    return stopped_in_warmup(tmp_path_factory.mktemp("a") / "run")


@pytest.fixture(scope="module")
def other_warm(tmp_path_factory) -> Path:
    """Run B: the same settings as A (config.json agrees), another run (its own run id), stopped in its warm-up."""
    return stopped_in_warmup(tmp_path_factory.mktemp("b") / "run")


@pytest.fixture(scope="module")
def gen1(warm, tmp_path_factory) -> Path:
    """Run A resumed from the warm-up and stopped after generation 1 of 2 (A's warm-up checkpoint kept aside)."""
    run = Path(shutil.copytree(warm, tmp_path_factory.mktemp("a1") / "run"))
    search = Search.resume(run)
    search.step()
    search.step()
    search.recorder.close()
    assert search.generation == 1
    return run


def one_line_error(code: int, err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(f in lines[0] for f in fragments), lines[0]
    return lines[0]


# --- another run's checkpoint, or an older copy of this run's -----------------------------------------------------
@pytest.mark.parametrize("gone", [(rundir.RESULT,), (rundir.RESULT, rundir.HISTORY), (rundir.RESULT, rundir.CONFIG)])
def test_another_runs_warmup_checkpoint_is_refused_in_a_progressed_run_once_result_json_is_gone(gen1, other_warm,
                                                                                             tmp_path, gone, capsys):
    target = Path(shutil.copytree(gen1, tmp_path / "target"))
    for name in gone:
        (target / name).unlink()
    shutil.copy(other_warm / rundir.CHECKPOINT, target / rundir.CHECKPOINT)
    before = snapshot(target)
    code, out, err = run_cli(["search", "--resume", target, "--quiet"], capsys)
    line = one_line_error(code, err, str(target / rundir.CHECKPOINT))
    assert "another run" in line or "is missing" in line
    assert snapshot(target) == before


def test_another_runs_warmup_checkpoint_is_refused_in_a_run_still_in_its_warmup(warm, other_warm, tmp_path, capsys):
    target = Path(shutil.copytree(warm, tmp_path / "target"))
    (target / rundir.RESULT).unlink()  # its run id is gone there; events.jsonl's checkpoint events still name it
    shutil.copy(other_warm / rundir.CHECKPOINT, target / rundir.CHECKPOINT)
    before = snapshot(target)
    code, out, err = run_cli(["search", "--resume", target, "--quiet"], capsys)
    one_line_error(code, err, "belongs to another run", "events.jsonl records checkpoints of run")
    assert snapshot(target) == before


@pytest.mark.parametrize("gone", [(), (rundir.RESULT,), (rundir.RESULT, rundir.EVENTS)])
def test_an_older_copy_of_the_runs_own_checkpoint_is_refused_it_would_drop_recorded_generations(warm, gen1, tmp_path,
                                                                                               gone, capsys):
    target = Path(shutil.copytree(gen1, tmp_path / "target"))
    for name in gone:
        (target / name).unlink()
    shutil.copy(warm / rundir.CHECKPOINT, target / rundir.CHECKPOINT)  # A's own, from its warm-up
    before = snapshot(target)
    code, out, err = run_cli(["search", "--resume", target, "--quiet"], capsys)
    one_line_error(code, err, "is at the warm-up, but", "records generation 1", "nothing was changed")
    assert snapshot(target) == before


def test_the_checkpoint_events_name_the_run():
    line = events.Checkpoint(0, 4, "abc").to_json()
    assert line == {"type": "checkpoint", "generation": 0, "warmup_done": 4, "run_id": "abc"}
    assert events.from_json({"type": "checkpoint", "generation": 0, "warmup_done": 4}) == events.Checkpoint(0, 4)


# --- repaired, and said ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(warm, tmp_path_factory) -> dict:
    """A's result when resumed from its warm-up with nothing missing."""
    run = Path(shutil.copytree(warm, tmp_path_factory.mktemp("whole") / "run"))
    return Search.resume(run).run()


@pytest.mark.parametrize("damage, note", [
    ({rundir.RESULT: None}, "result.json was missing: rewritten from checkpoint.pt (at the warm-up)"),
    ({rundir.RESULT: "{torn"}, "result.json was damaged (not a JSON object): rewritten from checkpoint.pt"),
    ({rundir.CONFIG: None}, "config.json was missing: rewritten from checkpoint.pt (at the warm-up)"),
    ({rundir.CONFIG: '{"seed": ', rundir.RESULT: "[1, 2]"}, "config.json was damaged"),
    ({rundir.EVENTS: None}, "events.jsonl was missing: the events from now on are recorded in a new one"),
])
def test_a_missing_or_damaged_run_file_is_rewritten_from_the_checkpoint_with_a_note(warm, finished, tmp_path, damage,
                                                                                    note, capsys):
    target = Path(shutil.copytree(warm, tmp_path / "target"))
    for name, text in damage.items():
        (target / name).unlink()
        if text is not None:
            (target / name).write_text(text)
    code, out, err = run_cli(["search", "--resume", target, "--quiet"], capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("nasviz: note: ")]
    assert len(notes) == len(damage) and any(note in n for n in notes), err
    assert "Traceback" not in err
    result = json.loads((target / rundir.RESULT).read_text())
    assert result["finished"] and result["best_genotype"] == finished["best_genotype"]
    assert result["best_fitness"] == finished["best_fitness"] and result["run_id"] == finished["run_id"]
    assert json.loads((target / rundir.CONFIG).read_text()) == json.loads((warm / rundir.CONFIG).read_text())


def test_a_whole_run_resumes_without_a_note(warm, tmp_path, capsys):
    target = Path(shutil.copytree(warm, tmp_path / "target"))
    code, out, err = run_cli(["search", "--resume", target, "--quiet"], capsys)
    assert code == 0 and "note" not in err, err
