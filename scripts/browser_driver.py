"""Headless Chromium driven by Selenium: the one driver of the browser tests and the docs' screenshots.

Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``.ci/run`` installs them when missing). Chromium starts with a fresh
profile and every network feature off (this machine's network is closed, and a test must not
depend on one). The browser's console is collected (``goog:loggingPrefs``) so a caller can fail
on any error the page logs, beside the errors the usvpipe pages collect themselves.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator, Optional

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
         "--hide-scrollbars")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver; pip install selenium (the dev extra)"


def browser_paths() -> tuple[Optional[str], Optional[str]]:
    """``(chromium, chromedriver)`` on PATH (``$CHROMIUM`` / ``$CHROMEDRIVER`` first), None where absent."""
    browser = os.environ.get("CHROMIUM") or next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def unavailable() -> Optional[str]:
    """Why the browser checks cannot run here, or None when they can."""
    browser, driver = browser_paths()
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    return f"{' and '.join(missing)} not installed ({INSTALL})" if missing else None


@contextmanager
def chromium(width: int = 1280, height: int = 800, *, downloads=None) -> Iterator[object]:
    """A headless Chromium WebDriver with a fresh profile, its viewport ``width`` x ``height`` CSS px;
    files the page downloads go to the folder ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_paths()
    with tempfile.TemporaryDirectory(prefix="usvpipe-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for flag in FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={profile}")
        opts.add_argument(f"--window-size={width},{height}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
        try:
            if downloads is not None:
                driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            # --window-size sizes the window; the page's viewport is what a user sees: make that the size asked
            inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
            if inner != [width, height]:
                driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
            yield driver
        finally:
            driver.quit()


def console_errors(driver) -> list[str]:
    """The browser console's errors since the last call (SEVERE entries), and the page's own collected ones."""
    out = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    try:
        out += driver.execute_script("return window.__errors || []") or []
    except Exception:  # noqa: BLE001 - a page without the collector
        pass
    return out


def wait_for(driver, script: str, timeout_s: float = 20.0):
    """Poll ``return <script>`` until it is truthy; returns its value (TimeoutException after ``timeout_s``)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(lambda d: d.execute_script("return " + script))
