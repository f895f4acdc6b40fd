"""The run's report: one self-contained ``report.html`` (images embedded, opens offline from an
e-mail attachment), its Markdown twin ``report.md`` (images linked next to it) and a PDF twin
``report.pdf`` (page 1: the answer in words, the representations table and the warnings; then
one figure per page with its caption; :mod:`.report_pdf`).

Order: the answer in words (with an effect size and its interval) and a warnings box, then
whether the difference holds across representations, the classical measures, the
latent-space test, the VAE's health, the figures with captions, the stages, the parameters.
Everything is read from the run's output folder, so a report after a re-run that skipped the
test reads the same as the first.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

from .. import _io
from .._version import __version__
from ..groups import group_label
from .answer import (_fmt, _fmt_int, aggregated, answer, group_effect, health_line, primary_bandwidth_name,
                     readout_rows, second_opinion_rows)
from .report_pdf import pdf_pages, write_pdf  # noqa: F401  (pdf_pages: public here since the PDF was added)

if TYPE_CHECKING:
    from .config import PipelineConfig
    from .outcome import PipelineResult, StageOutcome

#: fields of the run manifest that the report reads when the MMD dict lacks them (lead's contract)
HEALTH_FIELDS = ("latent_health", "interpretable", "do_not_interpret", "second_opinion")

#: figure (relative path) -> (section, caption, wide). Wide figures span the page.
CAPTIONS = {
    "measures/measures.png": ("measures", "Classical measures: each point is one animal (its mean over its syllables, or "
                              "its count and rate over its recordings); boxes show each group's quartiles. Panel "
                              "titles give the animal-level permutation p and Holm's adjusted p.", True),
    "mmd/null_distribution.png": ("mmd", "Permutation null distribution of MMD² (histogram over the splits of "
                                  "animals between the groups) and the observed value (line). The p-value is the "
                                  "fraction of splits with an MMD² at least as large.", False),
    "mmd/pairwise_heatmap.png": ("mmd", "MMD² between every pair of animals (larger = more different "
                                 "syllable repertoires), in dendrogram order. A group effect shows as two blocks "
                                 "of similar animals; one odd animal shows as a bright row.", True),
    "mmd/effect_size.png": ("mmd", "Per animal: mean MMD² to the other animals of its own group (left) and to the "
                            "animals of the other group (right). Lines rising to the right for most animals mean "
                            "the groups differ more than animals within a group do.", False),
    "power/sensitivity.png": ("mmd", "What this design could have detected: the share of planted experiments (random "
                              "pseudo-groups of these animals, an effect of the size on the x-axis planted into one of "
                              "them) in which the same animal-level test rejected, with 95 % Monte Carlo error bars; "
                              "dashed line the 80 % target, red line the minimum detectable effect.", True),
    "model/reconstructions.png": ("vae", "Syllable spectrograms and their VAE reconstructions. Reconstructions that "
                                  "are blank or all alike mean the latents do not describe the calls, and the "
                                  "latent-space results should not be interpreted.", True),
    "model/loss.png": ("vae", "VAE training and validation loss per epoch (lower is better; a validation curve "
                       "rising while training falls means over-fitting).", False),
    "umap/scatter_group.png": ("umap", "Each point is one syllable, placed by UMAP of its VAE latent vector "
                               "(nearby = similar spectrograms), coloured by group. UMAP keeps neighbourhoods, "
                               "not distances: the axes have no unit and cluster sizes are not comparable.", False),
    "umap/scatter_animal.png": ("umap", "The same UMAP coloured by animal: a region used by one animal only is an "
                                "individual difference, not a group effect.", False),
    "umap/density.png": ("umap", "Where each group's syllables lie in the UMAP plane: contours enclose 10–90 % of "
                         "the group's syllables (groups of different sizes are comparable); the last panel overlays "
                         "every group's 50 % and 90 % contours.", True),
    "umap/spectrogram_grid.png": ("umap", "Example syllables drawn at their place in the UMAP plane (frame colour = "
                                  "group); the key in the corner gives each thumbnail's frequency axis (kHz) and "
                                  "time span (ms).", False),
}
SECTION_TITLES = {"measures": "Classical measures", "mmd": "Latent-space test (kernel MMD, permutation)",
                  "vae": "The VAE (representation of the syllables)", "umap": "The latent space in pictures",
                  "other": "Other figures"}


def _as_dict(mmd) -> Optional[dict]:
    if mmd is None:
        return None
    if isinstance(mmd, Mapping):
        return dict(mmd)
    d = mmd.to_dict() if hasattr(mmd, "to_dict") else {}
    for k in HEALTH_FIELDS:  # attributes the lead's result may carry beside to_dict
        if k not in d and getattr(mmd, k, None) is not None:
            d[k] = getattr(mmd, k)
    return d


def _md_cell(value) -> str:
    """A Markdown table cell: a group named ``A|B`` keeps its name and the table its columns."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _read_csv(path: Path, **kw):
    from .._csv import read_csv

    try:
        return read_csv(path, text_columns=("animal", "group"), **kw)
    except (OSError, ValueError):
        return None


