"""The loss of every step, and the output and target it compared on probe steps.

Two ways in, cheapest first:

- every scalar ``.backward()`` is called on is a step's loss (:func:`listen_backward` wraps
  ``torch.Tensor.backward`` while a watch is open; its handle restores it);
- a loss module's forward hook sees its output and target: on probe steps only, unless the
  scalar ``.backward()`` is called on turned out not to be the loss itself (scaled by AMP,
  divided for gradient accumulation, plus a penalty): then on every step;
- ``watch.log(loss, output, target)`` covers the rest (a functional loss).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor.backends.torch.checks import softmax_over_batch
from nndoctor.backends.torch.model import held, when_others_step
from nndoctor.backends.torch.statistics import to_host
from nndoctor.backends.torch.task import (
    LossView,
    input_kind,
    loss_terms,
    reached_parameters,
    reached_under,
    read_loss,
    task_spec,
)
from nndoctor.doctor.recorder import PROBE_ROWS
from nndoctor.doctor.schema import LossSpec, TaskSpec

# rows of the inputs kept from the probe steps for the data statistics and bounds of a watched
# run (diagnose has all the data), and targets of the loss's units (a token, a pixel: many a row)
SAMPLE_ROWS = 1024
SAMPLE_UNITS = 16384

# functions told of every scalar ``.backward()`` while a watch is open; ``torch.Tensor.backward``
# is wrapped while there is one (a tuple, replaced on add and remove: the wrapper runs on every
# step and iterates it as it is, without a copy)
_listeners: tuple[Callable[[torch.Tensor], Any], ...] = ()
_original_backward: Callable[..., Any] | None = None


class BackwardListener:
    """The handle of one :func:`listen_backward` registration: :meth:`remove` undoes it (the
    last one restores ``torch.Tensor.backward`` itself); removing twice does nothing."""

    def __init__(self, fn: Callable[[torch.Tensor], Any]) -> None:
        self.fn = fn

    def remove(self) -> None:
        global _listeners, _original_backward
        _listeners = tuple(f for f in _listeners if f is not self.fn)
        if not _listeners and _original_backward is not None:
            torch.Tensor.backward = _original_backward  # type: ignore[method-assign]
            _original_backward = None


def listen_backward(fn: Callable[[torch.Tensor], Any]) -> BackwardListener:
    """Call ``fn(loss)`` with every 0-d tensor ``.backward()`` is called on (the loss of a loop
    that uses a functional loss), until the handle's ``remove()``. What ``fn`` returns, when
    not None, is called with no argument once that backward pass is done (the gradients of a
    loop that updates its weights by hand are ready then, and only then)."""
    global _listeners, _original_backward
    if _original_backward is None:
        original = _original_backward = torch.Tensor.backward

        def backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if tensor.dim() != 0:
                return original(tensor, *args, **kwargs)
            after = [done for listener in _listeners if (done := listener(tensor)) is not None]
            result = original(tensor, *args, **kwargs)
            for done in after:
                done()
            return result

        torch.Tensor.backward = backward  # type: ignore[method-assign]
    _listeners = (*_listeners, fn)
    return BackwardListener(fn)


# torch's functional losses: a lambda that calls one of them is named by it
_FUNCTIONAL_LOSSES = frozenset(
    n
    for n in dir(nn.functional)
    if n.endswith("_loss")
    or n in ("cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div")
)


def loss_name(loss: Any) -> str:
    """A loss module's class name or a function's own name; for a lambda or another callable
    without one (never ``<lambda>``) ``function calling F.mse_loss`` when its code calls one
    of torch's functional losses and no other, else ``function``."""
    if isinstance(loss, nn.Module):
        return type(loss).__name__
    if isinstance(loss, functools.partial):
        inner = loss_name(loss.func)
        if inner.startswith("function"):
            return inner
        return f"function calling {'F.' if inner in _FUNCTIONAL_LOSSES else ''}{inner}"
    name = getattr(loss, "__name__", "")
    if name and not name.startswith("<"):
        return name
    code = getattr(loss, "__code__", None) or getattr(type(loss).__call__, "__code__", None)
    called = sorted(_FUNCTIONAL_LOSSES.intersection(getattr(code, "co_names", ())))
    return f"function calling F.{called[0]}" if len(called) == 1 else "function"


def loss_spec(loss: Any) -> LossSpec:
    """What a torch loss module or callable computes, as plain data (an unknown loss keeps its
    name, :func:`loss_name`, as its kind: the bounds are then skipped)."""
    name = loss_name(loss)
    kind = {
        "MSELoss": "mse",
        "BCELoss": "bce",
        "BCEWithLogitsLoss": "bce",
        "CrossEntropyLoss": "cross_entropy",
        "NLLLoss": "cross_entropy",
    }.get(name, name or "callable")
    reduction = getattr(loss, "reduction", "mean")
    weighted = (
        getattr(loss, "weight", None) is not None
        or getattr(loss, "pos_weight", None) is not None
        or getattr(loss, "label_smoothing", 0.0) > 0
    )
    return LossSpec(
        kind, reduction, name == "BCEWithLogitsLoss", name or "callable", weighted=weighted
    )


