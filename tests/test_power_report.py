"""The report's words on what a design could have detected (``power/sensitivity.json`` beside a test that did not reject)."""
import json

import pytest

from report_helpers import _mmd
from usvpipe.pipeline import config_from_mapping
from usvpipe.pipeline.report import write_report
from usvpipe.pipeline.run import PipelineResult, StageOutcome

SENS = {"groups": ["deaf", "hearing"], "n_animals": {"deaf": 6, "hearing": 6}, "alpha": 0.05, "target": 0.8,
        "latent": [{"kind": "pitch", "unit": "kHz", "mde": 3.1, "mde_se": 0.2, "mde_sd": 0.6}], "measures": []}


def _report(tmp_path, mmd):
    out = tmp_path / "run"
    (out / "power").mkdir(parents=True)
    (out / "power" / "sensitivity.json").write_text(json.dumps(SENS))
    from matplotlib.figure import Figure

    Figure(figsize=(1, 1)).savefig(out / "power" / "sensitivity.png")
    stages = [StageOutcome("mmd", "ran", 1.0, "")]
    write_report(out, config_from_mapping({"run": {"output": str(out)}}), stages,
                 PipelineResult(output=out, stages=stages, mmd=mmd))
    html = (out / "report.html").read_text()
    return html[html.index('<div class="answer'):html.index("</div>")], (out / "report.md").read_text()


def _figures(tmp_path) -> str:
    return (tmp_path / "run" / "report.md").read_text().count("power/sensitivity.png")


def test_a_null_answer_says_on_the_first_screen_what_the_design_could_have_detected(tmp_path):
    box, md = _report(tmp_path, _mmd(reject=False, p_value=0.43))
    assert "No evidence that deaf" in box
    assert "a pitch shift of ≥ 3.1 kHz (0.6 SD" in box and "80 % of the time" in box
    assert "pitch shift of ≥ 3.1 kHz" in md.split("## The answer")[1].split("\n## ")[0]
    assert _figures(tmp_path) >= 1  # the power curves, beside the latent-space test


@pytest.mark.parametrize("mmd", [_mmd(reject=True), _mmd(reject=False, groups=["wt", "ko"]),
                                 _mmd(reject=False, interpretable=False)])
def test_no_sensitivity_is_shown_for_a_difference_another_comparison_or_uninterpretable_latents(tmp_path, mmd):
    box, _ = _report(tmp_path, mmd)
    assert "pitch shift" not in box and _figures(tmp_path) == 0
