"""``usvpipe evaluate``: precision/recall/F1 of predicted segments against annotations."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ConfigError, InputFileError

_HELP_FORMATS = ("Tables may be plain onset,offset CSV (with or without header, ',' or ';', comma decimals), "
                 "usvpipe segments.csv, Audacity labels or Raven selection tables.")


def _split_by_recording(frame) -> dict:
    """A table with a ``recording`` column (e.g. segments.csv) -> {recording name: rows}."""
    return {str(rec): g.reset_index(drop=True) for rec, g in frame.groupby("recording", sort=False)}


def _collect(path: Path, pattern: str | None, label: str) -> dict:
    from ..annotations import read_segments
    from ..evaluate import annotation_files

    if path.is_dir():
        files = annotation_files(path, pattern)
        if not files:
            raise InputFileError(path, f"no annotation tables ({pattern or '*.csv, *.txt, *.tsv'}) in this folder",
                                 f"use --{label}-glob to choose files")
        return {str(f.relative_to(path)): read_segments(f) for f in files}
    frame = read_segments(path)
    if "recording" in frame.columns:
        tables = _split_by_recording(frame)
        # segments.csv has no rows for a recording without syllables; the store's manifest
        # beside it lists every recording, so those count as misses instead of being skipped
        manifest = path.parent / "manifest.json"
        if manifest.exists():
            from .._io import read_json

            try:
                recordings = read_json(manifest).get("recordings", {})
            except (OSError, ValueError, AttributeError):
                recordings = {}
            for rec in recordings:
                tables.setdefault(str(rec), frame.iloc[:0].reset_index(drop=True))
        if len(tables) > 1:
            return tables
    return {path.name: frame}


def _read_pairs(pairs_csv: Path):
    from .._csv import read_csv
    from ..annotations import read_segments

    try:
        table = read_csv(pairs_csv, text_columns=("pred", "gt"), ours=False)
    except FileNotFoundError:
        raise InputFileError(pairs_csv, "file not found") from None
    except Exception as exc:  # pandas parser errors
        raise InputFileError(pairs_csv, f"not a readable CSV ({exc})") from None
    if not {"pred", "gt"} <= set(table.columns):
        raise InputFileError(pairs_csv, "needs columns pred,gt (paths relative to this file)", "add a header pred,gt")
    root = pairs_csv.parent
    out = []
    split: dict = {}  # pred path -> {recording: rows} for tables of several recordings (segments.csv)
    for i, row in table.iterrows():
        pred, gt = root / str(row["pred"]), root / str(row["gt"])
        key = str(row["key"]) if "key" in table.columns else f"{Path(str(row['pred'])).stem}~{Path(str(row['gt'])).stem}"
        if pred not in split:
            split[pred] = _collect(pred, None, "pred") if pred.is_file() else {pred.name: None}
        tables = split[pred]
        if len(tables) == 1:
            pred_rows = read_segments(pred) if next(iter(tables.values())) is None else next(iter(tables.values()))
        else:
            pred_rows = _one_recording(tables, row, pred, gt, pairs_csv, table)
            if "key" not in table.columns:
                key = Path(gt).stem
        out.append((key, pred_rows, read_segments(gt)))
    return out


def _one_recording(tables: dict, row, pred: Path, gt: Path, pairs_csv: Path, pairs):
    """The rows of one recording of a table that holds several (e.g. segments.csv) for a --pairs row.

    A ``recording`` column of the pairs CSV names it; otherwise the annotation file is paired
    with the table's recordings by name, as for folders (``gt_1.csv`` ~ ``X/m1/rec_1.wav``).
    """
    from ..evaluate import pair_by_name

    if "recording" in pairs.columns and str(row["recording"]) in tables:
        return tables[str(row["recording"])]
    if "recording" in pairs.columns:
        raise InputFileError(pairs_csv, f"recording {row['recording']!r} is not in {pred}",
                             f"use one of {', '.join(sorted(tables)[:5])}, ...")
    gts = {str(Path(str(r)).name): None for r in pairs.loc[pairs["pred"] == row["pred"], "gt"]}
    matched, _, _ = pair_by_name({rec: rec for rec in tables}, {g: g for g in gts})
    for _, rec, g in matched:
        if g == gt.name:
            return tables[rec]
    raise InputFileError(pairs_csv, f"{pred} holds {len(tables)} recordings and {gt.name} could not be paired with "
                         "one by name", "add a column recording naming the recording of each row")


@click.command("evaluate", epilog=_HELP_FORMATS)
@click.argument("pred", required=False, type=click.Path(exists=True, path_type=Path))
@click.argument("gt", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--tolerance-s", "tolerances", type=float, multiple=True,
              help="Boundary tolerance (s); repeat for several. Default: 0.005 and 0.010.")
@click.option("--pairs", "pairs_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with columns pred,gt (and optional key; recording, when pred is a table of several recordings "
                   "such as segments.csv) listing the files to compare, instead of PRED GT.")
@click.option("--pred-glob", default=None, help="Pattern selecting prediction files when PRED is a folder (e.g. 'deepsqueak_*.csv').")
@click.option("--gt-glob", default=None, help="Pattern selecting annotation files when GT is a folder (e.g. 'gt_*.csv').")
@click.option("--review", "reviews", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="review.csv exported by the explorer (repeatable): the reviewed precision of the detector "
                   "(call + relabel = true, noise = false), per recording and overall, with a 95 % Wilson interval. "
                   "`usvpipe evaluate review.csv` alone does the same.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--out", "out_csv", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table as CSV.")
def evaluate(pred, gt, tolerances, pairs_csv, pred_glob, gt_glob, reviews, as_json, out_csv):
    """Score predicted syllables PRED against annotations GT (files or folders).

    Event level: greedy one-to-one matching, largest overlap first; a prediction counts
    when it overlaps an annotated syllable. Boundary level: onset and offset each within
    the tolerance. Folders are paired by recording name: identical names first, then the
    part that differs between files (deepsqueak_1.csv ~ gt_1.csv ~ rec_1.csv). A PRED
    table with a `recording` column (usvpipe segments.csv) is split by recording.
    Counts are pooled over pairs in the TOTAL row.

    With --review (or a review.csv as the only argument): the precision of the detector on
    the detections reviewed in the explorer, per recording and pooled, with its 95 % Wilson
    interval. Given with PRED GT, both tables are printed (--out then holds the scores).
    """
    from .._io import write_csv_atomic
    from .._version import __version__
    from ..annotations import is_review_table
    from ..evaluate import pair_by_name, score_table

    reviews = list(reviews)
    if pred is not None and gt is None and pairs_csv is None and pred.is_file() and is_review_table(pred):
        reviews.insert(0, pred)
        pred = None
    if reviews and pred is None and gt is None and pairs_csv is None:
        _review_precision(reviews, as_json=as_json, out_csv=out_csv)
        return
    if reviews:
        _review_precision(reviews, as_json=as_json, out_csv=None)

    tolerances = tuple(tolerances) or (0.005, 0.010)
    if any(not t >= 0 or t == float("inf") for t in tolerances):  # NaN fails every comparison
        raise ConfigError(f"--tolerance-s must be a finite number >= 0, got {', '.join(map(str, tolerances))}")
    if pairs_csv is not None:
        if pred is not None or gt is not None:
            raise ConfigError("give either PRED GT or --pairs, not both")
        pairs = _read_pairs(pairs_csv)
        unmatched_p, unmatched_t = [], []
    else:
        if pred is None or gt is None:
            raise ConfigError("give PRED and GT (files or folders), or --pairs CSV")
        preds, truths = _collect(pred, pred_glob, "pred"), _collect(gt, gt_glob, "gt")
        if pred.is_dir() and gt.is_dir() and pred.resolve() == gt.resolve() and set(preds) & set(truths):
            raise ConfigError(f"PRED and GT select the same files in {pred}; "
                              "choose them with --pred-glob/--gt-glob (e.g. 'deepsqueak_*.csv' and 'gt_*.csv')")
        if len(preds) == 1 and len(truths) == 1 and not pred.is_dir() and not gt.is_dir():
            # Two files: the user has paired them already, whatever their names.
            (pname, ptab), (_, ttab) = next(iter(preds.items())), next(iter(truths.items()))
            pairs, unmatched_p, unmatched_t = [(Path(pname).stem, ptab, ttab)], [], []
        else:
            pairs, unmatched_p, unmatched_t = pair_by_name(preds, truths)
        if not pairs:
            raise ConfigError(f"no prediction table could be paired with an annotation table by name "
                              f"(pred: {', '.join(sorted(preds))[:200]}; gt: {', '.join(sorted(truths))[:200]}); "
                              "use --pairs CSV with columns pred,gt")
    for name in unmatched_p:
        click.echo(f"warning: no annotations for prediction table {name}; skipped", err=True)
    for name in unmatched_t:
        click.echo(f"warning: no predictions for annotation table {name}; skipped", err=True)
    table = score_table(pairs, tolerances_s=tolerances)
    if out_csv is not None:
        write_csv_atomic(out_csv, table)
    if as_json:
        click.echo(json.dumps({
            "usvpipe_version": __version__,
            "event_rule": "greedy one-to-one, largest overlap first; any positive overlap counts",
            "boundary_rule": "greedy one-to-one; |d onset| and |d offset| each <= tolerance",
            "tolerances_s": list(tolerances),
            "pairs": table.iloc[:-1].to_dict(orient="records"),
            "total": table.iloc[-1].to_dict(),
        }, indent=2))
        return
    click.echo(_format(table, tolerances))


def _format(table, tolerances) -> str:
    head = ["recording", "n_pred", "n_true", "event P", "R", "F1"]
    for t in tolerances:
        head += [f"bound@{t * 1000:g}ms P", "R", "F1"]
    rows = []
    for _, r in table.iterrows():
        row = [str(r["key"]), str(int(r["n_pred"])), str(int(r["n_true"])),
               f"{r['event_precision']:.3f}", f"{r['event_recall']:.3f}", f"{r['event_f1']:.3f}"]
        for t in tolerances:
            ms = f"{t * 1000:g}ms"
            row += [f"{r[f'boundary_precision@{ms}']:.3f}", f"{r[f'boundary_recall@{ms}']:.3f}",
                    f"{r[f'boundary_f1@{ms}']:.3f}"]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    for k, row in enumerate(rows):
        if k == len(rows) - 1 and len(rows) > 1:
            lines.append("-" * len(lines[0]))
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _review_precision(paths, *, as_json: bool, out_csv) -> None:
    """Print (and optionally write) the reviewed precision of ``review.csv`` files."""
    import pandas as pd

    from .._io import write_csv_atomic
    from .._version import __version__
    from ..annotations import read_review
    from ..evaluate import reviewed_precision

    table = reviewed_precision(pd.concat([read_review(p) for p in paths], ignore_index=True))
    if out_csv is not None:
        write_csv_atomic(out_csv, table)
    if as_json:
        click.echo(json.dumps({
            "usvpipe_version": __version__,
            "reviews": [str(p) for p in paths],
            "rule": "precision = (call + relabel) / reviewed; noise = false detection; 95 % Wilson score interval",
            "recordings": table.iloc[:-1].to_dict(orient="records"),
            "total": table.iloc[-1].to_dict(),
        }, indent=2))
        return
    click.echo(f"reviewed precision of the detector ({', '.join(map(str, paths))}): call + relabel = true detections, "
               "noise = false; 95 % Wilson interval")
    head = ["recording", "reviewed", "call", "relabel", "noise", "precision", "95% CI"]
    rows = []
    for _, r in table.iterrows():
        ci = "-" if r["n_reviewed"] == 0 else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        prec = "-" if r["n_reviewed"] == 0 else f"{r['precision']:.3f}"
        rows.append([str(r["recording"]), *(str(int(r[c])) for c in ("n_reviewed", "n_call", "n_relabel", "n_noise")), prec, ci])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    for k, row in enumerate(rows):
        if k == len(rows) - 1:
            lines.append("-" * len(lines[0]))
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    click.echo("\n".join(lines))
