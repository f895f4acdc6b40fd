"""report.pdf: the answer, the representations table and the warnings on page 1; figures fill their pages."""
from __future__ import annotations

import numpy as np

from usvpipe.pipeline.report_pdf import _figure_page, _front_page


def _image_share(fig) -> float:
    ax = fig.axes[0]
    x0, y0, w, h = ax.get_position().bounds
    return w * h


def test_a_wide_figure_gets_a_landscape_page_and_fills_more_of_it_than_a_portrait_page_would():
    wide = np.zeros((300, 1000, 3))
    page = _figure_page(wide, "caption", "umap/density.png")
    width_in, height_in = page.get_size_inches()
    assert width_in > height_in
    # on a portrait page this figure would fill 0.92 of the width and 0.92 * 0.3 * 8.27 / 11.69 of the height
    portrait_share = 0.92 * 0.92 * 0.3 * 8.27 / 11.69
    assert _image_share(page) > 1.5 * portrait_share


def test_a_tall_figure_stays_portrait():
    page = _figure_page(np.zeros((1000, 800, 3)), "caption", "mmd/pairwise_heatmap.png")
    width_in, height_in = page.get_size_inches()
    assert height_in > width_in and _image_share(page) > 0.5


def test_page_one_stacks_the_answer_the_table_and_the_warnings_and_cuts_long_cells():
    reason = "not tested (/a/very/long/path/store: not a syllable store (no shards/ or syllables.csv))"
    table = [["representation", "MMD²", "p", "decision"], ["VAE latents", "0.1", "0.01", "differ"],
             ["PCA of the images", "", "", reason]]
    fig = _front_page(["A and B differ: MMD² = 0.1, p = 0.01."], [("warn", "small design")], table, "usvpipe")
    texts = [t.get_text() for t in fig.texts]
    block = next(t for t in texts if t.startswith("representation"))
    assert "VAE latents" in block and reason not in block and "…" in block
    order = [next(i for i, t in enumerate(texts) if key in t) for key in ("A and B differ", "representation", "Warnings")]
    assert order == sorted(order)
    ys = [fig.texts[i].get_position()[1] for i in order]
    assert ys[0] > ys[1] > ys[2]  # top to bottom, none overlapping the next's start
