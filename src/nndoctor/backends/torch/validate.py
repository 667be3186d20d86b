"""A PyTorch run's setup checked at the door: each mistake is refused in one sentence that
names it, before any training, instead of a torch traceback from deep inside a training loop.

- :func:`check_loader_alone`: a DataLoader yields its own targets, so ``Y`` must be None;
- :func:`check_device`: the parameters hold values (not the ``meta`` device) on one device,
  and the device asked for exists;
- :func:`check_first_rows`: one forward pass and one loss call on the first rows, a failure
  named by the layer that raised it and the shapes it got; class labels checked against the
  model's output width.
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor._validate import check_finite
from nndoctor.backends.torch.loss import loss_name
from nndoctor.backends.torch.model import untouched

# losses that take class indices (or class probabilities shaped like the output)
_LABEL_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
# frames in these folders (torch's, nndoctor's) are not where a user's mistake is
_NOT_USER = tuple(
    f"{folder}{os.sep}" for folder in (Path(torch.__file__).parent, Path(__file__).parents[2])
)


def is_loader(X: Any) -> bool:
    """Whether ``X`` is a DataLoader or another iterable of batches (not an array, a tensor
    or a list of rows)."""
    if isinstance(X, torch.utils.data.DataLoader):
        return True
    arrayish = isinstance(X, np.ndarray | torch.Tensor | list | tuple) or hasattr(X, "__array__")
    return not arrayish and isinstance(X, Iterable)


def check_loader_alone(X: Any, Y: Any) -> None:
    """Raise ``TypeError`` when ``X`` is a DataLoader and ``Y`` is given as well."""
    if Y is not None and is_loader(X):
        raise TypeError(
            f"X is a {type(X).__name__}, which yields its own (inputs, targets) batches, and Y "
            "was given as well: pass Y=None, or X and Y as arrays or tensors"
        )


def check_device(model: nn.Module, device: Any) -> tuple[torch.device, torch.dtype]:
    """The device the copies train on (``device``, else where the parameters are) and the
    parameters' dtype; ``ValueError`` for a model without parameters, with parameters on the
    ``meta`` device (shapes without values) or, when no ``device`` is given, on several
    devices, and for a device that cannot be used here."""
    params = list(model.named_parameters())
    if not params:
        raise ValueError("the model has no parameters to train")
    meta = [name for name, p in params if p.is_meta]
    if meta:
        raise ValueError(
            f"{len(meta)} of the model's {len(params)} parameters ({meta[0]!r} first) are on "
            "the meta device, which holds shapes but no values: load the weights first (e.g. "
            "model.to_empty(device='cpu') then model.load_state_dict(...))"
        )
    devices = list(dict.fromkeys(str(p.device) for _, p in params))
    if device is None and len(devices) > 1:
        raise ValueError(
            f"the model's parameters are on several devices ({', '.join(devices)}): diagnose "
            "trains copies on one, so pass device=... or move the model with model.to(device)"
        )
    try:
        dev = params[0][1].device if device is None else torch.device(device)
        torch.empty(0, device=dev)
    except Exception as exc:  # an unknown name, a device this machine lacks
        raise ValueError(f"device {device!r} cannot be used here: {_first_line(exc)}") from None
    return dev, params[0][1].dtype


def check_first_rows(
    model: nn.Module, x: torch.Tensor, Y: np.ndarray, y: torch.Tensor, loss: Any
) -> None:
    """Run ``model`` on ``x`` (the first rows of X, on the training device) and ``loss`` on
    its output and ``y`` (the same rows of the targets ``Y``): raise ``ValueError`` naming
    the layer whose forward pass failed and the shapes it got, or the loss and the shapes it
    compared; check class labels (all of ``Y``) against the output's width first. The model
    is left as it was (no gradient, norm statistics and random state restored)."""
    out = _forward(model, x)
    if isinstance(loss, _LABEL_LOSSES):
        check_labels(loss, Y, tuple(out.shape))
    name = loss_words(loss)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a broadcasting loss is a finding, not an error
            value = loss(out, y)
    except Exception as exc:
        raise ValueError(
            f"the loss ({name}) fails on the model's output of shape {tuple(out.shape)} and Y's "
            f"rows of shape {tuple(y.shape)} ({_dtype(y)}): {_first_line(exc)}{_where(exc)}"
        ) from None
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        got = (
            f"a tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else type(value).__name__
        )
        raise ValueError(
            f"the loss ({name}) must return one number (a scalar tensor), got {got}: use "
            "reduction='mean' or take .mean() of it"
        )


def check_labels(loss: nn.Module, Y: np.ndarray, out_shape: tuple[int, ...]) -> None:
    """Class labels for ``CrossEntropyLoss`` / ``NLLLoss``: integers in ``0..C-1`` (``C`` the
    output's dimension 1; those equal to ``ignore_index`` left out), or class probabilities of the
    output's shape. ``TypeError`` for whole-number floats, ``ValueError`` for the rest."""
    kind = type(loss).__name__
    width = out_shape[1] if len(out_shape) >= 2 else None
    shape = "(" + ", ".join(["n", *map(str, out_shape[1:])]) + ")"
    if np.issubdtype(Y.dtype, np.floating):
        if Y.ndim >= 2 and Y.shape[1:] == out_shape[1:]:
            return  # class probabilities (soft labels), which CrossEntropyLoss takes
        check_finite(Y, "Y")
        fractional = np.flatnonzero(np.round(Y) != Y)
        if fractional.size:
            i = np.unravel_index(fractional[0], Y.shape)
            raise ValueError(
                f"{kind} takes integer class labels (or class probabilities shaped like the "
                f"output, {shape}), but Y holds {Y.dtype} of shape {Y.shape} and "
                f"Y[{', '.join(map(str, i))}] = {Y[i].item()!r} is not a whole number"
            )
        raise TypeError(
            f"{kind} takes integer class labels, got Y of dtype {Y.dtype} (whole numbers "
            f"{Y.min():g} to {Y.max():g}): pass Y.long() or Y.astype(int)"
        )
    if width is None or not np.issubdtype(Y.dtype, np.integer):
        return
    # labels equal to ignore_index are left out by the loss, and by the doctor (issue 20)
    ignore = getattr(loss, "ignore_index", None)
    counted = ignore != Y if isinstance(ignore, int) else np.ones(Y.shape, dtype=bool)
    bad = np.flatnonzero(counted & ((Y < 0) | (width <= Y)))
    if bad.size:
        i = np.unravel_index(bad[0], Y.shape)
        # labels 1..C instead of 0..C-1 is the usual way to get here
        hint = "; subtract 1 from Y" if Y.min() == 1 and Y.max() == width else ""
        raise ValueError(
            f"{kind} label Y[{', '.join(map(str, i))}] = {Y[i].item()} is out of range for a model "
            f"with {width} outputs (labels must be in 0..{width - 1}){hint}"
        )


def loss_words(loss: Any) -> str:
    """The loss as the report's header names it: ``MSELoss``, ``focal`` (a function's name),
    ``a function calling F.mse_loss`` or ``a function`` (a lambda)."""
    name = loss_name(loss)
    return f"a {name}" if name == "function" or name.startswith("function calling ") else name


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with every module's start and end seen by hooks, so that a failure is
    named by the innermost module running and the last one that finished."""
    running: list[tuple[str, nn.Module, list[torch.Tensor]]] = []
    finished: list[tuple[str, Any]] = []

    def started(name: str) -> Any:
        def hook(module: nn.Module, args: tuple) -> None:
            running.append((name, module, [a for a in args if isinstance(a, torch.Tensor)]))

        return hook

    def ended(name: str) -> Any:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            running.pop()
            finished.append((name, getattr(output, "shape", None)))

        return hook

    handles = []
    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(started(name)))
        handles.append(m.register_forward_hook(ended(name)))
    try:
        with untouched(model, x.device), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model(x)
    except Exception as exc:
        raise ValueError(_forward_failure(exc, x, running, finished)) from None
    finally:
        for h in handles:
            h.remove()
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"the model must return one tensor, got {type(out).__name__}: diagnose compares "
            "the model's output with Y through the loss"
        )
    return out


def _forward_failure(
    exc: Exception,
    x: torch.Tensor,
    running: list[tuple[str, nn.Module, list[torch.Tensor]]],
    finished: list[tuple[str, Any]],
) -> str:
    """One sentence: where the forward pass of X's first rows failed, on what shapes, why."""
    head = f"X (samples of shape {tuple(x.shape[1:])}, {_dtype(x)}) does not fit the model"
    if not running:
        return f"{head}: {_first_line(exc)}{_where(exc)}"
    name, module, inputs = running[-1]
    if name:
        where = f"layer {name!r} ({type(module).__name__})"
    else:
        where = f"the model's own forward code ({type(module).__name__})"
        if finished and finished[-1][1] is not None:
            last, shape = finished[-1]
            where += f" after layer {last!r} gave shape {tuple(shape)}"
    expects = _expects(module, inputs[0]) if inputs else None
    if expects:
        return f"{head}: {where} {expects}"
    shapes = ", ".join(f"{tuple(t.shape)} ({_dtype(t)})" for t in inputs) or "no tensor"
    return f"{head}: {where} failed on input {shapes}: {_first_line(exc)}{_where(exc)}"


def _expects(module: nn.Module, t: torch.Tensor) -> str | None:
    """What ``module`` takes and what it got, where its input plainly does not fit it (None
    otherwise)."""
    got = f"got input of shape {tuple(t.shape)}"
    if isinstance(module, nn.Linear) and t.dim() and t.shape[-1] != module.in_features:
        return f"takes {module.in_features} input features (the last dimension), {got}"
    conv = isinstance(module, nn.modules.conv._ConvNd)
    if conv and t.dim() >= 2 and t.shape[-module.weight.dim() + 1] != module.in_channels:
        return f"takes {module.in_channels} input channels, {got}"
    if isinstance(module, nn.Embedding | nn.EmbeddingBag) and t.is_floating_point():
        return f"takes integer token ids, got {_dtype(t)}"
    if (isinstance(module, nn.Linear) or conv) and not t.is_floating_point():
        return f"takes {_dtype(module.weight)} inputs, got {_dtype(t)}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")


def _where(exc: BaseException) -> str:
    """`` (at file.py:23)``: the last frame of the user's own code, if any."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_NOT_USER)
    ]
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")
