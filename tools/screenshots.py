"""Make the README's screenshots from the real code (``make screenshots``).

Replays the seed case (``nndoctor seed`` with its defaults), then photographs with headless
Chromium: the seed page at a desktop's 1100 px (docs/img/report-html.png), the report at a
phone's 390 px (docs/img/report-phone.png) and the terminal summary as rich draws it
(docs/img/report-terminal.png).

Beside them it records the code's fingerprint (docs/img/screenshots.json, see
:func:`fingerprint`); ``tests/test_browser.py`` recomputes it, so CI fails when the committed
screenshots are older than the code that draws what they show.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
import tempfile
from pathlib import Path

from nndoctor.render.browser import headless_chromium, screenshot
from nndoctor.render.terminal import NORMAL, _rich_renderables

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
STAMP = OUT / "screenshots.json"
# (file, viewport width in CSS px, height cut at)
SHOTS = (("report-html.png", 1100, 2000), ("report-phone.png", 390, 2600))
# the code that draws the pictures besides what the report's text already shows: the
# templates and styles, the plots and their embedding, the terminal's layout, this script
SOURCES = (
    "src/nndoctor/render/templates/page.html.j2",
    "src/nndoctor/render/templates/section.html.j2",
    "src/nndoctor/render/templates/style.css.j2",
    "src/nndoctor/render/html.py",
    "src/nndoctor/render/terminal.py",
    "src/nndoctor/plot.py",
    "tools/screenshots.py",
)


def terminal_html(report, width: int = 100) -> str:
    """The coloured terminal summary as an HTML page (rich's own export, dark background)."""
    import io

    from rich.console import Console
    from rich.terminal_theme import MONOKAI

    console = Console(record=True, width=width, force_terminal=True, file=io.StringIO())
    console.print("$ nndoctor seed   # ... the story, then:", style="dim")
    for item in _rich_renderables(report, NORMAL):
        console.print(item)
    html = console.export_html(theme=MONOKAI, inline_styles=True)
    return html.replace("<body>", '<body style="margin:0;padding:12px;background:#272822">', 1)


def fingerprint() -> str:
    """What the screenshots show, as a hash that does not depend on the machine or the clock:
    the words of the seed case's report (its plain terminal text and its HTML page, every
    digit masked) from a short run that finds what the full one finds (100 samples, 100
    epochs, no trials, under a second), the seed page's introduction, and the sources of
    :data:`SOURCES`. Numbers are left out on purpose: the full run's trial budgets follow the
    clock, and some CPUs' rounding splits a unit late in it; so are ANSI colour codes, which
    depend on the terminal the tests run in.
    """
    from nndoctor import diagnose
    from nndoctor.nn import SGD, SSE
    from nndoctor.render.terminal import plain_text
    from nndoctor.seedcase import N_VISIBLE, seed_data, seed_model, seed_page

    _, X = seed_data(100)
    report = diagnose(seed_model("zeros", 0), X, None, loss=SSE(), optimizer=SGD(lr=0.05),
                      epochs=100, batch_size=N_VISIBLE, shuffle=False, seed=0, trials=False,
                      progress=False)  # fmt: skip
    words = [plain_text(report), report.to_html(plots=False)]
    digest = hashlib.sha256()
    for text in words:
        digest.update(re.sub(r"\d", "#", text).encode())
    digest.update(inspect.getsource(seed_page).encode())
    for name in SOURCES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def main() -> int:
    from nndoctor.seedcase import run_seed_case, seed_page

    OUT.mkdir(parents=True, exist_ok=True)
    result = run_seed_case(progress=False)
    assert result.report is not None
    with tempfile.TemporaryDirectory() as tmp:
        pages = {"report-html.png": Path(tmp) / "seed.html",
                 "report-phone.png": Path(tmp) / "report.html"}  # fmt: skip
        pages["report-html.png"].write_text(seed_page(result), encoding="utf-8")
        pages["report-phone.png"].write_text(result.report.to_html(), encoding="utf-8")
        term = Path(tmp) / "terminal.html"
        term.write_text(terminal_html(result.report), encoding="utf-8")
        driver = headless_chromium()
        try:
            for name, width, height in SHOTS:
                screenshot(driver, pages[name], OUT / name, width, max_height=height)
            screenshot(driver, term, OUT / "report-terminal.png", 1040)
        finally:
            driver.quit()
    stamp = {
        "fingerprint": fingerprint(),
        "made by": "make screenshots (tools/screenshots.py)",
        "shows": "the seed case's report: seed page at 1100 px, report at 390 px, terminal",
    }
    STAMP.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    for name in (*(s[0] for s in SHOTS), "report-terminal.png"):
        print(f"{OUT / name}: {(OUT / name).stat().st_size // 1024} KiB")
    print(f"{STAMP}: fingerprint {stamp['fingerprint'][:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
