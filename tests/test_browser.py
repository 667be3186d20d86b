"""The seed case's HTML report in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium): at phone and desktop widths every image loads, the
findings are there, nothing overflows sideways, the plots' text is large enough to read, and
the page makes no network request. And the README's screenshots are as new as the code that
draws what they show (no browser needed for that).

``.ci/run`` installs Chromium where it is missing; in CI (``CI`` set) a missing browser fails.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from nndoctor.render.browser import find_chromium, headless_chromium
from nndoctor.seedcase import run_seed_case, seed_page

WIDTHS = {"phone": (390, 844), "desktop": (1100, 900)}
# the smallest text of a plot as shown, in CSS px: about 4 px on a phone before
MIN_TEXT_PX = {"phone": 10.0, "desktop": 13.0}
ROOT = Path(__file__).resolve().parents[1]


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


def _smallest_text(src: str, shown_width: float) -> float:
    """Size in CSS px of the smallest text of an SVG plot shown ``shown_width`` px wide."""
    svg = unquote(src.split(",", 1)[1])
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))
    sizes = [float(x) for x in re.findall(r"font-size: ?([\d.]+)px", svg)]
    assert sizes, "a plot without text drawn as text"
    return min(sizes) * shown_width / width


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
            for src, shown_w in driver.execute_script(
                "return Array.from(document.images).map(i => "
                "[i.src, i.getBoundingClientRect().width])"
            ):
                assert _smallest_text(src, shown_w) >= MIN_TEXT_PX[name], (name, src[:60])
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


def test_the_screenshots_are_as_new_as_the_code():
    """``make screenshots`` records a fingerprint of what the pictures show beside them (the
    report's words and the drawing code: ``tools/screenshots.py``); code that changes it
    without new pictures fails here."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from screenshots import STAMP, fingerprint
    finally:
        sys.path.remove(str(ROOT / "tools"))
    recorded = json.loads(STAMP.read_text(encoding="utf-8"))["fingerprint"]
    for name in ("report-html.png", "report-phone.png", "report-terminal.png"):
        assert (STAMP.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert fingerprint() == recorded, (
        "docs/img: the screenshots are older than the report code they show; run "
        "`make screenshots` and commit docs/img"
    )
