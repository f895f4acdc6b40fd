"""The run's report: ``report.md`` and one self-contained ``report.html`` (answer first, then the evidence)."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .. import _io
from .._version import __version__

if TYPE_CHECKING:
    from .config import PipelineConfig
    from .run import PipelineResult, StageOutcome


def _mmd_field(res, name, default=None):
    if isinstance(res, Mapping):
        return res.get(name, default)
    return getattr(res, name, default)


def _describe_mmd(res) -> str:
    stat = _mmd_field(res, "statistic")
    pval = _mmd_field(res, "p_value")
    unit = _mmd_field(res, "unit", "")
    try:
        return f"MMD²={float(stat):.4g}, p={float(pval):.4g} (unit: {unit})"
    except (TypeError, ValueError):
        return ""


def write_report(out: Path, config: PipelineConfig, outcomes: list[StageOutcome], result: PipelineResult) -> Path:
    """Write ``report.html`` (figures linked relative to it) and ``report.md``; returns the HTML path."""
    figures = [p for sub in ("umap", "mmd", "model") for p in sorted((out / sub).glob("*.png"))] if out.exists() else []
    mmd = result.mmd
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.status)}</td><td>{s.seconds:.1f}</td><td>{html.escape(s.detail)}</td></tr>"
        for s in outcomes
    )
    md = [f"# usvpipe report\n", f"usvpipe {__version__}; config: {config.source or '(built in)'}\n", "## Stages\n",
          "| stage | status | seconds | detail |", "|---|---|---|---|"]
    md += [f"| {s.name} | {s.status} | {s.seconds:.1f} | {s.detail} |" for s in outcomes]
    answer = ""
    if mmd is not None:
        answer = _describe_mmd(mmd)
        groups = _mmd_field(mmd, "groups") or [_mmd_field(mmd, "a"), _mmd_field(mmd, "b")]
        answer = f"{' vs '.join(str(g) for g in groups if g is not None)}: {answer}"
        md += ["", "## Group comparison (kernel MMD permutation test)", "", answer]
    if result.segment_failures:
        md += ["", "## Recordings that failed", ""] + [f"- {f}" for f in result.segment_failures]
    md += ["", "## Figures", ""] + [f"![{f.stem}]({f.relative_to(out).as_posix()})" for f in figures]
    md += ["", "## Parameters", "", "```json", json.dumps(config.to_dict(), indent=2), "```", ""]
    _io.write_text_atomic(out / "report.md", "\n".join(md))
    failures = "".join(f"<li>{html.escape(str(f))}</li>" for f in result.segment_failures)
    figs = "".join(
        f'<figure><img src="{html.escape(f.relative_to(out).as_posix())}" alt="{html.escape(f.stem)}"><figcaption>{html.escape(f.relative_to(out).as_posix())}</figcaption></figure>'
        for f in figures
    )
    explorer = next(iter(sorted((out / "umap").glob("*.html"))), None) if (out / "umap").exists() else None
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>usvpipe report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
figure{{display:inline-block;margin:8px;max-width:520px}}img{{max-width:100%}}.answer{{font-size:1.3em;background:#f3f6fa;padding:.6em 1em;border-left:4px solid #0072B2}}
pre{{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}}</style></head><body>
<h1>usvpipe report</h1><p>usvpipe {__version__} &middot; config: {html.escape(config.source or '(built in)')}</p>
{f'<p class="answer">{html.escape(answer)}</p>' if answer else ''}
{f'<p><a href="{html.escape(explorer.relative_to(out).as_posix())}">Open the interactive latent-space explorer</a></p>' if explorer else ''}
<h2>Stages</h2><table><tr><th>stage</th><th>status</th><th>seconds</th><th>detail</th></tr>{rows}</table>
{f'<h2>Recordings that failed</h2><ul>{failures}</ul>' if failures else ''}
<h2>Figures</h2>{figs or '<p>none</p>'}
<h2>Parameters and versions</h2><pre>{html.escape(json.dumps(config.to_dict(), indent=2))}</pre>
</body></html>"""
    return _io.write_text_atomic(out / "report.html", page)
