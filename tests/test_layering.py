"""The shape of the package: imports point one way without cycles, only `nasviz.rundir` knows the run
directory's file names, front ends read runs through it, and engine errors name no command-line option."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nasviz import rundir

PACKAGE = Path(__file__).resolve().parents[1] / "nasviz"
FRONT_ENDS = ("nasviz.viz", "nasviz.headless", "nasviz.notebooks")
COMMAND_LINE = ("nasviz.cli", "nasviz.options", "nasviz.headless", "nasviz.viz.cli", "nasviz.table.cli",
                "nasviz.latency.cli")


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text())
    return out


def imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The nasviz modules `tree` imports at run time (anywhere in it; `if TYPE_CHECKING:` blocks left out)."""
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in
                   ast.unparse(node.test) for part in node.body for n in ast.walk(part)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nasviz"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= subs if len(subs) == len(node.names) else {node.module} | subs
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nasviz")}
    return (found & known) - {name}


def test_no_import_cycles():
    trees = modules()
    graph = {name: imports(name, tree, set(trees)) for name, tree in trees.items()}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join(path + [node, nxt])}"
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_front_ends_read_runs_through_rundir_never_through_the_engine():
    trees = modules()
    for name, tree in trees.items():
        if name.startswith(FRONT_ENDS):
            assert not imports(name, tree, set(trees)) & {"nasviz.search", "nasviz.recorder"}, name


@pytest.mark.parametrize("file_name", [rundir.CONFIG, rundir.HISTORY, rundir.EVENTS, rundir.RESULT,
                                       rundir.CHECKPOINT, rundir.PARAMETERS, rundir.BATCH, rundir.SCRATCH])
def test_only_rundir_names_the_run_files_in_code(file_name):
    for name, tree in modules().items():
        if name != "nasviz.rundir":
            literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == file_name]
            assert not literals, f"{name} spells {file_name!r}; use nasviz.rundir's name for it"


def test_engine_errors_name_no_command_line_option():
    """The command line adds its own options to an error (see nasviz.options.OPTION_HINTS)."""
    for name, tree in modules().items():
        if name.startswith(COMMAND_LINE):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = " ".join(n.value for n in ast.walk(node.exc) if isinstance(n, ast.Constant)
                                and isinstance(n.value, str))
                assert " --" not in f" {text}".replace("(--", " --"), f"{name}:{node.lineno} names an option: {text}"
