"""Helpers for the JupyterLab-in-Chromium tests: a JupyterLab server we hold by PID, a headless Chromium driven by
Playwright (the system's /usr/bin/chromium; never `playwright install`), and in-page probes of the notebook.

Everything JupyterLab writes (config, runtime files, user settings, workspaces, the settings override that keeps
the "Jupyter news" pop-up away) goes to a temporary folder; nothing in the venv or the home folder is modified.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# JupyterLab settings overrides (an overrides.json in the app settings dir): no news/update pop-up, and every cell
# attached to the DOM (no windowing), so outputs below the fold can be queried.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class LabServer:
    proc: subprocess.Popen
    port: int
    root_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, relpath: str) -> str:
        return f"{self.url}/lab/tree/{relpath}"

    def log_tail(self, chars: int = 4000) -> str:
        return tail(self.log, chars)


def _wait_http(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api", timeout=2) as resp:
                if resp.status == 200 and "version" in json.loads(resp.read()):
                    return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = repr(exc)
        # wait for the process rather than sleeping: returns at once if it dies
        try:
            server.proc.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            pass
    raise TimeoutError(f"jupyter lab did not answer {server.url}/api within {timeout:.0f} s ({last}):\n"
                       f"{server.log_tail()}")


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the PID we hold, wait, SIGKILL if it is still there."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def jupyter_lab(root_dir: Path, workdir: Path, startup_timeout: float = 90,
                env: dict[str, str | None] | None = None) -> Iterator[LabServer]:
    """Run JupyterLab on 127.0.0.1 (free port, no token) serving `root_dir`; all its state lives under `workdir`.
    `env` adds variables to the server's (and so its kernels') environment; a None value removes one."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = workdir / "lab-settings"
    settings.mkdir(exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2))
    server_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            server_env.pop(key, None)
        else:
            server_env[key] = value
    server_env.update(
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(workdir / "user-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
        IPYTHONDIR=str(workdir / "ipython"),
        PYTHONUNBUFFERED="1",
    )

    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={root_dir}",
            # overrides.json is read from the app settings dir; point it at ours instead of writing into the venv
            f"--LabApp.app_settings_dir={settings}",
            f"--LabApp.user_settings_dir={workdir / 'user-settings'}",
            f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
            # window.jupyterapp: lets the test read kernel status, cell execution counts and outputs from the models
            "--LabApp.expose_app_in_browser=True",
        ]
    log = workdir / "jupyter-lab.log"
    for attempt in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(command(port), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=server_env, cwd=root_dir)
        server = LabServer(proc=proc, port=port, root_dir=root_dir, log=log)
        try:
            _wait_http(server, startup_timeout)
            break
        except RuntimeError:  # it exited: retry only if it lost the port
            if attempt == 2 or "already in use" not in server.log_tail():
                raise
        except BaseException:  # timed out (or interrupted): never leave it running
            stop_process(proc)
            raise
    try:
        yield server
    finally:
        stop_process(proc)


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A Playwright page in headless /usr/bin/chromium (a fresh temporary profile)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            page.console_messages_seen = []  # type: ignore[attr-defined]
            page.on("console", lambda msg: page.console_messages_seen.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: page.console_messages_seen.append(f"pageerror: {exc}"))
            yield page
        finally:
            browser.close()


