"""Tests of `usvpipe mmd` (usvpipe/cli/mmd.py)."""
from __future__ import annotations

import json

import numpy as np


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
