"""Watching a ``torch.nn.Module`` train: hooks that feed the recorder core.

``with nndoctor.watch(model, optimizer) as doctor:`` around the user's own loop, then
``doctor.report()``. ``diagnose`` runs the same :class:`Watch` around its own loop on a copy.

What is hooked, and why there:

- the optimizer's step pre-hook (once per real step, after DDP has averaged the gradients and
  after AMP's ``unscale_``; a step the grad scaler skips never reaches it): gradient and weight
  norms with one batched reduction, the learning rate, the mode, which parameters got a
  gradient; at the next step the size of the update (no post-hook: one hook call a step);
- forward hooks on every weighted layer and a forward pre-hook on each (its input is what the
  previous layer's activation produced, however it was computed, ``F.relu`` included): in
  place for the forward pass of a probe step only;
- the loss: on probe steps a loss module's forward hook sees output and target; on every step
  the scalar ``.backward()`` is called on is the loss (the hook stays on every step when that
  scalar is not the loss module's output: AMP scaling, gradient accumulation, a penalty);
  ``doctor.log(loss, output, target)`` covers the rest;
- one tensor hook on one small parameter, only on the step before a probe: it sees the fresh
  gradient, so the probe can tell accumulated (never zeroed) gradients from fresh ones.

Which steps are probed: :class:`~nndoctor.doctor.recorder.Schedule` (in a loop of unknown
length, within a share of the run's time). A failure inside a hook is reported once and
switches the watch's probing off; it never breaks the user's training. Every hook is removed
by :meth:`Watch.close` (also on exceptions).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor.backends.torch.model import (
    as_units,
    bias_of,
    infer_activation,
    kind_of,
    unit_columns,
    untouched,
    weight_of,
    weighted_modules,
)
from nndoctor.doctor.recorder import PROBE_BUDGET, PROBE_ROWS, LayerInfo, RecorderCore, Schedule
from nndoctor.doctor.schema import (
    RANK_TOL,
    RECTIFIED,
    SATURATION_Z,
    SQUASHING,
    UNKNOWN,
    LayerSpec,
    LoopFacts,
    LossSpec,
    ParameterFacts,
    Probes,
    effective_targets,
    weight_view,
)

log = logging.getLogger("nndoctor")

# rows of the inputs and targets kept from the probe steps for the data statistics and bounds
# of a watched run (diagnose has all the data)
SAMPLE_ROWS = 1024
# numeric rank of activations only for layers up to this many units (an eigen-decomposition)
RANK_MAX_UNITS = 512
RANK_EVERY = 4
# a run on the CPU moves its losses into the recorder at least this often (a divergence is
# seen within as many steps); on a GPU only on probe steps (each move waits for the device)
FLUSH_EVERY = 64
# steps checked for never-zeroed gradients besides the probe steps (the check is one small
# parameter's gradient, far cheaper than a probe): the rule has its two checks early
STALE_STEPS = (1, 2)
_NORM_MODULES = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.modules.dropout._DropoutNd)


def loss_spec(loss: Any) -> LossSpec:
    """What a torch loss module or callable computes, as plain data (an unknown loss keeps its
    class or function name as its kind: the bounds are then skipped)."""
    name = type(loss).__name__ if isinstance(loss, nn.Module) else getattr(loss, "__name__", "")
    kind = {
        "MSELoss": "mse",
        "BCELoss": "bce",
        "BCEWithLogitsLoss": "bce",
        "CrossEntropyLoss": "cross_entropy",
        "NLLLoss": "cross_entropy",
    }.get(name, name or "callable")
    reduction = getattr(loss, "reduction", "mean")
    return LossSpec(kind, reduction, name == "BCEWithLogitsLoss", name or "callable")


# functions told of every scalar ``.backward()`` while a watch is open; ``torch.Tensor.backward``
# is wrapped while there is one (a tuple, replaced on add and remove: the wrapper runs on every
# step and iterates it as it is, without a copy)
_listeners: tuple[Callable[[torch.Tensor], None], ...] = ()
_original_backward: Callable | None = None


class BackwardListener:
    """The handle of one :func:`listen_backward` registration: :meth:`remove` undoes it (the
    last one restores ``torch.Tensor.backward`` itself)."""

    def __init__(self, fn: Callable[[torch.Tensor], None]) -> None:
        self.fn = fn

    def remove(self) -> None:
        global _listeners, _original_backward
        _listeners = tuple(f for f in _listeners if f is not self.fn)
        if not _listeners and _original_backward is not None:
            torch.Tensor.backward = _original_backward  # type: ignore[method-assign]
            _original_backward = None


def listen_backward(fn: Callable[[torch.Tensor], None]) -> BackwardListener:
    """Call ``fn(loss)`` with every 0-d tensor ``.backward()`` is called on (the loss of a loop
    that uses a functional loss), until the handle's ``remove()``."""
    global _listeners, _original_backward
    if _original_backward is None:
        original = _original_backward = torch.Tensor.backward

        def backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if tensor.dim() == 0:
                for listener in _listeners:
                    listener(tensor)
            return original(tensor, *args, **kwargs)

        torch.Tensor.backward = backward  # type: ignore[method-assign]
    _listeners = (*_listeners, fn)
    return BackwardListener(fn)