def smoke_copy(src: Path, dest: Path, replacements: dict[str, str]) -> Path:
    """Copy notebook `src` to `dest`, rewriting lines of the cell tagged `parameters`: every line that starts with
    `name =` for a name in `replacements` becomes `name = <replacement>` (replacement is Python source). Outputs
    and execution counts are stripped so that "every code cell has an execution count" means "this run is done"."""
    nb = nbformat.read(src, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise AssertionError(f"{src} must have exactly one cell tagged 'parameters', found {len(cells)}")
    lines = cells[0].source.splitlines()
    missing = set(replacements)
    for i, line in enumerate(lines):
        name = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else ""
        if name in replacements and not line.startswith((" ", "\t")):
            comment = line[line.index("#"):] if "#" in line.split("=", 1)[1] else ""
            lines[i] = f"{name} = {replacements[name]}" + (f"  {comment}" if comment else "")
            missing.discard(name)
    if missing:
        raise AssertionError(f"parameters cell of {src} has no line assigning {sorted(missing)}:\n{cells[0].source}")
    cells[0].source = "\n".join(lines)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


# --- in-page probes -----------------------------------------------------------------------------------------------

# Installs window.__nasviz: `state()` reads the notebook (through window.jupyterapp) and the page; a 250 ms sampler
# keeps a trace of every change of the plotly data, progress bars and cell SVGs, with the kernel status at the
# time, so that "a figure changed while the search ran" is decided from the page's own timeline, whatever Python
# happened to be waiting for at that moment.
PROBE_JS = r"""
(nbPath) => {
  if (window.__nasviz) return true;
  const num = (a) => {
    if (!a || !(Array.isArray(a) || ArrayBuffer.isView(a))) return [0, 0];
    let s = 0;
    for (const v of a) if (typeof v === 'number' && isFinite(v)) s += v;
    return [a.length, Math.round(s * 1000) / 1000];
  };
  const panel = () => {
    const app = window.jupyterapp;
    if (!app) return null;
    for (const w of app.shell.widgets('main')) {
      if (w.context && w.context.path === nbPath && w.content && w.content.widgets) return w;
    }
    return null;
  };
  // plotly graphs: inside widget views (FigureWidgets, e.g. the dashboard's) or, for plain figures, the output
  // element itself (JupyterLab's plotly renderer puts .js-plotly-plot on .jp-OutputArea-output)
  const inWidget = (el) => !!el.closest('.jupyter-widgets, .widget-box, .widget-html');
  const allPlots = () => Array.from(document.querySelectorAll(
    '.jp-OutputArea-output .js-plotly-plot, .jp-OutputArea-output.js-plotly-plot'));
  const plots = () => allPlots().filter(inWidget);
  // plain (non-widget) plotly figures as shown: a live graph, or the PNG snapshot JupyterLab's plotly renderer
  // saved with the output and shows when a saved notebook is reopened (loaded, i.e. naturalWidth > 0)
  const staticFigs = () => Array.from(document.querySelectorAll('.jp-OutputArea-output')).filter((el) => {
    const graph = el.matches('.js-plotly-plot') ? el : el.querySelector('.js-plotly-plot');
    if (graph) return !inWidget(graph);
    return Array.from(el.querySelectorAll('img.plot-img')).some((img) => img.style.display !== 'none'
      && (img.getAttribute('src') || '').startsWith('data:image/png') && img.naturalWidth > 0);
  }).length;
  // one signature per figure: for each trace, number of x and y values and the sum of the y values
  const figSigs = () => plots().map((gd) => (gd.data || []).map((t) => {
    const [nx] = num(t.x); const [ny, sy] = num(t.y);
    return `${nx}/${ny}/${sy}`;
  }).join(','));
  const points = () => plots().reduce((n, gd) => n + (gd.data || []).reduce(
    (m, t) => m + Math.max(num(t.x)[0], num(t.y)[0]), 0), 0);
  const progress = () => Array.from(document.querySelectorAll('.widget-hprogress')).map((el) => {
    const bar = el.querySelector('.progress-bar');
    return bar ? bar.style.width : (el.querySelector('progress') || {}).value;
  });
  // graphviz drawings of cells: inline <svg> (e.g. in an ipywidgets HTML widget) or <img> data URLs (how
  // JupyterLab shows image/svg+xml outputs); `inWidgets` counts only those inside widget views (the dashboard)
  const cellSvgs = (inWidgets) => {
    let n = 0;
    const ok = (el) => !inWidgets || inWidget(el);
    for (const svg of document.querySelectorAll('.jp-OutputArea-output svg')) {
      if (svg.closest('.js-plotly-plot') || !ok(svg)) continue;
      if (svg.querySelector('g.graph') || svg.textContent.includes('c_{k-1}')) n += 1;
    }
    for (const img of document.querySelectorAll('.jp-OutputArea-output img[src^="data:image/svg+xml"]')) {
      const src = decodeURIComponent(img.getAttribute('src'));
      if (ok(img) && (src.includes('class="graph"') || src.includes('c_{k-1}'))) n += 1;
    }
    return n;
  };
  // the dashboard's Stop button ('enabled', 'disabled' or null), progress-bar labels and status line
  const stopButton = () => Array.from(document.querySelectorAll('.jp-OutputArea-output button.widget-button'))
    .find((b) => b.textContent.trim() === 'Stop');
  const stop = () => { const b = stopButton(); return b ? (b.disabled ? 'disabled' : 'enabled') : null; };
  const labels = () => Array.from(document.querySelectorAll('.widget-hprogress .widget-label'))
    .map((e) => e.textContent.trim());
  const status = () => { const e = document.querySelector('.nasviz-status'); return e ? e.innerText : null; };
  const state = () => {
    const p = panel();
    const out = {app: !!window.jupyterapp, panel: !!p, kernel: null, codeCells: 0, executed: 0, running: 0,
                 ready: false, current: false, notebooks: 0, errors: [],
                 plots: plots().length, allPlots: allPlots().length, figs: figSigs(), points: points(),
                 progress: progress(), cellSvgs: cellSvgs(false), widgetSvgs: cellSvgs(true),
                 staticFigs: staticFigs(), stop: stop(), labels: labels(), status: status(),
                 dirty: p ? p.context.model.dirty : null};
    if (!p) return out;
    const s = p.sessionContext;
    const kernel = (s && s.session && s.session.kernel) ? s.session.kernel : null;
    out.kernel = kernel ? kernel.status : null;
    out.kernelName = s ? s.kernelDisplayName : null;
    // the kernel can take code: the session is ready and its websocket connected (an idle status alone can be
    // a kernel still connecting, and Run All then clears the cells instead of running them)
    out.ready = !!(s && s.isReady && kernel && kernel.connectionStatus === 'connected');
    out.current = window.jupyterapp.shell.currentWidget === p;
    out.notebooks = Array.from(window.jupyterapp.shell.widgets('main')).filter((w) => w.content
      && w.content.widgets && w.context && /\.ipynb$/.test(w.context.path)).length;
    out.dialog = !!document.querySelector('.jp-Dialog');
    out.running = 0;
    out.runningCells = [];  // which code cells (1 = the first) show [*]
    for (const cell of p.content.widgets) {
      if (cell.model.type !== 'code') continue;
      out.codeCells += 1;
      if (cell.model.executionCount !== null) out.executed += 1;
      if (cell.model.executionState === 'running') {  // queued or running: the [*] prompt
        out.running += 1;
        out.runningCells.push(out.codeCells);
      }
      const outputs = cell.model.outputs;
      for (let i = 0; i < outputs.length; i++) {
        if (outputs.get(i).type !== 'error') continue;  // cheap: never serialise big (e.g. plotly.js) outputs
        const o = outputs.get(i).toJSON();
        out.errors.push(`${o.ename}: ${o.evalue}\n` + (o.traceback || []).join('\n').replace(/\x1b\[[0-9;]*m/g, ''));
      }
    }
    return out;
  };
  const trace = [];
  let last = '';
  const sample = () => {
    const st = state();
    const key = `${st.figs.join(' | ')}#${st.progress.join(',')}#${st.widgetSvgs}#${st.kernel}#${st.executed}`;
    if (key !== last) {
      last = key;
      trace.push({t: performance.now(), kernel: st.kernel, executed: st.executed, codeCells: st.codeCells,
                  figs: st.figs, points: st.points, progress: st.progress, widgetSvgs: st.widgetSvgs});
      if (trace.length > 5000) trace.splice(1, 1000);
    }
  };
  window.__nasviz = {path: nbPath, state, trace, sample, timer: setInterval(sample, 250)};
  return true;
}
"""


def install_probe(page, nb_path: str) -> None:
    page.evaluate(PROBE_JS, nb_path)


def state(page) -> dict:
    return page.evaluate("() => window.__nasviz.state()")


def page_trace(page) -> list[dict]:
    return page.evaluate("() => { window.__nasviz.sample(); return window.__nasviz.trace; }")


def stderr_text(page, chars: int = 6000, skip: tuple[str, ...] = ()) -> str:
    """Text of every stderr/error output the page shows (JupyterLab renders tracebacks with the stderr mime type),
    leaving out the outputs that contain one of `skip`."""
    texts = page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", "els => els.map(e => e.innerText)"
    )
    return "\n---\n".join(t for t in texts if not any(s in t for s in skip))[-chars:]


