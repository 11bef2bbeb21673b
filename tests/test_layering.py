"""The shape of the package: folders are layers and imports point down them (type-only imports included),
without cycles; only `nasviz.runs.rundir` knows the run directory's file names, front ends read runs through it,
and engine errors name no command-line option."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from nasviz.runs import rundir

PACKAGE = Path(__file__).resolve().parents[1] / "nasviz"
FRONT_ENDS = ("nasviz.viz", "nasviz.headless", "nasviz.notebooks")
COMMAND_LINE = ("nasviz.cli", "nasviz.options", "nasviz.headless", "nasviz.viz.cli", "nasviz.table.cli",
                "nasviz.latency.cli")

LAYERS: tuple[tuple[str, ...], ...] = (
    ("nasviz.errors", "nasviz.version", "nasviz.lazy", "nasviz.userpath", "nasviz.cores", "nasviz.settings",
     "nasviz.options", "nasviz.analysis"),
    ("nasviz.space",),
    ("nasviz.data",),
    ("nasviz.train",),
    ("nasviz.runs",),
    ("nasviz.table",),
    ("nasviz.latency",),
    ("nasviz.search",),
    ("nasviz.deploy",),
    ("nasviz.viz",),
    ("nasviz.notebooks",),
    ("nasviz.headless",),
    ("nasviz.cli", "nasviz.__main__", "nasviz", "nasviz.latency.cli"),
)
"""The layers, lowest first: a module may import its own layer and the ones before it, never one after it. The
first row is the base (shared modules with no nasviz imports above it); the last is the public facade and the
command line. README's "Layout" section draws the same map."""


def layer(module: str) -> int:
    """Index in LAYERS of the longest entry that is `module` or a package holding it."""
    found = [(len(prefix), i) for i, row in enumerate(LAYERS) for prefix in row
             if module == prefix or (module.startswith(prefix + ".") and prefix != "nasviz")]
    assert found, f"{module} is in no layer; add it to LAYERS"
    return max(found)[1]


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text())
    return out


def imports(name: str, tree: ast.Module, known: set[str], typing: bool = False) -> set[str]:
    """The nasviz modules `tree` imports at run time (anywhere in it); with `typing`, also those it imports in
    `if TYPE_CHECKING:` blocks."""
    typing_only = set() if typing else {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for part in node.body for n in ast.walk(part)}
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


def graph(typing: bool) -> dict[str, set[str]]:
    trees = modules()
    return {name: imports(name, tree, set(trees), typing) for name, tree in trees.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `edges` as a path that returns to its start, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = "done"
        return None

    for name in sorted(edges):
        if name not in state and (found := visit(name, [])):
            return found
    return None


def test_every_module_is_in_a_layer_and_no_import_points_up():
    edges = graph(typing=True)
    up = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets if layer(b) > layer(a))
    assert not up, f"imports pointing up the layers: {up}"


def test_no_import_cycles_at_run_time():
    found = cycle(graph(typing=False))
    assert not found, f"import cycle: {' -> '.join(found)}"


def test_no_import_cycles_including_type_only_imports():
    found = cycle(graph(typing=True))
    assert not found, f"import cycle: {' -> '.join(found)}"


def test_the_layer_map_finds_an_upward_import_and_a_cycle():
    """The two checks above can fail: a made-up space -> search import points up and closes a circle."""
    edges = graph(typing=False)
    edges["nasviz.space.genotypes"] = edges["nasviz.space.genotypes"] | {"nasviz.search.ga"}
    assert layer("nasviz.search.ga") > layer("nasviz.space.genotypes")
    found = cycle(edges)
    assert found[0] == found[-1] and set(found) == {"nasviz.search.ga", "nasviz.space.genotypes"}


@pytest.mark.parametrize(("package", "names"), [
    ("nasviz", ["Search", "SearchConfig", "load_model", "Genotype", "sample_genotype", "FIXTURES", "table"]),
    ("nasviz.space", ["Genotype", "SearchSpace", "get_space", "DARTS", "MINI", "Supernet", "space_size"]),
    ("nasviz.data", ["load_dataset", "eval_batches", "ImageData", "BatchStream", "DATASETS"]),
    ("nasviz.train", ["train_steps", "fitness", "accuracy", "pick_device", "ScratchConfig", "train_from_scratch"]),
    ("nasviz.runs", ["load_history", "load_result", "best_genotype", "write_json"]),
    ("nasviz.search", ["Search", "SearchConfig", "PRESETS"]),
    ("nasviz.deploy", ["load_model", "save_model", "export_model", "onnx_missing"]),
    ("nasviz.notebooks", ["repeat_searches", "kendall"]),
])
def test_each_layer_package_gives_its_public_names(package, names):
    module = importlib.import_module(package)
    for name in names:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError, match="no attribute"):
        module.no_such_name  # noqa: B018 (the lookup is the test)


def test_front_ends_import_no_recorder_and_viewers_no_search_loop():
    """Runs are read through `nasviz.runs`; the notebooks may start searches (`notebooks.searches`), the viewers
    and the headless runner only read what searches wrote."""
    trees = modules()
    for name, tree in trees.items():
        if name.startswith(FRONT_ENDS):
            found = imports(name, tree, set(trees))
            assert "nasviz.runs.recorder" not in found, name
            if not name.startswith("nasviz.notebooks"):
                assert "nasviz.search.loop" not in found, name


@pytest.mark.parametrize("file_name", [rundir.CONFIG, rundir.HISTORY, rundir.EVENTS, rundir.RESULT,
                                       rundir.CHECKPOINT, rundir.PARAMETERS, rundir.BATCH, rundir.SCRATCH])
def test_only_rundir_names_the_run_files_in_code(file_name):
    for name, tree in modules().items():
        if name != "nasviz.runs.rundir":
            literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == file_name]
            assert not literals, f"{name} spells {file_name!r}; use nasviz.runs.rundir's name for it"


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
