"""report.html and explorer.html in a real browser (headless Chromium driven by Selenium).

Each test fails on any console error. The explorer is used as a scientist uses it: click a point,
play it (the audio element's source is that syllable's clip), mark it, and read the review back
(downloaded offline; written into the run by ``usvpipe explore``). Skips, saying what to install,
where Chromium, chromedriver or selenium is missing; ``.ci/run`` installs them.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from browser_driver import chromium, console_errors, unavailable, wait_for  # noqa: E402
from small_run import make_small_run  # noqa: E402

import os  # noqa: E402

#: Set by .ci/run: there the browser tests must run, so a missing browser fails instead of skipping.
REQUIRED = os.environ.get("USVPIPE_REQUIRE_BROWSER") == "1"
if REQUIRED and unavailable() is not None:
    raise RuntimeError(f"USVPIPE_REQUIRE_BROWSER=1 but {unavailable()}")

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"browser tests: {unavailable()}")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_small_run(tmp_path_factory.mktemp("browser"))


def _page_data(driver) -> dict:
    return driver.execute_script("return JSON.parse(document.getElementById('usvpipe-data').textContent)")


def _click_row(driver, row: int) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    x, y = driver.execute_script(f"return window.usvpipePointPx({row})")
    canvas = driver.find_element(By.ID, "cv")
    rect = driver.execute_script("var b = arguments[0].getBoundingClientRect(); return [b.left, b.top, b.width, b.height]", canvas)
    # Selenium 4 offsets are from the element's centre
    ActionChains(driver).move_to_element_with_offset(canvas, round(x - rect[0] - rect[2] / 2),
                                                     round(y - rect[1] - rect[3] / 2)).click().perform()
    wait_for(driver, f"document.getElementById('js-status').dataset.pinned === '{row}'")


def _status(driver, key: str):
    return driver.execute_script(f"return document.getElementById('js-status').dataset.{key}")


def _lone_row(data: dict, rows) -> int:
    """A row of ``rows`` with no other point within 30 px-equivalents (so a click hits it alone)."""
    import numpy as np

    xy = np.c_[data["x"], data["y"]].astype(float)
    for r in rows:
        d = np.hypot(*(xy - xy[r]).T)
        d[r] = np.inf
        if d.min() > 0.04 * 65535:
            return int(r)
    return int(rows[0])


def test_the_report_opens_without_a_console_error_and_leads_with_the_answer(run):
    with chromium() as driver:
        driver.get((run / "report.html").as_uri())
        wait_for(driver, "document.readyState === 'complete'")
        text = driver.find_element("tag name", "body").text
        assert console_errors(driver) == []
        assert text.index("The answer") < text.index("Stages")
        assert "A (4 animals, 24 syllables) and B (4 animals, 24 syllables) differ" in text
        imgs = driver.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert imgs and all(ok and w > 0 for ok, w in imgs)  # every embedded figure decodes


def test_offline_explorer_click_play_review_and_export(run, tmp_path):
    with chromium(downloads=tmp_path) as driver:
        driver.get((run / "umap" / "explorer.html").as_uri())
        wait_for(driver, "document.getElementById('js-status').dataset.status === 'ready'")
        data = _page_data(driver)
        row = _lone_row(data, data["clip_rows"])
        _click_row(driver, row)
        assert _status(driver, "selected") == str(row)
        driver.find_element("id", "play").click()
        assert driver.execute_script("return document.getElementById('player').src") == \
            "data:audio/wav;base64," + data["clips"][data["clip_rows"].index(row)]
        assert int(wait_for(driver, "document.getElementById('js-status').dataset.clipms")) > 0  # it decoded
        driver.find_element("id", "rv-call").click()
        driver.find_element("id", "rv-export").click()
        target = tmp_path / "review.csv"
        deadline = time.time() + 20
        while not target.exists() and time.time() < deadline:
            time.sleep(0.1)
        review = pd.read_csv(target, keep_default_na=False)
        assert review[["id", "review", "label"]].values.tolist() == [[data["ids"][row] if data["ids"] else
                                                                      _status(driver, "played"), "call", "call"]]
        assert console_errors(driver) == []


def test_served_explorer_plays_the_clicked_syllable_and_saves_the_review_into_the_run(run):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from usvpipe.pipeline.explore import find_target, make_site
    from usvpipe.viz._explore_server import make_server

    server = make_server(make_site(find_target(run)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with chromium(1280, 800) as driver:
            driver.get(url)
            wait_for(driver, "document.getElementById('js-status').dataset.status === 'ready'")
            assert "click to pin, Esc to unpin" in driver.find_element("id", "help").text
            # the review box is on screen at 1280 x 800, without scrolling
            bottom = driver.execute_script("return document.getElementById('fs-review').getBoundingClientRect().bottom")
            assert bottom <= 800
            data = _page_data(driver)
            without_clip = [r for r in range(data["n"]) if r not in set(data["clip_rows"])]
            row = _lone_row(data, without_clip)  # offline, this one would play a neighbour
            _click_row(driver, row)
            driver.find_element("id", "play").click()
            assert driver.execute_script("return document.getElementById('player').src") == f"{url}clip/{row}.wav"
            assert int(wait_for(driver, "document.getElementById('js-status').dataset.clipms")) > 0
            ActionChains(driver).send_keys("n").perform()
            assert wait_for(driver, "document.getElementById('js-status').dataset.saved") == "1"
            ActionChains(driver).send_keys(Keys.ESCAPE).perform()
            assert _status(driver, "pinned") == "-1"
            assert console_errors(driver) == []
        review = pd.read_csv(run / "review.csv", keep_default_na=False)
        table = pd.read_csv(run / "umap" / "embedding.csv")
        assert review[["id", "recording", "review"]].values.tolist() == [[table.at[row, "id"], table.at[row, "recording"],
                                                                          "noise"]]
    finally:
        server.shutdown()
        server.server_close()
        (run / "review.csv").unlink(missing_ok=True)


def test_a_page_that_throws_fails_the_check(run, tmp_path):
    # the check is not blind: the same page with a script error is caught
    broken = tmp_path / "broken.html"
    broken.write_text((run / "umap" / "explorer.html").read_text().replace('"use strict";', '"use strict"; null.boom;', 1))
    with chromium() as driver:
        driver.get(broken.as_uri())
        time.sleep(0.5)
        assert any("boom" in e or "null" in e for e in console_errors(driver))
