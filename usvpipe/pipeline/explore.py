"""``usvpipe explore OUT``: find a run's explorer, its rows and its recordings, and serve them.

The server itself (:mod:`usvpipe.viz._explore_server`) knows nothing of runs; this module reads the
run folder: ``umap/explorer.html``, ``umap/embedding.csv`` (the page's rows, in order, with each
syllable's recording, onset and offset) and the recordings' folder from ``run_manifest.json``'s
``[run].input`` (or ``--recordings``). The review goes to ``OUT/review.csv``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import _io
from ..errors import UsvpipeError


@dataclass(frozen=True)
class ExploreParams:
    """Options of ``usvpipe explore`` (CLI and Python alike)."""

    #: 0: any free port (printed); a fixed one for a bookmark or an SSH tunnel
    port: int = 0
    #: the folder the recordings are relative to; None: the run's ``[run].input``
    recordings: Optional[str] = None


@dataclass
class ExploreTarget:
    explorer: Path
    embedding: Path
    audio_root: Optional[Path]
    review: Path
    why_no_sound: str = ""


def _recordings_root(out: Path, override: Optional[str]) -> tuple[Optional[Path], str]:
    """The folder recording identifiers are relative to, or ``(None, why not)``."""
    from ..segmentation.inputs import discover_inputs

    if override:
        root = Path(override).expanduser()
        if not root.is_dir():
            raise UsvpipeError(root, "is not a folder", "pass the folder of WAV files the run segmented (--recordings)")
        return root, ""
    try:
        source = _io.read_json(out / "run_manifest.json").get("config", {}).get("run", {}).get("input")
    except (OSError, ValueError):
        source = None
    if not source:
        return None, "the run folder does not say where its recordings are (pass --recordings DIR)"
    try:
        return discover_inputs(source)[1], ""
    except UsvpipeError as exc:
        return None, f"its recordings are not readable ({exc}; pass --recordings DIR)"


def find_target(out, params: ExploreParams = ExploreParams()) -> ExploreTarget:
    """What ``usvpipe explore OUT`` serves; a one-line error when ``OUT`` has no explorer."""
    out = Path(out)
    umap = out / "umap" if (out / "umap" / "explorer.html").exists() else out
    explorer, embedding = umap / "explorer.html", umap / "embedding.csv"
    if not explorer.exists():
        raise UsvpipeError(out, "has no umap/explorer.html", "run the umap stage first (`usvpipe run CONFIG`)")
    if not embedding.exists():
        raise UsvpipeError(embedding, "is missing (the explorer's rows)", "re-run the umap stage")
    run_dir = out if umap != out else out.parent
    root, why = _recordings_root(run_dir, params.recordings)
    return ExploreTarget(explorer, embedding, root, run_dir / "review.csv", why)


def make_site(target: ExploreTarget):
    """The server's :class:`~usvpipe.viz._explore_server.ExplorerSite` for ``target`` (checks the rows agree)."""
    import pandas as pd

    from ..viz._explore_server import ExplorerSite

    page = target.explorer.read_text(encoding="utf-8")
    table = pd.read_csv(target.embedding, dtype={"recording": str, "id": str})
    missing = {"id", "recording", "onset_s", "offset_s"} - set(table.columns)
    if missing:
        raise UsvpipeError(target.embedding, f"lacks column(s) {', '.join(sorted(missing))}", "re-run the umap stage")
    m = re.search(r'"n":(\d+)', page)
    if m is None or int(m.group(1)) != len(table):
        raise UsvpipeError(target.explorer, f"does not match {target.embedding.name} ({len(table)} rows)",
                           "re-run the umap stage so both are written together")
    expansion = re.search(r'"time_expansion":(\d+)', page)
    return ExplorerSite(page, table, target.audio_root, target.review,
                        **({"time_expansion": int(expansion.group(1))} if expansion else {}))