class Watch:
    """Watches one model and its optimizer through hooks; see the module docstring.

    Parameters
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
    loss : torch loss module, optional
        Hooked for its output and target; a loss module that is an attribute of the model or
        called as ``criterion(out, y)`` can be named here.
    every : int, optional
        Probe every ``every`` steps; default: about 100 probes per run when ``total_steps``
        is given, else every ``OPEN_START`` steps at first and ever sparser (memory stays
        bounded, and probing takes at most ``budget`` of the run's time).
    total_steps : int, optional
    budget : float or None, optional
        Share of an open-ended run's time that probing may take (default
        :data:`~nndoctor.doctor.recorder.PROBE_BUDGET`); None: probe on a fixed schedule.
        Ignored when ``every`` or ``total_steps`` is given.
    min_every : int, optional
        With ``total_steps``: probe no closer than this many steps apart (see
        :func:`~nndoctor.doctor.recorder.probe_interval`).
    step_pre_hook : bool, optional
        Read the gradients in the optimizer's step pre-hook (default). False: the caller
        calls :meth:`before_step` once the gradients are ready (Lightning steps with a
        closure: the pre-hook runs before the forward and backward passes).
    reporter : callable ``(watch, seed) -> Report``, optional
        What :meth:`report` calls (``nndoctor.watch`` passes the core's report of a watched
        run; a watch made for ``diagnose``'s own run needs none).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        loss: Any = None,
        every: int | None = None,
        total_steps: int | None = None,
        budget: float | None = PROBE_BUDGET,
        min_every: int = 1,
        step_pre_hook: bool = True,
        reporter: Callable[..., Any] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss
        self._loss_spec = loss_spec(loss) if loss is not None else LossSpec("", name="")
        self._reporter = reporter
        self.schedule = Schedule(
            total_steps, budget=None if every is not None else budget, min_every=min_every
        )
        if every is not None:
            self.schedule.every = int(every)
        self._step_pre_hook = step_pre_hook
        self._due = True  # whether the current step is probed (step 0 is)
        # the budget's clock: when the first step began, when the next probe was armed and
        # when the current probe's window began (see Schedule.spend)
        self._t0: float | None = None
        self._armed_at: float | None = None
        self._window_start = 0.0
        # seconds spent in the probes' own code so far: the floor of the budget's estimate
        # of their cost (Schedule.spend)
        self._probe_own = 0.0
        # the loss module is hooked on probe steps only, unless the scalar .backward() is
        # called on turned out not to be the loss itself (scaled by AMP, divided for
        # gradient accumulation, plus a penalty): then on every step
        self._loss_every_step = False
        self._loss_handle: Any = None
        self._hooked_loss: torch.Tensor | None = None
        self._lr_changes: list[tuple[int, float]] = []  # (step, lr) where the rate changed
        self._lr_seen: Any = None
        # called after a probed step (and after the step whose loss first was not finite)
        # with the watch: the live alerts ride here, not on an optimizer hook of their own
        self.on_probe: list[Callable[[Watch], None]] = []
        self._diverged_told: dict[str, Any] | None = None
        self._backward_seen = False
        self.step = 0
        self.epoch_ends: list[int] = []
        self.failed: str | None = None
        self._handles: list[Any] = []
        self._forward_handles: list[Any] = []
        self._layers = weighted_modules(model)
        self._index = {id(m): i for i, (_, m) in enumerate(self._layers)}
        self._capturing = False
        self._arm_capture = True  # the first forward is step 0's
        self._probe_x: torch.Tensor | None = None  # fixed rows for the probes' forward pass
        self._probe_full = False
        self._fixed_probe = False
        self._in_probe = False
        self._z: dict[int, torch.Tensor] = {}
        self._inputs: dict[int, Any] = {}
        self._order: list[int] = []
        self._root_in: Any = None
        self._root_out: Any = None
        # losses as floats (read at once on the CPU) or 0-d tensors (on a device: read later)
        self._pending_losses: list[float | torch.Tensor] = []
        self._unsynced: list[float | torch.Tensor | None] = []
        self._loss_seen_by_hook = False
        self._shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self._last_output: torch.Tensor | None = None
        self._probe_out: torch.Tensor | None = None
        self._last_target: torch.Tensor | None = None
        self._sample_x: list[np.ndarray] = []
        self._sample_y: list[np.ndarray] = []
        self._core: RecorderCore | None = None
        self._activations: list[str] = []
        self._order_seen: list[int] = []  # layer indices in the first forward pass's order
        self._output_activation = UNKNOWN
        self._before: list[torch.Tensor] | None = None
        self._before_norms: list[float] = []
        self._last_forward: list[dict[str, float]] | None = None
        self._last_z: list[torch.Tensor | None] = []
        self._diverged: dict[str, Any] | None = None
        self._eval_steps = 0
        self._no_grad_checks: dict[str, int] = {}
        self._checks = 0
        self._stale = [0, 0]  # (stale, decided) checks
        self._spy_param: torch.Tensor | None = None
        self._spy_old: torch.Tensor | None = None
        self._spy_fresh: torch.Tensor | None = None
        self._spy_handle: Any = None
        self._spy_had_hooks = False
        names = dict(model.named_parameters())
        self._param_names = {id(p): n for n, p in names.items()}
        in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
        self._params = names
        self._in_optimizer = {n: id(p) in in_opt for n, p in names.items()}
        self._requires_grad = {n: p.requires_grad for n, p in names.items()}
        self._checksum0 = self._checksums()
        # copies: for float64 CPU parameters the views share memory and would follow training
        self._init = [tuple(a.copy() for a in self.layer_weights(m)) for _, m in self._layers]
        self._on_device = any(p.device.type != "cpu" for p in model.parameters())
        self._has_norm = any(isinstance(m, _NORM_MODULES) for m in model.modules())
        self._install()

    # --- what the rest of the doctor reads (alerts, the report, diagnose) ---

    @property
    def layers(self) -> list[tuple[str, nn.Module]]:
        """``(qualified name, module)`` of every weighted layer, in registration order."""
        return self._layers

    @property
    def activations(self) -> list[str]:
        """The activation read off the first forward pass per layer (empty before it)."""
        return self._activations

    @property
    def layer_order(self) -> list[int]:
        """Indices into :attr:`layers` in the order the first forward pass ran them."""
        return self._order_seen or list(range(len(self._layers)))

    @property
    def output_activation(self) -> str:
        return self._output_activation

    @property
    def loss_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """``(prediction shape, target shape)`` of the first loss call seen, or None."""
        return self._shapes

    @property
    def diverged(self) -> dict[str, Any] | None:
        """``{"step", "epoch", "layer"}`` of the first non-finite loss, or None."""
        return self._diverged

    @property
    def probes_held(self) -> int:
        return len(self._core.steps) if self._core is not None else 0

    @property
    def initial_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer ``(W (units, fan_in), b (units,))`` as training started."""
        return self._init

    @property
    def layer_names(self) -> list[str]:
        """The weighted layers' qualified names, in registration order."""
        return [name for name, _ in self._layers]

    def weights(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``i``'s ``(W (units, fan_in), b (units,))`` now, float64 on the host."""
        return self.layer_weights(self._layers[i][1])

    @property
    def eps(self) -> float:
        """Machine epsilon of the weights' dtype (what "equal up to rounding" means)."""
        W = weight_of(self._layers[0][1]) if self._layers else None
        if W is None or not W.is_floating_point():
            return float(np.finfo(np.float64).eps)
        return float(torch.finfo(W.dtype).eps)

    @property
    def epochs_known(self) -> bool:
        """Whether the loop marked its epochs (:meth:`end_epoch`)."""
        return bool(self.epoch_ends)

    def layer_specs(self) -> list[LayerSpec]:
        """The architecture as the rules read it: a ``"dense"`` spec per weighted layer, in the
        order the first forward pass ran them, each followed by its activation (none for
        identity, so that directly consecutive layers show as such)."""
        specs: list[LayerSpec] = []
        for i in self.layer_order:
            name, m = self._layers[i]
            W = weight_of(m)
            kind = "dense" if kind_of(m) == "dense" else kind_of(m)
            specs.append(LayerSpec(kind, W[0].numel(), W.shape[0], None, name))
            act = self._activations[i] if i < len(self._activations) else UNKNOWN
            if act != "identity":
                specs.append(LayerSpec(act, name=name))
        return specs

    def loss_spec(self) -> LossSpec:
        """The loss module handed to the watch, or a callable (the scalar ``.backward()`` is
        called on)."""
        if self.loss_fn is None:
            return LossSpec("callable", name="callable")
        return self._loss_spec

    def optimizer_spec(self) -> dict[str, Any]:
        """``name`` and the first parameter group's settings; ``lr`` is the rate the run
        started with (a schedule may have taken it to 0 by the report)."""
        spec = optimizer_spec(self.optimizer)
        if self.first_lr is not None:
            spec["lr"] = self.first_lr
        return spec

    def samples(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The input and target rows kept from the probe steps, or None without targets."""
        if not (self._sample_x and self._sample_y):
            return None
        return np.concatenate(self._sample_x), np.concatenate(self._sample_y)

    @property
    def first_lr(self) -> float | None:
        """The learning rate at the first step (a schedule may have taken it to 0 since)."""
        return self._lr_changes[0][1] if self._lr_changes else None

    def trace(self, x: torch.Tensor) -> None:
        """Run one forward pass of ``x`` with the hooks in place (activations and layer order
        are read off it), as the first step of a run would."""
        self._arm_capture = True
        self._hook_forward()
        with torch.enable_grad():
            self.model(x)

    def end_state(self, x: torch.Tensor) -> tuple[list[torch.Tensor | None], Any]:
        """The layers' outputs and the model's output on ``x`` with the current weights (no
        gradient, the run's random state and norm statistics left as they were)."""
        self._probe_x = x
        self._probe_forward()
        return self._last_z, self._probe_out

    # --- hooks ---

    def _install(self) -> None:
        self._hook_forward()
        if self._step_pre_hook:
            self._handles.append(self.optimizer.register_step_pre_hook(self._pre_step))
        self._hook_loss()
        self._backward_listener = listen_backward(self._on_backward)

    def _hook_loss(self) -> None:
        if isinstance(self.loss_fn, nn.Module) and self._loss_handle is None:
            self._loss_handle = self.loss_fn.register_forward_hook(self._loss_hook)

    def _unhook_loss(self) -> None:
        self._hooked_loss = None
        if self._loss_handle is not None and not self._loss_every_step:
            self._loss_handle.remove()
            self._loss_handle = None

    def _hook_forward(self) -> None:
        """Forward hooks, in place only until the next probe step's forward pass has been
        seen: the steps in between run without them."""
        if self._forward_handles:
            return
        add = self._forward_handles.append
        add(self.model.register_forward_pre_hook(self._root_pre))
        add(self.model.register_forward_hook(self._root_post))
        for _, m in self._layers:
            add(m.register_forward_pre_hook(self._layer_pre))
            add(m.register_forward_hook(self._layer_post))

    def _unhook_forward(self) -> None:
        for h in self._forward_handles:
            h.remove()
        self._forward_handles.clear()

    def close(self) -> None:
        """Remove every hook (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._loss_every_step = False
        self._unhook_loss()
        self._unhook_forward()
        self._disarm_spy()
        self._backward_listener.remove()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        """Run one hook body; a failure is logged once and switches probing off."""
        if self.failed is not None:
            return
        try:
            # a diverging run's numbers overflow: that is a finding, not a warning (no
            # warnings.catch_warnings here: it resets the registry of warnings already shown,
            # so the user's own warnings would repeat on every probe)
            with np.errstate(all="ignore"):
                fn()
        except Exception as exc:  # the user's training must go on whatever happens here
            self._fail(what, exc)

    def _fail(self, what: str, exc: Exception) -> None:
        self.failed = f"{what}: {type(exc).__name__}: {exc}"
        self._capturing = False
        log.warning("nndoctor: probing switched off after an error in %s", self.failed)

    def _root_pre(self, module: nn.Module, args: tuple) -> None:
        training_forward = self._arm_capture and torch.is_grad_enabled()
        if (training_forward or self._in_probe) and self.failed is None:
            if self._t0 is None:  # the first step's forward pass starts the clock
                self._t0 = self._armed_at = time.perf_counter()
            self._capturing = True
            self._arm_capture = False
            self._z.clear()
            self._inputs.clear()
            self._order.clear()
            self._root_in = args[0] if args else None
            if training_forward and len(args) == 1:
                self._guard("probe batch", lambda: self._collect_probe_rows(args[0]))

    def _collect_probe_rows(self, x: Any) -> None:
        """The probe batch of a watched loop: the first ``PROBE_ROWS`` inputs seen."""
        if self._probe_full or not isinstance(x, torch.Tensor) or x.dim() < 1:
            return
        x = x.detach()
        if self._probe_x is None:
            self._probe_x = x[:PROBE_ROWS].clone()
        elif self._probe_x.shape[1:] == x.shape[1:]:
            need = PROBE_ROWS - len(self._probe_x)
            self._probe_x = torch.cat([self._probe_x, x[:need]])
        self._probe_full = len(self._probe_x) >= PROBE_ROWS

    def set_probe_batch(self, x: torch.Tensor) -> None:
        """Fix the rows every probe's forward pass runs on (``diagnose`` does: it affords an
        extra forward pass per probe; a watched loop's probes read the training batch and
        only its end state is judged on the first rows seen)."""
        self._probe_x, self._probe_full, self._fixed_probe = x, True, True

    def _probe_forward(self) -> None:
        """Forward the probe batch with the current weights: the layers' outputs for the
        statistics. The user's run is left as it was: no gradient, the random state and the
        norm layers' running statistics restored."""
        if self._probe_x is None:
            return
        self._hook_forward()
        try:
            with untouched(self.model, self._probe_x.device):
                self._in_probe = True
                self.model(self._probe_x)
        finally:
            self._in_probe = False
            if not self._arm_capture:
                self._unhook_forward()

    def _layer_pre(self, module: nn.Module, args: tuple) -> None:
        if self._capturing:
            i = self._index[id(module)]
            if i not in self._inputs:
                self._inputs[i] = args[0] if args else None

    def _layer_post(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self._capturing:
            i = self._index[id(module)]
            if i not in self._z:
                self._z[i] = output
                self._order.append(i)

    def _root_post(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self._capturing:
            self._capturing = False
            self._root_out = output
            start = time.perf_counter()
            self._guard("forward statistics", self._forward_stats)
            if self._due or self._in_probe:
                self._probe_own += time.perf_counter() - start
            self._root_out = None  # it holds the step's graph
            if not self._in_probe:
                self._unhook_forward()

    def _loss_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if len(args) >= 2 and isinstance(output, torch.Tensor) and output.requires_grad:
            self._loss_seen_by_hook = True
            self._hooked_loss = output
            self._on_loss(output, args[0], args[1])

    def _on_backward(self, tensor: torch.Tensor) -> None:
        # on every step: what _on_loss(tensor, None, None) does, without the checks of an
        # output and a target
        self._backward_seen = True
        if not self._loss_seen_by_hook:
            self._pending_losses.append(self._loss_value(tensor))
        elif self._hooked_loss is not None and tensor is not self._hooked_loss:
            # not the loss module's own output: only the hook knows the loss on every step
            self._loss_every_step = True

    def log(self, loss: Any, output: Any = None, target: Any = None) -> None:
        """Record the loss of this step (and the output and target it compared) when the
        watch cannot see it: a functional loss, or an AMP-scaled loss."""
        self._loss_seen_by_hook = True
        if self.failed is not None:
            return
        try:  # not through _guard: this runs on every step, the probe steps' part is guarded
            value = loss if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
            self._on_loss(value, output, target)
        except Exception as exc:
            self._fail("log", exc)

    def _on_loss(self, loss: torch.Tensor, output: Any, target: Any) -> None:
        self._pending_losses.append(self._loss_value(loss))
        if isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor):
            if self._shapes is None:
                self._shapes = (tuple(output.shape), tuple(target.shape))
            if self._due:
                self._guard("loss", lambda: self._keep_sample(output, target))

    def _loss_value(self, loss: torch.Tensor) -> float | torch.Tensor:
        """The loss as a float on the CPU (``item`` costs what a ``detach`` costs there, and
        moving many 0-d tensors later costs more), as a 0-d tensor on a device (read on probe
        steps only: no wait for the device on every step); NaN for a loss that is not one
        number."""
        if loss.numel() != 1:
            return math.nan
        return loss.detach().reshape(()) if self._on_device else loss.item()

    # --- per step ---

    def _keep_sample(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self._last_output = output.detach()[:PROBE_ROWS]
        self._last_target = target.detach()[:PROBE_ROWS]
        have = sum(len(x) for x in self._sample_y)
        if have < SAMPLE_ROWS and isinstance(self._root_in, torch.Tensor):
            k = min(SAMPLE_ROWS - have, len(target), len(self._root_in))
            x = self._root_in.detach()[:k].to("cpu", torch.float64)
            self._sample_x.append(x.reshape(k, -1).numpy())
            y = target.detach()[:k].to("cpu")
            y = y.numpy() if y.dtype in (torch.int64, torch.int32) else y.double().numpy()
            self._sample_y.append(y)

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        # the one hook that runs on every step (no post-hook: what follows a step is done at
        # the next one): bookkeeping only, as few operations as possible (this runs between
        # the user's kernels; no host sync, no guard's cost); probe steps do more
        if self._before is not None:  # the last step was probed and its update is done
            self._finish_probe()
        began = self._begin_probe_step() if self._due else 0.0
        self._loss_seen_by_hook = self._backward_seen = False
        self._take_step_loss()
        if not self.model.training:
            self._eval_steps += 1
        lr = optimizer.param_groups[0]["lr"]
        if lr is not self._lr_seen:  # a scheduler sets a new float object when it changes it
            self._lr_changed(lr)
        if self._due:
            self._guard("step", self._before_step)
            self._probe_own += time.perf_counter() - began
        elif self._spy_handle is not None:  # a step checked for stale gradients alone
            self._guard("step", self._check_stale)
        elif len(self._unsynced) >= FLUSH_EVERY and not self._on_device:
            self._flush()  # no device to wait for: a NaN is seen within FLUSH_EVERY steps
        if self._diverged is not self._diverged_told and self.on_probe:
            self._tell()
        self.step += 1
        self._due = self.schedule.due(self.step)
        if self.failed is not None:
            return
        if self._due:  # arm the next step's probe
            self._armed_at = time.perf_counter()
            self._arm_capture = True
            self._hook_forward()
            self._hook_loss()
            self._guard("step", self._arm_spy)
        elif self.step in STALE_STEPS:
            self._guard("step", self._arm_spy)

    def before_step(self) -> None:
        """What the optimizer's step pre-hook does, for a watch made with
        ``step_pre_hook=False``: call it once the step's gradients are ready."""
        self._pre_step(self.optimizer, (), {})

    def _begin_probe_step(self) -> float:
        """Open a probed step's window; returns when it began (its own time counts from
        here)."""
        now = time.perf_counter()
        if self._t0 is None:  # no forward pass was seen
            self._t0 = now
        self._window_start = self._armed_at if self._armed_at is not None else now
        if self._loss_handle is not None and not self._loss_every_step:
            if self._hooked_loss is not None and not self._backward_seen:
                self._loss_every_step = True  # .backward() is not how this loop steps
            self._unhook_loss()
        return now

    def _lr_changed(self, lr: Any) -> None:
        self._lr_seen = lr
        if not self._lr_changes or (
            not isinstance(lr, torch.Tensor) and lr != self._lr_changes[-1][1]
        ):
            self._lr_changes.append((self.step, float(lr)))

    def _finish_probe(self) -> None:
        """After a probed step's update: its size, the probe's cost to the schedule (whose
        budget may widen the interval), and the ``on_probe`` callbacks."""
        start = time.perf_counter()
        self._guard("step", self._update_ratios)
        self._before = None  # (also when the guard switched probing off)
        if self.on_probe:
            self._tell()
        if self._core is not None and self._t0 is not None:
            now = time.perf_counter()
            self._probe_own += now - start
            # the window: from arming the probe to now, the probed step and this one's
            # forward and backward passes included (two steps)
            self.schedule.spend(
                now - self._window_start,
                2,
                now - self._t0,
                self.step,
                len(self._core.steps),
                own=self._probe_own,
            )

    def _tell(self) -> None:
        self._diverged_told = self._diverged
        for callback in list(self.on_probe):
            callback(self)

    def _take_step_loss(self) -> None:
        """This step's loss: the mean of the losses since the last step (the micro-batches
        of gradient accumulation); None when none was seen (NaN in the curve)."""
        pending = self._pending_losses
        if len(pending) == 1:
            self._unsynced.append(pending[0])
        elif not pending:
            self._unsynced.append(None)  # no loss seen: a gap in the curve, not a divergence
        elif all(isinstance(v, float) for v in pending):
            self._unsynced.append(sum(pending) / len(pending))
        else:
            dev = next(v.device for v in pending if isinstance(v, torch.Tensor))
            both = [torch.as_tensor(v, device=dev).double() for v in pending]
            self._unsynced.append(torch.stack(both).mean())
        pending.clear()

    def _flush(self) -> None:
        """Move the steps' losses to the host (one sync) and into the recorder."""
        if not self._unsynced:
            return
        core = self._ensure_core()
        first = core.losses.__len__()
        pending = self._unsynced
        read_all = list(pending)  # floats and None on the CPU
        if self._on_device:
            tensors = [t for t in pending if isinstance(t, torch.Tensor)]  # 0-d (_loss_value)
            read = iter(_to_host(tensors).tolist())  # one transfer, one wait for the device
            read_all = [next(read) if isinstance(t, torch.Tensor) else t for t in pending]
        pending.clear()
        values = [math.nan if v is None else v for v in read_all]
        core.step_losses(values)
        seen = [v for v in read_all if v is not None]
        if self._diverged is None and not math.isfinite(sum(seen)):
            k = next(k for k, v in enumerate(read_all) if v is not None and not math.isfinite(v))
            bad = [n for (n, m) in self._layers if not torch.isfinite(weight_of(m)).all()]
            self._diverged = {
                "step": first + k,
                "epoch": len(self.epoch_ends),
                "layer": bad[0] if bad else None,
            }

    def _before_step(self) -> None:
        step = self.step
        self._flush()
        core = self._ensure_core()
        ws = [weight_of(m) for _, m in self._layers]
        grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in ws]
        device = [
            *torch._foreach_norm([_wide(w.detach()) for w in ws]),
            *torch._foreach_norm([_wide(g.detach()) for g in grads]),
        ]
        self._before = [w.detach().clone() for w in ws]
        if self._fixed_probe:
            self._probe_forward()
        out = self._probe_out
        if isinstance(out, torch.Tensor) and out.dim() >= 1 and len(out):
            # the spread of the predictions over the probe rows, per output, averaged
            device.append(self._predicted(out).std(dim=0, correction=0).mean())
        values = _to_host(device)  # one transfer
        L = len(ws)
        self._before_norms = values[:L]
        output_std = values[2 * L] if len(values) > 2 * L else math.nan
        self._check_gradients()
        self._check_stale()
        core.probe(step, values[:L], values[L : 2 * L], self._last_forward, output_std)
        self._last_forward = None

    def _update_ratios(self) -> None:
        if self._core is not None:
            ws = [weight_of(m).detach() for _, m in self._layers]
            diff = torch._foreach_sub(ws, self._before)
            num = _to_host(torch._foreach_norm([_wide(d) for d in diff]))
            # the weights' norms before the update were read by the probe
            ratios = [
                a / b if b > 0 else math.nan for a, b in zip(num, self._before_norms, strict=True)
            ]
            self._core.update_ratios(ratios)
        self._before = None

    def end_epoch(self) -> None:
        """Mark an epoch boundary (``diagnose`` does; a user's loop need not)."""
        self._flush()
        self._ensure_core().end_epoch()
        self.epoch_ends.append(self.step)

    # --- what a probe records ---

    def _ensure_core(self) -> RecorderCore:
        if self._core is None:
            infos = []
            for i, (name, m) in enumerate(self._layers):
                W = weight_of(m)
                act = self._activations[i] if i < len(self._activations) else UNKNOWN
                infos.append(LayerInfo(name, W[0].numel(), W.shape[0], act, kind_of(m)))
            self._core = RecorderCore(infos, self.schedule)
        return self._core

    def _forward_stats(self) -> None:
        """Per weighted layer: saturation, dead units, activation rank, output RMS."""
        order = list(self._order)
        if not self._activations:
            self._infer_activations(order)
        if not self._in_probe and (self._fixed_probe or not self._due):
            # the statistics come from the probe batch's forward pass, or no probe reads them
            # (the first forward pass a watch sees is captured for the activations even when
            # its step is not probed: under `nndoctor run` the watch starts after step 0's)
            self._z.clear()
            self._inputs.clear()
            return
        self._last_z = []
        parts: list[torch.Tensor] = []  # reduced on the device, moved in one transfer
        layout: list[tuple[str, int, int] | None] = []  # per layer: act, numel, units
        ranks: list[float] = []
        for i in range(len(self._layers)):
            z = self._z.get(i)
            kind = kind_of(self._layers[i][1])
            cols = unit_columns(z, kind) if isinstance(z, torch.Tensor) else None
            if cols is not None and cols.shape[0] == 0:
                cols = None
            self._last_z.append(None if cols is None else cols.detach()[: PROBE_ROWS * 16])
            act = self._activations[i]
            if cols is None:
                layout.append(None)
            else:
                parts.extend(_layer_reductions(cols, act))
                layout.append((act, cols.numel(), cols.shape[1]))
            ranks.append(self._layer_rank(cols, self._h_of(i, order)))
        values = _to_host(parts)
        stats = []
        at = 0
        for entry, rank in zip(layout, ranks, strict=True):
            if entry is None:
                stats.append(dict.fromkeys(("frac_saturated", "frac_dead", "z_rms"), math.nan))
            else:
                one, at = _layer_values(values, at, *entry)
                stats.append(one)
            stats[-1]["act_rank"] = rank
        self._last_forward = stats
        out = self._root_out
        if isinstance(out, torch.Tensor):
            self._probe_out = out.detach()[:PROBE_ROWS]
        self._z.clear()
        self._inputs.clear()

    def _h_of(self, i: int, order: list[int]) -> Any:
        """What layer ``i``'s activation produced: the next weighted layer's input, or the
        model's output for the last one."""
        if i not in order:
            return None
        k = order.index(i)
        return self._inputs.get(order[k + 1]) if k + 1 < len(order) else self._root_out

    def _infer_activations(self, order: list[int]) -> None:
        acts = []
        for i in range(len(self._layers)):
            z = self._z.get(i)
            kind = kind_of(self._layers[i][1])
            acts.append(infer_activation(z, self._h_of(i, order)) if kind == "dense" else UNKNOWN)
        self._activations = acts
        self._order_seen = list(order)
        last = order[-1] if order else None
        self._output_activation = acts[last] if last is not None else UNKNOWN

    def _layer_rank(self, z: torch.Tensor | None, h: Any) -> float:
        # the rank is an eigen-decomposition per layer: a watched loop takes it on every
        # RANK_EVERY-th probe only, not on the first (diagnose, with its fixed probe batch,
        # on every probe); the rules read it as evidence only
        due = self._fixed_probe or self.probes_held % RANK_EVERY == RANK_EVERY - 1
        if z is None or not due or not isinstance(h, torch.Tensor) or h.dim() < 2:
            return math.nan
        if z.shape[1] > RANK_MAX_UNITS:
            return math.nan
        hh = h.detach().float().reshape(h.shape[0], -1)[:PROBE_ROWS]
        return _numeric_rank(hh) if hh.shape[1] == z.shape[1] else math.nan

    def _check_gradients(self) -> None:
        """Count, per parameter that should learn, the probes at which it had no gradient."""
        self._checks += 1
        live = [
            (n, p) for n, p in self._params.items() if p.requires_grad and self._in_optimizer[n]
        ]
        for n, p in live:
            # None only: an all-zero gradient reached the parameter (dead units, say)
            if p.grad is None:
                self._no_grad_checks[n] = self._no_grad_checks.get(n, 0) + 1

    def _arm_spy(self) -> None:
        """Before a probe step: watch the fresh gradient of one small parameter."""
        p = self._spy_param
        if p is None:
            cands = [q for q in self._params.values() if q.requires_grad]
            if not cands:
                return
            p = self._spy_param = min(cands, key=lambda q: q.numel())
        self._spy_old = None if p.grad is None else p.grad.detach().clone()
        self._spy_fresh = None

        def keep(grad: torch.Tensor) -> None:
            g = grad.detach()
            self._spy_fresh = g.clone() if self._spy_fresh is None else self._spy_fresh + g

        self._spy_had_hooks = getattr(p, "_backward_hooks", None) is not None
        self._spy_handle = p.register_hook(keep)

    def _disarm_spy(self) -> None:
        if self._spy_handle is not None:
            self._spy_handle.remove()
            self._spy_handle = None
            p = self._spy_param
            empty = getattr(p, "_backward_hooks", None) == {}
            if empty and not self._spy_had_hooks:
                # a tensor's first hook also installs a call into Python that stays after
                # the hook is removed and costs every backward pass microseconds: back to
                # no hooks at all, as before the spy (setting None removes that call)
                p._backward_hooks = None

    def _check_stale(self) -> None:
        """Zeroed gradients hold only the fresh gradient; never-zeroed ones also the old."""
        p, old, fresh = self._spy_param, self._spy_old, self._spy_fresh
        self._disarm_spy()
        if p is None or p.grad is None or old is None or fresh is None:
            return
        # float32 at least: the tolerance is a thousandth, far above float32's rounding;
        # five norms, one transfer
        g, old, fresh = _wide(p.grad.detach()), _wide(old), _wide(fresh)
        n_fresh, n_old, n_g, n_zeroed, n_kept = _to_host(
            torch._foreach_norm([fresh, old, g, g - fresh, g - old - fresh])
        )
        scale = n_fresh + 1e-30
        if n_old < 0.1 * scale:
            return  # the old gradient is too small to tell the two apart
        tol = 1e-3 * (n_g + scale)
        if n_zeroed <= tol:
            self._stale[1] += 1
        elif n_kept <= tol:
            self._stale[0] += 1
            self._stale[1] += 1

    def _predicted(self, out: torch.Tensor) -> torch.Tensor:
        """The model's output as predictions comparable with the targets
        (:func:`~nndoctor.doctor.schema.effective_targets`): ``(rows, outputs)`` float64 on
        its device, probabilities where the loss reads logits."""
        P = out.detach().double().reshape(len(out), -1)
        if self._loss_spec.from_logits:
            return torch.sigmoid(P)
        return torch.softmax(P, dim=1) if self._loss_spec.kind == "cross_entropy" else P

    def _checksums(self) -> dict[str, tuple[float, float]]:
        """Per parameter its L1 and L2 norms (whether training changed it), in one transfer."""
        ps = [_wide(p.detach()) for p in self._params.values()]
        if not ps:
            return {}
        with torch.no_grad():
            values = _to_host([*torch._foreach_norm(ps, 1), *torch._foreach_norm(ps, 2)])
        n = len(ps)
        return {name: (values[i], values[n + i]) for i, name in enumerate(self._params)}

    @staticmethod
    def layer_weights(m: nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """One layer's ``(W (units, fan_in), b (units,))`` now, float64 on the host."""
        W = weight_of(m)
        b = bias_of(m)
        Wv = weight_view(as_units(W))
        bv = (
            b.detach().to("cpu", torch.float64).numpy()
            if b is not None and b.shape[0] == W.shape[0]
            else np.zeros(W.shape[0])
        )
        return Wv, bv

    # --- the end ---

    def report(self, seed: int = 0) -> Any:
        """The ranked findings of what was watched so far (the reporter's)."""
        if self._reporter is None:
            raise RuntimeError("this watch has no reporter: start it with nndoctor.watch()")
        return self._reporter(self, seed)

    def probes(
        self,
        *,
        end_state: tuple[list[torch.Tensor | None], Any, np.ndarray, float] | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
    ) -> Probes:
        """The :class:`Probes` of what was watched. ``end_state`` (from ``diagnose``): the
        layers' outputs on a fixed probe batch, the model's output, the probe targets and the
        probe loss; without it the last probe step's batch stands for the end state."""
        if self._pending_losses:  # a last loss without a step (training stopped on a NaN)
            self._take_step_loss()
        if self._before is not None:  # the last step was probed: the size of its update
            self._guard("step", self._update_ratios)
        self._flush()
        core = self._ensure_core()
        if not self.epoch_ends:
            # a user's loop has no epochs we can see: about 100 equal stretches of steps
            n = len(core.losses)
            chunks = np.array_split(np.asarray(core.losses), min(n, 100)) if n else []
            core.epoch_losses = [float(np.mean(c)) for c in chunks]
        if end_state is not None:
            zs, out, targets, probe_loss = end_state
        else:
            self._probe_forward()
            zs, out, probe_loss = self._last_z, self._last_output, math.nan
            targets = self._last_target
        final = [self.layer_weights(m) for _, m in self._layers]
        states = [self._unit_states(i, zs) for i in range(len(self._layers))]
        labels = self._labels()
        P = np.zeros((0, 1))
        if isinstance(out, torch.Tensor):
            P = self._predicted(out).cpu().numpy()
        T = self._targets_np(targets)
        T = effective_targets(T, P.shape[1], labels) if T.size else np.zeros((0, P.shape[1]))
        n_steps = self.step
        loop = self._loop_facts()
        steps_per_epoch = max(1, n_steps // max(len(core.epoch_losses), 1))
        probes = core.finish(
            weights_init=self._init,
            weights_final=final,
            unit_states=states,
            probe_output=P,
            probe_target=T,
            probe_loss=probe_loss,
            diverged=self._diverged,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs or max(len(core.epoch_losses), 1),
            batch_size=batch_size or (len(T) if T.size else 1),
            loop=loop,
        )
        probes.eps = self.eps
        return probes

    def _labels(self) -> bool:
        return self._loss_spec.kind == "cross_entropy"

    @staticmethod
    def _targets_np(t: Any) -> np.ndarray:
        if isinstance(t, np.ndarray):
            return t
        if not isinstance(t, torch.Tensor):
            return np.zeros(0)
        t = t.detach().to("cpu")
        return t.numpy() if not t.is_floating_point() else t.double().numpy()

    def _unit_states(self, i: int, zs: list) -> tuple[np.ndarray, np.ndarray]:
        units = weight_of(self._layers[i][1]).shape[0]
        z = zs[i] if i < len(zs) else None
        act = self._activations[i] if i < len(self._activations) else UNKNOWN
        if z is None or z.shape[-1] != units:
            return np.zeros(units, dtype=bool), np.zeros(units)
        zf = z.detach().float()
        dead = (zf <= 0).all(dim=0).cpu().numpy() if act in RECTIFIED else np.zeros(units, bool)
        sat = (
            (zf.abs() > SATURATION_Z).float().mean(dim=0).double().cpu().numpy()
            if act in SQUASHING
            else np.zeros(units)
        )
        return dead, sat

    def _loop_facts(self) -> LoopFacts:
        now = self._checksums()
        return LoopFacts(
            parameters={
                n: ParameterFacts(
                    numel=int(p.numel()),
                    requires_grad=self._requires_grad[n],
                    in_optimizer=self._in_optimizer[n],
                    changed=now[n] != self._checksum0[n],
                    no_grad_checks=self._no_grad_checks.get(n, 0),
                )
                for n, p in self._params.items()
            },
            gradient_checks=self._checks,
            stale_checks=self._stale[0],
            decided_stale_checks=self._stale[1],
            lr_steps=list(self._lr_changes),
            eval_steps=self._eval_steps,
            steps=self.step,
            has_norm_or_dropout=self._has_norm,
            loss_shapes=self._shapes,
            output_activation=self._output_activation,
        )


def optimizer_spec(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """``name`` and the first parameter group's plain settings (``lr``, ``momentum``...)."""
    group = opt.param_groups[0]
    plain = {k: v for k, v in group.items() if k != "params" and isinstance(v, int | float | bool)}
    return {"name": type(opt).__name__, **plain}


def _to_host(values: Sequence[torch.Tensor]) -> np.ndarray:
    """0-d and 1-d tensors, concatenated, as one float64 array on the host: one transfer (one
    wait for the device) when they share a device."""
    if not values:
        return np.zeros(0)
    values = list(values)
    try:  # stack and cat promote mixed float dtypes: one cast
        if all(v.dim() == 0 for v in values):  # norms: stack costs half of what cat does
            return torch.stack(values).double().cpu().numpy()
        return torch.cat(torch.atleast_1d(values)).double().cpu().numpy()
    except RuntimeError:  # on several devices
        return np.concatenate([v.double().cpu().numpy().reshape(-1) for v in values])


def _layer_reductions(z: torch.Tensor, act: str) -> list[torch.Tensor]:
    """What :func:`_layer_values` needs of a layer's output ``z`` ``(rows, units)``, reduced
    on its device in as few operations as possible: the norm, the count of saturated
    entries (squashing activations), each unit's largest input (rectified ones)."""
    zf = _wide(z.detach())
    out = [torch.linalg.vector_norm(zf).reshape(1)]
    if act in SQUASHING:
        out.append((zf.abs() > SATURATION_Z).sum(dtype=zf.dtype).reshape(1))
    if act in RECTIFIED:
        out.append(zf.amax(dim=0))
    return out


def _layer_values(
    values: np.ndarray, at: int, act: str, numel: int, units: int
) -> tuple[dict[str, float], int]:
    """Share saturated, share of dead units (input <= 0 on every row) and RMS of one layer's
    output from its :func:`_layer_reductions` at ``values[at:]``; and where the next layer's
    begin."""
    stats = {"z_rms": float(values[at]) / math.sqrt(max(numel, 1))}
    at += 1
    stats["frac_saturated"] = 0.0
    if act in SQUASHING:
        stats["frac_saturated"] = float(values[at]) / max(numel, 1)
        at += 1
    stats["frac_dead"] = 0.0
    if act in RECTIFIED:
        stats["frac_dead"] = np.count_nonzero(values[at : at + units] <= 0) / units
        at += units
    return stats, at


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 at least: a float16 norm overflows at 65504 (a cast costs a call,
    so float32 and float64 tensors are taken as they are)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _numeric_rank(H: torch.Tensor) -> float:
    """Numeric rank of the centred activations from the eigenvalues of their Gram matrix
    (``units x units``, far cheaper than an SVD of ``rows x units``): singular values above
    ``RANK_TOL`` of the largest are eigenvalues above ``RANK_TOL**2`` of the largest, still
    well above float64 round-off (1e-16)."""
    Hc = (H - H.mean(dim=0)).double()
    if not bool(torch.isfinite(Hc).all()) or not bool(Hc.any()):
        return 0.0
    ev = torch.linalg.eigvalsh(Hc.T @ Hc)
    return float((ev > RANK_TOL**2 * ev[-1]).sum())
