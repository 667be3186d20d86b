"""The ``nndoctor`` command: ``nndoctor seed`` replays the seed case, ``nndoctor scenarios``
runs the catalog of sick and healthy networks, ``nndoctor show`` renders a saved report again,
``nndoctor run train.py`` watches a training script.

One grammar for the four commands (``docs/cli.md`` has the table of every flag and status):

- ``--json PATH`` writes the command's result as JSON (``-``: on stdout, in place of the text),
  ``--html PATH`` one self-contained page; ``-q`` / ``-v`` print a shorter / longer report.
  ``show`` reads every JSON file the others write.
- Every output path is checked before any work starts (suffix, folder, not the input).
- Exit status: 0 done; 1 nndoctor failed (a missing extra, a file it could not write);
  2 a usage error (a bad option or value, an input that is not a report, an output path that
  cannot be written); 130 interrupted. ``run`` exits with the script's own status, and with 1
  only when the script succeeded but nndoctor could not report.

``main(argv)`` is a plain function returning the exit status, so tests call it directly. Bad
option values print one line on stderr and return 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nndoctor import __version__
from nndoctor._files import write_text_atomic
from nndoctor.outputs import STDOUT, check_outputs, dump_json
from nndoctor.runner import EXIT_INTERRUPTED

EXIT_OK = 0
EXIT_FAILURE = 1  # nndoctor itself failed: a missing extra, a file it could not write
EXIT_USAGE = 2  # a bad option or value, an unreadable input, an unwritable output path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _init_list(text: str) -> list[str]:
    """One ``--init`` value: a name or a comma-separated list of names."""
    from nndoctor.nn import INITIALIZERS

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in INITIALIZERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown init {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from: {', '.join(INITIALIZERS)}"
        )
    return names


def _verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 2 if args.verbose else 1


def _color() -> bool:
    from nndoctor.render.terminal import use_color

    return use_color(sys.stdout)


def _finish(args: argparse.Namespace, payload: Any, print_text: Callable[[], None]) -> int:
    """Write ``--json`` and print the text (or the JSON, for ``--json -``), then name the
    files written (on stderr when stdout carries the JSON)."""
    if args.json is not None:
        dump_json(args.json, payload)
    notes = sys.stderr if args.json == STDOUT else sys.stdout
    if args.json != STDOUT:
        print_text()
    for label, path in (
        ("Plot", getattr(args, "plot", None)),
        ("HTML report", args.html),
        ("JSON", args.json),
    ):
        if path is not None and path != STDOUT:
            print(f"\n{label}: {path}", file=notes)
    return EXIT_OK


# --- the commands ---


def _seed(args: argparse.Namespace) -> int:
    from nndoctor.seedcase import format_seed_case, run_seed_case, seed_page

    check_outputs({"--json": args.json, "--html": args.html, "--plot": args.plot})
    if (args.plot is not None or args.html is not None) and not args.diagnose:
        option = "--plot" if args.plot is not None else "--html"
        raise ValueError(f"{option} draws the doctor's run: drop --no-diagnose")
    if args.plot is not None:
        from nndoctor.plot import plot_report  # fails now, not after training, without the extra

    result = run_seed_case(
        n_samples=args.samples,
        epochs=args.epochs,
        seed=args.seed,
        inits=args.init or ("zeros", "xavier_uniform"),
        init_seed=args.init_seed,
        lr=args.lr,
        diagnose=args.diagnose,
        progress=args.progress,
    )
    if args.plot is not None:
        plot_report(result.report, args.plot)
    if args.html is not None:
        write_text_atomic(args.html, seed_page(result))
    return _finish(
        args,
        result.to_dict(),
        lambda: print(format_seed_case(result, verbosity=_verbosity(args), color=_color())),
    )


def _scenario_dict(result: Any) -> dict[str, Any]:
    """One ``nndoctor.scenarios.ScenarioResult`` as plain values."""
    return {
        "name": result.name,
        "expected": result.expected,
        "first_cause": result.first_cause,
        "cause_codes": result.cause_codes,
        "ok": result.ok,
        "seconds": result.seconds,
        "report": result.report.to_dict(),
    }


def _scenarios(args: argparse.Namespace) -> int:
    from nndoctor import scenarios

    check_outputs({"--json": args.json, "--html": args.html})
    results = scenarios.run_catalog(seed=args.seed, names=args.only, progress=args.progress)
    table = scenarios.format_table(results)
    if args.html is not None:
        from nndoctor.render.html import Section, render_page

        sections = [
            Section(f"{r.name}: {'ok' if r.ok else 'MISS'}", r.report, [r.scenario.description])
            for r in results
        ]
        rows = [["scenario", "expected", "first cause found", "result", "seconds"]] + [
            [r.name, r.expected or "(healthy)", r.first_cause or "-", "ok" if r.ok else "MISS",
             f"{r.seconds:.1f}"]
            for r in results
        ]  # fmt: skip
        page = render_page(
            sections, title="nndoctor scenarios", table=rows, intro=table.split("\n\n")[1:2]
        )
        write_text_atomic(args.html, page)

    def print_text() -> None:
        verbosity = _verbosity(args)
        # quiet: the table and its one-line score, without the precision and recall per code
        print(table if verbosity else "\n\n".join(table.split("\n\n")[:2]))
        if verbosity == 2:
            for r in results:
                print(f"\n== {r.name}")
                r.report.render(sys.stdout, 2)

    return _finish(args, [_scenario_dict(r) for r in results], print_text)


def load_reports(path: str) -> list[tuple[str | None, Any]]:
    """The reports in a JSON file that nndoctor wrote, as ``(name, Report)`` pairs.

    Reads a report (``Report.to_json``, ``show --json``; its name is None), the seed case
    (``seed --json``), and a list of ``{"model" or "name", "report"}`` (``run --json``, the
    callbacks' ``nndoctor_report.json``, ``scenarios --json``); ``-`` reads stdin.

    Raises
    ------
    ValueError
        The file is missing, unreadable, not JSON or holds no report (a usage error).
    """
    from nndoctor.doctor.report import Report

    try:
        if path == STDOUT:
            data = json.load(sys.stdin)
        else:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a report") from None
    except PermissionError:
        raise ValueError(f"cannot read {path}: permission denied") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and "findings" in data:
        entries: list[tuple[str | None, Any]] = [(None, data)]
    elif isinstance(data, dict) and "report" in data and "runs" in data:  # ``seed --json``
        if data["report"] is None:
            raise ValueError(f"{path} holds no report: the seed case ran with --no-diagnose")
        entries = [(None, data["report"])]
    elif isinstance(data, list) and all(isinstance(e, dict) and "report" in e for e in data):
        entries = [
            (str(e.get("model", e.get("name", f"report {i + 1}"))), e["report"])
            for i, e in enumerate(data)
        ]
    else:
        raise ValueError(f"{path} holds no report (no 'findings')")
    sections = []
    for name, d in entries:
        try:
            sections.append((name, Report.from_dict(d)))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            what = f"the report of {name}" if name else "its report"
            raise ValueError(f"{path}: {what} is not one nndoctor can read ({exc!r})") from None
    return sections


def _show(args: argparse.Namespace) -> int:
    from nndoctor.runner import print_reports, reports_payload, write_html

    check_outputs({"--json": args.json, "--html": args.html}, inputs=[args.report])
    sections = load_reports(args.report)
    if args.html is not None:
        write_html(args.html, sections)
    lone = len(sections) == 1 and sections[0][0] is None
    payload = sections[0][1].to_dict() if lone else reports_payload(sections)
    return _finish(args, payload, lambda: print_reports(sections, sys.stdout, _verbosity(args)))


def _run(args: argparse.Namespace) -> int:
    from nndoctor.runner import execute

    return execute(
        args.script,
        args.args,
        every=args.every,
        alerts=args.alerts,
        verbosity=_verbosity(args),
        json_path=args.json,
        html=args.html,
    )


# --- the grammar ---


def _add_output_options(command: argparse.ArgumentParser, *, json_help: str) -> None:
    """The flags every command shares, with the same meaning everywhere."""
    command.add_argument("--json", metavar="PATH", help=json_help)
    command.add_argument(
        "--html", metavar="PATH", help="also write the report as one self-contained HTML page"
    )
    loud = command.add_mutually_exclusive_group()
    loud.add_argument(
        "-q", "--quiet", action="store_true", help="short report: the verdict, a line a finding"
    )
    loud.add_argument(
        "-v", "--verbose", action="store_true", help="long report: also why, terms and plots"
    )


def _add_progress_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        default=None,
        help="never draw progress bars",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nndoctor`` (subcommands ``seed``, ``scenarios``, ``show`` and
    ``run``)."""
    parser = argparse.ArgumentParser(
        prog="nndoctor",
        description="Why is my neural network's output always the same?",
        epilog="Exit status: 0 done, 1 nndoctor failed, 2 usage error, 130 interrupted; "
        "run: the script's own. See docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"nndoctor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    seed = sub.add_parser(
        "seed",
        help="replay the seed case: an autoencoder whose output was always 0.5",
        description="Replay the seed case end to end: speed, gradient checks, training from "
        "each init, the achievable bounds and the doctor's report.",
    )
    seed.add_argument("--samples", type=_positive_int, default=100, help="8x8 matrices (100)")
    seed.add_argument("--epochs", type=_positive_int, default=1000, help="epochs (1000)")
    seed.add_argument("--seed", type=int, default=42, help="seed of the data (42)")
    seed.add_argument(
        "--init",
        action="extend",
        type=_init_list,
        metavar="NAME[,NAME...]",
        help="initialiser(s) to train from, repeatable or comma-separated (zeros,xavier_uniform)",
    )
    seed.add_argument("--init-seed", type=int, default=0, help="seed of the initial weights (0)")
    seed.add_argument("--lr", type=_positive_float, default=0.05, help="SGD learning rate (0.05)")
    seed.add_argument(
        "--no-diagnose", dest="diagnose", action="store_false", help="skip the doctor's report"
    )
    seed.add_argument(
        "--plot", metavar="PATH", help="save a plot of the doctor's run (.png, .svg, .pdf)"
    )
    _add_output_options(seed, json_help="write the whole seed case as JSON (-: on stdout)")
    _add_progress_option(seed)
    seed.set_defaults(handler=_seed)

    scen = sub.add_parser(
        "scenarios",
        help="run the catalog of sick and healthy networks through the doctor",
        description="Run every scenario of the catalog and tabulate the doctor's verdicts.",
    )
    scen.add_argument("--seed", type=int, default=0, help="seed of every scenario (0)")
    scen.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    _add_output_options(scen, json_help="write every scenario's verdict and report as JSON")
    _add_progress_option(scen)
    scen.set_defaults(handler=_scenarios)

    show = sub.add_parser(
        "show",
        help="render a saved report again: terminal, --html or --json",
        description="Render again any JSON file nndoctor wrote: a report, `seed --json`, "
        "`scenarios --json`, `run --json` (one section per model) or a callback's "
        "nndoctor_report.json. REPORT - reads stdin.",
    )
    show.add_argument("report", metavar="REPORT", help="a JSON file nndoctor wrote (-: stdin)")
    _add_output_options(show, json_help="write the report(s) as JSON (-: on stdout)")
    show.set_defaults(handler=_show)

    run = sub.add_parser(
        "run",
        help="run an unmodified training script and diagnose every model it trains",
        description="Run SCRIPT as `python SCRIPT ARGS` would (same argv, __main__, working "
        "directory and exit status), watch every model an optimizer steps, say findings as "
        "they become certain, and print one report per model on stderr when the script ends, "
        "fails or is interrupted. nndoctor's options go before SCRIPT; what follows is the "
        "script's.",
    )
    run.add_argument(
        "--every",
        type=_positive_int,
        metavar="N",
        help="probe every N steps (default: adaptive, within 1%% of the run's time)",
    )
    run.add_argument(
        "--no-alerts",
        dest="alerts",
        action="store_false",
        help="say nothing while the script trains; the report still at the end",
    )
    _add_output_options(run, json_help="write the reports as JSON, a list of {model, report}")
    run.add_argument("script", metavar="SCRIPT", help="the training script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nndoctor`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; None = ``sys.argv[1:]``.

    Returns
    -------
    int
        0 done; 1 nndoctor failed (a missing extra, a file it could not write); 2 a usage
        error (one line on stderr); 130 interrupted; ``run``: the script's own status.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits after --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("nndoctor: error: choose a command: seed, scenarios, show or run", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except BrokenPipeError:
        # the reader went away (``nndoctor seed | head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"\nnndoctor {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as exc:  # bad input: an unknown scenario, a path that cannot be written
        print(f"nndoctor {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ImportError, OSError) as exc:  # a missing extra, a file that could not be written
        print(f"nndoctor {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
