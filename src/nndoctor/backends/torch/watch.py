"""Watching a ``torch.nn.Module`` train: hooks that feed the recorder core.

``with nndoctor.watch(model, optimizer) as doctor:`` around the user's own loop, then
``doctor.report()``. ``diagnose`` runs the same :class:`Watch` around its own loop on a copy.

The watch is the step and the schedule; each of its parts has one job:

- the optimizer's step pre-hook (here: once per real step, after DDP has averaged the
  gradients and after AMP's ``unscale_``; a step the grad scaler skips never reaches it):
  gradient and weight norms with one batched reduction, the learning rate, the mode; at the
  next step the size of the update (no post-hook: one hook call a step);
- :class:`~nndoctor.backends.torch.forward.ForwardTap`: the forward pass of probe steps;
- :class:`~nndoctor.backends.torch.loss.LossTap`: every step's loss, and the output and target
  of probe steps;
- :class:`~nndoctor.backends.torch.gradients.GradientBook`: which parameters get gradients and
  change, whether gradients are zeroed, the size of a probed step's update;
- :class:`~nndoctor.backends.torch.nan_tap.NanTap`: where the first NaN or inf came from (a
  reference to each step's inputs; a replay of the step once its loss or gradient is not
  finite);
- :class:`~nndoctor.backends.torch.record.Recording`: the losses and each probe's numbers in
  the recorder core, and the run as Probes at the end;
- :class:`~nndoctor.backends.torch.stability.StabilityTap`: every step's gradient norm per
  layer (kept on the device until a probe), the attention and output logits a probe's forward
  pass shows, a loss scaler's skipped steps;
- :mod:`~nndoctor.backends.torch.statistics`: what a probe computes from the tensors.

Which steps are probed: :class:`~nndoctor.doctor.recorder.Schedule` (in a loop of unknown
length, within a share of the run's time). A failure inside a hook is reported once and
switches the watch's probing off; it never breaks the user's training. Every hook is removed
by :meth:`Watch.close` (also on exceptions). The watch offers the core what
:class:`~nndoctor.doctor.protocol.WatchedRun` asks.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nndoctor._validate import check_instance, check_positive_int
from nndoctor.backends.torch.forward import ForwardTap, TrainModeEvals
from nndoctor.backends.torch.gradients import GradientBook
from nndoctor.backends.torch.loss import LossTap
from nndoctor.backends.torch.model import held, layer_spec, weight_of, weighted_modules
from nndoctor.backends.torch.nan_tap import NanTap
from nndoctor.backends.torch.record import Recording
from nndoctor.backends.torch.stability import StabilityTap
from nndoctor.backends.torch.statistics import layer_weights
from nndoctor.backends.torch.task import loss_spec_of
from nndoctor.doctor.recorder import PROBE_BUDGET, Schedule
from nndoctor.doctor.schema import UNKNOWN, LayerSpec, LossSpec, NanSource, Probes, TaskSpec

log = logging.getLogger("nndoctor")

# a run on the CPU moves its losses into the recorder at least this often (a divergence is
# seen within as many steps); on a GPU only on probe steps (each move waits for the device)
FLUSH_EVERY = 64
# steps checked for never-zeroed gradients besides the probe steps (the check is one small
# parameter's gradient, far cheaper than a probe): the rule has its two checks early
STALE_STEPS = (1, 2)
_NORM_MODULES = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.modules.dropout._DropoutNd)


def optimizer_spec(
    opt: torch.optim.Optimizer, lr_steps: list[tuple[int, float]] | None = None
) -> dict[str, Any]:
    """``name`` and the first parameter group's plain settings (``momentum``...), with

    - ``lr``: the peak learning rate, the largest of the rate at the first step, every rate
      seen since (``lr_steps``, ``(step, lr)`` where it changed) and a scheduler's base rate
      (``initial_lr``; OneCycleLR's ``max_lr``): what a warm-up climbs to and a decay starts
      from;
    - ``lr_first``: the rate of the first step, only where it differs from the peak (a
      warm-up). Without ``lr_steps`` the group's current rate is the first step's.
    """
    group = opt.param_groups[0]
    plain = {k: v for k, v in group.items() if k != "params" and isinstance(v, int | float | bool)}
    # (a stand-in for updates a loop makes by hand says which optimizer they act as)
    spec = {"name": getattr(opt, "acts_as", type(opt).__name__), **plain}
    first = lr_steps[0][1] if lr_steps else _rate(group.get("lr"))
    base = [_rate(group.get("initial_lr")), _rate(group.get("max_lr"))]
    rates = [first, *(lr for _, lr in lr_steps or ()), *base]
    known = [r for r in rates if r is not None and math.isfinite(r)]
    if known:
        spec["lr"] = max(known)
        if first is not None and first != spec["lr"]:
            spec["lr_first"] = first
    return spec


def _rate(value: Any) -> float | None:
    """A learning rate as a float (a tensor's too: fused and capturable optimisers keep one),
    None when there is none."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _checked(model: Any, optimizer: Any, loss: Any, every: int | None) -> int | None:
    """The watch's arguments checked (a clear error naming the bad one); ``every``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    check_instance(loss, nn.Module, "loss", "")
    if loss is not None and not callable(loss):
        raise TypeError(
            f"loss must be a torch loss module or a function, got {type(loss).__name__}"
        )
    return check_positive_int(every, "every") if every is not None else None


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
        every = _checked(model, optimizer, loss, every)
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss
        self._reporter = reporter
        self.schedule = Schedule(
            total_steps, budget=None if every is not None else budget, min_every=min_every
        )
        if every is not None:
            self.schedule.every = every
        self._step_pre_hook = step_pre_hook
        self.due = True  # whether the current step is probed (step 0 is)
        # the budget's clock: when the first step began, when the next probe was armed and
        # when the current probe's window began (see Schedule.spend); and the seconds spent in
        # the probes' own code so far, the floor of the budget's estimate of their cost
        self._t0: float | None = None
        self._armed_at: float | None = None
        self._window_start = 0.0
        self.probe_own = 0.0
        self.lr_changes: list[tuple[int, float]] = []  # (step, lr) where the rate changed
        self._lr_seen: Any = None
        # called after a probed step (and after the step whose loss first was not finite)
        # with the watch: the live alerts ride here, not on an optimizer hook of their own
        self.on_probe: list[Callable[[Any], None]] = []
        self._diverged_told: dict[str, Any] | None = None
        self.step = 0
        self.epoch_ends: list[int] = []
        self.failed: str | None = None
        self._handles: list[Any] = []
        self._layers = weighted_modules(model)
        self.eval_steps = 0
        self.train_mode_evals = TrainModeEvals()
        # set by a runner that watches the model this one's loss runs through (a GAN's pair)
        self.paired_adversarially = False
        self.has_norm = any(isinstance(m, _NORM_MODULES) for m in model.modules())
        on_device = any(p.device.type != "cpu" for p in model.parameters())
        self.forward = ForwardTap(self, model, self._layers)
        self.loss = LossTap(self, loss, on_device)
        # the output layer's last parameter, say: one that every step's loss reaches
        self.loss.anchor = next(
            (p for p in reversed(list(model.parameters())) if p.requires_grad), None
        )
        self.grads = GradientBook(model, optimizer)
        self.recording = Recording(self, self._layers, self.schedule)
        self.stability = StabilityTap(self, model, self._layers)
        self.stability.arm()  # step 0 is probed
        self.nan = NanTap(self, model, loss)
        self.forward.hook()
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            self._handles.append(model.register_forward_pre_hook(self.train_mode_evals.pre))
        if self._step_pre_hook:
            self._handles.append(self.optimizer.register_step_pre_hook(self._pre_step))
        self.loss.install()

    # --- what the core reads (the report, the alerts: WatchedRun), and diagnose ---

    @property
    def parts(self) -> tuple[Any, ...]:
        """The objects whose hooks sit on the model (a copy of the model leaves them out)."""
        return (self.forward, self.loss, self.grads, self.recording, self.nan)

    @property
    def nan_source(self) -> NanSource | None:
        """Where the first non-finite loss or gradient came from (the step replayed), or None."""
        return self.nan.source

    @property
    def layers(self) -> list[tuple[str, nn.Module]]:
        """``(qualified name, module)`` of every weighted layer, in registration order."""
        return self._layers

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _ in self._layers]

    @property
    def initial_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per layer ``(W (units, fan_in), b (units,))`` as training started."""
        return self.recording.init  # type: ignore[return-value]

    def weights(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``i``'s ``(W (units, fan_in), b (units,))`` now, float64 on the host."""
        return layer_weights(self._layers[i][1])

    @property
    def eps(self) -> float:
        """Machine epsilon of the weights' dtype (what "equal up to rounding" means)."""
        W = weight_of(self._layers[0][1]) if self._layers else None
        if W is None or not W.is_floating_point():
            return float(np.finfo(np.float64).eps)
        return float(torch.finfo(W.dtype).eps)

    @property
    def activations(self) -> list[str]:
        """The activation read off the first forward pass per layer (empty before it)."""
        return self.forward.activations

    @property
    def layer_order(self) -> list[int]:
        """Indices into :attr:`layers` in the order the first forward pass ran them."""
        return self.forward.order_seen or list(range(len(self._layers)))

    @property
    def output_activation(self) -> str:
        return self.forward.output_activation

    @property
    def loss_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """``(prediction shape, target shape)`` of the first loss call seen, or None."""
        return self.loss.shapes

    @property
    def diverged(self) -> dict[str, Any] | None:
        """``{"step", "epoch", "layer"}`` of the first non-finite loss, or None."""
        return self.recording.diverged

    @property
    def probes_held(self) -> int:
        return self.recording.probes_held

    @property
    def adversarial(self) -> bool:
        """Whether this model's loss runs through another model trained beside it (a GAN's
        generator through its discriminator), or a runner paired it so: its targets are labels
        the loop made up, not data."""
        own = {id(p) for p in self.model.parameters()}
        foreign = self.loss.reached - own
        return self.paired_adversarially or bool(foreign - held(self.optimizer))

    @property
    def epochs_known(self) -> bool:
        """Whether the loop marked its epochs (:meth:`end_epoch`)."""
        return bool(self.epoch_ends)

    def samples(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The input and target rows kept from the probe steps, or None without targets."""
        return self.loss.samples()

    def layer_specs(self) -> list[LayerSpec]:
        """The architecture as the rules read it: a ``"dense"`` spec per weighted layer, in the
        order the first forward pass ran them, each followed by its activation (none for
        identity, so that directly consecutive layers show as such)."""
        specs: list[LayerSpec] = []
        acts = self.forward.activations
        for i in self.layer_order:
            name, m = self._layers[i]
            specs.append(layer_spec(name, m))
            act = acts[i] if i < len(acts) else UNKNOWN
            if act != "identity":
                specs.append(LayerSpec(act, name=name))
        return specs

    def loss_spec(self) -> LossSpec:
        """The loss module handed to the watch; else a callable (the scalar ``.backward()``
        is called on), whose kind the loss's own computation tells when it is a standard one
        (``F.cross_entropy`` inside a function)."""
        spec = LossSpec("callable") if self.loss_fn is None else self.loss.spec
        return loss_spec_of(self.loss.view, spec)

    def task_spec(self) -> TaskSpec:
        """The data's structure as the loss saw it on the probe steps (what one input and one
        target are); assumed one target per sample before a probe step's loss was seen."""
        return self.loss.task or TaskSpec(known=False)

    def optimizer_spec(self) -> dict[str, Any]:
        """``name`` and the first parameter group's settings; ``lr`` is the peak rate of the
        run and ``lr_first`` its first step's where that differs (a warm-up), whatever rate
        a schedule left in the optimizer by the report (see :func:`optimizer_spec`)."""
        return optimizer_spec(self.optimizer, self.lr_changes)

    def trace(self, x: torch.Tensor) -> None:
        """Run one forward pass of ``x`` with the hooks in place (activations and layer order
        are read off it), as the first step of a run would."""
        self.forward.trace(x)

    def set_probe_batch(self, x: torch.Tensor) -> None:
        """Fix the rows every probe's forward pass runs on (``diagnose`` does: it affords an
        extra forward pass per probe; a watched loop's probes read the training batch and
        only its end state is judged on the first rows seen)."""
        self.forward.set_probe_batch(x)

    def end_state(self, x: torch.Tensor) -> tuple[list[torch.Tensor | None], Any]:
        """The layers' outputs and the model's output on ``x`` with the current weights (no
        gradient, the run's random state and norm statistics left as they were)."""
        self.forward.probe_x = x
        self.forward.probe_forward()
        return self.forward.last_z, self.forward.probe_out

    def log(self, loss: Any, output: Any = None, target: Any = None) -> None:
        """Record the loss of this step (and the output and target it compared) when the
        watch cannot see it: a functional loss, or an AMP-scaled loss."""
        self.loss.log(loss, output, target)

    def report(self, seed: int = 0) -> Any:
        """The ranked findings of what was watched so far (the reporter's)."""
        if self._reporter is None:
            raise RuntimeError("this watch has no reporter: start it with nndoctor.watch()")
        return self._reporter(self, seed)

    # --- the lifecycle ---

    def close(self) -> None:
        """Remove every hook (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.loss.close()
        self.forward.unhook()
        self.grads.disarm_spy()
        self.stability.close()
        self.nan.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def guard(self, what: str, fn: Callable[[], None]) -> None:
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
            self.fail(what, exc)

    def fail(self, what: str, exc: Exception) -> None:
        self.failed = f"{what}: {type(exc).__name__}: {exc}"
        self.forward.capturing = False
        log.warning("nndoctor: probing switched off after an error in %s", self.failed)

    def start_clock(self) -> None:
        if self._t0 is None:
            self._t0 = self._armed_at = time.perf_counter()

    # --- every step ---

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        # the one hook that runs on every step (no post-hook: what follows a step is done at
        # the next one): bookkeeping only, as few operations as possible (this runs between
        # the user's kernels; no host sync, no guard's cost); probe steps do more
        if self.grads.before is not None:  # the last step was probed and its update is done
            self._finish_probe()
        began = self._begin_probe_step() if self.due else 0.0
        loss = self.loss
        loss.new_step()
        loss.take_step_loss()
        self.stability.step()  # the layers' gradient norms, left on the device
        if not loss.on_device:  # the loss is a float already: a NaN is replayed at once
            self.nan.after_step_loss(self.step, loss.unsynced[-1])
        if not self.model.training:
            self.eval_steps += 1
        self.train_mode_evals.gap_open = False
        lr = optimizer.param_groups[0]["lr"]
        if lr is not self._lr_seen:  # a scheduler sets a new float object when it changes it
            self._lr_changed(lr)
        if self.due:
            self.guard("step", self.recording.probe)
            self.guard("step", self.stability.probe)
            self.probe_own += time.perf_counter() - began
        elif self.grads.spying:  # a step checked for stale gradients alone (judged later)
            self.guard("step", lambda: self.grads.check_stale(defer=True))
        elif len(loss.unsynced) >= FLUSH_EVERY and not loss.on_device:
            self.recording.flush()  # no device to wait for: a NaN is seen in FLUSH_EVERY steps
        if self.recording.diverged is not self._diverged_told and self.on_probe:
            self._tell()
        self.step += 1
        self.due = self.schedule.due(self.step)
        if self.failed is not None:
            return
        if self.due:  # arm the next step's probe
            self._armed_at = time.perf_counter()
            self.forward.arm()
            self.stability.arm()
            loss.hook()
            loss.arm_terms()
            self.guard("step", self.grads.arm_spy)
        elif self.step in STALE_STEPS:
            self.guard("step", self.grads.arm_spy)

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
        self.loss.probe_step_began()
        return now

    def _lr_changed(self, lr: Any) -> None:
        self._lr_seen = lr
        if not self.lr_changes or (
            not isinstance(lr, torch.Tensor) and lr != self.lr_changes[-1][1]
        ):
            self.lr_changes.append((self.step, float(lr)))

    def _finish_probe(self) -> None:
        """After a probed step's update: its size, the probe's cost to the schedule (whose
        budget may widen the interval), and the ``on_probe`` callbacks."""
        start = time.perf_counter()
        self.guard("step", self.recording.update_ratios)
        self.grads.before = None  # (also when the guard switched probing off)
        if self.on_probe:
            self._tell()
        core = self.recording.core
        if core is not None and self._t0 is not None:
            now = time.perf_counter()
            self.probe_own += now - start
            # the window: from arming the probe to now, the probed step and this one's
            # forward and backward passes included (two steps)
            self.schedule.spend(
                now - self._window_start,
                2,
                now - self._t0,
                self.step,
                len(core.steps),
                own=self.probe_own,
            )

    def _tell(self) -> None:
        self._diverged_told = self.recording.diverged
        for callback in list(self.on_probe):
            callback(self)

    def end_epoch(self) -> None:
        """Mark an epoch boundary (``diagnose`` does; a user's loop need not)."""
        self.recording.end_epoch()
        self.epoch_ends.append(self.step)

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
        self.guard("step", self.grads.settle_stale)
        probes = self.recording.probes(end_state, epochs, batch_size)
        probes.stability = self.stability.trace()
        return probes