def poll_state(page, condition_js: str, timeout_s: float, what: str) -> dict | None:
    """Wait (polling in the page every 250 ms) until `condition_js` — a JS expression over `s`, the probe's state —
    holds, or the notebook shows an error output; returns the state, or None on timeout. Raises AssertionError
    with the page's error text on an error output."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    js = f"() => {{ const s = window.__nasviz.state(); return (s.errors.length || ({condition_js})) ? s : false; }}"
    try:
        st = page.wait_for_function(js, polling=250, timeout=timeout_s * 1000).json_value()
    except PlaywrightTimeout:
        return None
    if st["errors"]:
        heads = tuple(e.splitlines()[0] for e in st["errors"])
        other = stderr_text(page, skip=heads)
        raise AssertionError(f"the notebook raised while waiting for {what}:\n" + "\n\n".join(st["errors"])[-6000:]
                             + (f"\nother stderr outputs:\n{other}" if other else ""))
    return st


def wait_for_state(page, condition_js: str, timeout_s: float, what: str) -> dict:
    """`poll_state`, raising AssertionError (with the page's state and stderr outputs) on timeout."""
    st = poll_state(page, condition_js, timeout_s, what)
    if st is None:
        st = state(page)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; state: {summary(st)}\n"
                             f"stderr outputs:\n{stderr_text(page)}")
    return st


