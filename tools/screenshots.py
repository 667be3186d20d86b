"""Make the README's screenshots from the real code (``make screenshots``).

Replays the seed case (``nndoctor seed`` with its defaults), then photographs with headless
Chromium: the HTML report (docs/img/report-html.png, desktop width, and
docs/img/report-phone.png) and the terminal summary as rich draws it
(docs/img/report-terminal.png).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from nndoctor.render.browser import headless_chromium, screenshot
from nndoctor.render.terminal import NORMAL, _rich_renderables
from nndoctor.seedcase import run_seed_case, seed_page

OUT = Path(__file__).resolve().parents[1] / "docs" / "img"


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


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    result = run_seed_case(progress=False)
    assert result.report is not None
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "seed.html"
        page.write_text(seed_page(result), encoding="utf-8")
        term = Path(tmp) / "terminal.html"
        term.write_text(terminal_html(result.report), encoding="utf-8")
        driver = headless_chromium()
        try:
            screenshot(driver, page, OUT / "report-html.png", 1000, max_height=2400)
            phone = Path(tmp) / "report.html"
            phone.write_text(result.report.to_html(), encoding="utf-8")
            screenshot(driver, phone, OUT / "report-phone.png", 390, max_height=1800)
            screenshot(driver, term, OUT / "report-terminal.png", 1040)
        finally:
            driver.quit()
    for name in ("report-html.png", "report-phone.png", "report-terminal.png"):
        print(f"{OUT / name}: {(OUT / name).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
