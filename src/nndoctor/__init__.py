"""nndoctor: why is my neural network's output always the same?

The public API is small::

    from nndoctor import diagnose, watch, Doctor, check_gradients, check_function_gradients, Report

Importing this package loads NumPy only. Each name is imported on first use, and torch and
matplotlib load only inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "diagnose": "nndoctor.diagnosis",
    "Doctor": "nndoctor.diagnosis",
    "Report": "nndoctor.doctor",
    "Finding": "nndoctor.doctor",
    "watch": "nndoctor.watching",
    "check_gradients": "nndoctor.gradcheck",
    "check_function_gradients": "nndoctor.gradcheck",
}

__all__ = [
    "Doctor",
    "Finding",
    "Report",
    "__version__",
    "check_function_gradients",
    "check_gradients",
    "diagnose",
    "watch",
]

if TYPE_CHECKING:
    from nndoctor.diagnosis import Doctor, diagnose
    from nndoctor.doctor import Finding, Report
    from nndoctor.gradcheck import check_function_gradients, check_gradients
    from nndoctor.watching import watch


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nndoctor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
