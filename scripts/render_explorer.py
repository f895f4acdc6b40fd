#!/usr/bin/env python
"""Render a usvpipe explorer.html in headless Chromium: screenshot + script-error check.

    python scripts/render_explorer.py OUT/explorer.html --screenshot shot.png [--select ROW]

Two headless runs of the same URL (optionally ``#row=ROW``, which pre-selects a point so
the hover panel with its spectrogram is visible):

1. ``--dump-dom``: the page collects every script error (window ``error`` events,
   unhandled rejections, ``console.error``) into ``<div id="js-status">``; we read its
   ``data-status`` (``ready`` once the page initialised), ``data-nerrors``/``data-errors``,
   ``data-selected`` and ``data-thumb`` (``shown`` once a thumbnail was decoded and drawn).
   Chromium's own console log (``--enable-logging=stderr``) is scanned as a second
   opinion: any ``CONSOLE`` line at ERROR level, or containing ``Uncaught``, counts.
2. ``--screenshot`` at ``--window-size``.

Prints a JSON summary; exit status 0 when the page is ready with no errors (and, with
``--select``, the thumbnail was shown), 1 otherwise, 3 when no Chromium is found.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--autoplay-policy=no-user-gesture-required",
)


def find_browser() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(browser: str, url: str, extra: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="usvpipe-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, errors="replace")


def _status(dom: str) -> dict:
    m = re.search(r'<div id="js-status"([^>]*)>', dom)
    if not m:
        return {}
    return {k: html.unescape(v) for k, v in re.findall(r'data-([a-z]+)="([^"]*)"', m.group(1))}


def console_errors(stderr: str) -> list[str]:
    out = []
    for line in stderr.splitlines():
        if "CONSOLE" in line and (":ERROR:" in line or "Uncaught" in line or "Error" in line):
            out.append(line.strip()[:300])
    return out


def check(html_path, *, screenshot=None, select=None, color=None, window_size="1200,800", budget_ms=5000, timeout_s=120.0,
          review=None, play=False) -> dict:
    """Render ``html_path``; returns a summary dict (``ok`` True when it rendered cleanly).

    ``review`` ("call", "noise" or "relabel:<label>") marks the selected point as the review
    buttons do and ``play`` starts its clip; the summary then holds the review CSV the page
    would export and the decoded clip's duration."""
    browser = find_browser()
    if browser is None:
        return {"ok": False, "error": "no chromium on PATH"}
    frag = [f"row={int(select)}"] if select is not None else []
    frag += [f"color={quote(color)}"] if color else []
    frag += [f"review={quote(review)}"] if review else []
    frag += ["play=1"] if play else []
    url = Path(html_path).resolve().as_uri() + ("#" + "&".join(frag) if frag else "")
    common = [f"--window-size={window_size}", f"--virtual-time-budget={budget_ms}"]
    dom_run = _run(browser, url, [*common, "--dump-dom"], timeout_s)
    status = _status(dom_run.stdout)
    errors = [e for e in status.get("errors", "").split(" | ") if e]
    cons = console_errors(dom_run.stderr)
    summary = {
        "browser": browser,
        "url": url,
        "status": status.get("status", "missing"),
        "n_points": int(status["n"]) if status.get("n", "").isdigit() else None,
        "page_errors": errors,
        "console_errors": cons,
        "selected": status.get("selected"),
        "thumbnail_shown": status.get("thumb") == "shown",
        "parse_and_index_ms": float(status["loadms"]) if status.get("loadms") else None,
        "redraw_ms": float(status["drawms"]) if status.get("drawms") else None,
        "reviewed": int(status["reviewed"]) if status.get("reviewed", "").isdigit() else 0,
        "review_csv": status.get("reviewcsv"),
        "played": status.get("played"),
        "clip_ms": float(status["clipms"]) if status.get("clipms") else None,
    }
    if screenshot is not None:
        screenshot = Path(screenshot).resolve()
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = _run(browser, url, [*common, f"--screenshot={screenshot}"], timeout_s)
        summary["screenshot"] = str(screenshot) if screenshot.exists() else None
        summary["console_errors"] += [e for e in console_errors(shot.stderr) if e not in cons]
    ok = summary["status"] == "ready" and not summary["page_errors"] and not summary["console_errors"]
    if select is not None:
        ok = ok and summary["selected"] == str(int(select))
    if screenshot is not None:
        ok = ok and summary.get("screenshot") is not None
    summary["ok"] = bool(ok)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--screenshot", type=Path, default=None, help="PNG to write")
    ap.add_argument("--select", type=int, default=None, help="row to pre-select (shows the hover panel)")
    ap.add_argument("--color", default=None, help="column to colour by (default: the file's)")
    ap.add_argument("--window-size", default="1200,800")
    ap.add_argument("--require-thumbnail", action="store_true", help="fail unless the selected point's spectrogram was drawn")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--review", default=None, help="mark the selected point: call, noise or relabel:<label>")
    ap.add_argument("--play", action="store_true", help="play the selected point's clip (reports its decoded duration)")
    args = ap.parse_args(argv)
    if not args.html.is_file():
        print(f"{args.html}: not a file", file=sys.stderr)
        return 2
    if find_browser() is None:
        print("no chromium on PATH (install: apt-get install -y chromium)", file=sys.stderr)
        return 3
    s = check(args.html, screenshot=args.screenshot, select=args.select, color=args.color, window_size=args.window_size,
              timeout_s=args.timeout, review=args.review, play=args.play)
    if args.require_thumbnail and not s.get("thumbnail_shown"):
        s["ok"] = False
    print(json.dumps(s, indent=2))
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
