"""Headless Chromium for the page tests (Debian's chromium and chromium-driver; never a
downloaded browser). `open_browser()` skips the test when they are missing."""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps trying to reach update and sync
# services, which on a closed network makes every start slow.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1500,1100",
    "--hide-scrollbars",
    "--lang=en-US",
]


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    driver = shutil.which("chromedriver") or (CHROMEDRIVER if Path(CHROMEDRIVER).exists() else None)
    if not browser or not driver:
        pytest.skip(
            "headless Chromium is not installed here (apt-get install chromium chromium-driver; .ci/run installs it)"
        )
    return browser, driver


@contextmanager
def open_browser():
    """A selenium WebDriver on headless Chromium with browser and network logs enabled."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    profile = tempfile.mkdtemp(prefix="codeprobe-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_problems(driver) -> list[str]:
    """Console messages at warning level or worse (errors, CSP violations, failed loads)."""
    return [f"{e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def requested_urls(driver, page_url: str) -> list[str]:
    """Every URL requested for the document at `page_url` (the document itself included), from
    the DevTools performance log; the browser's own start page is not ours to judge."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent" and message["params"].get("documentURL") == page_url:
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_ready(driver, timeout: float = 30) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "1"
    )
