"""Tests of `usvpipe mmd` (usvpipe/cli/mmd.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest


from mmd_helpers import _nested


def test_cli(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    rng = np.random.default_rng(22)
    path = tmp_path / "latents.csv"
    _nested(rng, animals=(4, 4), per_animal=6, shift=2.0, groups=("deaf", "hearing")).to_csv(path, index=False)
    out = tmp_path / "mmd"
    runner = CliRunner()
    r = runner.invoke(main, ["mmd", str(path), "--a", "deaf", "--b", "hearing", "--permutations", "99",
                             "--bandwidth", "agg", "--seed", "1", "--out", str(out), "--no-figures"])
    assert r.exit_code == 0, r.output
    assert "exact, all 70 splits" in r.output and "p = " in r.output
    report = json.loads((out / "report.json").read_text())
    assert report["unit"] == "animal" and len(report["bandwidths"]) == 5 and report["params"]["seed"] == 1
    r = runner.invoke(main, ["mmd", str(path), "--group-col", "cohort", "--out", str(out)])
    assert r.exit_code == 2
    assert "latents.csv: no group column 'cohort'" in r.output
    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text('[mmd]\nunit = "syllable"\npermutations = 50\n')
    r = runner.invoke(main, ["mmd", str(path), "--config", str(cfg), "--out", str(out), "--no-figures"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "report.json").read_text())["n_permutations"] == 50


def test_the_default_test_is_mmdagg_and_bandwidth_median_gives_the_single_bandwidth_test(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    rng = np.random.default_rng(23)
    path = tmp_path / "latents.csv"
    _nested(rng, animals=(4, 4), per_animal=6, shift=1.0).to_csv(path, index=False)
    common = [str(path), "--permutations", "99", "--no-figures", "--no-second-opinion"]
    r = CliRunner().invoke(main, ["mmd", *common, "--out", str(tmp_path / "agg")])
    assert r.exit_code == 0, r.output
    assert "p = " in r.output and "aggregated over 5 bandwidths" in r.output
    assert "each bandwidth, p uncorrected: h = " in r.output and "MMDAgg" in r.output
    agg = json.loads((tmp_path / "agg" / "report.json").read_text())
    assert agg["params"]["bandwidth"] == "agg" and len(agg["bandwidths"]) == 5
    r = CliRunner().invoke(main, ["mmd", *common, "--bandwidth", "median", "--out", str(tmp_path / "median")])
    assert r.exit_code == 0, r.output
    assert "bandwidth median heuristic: " in r.output and "aggregated" not in r.output
    med = json.loads((tmp_path / "median" / "report.json").read_text())
    assert med["bandwidths"] == [agg["primary_bandwidth"]] and med["bandwidth_rule"] == "median heuristic"
    assert med["statistic"] == pytest.approx(agg["statistic"], rel=1e-12)
    assert med["p_value"] == pytest.approx(agg["p_values_per_bandwidth"][2], rel=1e-12)