def _read_json(path: Path):
    try:
        return _io.read_json(path)
    except (OSError, ValueError):
        return None


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


class _Doc:
    """The report as parallel HTML and Markdown fragments."""

    def __init__(self):
        self.html: list[str] = []
        self.md: list[str] = []
        self.figures: list[tuple[Path, str, str]] = []  # (file, caption, relative path), in report order
        self.front: list[str] = []  # the answer's lines, for the PDF's first page
        self.representations: list = []  # the representations table's rows (header first), for the PDF's first page

    def h2(self, title: str, anchor: str = ""):
        a = f' id="{anchor}"' if anchor else ""
        self.html.append(f"<h2{a}>{html.escape(title)}</h2>")
        self.md += ["", f"## {title}", ""]

    def p(self, text: str, cls: str = ""):
        c = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{c}>{html.escape(text)}</p>")
        self.md += [text, ""]

    def table(self, header: list, rows: list, cls: str = ""):
        c = f' class="{cls}"' if cls else ""
        th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        tr = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
        self.html.append(f"<table{c}><tr>{th}</tr>{tr}</table>")
        self.md += ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
        self.md += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
        self.md.append("")

    def figure(self, out: Path, path: Path, caption: str, wide: bool):
        rel = path.relative_to(out).as_posix()
        self.figures.append((path, caption, rel))
        cls = "wide" if wide else "col"
        self.html.append(f'<figure class="{cls}"><img src="{_data_uri(path)}" alt="{html.escape(caption[:120])}">'
                         f"<figcaption>{html.escape(caption)} <span class=\"file\">({html.escape(rel)})</span>"
                         "</figcaption></figure>")
        self.md += [f"![{rel}]({rel})", "", f"*{caption}* ({rel})", ""]


def _warnings_box(doc: _Doc, warnings: list):
    if not warnings:
        return
    order = {"stop": 0, "warn": 1, "note": 2}
    ws = sorted(warnings, key=lambda w: order.get(w[0], 3))
    label = {"stop": "stop", "warn": "warning", "note": "note"}
    items = "".join(f'<li class="{w[0]}"><b>{label.get(w[0], w[0])}:</b> {html.escape(w[1])}</li>' for w in ws)
    doc.html.append(f'<div class="warnings"><h3>Warnings</h3><ul>{items}</ul></div>')
    doc.md += ["> **Warnings**", ">"] + [f"> - **{label.get(w[0], w[0])}:** {w[1]}" for w in ws] + [""]


