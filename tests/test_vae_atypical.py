"""Syllables whose latents lie far outside the prior are flagged, never dropped (usvpipe.vae.atypical)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from usvpipe.vae.atypical import ATYPICAL_COLUMN, ATYPICAL_PRIOR_SD, atypical_latents, describe_atypical


def test_a_syllable_is_atypical_when_any_dimension_lies_beyond_the_threshold():
    z = np.random.default_rng(0).normal(0, 1, (500, 32)).clip(-4, 4)
    assert not atypical_latents(z).any()
    z[7, 30] = -(ATYPICAL_PRIOR_SD + 0.1)
    z[9, 0] = ATYPICAL_PRIOR_SD  # on the threshold: not beyond it
    assert np.flatnonzero(atypical_latents(z)).tolist() == [7]
    with pytest.raises(ValueError, match="2-d"):
        atypical_latents(z[0])


def test_the_sentence_names_the_recording_most_of_whose_syllables_are_flagged():
    recordings = ["a"] * 50 + ["b"] * 6 + ["c"] * 20
    flagged = np.zeros(76, bool)
    flagged[[0, 1, 50, 51, 52, 53, 60]] = True  # a: 2 of 50, b: 4 of 6, c: 1 of 20
    line = describe_atypical(recordings, flagged)
    assert line.startswith("7 of 76 syllables (in 3 recording(s); most: b, 4 of its 6)")
    assert ATYPICAL_COLUMN in line and "fix:" in line
    assert describe_atypical(recordings, np.zeros(76, bool)) == ""


def test_encode_marks_atypical_syllables_and_info_and_the_report_repeat_it(tmp_path, monkeypatch, caplog):
    pytest.importorskip("torch")
    from usvpipe.pipeline import config_from_mapping
    from usvpipe.pipeline.info import describe_directory
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome
    from usvpipe.store import merge_store, write_shard
    from usvpipe.synth import render_call_images, sample_calls
    from usvpipe.vae import TrainParams, encode, train
    from usvpipe.vae import atypical

    for r in range(2):
        calls = sample_calls(30, seed=r)
        onset = calls["duration_s"].cumsum().to_numpy()
        write_shard(tmp_path / "store", f"rec{r}.wav", render_call_images(calls, shape=(32, 32)), onset,
                    onset + calls["duration_s"].to_numpy(), animal=f"m{r}", group="AB"[r])
    merge_store(tmp_path / "store")
    params = TrainParams(epochs=2, min_steps=0, latent_dim=4, channels=(4, 8), hidden=(16,), figure_every=0)
    res = train(tmp_path / "store", tmp_path / "vae", params, device="cpu", progress=False)
    run = tmp_path / "run"
    run.mkdir()
    # a model this briefly trained may give no latent 5 s.d. out; a threshold just below the two largest
    # |z| flags a known pair instead, so the plumbing is checked against an answer known in advance
    plain = encode(res.model_path, tmp_path / "store", run / "latents.csv", device="cpu", readout=False)
    z = plain.filter(regex=r"^z\d+$").to_numpy()
    threshold = np.sort(np.abs(z).max(1))[-3]  # the two syllables farthest out lie beyond it
    assert plain[ATYPICAL_COLUMN].sum() == atypical_latents(z).sum()
    monkeypatch.setattr(atypical, "atypical_latents", lambda latents: np.abs(latents).max(1) > threshold)
    with caplog.at_level(logging.WARNING, logger="usvpipe"):
        table = encode(res.model_path, tmp_path / "store", run / "latents.csv", device="cpu", readout=False)
    expected = np.abs(z).max(1) > threshold
    assert expected.sum() == 2 and table[ATYPICAL_COLUMN].tolist() == expected.astype(int).tolist()
    assert len(table) == 60  # flagged, not dropped
    meta = json.loads((run / "latents.json").read_text())
    assert meta["n_atypical"] == 2 and meta["atypical_warning"].startswith("2 of 60 syllables")
    assert any("2 of 60 syllables" in rec.getMessage() for rec in caplog.records)
    described = [line for line in describe_directory(run / "latents.csv") if "atypical" in line or "prior s.d." in line]
    assert len(described) == 1 and "warning: 2 of 60 syllables" in described[0]
    (run / "run_manifest.json").write_text(json.dumps({"usvpipe_version": "x", "wall_s": 1.0, "stages": []}))
    assert any(line.startswith("  warning: 2 of 60 syllables") for line in describe_directory(run))
    stages = [StageOutcome("encode", "ran", 1.0, "")]
    write_report(run, config_from_mapping({"run": {"output": str(run)}}), stages, PipelineResult(output=run, stages=stages))
    html = (run / "report.html").read_text()
    start = html.index('class="warnings"')
    assert "2 of 60 syllables" in html[start: html.index("</ul>", start)]
