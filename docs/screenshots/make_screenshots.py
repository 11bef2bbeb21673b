"""One screenshot per notebook, as a student sees it: the executed notebook open in JupyterLab (file browser open,
a 1280 x 860 window) in headless Chromium, scrolled to its main figure; saved as docs/screenshots/NN_name.png.

    python docs/screenshots/make_screenshots.py                     # execute at smoke, time it, then screenshot
    python docs/screenshots/make_screenshots.py --executed DIR      # screenshot notebooks executed before

Executing is `python -m benchmarks notebooks --quick --threads 1 --set keep=DIR` (the smoke preset, small
from-scratch budgets): its JSON line, the notebooks' timings, is appended to
benchmarks/results/notebooks_smoke_threads1.jsonl. 07 is executed and shot only where the mini space's
ground-truth table is installed. The browser is the system's /usr/bin/chromium driven by Playwright (never
`playwright install`); JupyterLab and everything it writes live in a temporary folder. PNGs are reduced to a
256-colour palette, so each stays well under 300 KB.

03_explore.png (the live dashboard's genealogy and inspector, the search paused) needs a running kernel, so the
browser test that drives it takes it: `NASVIZ_SCREENSHOT=docs/screenshots/03_explore.png python -m pytest
tests/test_browser_explore.py` (it uses `shrink` below).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # browser_support: JupyterLab by PID, Chromium, in-page probes

import browser_support as bs  # noqa: E402

HERE = Path(__file__).resolve().parent
TIMINGS = REPO / "benchmarks" / "results" / "notebooks_smoke_threads1.jsonl"
VIEWPORT = (1280, 860)
FOCUS = {
    "01_search_space.ipynb": "01-08",  # a random cell drawn next to DARTS_V2's text
    "02_supernet.ipynb": "02-09",  # which operations the warm-up trained (the heatmap centred on 1/7)
    "03_search.ipynb": "03-20",  # the static figures a handed-out notebook keeps
    "04_train_from_scratch.ipynb": "04-07",  # mean ± sd over three training seeds
    "05_ablation.ipynb": "05-3b",  # the committed three-seed comparison of the methods
    "06_compare_runs.ipynb": "06-07",  # final best fitness, mean ± sd per method
    "07_ground_truth.ipynb": "5930968c",  # a search drawn against the ground truth
}
"""The id of the cell each screenshot starts at (scrolled to the top of the notebook)."""
MAX_BYTES = 300_000
CLOSE_JS = """async (nbPath) => {
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.context && w.context.path === nbPath) { await w.sessionContext.shutdown(); w.dispose(); }
  }
}"""
"""Shut a notebook's kernel down and close its tab (no dialog)."""


def execute(folder: Path) -> dict:
    """Run the notebooks benchmark at smoke, keeping the executed notebooks in `folder`; returns its JSON."""
    cmd = [sys.executable, "-m", "benchmarks", "notebooks", "--quick", "--threads", "1", "--set",
           f"keep={json.dumps(str(folder))}", "--out", str(TIMINGS)]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode != 0:
        raise SystemExit(f"the notebooks benchmark failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scroll_to(page, nb_path: str, cell_id: str) -> None:
    """Scroll the notebook so that cell `cell_id` is at the top, and wait until its outputs are drawn."""
    found = page.evaluate(
        """([nbPath, id]) => {
          for (const w of window.jupyterapp.shell.widgets('main')) {
            if (!w.context || w.context.path !== nbPath) continue;
            const cells = w.content.widgets;
            const k = cells.findIndex((c) => c.model.id === id);
            if (k < 0) return false;
            w.content.activeCellIndex = k;
            cells[k].node.scrollIntoView({block: 'start'});
            return true;
          }
          return false;
        }""", [nb_path, cell_id])
    if not found:
        raise SystemExit(f"{nb_path} has no cell with id {cell_id!r} (see FOCUS in {Path(__file__).name})")
    # plotly draws asynchronously: wait until every figure in view has its SVG (or nothing is left to draw)
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.jp-OutputArea-output')).filter((el) => {
              const r = el.getBoundingClientRect();
              return r.bottom > 0 && r.top < window.innerHeight
                && el.matches('[data-mime-type="application/vnd.plotly.v1+json"]')
                && !el.querySelector('.main-svg');
            }).length === 0""", polling=250, timeout=120_000)
    page.mouse.move(2, VIEWPORT[1] - 2)  # no hover effects (plotly's mode bar) in the picture
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    time.sleep(0.5)


def shrink(png: Path) -> int:
    """Reduce `png` to a palette image (fewer colours until it is under MAX_BYTES); returns its size."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
    for colors in (256, 128, 64):
        rgb.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(png, optimize=True)
        if png.stat().st_size < MAX_BYTES:
            break
    return png.stat().st_size