def _measures_section(doc: _Doc, out: Path, meas: Optional[dict], per_group):
    tests = (meas or {}).get("tests")
    if not tests and per_group is None:
        return
    doc.h2(SECTION_TITLES["measures"], "measures")
    if tests:
        a, b = (meas.get("groups") or ["A", "B"])[:2]
        doc.p(f"Per-animal values compared between {a} and {b} with animals as the unit (permutation of whole "
              f"animals; exact over every split when few), Holm-corrected over {len(tests)} measures at "
              f"α = {_fmt(meas.get('alpha'))}. Difference = {b} − {a}, with a 95 % bootstrap interval over animals; "
              "g = Hedges' standardised difference.")
        rows = []
        for t in tests:
            rows.append([t.get("label"), _fmt(t.get(f"mean_{a}"), 4), _fmt(t.get(f"mean_{b}"), 4),
                         f"{_fmt(t.get('difference'))} [{_fmt(t.get('ci95_low'))}, {_fmt(t.get('ci95_high'))}]",
                         _fmt(t.get("hedges_g"), 2), _fmt(t.get("p_value")), _fmt(t.get("p_holm")),
                         "differ" if t.get("reject") else "no evidence"])
        doc.table(["measure", f"{a} (mean of animals)", f"{b} (mean of animals)", "difference [95 % CI]", "g",
                   "p (animal permutation)", "p (Holm)", f"at α = {_fmt(meas.get('alpha'))}"], rows, "num")
    elif per_group is not None:
        doc.p("Per-group summaries of the per-animal values (no test: the comparison needs exactly two groups).")
        rows = [[group_label(r["group"]), r["label"], _fmt_int(r["n_animals"]), _fmt(r["mean"], 4), _fmt(r["sd"], 3)]
                for r in per_group.to_dict(orient="records")]
        doc.table(["group", "measure", "animals", "mean", "sd"], rows, "num")
    doc.p("Tables: measures/measures_per_animal.csv (one row per animal), measures/measures_per_group.csv, "
          "measures/measures_tests.csv.", "small")


def _mmd_section(doc: _Doc, mmd: Optional[dict]):
    if mmd is None:
        return
    doc.h2(SECTION_TITLES["mmd"], "mmd")
    a, b = (list(mmd.get("groups") or []) + ["?", "?"])[:2]
    agg = aggregated(mmd)
    bandwidths = mmd.get("bandwidths") or []
    at = f"at the {primary_bandwidth_name(mmd)} bandwidth" if agg else ""
    rows = [["groups compared", f"{a} vs {b} (column {mmd.get('group_col', 'group')})"],
            ["MMD² (observed" + (f", {at})" if agg else ")"), _fmt(mmd.get("statistic"), 5)],
            ["p-value" + (f" (aggregated over the {len(bandwidths)} bandwidths)" if agg else ""),
             _fmt(mmd.get("p_value"), 4) + ("" if mmd.get("exact") else
                                            f" (Monte Carlo s.e. {_fmt(mmd.get('p_value_mc_se'), 2)})")],
            ["decision at α", f"{'reject' if mmd.get('reject') else 'do not reject'} equal distributions at "
                              f"α = {_fmt(mmd.get('alpha'))}"],
            ["unit of exchangeability", f"{mmd.get('unit')} (weighting: {mmd.get('weighting')})"],
            ["permutations", f"{_fmt_int(mmd.get('n_permutations'))}" + (" (all splits, exact)" if mmd.get("exact") else
                                                                        f" random of {_fmt_int(mmd.get('n_splits'))}")],
            ["smallest attainable p", _fmt(mmd.get("min_attainable_p"))],
            ["kernel, bandwidth", f"{mmd.get('kernel')}, {mmd.get('bandwidth_rule')} "
                                  f"({'MMD² quoted ' + at + ', ' if agg else ''}h = {_fmt(mmd.get('primary_bandwidth'))})"],
            ["z-score " + ("of that MMD² against its null" if agg else "against the null"), _fmt(mmd.get("z_score"), 3)],
            ["features", f"{len(mmd.get('features') or [])} latent dimensions"]]
    if agg:  # what the aggregation looked at: a reader can see which scale carries the difference
        per = zip(bandwidths, mmd.get("statistics_per_bandwidth") or [], mmd.get("p_values_per_bandwidth") or [])
        rows.append(["each bandwidth (p uncorrected)",
                     "; ".join(f"h = {_fmt(h)}: MMD² {_fmt(st, 3)}, p {_fmt(pv)}" for h, st, pv in per)])
    sv = mmd.get("syllable_view")
    if sv:
        rows.append(["secondary view (syllables as independent)",
                     f"p = {_fmt(sv.get('p_value'))}: anticonservative when animals differ; not the answer"])
    doc.table(["", ""], rows, "kv")


def _stage_rows(outcomes) -> list:
    return [[s.name, s.status, f"{s.seconds:.1f}", s.detail] for s in outcomes]


