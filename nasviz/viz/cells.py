"""Drawings of DARTS cells: DOT text (pure), rendering with Graphviz's `dot`, and a plotly fallback.

The DARTS convention: inputs c_{k-2} and c_{k-1}, intermediate nodes 0-3, output c_{k}; every node's two
input edges are labelled with their operation; the edges from the nodes to c_{k} (concatenation) are not.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

from nasviz.errors import NasvizError
from nasviz.runs.rundir import atomic_write_bytes
from nasviz.space.genotypes import CELL_TYPES, NODES, Genotype
from nasviz.viz.common import CELL_TITLES, OP_COLORS, GenotypeLike, as_genotype

FORMATS = ("svg", "png", "pdf")
"""Formats `render` accepts (`dot -T...`)."""

INSTALL_HINT = (
    "Graphviz's `dot` program is not on PATH; install it (apt-get install graphviz, conda install graphviz "
    "or brew install graphviz) to draw cells as SVG"
)

_INPUTS = ("c_{k-2}", "c_{k-1}")
_OUTPUT = "c_{k}"
_LABELS = {"c_{k-2}": "<c<SUB>k-2</SUB>>", "c_{k-1}": "<c<SUB>k-1</SUB>>", "c_{k}": "<c<SUB>k</SUB>>"}
"""Graphviz HTML labels: the DARTS names drawn with subscripts (node ids keep the plain text)."""
_FILL = {"input": "darkseagreen2", "node": "lightblue", "output": "palegoldenrod"}


class GraphvizMissing(NasvizError, RuntimeError):
    """Graphviz's `dot` program is not installed (or not on PATH)."""


def dot_path() -> str | None:
    """Where `dot` is on PATH now, or None."""
    return shutil.which("dot")


def _check_cell_type(cell_type: str) -> None:
    if cell_type not in CELL_TYPES:
        raise ValueError(f"cell_type={cell_type!r} is not allowed; allowed: normal, reduce (or None for both)")


def _node_name(index: int, nodes: int = NODES) -> str:
    """Name of state `index` of a cell of `nodes` nodes: 0/1 are the inputs, 2..nodes+1 the intermediate nodes
    0..nodes-1, nodes+2 the output."""
    return _INPUTS[index] if index < 2 else _OUTPUT if index == 2 + nodes else str(index - 2)


def _cell_lines(genotype: GenotypeLike, cell_type: str, prefix: str = "") -> list[str]:
    """DOT statements for one cell; node ids get `prefix` (labels stay DARTS's names)."""
    _check_cell_type(cell_type)
    edges = as_genotype(genotype).cell(cell_type)
    nodes = len(edges) // 2

    def node(name: str, kind: str) -> str:
        label = f", label={_LABELS[name]}" if name in _LABELS else (f', label="{name}"' if prefix else "")
        return f'"{prefix}{name}" [fillcolor={_FILL[kind]}{label}];'

    lines = [node(name, "input") for name in _INPUTS]
    lines += [node(str(j), "node") for j in range(nodes)]
    lines.append(node(_OUTPUT, "output"))
    for j in range(nodes):
        for op, inp in edges[2 * j : 2 * j + 2]:
            color = OP_COLORS[op]
            lines.append(f'"{prefix}{_node_name(inp, nodes)}" -> "{prefix}{j}" [label="{op}", color="{color}", '
                         f'fontcolor="{color}"];')
    lines += [f'"{prefix}{j}" -> "{prefix}{_OUTPUT}" [color=gray];' for j in range(nodes)]
    return lines


_HEADER = [
    'graph [rankdir=LR, fontname="Helvetica", fontsize=16, nodesep=0.3, ranksep=0.6];',
    'node [style="filled,rounded", shape=rect, align=center, fontname="Helvetica", fontsize=14, height=0.4, '
    "width=0.4, penwidth=2];",
    'edge [fontname="Helvetica", fontsize=12, penwidth=1.5];',
]


def cell_dot(genotype: GenotypeLike, cell_type: str) -> str:
    """DOT text of one cell ('normal' or 'reduce') in the DARTS convention."""
    _check_cell_type(cell_type)
    body = _HEADER + [f'label="{CELL_TITLES[cell_type]}"; labelloc=t;'] + _cell_lines(genotype, cell_type)
    return f'digraph "{cell_type}" {{\n' + "\n".join("  " + line for line in body) + "\n}\n"


