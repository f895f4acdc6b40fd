"""The report's PDF twin ``report.pdf``: page 1 the answer in words, the representations table and the
warnings; then one figure per page with its caption, on a landscape page when the figure is wide, so it
fills the page. Written with matplotlib's ``PdfPages`` (Figure objects, no pyplot, no other dependency).
"""
from __future__ import annotations

from pathlib import Path

from .. import _io
from .._version import __version__

#: A4 portrait, inches
_PAGE_IN = (8.27, 11.69)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.fill(part, width) for part in str(text).split("\n"))


def write_pdf(path: Path, front: list, warnings: list, figures: list, *, subtitle: str = "", table: list = ()) -> Path:
    """The report's PDF twin: page 1 the answer in words and the warnings, then one figure per page.

    ``front``: the answer's lines (sentence, effect size, classical measures); ``warnings``:
    ``(level, text)`` pairs as in the HTML's box; ``figures``: ``(png, caption, relative path)``
    in report order; ``table``: the representations table's rows, header first. Written atomically with matplotlib's ``PdfPages`` (no display, no pyplot).
    """
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    with _io.atomic_path(path) as tmp:
        with PdfPages(tmp, metadata={"Title": "usvpipe report", "Creator": f"usvpipe {__version__}"}) as pdf:
            for fig in pdf_pages(front, warnings, figures, subtitle=subtitle, table=table):  # Figure objects: no pyplot state
                pdf.savefig(fig)
    return path


def pdf_pages(front: list, warnings: list, figures: list, *, subtitle: str = "", table: list = ()):
    """Yield the PDF's pages as matplotlib figures (A4; landscape for wide figures); :func:`write_pdf` saves them."""
    import matplotlib.image as mpimg

    yield _front_page(front, warnings, table, subtitle)
    for png, caption, rel in figures:
        yield _figure_page(mpimg.imread(str(png)), caption, rel)


def _text_bottom(fig, text) -> float:
    """Where ``text`` ends on ``fig`` (figure fraction), for stacking the next block below it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    return text.get_window_extent(renderer).transformed(fig.transFigure.inverted()).y0


def _cell(v, width: int = 48) -> str:
    """A table cell for the PDF's monospace table: a long reason (a skipped representation's) cut to fit the page."""
    v = str(v)
    return v if len(v) <= width else v[: width - 1] + "…"


def _front_page(front: list, warnings: list, table: list, subtitle: str):
    """Page 1: the answer's lines, the representations table (monospace, aligned), the warnings."""
    from matplotlib.figure import Figure

    order = {"stop": 0, "warn": 1, "note": 2}
    label = {"stop": "STOP", "warn": "Warning", "note": "Note"}
    fig = Figure(figsize=_PAGE_IN)
    fig.text(0.08, 0.95, "usvpipe report", fontsize=20, weight="bold", va="top")
    fig.text(0.08, 0.915, subtitle, fontsize=8, color="#666", va="top")
    fig.text(0.08, 0.88, "The answer", fontsize=14, weight="bold", va="top")
    body = "\n\n".join(_wrap(line, 88) for line in front) or "(no answer: the run produced no test)"
    last = fig.text(0.08, 0.85, body, fontsize=10, va="top", linespacing=1.35)
    if table:
        table = [[_cell(v) for v in r] for r in table]
        widths = [max(len(r[k]) for r in table) for k in range(len(table[0]))]
        lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
        top = _text_bottom(fig, last) - 0.025
        fig.text(0.08, top, "Does the difference hold across representations? (animal-level test)", fontsize=10,
                 weight="bold", va="top")
        last = fig.text(0.08, top - 0.022, "\n".join(lines), fontsize=8.5, family="monospace", va="top", linespacing=1.3)
    if warnings:
        ws = sorted(warnings, key=lambda w: order.get(w[0], 3))
        box = "\n".join(_wrap(f"{label.get(w[0], w[0])}: {w[1]}", 92) for w in ws)
        bottom = _text_bottom(fig, last)
        fig.text(0.08, bottom - 0.04, "Warnings", fontsize=12, weight="bold", va="top", color="#a35f00")
        fig.text(0.08, bottom - 0.075, box, fontsize=9, va="top", linespacing=1.3,
                 bbox={"boxstyle": "round,pad=0.6", "facecolor": "#fff8e6", "edgecolor": "#E69F00"})
    return fig


def _figure_page(img, caption: str, rel: str):
    """One figure filling an A4 page: landscape for a wide figure, portrait for a tall one; caption below."""
    from matplotlib.figure import Figure

    h, w = img.shape[:2]
    page = _PAGE_IN if h / w >= 0.75 else _PAGE_IN[::-1]  # a wide figure on a portrait page would fill its top third
    fig = Figure(figsize=page)
    caption_h = 0.09 if page[0] < page[1] else 0.13  # the caption's share of the page height
    top, room_h, room_w = 0.96, 0.96 - caption_h - 0.04, 0.92
    width = room_w
    height = width * (h / w) * (page[0] / page[1])
    if height > room_h:
        height = room_h
        width = height * (w / h) * (page[1] / page[0])
    ax = fig.add_axes([(1 - width) / 2, top - height, width, height])
    ax.imshow(img, interpolation="antialiased")
    ax.axis("off")
    wrap = 95 if page[0] < page[1] else 140
    fig.text(0.06, top - height - 0.02, _wrap(caption, wrap) + f"\n({rel})", fontsize=9.5, va="top", linespacing=1.35)
    return fig