class LossTap:
    """Sees each step's loss (see the module docstring) for one watch.

    Parameters
    ----------
    watch : Watch
        The owner: its ``due`` (this step is probed), ``guard``/``fail`` (a failure switches
        probing off) and ``forward.root_in`` (the model's input, kept with the targets).
    loss : torch loss module or None
    on_device : bool
        The model lives on an accelerator: losses stay 0-d tensors there until
        :meth:`drain` moves them in one transfer (no wait for the device on every step).
    """

    def __init__(self, watch: Any, loss: Any, on_device: bool) -> None:
        self.watch = watch
        self.loss_fn = loss
        self.spec = loss_spec(loss) if loss is not None else LossSpec("", name="")
        self.on_device = on_device
        self.every_step = False
        self.handle: Any = None
        self.hooked: torch.Tensor | None = None  # the loss module's output this step
        self.backward_seen = False
        self.seen_by_hook = False
        # losses as floats (read at once on the CPU) or 0-d tensors (on a device: read later):
        # the micro-batches of this step (one a backward), and the losses a hook or log() gave
        # since the last backward (its parts: a loss of two calls of the loss module)
        self.pending: list[float | torch.Tensor] = []
        self.parts: list[float | torch.Tensor] = []
        # one parameter of the model: a gradient of None when a backward starts means the
        # losses before were another model's (a GAN: the generator's loss runs through the
        # discriminator), zeroed away since
        self.anchor: torch.Tensor | None = None
        self.unsynced: list[float | torch.Tensor | None] = []
        self.shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self.last_output: torch.Tensor | None = None
        self.last_target: torch.Tensor | None = None
        # the last probe step's loss as the loss saw it (task.read_loss), and the data's
        # structure read off the first one
        self.view: LossView | None = None
        self.task: TaskSpec | None = None
        self.last_input: torch.Tensor | None = None
        self.last_out: torch.Tensor | None = None
        # the batch and the model's output of the step ``last_output`` was kept at: a loss
        # module's hook is not on every probe step, so it may be an earlier one than
        # ``last_input``'s
        self.output_from: tuple[Any, Any] = (None, None)
        # the leaves the probe steps' losses reached (another model's: a GAN)
        self.reached: set[int] = set()
        # a softmax the loss takes over the batch's axis (checks.softmax_over_batch), read
        # off the first probe step's graph that has a batch
        self.softmax_over_batch: tuple[str, tuple[int, ...]] | None = None
        self._softmax_read = False
        # the smallest and largest target of every probed batch (_widen_targets)
        self.target_range: tuple[float, float] | None = None
        self.sample_x: list[np.ndarray] = []
        self.sample_y: list[np.ndarray] = []
        self.listener: BackwardListener | None = None
        # the first loss of a probed step as an autograd edge (whose graph reaches which of
        # the model's outputs: GradientBook.trace_loss); taken by the probe
        self.loss_edge: tuple[Any, int] | None = None
        # probe steps: per backward pass since another optimizer last stepped, whether its
        # loss adds a term that reaches parameters and none this watch's optimizer trains (a
        # generator's adversarial term on a detached fake reaches the discriminator alone);
        # judged at this optimizer's step, with the global step hook that clears it
        self._terms: list[bool] = []
        self._terms_hook: Any = None
        self.cut_terms = [0, 0]  # (probes with a cut term, probes whose loss adds terms)
        self.cut_reached = 0  # the tensors a cut term reached, the last time one was seen

    def install(self) -> None:
        self.hook()
        self.listener = listen_backward(self.on_backward)

    def close(self) -> None:
        self.every_step = False
        self.unhook()
        if self._terms_hook is not None:
            self._terms_hook.remove()
            self._terms_hook = None
        if self.listener is not None:
            self.listener.remove()

    def hook(self) -> None:
        if isinstance(self.loss_fn, nn.Module) and self.handle is None:
            self.handle = self.loss_fn.register_forward_hook(self._loss_hook)

    def unhook(self) -> None:
        self.hooked = None
        if self.handle is not None and not self.every_step:
            self.handle.remove()
            self.handle = None

    def new_step(self) -> None:
        """At the optimizer's step (its pre-hook): the step's backward passes are done."""
        self.seen_by_hook = self.backward_seen = False
        self.judge_terms()

    def arm_terms(self) -> None:
        """Before a probed step: note the terms of its backward passes' losses. (Not at the
        watch's start: a runner starts it from a global step hook, whose dict a new global
        hook would change while torch iterates it.)"""
        self._terms = []
        if self._terms_hook is None:
            # (the backward passes before another optimizer's step were that optimizer's)
            self._terms_hook = when_others_step(self.watch.optimizer, lambda: self._terms.clear())

    def _check_terms(self, loss: torch.Tensor) -> None:
        terms = loss_terms(loss)
        if not terms:
            return
        trained = held(self.watch.optimizer)
        reached = [reached_under(t) for t in terms]
        if not any(r & trained for r in reached):
            return  # another model's backward pass
        cut = [r for r in reached if r and not r & trained]
        self._terms.append(bool(cut))
        if cut:
            self.cut_reached = max(len(r) for r in cut)

    def judge_terms(self) -> None:
        """At this optimizer's step: whether a backward pass of the probed step added a cut
        term (runs every step; does nothing but on a probed one)."""
        if self._terms_hook is None:
            return
        self._terms_hook.remove()
        self._terms_hook = None
        if self._terms:
            self.cut_terms[1] += 1
            self.cut_terms[0] += any(self._terms)
        self._terms = []

    def probe_step_began(self) -> None:
        """A probed step is over: the loss module's hook goes until the next probe step, or
        stays for good when ``.backward()`` is not how this loop steps."""
        if self.handle is not None and not self.every_step:
            if self.hooked is not None and not self.backward_seen:
                self.every_step = True
            self.unhook()

    def _loss_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if len(args) >= 2 and isinstance(output, torch.Tensor) and output.requires_grad:
            if output.numel() != 1:
                # per-unit losses (reduction="none") the loop reduces itself: the step's loss is
                # the scalar its backward starts from, read as a functional loss's
                if self.shapes is None and all(isinstance(a, torch.Tensor) for a in args[:2]):
                    self.shapes = (tuple(args[0].shape), tuple(args[1].shape))
                return
            self.seen_by_hook = True
            self.hooked = output
            self._on_loss(output, args[0], args[1])

    def on_backward(self, tensor: torch.Tensor) -> None:
        # on every step: what _on_loss(tensor, None, None) does, without the checks of an
        # output and a target
        self.backward_seen = True
        if self.watch.due and self.loss_edge is None:
            self.loss_edge = (tensor.grad_fn, tensor.output_nr)
        if self._terms_hook is not None:
            self.watch.guard("loss", lambda: self._check_terms(tensor))
        if self.anchor is not None and self.anchor.grad is None and self.pending:
            self.pending.clear()  # zeroed since: those were the losses of another model's step
        if self.parts:  # the losses the hook or log() saw, summed into this backward
            self.pending.append(self._sum(self.parts))
            self.parts = []
            if self.hooked is not None and tensor is not self.hooked:
                # not the loss module's own output: only the hook knows the loss on every step
                self.every_step = True
        elif not self.seen_by_hook:
            self.pending.append(self._value(tensor))
            if self.watch.due:  # a probe step: what the loss compared, read off its graph
                self.watch.guard("loss", lambda: self._keep(tensor, None, None))
        value = self.pending[-1] if self.pending else None
        if isinstance(value, float) and not math.isfinite(value):
            # the graph is freed by the backward pass: what it says about the loss, now
            self.watch.guard(
                "nan source", lambda: self.watch.nan.read_graph(tensor, self.watch.step)
            )

    def log(self, loss: Any, output: Any = None, target: Any = None) -> None:
        """Record the loss of this step (and the output and target it compared)."""
        self.seen_by_hook = True
        if self.watch.failed is not None:
            return
        try:  # not through guard: this runs on every step, the probe steps' part is guarded
            value = loss if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
            self._on_loss(value, output, target)
        except Exception as exc:
            self.watch.fail("log", exc)

    def _on_loss(self, loss: torch.Tensor, output: Any, target: Any) -> None:
        self.parts.append(self._value(loss))
        if isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor):
            if self.shapes is None:
                self.shapes = (tuple(output.shape), tuple(target.shape))
            if self.watch.due:
                self.watch.guard("loss", lambda: self._keep(loss, output, target))

    def _value(self, loss: torch.Tensor) -> float | torch.Tensor:
        """The loss as a float on the CPU (``item`` costs what a ``detach`` costs there, and
        moving many 0-d tensors later costs more), as a 0-d tensor on a device (read on probe
        steps only: no wait for the device on every step); NaN for a loss that is not one
        number."""
        if loss.numel() != 1:
            return math.nan
        return loss.detach().reshape(()) if self.on_device else loss.item()

    def _keep(self, loss: torch.Tensor, output: Any, target: Any) -> None:
        """A probe step's loss: what it compared, and rows of inputs and targets for the data's
        statistics (targets one row per unit of the loss: a sample, a token, a pixel)."""
        view = read_loss(loss)
        self.reached |= reached_parameters(loss)
        root_in = self.watch.forward.root_in
        if view is not None:
            self.view = view
        # the batch and the model's output it came from: to redo the output and the view on the
        # final weights at the end
        self.last_input = root_in.detach() if isinstance(root_in, torch.Tensor) else None
        self.last_out = self.watch.forward.step_out
        have_target = isinstance(target, torch.Tensor)
        if isinstance(output, torch.Tensor) and have_target:
            self.last_output = output.detach()[:PROBE_ROWS]
            self.last_target = target.detach()[:PROBE_ROWS]
            self.output_from = (self.last_input, self.last_out)
        seen = target if have_target else view.targets if view is not None else None
        if isinstance(seen, torch.Tensor) and seen.numel():
            self._widen_targets(seen.detach())
        samples = len(root_in) if isinstance(root_in, torch.Tensor) else 0
        if samples and not self._softmax_read:
            self._softmax_read = True
            self.softmax_over_batch = softmax_over_batch(loss, samples)
        outputs = self.watch.forward.step_numel
        if self.task is None and samples:
            self.task = task_spec(view, input_kind(root_in), samples, outputs or samples)
        elements = self.task is not None and not self.task.per_sample
        have = sum(len(x) for x in self.sample_x)
        if have >= SAMPLE_ROWS or not samples:
            return
        k = min(SAMPLE_ROWS - have, samples)
        if elements and view is not None:
            kept = sum(len(y) for y in self.sample_y)
            y = view.targets[: max(SAMPLE_UNITS - kept, 0)].to("cpu")
        elif have_target:
            k = min(k, len(target))
            y = target.detach()[:k].to("cpu")
        elif view is not None:  # a functional loss: its targets, one per sample, in order
            k = min(k, len(view.targets))
            y = view.targets[:k].to("cpu")
        else:
            return  # no target to pair the inputs with
        x = root_in.detach()[:k].to("cpu", torch.float64)
        self.sample_x.append(x.reshape(k, -1).numpy())
        y = y.numpy() if y.dtype in (torch.int64, torch.int32) else y.double().numpy()
        self.sample_y.append(y)

    def _widen_targets(self, targets: torch.Tensor) -> None:
        """Widen the range of the class labels every probed batch held (the kept sample holds
        the first probed batches' rows only: a loop over sorted data shows one class there).
        Class labels only: the columns of a regression's targets have ranges of their own."""
        if targets.is_floating_point() or targets.is_complex():
            return
        t = targets[targets >= 0]
        if not t.numel():  # every unit ignored (-100)
            return
        lo, hi = float(t.min()), float(t.max())
        if self.target_range is None:
            self.target_range = (lo, hi)
        else:
            self.target_range = (min(self.target_range[0], lo), max(self.target_range[1], hi))

    def samples(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The input and target rows kept from the probe steps, or None without targets."""
        if not (self.sample_x and self.sample_y):
            return None
        return np.concatenate(self.sample_x), np.concatenate(self.sample_y)

    @staticmethod
    def _sum(values: list[float | torch.Tensor]) -> float | torch.Tensor:
        if len(values) == 1:
            return values[0]
        if all(isinstance(v, float) for v in values):
            return float(sum(values))  # type: ignore[arg-type]
        dev = next(v.device for v in values if isinstance(v, torch.Tensor))
        return torch.stack([torch.as_tensor(v, device=dev).double() for v in values]).sum()

    def take_step_loss(self) -> None:
        """This step's loss: the mean of the losses since the last step (the micro-batches
        of gradient accumulation); None when none was seen (NaN in the curve)."""
        if self.parts:  # logged without a backward this watch saw (log() after backward)
            self.pending.extend(self.parts)
            self.parts = []
        pending = self.pending
        if len(pending) == 1:
            self.unsynced.append(pending[0])
        elif not pending:
            self.unsynced.append(None)  # no loss seen: a gap in the curve, not a divergence
        elif all(isinstance(v, float) for v in pending):
            self.unsynced.append(sum(pending) / len(pending))  # type: ignore[arg-type]
        else:
            dev = next(v.device for v in pending if isinstance(v, torch.Tensor))
            both = [torch.as_tensor(v, device=dev).double() for v in pending]
            self.unsynced.append(torch.stack(both).mean())
        pending.clear()

    def drain(self) -> list[float | None]:
        """The steps' losses not yet read, on the host (one transfer on a device): floats, None
        for a step whose loss was not seen."""
        pending = self.unsynced
        read_all: list[Any] = list(pending)  # floats and None on the CPU
        if self.on_device:
            tensors = [t for t in pending if isinstance(t, torch.Tensor)]  # 0-d (_value)
            read = iter(to_host(tensors).tolist())  # one transfer, one wait for the device
            read_all = [next(read) if isinstance(t, torch.Tensor) else t for t in pending]
        pending.clear()
        return read_all