def _merged_mmd(out: Path, result: PipelineResult) -> Optional[dict]:
    """The run's MMD result as a dict, with the health fields filled in from the run manifest."""
    mmd = _as_dict(result.mmd)
    manifest = _read_json(out / "run_manifest.json") or {}
    if mmd is not None:
        for k in HEALTH_FIELDS:
            if k not in mmd and k in manifest:
                mmd[k] = manifest[k]
    return mmd


def _effect(mmd: Optional[dict], pairwise, per_animal):
    """The two-group animal-level effect size, or None when the test is not of that design or the tables lack it."""
    if mmd is None or mmd.get("unit") != "animal" or len(mmd.get("groups") or []) != 2:
        return None
    try:
        return group_effect(pairwise, per_animal, *[str(g) for g in mmd["groups"]])
    except (KeyError, ValueError):
        return None


def _latent_trust(out: Path, mmd: Optional[dict]) -> Optional[dict]:
    """What the VAE section shows: the MMD result's health fields, or, for a run without the mmd
    stage, the training health from the manifest and the read-out from the latents' sidecar."""
    if mmd is not None:
        return mmd
    from ..artifacts import Latents

    health = (_read_json(out / "run_manifest.json") or {}).get("latent_health")
    readout = Latents.read_meta(out / "latents.csv").get("readout") if (out / "latents.csv").exists() else None
    return {"latent_health": health, "latent_readout": readout} if (health or readout) else None


def _load_inputs(out: Path, outcomes: list[StageOutcome], result: PipelineResult):
    """Everything the report reads from the run folder: ``(mmd, trust, measures, per_group, answer)``,
    ``trust`` being what the VAE section shows (:func:`_latent_trust`)."""
    mmd = _merged_mmd(out, result)
    per_animal = _read_csv(out / "mmd" / "per_animal.csv") if mmd is not None else None
    pairwise = _read_csv(out / "mmd" / "pairwise_mmd2.csv", index_col=0) if mmd is not None else None
    if pairwise is not None:
        pairwise.index = pairwise.index.astype(str)
    effect = _effect(mmd, pairwise, per_animal)
    meas = _read_json(out / "measures" / "measures.json")
    per_group = _read_csv(out / "measures" / "measures_per_group.csv")
    failed = [(s.name, s.detail) for s in outcomes if s.status == "failed"]
    ans = answer(mmd, effect=effect, measures=meas, per_animal=per_animal, failed_stages=failed,
                 segment_failures=result.segment_failures)
    trust = _latent_trust(out, mmd)
    from .info import latents_atypical_warning, store_padded_warning

    for line in (store_padded_warning(out / "store"), latents_atypical_warning(out / "latents.csv")):
        if line:
            ans.warnings.append(("warn", line))
    if mmd is None:  # answer() warns from the MMD result; without one, the latents' read-out still counts
        from ..vae.readout import readout_warning

        weak = readout_warning((trust or {}).get("latent_readout"))
        if weak:
            ans.warnings.append(("warn", weak))
    return mmd, trust, meas, per_group, ans


def _axis_checks(out: Path) -> list:
    """The trained model's latent-axis checks (``model/train.json``; ``[]`` without latent axes or a model)."""
    from ..vae.axis_check import axis_checks_from_dicts

    return axis_checks_from_dicts((_read_json(out / "model" / "train.json") or {}).get("latent_axes_check"))


def _front_line(doc: _Doc, line: str):
    """One line of the answer box, in all three twins."""
    doc.html.append(f'<p class="effect">{html.escape(line)}</p>')
    doc.md += [line, ""]
    doc.front.append(line)


def _caveats(out: Path, config: PipelineConfig, mmd: Optional[dict], trust: Optional[dict], ans) -> dict:
    """The answer box's extra lines (see :mod:`.caveats`): ``{"lead", "direction", "synthetic", "health",
    "representations"}``; the misleading-number warnings are added to ``ans.warnings``."""
    from .caveats import (direction_sentence, health_against_pca, negative_interval_note, short_recordings_warning,
                          synthetic_note, vae_worse_than_pca)

    lead = health_against_pca(trust) if ans.decision != "not interpretable" else ""  # shown first in the box
    rate = short_recordings_warning(_read_csv(out / "measures" / "measures_per_animal.csv"))
    if rate:
        ans.warnings.append(("warn", rate))
    neg = negative_interval_note(ans.effect) if ans.decision != "not interpretable" else ""
    if neg:
        ans.warnings.append(("note", neg))
    rows = second_opinion_rows(mmd)
    if vae_worse_than_pca((trust or {}).get("latent_health")):  # the one that holds up first, as in the HTML table
        rows.sort(key=lambda r: "pca" not in r["representation"].lower())
    table = [["representation", "MMD²", "p", "decision"]] + [[r["representation"], r["statistic"], r["p"], r["decision"]]
                                                             for r in rows]
    return {"lead": lead, "direction": direction_sentence(_read_json(out / "measures" / "measures.json")),
            "synthetic": synthetic_note(config.run.input, config.source or ""), "health": health_line(trust),
            "representations": table if rows else []}



