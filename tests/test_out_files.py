"""No command replaces a user's file: every command that takes `--out` is found in the argparse parsers (a new
command is covered without editing this list, or the test says what it needs), and each one is run against an
existing user file at `--out`. Commands that write a file refuse it unless `--force`, and write atomically."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from run_support import run_cli

from nasviz.cli import EXIT_USAGE, build_parser
from nasviz.errors import CheckpointError, ConfigError
from nasviz.runs import out_file

ROOT = Path(__file__).resolve().parent.parent

FOLDER_COMMANDS = {"search", "train", "batch", "demo", "table build"}
"""Commands whose --out is a folder they create or fill (a file there is refused as "not a folder")."""


def arguments(command: str, tmp: Path) -> list[str]:
    """The least a command needs besides --out to reach its --out check."""
    known = {
        "search": ["--preset", "smoke"],
        "train": ["--genotype", "DARTS_V2", "--epochs", "1"],
        "export": ["--model", str(tmp / "model.pt"), "--format", "torchscript"],
        "render": ["--genotype", "DARTS_V2"],
        "batch": [str(ROOT / "notebooks" / "03_search.ipynb"), "--grid", "seed=0,1"],
        "demo": ["--preset", "smoke"],
        "table build": ["--limit", "0"],
        "table assemble": [str(tmp / "build")],
        "latency profile": ["--space", "mini", "--quiet"],
        "latency validate": ["--networks", "3", "--quiet"],
    }
    assert command in known, f"new command {command!r} takes --out: add its other arguments to this test"
    return known[command]


def commands_with_out(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command of `parser` that has an --out option, by its command words."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(commands_with_out(sub, f"{prefix} {name}".strip()))
        elif "--out" in action.option_strings and prefix:
            found[prefix] = parser
    return found


COMMANDS = commands_with_out(build_parser())


def test_the_parsers_are_enumerated():
    assert {"export", "render", "table assemble", "search", "train"} <= set(COMMANDS)


run = run_cli


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_out_refuses_an_existing_user_file(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NASVIZ_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    has_force = any("--force" in a.option_strings for a in COMMANDS[command]._actions)
    assert has_force or command in FOLDER_COMMANDS, f"{command} writes --out FILE: it needs --force"
    user = tmp_path / ("mine.svg" if command == "render" else "mine.json.gz")
    user.write_bytes(b"the user's own file")
    code, err = run([*command.split(), *arguments(command, tmp_path), "--out", str(user)], capsys)
    assert code == EXIT_USAGE, (code, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(user) in err, err
    if has_force:
        assert "--force" in err, err
    assert user.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [user.name]  # nothing else made either


def test_render_replaces_only_with_force(tmp_path, capsys):
    out = tmp_path / "cells.dot"
    out.write_text("mine")
    assert run(["render", "--genotype", "DARTS_V2", "--out", str(out), "--force"], capsys)[0] == 0
    assert out.read_text().startswith("digraph")
    link = tmp_path / "link.dot"
    link.symlink_to(tmp_path / "target.dot")
    code, err = run(["render", "--genotype", "DARTS_V2", "--out", str(link)], capsys)
    assert code == EXIT_USAGE and "--force" in err and not (tmp_path / "target.dot").exists()


def test_table_assemble_refuses_before_reading_the_build(tmp_path, capsys):
    out = tmp_path / "t.json.gz"
    out.write_bytes(b"x")
    code, err = run(["table", "assemble", str(tmp_path / "no-such-build"), "--out", str(out)], capsys)
    assert code == EXIT_USAGE and "exists already" in err and out.read_bytes() == b"x"


def test_a_failed_check_leaves_no_file(tmp_path):
    def refuse(path: Path) -> None:
        assert path.read_bytes() == b"data" and path.parent == tmp_path
        raise CheckpointError("the written file failed its check")

    with pytest.raises(CheckpointError, match="failed its check"):
        out_file.write_out_file(tmp_path / "new.bin", b"data", check=refuse)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_appears_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "race.bin"

    def someone_writes(_path: Path) -> None:
        target.write_bytes(b"theirs")

    with pytest.raises(ConfigError, match="exists already"):
        out_file.write_out_file(target, b"ours", check=someone_writes)
    assert target.read_bytes() == b"theirs" and sorted(tmp_path.iterdir()) == [target]
