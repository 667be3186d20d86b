"""The output files of every command: their paths checked before any work, JSON written after it.

``--json PATH`` / ``--html PATH`` / ``--plot PATH`` mean the same for every command
(``docs/cli.md``); ``--json -`` prints the JSON on stdout instead of the text.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from nndoctor._files import check_writable, write_text_atomic
from nndoctor.doctor.finding import json_text, plain

STDOUT = "-"  # ``--json -``: the JSON on stdout instead of the text

# what each output option may be written as (matplotlib picks the plot's format from it)
OUTPUT_SUFFIXES = {
    "--json": (".json",),
    "--html": (".html", ".htm"),
    "--plot": (".png", ".svg", ".pdf", ".jpg", ".jpeg"),
}


def check_outputs(
    outputs: Mapping[str, str | None], *, inputs: Sequence[str] = (), stdout: bool = True
) -> None:
    """Check every output path before any work: its suffix (:data:`OUTPUT_SUFFIXES`), an
    existing writable folder, not a folder itself, not an input and not another output.

    Parameters
    ----------
    outputs : mapping of option -> path or None
        ``{"--json": "r.json", "--html": None}``; None = not asked for.
    inputs : sequence of str
        Files the command reads (never overwritten).
    stdout : bool
        Whether ``--json -`` may print on stdout (``run``: stdout is the script's).

    Raises
    ------
    ValueError
        Naming the option and the path (a usage error: status 2).
    """
    taken = {os.path.realpath(path): "the input" for path in inputs if path != STDOUT}
    for option, path in outputs.items():
        if path is None:
            continue
        if path == STDOUT and option == "--json":
            if not stdout:
                raise ValueError("--json -: stdout is the script's own; give --json a file")
            continue
        try:
            check_writable(path, OUTPUT_SUFFIXES[option], what=option)
        except OSError as exc:
            raise ValueError(exc.strerror or str(exc)) from None
        real = os.path.realpath(path)
        if real in taken:
            raise ValueError(f"{option} {path} would overwrite {taken[real]}")
        taken[real] = option


def dump_json(path: str, payload: Any) -> None:
    """``payload`` as JSON: on stdout for ``-``, else written to ``path`` atomically."""
    # the reports' own converter: NumPy values as numbers, NaN and inf as strings
    text = json_text(plain(payload)) + "\n"
    if path == STDOUT:
        sys.stdout.write(text)
    else:
        write_text_atomic(path, text)
