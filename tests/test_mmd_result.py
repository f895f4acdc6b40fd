"""Tests of usvpipe/mmd/result.py (MMDResult.save: report.json, CSV tables, the figures of figures.py)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from usvpipe.mmd import MMDParams, mmd_test

from mmd_helpers import FAST, _nested


def test_save_writes_report_and_figures(tmp_path):
    rng = np.random.default_rng(21)
    df = _nested(rng, animals=(4, 4), per_animal=6, shift=1.0)
    res = mmd_test(df, params=MMDParams(**{**FAST, "syllable_view": True}))
    paths = res.save(tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in ("statistic", "p_value", "n_permutations", "bandwidths", "unit", "pairwise_mmd2", "version", "params",
                "syllable_view", "min_attainable_p"):
        assert key in report
    assert report["unit"] == "animal" and report["p_value"] == pytest.approx(res.p_value)
    for name in ("null_distribution.png", "pairwise_heatmap.png", "effect_size.png", "pairwise_mmd2.csv",
                 "per_animal.csv", "null_distribution.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert set(paths) >= {"report", "pairwise", "null_figure", "heatmap_figure", "effect_figure"}
    pair = pd.read_csv(tmp_path / "out" / "pairwise_mmd2.csv", index_col=0)
    assert pair.shape == (8, 8)
