"""The report: the answer in words first, effect size, warnings, self-contained HTML, stage history."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from usvpipe.pipeline import config_from_mapping, run_pipeline
from usvpipe.pipeline.answer import answer, group_effect, health_line, second_opinion_rows

from report_helpers import _mmd


def test_the_answer_names_groups_animals_syllables_design_and_decision():
    a = answer(_mmd())
    assert a.decision == "differ"
    assert a.sentence.startswith("deaf (6 animals, 12,034 syllables) and hearing (6 animals, 11,210 syllables) differ")
    assert "p = 0.002" in a.sentence and "all 924 splits" in a.sentence and "α = 0.05" in a.sentence


def test_an_aggregated_test_says_its_mmd2_is_the_median_bandwidths_and_its_p_the_aggregated_one(tmp_path):
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    agg = _mmd(bandwidths=[0.5, 1.0, 2.0, 4.0, 8.0], primary_bandwidth=2.0, params={"agg_exponents": [-2, -1, 0, 1, 2]},
               statistics_per_bandwidth=[0.001, 0.004, 0.0123, 0.02, 0.01], bandwidth_rule="agg (MMDAgg: …)",
               p_values_per_bandwidth=[0.3, 0.01, 0.0022, 0.0011, 0.04])
    sentence = answer(agg).sentence
    assert "MMD² = 0.0123 at the median bandwidth, p = 0.002 aggregated over 5 bandwidths (MMDAgg)" in sentence
    assert "at the middle bandwidth" in answer({**agg, "params": {"agg_exponents": [-1, 1]}}).sentence
    assert "MMD² = 0.0123, p = 0.002," in answer(_mmd(bandwidths=[2.0])).sentence  # one bandwidth: as before
    out = tmp_path / "run"
    out.mkdir()
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    for mmd, shown in ((agg, True), (_mmd(bandwidths=[2.0], primary_bandwidth=2.0), False)):
        write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages,
                     PipelineResult(output=out, stages=stages, mmd=mmd))
        html = (out / "report.html").read_text()
        assert ("MMD² (observed, at the median bandwidth)" in html) is shown
        assert ("p-value (aggregated over the 5 bandwidths)" in html) is shown
        assert ("h = 4: MMD² 0.02, p 0.0011" in html) is shown


def test_no_evidence_says_the_smallest_attainable_p_and_warns_of_a_small_design():
    a = answer(_mmd(reject=False, p_value=0.31, n_permutations=70, n_splits=70, min_attainable_p=2 / 70,
                    n_animals={"deaf": 4, "hearing": 4}))
    assert a.decision == "no evidence" and "No evidence" in a.sentence
    assert "with 4 vs 4 animals the smallest attainable p is 0.0286" in a.sentence
    assert any(sev == "warn" and "small design" in text for sev, text in a.warnings)


def test_uninformative_latents_forbid_claiming_a_difference():
    a = answer(_mmd(interpretable=False, do_not_interpret="latents not informative — do not interpret (fix: train longer)"))
    assert a.decision == "not interpretable" and " differ:" not in a.sentence
    assert a.warnings[0] == ("stop", "latents not informative — do not interpret (fix: train longer)")
    # the health record alone (failed) also stops the claim
    b = answer(_mmd(latent_health={"passed": False, "fix": "more epochs"}))
    assert b.decision == "not interpretable" and "more epochs" in b.warnings[0][1]


def test_unbalanced_groups_are_warned_about():
    a = answer(_mmd(n_animals={"deaf": 3, "hearing": 9}, n_syllables={"deaf": 100, "hearing": 5000}))
    texts = " ".join(t for _, t in a.warnings)
    assert "3 vs 9 animals" in texts and "100 vs 5,000 syllables" in texts


def test_fields_the_lead_adds_render_nothing_when_absent_and_rows_when_present():
    assert second_opinion_rows(_mmd()) == [] and health_line(_mmd()) == ""
    m = _mmd(second_opinion=[{"representation": "classical measures", "statistic": 0.5, "p_value": 0.01,
                              "unit": "animal", "reject": True, "n_features": 9}],
             latent_health={"passed": True, "active_units": 7, "latent_dim": 32, "recon_r2": 0.61, "pca_r2": 0.55,
                            "n_syllables": 481, "held_out": True})
    assert second_opinion_rows(m)[0]["decision"] == "differ"
    assert "7 of 32 latent units active" in health_line(m) and "held-out reconstruction R² 0.61" in health_line(m)


def _latents(rng, n_animals=4, n=30, shift=0.0, dim=4):
    rows = []
    for g, s in (("A", 0.0), ("B", shift)):
        for k in range(n_animals):
            z = rng.normal(size=(n, dim)) + s + rng.normal(0, 0.1, dim)
            for i in range(n):
                rows.append({"id": f"{g}{k}#{i}", "recording": f"{g}/{g}{k}/r.wav", "animal": f"{g}{k}", "group": g,
                             **{f"z{j}": z[i, j] for j in range(dim)}})
    return pd.DataFrame(rows)


def test_the_effect_size_is_the_tests_statistic_with_an_interval_over_animals(tmp_path):
    from usvpipe.mmd import MMDParams, mmd_test

    lat = _latents(np.random.default_rng(0), shift=1.0)
    lat.to_csv(tmp_path / "latents.csv", index=False)
    res = mmd_test(tmp_path / "latents.csv", group_col="group", params=MMDParams(dtype="float64"))
    e = group_effect(res.pairwise, res.per_animal, "A", "B")
    # the same quantity estimated slightly differently (0.03 % apart here, 0.006 % on the demo)
    assert e.value == pytest.approx(res.statistic, rel=1e-2)
    assert e.ci95[0] < e.value < e.ci95[1]


def _mmd_only_config(out):
    return config_from_mapping({"run": {"output": str(out), "stages": ["mmd"], "group_a": "A", "group_b": "B"}})


def test_report_is_self_contained_and_its_stage_history_survives_a_rerun(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    _latents(np.random.default_rng(1), shift=1.5).to_csv(out / "latents.csv", index=False)
    first = run_pipeline(_mmd_only_config(out), progress=False)
    err = capsys.readouterr().err
    assert "usvpipe: mmd: testing whether the groups differ" in err  # announced before it runs
    html = (out / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)  # nothing to lose in an e-mail
    assert html.index("The answer") < html.index("Stages")
    assert "A (4 animals, 120 syllables) and B (4 animals, 120 syllables) differ" in html
    md = (out / "report.md").read_text()
    assert "](mmd/null_distribution.png)" in md and "Effect size: MMD²" in md
    assert first.stages[-1].status == "ran"

    again = run_pipeline(_mmd_only_config(out), progress=False, quiet=True)
    assert capsys.readouterr().err == ""  # --quiet: no announcements
    mmd = [s for s in again.stages if s.name == "mmd"][0]
    assert mmd.status.startswith("skipped") and mmd.detail.startswith("last ran ")
    assert "| mmd | skipped (up to date) | 0.0 | last ran" in (out / "report.md").read_text()


def test_many_animals_get_distinct_categorical_colours():
    from usvpipe.viz import category_colors

    pal = category_colors([f"m{i}" for i in range(24)])
    assert len(set(pal.values())) == 24
    # not a sequential map: neighbouring animals do not get neighbouring colours
    from matplotlib.colors import to_rgb

    rgb = np.array([to_rgb(pal[f"m{i}"]) for i in range(13)])
    assert np.min(np.abs(np.diff(rgb, axis=0)).sum(axis=1)) > 0.15


def test_thumbnail_axes_come_from_the_store_parameters():
    from usvpipe.viz._figures import image_axes, image_span_ms

    ax = image_axes({"spectrogram": {"min_freq_hz": 30e3, "max_freq_hz": 110e3},
                     "syllables": {"min_freq_hz": 0.0, "max_freq_hz": 0.0, "max_dur_s": 0.2, "time_stretch": True}})
    assert ax == {"freq_khz": [30.0, 110.0], "max_dur_ms": 200.0, "time_stretch": True}
    assert np.allclose(image_span_ms([0.05, 0.3], ax), [100.0, 200.0])  # sqrt(50 ms * 200 ms); long calls: the window
    assert image_axes({}) is None


def test_cli_quiet_prints_only_the_summary(tmp_path):
    from click.testing import CliRunner

    from usvpipe.cli import main

    out = tmp_path / "run"
    out.mkdir()
    _latents(np.random.default_rng(2), shift=1.5).to_csv(out / "latents.csv", index=False)
    cfg = tmp_path / "usvpipe.toml"
    cfg.write_text(f"[run]\noutput = '{out}'\nstages = ['mmd']\ngroup_a = 'A'\ngroup_b = 'B'\n")
    loud = CliRunner().invoke(main, ["run", str(cfg), "--force"])
    quiet = CliRunner().invoke(main, ["run", str(cfg), "--force", "--quiet"])
    assert loud.exit_code == quiet.exit_code == 0, loud.output + quiet.output
    assert "usvpipe: mmd: testing" in loud.output and "usvpipe: mmd:" not in quiet.output
    assert "report:" in quiet.output


def test_a_report_from_uninformative_latents_shows_no_latent_effect_but_the_measures(tmp_path):
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    out = tmp_path / "run"
    (out / "measures").mkdir(parents=True)
    (out / "measures" / "measures.json").write_text(
        '{"groups": ["deaf", "hearing"], "alpha": 0.05, "notes": [], "tests": [{"measure": "duration_ms", '
        '"label": "duration (ms)", "difference": 12.0, "ci95_low": 5.0, "ci95_high": 19.0, "reject": true}]}')
    m = _mmd(interpretable=False, do_not_interpret="latents not informative — do not interpret (fix: train longer)",
             second_opinion=[{"representation": "PCA of the images", "statistic": 0.1, "p_value": 0.2,
                              "unit": "animal", "reject": False, "n_features": 32}])
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    res = PipelineResult(output=out, stages=stages, mmd=m)
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages, res)
    html = (out / "report.html").read_text()
    top = html[: html.index("Classical measures</h2>")]
    assert "No answer from the latent space" in top and 'class="stop"' in top and "train longer" in top
    assert "Effect size" not in top and "duration (ms) (12 [5, 19])" in top
    assert "PCA of the images" in html and "Does the difference hold across representations?" in html


def test_the_report_has_a_pdf_twin_with_the_answer_first_and_a_page_per_figure(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    _latents(np.random.default_rng(3), shift=1.5).to_csv(out / "latents.csv", index=False)
    run_pipeline(_mmd_only_config(out), progress=False, quiet=True)
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    n_pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    n_figures = len(re.findall(r'<img src="data:image/png', (out / "report.html").read_text()))
    assert n_figures >= 1 and n_pages == 1 + n_figures


def test_the_report_warns_of_a_store_whose_images_run_past_their_recordings(tmp_path):
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    out = tmp_path / "run"
    (out / "store").mkdir(parents=True)
    table = pd.DataFrame({"id": range(4), "recording": ["clips/01.wav", "long.wav", "long.wav", "long.wav"],
                          "onset_s": [0.001, 1.0, 2.0, 3.0], "image_padded": [1.0, 0.0, 0.0, 0.0]})
    table.to_csv(out / "store" / "syllables.csv", index=False)
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages,
                 PipelineResult(output=out, stages=stages, mmd=_mmd()))
    html = (out / "report.html").read_text()
    assert "1 of 4 syllables (in 1 recording(s), e.g. clips/01.wav) have images that run past" in html
    table.assign(image_padded=0.0).to_csv(out / "store" / "syllables.csv", index=False)  # none: no warning
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages,
                 PipelineResult(output=out, stages=stages, mmd=_mmd()))
    assert "run past" not in (out / "report.html").read_text()


def test_the_report_shows_the_latent_axis_check_and_names_a_recording_it_fails_on(tmp_path):
    import json

    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome
    from usvpipe.vae.axis_check import AxisCheck, RecordingAxisFit

    out = tmp_path / "run"
    (out / "model").mkdir(parents=True)
    fits = (RecordingAxisFit("a.wav", 20, 1.0, 0.8), RecordingAxisFit("rec_6.wav", 27, 0.13, -0.23))
    check = AxisCheck(axis="pitch", dimension=0, slope=0.9, r2=0.6, leak=1.2, largest_move="6 rows", n_syllables=47,
                      by_recording=fits)
    (out / "model" / "train.json").write_text(json.dumps({"latent_axes_check": [check.to_dict()]}))
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages,
                 PipelineResult(output=out, stages=stages, mmd=_mmd()))
    html = (out / "report.html").read_text()
    vae = html[html.index('id="vae"'):]
    assert '<p class="axiswarn">pitch axis holds: z0 moves 0.90' in vae
    assert "not on rec_6.wav (slope 0.13, R² -0.23, 27 syllables)" in vae
    assert "not on rec_6.wav" in (out / "report.md").read_text()
    # a model trained without latent axes: no line
    (out / "model" / "train.json").write_text(json.dumps({"latent_axes_check": []}))
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages,
                 PipelineResult(output=out, stages=stages, mmd=_mmd()))
    assert "pitch axis" not in (out / "report.html").read_text()


def test_recordings_without_a_group_are_named_so_in_the_measures_table_not_nan(tmp_path):
    # files not under a group folder have group "" in the store; read back from CSV it is NaN
    from usvpipe.measures import measures_stage
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    out = tmp_path / "run"
    (out / "store").mkdir(parents=True)
    pd.DataFrame({"id": range(6), "recording": ["A/a/r.wav", "A/a/r.wav", "B/b/r.wav", "B/b/r.wav", "x.wav", "x.wav"],
                  "animal": ["a", "a", "b", "b", "x", "x"], "group": ["A", "A", "B", "B", None, None],
                  "onset_s": [0.1, 0.5] * 3, "duration_s": 0.03, "mean_freq_hz": 60e3, "min_freq_hz": 55e3,
                  "max_freq_hz": 70e3, "mean_amplitude": 20.0, "peak_amplitude": 30.0}
                 ).to_csv(out / "store" / "syllables.csv", index=False)
    res = measures_stage(out / "store", out / "measures")
    assert any("(no group)" in note for note in res.notes)
    stages = [StageOutcome("measures", "ran", 1.0, "")]
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages, PipelineResult(output=out, stages=stages))
    table = (out / "report.md").read_text().split("Per-group summaries")[1]
    assert "| (no group) | call count | 1 |" in table and "| nan |" not in table


def _report_with_measures(tmp_path, *, latent_reject: bool, measure_reject: bool) -> str:
    from usvpipe.pipeline.report import write_report
    from usvpipe.pipeline.run import PipelineResult, StageOutcome

    out = tmp_path / f"run{int(latent_reject)}{int(measure_reject)}"
    (out / "measures").mkdir(parents=True)
    (out / "measures" / "measures.json").write_text(
        '{"groups": ["deaf", "hearing"], "alpha": 0.05, "notes": [], "tests": [{"measure": "duration_ms", '
        '"label": "duration (ms)", "difference": 12.0, "ci95_low": 5.0, "ci95_high": 19.0, '
        f'"reject": {str(measure_reject).lower()}}}]}}')
    m = _mmd() if latent_reject else _mmd(reject=False, p_value=0.31)
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages,
                 PipelineResult(output=out, stages=stages, mmd=m))
    return (out / "report.md").read_text()


def test_a_difference_only_the_measures_find_is_said_to_be_the_one_to_read(tmp_path):
    said = "The classical measures find a difference that the latent-space test does not"
    assert said in _report_with_measures(tmp_path, latent_reject=False, measure_reject=True)
    # nothing to say when both agree, either way
    assert said not in _report_with_measures(tmp_path, latent_reject=True, measure_reject=True)
    assert said not in _report_with_measures(tmp_path, latent_reject=False, measure_reject=False)


def test_a_difference_only_the_latents_find_points_to_repertoire_usage(tmp_path):
    said = "The latent-space test finds a difference that no classical measure shows"
    text = _report_with_measures(tmp_path, latent_reject=True, measure_reject=False)
    assert said in text and "repertoire usage" in text
    assert said not in _report_with_measures(tmp_path, latent_reject=True, measure_reject=True)
    assert said not in _report_with_measures(tmp_path, latent_reject=False, measure_reject=False)
