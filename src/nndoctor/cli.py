"""The ``nndoctor`` command: ``nndoctor seed`` replays the seed case, ``nndoctor scenarios``
runs the catalog of sick and healthy networks, ``nndoctor show`` renders a saved report again,
``nndoctor run train.py`` watches a training script.

Every command that prints a report takes ``--json`` (machine-readable), ``--html PATH`` (one
self-contained page), ``--quiet`` / ``--verbose`` and ``--no-progress``.

``main(argv)`` is a plain function returning the exit status, so tests call it directly. Bad
option values print one line on stderr and return 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from nndoctor import __version__
from nndoctor._files import write_text_atomic

EXIT_USAGE = 2


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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=_json_default))


def _verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 2 if args.verbose else 1


# what each output option may be written as (matplotlib picks the format from the suffix)
_OUTPUT_SUFFIXES = {"plot": (".png", ".svg", ".pdf", ".jpg", ".jpeg"), "html": (".html", ".htm")}


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output path is checked before any training: a bad suffix or a missing or
    read-only folder fails now, not after the run."""
    from nndoctor._files import check_writable

    for option, suffixes in _OUTPUT_SUFFIXES.items():
        path = getattr(args, option, None)
        if path is not None:
            check_writable(path, suffixes, what=f"--{option}")


def _seed(args: argparse.Namespace) -> int:
    from nndoctor.seedcase import format_seed_case, run_seed_case, seed_page

    _check_outputs(args)

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
    if args.json:
        _print_json(result.to_dict())
        return 0
    print(format_seed_case(result, verbosity=_verbosity(args), color=_color()))
    if args.plot is not None:
        print(f"\nPlot of the doctor's run: {args.plot}")
    if args.html is not None:
        print(f"\nHTML report: {args.html}")
    return 0


def _color() -> bool:
    from nndoctor.render.terminal import use_color

    return use_color(sys.stdout)


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

    _check_outputs(args)

    results = scenarios.run_catalog(seed=args.seed, names=args.only, progress=args.progress)
    if args.html is not None:
        from nndoctor.render.html import Section, render_page

        table = scenarios.format_table(results)
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
    if args.json:
        _print_json([_scenario_dict(result) for result in results])
    else:
        print(scenarios.format_table(results))
        if args.verbose:
            for r in results:
                print(f"\n== {r.name}")
                r.report.render(sys.stdout, 2)
        if args.html is not None:
            print(f"\nHTML report: {args.html}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from nndoctor.doctor.report import Report

    try:
        with open(args.report, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{args.report} is not JSON: {exc}") from None
    if isinstance(data, dict) and "findings" not in data and isinstance(data.get("report"), dict):
        data = data["report"]  # the output of ``nndoctor seed --json``
    if not isinstance(data, dict) or "findings" not in data:
        raise ValueError(f"{args.report} holds no report (no 'findings')")
    report = Report.from_dict(data)
    if args.html is not None:
        report.save_html(args.html)
    if args.json:
        _print_json(report.to_dict())
        return 0
    report.render(sys.stdout, _verbosity(args))
    if args.html is not None:
        print(f"\nHTML report: {args.html}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nndoctor`` (subcommands ``seed`` and ``scenarios``)."""
    parser = argparse.ArgumentParser(
        prog="nndoctor", description="Why is my neural network's output always the same?"
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
        "--plot", metavar="FILE", help="save a plot of the doctor's run (.png, .svg, .pdf)"
    )
    _add_output_options(seed)
    seed.set_defaults(handler=_seed)

    scen = sub.add_parser(
        "scenarios",
        help="run the catalog of sick and healthy networks through the doctor",
        description="Run every scenario of the catalog and tabulate the doctor's verdicts.",
    )
    scen.add_argument("--seed", type=int, default=0, help="seed of every scenario (0)")
    scen.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    _add_output_options(scen)
    scen.set_defaults(handler=_scenarios)

    show = sub.add_parser(
        "show",
        help="render a saved report (JSON) again: terminal, --html or --json",
        description="Render a report saved with --json (or Report.to_json) again.",
    )
    show.add_argument("report", metavar="REPORT.json", help="a report saved as JSON")
    _add_output_options(show, progress=False)
    show.set_defaults(handler=_show)

    from nndoctor.runner import add_parser as add_run_parser

    add_run_parser(sub, _positive_int)
    return parser


def _add_output_options(command: argparse.ArgumentParser, progress: bool = True) -> None:
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument(
        "--html", metavar="PATH", help="also write the report as one self-contained HTML page"
    )
    loud = command.add_mutually_exclusive_group()
    loud.add_argument(
        "-q", "--quiet", action="store_true", help="the verdict and one line per finding"
    )
    loud.add_argument(
        "-v", "--verbose", action="store_true", help="also why, the glossary terms and the plots"
    )
    if not progress:
        return
    command.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        default=None,
        help="never draw progress bars",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nndoctor`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; None = ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 for a bad option or option value (one line on stderr).
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
        return 1
    except ValueError as exc:  # what nndoctor raises for bad input, e.g. an unknown scenario
        print(f"nndoctor {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ImportError, OSError) as exc:  # a missing extra, a file that cannot be written
        print(f"nndoctor {args.command}: error: {exc}", file=sys.stderr)
        return 1
