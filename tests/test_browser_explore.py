"""Exploring a live search in a real browser: JupyterLab + headless Chromium (see tests/browser_support.py).

A smoke-preset copy of notebooks/03_search.ipynb runs from Run All with the dashboard. With the later cells
queued, **Pause** must hold the search: the dashboard's generation counter and history.jsonl stop where it paused.
A click on a node of the genealogy must show that individual's cells in the inspector. **Step** must advance the
counter by exactly one, **Continue** must run the search to the end, and the run must end with the same result
as an uninterrupted run with the same seed (run here in a separate process, one thread as in the kernel).
Set NASVIZ_SCREENSHOT=path to keep a screenshot of the explore view (genealogy and inspector; the PNG of
docs/screenshots/03_explore.png).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import browser_support as bs
import pytest

from nasviz.runs.rundir import individual

pytestmark = pytest.mark.browser

MAIN = "03_search.ipynb"
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NASVIZ_HEADLESS": None}
GENERATIONS = 12
"""Enough that the search is still running when the browser has drawn the dashboard (15-25 s behind the kernel
on a loaded machine) and Pause is clicked."""
PARAMETERS = {"preset": '"smoke"', "live": "True", "seed": "0", "overrides": json.dumps({"generations": GENERATIONS})}
HOLD_S = 6
"""How long the test watches a paused search for a move that must not come (a wait that should time out)."""

PAUSE_STATE = """() => {
  const label = document.querySelector('.nasviz-pause');
  const counter = Array.from(document.querySelectorAll('.widget-hprogress .widget-label'))
    .map((e) => e.textContent.trim()).map((t) => /^generations (\\d+)\\//.exec(t)).find((m) => m);
  const button = (name) => Array.from(document.querySelectorAll('.jp-OutputArea-output button.widget-button'))
    .find((b) => b.textContent.trim() === name);
  const enabled = (name) => { const b = button(name); return b ? !b.disabled : null; };
  return {label: label ? label.innerText : null, generation: counter ? Number(counter[1]) : -1,
          pause: enabled('Pause'), step: enabled('Step'), resume: enabled('Continue')};
}"""

GENEALOGY_NODE = """() => {
  const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find((g) => g.layout && g.layout.title && String(g.layout.title.text || '').startsWith('Genealogy'));
  if (!gd) return null;
  gd.scrollIntoView({block: 'center'});
  const k = gd.data.findIndex((t) => t.name === 'individuals');
  if (k < 0 || !gd.data[k].customdata || !gd.data[k].customdata.length) return null;
  // the trace's group of SVG points: d3 binds each group to its trace's calcdata
  const group = Array.from(gd.querySelectorAll('.scatterlayer .trace'))
    .find((g) => g.__data__ && g.__data__[0] && g.__data__[0].trace && g.__data__[0].trace.index === k);
  const point = group ? group.querySelectorAll('path.point')[0] : null;
  if (!point) return null;
  const r = point.getBoundingClientRect();
  if (!r.width) return null;
  return {x: r.x + r.width / 2, y: r.y + r.height / 2, id: gd.data[k].customdata[0][0],
          genotype: gd.data[k].customdata[0][1]};
}"""

PLOTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map((gd) => [
  gd.layout && gd.layout.title ? String(gd.layout.title.text || gd.layout.title).slice(0, 40) : null,
  (gd.data || []).map((t) => `${t.name}:${t.x ? t.x.length : '-'}`).join(',')])"""
"""Each plotly graph of the page: its title and its traces' names and sizes (for failure reports)."""

INSPECTOR = """() => {
  const el = document.querySelector('.nasviz-inspector');
  if (!el) return null;
  const svgs = Array.from(el.querySelectorAll('svg')).filter((s) => !s.closest('.js-plotly-plot')
    && (s.querySelector('g.graph') || s.textContent.includes('c_{k-1}'))).length;
  const genotype = el.querySelector('textarea');
  return {text: el.innerText, cells: svgs, genotype: genotype ? genotype.value : null};
}"""


def _skip_without_browser() -> None:
    if not bs.CHROMIUM.exists():
        pytest.skip(f"{bs.CHROMIUM} is missing (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-root")


@pytest.fixture(scope="module")
def lab(lab_root, tmp_path_factory):
    _skip_without_browser()
    with bs.jupyter_lab(lab_root, tmp_path_factory.mktemp("jupyter"), env=KERNEL_ENV) as server:
        yield server


def _wait(page, js_condition: str, timeout_s: float, what: str) -> dict:
    """Poll PAUSE_STATE in the page until `js_condition` (over `p`) holds; fail on a notebook error."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    js = (f"() => {{ const p = ({PAUSE_STATE})(); const s = window.__nasviz.state(); "
          f"return s.errors.length ? {{errors: s.errors}} : (({js_condition}) ? p : false); }}")
    try:
        found = page.wait_for_function(js, polling=250, timeout=timeout_s * 1000).json_value()
    except PlaywrightTimeout:
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}: "
                             f"{page.evaluate(PAUSE_STATE)}\n{bs.stderr_text(page)}") from None
    assert "errors" not in found, "\n".join(found["errors"])[-4000:]
    return found


def _click(page, name: str) -> None:
    """Click the dashboard's button `name`. Its effect is waited for by the caller (a state of the page): the
    click does not wait for "scheduled navigations", which a page busy drawing widgets may not settle in time."""
    page.locator(".jp-OutputArea-output button.widget-button", has_text=name).first.click(timeout=30_000,
                                                                                        no_wait_after=True)


def _stays(page, js_condition: str, hold_s: float) -> dict:
    """Watch the page for `hold_s` seconds for a state in which `js_condition` (over `p`) is false: fail at once if
    one comes; return the state after the watch."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        moved = page.wait_for_function(f"() => {{ const p = ({PAUSE_STATE})(); return ({js_condition}) ? false : p; }}",
                                       polling=250, timeout=hold_s * 1000).json_value()
    except PlaywrightTimeout:
        return page.evaluate(PAUSE_STATE)
    raise AssertionError(f"the paused search moved: {moved}")


