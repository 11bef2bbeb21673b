"""Reliability, round 3: every file read is distrusted, settings are checked before memory is allocated, nothing
nonsensical is accepted silently. Each class of the adversarial review has tests with other variants than its
examples: deeply nested JSON, memory, the table CLI, export names, ~ in paths, conflicting options, model files,
checkpoints and history, messages and how fast a refusal comes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nasviz import cli
from nasviz.runs import rundir
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search

REPO = Path(__file__).resolve().parents[1]
TINY = dict(warmup_steps=4, population=2, generations=2, finetune_steps=2, fitness_images=32, weight_images=64,
            batch_size=16, eval_batch_size=32, bn_batches=1, checkpoint_every=2, top_k=2, record_before=False)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`nasviz.cli.main(argv)` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, fragment: str, exit_code: int = 2) -> str:
    """Assert a one-line error holding `fragment`; returns it."""
    lines = err.strip().splitlines()
    assert code == exit_code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]
    return lines[0]


def subprocess_cli(*args: str, cwd: Path, timeout: float = 240, env: dict | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "nasviz", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def gen1_run(tmp_path_factory) -> Path:
    """A tiny search stopped after generation 1 of 2 (checkpoint, history, result.json)."""
    run = tmp_path_factory.mktemp("shared") / "gen1"
    search = Search(SearchConfig.from_preset("smoke", **TINY), run)
    search.step()
    search.step()
    assert search.generation == 1
    return run


@pytest.fixture
def run_copy(gen1_run, tmp_path) -> Path:
    return Path(shutil.copytree(gen1_run, tmp_path / "copy"))


# --- tracebacks: JSON nested too deeply is damaged JSON -----------------------------------------------------
DEEP = {"lists": "[" * 100_000, "objects": '{"a":' * 50_000, "closed": "[" * 5000 + "]" * 5000}


@pytest.mark.parametrize("deep", DEEP, ids=list(DEEP))
def test_deeply_nested_json_in_a_history_line_is_skipped_like_a_torn_line(run_copy, deep, capsys):
    good = rundir.load_history(run_copy)
    history = run_copy / rundir.HISTORY
    lines = history.read_text().splitlines()
    history.write_text("\n".join([lines[0], DEEP[deep], *lines[1:]]) + "\n")
    assert rundir.load_history(run_copy) == good
    assert rundir.best_genotype(run_copy)
    code, out, err = run_cli(["report", run_copy], capsys)
    assert code == 0 and "Traceback" not in err, err
    code, out, err = run_cli(["info", "--genotype", run_copy], capsys)
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("name", [rundir.RESULT, rundir.CONFIG, rundir.EVENTS])
def test_deeply_nested_json_in_a_run_file_is_a_damaged_file(run_copy, name, capsys):
    (run_copy / name).write_text('{"a":' * 60_000 + "\n")
    code, out, err = run_cli(["report", run_copy], capsys)
    assert "Traceback" not in err and "RecursionError" not in err, err
    assert code == 0
    code, out, err = run_cli(["search", "--resume", run_copy, "--quiet"], capsys)
    assert "Traceback" not in err and "RecursionError" not in err, err
    if code:
        one_line_error(code, err, str(run_copy))
    code, out, err = run_cli(["info", "--genotype", run_copy], capsys)
    assert "Traceback" not in err, err
    if code:
        one_line_error(code, err, str(run_copy / name))


def test_deeply_nested_json_in_a_table_build_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "recipe.json").write_text("[" * 100_000)
    code, out, err = run_cli(["table", "info", tmp_path], capsys)
    one_line_error(code, err, "recipe.json")
    table = tmp_path / "t.json.gz"
    import gzip

    table.write_bytes(gzip.compress(b"[" * 100_000))
    code, out, err = run_cli(["table", "info", table], capsys)
    one_line_error(code, err, str(table))


# --- tracebacks: memory is estimated before it is allocated --------------------------------------------------
@pytest.mark.parametrize("sets", [["image_size=128"], ["channels=64", "batch_size=512"]], ids=["image", "width"])
def test_a_search_too_big_for_memory_is_refused_before_allocating(sets, tmp_path, monkeypatch, capsys):
    from nasviz.train import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * 10**9)  # a 2 GB machine
    argv = ["search", "--preset", "smoke", *[a for s in sets for a in ("--set", s)], "--out", tmp_path / "run"]
    code, out, err = run_cli(argv, capsys)
    line = one_line_error(code, err, sets[0])
    assert "2.0 GB available" in line and "allowed: a smaller" in line
    assert not (tmp_path / "run").exists()


def test_the_memory_estimate_grows_with_the_settings_and_a_small_search_fits():
    from nasviz.errors import ConfigError
    from nasviz.train import memory

    config = SearchConfig.from_preset("smoke")
    memory.check_search(config, (1, 28, 28), 10, 70_000, 28, available=4 * 10**9)  # fits: no error
    with pytest.raises(ConfigError, match="batch_size=32") as small:
        memory.check_search(config, (1, 28, 28), 10, 70_000, 28, available=10**8)
    wide = config.replace(channels=16)
    with pytest.raises(ConfigError) as large:
        memory.check_search(wide, (1, 28, 28), 10, 70_000, 28, available=10**8)
    need = [float(e.value.args[0].split("needs about ")[1].split()[0]) for e in (small, large)]
    assert need[1] > need[0]


def test_a_model_file_declaring_a_network_too_big_for_memory_is_refused(tmp_path, monkeypatch):
    from nasviz.deploy.model_file import load_model
    from nasviz.errors import CheckpointError
    from nasviz.train import memory

    path = make_model_file(tmp_path / "m.pt")
    load_model(path)  # fits
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**5)
    with pytest.raises(CheckpointError, match=r"m\.pt's network .* available"):
        load_model(path)


# --- tracebacks: the table command line ------------------------------------------------------------------------
@pytest.mark.parametrize("setting, fragment", [
    ("epochs=0", "epochs=0"), ("batch_size=1", "batch_size=1"), ("lr=inf", "lr=inf"), ("momentum=1", "momentum=1"),
    ("train_images=10", "train_images=10"), ("table=", "unknown recipe setting 'table'"),
    ("dataset=imagefolder:~nouser/x", "nouser"),
])
def test_table_build_checks_the_recipe_before_writing_anything(setting, fragment, tmp_path, capsys):
    code, out, err = run_cli(["table", "build", "--set", setting, "--out", tmp_path / "b"], capsys)
    one_line_error(code, err, fragment)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("recipe", ["garbage", "{}", "[]", "null", '{"space": "mini", "recipe": {"epochs": 0}}',
                                    '{"space": "nope", "recipe": {}}', '{"space": "mini", "recipe": 5}'])
def test_a_damaged_build_folder_is_one_line_in_info_assemble_and_build(recipe, tmp_path, capsys):
    (tmp_path / "recipe.json").write_text(recipe)
    before = (tmp_path / "recipe.json").read_bytes()
    for argv in (["table", "info", tmp_path], ["table", "assemble", tmp_path, "--out", tmp_path / "t.json.gz"],
                 ["table", "build", "--out", tmp_path, "--limit", "0"]):
        code, out, err = run_cli(argv, capsys)
        one_line_error(code, err, "recipe.json")
    assert (tmp_path / "recipe.json").read_bytes() == before and not (tmp_path / "t.json.gz").exists()


def build_row(genotype: str, seed: int, **changes) -> dict:
    row = {"genotype": genotype, "seed": seed, "test_accuracy": 0.5 + seed / 100, "train_loss": 1.0, "params": 10,
           "flops": 20, "seconds": 1.5, "cpu_seconds": 1.4, **changes}
    return {k: v for k, v in row.items() if v is not ...}


def test_build_rows_without_fields_or_with_nan_are_skipped_with_a_note_and_an_empty_build_is_an_error(tmp_path,
                                                                                                   capsys):
    from nasviz.space.genotypes import get_space

    space = get_space("mini")
    keys = [space.key(g) for g in list(space.enumerate())[:2]]
    (tmp_path / "recipe.json").write_text(json.dumps({"space": "mini", "recipe": {}, "pilot": None}))
    code, out, err = run_cli(["table", "assemble", tmp_path, "--out", tmp_path / "t.json.gz"], capsys)
    one_line_error(code, err, "no finished training")
    rows = [build_row(keys[0], 0), build_row(keys[1], 0, seconds=...), build_row(keys[1], 1, test_accuracy="x"),
            build_row(keys[0], 1, cpu_seconds=float("inf")), [1, 2], build_row(keys[1], 2, params=None)]
    (tmp_path / "rows-0-of-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows).replace(
        "Infinity", "NaN"))
    code, out, err = run_cli(["table", "info", tmp_path], capsys)
    assert code == 0 and json.loads(out)["trainings"] == 1
    assert "skipped 5 damaged row(s)" in err and "Traceback" not in err
    code, out, err = run_cli(["table", "assemble", tmp_path, "--out", tmp_path / "t.json.gz"], capsys)
    assert code == 0 and "1 architectures" in out, err


# --- tracebacks: export's format and file name -----------------------------------------------------------------
def make_model_file(path: Path, **changes) -> Path:
    """A tiny untrained model file (2 cells, 4 channels, 8x8 grayscale images) with `changes` to its fields."""
    import torch

    from nasviz.deploy.model_file import save_model
    from nasviz.space.genotypes import FIXTURES
    from nasviz.space.network import EvalNetwork

    class Facts:
        name, shape, classes, mean, std = "fashion-mnist", (1, 8, 8), [str(c) for c in range(10)], (0.3,), (0.35,)

    torch.manual_seed(0)
    save_model(path, EvalNetwork(FIXTURES["DARTS_V2"], 1, 10, 4, 2, auxiliary=False).eval(), Facts())
    if changes:
        state = torch.load(path, weights_only=True)
        for key, value in changes.items():
            if key == "weight":
                name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
                state["state_dict"][name] = state["state_dict"][name].clone().fill_(value)
            else:
                state[key] = value
        torch.save(state, path)
    return path


@pytest.mark.parametrize("fmt, name", [("torchscript", "m.onnx"), ("onnx", "m.pt"), ("onnx", "m.onnx.txt"),
                                       ("TorchScript", "M.ONNX")])
def test_export_refuses_a_file_name_that_does_not_fit_the_format_before_exporting(fmt, name, tmp_path, capsys):
    model = make_model_file(tmp_path / "model.pt")
    code, out, err = run_cli(["export", "--model", model, "--format", fmt, "--out", tmp_path / name], capsys)
    one_line_error(code, err, "does not fit format")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# --- tracebacks: data ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["data", "imagefolder:~nosuchuser-nasviz/x"],
                                  ["data", "fashion-mnist", "--root", "~nosuchuser-nasviz/data"],
                                  ["search", "--dataset", "imagefolder:~nosuchuser-nasviz", "--out", "x"]])
def test_an_unknown_users_home_is_one_line(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(argv, capsys)
    one_line_error(code, err, "~nosuchuser-nasviz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"\x00\x00\x08\x03" + b"\xff" * 64])
def test_a_corrupt_fashion_mnist_root_is_one_line(content, tmp_path, capsys):
    from nasviz.data.loading import FASHION_MNIST_FILES

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FASHION_MNIST_FILES:
        (raw / name).write_bytes(content)
    code, out, err = run_cli(["data", "fashion-mnist", "--root", tmp_path, "--offline"], capsys)
    one_line_error(code, err, "cannot read Fashion-MNIST")


# --- tracebacks: Ctrl-C in a local batch -----------------------------------------------------------------------
def test_ctrl_c_in_a_local_batch_writes_batch_json_without_tracebacks_and_the_rerun_continues(tmp_path):
    import signal

    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 0\nhold = ''")
    params.metadata["tags"] = ["parameters"]
    body = "import os, time\nwhile x > 1 and os.path.exists(hold):\n    time.sleep(0.05)\nprint(x)"
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "nb.ipynb")
    hold = tmp_path / "hold"
    hold.write_text("points x > 1 wait while this file exists\n")
    argv = [sys.executable, "-m", "nasviz", "batch", "nb.ipynb", "--grid", "x=1,2,3", "-p", "hold", str(hold),
            "--out", "out"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,  # its own process group, as a terminal's foreground job
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:  # the first point is done: the second one waits for `hold`
        if line.startswith("[1/"):
            break
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert summary["interrupted"] is True
    assert [p["status"] for p in summary["points"]] == ["ok", "interrupted", "interrupted"]
    first = (tmp_path / "out" / "x=1" / "nb.ipynb").read_bytes()
    other = subprocess.run([*argv[:6], "x=1,2,4", *argv[7:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 2 and "already holds" in other.stderr  # another batch: refused, as before
    hold.unlink()
    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert [p["status"] for p in summary["points"]] == ["ok", "ok", "ok"] and not summary["interrupted"]
    assert (tmp_path / "out" / "x=1" / "nb.ipynb").read_bytes() == first  # the finished point is kept as it was


# --- silent acceptance: conflicting options, ~ ------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["train", "--genotype", "DARTS_V2", "--batch-size", "8", "--set", "batch_size=16", "--out", "o"],
     "--batch-size 8 and --set batch_size=16 conflict"),
    (["train", "--genotype", "DARTS_V2", "--layers", "3", "--set", "layers=3", "--out", "o"], "give layers once"),
    (["search", "--method", "ga", "--set", "method=random", "--out", "o"], "--method ga and --set method=random"),
    (["search", "--data-root", "d", "--set", "data_root=e", "--out", "o"], "--data-root d and --set data_root=e"),
    (["search", "--set", "population=4", "--set", "population=6", "--out", "o"], "each setting once"),
    (["table", "build", "--set", "epochs=1", "--set", "epochs=2", "--out", "o"], "each setting once"),
])
def test_a_setting_given_twice_is_refused_not_taken_from_the_last(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(argv, capsys)
    one_line_error(code, err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_tilde_after_an_equals_sign_is_expanded_not_a_folder_named_tilde(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["render", "--genotype", "DARTS_V2", "--out=~/cells/best.dot"], capsys)
    assert code == 0, err
    assert (home / "cells" / "best.dot").is_file() and not (tmp_path / "~").exists()
    from nasviz.runs import rundir as rd

    assert rd.check_path("~/x") == home / "x"  # the Python API too (a run directory given as ~/runs/...)


# --- silent acceptance: model files ------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, fragment", [
    ({"weight": float("nan")}, "non-finite"), ({"weight": float("inf")}, "non-finite"),
    ({"std": [1e-45]}, "implausible"), ({"std": [0.0]}, "std > 0"), ({"mean": [1e308]}, "implausible"),
    ({"std": [1e6]}, "implausible"),
])
def test_a_model_file_with_non_finite_weights_or_absurd_normalisation_is_refused_at_load(changes, fragment,
                                                                                       tmp_path, capsys):
    from PIL import Image

    model = make_model_file(tmp_path / "m.pt", **changes)
    Image.new("L", (8, 8), 100).save(tmp_path / "a.png")
    for argv in (["predict", "--model", model, tmp_path / "a.png", "--json"],
                 ["export", "--model", model, "--format", "torchscript", "--out", tmp_path / "m.ts"]):
        code, out, err = run_cli(argv, capsys)
        one_line_error(code, err, fragment)
        assert out == ""
    assert not (tmp_path / "m.ts").exists()


def test_json_output_is_valid_json_even_with_a_non_finite_number(capsys):
    from nasviz.cli import _print

    _print({"accuracy": float("nan"), "rows": [float("inf"), 1.0]}, True, "")
    assert json.loads(capsys.readouterr().out) == {"accuracy": None, "rows": [None, 1.0]}


# --- silent acceptance: checkpoints and history --------------------------------------------------------------------
def rewrite_checkpoint(run: Path, change) -> None:
    import torch

    state = torch.load(run / rundir.CHECKPOINT, weights_only=True)
    change(state)
    torch.save(state, run / rundir.CHECKPOINT)


@pytest.mark.parametrize("field, value", [("fitness", float("nan")), ("fitness", float("-inf")),
                                          ("wall_time_s", float("inf")), ("wall_time_s", float("nan"))])
def test_a_checkpoint_with_a_non_finite_number_is_refused_and_nothing_changes(run_copy, field, value, capsys):
    def change(state):
        if field == "fitness":
            state["fitness"][0] = value
        else:
            state[field] = value

    rewrite_checkpoint(run_copy, change)
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file() and p.name != rundir.LOCK}
    code, out, err = run_cli(["search", "--resume", run_copy, "--quiet"], capsys)
    one_line_error(code, err, f"field {field!r} is missing, not finite")
    after = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file() and p.name != rundir.LOCK}
    assert after == before and b"Infinity" not in after[rundir.RESULT] and b"NaN" not in after[rundir.RESULT]


def test_nothing_non_finite_is_ever_written_as_json(tmp_path):
    from nasviz.errors import CheckpointError

    for value in (float("inf"), float("nan")):
        with pytest.raises(CheckpointError, match="wall_time_s"):
            rundir.write_json(tmp_path / "r.json", {"ok": 1, "nested": {"wall_time_s": value}})
        with pytest.raises(CheckpointError, match=r"rows\[1\]"):
            rundir.append_jsonl(tmp_path / "h.jsonl", {"rows": [1.0, value]})
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "h.jsonl").exists()


@pytest.mark.parametrize("gone", [(rundir.HISTORY,), (rundir.RESULT, rundir.HISTORY)])
def test_another_runs_checkpoint_is_refused_once_result_and_history_are_gone(gen1_run, tmp_path, gone, capsys):
    other = tmp_path / "other"
    Search(SearchConfig.from_preset("smoke", **{**TINY, "seed": 7, "generations": 1}), other).run()
    target = Path(shutil.copytree(gen1_run, tmp_path / "target"))
    for name in gone:
        (target / name).unlink()
    shutil.copy(other / rundir.CHECKPOINT, target / rundir.CHECKPOINT)
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and p.name != rundir.LOCK}
    code, out, err = run_cli(["search", "--resume", target, "--quiet"], capsys)
    line = one_line_error(code, err, "checkpoint.pt")
    assert "another run" in line or "is missing" in line
    after = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and p.name != rundir.LOCK}
    assert after == before


def test_a_history_with_a_gap_in_its_generations_is_refused_on_resume(run_copy, capsys):
    history = run_copy / rundir.HISTORY
    lines = history.read_text().splitlines()
    history.write_text(lines[1] + "\n")  # generation 0 is gone, 1 is there
    code, out, err = run_cli(["search", "--resume", run_copy, "--quiet"], capsys)
    one_line_error(code, err, "lacks generation(s) 0")
    assert history.read_text() == lines[1] + "\n"


def test_another_runs_checkpoint_with_other_settings_is_refused_by_config_json(gen1_run, tmp_path, capsys):
    target = Path(shutil.copytree(gen1_run, tmp_path / "target"))
    config = json.loads((target / rundir.CONFIG).read_text())
    (target / rundir.CONFIG).write_text(json.dumps({**config, "p_mutation": 0.5}))  # as another run's would be
    code, out, err = run_cli(["search", "--resume", target, "--quiet"], capsys)
    one_line_error(code, err, "belongs to another run: it has p_mutation=")


def test_report_notes_each_wrong_typed_field_of_result_json(run_copy, capsys):
    result = json.loads((run_copy / rundir.RESULT).read_text())
    (run_copy / rundir.RESULT).write_text(json.dumps({**result, "best_fitness": "high", "seed": 1.5,
                                                      "finished": "yes"}))
    code, out, err = run_cli(["report", run_copy], capsys)
    assert code == 0
    notes = err.strip().splitlines()
    assert len(notes) == 3 and all(n.startswith("nasviz: note: ") for n in notes), err
    assert "best_fitness='high', not a number" in err and "seed=1.5" in err and "finished='yes'" in err
    page = (run_copy / rundir.REPORT).read_text()
    assert "high" not in page and "yes" not in page.split("<h2>")[0]


# --- messages ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sets, fragment", [
    (["batch_size=65536"], "weight_images=20000 is smaller than batch_size=65536; allowed: weight_images >= "),
    (["weight_images=none", "batch_size=60001"], "batch_size=60001 is more than the 60000 training images"),
    (["weight_images=60000"], "allowed: weight_images <= 59200"),
    (["table="], "table '' is blank; allowed: mini-fashion-mnist"),
    (["table=.", "space=mini"], "table '.' is a folder, not a table file"),
])
def test_messages_name_the_setting_at_fault_with_a_possible_range(sets, fragment, tmp_path, capsys):
    argv = ["search", *[a for s in sets for a in ("--set", s)], "--out", tmp_path / "o"]
    code, out, err = run_cli(argv, capsys)
    line = one_line_error(code, err, fragment)
    assert "<= -" not in line and "'.'" not in line.replace("table '.'", "")


def test_a_divergence_before_the_first_checkpoint_does_not_advise_resuming(tmp_path, monkeypatch):
    import torch

    from nasviz.data.batches import BatchStream
    from nasviz.errors import DivergedError

    real, calls = BatchStream.next, []

    def poisoned_from_step_3(self):
        x, y = real(self)
        calls.append(1)
        return (torch.full_like(x, float("nan")), y) if len(calls) > 3 else (x, y)

    monkeypatch.setattr(BatchStream, "next", poisoned_from_step_3)
    search = Search(SearchConfig.from_preset("smoke", **{**TINY, "warmup_steps": 8, "checkpoint_every": 100}),
                    tmp_path / "r")
    with pytest.raises(DivergedError) as info:
        search.run()
    message = str(info.value)
    assert "at step 3" in message and "resume" not in message and "start the search again" in message
    assert not (tmp_path / "r" / rundir.CHECKPOINT).exists()


def test_under_torchrun_a_startup_error_is_one_line_from_rank_0_and_each_process_exits_2(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(torchrun), "--nproc-per-node", "2", "-m", "nasviz", "search", "--set",
                           "generations=-3", "--out", "run"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    ours = [line for line in done.stderr.splitlines() if line.startswith("nasviz: ")]
    assert ours == ["nasviz: error: generations=-3 is out of range; allowed: an integer in 0..1000000"], done.stderr
    codes = re.findall(r"exitcode\s*:\s*(-?\d+)", done.stderr)
    # the first process to fail exits 2 (a user error); torchrun may stop the other with SIGTERM before it does
    assert "2" in codes and set(codes) <= {"2", "-15"}, done.stderr
    assert "traceback : nasviz: error: generations=-3" in done.stderr  # torchrun's summary names it
    assert not (tmp_path / "run").exists()


# --- speed of refusal --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["search", "--set", "population=-1", "--out", "o"],
    ["search", "--preset", "smoke", "--seed", "1", "--set", "seed=2", "--out", "o"],
    ["table", "build", "--set", "epochs=0", "--out", "o"],
    ["batch", "NB", "--grid", "x=1,2", "--backend", "ray", "--cpus-per-run", "100000", "--out", "o"],
])
def test_a_bad_setting_is_refused_before_torch_numpy_or_ray_are_imported(argv, tmp_path):
    (tmp_path / "nb.ipynb").write_text("{}")
    code = ("import sys\nfrom nasviz.cli import main\ncode = main(sys.argv[1:])\n"
            "print(sorted(m for m in ('torch', 'numpy', 'ray', 'papermill') if m in sys.modules))\nsys.exit(code)")
    argv = [str(tmp_path / "nb.ipynb") if a == "NB" else a for a in argv]
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("nasviz: error: "), done.stderr
    assert done.stdout.strip() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]


def test_a_training_too_big_for_memory_is_refused_before_allocating(tmp_path, capsys):
    argv = ["train", "--genotype", "DARTS_V2", "--channels", "512", "--layers", "50", "--batch-size", "4096",
            "--epochs", "1", "--out", tmp_path / "o"]
    code, out, err = run_cli(argv, capsys)
    line = one_line_error(code, err, "batch_size=4096 with channels=512, layers=50")
    assert "available" in line and "allowed: a smaller batch_size" in line
    assert not (tmp_path / "o").exists()


def test_on_a_gpu_activations_are_checked_against_its_free_memory_and_the_data_against_the_hosts(monkeypatch):
    from nasviz.errors import ConfigError
    from nasviz.train import memory

    config = SearchConfig.from_preset("smoke")
    monkeypatch.setattr(memory, "available_device_bytes", lambda device: 10**6)  # a GPU with 1 MB free
    with pytest.raises(ConfigError, match=r"on cuda:0 needs about .* but this machine has 1 MB"):
        memory.check_search(config, (1, 28, 28), 10, 70_000, 28, available=10**12, device="cuda:0")
    monkeypatch.setattr(memory, "available_device_bytes", lambda device: 10**12)
    with pytest.raises(ConfigError, match="70,000 images in memory") as info:  # the host is too small for the data
        memory.check_search(config, (1, 28, 28), 10, 70_000, 28, available=10**7, device="cuda:0")
    assert "on cuda" not in str(info.value)
