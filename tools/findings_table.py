"""The README's table of findings, written from the rules' records (``make docs``).

``python tools/findings_table.py`` rewrites the table between the two markers in README.md;
``tests/test_architecture.py`` fails when the committed table is not the one the records give.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nndoctor._files import write_text_atomic
from nndoctor.doctor.codes import CODES, KINDS
from nndoctor.doctor.rule import LOOP

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- findings table: written by tools/findings_table.py (make docs) -->"
END = "<!-- end of the findings table -->"


def markdown_table() -> str:
    """Every code, causes first then symptoms then information, root-most first."""
    order = {code: i for i, code in enumerate(CODES)}
    rules = sorted(CODES.values(), key=lambda r: (KINDS.index(r.kind), r.tier, order[r.code]))
    lines = [
        "| code | kind | what it means | the fix (what its trial tries) |",
        "|---|---|---|---|",
    ]
    for r in rules:
        meaning = r.meaning + (" (seen in the training loop)" if LOOP in r.needs else "")
        lines.append(f"| `{r.code}` | {r.kind} | {meaning} | {r.fix} |")
    return "\n".join(lines)


def main() -> int:
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"README.md has no markers {BEGIN!r} ... {END!r}", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write_text_atomic(README, f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
