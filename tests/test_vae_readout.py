"""The acoustic read-out check: do the latents carry duration and frequency, compared with PCA?"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from usvpipe.pipeline.answer import answer, readout_rows
from usvpipe.vae.readout import READOUT_MEASURES, MeasureReadout, folds_phrase, measure_readout, readout_warning

from report_helpers import _mmd


def _measures_and_images(n=240, seed=0):
    """Measures, and images whose pixels are linear in them (so a PCA of the images carries them)."""
    rng = np.random.default_rng(seed)
    y = pd.DataFrame({"duration_s": rng.uniform(0.01, 0.1, n), "mean_freq_hz": rng.uniform(40e3, 90e3, n),
                      "max_freq_hz": rng.uniform(50e3, 100e3, n)})
    standard = ((y - y.mean()) / y.std()).to_numpy()
    images = standard @ rng.normal(size=(3, 64)) + 0.05 * rng.normal(size=(n, 64))
    return y, standard, images.reshape(n, 8, 8)


def test_latents_that_hold_the_measures_pass_and_noise_latents_are_flagged():
    y, standard, images = _measures_and_images()
    rng = np.random.default_rng(1)
    good = np.hstack([standard, rng.normal(size=(len(y), 5))]) + 0.05 * rng.normal(size=(len(y), 8))
    rows = measure_readout(good, y, images)
    assert [r.measure for r in rows] == list(READOUT_MEASURES)
    assert all(r.latent_ridge_r2 > 0.9 and r.pca_ridge_r2 > 0.9 and not r.weaker_than_pca for r in rows)
    assert readout_warning(rows) == ""

    noise = rng.normal(size=(len(y), 8))
    weak = measure_readout(noise, y, images)
    assert all(r.weaker_than_pca and r.latent_best < 0.2 for r in weak)
    text = readout_warning([r.to_dict() for r in weak])  # the sidecar's form
    assert all(m in text for m in READOUT_MEASURES) and "than a PCA of the same images" in text
    # a malformed stored row is skipped, not a crash of the report
    assert readout_warning([{"measure": "duration_s"}, weak[0].to_dict()]).count("R²") == 1


def test_neighbours_use_raw_distances_so_dead_dimensions_do_not_drown_them():
    """UMAP and the MMD see raw Euclidean latents: 13 almost constant dimensions must not weigh like 3 live ones."""
    y, standard, images = _measures_and_images(n=300)
    rng = np.random.default_rng(2)
    z = np.hstack([standard, 0.01 * rng.normal(size=(len(y), 13))])
    rows = {r.measure: r for r in measure_readout(z, y, images)}
    assert all(r.latent_knn_r2 > 0.9 for r in rows.values())


def test_missing_values_drop_rows_not_the_measure_and_bad_latents_give_no_check():
    y, standard, images = _measures_and_images()
    y.loc[:9, "max_freq_hz"] = np.nan
    y["mean_freq_hz"] = y["mean_freq_hz"].astype(object)
    y.loc[3, "mean_freq_hz"] = "n/a"  # a text cell: read as missing
    rows = {r.measure: r for r in measure_readout(standard, y, images)}
    assert rows["max_freq_hz"].n_syllables == len(y) - 10 and rows["mean_freq_hz"].n_syllables == len(y) - 1
    assert rows["duration_s"].n_syllables == len(y)
    bad = standard.copy()
    bad[0, 0] = np.nan  # a diverged model: no read-out, and no exception
    assert measure_readout(bad, y, images) == []


def test_a_curved_measure_counts_through_the_neighbours():
    """A measure laid out along a circle: the ridge cannot read it, the neighbours can, and no warning."""
    y, standard, images = _measures_and_images(n=400)
    angle = 1.8 * np.pi * (standard[:, 1] - standard[:, 1].min()) / np.ptp(standard[:, 1])  # most of a turn
    z = np.column_stack([standard[:, 0], np.cos(angle), np.sin(angle), standard[:, 2]])
    row = {r.measure: r for r in measure_readout(z, y, images)}["mean_freq_hz"]
    assert row.latent_knn_r2 > 0.9 and row.latent_knn_r2 > row.latent_ridge_r2 + 0.05
    assert not row.weaker_than_pca


def test_with_enough_recordings_the_folds_hold_out_whole_recordings():
    """Latents that only tell the recordings apart read a measure well from random folds, not from held-out recordings."""
    rng = np.random.default_rng(3)
    n_rec, per = 12, 25
    recording = np.repeat([f"r{i}" for i in range(n_rec)], per)
    offset = rng.normal(size=n_rec)  # each recording's own level of the measure (its set-up, its animal)
    y = pd.DataFrame({"mean_freq_hz": 60e3 + 10e3 * (np.repeat(offset, per) + 0.3 * rng.normal(size=n_rec * per))})
    codes = np.repeat(rng.normal(size=(n_rec, 6)), per, axis=0)  # a code per recording, nothing within it
    images = (np.repeat(offset, per)[:, None] * rng.normal(size=(1, 64)) + 0.5 * rng.normal(size=(len(y), 64)))
    random = {r.measure: r for r in measure_readout(codes, y, images.reshape(-1, 8, 8))}["mean_freq_hz"]
    held_out = {r.measure: r for r in measure_readout(codes, y, images.reshape(-1, 8, 8),
                                                      groups=recording)}["mean_freq_hz"]
    assert random.folds == "random" and held_out.folds == "recording"
    assert random.latent_knn_r2 > 0.8  # neighbours within the same recording know its level
    assert held_out.latent_knn_r2 < 0.3 and held_out.latent_ridge_r2 < 0.3
    assert MeasureReadout.from_dict(held_out.to_dict()).folds == "recording"
    assert folds_phrase([held_out.to_dict()]) == "5-fold, recordings held out" and folds_phrase([random]) == "5-fold"
    # fewer recordings than folds: random folds, and the rows say so
    few = measure_readout(codes[:100], y.iloc[:100], images[:100].reshape(-1, 8, 8), groups=recording[:100])
    assert [r.folds for r in few] == ["random"]
    # one recording with nearly every syllable: holding it out would leave the neighbours too few
    lopsided = np.array(["big"] * (len(y) - 12) + [f"r{i % 6}" for i in range(12)])  # 7 recordings
    rows = measure_readout(codes, y, images.reshape(-1, 8, 8), groups=lopsided)
    assert [r.folds for r in rows] == ["random"] and np.isfinite(rows[0].latent_knn_r2)


def test_too_few_syllables_or_missing_measures_give_no_check():
    y, standard, images = _measures_and_images(n=30)
    assert measure_readout(standard, y, images) == []
    y, standard, images = _measures_and_images()
    rows = measure_readout(standard, y[["duration_s"]].assign(max_freq_hz=1.0), images)  # constant: skipped
    assert [r.measure for r in rows] == ["duration_s"]


WEAK = {"measure": "mean_freq_hz", "latent_ridge_r2": 0.14, "latent_knn_r2": 0.2, "pca_ridge_r2": 0.45,
        "pca_knn_r2": 0.3, "n_syllables": 250, "weaker_than_pca": True}
FINE = dict(WEAK, measure="duration_s", latent_ridge_r2=0.75, weaker_than_pca=False)


def test_the_answer_warns_when_the_latents_carry_less_than_pca_and_the_report_tabulates_it():
    a = answer(_mmd(latent_readout=[FINE, WEAK]))
    assert a.decision == "differ"
    warned = [t for sev, t in a.warnings if sev == "warn" and "carry less of mean_freq_hz (R² 0.20 vs 0.45)" in t]
    assert len(warned) == 1 and "duration_s" not in warned[0]
    assert not any("carry less" in t for _, t in answer(_mmd(latent_readout=[FINE])).warnings)
    # a failed health check already stops the answer: no second warning about the same latents
    stopped = answer(_mmd(latent_health={"passed": False, "fix": "more steps"}, latent_readout=[WEAK]))
    assert not any("carry less" in t for _, t in stopped.warnings)
    rows = readout_rows(_mmd(latent_readout=[FINE, WEAK]))
    assert rows[1] == {"measure": "mean_freq_hz", "latents": "0.14 / 0.20", "pca": "0.45 / 0.30",
                       "verdict": "latents carry less", "syllables": "250"}


def test_encode_records_the_readout_and_the_mmd_result_carries_it(tmp_path):
    pytest.importorskip("torch")
    from usvpipe.mmd import MMDParams, mmd_test
    from usvpipe.store import merge_store, write_shard
    from usvpipe.synth import render_call_images, sample_calls
    from usvpipe.vae import TrainParams, encode, train

    for r in range(6):  # 6 animals, 3 per group, 40 calls each
        calls = sample_calls(40, seed=r)
        onset = calls["duration_s"].cumsum().to_numpy()
        measures = {"duration_s": calls["duration_s"].to_numpy(),
                    "mean_freq_hz": ((calls["start_freq_hz"] + calls["end_freq_hz"]) / 2).to_numpy(),
                    "max_freq_hz": np.maximum(calls["start_freq_hz"], calls["end_freq_hz"]).to_numpy()}
        write_shard(tmp_path / "store", f"rec{r}.wav", render_call_images(calls, shape=(32, 32)), onset,
                    onset + calls["duration_s"].to_numpy(), animal=f"m{r}", group="AB"[r % 2], columns=measures)
    merge_store(tmp_path / "store")
    # every dimension learnt (the default reads duration's width off the image by a rule, learnt or not)
    params = TrainParams(epochs=2, min_steps=0, latent_dim=4, channels=(4, 8), hidden=(16,), figure_every=0,
                         axis_encoder="network")
    res = train(tmp_path / "store", tmp_path / "vae", params, device="cpu", progress=False)
    encode(res.model_path, tmp_path / "store", tmp_path / "latents.csv", device="cpu")
    meta = json.loads((tmp_path / "latents.json").read_text())
    assert [r["measure"] for r in meta["readout"]] == list(READOUT_MEASURES)
    assert all(r["n_syllables"] == 240 and np.isfinite(r["pca_ridge_r2"]) for r in meta["readout"])
    assert all(r["folds"] == "recording" for r in meta["readout"])  # 6 recordings: each fold holds some out
    # 26 optimiser steps learn little: the check says the latents carry less than PCA
    assert "carry less of duration_s" in meta["readout_warning"]
    result = mmd_test(tmp_path / "latents.csv", group_col="group", params=MMDParams(unit="syllable", permutations=99))
    assert result.latent_readout == meta["readout"]
    assert result.to_dict()["latent_readout"] == meta["readout"]
    none = encode(res.model_path, tmp_path / "store", tmp_path / "plain.csv", device="cpu", readout=False)
    assert len(none) == 240 and json.loads((tmp_path / "plain.json").read_text())["readout"] == []
    # the CPU profile's pooled images: the PCA sees them as the network does
    from usvpipe.store import open_store
    from usvpipe.vae.encoding import _readout

    z = none.filter(regex=r"^z\d+$").to_numpy()
    seen = _readout(z, open_store(tmp_path / "store"), 2, tmp_path / "x.csv")
    assert [r["measure"] for r in seen] == list(READOUT_MEASURES)
    assert [r["latent_ridge_r2"] for r in seen] == [r["latent_ridge_r2"] for r in meta["readout"]]  # same latents
    assert [r["pca_ridge_r2"] for r in seen] != [r["pca_ridge_r2"] for r in meta["readout"]]  # other images


def test_usvpipe_info_repeats_the_readout_warning_of_a_run(tmp_path):
    from usvpipe.pipeline.info import describe_directory

    manifest = {"usvpipe_version": "x", "wall_s": 1.0, "stages": [],
                "answer": {"interpretable": True, "latent_readout": [FINE, WEAK]}}
    (tmp_path / "run_manifest.json").write_text(json.dumps(manifest))
    warned = [line for line in describe_directory(tmp_path) if line.startswith("  warning:")]
    assert len(warned) == 1 and "carry less of mean_freq_hz" in warned[0]
    manifest["answer"]["latent_readout"] = [FINE]
    (tmp_path / "run_manifest.json").write_text(json.dumps(manifest))
    assert not any("warning" in line for line in describe_directory(tmp_path))


def test_the_report_tabulates_the_readout_and_boxes_its_warning(tmp_path):
    from usvpipe.pipeline import config_from_mapping
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    out = tmp_path / "run"
    out.mkdir()
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    res = PipelineResult(output=out, stages=stages, mmd=_mmd(latent_readout=[FINE, WEAK]))
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages, res)
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    start = html.index('class="warnings"')
    box = html[start: html.index("</ul>", start)]
    assert "carry less of mean_freq_hz (R² 0.20 vs 0.45)" in box
    assert "<td>mean_freq_hz</td><td>0.14 / 0.20</td><td>0.45 / 0.30</td><td>latents carry less</td>" in html
    assert "| duration_s | 0.75 / 0.20 | 0.45 / 0.30 |  | 250 |" in md


def test_usvpipe_mmd_prints_the_readout_and_its_warning(tmp_path):
    from click.testing import CliRunner

    from usvpipe.artifacts import Latents
    from usvpipe.cli import main

    rng = np.random.default_rng(4)
    table = pd.DataFrame({"id": [f"s{i}" for i in range(80)], "group": ["A"] * 40 + ["B"] * 40,
                          **{f"z{d}": rng.normal(size=80) for d in range(3)}})
    passed = {"passed": True, "active_units": 3, "latent_dim": 3, "recon_r2": 0.5, "pca_r2": 0.5}
    Latents(table).write(tmp_path / "latents.csv", {"model_health": passed, "model_complete": True,
                                                    "readout": [FINE, WEAK]})
    out = CliRunner().invoke(main, ["mmd", str(tmp_path / "latents.csv"), "--unit", "syllable", "--permutations", "99",
                                    "--no-figures", "--no-second-opinion", "--out", str(tmp_path / "mmd")])
    assert out.exit_code == 0, out.output
    assert "latent read-out" in out.output and "mean_freq_hz 0.14 / 0.20 vs 0.45 / 0.30" in out.output
    assert "warning: the latents carry less of mean_freq_hz" in out.output
    assert json.loads((tmp_path / "mmd" / "report.json").read_text())["latent_readout"][1]["measure"] == "mean_freq_hz"


def test_the_run_table_line_names_each_measure_and_shouts_when_the_latents_carry_less():
    from usvpipe.vae.readout import describe_readout

    assert describe_readout([]) == "" and describe_readout(None) == ""
    fine = describe_readout([FINE])
    assert fine == "read-out R² (latents vs PCA): duration_s 0.75 vs 0.45"
    assert describe_readout([FINE, WEAK]).endswith("mean_freq_hz 0.20 vs 0.45; LATENTS CARRY LESS: see the report")
    held_out = describe_readout([dict(FINE, folds="recording")])
    assert held_out == "read-out R² (latents vs PCA, recordings held out): duration_s 0.75 vs 0.45"


def test_a_run_without_the_mmd_stage_still_reports_the_latents_health_and_readout(tmp_path):
    from usvpipe.artifacts import Latents
    from usvpipe.pipeline import config_from_mapping
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    out = tmp_path / "run"
    out.mkdir()
    health = {"passed": True, "active_units": 3, "latent_dim": 3, "recon_r2": 0.5, "pca_r2": 0.4, "n_syllables": 20,
              "held_out": True}
    (out / "run_manifest.json").write_text(json.dumps({"latent_health": health}))
    table = pd.DataFrame({"id": ["a", "b"], "z0": [0.0, 1.0]})
    Latents(table).write(out / "latents.csv", {"readout": [FINE, WEAK]})
    stages = [StageOutcome("encode", "ran", 1.0, "")]
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages, PipelineResult(output=out, stages=stages))
    html = (out / "report.html").read_text()
    assert "VAE health check passed" in html and "<td>mean_freq_hz</td><td>0.14 / 0.20</td>" in html
    start = html.index('class="warnings"')
    assert "carry less of mean_freq_hz" in html[start: html.index("</ul>", start)]
