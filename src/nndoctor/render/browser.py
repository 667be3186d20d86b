"""Headless Chromium for the tests and ``make screenshots``: Debian's ``chromium`` and
``chromium-driver`` driven by Selenium (the ``dev`` extra). Nothing is downloaded: the browser
and its driver must already be installed (``.ci/run`` installs them with apt-get)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> tuple[str | None, str | None]:
    """Paths of the browser and its driver, or None where missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    return browser, shutil.which("chromedriver")


def headless_chromium(log_network: bool = False) -> Any:
    """A Selenium Chrome driver on the installed Chromium; ``log_network`` records every
    request in the ``performance`` log (``driver.get_log("performance")``)."""
    browser, driver = find_chromium()
    if browser is None or driver is None:
        raise RuntimeError(
            "chromium and chromedriver are needed: apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    if log_network:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def screenshot(
    driver: Any, page: Path, out: Path, width: int, max_height: int | None = None
) -> Path:
    """Load ``page`` in a viewport ``width`` CSS pixels wide and save the whole page (cut at
    ``max_height``) as PNG, through the DevTools protocol (no window-size limit)."""
    import base64

    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    driver.get(page.resolve().as_uri())
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    if max_height is not None:
        height = min(height, max_height)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
    )
    out.write_bytes(base64.b64decode(shot["data"]))
    return out