#: When the latent test finds nothing but a classical measure differs (animal level, Holm-corrected), the
#: measures' answer is the one to read: on the synthetic benchmark at 10^4 syllables, with the VAE trained
#: to the product's length, the measures were more sensitive than the latents to differences of duration
#: and of shape only (FM extent, jump size) (benchmarks/representations-central-claim.md).
ONLY_MEASURES_DIFFER = ("The classical measures find a difference that the latent-space test does not. Read it as "
                        "a difference between the groups: in usvpipe's benchmark on synthetic calls the classical "
                        "measures were more sensitive than the latents to differences of duration and of shape "
                        "alone (FM extent, jump size), so a null latent test does not contradict them.")
#: The converse: the latent test differs and no classical measure does. In the same benchmark this is what
#: a change in how often the groups use their call types looked like: the default VAE's latents found it in
#: most experiments, the measures in few (same record).
ONLY_LATENTS_DIFFER = ("The latent-space test finds a difference that no classical measure shows. In usvpipe's "
                       "benchmark on synthetic calls this is what a change in how often the groups use their call "
                       "types looks like (repertoire usage): the measures average over the call types and missed "
                       "it. Look for regions of the UMAP that one group fills more than the other.")


def _answer_box(doc: _Doc, config: PipelineConfig, ans, meas: Optional[dict], extra: Optional[dict] = None,
                sensitivity=()):
    """Title, the answer in words, its effect size (or, for no difference, what the design could have
    detected: ``sensitivity``), the classical measures that differ, the warnings."""
    extra = extra or {}
    doc.md += ["# usvpipe report", "", f"usvpipe {__version__}; config: {config.source or '(built in)'}", ""]
    doc.html.append(f"<h1>usvpipe report</h1><p class=\"small\">usvpipe {__version__} &middot; config: "
                    f"{html.escape(config.source or '(built in)')}</p>")
    doc.html.append(f'<div class="answer {ans.decision.replace(" ", "-")}"><h2>The answer</h2>'
                    f"<p>{html.escape(ans.sentence)}</p>")
    doc.md += ["## The answer", "", f"**{ans.sentence}**", ""]
    doc.front.append(ans.sentence)
    if extra.get("lead"):  # the VAE holds up worse than PCA: say so before its effect size
        _front_line(doc, extra["lead"])
    if ans.effect is not None and ans.decision != "not interpretable":  # no latent effect size from uninformative latents
        e = ans.effect
        _front_line(doc, f"Effect size: {e.method.format(value=_fmt(e.value, 3), lo=_fmt(e.ci95[0], 3), hi=_fmt(e.ci95[1], 3))}.")
    for line in sensitivity:
        _front_line(doc, line)
    sig = [t for t in (meas or {}).get("tests") or [] if t.get("reject")]
    if (meas or {}).get("tests") is not None:
        _front_line(doc, "Classical measures that differ (animal level, Holm-corrected): " +
                    (", ".join(f"{t['label']} ({_fmt(t.get('difference'))} [{_fmt(t.get('ci95_low'))}, "
                               f"{_fmt(t.get('ci95_high'))}])" for t in sig) if sig else "none") + ".")
    if sig and ans.decision == "no evidence":
        _front_line(doc, ONLY_MEASURES_DIFFER)
    elif (meas or {}).get("tests") and not sig and ans.decision == "differ":
        _front_line(doc, ONLY_LATENTS_DIFFER)
    if extra.get("direction"):
        _front_line(doc, extra["direction"])
    if extra.get("health"):
        _front_line(doc, f"Training health: {extra['health']}")
    if extra.get("synthetic"):
        _front_line(doc, extra["synthetic"])
    doc.representations = extra.get("representations") or []  # the PDF's first page shows this table too
    doc.html.append("</div>")
    _warnings_box(doc, ans.warnings)


