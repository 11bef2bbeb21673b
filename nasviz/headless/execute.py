"""One headless notebook run: its declared parameters, papermill execution, and the HTML export."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError, one_line
from nasviz.runs.regular_files import is_regular

MAIN_NOTEBOOK = "03_search.ipynb"
KERNEL_NAME = "python3"


def notebook_dir() -> Path:
    """The repository's notebooks/ folder (nasviz is installed editable from the repository)."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The names and default values (as source text) of the notebook's `parameters` cell (papermill's reading)."""
    import papermill as pm

    try:
        declared = pm.inspect_notebook(str(path))
    except Exception as exc:  # not JSON, not a notebook
        raise ConfigError(f"cannot read notebook {str(path)!r}: {one_line(exc, 300)}") from None
    return {name: info.get("default") for name, info in declared.items()}


def check_notebook(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if path.exists() and not is_regular(path):  # a FIFO would block papermill for ever
        raise ConfigError(f"notebook {str(path)!r} is not a regular file")
    if not path.is_file():
        hint = f"; the notebooks are in {notebook_dir()}" if notebook_dir().is_dir() else ""
        raise ConfigError(f"notebook {str(path)!r} does not exist{hint}")
    if path.suffix != ".ipynb":
        raise ConfigError(f"notebook {str(path)!r} is not a .ipynb file")
    return path


def kernel_config():
    """papermill's kernel manager settings: CurveZMQ transport encryption where the kernel supports it (ipykernel
    >= 7.4 declares it), which also silences its "Kernel is running over TCP without encryption" warning."""
    import zmq
    from traitlets.config import Config

    return Config({"KernelManager": {"transport_encryption": "auto" if zmq.has("curve") else "disabled"}})


def execute(notebook: Path, output: Path, parameters: dict[str, Any], *, cwd: str | Path | None = None,
            log_output: bool = False) -> dict:
    """Run `notebook` with papermill into `output` (the venv's `python3` kernel, headless); never raises for an
    error inside the notebook. Returns {status: 'ok'|'failed', error, seconds}."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from nasviz.notebooks.session import HEADLESS_ENV  # imported here: the command line starts without numpy

    saved = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"  # the kernel inherits it: use_live() says no
    start = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name=KERNEL_NAME,
                            progress_bar=False, log_output=log_output, cwd=None if cwd is None else str(cwd),
                            config=kernel_config())
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {one_line(exc.evalue, 300)}" if exc.evalue else exc.ename
    except Exception as exc:  # the kernel died, the notebook could not be written, ...
        error = f"{type(exc).__name__}: {one_line(exc, 300)}"
    finally:
        if saved is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = saved
    return {"status": "ok" if error is None else "failed", "error": error,
            "seconds": round(time.perf_counter() - start, 1)}


def export_html(notebook: Path, target: Path) -> Path:
    """Export an executed notebook to a standalone HTML page (nbconvert's HTMLExporter)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter().from_notebook_node(nbformat.read(str(notebook), as_version=4))
    target.write_text(body, encoding="utf-8")
    return target
