"""What the report says beside the MMD answer: which way, the VAE against PCA, numbers that mislead."""
from __future__ import annotations

import json

import pandas as pd

from usvpipe.pipeline import config_from_mapping
from usvpipe.pipeline.answer import Effect, health_line
from usvpipe.pipeline.caveats import (direction_sentence, health_against_pca, negative_interval_note,
                                      short_recordings_warning, synthetic_note)

from report_helpers import _mmd


def _test(measure, diff, p_holm, reject=True):
    return {"measure": measure, "label": measure, "difference": diff, "p_holm": p_holm, "reject": reject}


def test_the_direction_names_what_differs_with_its_size_and_test():
    meas = {"groups": ["A", "B"], "tests": [_test("duration_ms", 12.04, 0.004), _test("mean_freq_khz", 4.1, 0.012),
                                            _test("bandwidth_khz", -3.0, 0.3, reject=False),
                                            _test("calls_per_min", -20.0, 0.03)]}
    s = direction_sentence(meas)
    assert s.startswith("B's calls are longer (+12 ms, p = 0.004) and higher (+4.1 kHz mean frequency, p = 0.012) than A's")
    assert "B's animals call less often (−20 calls/min, p = 0.03) than A's" in s
    assert "narrower" not in s  # not significant: no claim


def test_nothing_directional_when_nothing_differs_or_no_two_groups():
    assert direction_sentence({"groups": ["A", "B"], "tests": [_test("duration_ms", 12.0, 0.3, reject=False)]}) == ""
    assert direction_sentence({"groups": ["A"], "tests": None}) == ""
    assert direction_sentence(None) == ""


def test_a_vae_that_reconstructs_worse_than_pca_is_said_so_and_pcas_answer_leads():
    m = _mmd(latent_health={"passed": True, "recon_r2": 0.224, "pca_r2": 0.388, "held_out": True},
             second_opinion=[{"representation": "VAE latents", "statistic": 0.02, "p_value": 0.01, "reject": True},
                             {"representation": "PCA of the images", "statistic": 0.011, "p_value": 0.2, "reject": False}])
    s = health_against_pca(m)
    assert "worse than PCA of the same dimension (reconstruction R² 0.224 against 0.388)" in s
    assert "lead with the PCA representation, whose animal-level test says no evidence that the groups differ" in s
    assert "p = 0.2" in s and "the VAE reconstructs worse than PCA" in health_line(m)
    better = _mmd(latent_health={"passed": True, "recon_r2": 0.5, "pca_r2": 0.388})
    assert health_against_pca(better) == "" and "worse" not in health_line(better)


def test_synthetic_inputs_are_named_so(tmp_path):
    assert synthetic_note(tmp_path) == ""
    (tmp_path / "synth.json").write_text("{}")
    assert "These data are synthetic" in synthetic_note(tmp_path)
    assert synthetic_note("") == ""


def test_calls_per_minute_over_short_clips_are_flagged_and_over_sessions_not():
    clips = pd.DataFrame({"recorded_min": [0.5, 0.6], "n_recordings": [10, 12], "calls_per_min": [1196.0, 900.0]})
    w = short_recordings_warning(clips)
    assert "median 3 s per recording" in w and "calls per minute of clip" in w
    sessions = clips.assign(recorded_min=[20.0, 30.0], n_recordings=[2, 3])
    assert short_recordings_warning(sessions) == ""
    assert short_recordings_warning(clips.drop(columns="recorded_min")) == ""


def test_an_interval_below_zero_is_explained():
    note = negative_interval_note(Effect(0.001, (-0.004, 0.01), ""))
    assert "below zero (-0.004 to 0.01)" in note and "unbiased estimate can" in note
    assert negative_interval_note(Effect(0.02, (0.01, 0.03), "")) == "" and negative_interval_note(None) == ""


def test_the_report_carries_direction_health_synthetic_and_flags_on_its_first_page(tmp_path, monkeypatch):
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    inp, out = tmp_path / "in", tmp_path / "run"
    inp.mkdir()
    (inp / "synth.json").write_text("{}")
    (out / "measures").mkdir(parents=True)
    (out / "measures" / "measures.json").write_text(json.dumps(
        {"groups": ["A", "B"], "alpha": 0.05, "notes": [], "tests": [_test("duration_ms", 12.0, 0.004)]}))
    pd.DataFrame({"group": ["A", "B"], "animal": ["a", "b"], "n_recordings": [40, 40], "recorded_min": [1.0, 1.2],
                  "calls_per_min": [1196.0, 1000.0]}).to_csv(out / "measures" / "measures_per_animal.csv", index=False)
    m = _mmd(groups=["A", "B"], n_animals={"A": 6, "B": 6}, n_syllables={"A": 100, "B": 100},
             latent_health={"passed": True, "recon_r2": 0.224, "pca_r2": 0.388, "held_out": True},
             second_opinion=[{"representation": "VAE latents", "statistic": 0.02, "p_value": 0.002, "reject": True},
                             {"representation": "PCA of the images", "statistic": 0.01, "p_value": 0.2, "reject": False},
                             {"representation": "classical measures", "skipped": "no such columns"}])
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    cfg = config_from_mapping({"run": {"output": str(out), "input": str(inp)}})
    write_report(out, cfg, stages, PipelineResult(output=out, stages=stages, mmd=m))
    html = (out / "report.html").read_text()
    box = html[: html.index("Does the difference hold")]
    assert "B&#x27;s calls are longer (+12 ms, p = 0.004) than A&#x27;s" in box
    assert "worse than PCA of the same dimension" in box and "These data are synthetic" in box
    assert "calls per minute of clip" in box and "Training health: VAE health check passed" in box
    table = html[html.index("Does the difference hold"):html.index("</table>", html.index("Does the difference hold"))]
    assert table.index("PCA of the images") < table.index("VAE latents")  # the one that holds up leads
    assert "not tested (no such columns)" in table
    # page 1 of the PDF is drawn from the same lines
    from usvpipe.pipeline import report_pdf as report_mod

    seen = {}
    orig = report_mod.pdf_pages

    def spy(front, warnings, figures, **kw):
        seen["front"], seen["warnings"], seen["table"] = list(front), list(warnings), list(kw.get("table", []))
        return orig(front, warnings, figures, **kw)

    monkeypatch.setattr(report_mod, "pdf_pages", spy)
    write_report(out, cfg, stages, PipelineResult(output=out, stages=stages, mmd=m))
    front = " ".join(seen["front"])
    for words in ("differ", "B's calls are longer", "Training health", "These data are synthetic"):
        assert words in front
    assert [r[0] for r in seen["table"]] == ["representation", "PCA of the images", "VAE latents", "classical measures"]
    assert any("calls per minute of clip" in w for _, w in seen["warnings"])


def test_a_vae_within_two_hundredths_of_pca_is_no_better_rather_than_worse():
    m = _mmd(latent_health={"passed": True, "recon_r2": 0.227, "pca_r2": 0.233, "held_out": True})
    assert "no better than PCA of the same dimension" in health_against_pca(m)
    assert "the VAE reconstructs no better than PCA" in health_line(m)
