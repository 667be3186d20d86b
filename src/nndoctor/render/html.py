"""The report as one self-contained HTML page: findings first, each with its plain sentence,
evidence table, fix, trial and its plots; then the other plots, the bounds and the glossary.

Built from Jinja2 templates (``templates/*.html.j2``); plots are embedded as SVG data URIs, so
the page needs no network to view (no CDN, no remote fonts, no scripts). The same page, without
the ``<html>`` wrapper, is what a Jupyter notebook shows (``Report._repr_html_``): there every
id on it carries a random prefix, so two reports in one notebook never share one and a link
always lands in its own report.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nndoctor import __version__
from nndoctor.render.plain import GLOSSARY, finding_view, summary_line, verdict


@dataclass
class Section:
    """One report on a page: a title, an optional lead text and table, the report itself."""

    title: str
    report: Any
    intro: list[str] = field(default_factory=list)
    anchor: str = ""


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("nndoctor.render", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


_NUMBER = re.compile(r"-?\d+\.\d{2,}")


def _short_number(match: re.Match[str]) -> str:
    text = f"{float(match.group()):.1f}"
    return text.removesuffix(".0")


def compact_svg(svg: bytes) -> str:
    """matplotlib's SVG with what a page does not need left out: the XML prolog and doctype,
    the metadata, comments, the ids of groups (nothing refers to them), indentation, and the
    digits of coordinates beyond 0.1 pt (a tenth of a pixel at the size the page shows);
    about a third smaller. The text the plot shows is kept as it is."""
    text = svg.decode("utf-8")
    text = re.sub(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<metadata>.*?</metadata>|<!--.*?-->", "", text,
                  flags=re.DOTALL)  # fmt: skip
    text = re.sub(r'<g id="[^"]*"', "<g", text)
    text = re.sub(r'\s*transform="rotate\(-?0 [^)]*\)"', "", text)
    text = re.sub(r"\s*\n\s*", " ", text).replace("> <", "><")
    # numbers inside tags only: a text's own digits ("2.658" in a legend) are the report's
    return re.sub(r"<[^>]*>", lambda tag: _NUMBER.sub(_short_number, tag.group()), text)


def svg_data_uri(svg: bytes) -> str:
    """``svg`` as a ``data:`` URI: :func:`compact_svg`, percent-encoded where a URI or an HTML
    attribute needs it (smaller than base64, which adds a third)."""
    return "data:image/svg+xml," + urllib.parse.quote(compact_svg(svg), safe=" /:;=,()!*+-._~?@$[]")


def _plots(report: Any, want: bool) -> dict[str, dict[str, str]]:
    """name -> {title, src} of every plot the report has data for (empty without matplotlib)."""
    if not want:
        return {}
    try:
        from nndoctor import plot as plot_module

        plot_module._extras.require("matplotlib")
    except ImportError:
        return {}
    out = {}
    for name in plot_module.available_plots(report):
        fig = plot_module.plot(report, name)
        svg = plot_module.figure_bytes(fig, "svg")
        out[name] = {"title": plot_module.PLOTS[name][2], "src": svg_data_uri(svg)}
    return out


def _section_context(section: Section, plots: bool, index: int, prefix: str) -> dict[str, Any]:
    report = section.report
    drawn = _plots(report, plots)
    views = [finding_view(f, list(drawn)) for f in report.findings]
    used = {p for v in views for p in v.plots}
    # each plot is drawn once, under the first finding it supports; later ones link to it
    shown: set[str] = set()
    placed = []
    top = next((i for i, f in enumerate(report.findings) if f.kind == "cause"), 0)
    for i, v in enumerate(views):
        here = [p for p in v.plots if p not in shown]
        shown.update(here)
        placed.append(
            {
                "view": v,
                "here": here,
                "above": [p for p in v.plots if p not in here],
                # the verdict already says this finding's sentence: show its title instead
                "is_verdict": i == top,
            }
        )
    terms = sorted({t for v in views for t, _, _ in v.terms})
    return {
        "title": section.title,
        "anchor": prefix + (section.anchor or f"report-{index}"),
        "intro": section.intro,
        "summary": summary_line(report),
        "verdict": verdict(report),
        "healthy": not report.findings,
        "findings": placed,
        "plots": drawn,
        "other_plots": [name for name in drawn if name not in used],
        "bounds": report.bounds.get("text", ""),
        "terms": terms,
    }


def render_page(
    sections: Sequence[Section],
    *,
    title: str = "nndoctor report",
    table: Sequence[Sequence[str]] | None = None,
    intro: Sequence[str] = (),
    story: Sequence[tuple[str, Sequence[str]]] = (),
    plots: bool = True,
    fragment: bool = False,
) -> str:
    """One HTML page with a section per report.

    Parameters
    ----------
    table : rows of str, optional
        A table above the sections (the scenario catalog's); the first row is the header.
    intro : paragraphs, optional
        Text above everything.
    story : (heading, paragraphs) pairs, optional
        Text after the reports, before the glossary (the seed case's story, step by step).
    plots : bool
        Embed the plots (needs matplotlib; without it the page has no plots).
    fragment : bool
        Only the body's content, with the styles, for a notebook cell; its ids start with a
        random prefix (``nnd1a2b3c4d-``), unique to this rendering.
    """
    template = _environment().get_template("page.html.j2")
    # a notebook holds many fragments, from this kernel and from earlier ones: only a random
    # prefix keeps their ids apart (a counter would start again with each kernel)
    prefix = f"nnd{secrets.token_hex(4)}-" if fragment else ""
    ctx = [_section_context(s, plots, i, prefix) for i, s in enumerate(sections)]
    # the bounds line links to the glossary's "bound"
    used_terms = {t for c in ctx for t in c["terms"]} | {"bound" for c in ctx if c["bounds"]}
    glossary = [(t, *GLOSSARY[t]) for t in GLOSSARY if t in used_terms or not fragment]
    return template.render(
        title=title,
        sections=ctx,
        table=[list(r) for r in table] if table else None,
        intro=list(intro),
        story=[(heading, list(paragraphs)) for heading, paragraphs in story],
        glossary=glossary,
        fragment=fragment,
        prefix=prefix,
        version=__version__,
    )


def render_report(report: Any, *, title: str = "nndoctor report", **kwargs: Any) -> str:
    """One report as a page (``Report.to_html``)."""
    return render_page([Section(title, report)], title=title, **kwargs)
