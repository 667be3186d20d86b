"""The seed case's HTML report in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium): at phone and desktop widths every image loads, the
findings are there, nothing overflows sideways, and the page makes no network request.

``.ci/run`` installs Chromium where it is missing; in CI (``CI`` set) a missing browser fails.
"""

from __future__ import annotations

import json
import os

import pytest

from nndoctor.render.browser import find_chromium, headless_chromium
from nndoctor.seedcase import run_seed_case, seed_page

WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


def _driver():
    browser, driver = find_chromium()
    if not (browser and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are required in CI (.ci/run installs them)")
        pytest.skip(
            "chromium / chromedriver not installed: apt-get install chromium chromium-driver"
        )
    pytest.importorskip("selenium.webdriver", reason="selenium: the dev extra")
    return headless_chromium(log_network=True)


@pytest.fixture(scope="module")
def seed_html(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="the plot extra draws the page's plots")
    result = run_seed_case(n_samples=8, epochs=20, progress=False)
    path = tmp_path_factory.mktemp("html") / "seed.html"
    path.write_text(seed_page(result), encoding="utf-8")
    return path, result


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_seed_report_in_headless_chromium(seed_html, tmp_path):
    path, result = seed_html
    driver = _driver()
    try:
        for name, (width, height) in WIDTHS.items():
            driver.set_window_size(width, height)
            driver.get(path.as_uri())
            images = driver.execute_script(
                "return Array.from(document.images).map(i => ["
                "i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width])"
            )
            # the seed report draws the loss, output-spread, gradients and spectrum at least
            assert len(images) >= 4
            for complete, natural_w, natural_h, shown_w in images:
                assert complete and natural_w > 0 and natural_h > 0 and shown_w > 0
            text = driver.find_element("tag name", "body").text
            finding = result.report.causes[0]
            assert "Verdict" in text and finding.code in text and finding.title in text
            # nothing wider than the phone: no sideways scrolling of the page
            scroll = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll[0] <= scroll[1] + 1, (name, scroll)
            shot = tmp_path / f"{name}.png"
            assert driver.save_screenshot(str(shot))
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            requests = _requests(driver)
            assert requests, "the performance log recorded no request at all"
            remote = [u for u in requests if not u.startswith(("file://", "data:"))]
            assert remote == [], remote
            assert [u for u in requests if u.startswith("file://")] == [path.as_uri()]
    finally:
        driver.quit()
