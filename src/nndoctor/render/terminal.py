"""The report in a terminal: the verdict in one line, then each finding in plain words with its
key numbers and its fix. Drawn with rich in colour on a terminal; plain text (no ANSI codes)
when the output is a file or a pipe, or when ``NO_COLOR`` is set.

Verbosity: 0 (``--quiet``) the verdict and one line per finding; 1 (default) adds the code,
the evidence, fix and trial; 2 (``--verbose``) adds the technical title, why, what each cause
explains, the glossary terms, the plots that show it and the bounds. Each point is said once:
a finding opens with its plain sentence (the verdict's finding, whose sentence the verdict
says, with its technical title), its numbers follow in plain words.
"""

from __future__ import annotations

import io
import os
import sys
import textwrap
from typing import Any, TextIO

from nndoctor.render.plain import FindingView, finding_view, summary_line, verdict

QUIET, NORMAL, VERBOSE = 0, 1, 2
# the plain text wraps at this width, continuation lines indented under their label
TEXT_WIDTH = 100

_HEADS = {"cause": "Causes", "symptom": "Symptoms", "info": "Information"}
_KINDS = ("cause", "symptom", "info")
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_MARK = {True: "[confirmed]", False: "[not confirmed]", None: ""}


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal and only when ``NO_COLOR`` is not set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def _views(report: Any) -> list[FindingView]:
    available = _available_plots(report)
    return [finding_view(f, available) for f in report.findings]


def _available_plots(report: Any) -> list[str] | None:
    try:
        from nndoctor.plot import available_plots
    except ImportError:  # pragma: no cover - plot.py imports matplotlib lazily
        return None
    return available_plots(report)


def _verdict_index(report: Any) -> int | None:
    """Index of the finding the verdict line speaks for (its sentence is not repeated)."""
    for i, f in enumerate(report.findings):
        if f.kind == "cause":
            return i
    return 0 if report.findings else None


def _wrap(label: str, text: str, indent: int = 5) -> list[str]:
    head = " " * indent + (f"{label}: " if label else "")
    return textwrap.wrap(
        text, TEXT_WIDTH, initial_indent=head, subsequent_indent=" " * len(head)
    ) or [head.rstrip()]


def _wrap_points(label: str, points: list[str], indent: int = 5) -> list[str]:
    """Points (``"final loss 2.282"``) after ``label``, "; " between them (a label or a value
    may hold commas), a line broken between points rather than inside one where it fits."""
    head = " " * indent + f"{label}: "
    lines: list[str] = []
    line = ""
    for n, point in enumerate(points):
        text = point + (";" if n < len(points) - 1 else "")
        if line and len(head) + len(line) + 1 + len(text) > TEXT_WIDTH:
            lines.append(line)
            line = ""
        line = f"{line} {text}" if line else text
    lines.append(line)
    out = []
    for n, line in enumerate(lines):
        first = head if n == 0 else " " * len(head)
        out += textwrap.wrap(line, TEXT_WIDTH, initial_indent=first,
                             subsequent_indent=" " * len(head))  # fmt: skip
    return out


def plain_text(report: Any, verbosity: int = NORMAL) -> str:
    """The terminal summary as plain text (what ``str(report)`` returns)."""
    views = _views(report)
    lines = ["nndoctor report"]
    line = summary_line(report)
    if line:
        lines += _wrap("", line, 2)
    lines += _wrap("Verdict", verdict(report), 2)
    top = _verdict_index(report)
    fixes: set[str] = set()  # a fix said once ("see the causes above") is not said again
    terms: set[str] = set()  # a glossary term is explained once
    for kind in _KINDS:
        group = [(i, v) for i, v in enumerate(views) if v.kind == kind]
        if not group:
            continue
        lines.append(f"{_HEADS[kind]}:")
        for n, (i, v) in enumerate(group, 1):
            mark = f" {_MARK[v.confirmed]}" if v.confirmed is not None else ""
            head = f"  {n}. [{v.severity}] "
            first = v.title if i == top else v.sentence
            if verbosity == QUIET:
                first = v.sentence
            lines += textwrap.wrap(
                f"{first}{mark}",
                TEXT_WIDTH,
                initial_indent=head,
                subsequent_indent=" " * len(head),
            )
            if verbosity == QUIET:
                continue
            lines += _wrap("code", v.code)
            if verbosity >= VERBOSE and i != top:
                lines += _wrap("technical", v.title)
            if v.evidence:
                lines += _wrap_points("evidence", [f"{k} {val}" for k, val in v.evidence])
            if verbosity >= VERBOSE and v.why:
                lines += _wrap("why", v.why)
            if v.fix and v.fix not in fixes:
                fixes.add(v.fix)
                lines += _wrap("fix", v.fix)
            if v.trial:
                lines += _wrap("trial", v.trial)
            if verbosity >= VERBOSE:
                if v.explains:
                    lines += _wrap("explains", ", ".join(v.explains))
                if v.plots:
                    lines += _wrap("plots", ", ".join(v.plots))
                for term, _, text in v.terms:
                    if term not in terms:
                        terms.add(term)
                        lines += _wrap(term, text)
    if verbosity >= VERBOSE and report.bounds.get("text"):
        lines += _wrap("Bounds", str(report.bounds["text"]), 0)
    return "\n".join(lines)