def cells_dot(genotype: GenotypeLike) -> str:
    """DOT text of both cells: two clusters, the normal cell above the reduction cell (about 800 px wide: it fits
    a notebook's width, where side by side took 1,500-2,000 px and hid the reduction cell behind a scroll)."""
    lines = list(_HEADER)
    for cell_type in CELL_TYPES:
        inner = [f'label="{CELL_TITLES[cell_type]}"; style=rounded; color="#cccccc";']
        inner += _cell_lines(genotype, cell_type, prefix=f"{cell_type}:")
        lines.append(f"subgraph cluster_{cell_type} {{")
        lines += ["  " + line for line in inner]
        lines.append("}")
    # the clusters share the left-to-right ranks, so they stack; an invisible edge that does not constrain the
    # ranks keeps the normal cell on top
    lines.append(f'"normal:{_OUTPUT}" -> "reduce:{_INPUTS[0]}" [style=invis, constraint=false];')
    return "digraph cells {\n" + "\n".join("  " + line for line in lines) + "\n}\n"


def dot_text(genotype: GenotypeLike, cell_type: str | None = None) -> str:
    """`cell_dot` for one cell type, `cells_dot` for None (or 'both')."""
    return cells_dot(genotype) if cell_type in (None, "both") else cell_dot(genotype, cell_type)


