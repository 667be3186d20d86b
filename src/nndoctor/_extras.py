"""Lazy imports of optional extras, so ``import nndoctor`` needs NumPy only."""

from __future__ import annotations

import importlib
from types import ModuleType

# module name -> (extra that provides it, what it is for)
_EXTRAS = {
    "torch": "torch",
    "matplotlib": "plot",
    "numba": "fast",
    "sklearn": "data",
}


def require(module: str) -> ModuleType:
    """Import an optional dependency, or raise a one-line error naming the fix.

    Parameters
    ----------
    module : str
        Top-level module name, e.g. ``"torch"`` or ``"matplotlib.pyplot"``.

    Raises
    ------
    ImportError
        With the ``pip install`` command that provides the module.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top, top)
        raise ImportError(
            f"{top} is needed for this feature: pip install 'nndoctor[{extra}]'"
        ) from None
