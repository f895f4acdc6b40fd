"""Matching rules of usvpipe.evaluate on hand-computed cases, a brute-force reference,
the amvoc peer tables, and the `usvpipe evaluate` CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from usvpipe.errors import ConfigError
from usvpipe.evaluate import (
    SegmentationScores,
    evaluate_segments,
    match_boundaries,
    match_events,
    pair_by_name,
    pool_scores,
    score_table,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AMVOC = DATA / "amvoc"


def _need_amvoc():
    if not AMVOC.is_dir():
        pytest.skip(f"../shared/data not present: {AMVOC}")


# ---------------------------------------------------------------- hand-computed cases
def test_docstring_case():
    s = evaluate_segments([[0.10, 0.20], [0.50, 0.52]], [[0.105, 0.21], [0.8, 0.9]])
    assert (s.n_pred, s.n_true, s.n_event_matches, s.n_boundary_matches) == (2, 2, 1, 1)
    assert s.event_precision == s.event_recall == s.event_f1 == 0.5


def test_largest_overlap_wins():
    # The prediction overlaps both syllables; it must go to the one it overlaps most.
    p, t = match_events([[0.0, 1.0]], [[0.0, 0.3], [0.2, 1.0]])
    assert p.tolist() == [0] and t.tolist() == [1]


def test_greedy_is_not_maximum_matching():
    # P0∩T0 = 2 s (largest) is taken first, which leaves P1 (overlapping only T0) and T1
    # (overlapping only P0) unmatched; a maximum matching would find 2 pairs. Documented rule.
    pred = [[0.0, 10.0], [9.0, 11.0]]
    truth = [[8.0, 10.5], [0.0, 1.0]]
    p, t = match_events(pred, truth)
    assert list(zip(p.tolist(), t.tolist())) == [(0, 0)]
    s = evaluate_segments(pred, truth)
    assert s.event_precision == 0.5 and s.event_recall == 0.5


def test_touching_intervals_do_not_overlap():
    assert evaluate_segments([[0.0, 1.0]], [[1.0, 2.0]]).n_event_matches == 0
    assert evaluate_segments([[0.0, 1.0]], [[0.999, 2.0]]).n_event_matches == 1


def test_one_to_one():
    # Two detections inside one syllable: one match, the other is a false positive.
    s = evaluate_segments([[0.1, 0.2], [0.25, 0.3]], [[0.0, 0.5]])
    assert s.n_event_matches == 1
    assert s.event_precision == 0.5 and s.event_recall == 1.0
    assert s.event_f1 == pytest.approx(2 / 3)


def test_boundary_tolerance_edges():
    truth = [[1.0, 1.1]]
    assert evaluate_segments([[1.010, 1.090]], truth, tolerance_s=0.010).n_boundary_matches == 1
    assert evaluate_segments([[1.0101, 1.1]], truth, tolerance_s=0.010).n_boundary_matches == 0
    assert evaluate_segments([[1.010, 1.090]], truth, tolerance_s=0.005).n_boundary_matches == 0
    # Onset AND offset: a good onset with a bad offset is no boundary match (but an event match).
    s = evaluate_segments([[1.0, 1.2]], truth, tolerance_s=0.010)
    assert s.n_boundary_matches == 0 and s.n_event_matches == 1


def test_boundary_prefers_closest():
    # Both predictions are within 10 ms of the syllable; the closer one is matched.
    p, t = match_boundaries([[1.008, 1.1], [1.001, 1.1]], [[1.0, 1.1]], 0.010)
    assert p.tolist() == [1] and t.tolist() == [0]


def test_empty_conventions():
    both = evaluate_segments(np.zeros((0, 2)), np.zeros((0, 2)))
    assert both.event_f1 == 1.0 and both.boundary_f1 == 1.0
    no_pred = evaluate_segments(np.zeros((0, 2)), [[0, 1]])
    assert (no_pred.event_precision, no_pred.event_recall, no_pred.event_f1) == (0.0, 0.0, 0.0)
    no_truth = evaluate_segments([[0, 1]], np.zeros((0, 2)))
    assert (no_truth.event_precision, no_truth.event_recall, no_truth.event_f1) == (0.0, 0.0, 0.0)


def test_bad_input_raises():
    with pytest.raises(ConfigError, match="before onset"):
        evaluate_segments([[0.2, 0.1]], [[0, 1]])
    with pytest.raises(ConfigError, match="NaN"):
        evaluate_segments([[np.nan, 0.1]], [[0, 1]])
    with pytest.raises(ConfigError, match="recordings"):
        evaluate_segments(pd.DataFrame({"recording": ["a", "b"], "onset_s": [0.0, 0.0], "offset_s": [1.0, 1.0]}), [[0, 1]])
    with pytest.raises(ConfigError, match="onset_s"):
        evaluate_segments(pd.DataFrame({"start": [0.0], "end": [1.0]}), [[0, 1]])


def test_dataframe_and_array_inputs_agree():
    pred = pd.DataFrame({"onset_s": [0.1, 0.5], "offset_s": [0.2, 0.6], "label": ["a", "b"]})
    truth = np.array([[0.11, 0.19], [0.7, 0.8]])
    assert evaluate_segments(pred, truth) == evaluate_segments(pred[["onset_s", "offset_s"]].to_numpy(), truth)


# ---------------------------------------------------------------- brute-force reference
def _brute_greedy(pred, truth, tol=None):
    """O(n*m) reference implementation of the documented rules."""
    cands = []
    for i, (a, b) in enumerate(pred):
        for j, (c, d) in enumerate(truth):
            if tol is None:
                ov = min(b, d) - max(a, c)
                # Zero-length intervals count when inside the other one (documented rule).
                if ov > 0 or (ov == 0 and (a == b or c == d)):
                    cands.append((-ov, i, j))
            else:
                if abs(a - c) <= tol + 1e-9 and abs(b - d) <= tol + 1e-9:
                    cands.append((abs(a - c) + abs(b - d), i, j))
    cands.sort()
    used_p, used_t, n = set(), set(), 0
    for _, i, j in cands:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            n += 1
    return n


def _random_intervals(rng, n, length_s, max_dur_s):
    on = rng.uniform(0, length_s, n)
    return np.column_stack([on, on + rng.uniform(0.001, max_dur_s, n)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    # Overlapping reference syllables too, to exercise the running-max candidate search.
    truth = _random_intervals(rng, 150, 10.0, 0.2)
    pred = np.vstack([truth + rng.normal(0, 0.006, truth.shape), _random_intervals(rng, 60, 10.0, 0.1)])
    pred[:, 1] = np.maximum(pred[:, 1], pred[:, 0])
    rng.shuffle(pred)
    assert len(match_events(pred, truth)[0]) == _brute_greedy(pred, truth)
    for tol in (0.005, 0.010):
        assert len(match_boundaries(pred, truth, tol)[0]) == _brute_greedy(pred, truth, tol)


def test_order_invariance_and_symmetry_of_event_count():
    rng = np.random.default_rng(5)
    truth = _random_intervals(rng, 80, 5.0, 0.05)
    pred = truth + rng.normal(0, 0.004, truth.shape)
    pred[:, 1] = np.maximum(pred[:, 1], pred[:, 0])
    a = evaluate_segments(pred, truth)
    b = evaluate_segments(pred[::-1], truth[rng.permutation(len(truth))])
    assert a == b
    swapped = evaluate_segments(truth, pred)
    assert swapped.n_event_matches == a.n_event_matches
    assert swapped.event_precision == a.event_recall


def test_pool_scores_sums_counts():
    s1 = evaluate_segments([[0, 1]], [[0, 1], [2, 3]])
    s2 = evaluate_segments([[0, 1], [5, 6]], [[0, 1]])
    pooled = pool_scores([s1, s2])
    assert (pooled.n_pred, pooled.n_true, pooled.n_event_matches) == (3, 3, 2)
    assert pooled.event_precision == pytest.approx(2 / 3)
    with pytest.raises(ConfigError):
        pool_scores([s1, evaluate_segments([[0, 1]], [[0, 1]], tolerance_s=0.005)])
    assert set(s1.to_dict()) >= {"event_f1", "boundary_f1", "n_pred", "n_true", "tolerance_s"}
    assert isinstance(s1, SegmentationScores)


def test_score_table_total_row():
    table = score_table([("a", [[0, 1]], [[0, 1]]), ("b", [[0, 1]], [[3, 4]])], tolerances_s=(0.005, 0.01))
    assert table["key"].tolist() == ["a", "b", "TOTAL"]
    assert table.iloc[-1]["event_f1"] == 0.5
    assert "boundary_f1@5ms" in table and "boundary_f1@10ms" in table


def test_pair_by_name():
    pairs, up, ut = pair_by_name(
        {"deepsqueak_1.csv": 1, "deepsqueak_10.csv": 10, "deepsqueak_2.csv": 2},
        {"gt_1.csv": "g1", "gt_2.csv": "g2", "gt_10.csv": "g10", "gt_3.csv": "g3"},
    )
    assert [(k, p, t) for k, p, t in pairs] == [("1", 1, "g1"), ("2", 2, "g2"), ("10", 10, "g10")]
    assert up == [] and ut == ["gt_3.csv"]
    # Exact names (e.g. segments.csv recordings vs truth tables) pair first.
    pairs, _, _ = pair_by_name({"A/A01_rec1.wav": "p"}, {"A/A01/A01_rec1.truth.csv": "t"})
    assert pairs == [("A01_rec1", "p", "t")]


# ---------------------------------------------------------------- real data
def test_amvoc_peer_tables():
    _need_amvoc()
    from usvpipe.annotations import read_segments

    recs = sorted(p for p in AMVOC.iterdir() if p.is_dir())
    for tool in ("deepsqueak", "vocalmat", "mupet"):
        pairs = [(p.name, read_segments(p / f"{tool}_{p.name}.csv"), read_segments(p / f"gt_{p.name}.csv")) for p in recs]
        tot = score_table(pairs, tolerances_s=(0.005, 0.010)).iloc[-1]
        # Published tools detect most annotated syllables; looser tolerance never scores lower.
        assert 0.7 < tot.event_f1 <= 1.0
        assert tot["boundary_f1@5ms"] <= tot["boundary_f1@10ms"] <= tot.event_f1
    gt = read_segments(recs[0] / f"gt_{recs[0].name}.csv")
    assert evaluate_segments(gt, gt).boundary_f1 == 1.0


# ---------------------------------------------------------------- CLI
def _cli():
    from usvpipe.cli import main

    return main


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{a},{b}\n" for a, b in rows))
    return path


def test_cli_two_files_json(tmp_path):
    pred = _write(tmp_path / "mine.csv", [(0.1, 0.2), (0.5, 0.6)])
    gt = _write(tmp_path / "truth.csv", [(0.1, 0.2)])
    res = CliRunner().invoke(_cli(), ["evaluate", str(pred), str(gt), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["total"]["event_precision"] == 0.5 and out["total"]["event_recall"] == 1.0
    assert out["tolerances_s"] == [0.005, 0.01]


def test_cli_folders_and_pairs(tmp_path):
    for k in (1, 2):
        _write(tmp_path / "pred" / f"det_{k}.csv", [(0.1 * k, 0.1 * k + 0.05)])
        _write(tmp_path / "gt" / f"gt_{k}.csv", [(0.1 * k, 0.1 * k + 0.05), (1.0, 1.1)])
    out_csv = tmp_path / "scores.csv"
    res = CliRunner().invoke(_cli(), ["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"),
                                      "--tolerance-s", "0.01", "--out", str(out_csv)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out_csv, dtype={"key": str})
    assert table["key"].tolist() == ["1", "2", "TOTAL"]
    assert table["event_recall"].iloc[-1] == 0.5
    (tmp_path / "pairs.csv").write_text("pred,gt\npred/det_1.csv,gt/gt_2.csv\n")
    res = CliRunner().invoke(_cli(), ["evaluate", "--pairs", str(tmp_path / "pairs.csv"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["total"]["n_event_matches"] == 0


def test_cli_segments_csv_split_by_recording(tmp_path):
    seg = tmp_path / "segments.csv"
    seg.write_text("recording,onset_s,offset_s,score\nA/a1.wav,0.1,0.2,1\nB/b1.wav,0.3,0.4,1\nB/b1.wav,0.8,0.9,1\n")
    _write(tmp_path / "gt" / "a1.truth.csv", [(0.1, 0.2)])
    _write(tmp_path / "gt" / "b1.truth.csv", [(0.3, 0.4)])
    res = CliRunner().invoke(_cli(), ["evaluate", str(seg), str(tmp_path / "gt"), "--json"])
    assert res.exit_code == 0, res.output
    total = json.loads(res.output)["total"]
    assert (total["n_pred"], total["n_true"], total["n_event_matches"]) == (3, 2, 2)


def test_cli_segments_csv_counts_recordings_without_syllables(tmp_path):
    # A recording where nothing was found has no rows in segments.csv; with the store's
    # manifest beside it, its annotated calls are misses (not a skipped file). This also
    # holds when only one recording had syllables.
    seg = tmp_path / "segments.csv"
    seg.write_text("recording,onset_s,offset_s,score\nA/a1.wav,0.1,0.2,1\n")
    (tmp_path / "manifest.json").write_text(json.dumps({"recordings": {"A/a1.wav": {}, "B/b1.wav": {}}}))
    _write(tmp_path / "gt" / "a1.truth.csv", [(0.1, 0.2)])
    _write(tmp_path / "gt" / "b1.truth.csv", [(0.3, 0.4), (0.8, 0.9)])
    res = CliRunner().invoke(_cli(), ["evaluate", str(seg), str(tmp_path / "gt"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [p["key"] for p in out["pairs"]] == ["a1", "b1"]
    assert (out["total"]["n_pred"], out["total"]["n_true"], out["total"]["n_event_matches"]) == (1, 3, 1)


def test_cli_errors_exit_nonzero(tmp_path):
    _write(tmp_path / "a" / "x_1.csv", [(0.1, 0.2)])
    res = CliRunner().invoke(_cli(), ["evaluate", str(tmp_path / "a"), str(tmp_path / "a")])
    assert res.exit_code != 0 and "--pred-glob" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("0.1,0.2\n0.5,0.4\n")
    res = CliRunner().invoke(_cli(), ["evaluate", str(bad), str(tmp_path / "a" / "x_1.csv")])
    assert res.exit_code != 0 and "bad.csv" in res.output and "line 2" in res.output


def test_cli_amvoc_folders_with_globs():
    _need_amvoc()
    res = CliRunner().invoke(_cli(), ["evaluate", str(AMVOC), str(AMVOC), "--pred-glob", "vocalmat_*.csv",
                                      "--gt-glob", "gt_*.csv", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    recs = sorted(p.name for p in AMVOC.iterdir() if p.is_dir())
    assert sorted(p["key"] for p in out["pairs"]) == recs
    assert out["total"]["n_true"] == sum(
        sum(1 for line in (AMVOC / r / f"gt_{r}.csv").read_text().splitlines() if line.strip()) for r in recs)


# --- reviewed precision (the explorer's review.csv) ------------------------------------------

def test_wilson_interval_matches_the_published_values():
    from usvpipe.evaluate import wilson_interval

    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # Brown, Cai & DasGupta's example size
    lo, hi = wilson_interval(5, 5)
    assert lo == pytest.approx(1 / (1 + 1.959963984540054 ** 2 / 5)) and hi == 1.0
    assert all(np.isnan(wilson_interval(0, 0)))


def test_evaluate_reads_review_csv_as_reviewed_precision_per_recording_and_overall(tmp_path):
    from usvpipe.cli import main

    path = tmp_path / "review.csv"
    rows = ["id,recording,onset_s,offset_s,review,label"]
    rows += [f"a#{i},A/a1/r.wav,{i}.1,{i}.2,call,call" for i in range(6)]
    rows += ["a#6,A/a1/r.wav,6.1,6.2,relabel,flat", "a#7,A/a1/r.wav,7.1,7.2,noise,noise"]
    rows += ["b#0,B/b1/r.wav,0.1,0.2,noise,noise", "b#1,B/b1/r.wav,1.1,1.2,call,call",
             "b#1,B/b1/r.wav,1.1,1.2,noise,noise"]  # reviewed twice: the last verdict counts
    path.write_text("\n".join(rows) + "\n")
    for args in (["evaluate", str(path)], ["evaluate", "--review", str(path)]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        lines = {ln.split()[0]: ln.split() for ln in res.output.splitlines()[2:] if ln and not ln.startswith("-")}
        assert lines["A/a1/r.wav"][1:6] == ["8", "6", "1", "1", "0.875"]
        assert lines["B/b1/r.wav"][1:6] == ["2", "0", "0", "2", "0.000"]
        assert lines["TOTAL"][1:6] == ["10", "6", "1", "3", "0.700"]
        assert "[0.397, 0.892]" in res.output  # Wilson 95 % for 7/10
    res = CliRunner().invoke(main, ["evaluate", str(path), "--json", "--out", str(tmp_path / "p.csv")])
    total = json.loads(res.output)["total"]
    assert total["n_reviewed"] == 10 and total["precision"] == pytest.approx(0.7)
    assert len(pd.read_csv(tmp_path / "p.csv")) == 3
    path.write_text("id,recording,onset_s,offset_s,review,label\na#0,A/a1/r.wav,0.1,0.2,maybe,\n")
    res = CliRunner().invoke(main, ["evaluate", "--review", str(path)])
    assert res.exit_code != 0 and "row 1 (line 2): unknown review 'maybe'" in res.output and "(fix: use one of" in res.output
