#!/usr/bin/env python
"""Render the documentation's screenshots of a run's report and explorer in headless Chromium.

    python scripts/docs_screenshots.py usvpipe_demo            # -> docs/img/report.png, docs/img/explorer_review.png
    python scripts/docs_screenshots.py OUT --out-dir /tmp/shots --select 12

The report is shot at 1200 px wide and ``--report-height`` tall (its top: the answer, the
warnings and the first tables); the explorer with row ``--select`` pinned, its clip played
and marked "call", so the listening and review panel is visible. Exit status 3 without Chromium.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_explorer import _run, check, find_browser  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    ap.add_argument("--select", type=int, default=7)
    ap.add_argument("--report-height", type=int, default=1600)
    args = ap.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no chromium on PATH (install: apt-get install -y chromium)", file=sys.stderr)
        return 3
    args.out_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    report = args.run_dir / "report.html"
    if report.exists():
        shot = (args.out_dir / "report.png").resolve()
        _run(browser, report.resolve().as_uri(), [f"--window-size=1200,{args.report_height}", f"--screenshot={shot}"], 120)
        done["report"] = str(shot) if shot.exists() else None
    explorer = args.run_dir / "umap" / "explorer.html"
    if explorer.exists():
        s = check(explorer, screenshot=args.out_dir / "explorer_review.png", select=args.select, review="call", play=True,
                  window_size="1200,800")
        done["explorer"] = s.get("screenshot")
        done["explorer_ok"] = s.get("ok")
        done["explorer_errors"] = s.get("page_errors", []) + s.get("console_errors", [])
    print(json.dumps(done, indent=2))
    return 0 if all(v for k, v in done.items() if k in ("report", "explorer")) and done else 1


if __name__ == "__main__":
    sys.exit(main())
