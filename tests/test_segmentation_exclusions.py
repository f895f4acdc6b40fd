"""Exclusion lists: the explorer's review.csv applied by `usvpipe segment --exclude` (usvpipe.segmentation.exclusions)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from usvpipe._io import read_json
from usvpipe.annotations import read_review
from usvpipe.cli import main
from usvpipe.errors import InputFileError
from usvpipe.segmentation import SyllableParams, segment_recordings
from usvpipe.segmentation.exclusions import apply_review, match_reviews
from usvpipe.store import open_store
from usvpipe.synth import make_dataset

SMALL = SyllableParams(shape=(32, 32))
HEADER = "id,recording,onset_s,offset_s,review,label\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_dataset(root, animals_per_group=1, duration_s=2.0, seed=3)
    return root


@pytest.fixture(scope="module")
def segmented(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seg") / "out"
    run = segment_recordings(dataset, out, syllables=SMALL, progress=False)
    assert run.merged and run.n_syllables >= 6
    return out


def _review(path: Path, rows) -> Path:
    lines = [HEADER] + [",".join(str(x) for x in r) + "\n" for r in rows]
    path.write_text("".join(lines))
    return path


def _row(table: pd.DataFrame, i: int, review: str, label: str = "") -> tuple:
    r = table.iloc[i]
    return (r["id"], r["recording"], f"{r['onset_s']:.6f}", f"{r['offset_s']:.6f}", review, label or review)


def test_a_detection_reviewed_as_noise_is_gone_after_resegmenting_and_the_rest_is_identical(dataset, segmented, tmp_path):
    before = pd.read_csv(segmented / "syllables.csv", dtype={"recording": str})
    noisy, relabel, call = 1, 3, 4
    review = _review(tmp_path / "review.csv", [_row(before, noisy, "noise"), _row(before, relabel, "relabel", "flat"),
                                               _row(before, call, "call")])
    out = tmp_path / "out"
    (tmp_path / "usvpipe.toml").write_text("[syllables]\nshape = [32, 32]\n")
    res = CliRunner().invoke(main, ["segment", str(dataset), str(out), "--no-progress", "--exclude", str(review),
                                    "--config", str(tmp_path / "usvpipe.toml")])
    assert res.exit_code == 0, res.output
    assert "1 detection(s) excluded as noise, 1 relabelled, 1 confirmed" in res.output
    after = pd.read_csv(out / "syllables.csv", dtype={"recording": str, "label": str}, keep_default_na=False)
    assert len(after) == len(before) - 1
    expected = before.drop(index=noisy).reset_index(drop=True)
    cols = ["recording", "animal", "group", "onset_s", "offset_s", "duration_s", "peak_amplitude"]
    pd.testing.assert_frame_equal(after[cols], expected[cols])
    labels = dict(zip(zip(after.recording, after.onset_s), after.label))
    assert labels[(before.recording[relabel], before.onset_s[relabel])] == "flat"
    assert sum(1 for v in labels.values() if v) == 1  # only the relabelled detection has a label
    segs = pd.read_csv(out / "segments.csv", dtype={"label": str}, keep_default_na=False)
    assert len(segs) == len(after) and "label" in segs.columns
    # the images are those of the kept detections, in order
    a, b = open_store(segmented), open_store(out)
    keep = np.delete(np.arange(len(before)), noisy)
    np.testing.assert_array_equal(b.read(np.arange(len(after))), a.read(keep))
    # the counts are recorded per recording
    rec = read_json(out / "manifest.json")["recordings"][before.recording[noisy]]
    assert rec["review"]["n_excluded"] == 1 and rec["review"]["n_detected"] == rec["n_syllables"] + 1


def test_an_unchanged_exclusion_list_skips_and_a_changed_one_redoes_only_its_recordings(dataset, tmp_path):
    out = tmp_path / "out"
    first = segment_recordings(dataset, out, syllables=SMALL, progress=False)
    table = pd.read_csv(out / "syllables.csv", dtype={"recording": str})
    review = _review(tmp_path / "review.csv", [_row(table, 0, "noise")])
    with_list = segment_recordings(dataset, out, syllables=SMALL, progress=False, exclude=review)
    assert with_list.n_done == 1 and with_list.n_skipped == first.n_done - 1 and with_list.n_excluded == 1
    again = segment_recordings(dataset, out, syllables=SMALL, progress=False, exclude=[review])
    assert again.n_done == 0 and again.n_skipped == first.n_done
    last = table.recording.iloc[-1]
    assert last != table.recording.iloc[0]
    i = int(np.flatnonzero(table.recording == last)[0])
    _review(review, [_row(table, 0, "noise"), _row(table, i, "noise")])
    edited = segment_recordings(dataset, out, syllables=SMALL, progress=False, exclude=review)
    assert edited.n_done == 1 and edited.n_excluded == 1  # only the recording whose rows changed
    dropped = segment_recordings(dataset, out, syllables=SMALL, progress=False)
    assert dropped.n_done == 2  # without the list both come back
    assert len(pd.read_csv(out / "syllables.csv")) == len(table)


@pytest.mark.parametrize("content, message", [
    ("recording,onset_s,offset_s\nx,0.1,0.2\n", "lacks column(s) review"),
    (HEADER + "a#0,REC,0.1,0.2,nois,nois\n", "row 1 (line 2): unknown review 'nois'"),
    (HEADER + "a#0,REC,0.1,0.2,call,call\na#1,REC,0.3,0.4,relabel,\n", "row 2 (line 3): relabel without a label"),
    (HEADER + "a#0,REC,,,noise,noise\n", "onset_s '' is not a time in seconds"),
    (HEADER + "a#0,REC,0.3,0.2,noise,noise\n", "offset_s 0.2 is not after onset_s 0.3"),
    (HEADER + "a#0,elsewhere/m1/x.wav,0.1,0.2,noise,noise\n", "recording 'elsewhere/m1/x.wav' is not among"),
])
def test_a_bad_review_file_is_one_line_naming_file_row_and_fix(dataset, segmented, tmp_path, content, message):
    rec = pd.read_csv(segmented / "syllables.csv", dtype={"recording": str}).recording.iloc[0]
    path = tmp_path / "review.csv"
    path.write_text(content.replace("REC", rec))
    res = CliRunner().invoke(main, ["segment", str(dataset), str(tmp_path / "out"), "--no-progress", "--exclude", str(path)])
    assert res.exit_code != 0
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("usvpipe: error: ") and str(path) in line and message in line and "(fix: " in line, res.output
    assert not (tmp_path / "out" / "segments.csv").exists()


def test_matching_takes_the_best_overlap_at_iou_one_half_and_the_later_row_on_a_tie():
    on, off = np.array([0.10, 0.50, 1.00]), np.array([0.20, 0.60, 1.10])
    rows = [(0.105, 0.205, "noise", ""),  # IoU 0.82 with the first detection
            (0.55, 0.65, "noise", ""),  # IoU 1/3 with the second: too little
            (1.00, 1.10, "call", ""), (1.00, 1.10, "relabel", "x")]  # a tie: the later row wins
    idx, iou = match_reviews(on, off, rows)
    assert idx.tolist() == [0, -1, 3] and iou[0] == pytest.approx(0.095 / 0.105)
    kept, labels, counts = apply_review(pd.DataFrame({"onset_s": on, "offset_s": off}), rows)
    assert kept.onset_s.tolist() == [0.5, 1.0] and labels == ["", "x"]
    assert counts["n_excluded"] == 1 and counts["n_relabelled"] == 1 and counts["n_rows_unmatched"] == 2


def test_read_review_keeps_labels_only_for_relabel_rows(tmp_path):
    path = _review(tmp_path / "r.csv", [("a#0", "m/a.wav", "0.1", "0.2", "Call", "call"),
                                        ("a#1", "m/a.wav", "0.3", "0.4", "relabel", "up-sweep")])
    t = read_review(path)
    assert t.review.tolist() == ["call", "relabel"] and t.label.tolist() == ["", "up-sweep"]
    with pytest.raises(InputFileError, match="review file not found"):
        read_review(tmp_path / "missing.csv")


def test_run_config_exclude_paths_are_relative_to_the_config_file(tmp_path):
    from usvpipe.pipeline.config import read_pipeline_config

    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "usvpipe.toml"
    cfg.write_text('[run]\ninput = "rec"\nexclude = ["review.csv", "/abs/other.csv"]\n')
    run = read_pipeline_config(cfg).run
    assert run.exclude == (str((tmp_path / "cfg" / "review.csv").resolve()), "/abs/other.csv")


def test_usvpipe_run_reports_what_the_exclusion_list_removed(dataset, segmented, tmp_path):
    from usvpipe.pipeline.config import config_from_mapping
    from usvpipe.pipeline.run import run_pipeline

    before = pd.read_csv(segmented / "syllables.csv", dtype={"recording": str})
    review = _review(tmp_path / "review.csv", [_row(before, 0, "noise"), _row(before, 2, "noise")])
    cfg = config_from_mapping({"run": {"input": str(dataset), "output": str(tmp_path / "out"), "stages": ["segment"],
                                       "exclude": [str(review)]}, "syllables": {"shape": [32, 32]}})
    segment = run_pipeline(cfg, progress=False, quiet=True).stages[0]
    assert segment.status == "ran" and "exclusion list: 2 detection(s) excluded as noise, 0 relabelled" in segment.detail, segment.detail
    assert len(open_store(tmp_path / "out" / "store")) == len(before) - 2
