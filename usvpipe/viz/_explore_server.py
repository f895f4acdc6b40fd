"""``usvpipe explore``'s local server: the explorer page, every syllable's sound, the review saved in the run.

Standard library only (``http.server``), bound to 127.0.0.1 on a free port. Three routes and
nothing else:

- ``GET /``: the run's ``explorer.html`` with ``window.USVPIPE_SERVER`` set before its data, so the
  page plays each syllable from ``/clip/<row>.wav`` and saves each mark through ``/review``;
- ``GET /clip/<row>.wav``: the syllable of that row (of ``embedding.csv``, the page's rows), cut from
  its recording and time-expanded (:func:`usvpipe.viz._audio.time_expanded_clip`). Only a row of the
  run can be asked for, and its recording must resolve to a file under the recordings' folder: no
  other path on the disk can be reached, whatever the table or the URL says;
- ``POST /review``: the page's review CSV; every id must be a syllable of the run and every mark
  ``call``, ``noise`` or ``relabel``; the file is rebuilt from the run's own table (recording,
  onset, offset) and written atomically to ``review.csv``.

Requests whose ``Host`` is not this server's address (DNS rebinding) or whose ``Origin`` is another
site are refused.
"""
from __future__ import annotations

import csv
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import numpy as np

from .._io import write_csv_atomic
from ._audio import TIME_EXPANSION, time_expanded_clip

#: the review marks the page makes (the "label" column carries relabel's new label)
REVIEW_KINDS = ("call", "noise", "relabel")
REVIEW_COLUMNS = ["id", "recording", "onset_s", "offset_s", "review", "label"]
#: a review of 100 000 syllables is ~6 MB; anything larger is not the page's
MAX_REVIEW_BYTES = 32 * 1024 * 1024
_CLIP = re.compile(r"^/clip/(\d{1,12})\.wav$")


class ReviewError(ValueError):
    """A posted review the server will not write (the message says which line and why)."""