def _sensitivity_lines(out: Path, mmd: Optional[dict], ans) -> list:
    """What the design could have detected (``power/sensitivity.json``), for a test that found no difference."""
    from ..power.io import read_sensitivity
    from ..power.words import sensitivity_lines

    sens = read_sensitivity(out)
    if ans.decision != "no evidence" or not sens or list(sens.get("groups") or []) != list((mmd or {}).get("groups") or []):
        return []
    return sensitivity_lines(sens)


def _second_opinion_section(doc: _Doc, mmd: Optional[dict]):
    so = second_opinion_rows(mmd)
    if not so:
        return
    doc.h2("Does the difference hold across representations?", "second-opinion")
    from .caveats import vae_worse_than_pca

    if vae_worse_than_pca((mmd or {}).get("latent_health")):  # lead with the representation that holds up
        so.sort(key=lambda r: "pca" not in r["representation"].lower())
    tested = [r for r in so if r.get("tested", True)]
    agree = len({r["decision"] for r in tested}) == 1
    doc.p("The same animal-level test on other descriptions of the syllables. " +
          ("Only one was tested." if len(tested) < 2 else "They agree." if agree else
           "They disagree: the answer depends on the representation; report it with care."))
    doc.table(["representation", "statistic", "p", "unit", "decision", "features"],
              [[r["representation"], r["statistic"], r["p"], r["unit"], r["decision"], r["features"]] for r in so], "num")


def _explorer_link(doc: _Doc, out: Path):
    if (out / "umap" / "explorer.html").exists():
        doc.html.append('<p><a href="umap/explorer.html">Open the interactive latent-space explorer</a> '
                        "(umap/explorer.html: send it along with this file; it is self-contained too). To hear every "
                        "syllable and save your review into this folder, run <code>usvpipe explore "
                        f"{html.escape(str(out))}</code>.</p>")
        doc.md += ["[Interactive latent-space explorer](umap/explorer.html) (to hear every syllable and save the review "
                   f"here: `usvpipe explore {out}`)", ""]


def _collect_figures(out: Path) -> dict:
    """The run's PNG figures by report section: ``{section: [(file, caption, wide), ...]}``, in file order."""
    figures = {}
    for sub in ("measures", "mmd", "model", "umap"):
        d = out / sub
        for f in sorted(d.glob("*.png")) if d.is_dir() else []:
            rel = f.relative_to(out).as_posix()
            section, caption, wide = CAPTIONS.get(rel, ("other", f"{rel}", False))
            figures.setdefault(section, []).append((f, caption, wide))
    return figures


def _evidence_sections(doc: _Doc, out: Path, mmd: Optional[dict], trust: Optional[dict], meas: Optional[dict], per_group,
                       figures: dict):
    """Measures, the MMD test, the VAE's health, then UMAP and any other figures, each with its figures."""
    _measures_section(doc, out, meas, per_group)
    for f, cap, wide in figures.pop("measures", []):
        doc.figure(out, f, cap, wide)
    _mmd_section(doc, mmd)
    for f, cap, wide in figures.pop("mmd", []):
        doc.figure(out, f, cap, wide)
    hl, readout = health_line(trust), readout_rows(trust)
    axes = _axis_checks(out)
    if hl or readout or axes or figures.get("vae"):
        doc.h2(SECTION_TITLES["vae"], "vae")
        if hl:
            doc.p(hl, "health")
        for check in axes:  # a description of the latent space, not part of the health verdict
            doc.p(check.summary(), "axiswarn" if check.needs_warning else "")
        if readout:
            from ..vae.readout import folds_phrase, recordings_held_out

            folds = folds_phrase(trust.get("latent_readout"))
            doc.p(f"Do the latents carry what an analyst reads? Cross-validated R² ({folds}) of each measure "
                  "(ridge / 10 nearest neighbours) from the latents and from a PCA of the same images with as many "
                  "components; UMAP and the kernel MMD use what the neighbours see."
                  + (" Each fold's syllables come from recordings the regressions were not fitted on."
                     if recordings_held_out(trust.get("latent_readout")) else ""))
            doc.table(["measure", "latents (ridge / 10-NN)", "PCA (ridge / 10-NN)", "note", "syllables"],
                      [[r["measure"], r["latents"], r["pca"], r["verdict"], r["syllables"]] for r in readout])
        for f, cap, wide in figures.pop("vae", []):
            doc.figure(out, f, cap, wide)
    for section in ("umap", "other"):
        if figures.get(section):
            doc.h2(SECTION_TITLES[section], section)
            for f, cap, wide in figures[section]:
                doc.figure(out, f, cap, wide)