def render(genotype: GenotypeLike, fmt: str = "svg", cell_type: str | None = None) -> bytes:
    """Render one cell (or both, for `cell_type=None`) with Graphviz's `dot`; raises `GraphvizMissing`."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r} is not allowed; allowed: {', '.join(FORMATS)}")
    text = dot_text(genotype, cell_type)
    dot = dot_path()
    if dot is None:
        raise GraphvizMissing(INSTALL_HINT)
    proc = subprocess.run([dot, f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"dot -T{fmt} failed (exit {proc.returncode}): {message[0] if message else 'no output'}")
    return proc.stdout


def svg_markup(genotype: GenotypeLike, cell_type: str | None = None) -> str:
    """The SVG of `render` without its XML prolog, ready to embed in HTML."""
    svg = render(genotype, "svg", cell_type).decode()
    return svg[svg.find("<svg"):]


def write_cells(genotype: GenotypeLike, prefix: str | Path) -> list[Path]:
    """Write `{prefix}_normal.svg` and `{prefix}_reduce.svg`; returns their paths.

    Without `dot` it warns once and writes `{prefix}_normal.dot` / `{prefix}_reduce.dot` instead (render
    them later with `dot -Tsvg`), so a finished search never fails for lack of Graphviz.
    """
    prefix = Path(prefix)
    genotype = as_genotype(genotype)
    have_dot = dot_path() is not None
    if not have_dot:
        warnings.warn(INSTALL_HINT + "; wrote .dot files instead", stacklevel=2)
    paths = []
    for cell_type in CELL_TYPES:
        if have_dot:
            path, data = prefix.with_name(f"{prefix.name}_{cell_type}.svg"), render(genotype, "svg", cell_type)
        else:
            path, data = prefix.with_name(f"{prefix.name}_{cell_type}.dot"), cell_dot(genotype, cell_type).encode()
        atomic_write_bytes(path, data)
        paths.append(path)
    return paths


def show_cells(genotype: GenotypeLike, cell_type: str | None = None):
    """Something a notebook displays: an IPython SVG with `dot`; otherwise a one-line warning and `cell_figure`."""
    if dot_path() is not None:
        from IPython.display import SVG

        return SVG(data=render(genotype, "svg", cell_type))
    warnings.warn(INSTALL_HINT + "; drawing with plotly instead", stacklevel=2)
    return cell_figure(genotype, cell_type)


# --- plotly fallback ----------------------------------------------------------------------------------------
def _positions(nodes: int = NODES) -> dict[int, tuple[float, float]]:
    """Layout of a cell's states (0, 1: inputs; 2..nodes+1: the nodes; nodes+2: output): nodes zigzag left to
    right."""
    pos = {0: (0.0, 0.8), 1: (0.0, -0.8)}
    for j in range(nodes):
        pos[j + 2] = (1.4 + 1.2 * j, 0.9 if j % 2 == 0 else -0.9)
    pos[nodes + 2] = (1.4 + 1.2 * nodes + 0.4, 0.0)
    return pos


def _curve(p0: tuple[float, float], p1: tuple[float, float], t: float) -> tuple[float, float]:
    """Point `t` of a quadratic curve from p0 to p1, bent away from the middle of the drawing."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    bend = 0.15 * (1 if y0 + y1 >= 0 else -1)
    cx, cy = (x0 + x1) / 2 - bend * dy, (y0 + y1) / 2 + bend * abs(dx)
    return ((1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t**2 * x1, (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t**2 * y1)


def cell_figure(genotype: GenotypeLike, cell_type: str | None = "normal"):
    """A plotly drawing of one cell (or both side by side for None/'both') for when `dot` is missing.

    Traces per cell: one curve trace per operation (named after it), 'concat' (nodes to c_{k}), 'op labels'
    (the 8 edge labels) and 'nodes'. Arrow heads are layout annotations.
    """
    from plotly.subplots import make_subplots

    types = CELL_TYPES if cell_type in (None, "both") else (cell_type,)
    for t in types:
        _check_cell_type(t)
    g = as_genotype(genotype)
    fig = make_subplots(rows=1, cols=len(types), subplot_titles=[CELL_TITLES[t] for t in types],
                        horizontal_spacing=0.04)
    pos, out = _positions(g.n_nodes), g.n_nodes + 2
    shown: set[str] = set()
    for col, t in enumerate(types, start=1):
        _draw_cell(fig, g, t, col, pos, shown)
    fig.update_xaxes(visible=False, range=[-0.5, pos[out][0] + 0.5])
    fig.update_yaxes(visible=False, range=[-1.6, 1.6])
    fig.update_layout(template="plotly_white", height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": -0.02, "font": {"size": 10}}, uirevision="nasviz")
    return fig


def _draw_cell(fig, g: Genotype, cell_type: str, col: int, pos: dict[int, tuple[float, float]],
               shown: set[str]) -> None:
    """Add one cell's traces (its operations' curves, 'concat', 'op labels', 'nodes') and arrow heads to column
    `col` of `fig`; an operation already in `shown` gets no second legend entry."""
    import plotly.graph_objects as go

    nodes = g.n_nodes
    out, steps = nodes + 2, [k / 16 for k in range(17)]
    axis = "" if col == 1 else str(col)
    segments: dict[str, tuple[list, list]] = {}
    label_x, label_y, labels, label_colors, arrows = [], [], [], [], []
    for k, (op, inp) in enumerate(g.cell(cell_type)):
        p0, p1 = pos[inp], pos[k // 2 + 2]
        xs, ys = segments.setdefault(op, ([], []))
        points = [_curve(p0, p1, s) for s in steps]
        xs += [x for x, _ in points] + [None]
        ys += [y for _, y in points] + [None]
        lx, ly = _curve(p0, p1, 0.5)
        label_x.append(lx)
        label_y.append(ly)
        labels.append(op)
        label_colors.append(OP_COLORS[op])
        arrows.append((_curve(p0, p1, 0.8), _curve(p0, p1, 0.86), OP_COLORS[op]))
    for op, (xs, ys) in segments.items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=op, legendgroup=op, showlegend=op not in shown,
                                 line={"color": OP_COLORS[op], "width": 2}, hoverinfo="skip"), row=1, col=col)
        shown.add(op)
    cx, cy = [], []
    for j in range(nodes):
        p0 = pos[j + 2]
        cx += [p0[0], pos[out][0], None]
        cy += [p0[1], pos[out][1], None]
        arrows.append((_lerp(p0, pos[out], 0.78), _lerp(p0, pos[out], 0.84), "#bbbbbb"))
    fig.add_trace(go.Scatter(x=cx, y=cy, mode="lines", name="concat", showlegend=False, hoverinfo="skip",
                             line={"color": "#cccccc", "width": 1.5}), row=1, col=col)
    fig.add_trace(go.Scatter(x=label_x, y=label_y, mode="text", text=labels, name="op labels", showlegend=False,
                             textfont={"color": label_colors, "size": 10}, hoverinfo="text"), row=1, col=col)
    fig.add_trace(go.Scatter(x=[pos[i][0] for i in range(out + 1)], y=[pos[i][1] for i in range(out + 1)],
                             mode="markers+text",
                             text=[_plotly_label(_node_name(i, nodes)) for i in range(out + 1)],
                             name="nodes", showlegend=False, textfont={"size": 11}, hoverinfo="text",
                             marker={"size": 40, "symbol": "square", "color": ["#c1ffc1"] * 2
                                     + ["#add8e6"] * nodes + ["#eee8aa"], "line": {"width": 1.5, "color": "#333"}}),
                  row=1, col=col)
    for (ax, ay), (x, y), color in arrows:
        fig.add_annotation(x=x, y=y, ax=ax, ay=ay, xref=f"x{axis}", yref=f"y{axis}", axref=f"x{axis}",
                           ayref=f"y{axis}", showarrow=True, arrowhead=2, arrowsize=1.3, arrowwidth=1.5,
                           arrowcolor=color, text="")


def _plotly_label(name: str) -> str:
    """c_{k-2} -> c<sub>k-2</sub> (plotly's text markup)."""
    return f"c<sub>{name[3:-1]}</sub>" if name.startswith("c_{") else name


def _lerp(p0: tuple[float, float], p1: tuple[float, float], t: float) -> tuple[float, float]:
    return (p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1]))