def _screenshot(page, target: Path) -> None:
    """The explore view (genealogy and inspector) at the top of the window, saved as a small palette PNG."""
    page.evaluate("() => { const s = window.jupyterapp.shell; if (!s.leftCollapsed) s.collapseLeft(); }")
    page.evaluate("() => document.querySelector('.nasviz-explorer').scrollIntoView({block: 'start'})")
    page.mouse.move(2, page.viewport_size["height"] - 2)  # no hover effects (plotly's mode bar) in the picture
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    target.parent.mkdir(parents=True, exist_ok=True)
    shot = target.with_suffix(".raw.png")
    page.screenshot(path=str(shot))
    sys.path.insert(0, str(bs.REPO / "docs" / "screenshots"))
    from make_screenshots import shrink

    shrink(shot)
    shutil.move(shot, target)


def _rows(run_dir: Path) -> int:
    path = run_dir / "history.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _uninterrupted(run_dir: Path) -> dict:
    """The same search, never paused, in a separate process with one thread (as the kernel runs it)."""
    code = ("import json, sys; from nasviz import Search, SearchConfig; "
            f"print(json.dumps(Search(SearchConfig.from_preset('smoke', seed=0, generations={GENERATIONS}), "
            "sys.argv[1]).run()))")
    path = os.pathsep.join(filter(None, [str(bs.REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, env=env,
                          timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(1200)
def test_pause_step_continue_and_inspect_in_jupyterlab(lab, lab_root, tmp_path):
    run_dir = tmp_path / "run"
    bs.smoke_copy(bs.REPO / "notebooks" / MAIN, lab_root / MAIN, {**PARAMETERS, "out": json.dumps(str(run_dir))})
    t0 = time.monotonic()
    with bs.chromium_page((1400, 1000)) as page:
        try:
            bs.open_notebook(page, lab, MAIN, timeout_s=120)
            bs.run_all(page)
            _wait(page, "p.pause === true && p.generation >= 1", 300, "generation 1 on the dashboard, Pause enabled")
            _click(page, "Pause")
            paused = _wait(page, "p.label && /paused after generation/.test(p.label) && p.step === true", 300,
                           "the search to pause")
            g = paused["generation"]
            assert f"paused after generation {g} " in paused["label"], paused
            queued = bs.state(page)
            assert queued["codeCells"] > queued["executed"], "Pause was not tested under Run All: nothing queued"
            rows = _rows(run_dir)
            held = _stays(page, f"p.generation === {g} && /paused after generation {g} /.test(p.label)", HOLD_S)
            assert held["generation"] == g and _rows(run_dir) == rows == g + 1, (held, rows, g)

            # inspect: click a node of the genealogy (stable while paused)
            # the genealogy's view is the last FigureWidget to arrive in the page (each ships plotly.js): wait for it
            node = page.wait_for_function(GENEALOGY_NODE, polling=500, timeout=240_000).json_value()
            page.mouse.move(node["x"], node["y"])
            page.mouse.click(node["x"], node["y"])
            page.wait_for_function(f"() => {{ const i = ({INSPECTOR})(); return i && i.cells >= 1 && "
                                   f"i.text.includes('Individual {node['id']} ') ? i : false; }}",
                                   polling=250, timeout=60_000)
            inspected = page.evaluate(INSPECTOR)
            if os.environ.get("NASVIZ_SCREENSHOT"):
                _screenshot(page, Path(os.environ["NASVIZ_SCREENSHOT"]))
            assert _rows(run_dir) == g + 1 and page.evaluate(PAUSE_STATE)["generation"] == g  # still paused

            _click(page, "Step")
            stepped = _wait(page, f"p.label && /paused after generation {g + 1} /.test(p.label)", 300,
                            "one more generation, then the pause")
            assert stepped["generation"] == g + 1 and _rows(run_dir) == g + 2, stepped

            _click(page, "Continue")
            final = bs.wait_for_state(page, "s.kernel === 'idle' && s.codeCells > 0 && s.executed === s.codeCells",
                                      600, "every cell to finish after Continue")
            ended = page.evaluate(PAUSE_STATE)
        except BaseException:
            page.screenshot(path=str(tmp_path / "failure.png"))
            print(f"\nfailure screenshot: {tmp_path / 'failure.png'}\nplotly views: {page.evaluate(PLOTS)}\n"
                  "browser console:\n" + "\n".join(page.console_messages_seen[-30:])
                  + f"\njupyter log:\n{lab.log_tail(3000)}")
            raise
    result = json.loads((run_dir / "result.json").read_text())
    plain = _uninterrupted(tmp_path / "plain")
    print(f"\npaused after generation {g}, stepped to {g + 1}; inspected {node['id']}; "
          f"{time.monotonic() - t0:.0f} s; final: {bs.summary(final)}")
    assert result["finished"] is True and result["generation"] == GENERATIONS
    assert ended["generation"] == GENERATIONS and ended["label"] == "", ended
    assert inspected["cells"] >= 1 and f"Individual {node['id']} " in inspected["text"]
    assert inspected["genotype"] == node["genotype"] == individual(run_dir, node["id"])["genotype"]
    for key in ("best_genotype", "best_fitness", "top_k", "evaluations"):
        assert result[key] == plain[key], key
