"""The watch's part that names where the first NaN or inf came from.

On every step it keeps a reference to the model's inputs and the autocast region they ran in,
through :func:`listen_calls` (the model's class's ``__call__`` wrapped while a watch listens: a
forward pre-hook would take ``nn.Module.__call__`` off its fast path, several times the cost;
``benchmarks/bench_watch_overhead.py``), and does nothing else until a loss or a gradient is not
finite:

- the loss of a step that is not finite (read on the CPU at once; on an accelerator at the
  probe steps, so only a NaN on a probe step is located there): the step is replayed on a
  copy (:func:`~nndoctor.backends.torch.nan_replay.replay`) with the weights it ran with (the
  optimizer's step pre-hook runs after the backward pass and before the update);
- a loss that cannot be called again (a functional loss): its autograd graph is read just
  before ``.backward()`` frees it (:func:`~nndoctor.backends.torch.nan_replay.graph_source`);
- a probe step whose gradients are not finite while its loss is: the backward pass is replayed.

``diagnose`` calls :meth:`NanTap.locate` itself, with the loss and the target of the step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor.backends.torch.model import weight_of
from nndoctor.backends.torch.nan_replay import (
    autocast_state,
    check_data,
    check_weights,
    graph_source,
    replay,
    twin,
)
from nndoctor.doctor.schema import IN_LOSS, NOT_REPRODUCED, NanSource

# classes whose ``__call__`` is wrapped: class -> (its own ``__call__`` before, or None when it
# inherited one; the listeners by the id of the instance they listen to)
_wrapped: dict[type, tuple[Any, dict[int, Callable[[tuple, dict[str, Any]], None]]]] = {}


class CallListener:
    """The handle of one :func:`listen_calls` registration: :meth:`remove` undoes it (the last
    one of a class restores its ``__call__``); removing twice does nothing."""

    def __init__(self, model: nn.Module) -> None:
        self.cls = type(model)
        self.key = id(model)

    def remove(self) -> None:
        entry = _wrapped.get(self.cls)
        if entry is None:
            return
        own, listeners = entry
        listeners.pop(self.key, None)
        if not listeners:
            del _wrapped[self.cls]
            if own is None:
                delattr(self.cls, "__call__")
            else:
                self.cls.__call__ = own  # type: ignore[method-assign]


def listen_calls(model: nn.Module, fn: Callable[[tuple, dict[str, Any]], None]) -> CallListener:
    """Call ``fn(args, kwargs)`` with what ``model`` is called with (before its forward pass),
    until the handle's ``remove()``. Other instances of its class (a copy of the model) pass
    through at the cost of one dictionary lookup."""
    cls = type(model)
    if cls not in _wrapped:
        own = cls.__dict__.get("__call__")
        original = cls.__call__
        listeners: dict[int, Callable[[tuple, dict[str, Any]], None]] = {}

        def __call__(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
            listener = listeners.get(id(self))
            if listener is not None:
                listener(args, kwargs)
            return original(self, *args, **kwargs)

        _wrapped[cls] = (own, listeners)
        cls.__call__ = __call__  # type: ignore[method-assign]
    _wrapped[cls][1][id(model)] = fn
    return CallListener(model)


def weight_growth(layers: list[tuple[str, nn.Module]], initial: list[np.ndarray]) -> float:
    """Largest ratio over ``layers`` of the weight's norm now to its norm in ``initial``
    (NaN when none had a nonzero norm)."""
    ratios = []
    for (_, m), W0 in zip(layers, initial, strict=True):
        n0 = float(np.linalg.norm(W0))
        if n0 > 0:
            ratios.append(float(torch.linalg.vector_norm(weight_of(m).detach().double())) / n0)
    return max(ratios, default=math.nan)


def locate_step(
    model: nn.Module,
    args: tuple,
    kwargs: dict[str, Any],
    step: int,
    *,
    loss_fn: Callable[..., Any] | None,
    target: Any,
    autocast: tuple[str, torch.dtype] | None = None,
    owners: tuple[Any, ...] = (),
    backward: bool = False,
) -> tuple[NanSource | None, torch.Tensor | None]:
    """Where step ``step``'s first NaN or inf came from, the user's objects left as they
    were: the batch, then the weights, then the step replayed on copies of the model and
    the loss (without the hooks of ``owners``), in a forked random state, its backward pass
    too when ``backward`` (a gradient was not finite). Also the model's output when it was
    finite."""
    own = frozenset(id(p) for p in model.parameters())
    found = check_data(args, kwargs, target, step, own) or check_weights(model, step)
    if found is not None:
        return found, None
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    copy_ = twin(model, owners)
    loss_copy = twin(loss_fn, owners) if isinstance(loss_fn, nn.Module) else loss_fn
    # the copy's dropout draws from a forked random state: the user's stays as it was
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        found, output = replay(
            copy_,
            args,
            kwargs,
            step=step,
            loss_fn=loss_copy,
            target=target,
            autocast=autocast,
            backward=backward,
        )
    if found is None and not model.training:
        found = check_weights(model, step, buffers=True)  # running statistics read in eval
    return found, output


class NanTap:
    """Names the source of the first non-finite loss or gradient of one watch.

    Parameters
    ----------
    watch : Watch
        The owner: its ``layers``, ``recording.init`` (the weights at the start), ``loss``
        (the last target of a probe step) and the parts whose hooks a copy must not carry.
    model : torch.nn.Module
    loss_fn : callable, optional
        The loss, when the watch was given one (a module, or ``diagnose``'s callable).
    """

    def __init__(self, watch: Any, model: nn.Module, loss_fn: Any) -> None:
        self.watch = watch
        self.model = model
        self.loss_fn = loss_fn if callable(loss_fn) else None
        self.args: tuple = ()
        self.kwargs: dict[str, Any] = {}
        self.autocast: tuple[str, torch.dtype] | None = None
        self.source: NanSource | None = None
        self.tried = False  # one replay per run: the first non-finite step is the one
        self.graph_hint: NanSource | None = None
        # the source of a first step that ran before the watch, read by the runner off that
        # step's loss graph (``nndoctor run`` starts a watch at the first step)
        self.before_start: NanSource | None = None
        self.handle = listen_calls(model, self._keep)

    def close(self) -> None:
        self.handle.remove()
        self.args, self.kwargs = (), {}

    def _keep(self, args: tuple, kwargs: dict[str, Any]) -> None:
        # a training forward pass (not a probe's or a trace's, which run without gradients)
        if torch.is_grad_enabled():
            self.args, self.kwargs = args, kwargs
            if torch._C._is_any_autocast_enabled():
                first = next((a for a in args if isinstance(a, torch.Tensor)), None)
                kind = first.device.type if first is not None else "cpu"
                self.autocast = autocast_state(kind)
            else:
                self.autocast = None

    def read_graph(self, loss: torch.Tensor, step: int) -> None:
        """Before ``.backward()`` of a loss that is not finite: what its graph says."""
        if self.graph_hint is None and not self.tried:
            self.graph_hint = graph_source(loss, step)

    def locate(
        self,
        step: int,
        *,
        loss_fn: Callable[..., Any] | None = None,
        target: Any = None,
        backward: bool = False,
    ) -> NanSource | None:
        """Replay step ``step`` (now: the weights are still those it ran with) and keep what
        was found. ``loss_fn`` and ``target``: the step's loss and target when known (without
        them the model alone is replayed, and the loss's graph read before its backward
        pass, if any, says the rest). ``backward``: a gradient was not finite, replay the
        backward pass too (from the sum of the outputs without a loss)."""
        if not self.tried and self.before_start is not None and step == 0 and not self.args:
            # the step ran before this watch (its first, under ``nndoctor run``): what its
            # loss's graph said before the backward pass is all there is
            self.tried = True
            self.source = self.before_start if self.before_start.located else None
        if self.tried or not self.args:
            return self.source
        self.tried = True
        watch = self.watch
        owners = (watch, *watch.parts)
        found, output = locate_step(
            self.model,
            self.args,
            self.kwargs,
            step,
            loss_fn=loss_fn,
            target=target,
            autocast=self.autocast,
            owners=owners,
            backward=backward,
        )
        if found is None and loss_fn is None and not backward:
            found = self._loss_side(step, output)
        if (
            found is not None
            and found.values.get("foreign")
            and self.graph_hint is not None
            and self.graph_hint.located
        ):
            # an input another module computed held the NaN, and the backward pass has freed
            # its graph: the loss's graph, read before it, saw its source (the model's own
            # operations downstream read a NaN, so none of them is the one at fault)
            found = replace(self.graph_hint, phase="input", module=found.values["argument"])
        if found is not None:
            found.weight_growth = weight_growth(watch.layers, [w for w, _ in watch.recording.init])
        self.source = found
        return found

    def _loss_side(self, step: int, output: torch.Tensor | None) -> NanSource:
        """The model's output was finite and the loss could not be replayed: what the loss's
        graph said, else that the loss made it."""
        if self.graph_hint is not None:
            return self.graph_hint
        if output is None or not bool(torch.isfinite(output).all()):
            return NanSource(NOT_REPRODUCED, step)
        biggest = float(output.abs().max()) if output.numel() else math.nan
        return NanSource(
            IN_LOSS, step, phase="loss", module="loss", values={"max_abs_output": biggest}
        )

    def after_step_loss(self, step: int, value: Any) -> None:
        """The step's loss on the host (a float, None when not seen; every step on the CPU): a
        first non-finite one reaches the recorder (and the live alerts) and is replayed now,
        before the optimizer's update."""
        if isinstance(value, float) and not math.isfinite(value) and not self.tried:
            self.watch.recording.flush()
            self.at_nonfinite_loss(step)

    def at_nonfinite_loss(self, step: int) -> None:
        """Step ``step``'s loss is not finite and its weights are still those it ran with."""
        if not self.tried:
            self.watch.guard("nan source", lambda: self.locate(step, **self._loss_and_target()))

    def after_gradients(self, step: int, grad_norms: Any, loss_finite: bool) -> None:
        """A probe step's gradient norms: non-finite ones under a finite loss are replayed."""
        if self.tried or not loss_finite or bool(np.all(np.isfinite(grad_norms))):
            return
        self.watch.guard(
            "nan source", lambda: self.locate(step, backward=True, **self._loss_and_target())
        )

    def _loss_and_target(self) -> dict[str, Any]:
        """The loss and the target of this step, when the watch holds both: a loss module and
        the target its hook saw on this (probe) step, as long as the batch it covers."""
        target = self.watch.loss.last_target
        first = next((a for a in self.args if isinstance(a, torch.Tensor)), None)
        same_rows = (
            isinstance(target, torch.Tensor)
            and first is not None
            and target.dim() >= 1
            and len(target) == len(first)
        )
        if self.loss_fn is None or not self.watch.due or not same_rows:
            return {}
        return {"loss_fn": self.loss_fn, "target": target}