def open_alone(page, lab, name: str, k: int) -> None:
    """Open notebook `name` in a workspace of its own (JupyterLab would restore the tabs opened before it), and
    wait until its kernel is idle."""
    page.goto(f"{lab.url}/lab/workspaces/shot-{k}/tree/{name}", wait_until="domcontentloaded")
    page.wait_for_function("() => !!window.jupyterapp", polling=250, timeout=300_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=300_000)
    bs.install_probe(page, name)
    bs.wait_for_state(page, "s.panel && s.kernel === 'idle'", 300, "the kernel to be idle")


def trust(folder: Path, names: list[str], data_dir: Path) -> None:
    """Sign the executed notebooks with a notary of `data_dir` (the server's JUPYTER_DATA_DIR): JupyterLab then
    shows their outputs as the teacher who ran them sees them (SVG cell drawings included), nothing elsewhere."""
    import nbformat
    from nbformat.sign import NotebookNotary

    data_dir.mkdir(parents=True, exist_ok=True)
    notary = NotebookNotary(data_dir=str(data_dir))
    for name in names:
        nb = nbformat.read(folder / name, as_version=4)
        notary.sign(nb)


def screenshots(executed: Path, out: Path) -> dict[str, int]:
    names = [n for n in FOCUS if (executed / n).is_file()]
    if not names:
        raise SystemExit(f"no executed notebook of the series in {executed}")
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="nasviz-shots-") as tmp:
        data_dir = Path(tmp) / "data"
        trust(executed, names, data_dir)
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
               "JUPYTER_DATA_DIR": str(data_dir)}
        with bs.jupyter_lab(executed, Path(tmp) / "lab", startup_timeout=300, env=env) as lab:
            with bs.chromium_page(VIEWPORT) as page:
                for k, name in enumerate(names):
                    open_alone(page, lab, name, k)
                    page.evaluate("() => { const s = window.jupyterapp.shell; if (s.leftCollapsed) s.expandLeft(); }")
                    scroll_to(page, name, FOCUS[name])
                    target = out / name.replace(".ipynb", ".png")
                    page.screenshot(path=str(target))
                    sizes[target.name] = shrink(target)
                    shown = target.relative_to(REPO) if target.is_relative_to(REPO) else target  # --out elsewhere
                    print(f"{shown}: {sizes[target.name]:,} bytes", flush=True)
                    page.evaluate(CLOSE_JS, name)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executed", type=Path, help="a folder of notebooks executed before (skip executing)")
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go (default: docs/screenshots)")
    args = parser.parse_args()
    if not bs.CHROMIUM.exists():
        raise SystemExit(f"{bs.CHROMIUM} is missing (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.executed is None:
        folder = Path(tempfile.mkdtemp(prefix="nasviz-executed-"))
        result = execute(folder)
        print(json.dumps({"seconds": result["results"]["seconds"], "skipped": result["results"]["skipped"],
                          "failed": result["results"]["failed"], "load": result["machine"].get("loadavg_before")}))
        args.executed = folder
    screenshots(args.executed, args.out)


if __name__ == "__main__":
    main()
