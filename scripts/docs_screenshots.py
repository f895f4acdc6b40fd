#!/usr/bin/env python
"""Render the documentation's screenshots of a run's report and explorer in headless Chromium.

    python scripts/docs_screenshots.py usvpipe_demo            # -> docs/img/report.png, docs/img/explorer_review.png
    python scripts/docs_screenshots.py OUT --out-dir /tmp/shots --select 12

The same Selenium driver as the browser tests (``scripts/browser_driver.py``). The report is
shot ``--width`` wide and ``--report-height`` tall (its top: the answer, the warnings and the
first tables). The explorer is served as ``usvpipe explore`` serves it (when the run's
recordings are readable; else the offline file) at 1280 x 800, with row ``--select`` clicked,
played and marked "call", so the listening and review panel shows; the mark is not saved into
the run (the review goes to a scratch file). Exit status 1 on any console error, 3 without a browser.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_driver import chromium, console_errors, unavailable, wait_for  # noqa: E402


def shoot_report(report: Path, shot: Path, width: int, height: int) -> list[str]:
    with chromium(width, height) as driver:
        driver.get(report.resolve().as_uri())
        wait_for(driver, "document.readyState === 'complete'")
        driver.save_screenshot(str(shot))
        return console_errors(driver)


def shoot_explorer(run_dir: Path, shot: Path, row: int) -> dict:
    from usvpipe.pipeline.explore import find_target, make_site
    from usvpipe.viz._explore_server import make_server

    target = find_target(run_dir)
    server = None
    url = (run_dir / "umap" / "explorer.html").resolve().as_uri()
    with tempfile.TemporaryDirectory() as scratch:
        if target.audio_root is not None:
            target.review = Path(scratch) / "review.csv"  # a screenshot must not change the run's review
            server = make_server(make_site(target))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_address[1]}/"
        try:
            with chromium(1280, 800) as driver:
                driver.get(f"{url}#row={row}")  # pre-selected and pinned, as a click would
                wait_for(driver, "document.getElementById('js-status').dataset.status === 'ready'")
                driver.find_element("id", "play").click()
                driver.find_element("id", "rv-call").click()
                driver.save_screenshot(str(shot))
                return {"url": url, "served": server is not None, "errors": console_errors(driver),
                        "selected": driver.execute_script("return document.getElementById('js-status').dataset.selected")}
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    ap.add_argument("--select", type=int, default=7)
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--report-height", type=int, default=1600)
    args = ap.parse_args(argv)
    why = unavailable()
    if why:
        print(f"no browser: {why}", file=sys.stderr)
        return 3
    args.out_dir.mkdir(parents=True, exist_ok=True)
    done: dict = {}
    if (args.run_dir / "report.html").exists():
        shot = (args.out_dir / "report.png").resolve()
        done["report"] = str(shot)
        done["report_errors"] = shoot_report(args.run_dir / "report.html", shot, args.width, args.report_height)
    if (args.run_dir / "umap" / "explorer.html").exists():
        shot = (args.out_dir / "explorer_review.png").resolve()
        done["explorer"] = str(shot)
        done.update({f"explorer_{k}": v for k, v in shoot_explorer(args.run_dir, shot, args.select).items()})
    print(json.dumps(done, indent=2))
    clean = not done.get("report_errors") and not done.get("explorer_errors")
    return 0 if done and clean else 1


if __name__ == "__main__":
    sys.exit(main())