def summary(st: dict) -> str:
    """The probe's state in one line (figure signatures shortened, errors left out)."""
    keep = {k: v for k, v in st.items() if k not in ("errors", "figs")}
    keep["figs"] = [f[:80] for f in st.get("figs", [])]
    return json.dumps(keep)


_workspaces = itertools.count()


def open_notebook(page, server: LabServer, nb_path: str, timeout_s: float = 90) -> dict:
    """Open the notebook in JupyterLab, alone, and wait until its kernel is idle and connected.

    Each call opens it in a new JupyterLab workspace. In the default workspace, which the server keeps across
    pages, JupyterLab restores every notebook opened before (by earlier tests on the same server) and reconnects
    to their kernels; the tab it restores can then be the current one when Run All is chosen, and the page
    carries their widgets too. That made the third notebook of a session sometimes never run."""
    workspace = f"nasviz-test-{os.getpid()}-{next(_workspaces)}"
    page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{nb_path}", wait_until="domcontentloaded")
    page.wait_for_function("() => !!window.jupyterapp", polling=250, timeout=timeout_s * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
    install_probe(page, nb_path)
    return wait_for_state(page, "s.panel && s.kernel === 'idle' && s.ready && s.notebooks === 1", timeout_s,
                          f"{nb_path}, the only notebook open, with its kernel idle and connected")


ACTIVATE_JS = """(nbPath) => {
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.context && w.context.path === nbPath) { window.jupyterapp.shell.activateById(w.id); return w.id; }
  }
  return null;
}"""
RUN_ALL_JS = "(id) => window.jupyterapp.commands.execute('notebook:run-all-cells', {widgetId: id})"


def run_all(page, nb_path: str | None = None, confirm_s: float = 60, timeout_s: float = 120) -> str:
    """Run → Run All Cells on the notebook `nb_path` (default: the one the probe watches), as a user does; says how.

    Before: the notebook's kernel is idle and connected, no dialog is open, and the notebook is the current tab
    (the menu acts on the current one). After: waits until a cell has started (the kernel busy, a cell queued
    or run); if none has within `confirm_s`, Run All is issued again through its command, naming the notebook,
    and that is said in the returned text."""
    nb_path = nb_path or page.evaluate("() => window.__nasviz && window.__nasviz.path")
    wait_for_state(page, "s.panel && s.kernel === 'idle' && s.ready && !s.dialog", timeout_s,
                   "the notebook's kernel idle and connected, no dialog open, before Run All")
    widget_id = page.evaluate(ACTIVATE_JS, nb_path)
    wait_for_state(page, "s.current", timeout_s, f"{nb_path} to be the current tab")
    started = "s.kernel === 'busy' || s.running > 0 || s.executed > 0"
    how = _run_all_from_menu(page)
    if poll_state(page, started, confirm_s, "a cell to start") is not None:
        return how
    page.evaluate(RUN_ALL_JS, widget_id)
    wait_for_state(page, started, confirm_s, "a cell to start after Run All was issued twice")
    return f"{how}: no cell started within {confirm_s:.0f} s; issued again with notebook:run-all-cells"


def _run_all_from_menu(page) -> str:
    """Run → Run All Cells, through the menu bar (the command itself if the menu cannot be used); says which."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.locator(".lm-MenuBar-item", has_text="Run").first.click(timeout=10_000)
        page.locator("li[data-command='runmenu:run-all']").click(timeout=10_000)
        return "menu Run > Run All Cells"
    except PlaywrightError:
        page.keyboard.press("Escape")
        page.evaluate("() => window.jupyterapp.commands.execute('runmenu:run-all')")
        return "command runmenu:run-all"


def _frames(page, n: int = 2) -> None:
    """Let the layout settle: wait for `n` animation frames."""
    page.evaluate(
        "(n) => new Promise(r => { const f = (k) => k ? requestAnimationFrame(() => f(k - 1)) : r(); f(n); })", n
    )


def show_output(page, selector: str, max_height: int = 2000) -> None:
    """Collapse the left sidebar, make the window tall enough for the output holding the first `selector` (up to
    `max_height` px) and scroll that output to the top of the notebook."""
    page.evaluate("() => { const s = window.jupyterapp.shell; if (!s.leftCollapsed) s.collapseLeft(); }")
    _frames(page)
    find = """(sel) => {
      const el = document.querySelector(sel);
      if (!el) return null;
      return el.closest('.jp-OutputArea-child') || el.closest('.jp-Cell') || el;
    }"""
    need = page.evaluate(
        f"""(sel) => {{
          const area = ({find})(sel);
          const nb = document.querySelector('.jp-NotebookPanel-notebook') || document.querySelector('.jp-Notebook');
          if (!area || !nb) return 0;
          // the window height that shows the whole output: what the notebook does not get, plus the output
          return window.innerHeight - nb.getBoundingClientRect().height + area.getBoundingClientRect().height + 24;
        }}""",
        selector,
    )
    size = page.viewport_size
    if size and need > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": int(min(need, max_height))})
        _frames(page)
    page.evaluate(f"(sel) => {{ const a = ({find})(sel); if (a) a.scrollIntoView({{block: 'start'}}); }}", selector)
    # park the mouse on the status bar: no hover effects (plotly's mode bar) in the picture
    size = page.viewport_size
    if size:
        page.mouse.move(2, size["height"] - 2)
    _frames(page)


def click_stop(page, timeout_s: float = 90) -> None:
    """Click the dashboard's Stop button (an ipywidgets Button labelled 'Stop'). Playwright waits until the button can
    take the click; on a loaded 2-core machine the page, busy drawing the dashboard, took over 10 s to let it."""
    page.locator(".jp-OutputArea-output button.widget-button", has_text="Stop").first.click(timeout=timeout_s * 1000)


def save_and_shut_down(page, nb_path: str, timeout_s: float = 60) -> None:
    """Save the notebook (File > Save: outputs and all), wait until it is saved, then shut its kernel down: what
    a teacher does before handing out an executed notebook."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    wait_for_state(page, "s.dirty === false", timeout_s, "the notebook to be saved")
    shut_down(page, nb_path)


def shut_down(page, nb_path: str) -> None:
    """Shut the notebook's kernel down (no dialog), so that it holds no memory or CPU for the tests after it."""
    page.evaluate(
        """async (nbPath) => {
          for (const w of window.jupyterapp.shell.widgets('main')) {
            if (w.context && w.context.path === nbPath && w.sessionContext) await w.sessionContext.shutdown();
          }
        }""",
        nb_path,
    )