class ExplorerSite:
    """What the server serves: the page, the rows' recordings and where the review goes.

    ``table``: the explorer's rows in order (``embedding.csv``), with ``id``, ``recording``,
    ``onset_s`` and ``offset_s``; ``audio_root``: the folder the recordings are relative to
    (``None``: no sound is served, the page falls back to its embedded clips).
    """

    def __init__(self, page_html: str, table, audio_root: Optional[Path], review_path: Path, *,
                 time_expansion: int = TIME_EXPANSION):
        self.table = table.reset_index(drop=True)
        self.ids = self.table["id"].astype(str).tolist()
        self.row_of = {x: i for i, x in enumerate(self.ids)}
        self.audio_root = Path(audio_root).resolve() if audio_root is not None else None
        self.review_path = Path(review_path)
        self.time_expansion = int(time_expansion)
        self._page = page_html
        self._lock = threading.Lock()

    # ---- the page -------------------------------------------------------------------------
    def page(self) -> bytes:
        config = {"clip": "/clip/" if self.audio_root is not None else None, "review": "/review",
                  "review_path": str(self.review_path), "reviews": self.existing_reviews()}
        blob = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        marker = '<script type="application/json" id="usvpipe-data">'
        html = self._page.replace(marker, f"<script>window.USVPIPE_SERVER = {blob};</script>\n{marker}", 1)
        return html.encode("utf-8")

    def existing_reviews(self) -> dict:
        """``{id: {row, review, label}}`` of the run's ``review.csv`` (ids no longer in the run dropped)."""
        import pandas as pd

        try:
            old = pd.read_csv(self.review_path, dtype=str, keep_default_na=False)
        except (OSError, ValueError):
            return {}
        out = {}
        for r in old.to_dict(orient="records"):
            row = self.row_of.get(str(r.get("id", "")))
            if row is not None and r.get("review") in REVIEW_KINDS:
                out[self.ids[row]] = {"row": row, "review": r["review"], "label": r.get("label", "")}
        return out

    # ---- sound ----------------------------------------------------------------------------
    def recording_path(self, row: int) -> Optional[Path]:
        """The row's recording, only when it is a file under the recordings' folder."""
        if self.audio_root is None or not 0 <= row < len(self.table):
            return None
        path = (self.audio_root / str(self.table.at[row, "recording"])).resolve()
        if not path.is_relative_to(self.audio_root) or not path.is_file():
            return None
        return path

    def clip(self, row: int) -> Optional[bytes]:
        path = self.recording_path(row)
        if path is None:
            return None
        on, off = float(self.table.at[row, "onset_s"]), float(self.table.at[row, "offset_s"])
        if not (np.isfinite(on) and np.isfinite(off)):
            return None
        return time_expanded_clip(path, on, off, factor=self.time_expansion)

    # ---- review ---------------------------------------------------------------------------
    def parse_review(self, text: str) -> list[tuple[int, str, str]]:
        """``(row, review, label)`` per line of a posted review CSV; :class:`ReviewError` on any bad line."""
        reader = csv.DictReader(io.StringIO(text))
        missing = {"id", "review", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ReviewError(f"the review lacks column(s) {', '.join(sorted(missing))}")
        marks = []
        for k, line in enumerate(reader, start=2):
            row = self.row_of.get(line["id"])
            if row is None:
                raise ReviewError(f"line {k}: {line['id']!r} is not a syllable of this run")
            if line["review"] not in REVIEW_KINDS:
                raise ReviewError(f"line {k}: review {line['review']!r} is not one of {', '.join(REVIEW_KINDS)}")
            marks.append((row, line["review"], line["label"] or ""))
        return marks

    def save_review(self, text: str) -> int:
        """Write the review into ``review.csv`` (atomic); returns how many syllables it marks."""
        import pandas as pd

        marks = self.parse_review(text)
        rows = [{"id": self.ids[r], "recording": self.table.at[r, "recording"], "onset_s": self.table.at[r, "onset_s"],
                 "offset_s": self.table.at[r, "offset_s"], "review": kind, "label": label} for r, kind, label in marks]
        frame = pd.DataFrame(rows, columns=REVIEW_COLUMNS).sort_values("id", kind="stable")
        with self._lock:  # two quick marks: the later file wins whole
            write_csv_atomic(self.review_path, frame, index=False, float_format="%.10g")
        return len(frame)


class _Handler(BaseHTTPRequestHandler):
    site: ExplorerSite  # set on the subclass made per server
    server_version = "usvpipe-explore"

    def log_message(self, format, *args):  # noqa: A002 - http.server's name
        pass  # quiet: the terminal shows the URL and errors only

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: dict) -> None:
        self._send(code, json.dumps(obj).encode("utf-8"), "application/json")

    def _ours(self) -> bool:
        """The request names this server (Host) and, when it says, comes from this server's page (Origin)."""
        host, port = self.server.server_address[:2]
        allowed = {f"{host}:{port}", f"localhost:{port}"}
        if self.headers.get("Host") not in allowed:
            return False
        origin = self.headers.get("Origin")
        return origin is None or origin in {f"http://{a}" for a in allowed}

    def do_GET(self):  # noqa: N802 - http.server's name
        if not self._ours():
            return self._json(403, {"error": "not this server's address"})
        path = self.path.split("?", 1)[0]
        if path in ("/", "/explorer.html"):
            return self._send(200, self.site.page(), "text/html; charset=utf-8")
        m = _CLIP.match(path)
        if m:
            try:
                blob = self.site.clip(int(m.group(1)))
            except (RuntimeError, OSError, ValueError) as exc:
                return self._json(404, {"error": f"could not cut the clip: {exc}"})
            if blob is not None:
                return self._send(200, blob, "audio/wav")
            return self._json(404, {"error": "no such syllable, or its recording is not under the recordings' folder"})
        return self._json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        if not self._ours():
            return self._json(403, {"error": "not this server's address"})
        if self.path != "/review":
            return self._json(404, {"error": "not found"})
        try:
            n = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._json(411, {"error": "Content-Length required"})
        if not 0 <= n <= MAX_REVIEW_BYTES:
            return self._json(413, {"error": "review too large"})
        try:
            count = self.site.save_review(self.rfile.read(n).decode("utf-8"))
        except (ReviewError, UnicodeDecodeError, csv.Error) as exc:
            return self._json(400, {"error": str(exc)})
        self._json(200, {"path": str(self.site.review_path), "n": count})


def make_server(site: ExplorerSite, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``site`` on 127.0.0.1 (``port`` 0: a free one); ``serve_forever()`` it."""
    handler = type("Handler", (_Handler,), {"site": site})
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
    server.daemon_threads = True
    return server
