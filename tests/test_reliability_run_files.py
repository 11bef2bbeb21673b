"""Reliability and safety: hostile, damaged and foreign run files (checkpoints carrying code, genotype text parsed not
run, symbolic links; checkpoints checked before a resume touches anything; config and result agree after a resume;
readers of a damaged or partial run answer in one line)."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import reliability_support as shared
import torch
from reliability_support import cells, run_cli, snapshot, subprocess_cli, tiny

from nasviz.errors import CheckpointError, NasvizError
from nasviz.runs import rundir
from nasviz.runs.rundir import load_history
from nasviz.search.loop import Search
from nasviz.space.genotypes import Genotype

# the shared fixtures (`reliability_support`) this file's tests use
gen1_run = shared.gen1_run
run_copy = shared.run_copy


# --- 3. hostile files --------------------------------------------------------------------------------------
class Exploit:
    """Pickles as a call of os.system: loading it unsafely would create MARKER."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_checkpoint_carrying_code_is_refused_without_running_it(run_copy, tmp_path, how, capsys):
    marker = tmp_path / "MARKER"
    path = run_copy / rundir.CHECKPOINT
    state = {"format": "nasviz-checkpoint", "version": 1, "config": tiny().to_dict(), "payload": Exploit(marker)}
    if how == "torch.save":
        torch.save(state, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=2)  # torch's legacy format
    with pytest.raises(CheckpointError, match="refused to load it, nothing in it was run") as info:
        Search.resume(run_copy)
    assert str(path) in str(info.value) and "weights_only` set to `False`" not in str(info.value)
    assert "not a safe nasviz checkpoint: it refers to code (Trying to load unsupported GLOBAL posix.system" \
        in str(info.value)
    with pytest.raises(CheckpointError, match="refused to load it"):
        rundir.load_checkpoint(path)
    code, _, err = run_cli(["search", "--resume", str(run_copy)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err
    assert not marker.exists()


def test_a_checkpoint_process_refuses_code_too(run_copy, tmp_path):
    torch.save({"format": "nasviz-checkpoint", "version": 1, "payload": Exploit(tmp_path / "MARKER")},
               run_copy / rundir.CHECKPOINT)
    done = subprocess_cli("search", "--resume", str(run_copy), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "MARKER").exists()


def test_genotype_text_inside_a_checkpoint_or_result_file_is_parsed_not_run(run_copy, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    payload = f"__import__('os').system('touch {marker}')"
    path = run_copy / rundir.CHECKPOINT
    state = rundir.load_checkpoint(path)
    state["population"] = [payload] * len(state["population"])
    torch.save(state, path)  # a safe pickle, hostile text
    with pytest.raises(CheckpointError, match="cannot be resumed: genotype text"):
        Search.resume(run_copy)
    result = json.loads((run_copy / rundir.RESULT).read_text())
    (run_copy / rundir.RESULT).write_text(json.dumps({**result, "best_genotype": cells(payload)}))
    code, _, err = run_cli(["info", "--genotype", str(run_copy)], capsys)
    assert code == 2 and "which is not allowed" in err
    assert not marker.exists()


def test_a_run_writes_only_inside_its_directory(gen1_run):
    base = gen1_run.parent  # the run was made with base/cwd as the working directory
    assert sorted(p.relative_to(base).as_posix() for p in base.rglob("*")) == sorted(
        ["cwd", "gen1"]
        + [f"gen1/{name}" for name in (rundir.CONFIG, rundir.HISTORY, rundir.EVENTS, rundir.RESULT, rundir.CHECKPOINT,
                                       rundir.LOCK)]
    )


def test_symbolic_links_in_a_run_directory_are_never_written_through(run_copy, tmp_path):
    outside = {name: tmp_path / f"outside-{name}" for name in (rundir.EVENTS, rundir.HISTORY, rundir.RESULT)}
    for name, target in outside.items():
        target.write_text("precious\n")
        (run_copy / name).unlink()
        (run_copy / name).symlink_to(target)
    # refused before anything is written: for the links, or for the history they hide (read as missing)
    with pytest.raises(CheckpointError, match="events.jsonl is a symbolic link|history.jsonl lacks generation"):
        Search.resume(run_copy)
    assert all(target.read_text() == "precious\n" for target in outside.values())
    # a new run refuses a directory whose history is a (dangling) link instead of appending through it
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / rundir.HISTORY).symlink_to(tmp_path / "nowhere.jsonl")
    with pytest.raises(CheckpointError, match="already holds a search run"):
        Search(tiny(), tmp_path / "fresh")
    assert not (tmp_path / "nowhere.jsonl").exists()


# --- 7. checkpoints checked before a resume touches anything (16.8) ---------------------------------------------
def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda state: state.__setitem__(key, value)


DAMAGE: dict[str, Callable[[dict], None]] = {
    "generation-text": _set("generation", "1"),
    "generation-beyond-the-run": _set("generation", 99),
    "fitness-shorter-than-population": lambda s: s.__setitem__("fitness", s["fitness"][:-1]),
    "params-floats": lambda s: s.__setitem__("params", [0.5] * len(s["params"])),
    "population-text": _set("population", "not a list"),
    "seen-numbers": _set("seen", [1, 2]),
    "warmup-log-uneven": lambda s: s["warmup_log"].__setitem__("paths", ["a path without its loss"]),
    "no-rng": lambda s: s.pop("rng"),
    "rng-torch-list": lambda s: s["rng"].__setitem__("torch", [1, 2, 3]),
    "stream-position-text": lambda s: s["stream"].__setitem__("position", "3"),
    "stream-order-cut": lambda s: s["stream"].__setitem__("perm", s["stream"]["perm"][:3]),
    "optimizer-momentum-of-another-shape": lambda s: next(iter(s["optimizer"]["state"].values())).__setitem__(
        "momentum_buffer", torch.zeros(3)),
    "optimizer-lr-text": lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", "fast"),
    "supernet-list": _set("supernet", [1]),
    "no-optimizer": lambda s: s.pop("optimizer"),
    "wall-time-negative": _set("wall_time_s", -1.0),
    "from-another-run": _set("run_id", "0" * 32),
    "another-population": lambda s: s.__setitem__("population", [str(Genotype.parse("DARTS_V2"))] * 2),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_checkpoint_of_the_wrong_structure_or_another_run_is_refused_before_anything_changes(run_copy, damage,
                                                                                               capsys):
    path = run_copy / rundir.CHECKPOINT
    state = rundir.load_checkpoint(path)
    DAMAGE[damage](state)
    torch.save(state, path)
    before = snapshot(run_copy)
    with pytest.raises(CheckpointError) as info:
        Search.resume(run_copy)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert snapshot(run_copy) == before
    code, _, err = run_cli(["search", "--resume", str(run_copy), "--quiet"], capsys)
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(run_copy) == before


# --- 8. after a resume, config.json and result.json agree (16.9) ------------------------------------------------
@pytest.mark.parametrize("generations", [1, 3])
def test_after_any_resume_config_and_result_agree(run_copy, generations, capsys):
    code, out, err = run_cli(["search", "--resume", str(run_copy), "--set", f"generations={generations}"]
                             + (["--quiet"] if generations == 3 else []), capsys)
    assert code == 0, err
    config, result = (json.loads((run_copy / name).read_text()) for name in (rundir.CONFIG, rundir.RESULT))
    assert config["generations"] == result["generations"] == generations
    assert result["finished"] and result["generation"] == generations
    if generations == 1:  # nothing left to run: it says finished, and so does result.json
        assert "search finished" in out


def test_a_resume_that_has_not_run_yet_already_agrees(run_copy):
    Search.resume(run_copy, {"generations": 5})
    config, result = (json.loads((run_copy / name).read_text()) for name in (rundir.CONFIG, rundir.RESULT))
    assert config["generations"] == result["generations"] == 5 and not result["finished"]


# --- 9. readers answer a partial run with what it has, a damaged file with one line (16.7) -----------------------
def _rewrite(name: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text(change((run / name).read_text()))


def _first_row(change: Callable[[dict], Any]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        lines = text.splitlines()
        return "\n".join([json.dumps(change(json.loads(lines[0])))] + lines[1:]) + "\n"
    return apply


READ = [["report", "{run}"]]
GENOTYPE = [["info", "--genotype", "{run}"], ["render", "--genotype", "{run}", "--out", "{run}/cells.dot"]]
DAMAGED: dict[str, tuple[Callable[[Path], None], list[list[str]], str]] = {
    "history-line-not-an-object": (_rewrite(rundir.HISTORY, lambda t: "[1, 2]\n" + t), READ,
                                   "history.jsonl is damaged: row 1 is list, not an object"),
    "history-row-lacks-a-key": (_rewrite(rundir.HISTORY, _first_row(lambda r: {k: v for k, v in r.items()
                                                                               if k != "best"})), READ,
                                "history.jsonl is damaged: row 1 lacks 'best'"),
    "history-row-wrong-type": (_rewrite(rundir.HISTORY, _first_row(lambda r: {**r, "fitness": ["high"]})), READ,
                               "history.jsonl is damaged: row 1 has 'high' in fitness"),
    "history-individual-damaged": (_rewrite(rundir.HISTORY, _first_row(lambda r: {**r, "individuals": [None]})),
                                   READ, "history.jsonl is damaged: row 1 has individual 0"),
    "history-null": (_rewrite(rundir.HISTORY, lambda t: "null\n"), READ, "row 1 is NoneType, not an object"),
    "result-truncated": (_rewrite(rundir.RESULT, lambda t: t[: len(t) // 2]), GENOTYPE,
                         "result.json is not valid JSON"),
    "result-a-list": (_rewrite(rundir.RESULT, lambda t: "[]"), READ + GENOTYPE,
                      "result.json is damaged: it holds list [], not a JSON object"),
    "result-null": (_rewrite(rundir.RESULT, lambda t: "null"), GENOTYPE, "result.json is damaged: it holds NoneType"),
    "result-best-a-number": (_rewrite(rundir.RESULT, lambda t: '{"best_genotype": 5}'), GENOTYPE,
                             "result.json is damaged: best_genotype=5 is not genotype text"),
    "partial-no-generation-yet": (_rewrite(rundir.HISTORY, lambda t: ""), READ, "nothing to report yet"),
    "partial-warming-up": (lambda run: [(run / n).unlink() for n in (rundir.RESULT, rundir.HISTORY)], GENOTYPE,
                           "has no best genotype yet"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_readers_of_a_damaged_or_partial_run_answer_in_one_line_naming_the_file(run_copy, case, capsys):
    damage, commands, fragment = DAMAGED[case]
    damage(run_copy)
    for argv in commands:
        code, out, err = run_cli([a.format(run=run_copy) for a in argv], capsys)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert "Traceback" not in err
    with pytest.raises(NasvizError, match=re.escape(fragment)):  # and the same through the API
        if commands is READ or commands == READ + GENOTYPE:
            from nasviz.viz.cli import cmd_report

            cmd_report(argparse.Namespace(run_dir=str(run_copy)))
        else:
            rundir.best_genotype(run_copy)


@pytest.mark.parametrize("result", ["missing", "truncated"])
def test_a_partial_run_is_reported_with_what_it_has(run_copy, result, capsys):
    path = run_copy / rundir.RESULT
    if result == "missing":  # e.g. killed between its first history row and its first result
        path.unlink()
    else:  # result.json is written atomically: torn, it is damaged; the report leaves its facts out and says so
        path.write_text(path.read_text()[:40])
    code, out, err = run_cli(["report", str(run_copy)], capsys)
    assert code == 0, err
    assert (run_copy / rundir.REPORT).is_file()
    assert err == ("" if result == "missing" else f"nasviz: note: {path} is not JSON (damaged); the report leaves "
                   "out its facts\n")


def test_a_run_without_result_json_yet_gives_its_last_generations_best(run_copy, capsys):
    (run_copy / rundir.RESULT).unlink()  # killed after a history row, before the result of that checkpoint
    code, out, err = run_cli(["info", "--genotype", str(run_copy), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["genotype"] == load_history(run_copy)[-1]["best"]["genotype"]


def test_a_list_of_runs_leaves_a_damaged_one_out_and_reads_the_others(gen1_run, tmp_path, capsys):
    from nasviz.notebooks import find_runs

    shutil.copytree(gen1_run, tmp_path / "runs" / "good")
    shutil.copytree(gen1_run, tmp_path / "runs" / "bad")
    (tmp_path / "runs" / "bad" / rundir.RESULT).write_text("[]")
    assert [r["name"] for r in find_runs(tmp_path / "runs")] == ["good"]
    assert "left out" in capsys.readouterr().out