def _rich_renderables(report: Any, verbosity: int) -> list[Any]:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    views = _views(report)
    out: list[Any] = []
    head = Text("nndoctor ", style="bold")
    head.append(summary_line(report), style="dim")
    out.append(head)
    top = _verdict_index(report)
    fixes: set[str] = set()
    terms: set[str] = set()
    style = "bold green" if not report.findings else "bold"
    if top is not None and report.findings[top].kind == "cause":
        style = _SEVERITY_STYLE.get(report.findings[top].severity, "bold")
    out.append(Panel(Text(verdict(report), style=style), title="verdict", title_align="left"))
    for kind in _KINDS:
        group = [(i, v) for i, v in enumerate(views) if v.kind == kind]
        if not group:
            continue
        out.append(Text(_HEADS[kind], style="bold underline"))
        for n, (i, v) in enumerate(group, 1):
            line = Text()
            line.append(f"{v.severity} ", style=_SEVERITY_STYLE.get(v.severity, ""))
            line.append(v.title if i == top and verbosity > QUIET else v.sentence, style="bold")
            if v.confirmed is True:
                line.append("  ✓ confirmed", style="bold green")
            elif v.confirmed is False:
                line.append("  ✗ not confirmed", style="magenta")
            body: list[Any] = [line]
            if verbosity > QUIET:
                grid = Table.grid(padding=(0, 1))
                grid.add_column(style="dim", no_wrap=True)
                grid.add_column()
                grid.add_row("code", v.code)
                if verbosity >= VERBOSE and i != top:
                    grid.add_row("technical", Text(v.title, style="italic"))
                if v.evidence:
                    evidence = Text()
                    for n_item, (k, val) in enumerate(v.evidence):
                        evidence.append(f"{' · ' if n_item else ''}{k} ")
                        evidence.append(val, style="bold")
                    grid.add_row("evidence", evidence)
                if verbosity >= VERBOSE and v.why:
                    grid.add_row("why", v.why)
                if v.fix and v.fix not in fixes:
                    fixes.add(v.fix)
                    grid.add_row("fix", Text(v.fix, style="green"))
                if v.trial:
                    grid.add_row("trial", v.trial)
                if verbosity >= VERBOSE:
                    if v.explains:
                        grid.add_row("explains", ", ".join(v.explains))
                    if v.plots:
                        grid.add_row("plots", ", ".join(v.plots))
                    for term, _, text in v.terms:
                        if term not in terms:
                            terms.add(term)
                            grid.add_row(term, Text(text, style="dim"))
                body.append(grid)
            row = Table.grid(padding=(0, 1))
            row.add_column(no_wrap=True)
            row.add_column()
            row.add_row(f"{n}.", Group(*body))
            out.append(row)
    if verbosity >= VERBOSE and report.bounds.get("text"):
        out.append(Text(f"Bounds: {report.bounds['text']}", style="dim"))
    return out


def render(
    report: Any,
    stream: TextIO | None = None,
    verbosity: int = NORMAL,
    color: bool | None = None,
    width: int | None = None,
) -> None:
    """Print ``report`` to ``stream`` (stdout): rich colours on a terminal, else plain text.

    Parameters
    ----------
    color : bool or None
        None decides from the stream (:func:`use_color`).
    width : int or None
        Columns of the rich layout; None = the terminal's.
    """
    stream = stream if stream is not None else sys.stdout
    if color is None:
        color = use_color(stream)
    if not color:
        stream.write(plain_text(report, verbosity) + "\n")
        return
    from rich.console import Console

    console = Console(file=stream, force_terminal=True, width=width, highlight=False)
    for item in _rich_renderables(report, verbosity):
        console.print(item)


def to_ansi(report: Any, verbosity: int = NORMAL, width: int = 100) -> str:
    """The coloured rendering as a string with ANSI codes (what a terminal shows)."""
    buffer = io.StringIO()
    render(report, buffer, verbosity, color=True, width=width)
    return buffer.getvalue()


def to_svg(report: Any, verbosity: int = NORMAL, width: int = 100, title: str = "nndoctor") -> str:
    """The coloured rendering as an SVG picture of a terminal (for the README's screenshot)."""
    from rich.console import Console

    console = Console(record=True, width=width, force_terminal=True, file=io.StringIO())
    for item in _rich_renderables(report, verbosity):
        console.print(item)
    return console.export_svg(title=title)