def _run_sections(doc: _Doc, config: PipelineConfig, outcomes: list[StageOutcome], result: PipelineResult):
    """The stages, the recordings that failed, the parameters."""
    doc.h2("Stages", "stages")
    doc.table(["stage", "status", "seconds", "detail"], _stage_rows(outcomes))
    if result.segment_failures:
        doc.h2("Recordings that failed", "failures")
        doc.html.append("<ul>" + "".join(f"<li>{html.escape(str(f))}</li>" for f in result.segment_failures) + "</ul>")
        doc.md += [f"- {f}" for f in result.segment_failures] + [""]
    doc.h2("Parameters and versions", "parameters")
    params = json.dumps(config.to_dict(), indent=2)
    doc.html.append(f"<pre>{html.escape(params)}</pre>")
    doc.md += ["```json", params, "```", ""]


def _html_page(body: str) -> str:
    """The self-contained HTML page around the report's body."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>usvpipe report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}
table.num td{{font-variant-numeric:tabular-nums}}table.kv td:first-child{{color:#555}}
figure{{margin:1em 0}}figure.col img{{width:520px;max-width:100%}}figure.wide img{{width:100%}}
figcaption{{font-size:.92em;color:#333;max-width:900px}}.file,.small{{color:#777;font-size:.85em}}
.answer{{background:#f3f6fa;padding:.4em 1.2em .8em;border-left:6px solid #0072B2}}.answer h2{{margin:.4em 0}}
.answer p:first-of-type{{font-size:1.25em}}.answer.not-interpretable{{border-left-color:#D55E00;background:#fdf1ea}}
.warnings{{border:2px solid #E69F00;background:#fff8e6;padding:.2em 1em;margin:1em 0}}.warnings h3{{margin:.4em 0}}
.warnings li.stop{{color:#a33c00;font-weight:600;font-size:1.1em}}.health{{font-weight:600}}.axiswarn{{color:#a33c00}}
pre{{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}}
@media print{{figure.col img{{width:60%}}body{{max-width:none}}}}</style></head><body>
{body}
</body></html>"""


def write_report(out: Path, config: PipelineConfig, outcomes: list[StageOutcome], result: PipelineResult) -> Path:
    """Write ``report.html`` (self-contained) and ``report.md``; returns the HTML path."""
    out = Path(out)
    mmd, trust, meas, per_group, ans = _load_inputs(out, outcomes, result)

    doc = _Doc()
    power_params = config.stages.get("power")
    # an earlier run's sensitivity.json stays on disk when [power] is switched off: never show it then
    sensitivity = _sensitivity_lines(out, mmd, ans) if getattr(power_params, "enabled", True) else []
    _answer_box(doc, config, ans, meas, _caveats(out, config, mmd, trust, ans), sensitivity=sensitivity)
    _second_opinion_section(doc, mmd)
    _explorer_link(doc, out)
    figures = _collect_figures(out)
    if sensitivity and (out / "power" / "sensitivity.png").exists():  # only beside the words it illustrates
        figures.setdefault("mmd", []).append((out / "power" / "sensitivity.png", *CAPTIONS["power/sensitivity.png"][1:]))
    _evidence_sections(doc, out, mmd, trust, meas, per_group, figures)
    _run_sections(doc, config, outcomes, result)

    _io.write_text_atomic(out / "report.md", "\n".join(doc.md))
    write_pdf(out / "report.pdf", doc.front, ans.warnings, doc.figures,
              subtitle=f"usvpipe {__version__}; config: {config.source or '(built in)'}", table=doc.representations)
    return _io.write_text_atomic(out / "report.html", _html_page("".join(doc.html)))
