"""Backends: one folder per framework, each implementing the core's
:class:`~nndoctor.doctor.protocol.Backend` (and, where the framework has loops of its own to
watch, :class:`~nndoctor.doctor.protocol.WatchedRun`).

- ``engine``: :mod:`nndoctor.nn` models (``Sequential``);
- ``torch``: any ``torch.nn.Module`` (imports torch; loaded only for a torch model).

A backend imports only the core's seam (``nndoctor.doctor.schema``, ``protocol``,
``changes``, ``recorder``), never its rules, trials or report: the contracts in
``pyproject.toml`` (``make lint``) check it. Adding one: ``docs/architecture.md``.
"""

from __future__ import annotations

import sys
from typing import Any

from nndoctor.doctor.protocol import Backend


def is_torch_module(model: Any) -> bool:
    """True for a ``torch.nn.Module`` (without importing torch when the user did not)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def backend_for(model: Any) -> Backend:
    """The backend that handles ``model``; ``TypeError`` naming the model's type otherwise."""
    from nndoctor.nn import Sequential

    if isinstance(model, Sequential):
        from nndoctor.backends.engine import ENGINE

        return ENGINE
    if is_torch_module(model):
        from nndoctor.backends.torch import TORCH

        return TORCH
    raise TypeError(
        f"model must be an nndoctor.nn.Sequential or a torch.nn.Module, got {type(model).__name__}"
    )
