"""The stability part of a watch: what the loss-spike, gradient-spike, attention-logit and
output-logit rules read (:class:`~nndoctor.doctor.schema.StabilityTrace`), at no per-step cost.

- every step (the optimizer's step pre-hook): each weighted layer's gradient norm, one batched
  reduction whose result *stays on the device* (no ``.item()``, no wait for it);
- on a probed step: those norms since the last probe come to the host in one transfer with the
  probe's own numbers, and only their per-layer summary is kept (largest, when, mean) besides
  one total per step: memory grows with the number of layers, not of parameters;
- on the forward pass a probe reads (diagnose's fixed probe batch, or a watched loop's probed
  training step), a ``TorchFunctionMode`` sees each ``scaled_dot_product_attention`` (and each
  softmax over a 4-d score tensor, as eager attention implementations compute it) and computes
  that attention's logits on a few sequences: their largest value and the rows' entropy;
  the model's output gives the log-sum-exp of its logits. The mode is on for that pass only;
- a loss scaler (``torch.amp.GradScaler``) is read through :func:`listen_scaler`: its updates
  are counted (a step it skips never reaches the optimizer's hook) and its scale read on probes.

Sharded weights (``DTensor``) give their whole norm, combined across ranks at the probe
(:mod:`~nndoctor.backends.torch.sharded`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nndoctor.backends.torch.model import weight_of
from nndoctor.backends.torch.sharded import combine, is_dtensor, local, shard_group
from nndoctor.backends.torch.statistics import to_host
from nndoctor.doctor.recorder import TARGET_PROBES
from nndoctor.doctor.schema import StabilityTrace

# attention logits are computed on at most this many sequences of the probe batch, and on at
# most this many numbers (batch x heads x queries x keys: fewer queries when over)
ATTENTION_ROWS = 4
ATTENTION_NUMBERS = 1 << 23
# the output's log-sum-exp is taken over at most this many logits
LOGIT_NUMBERS = 1 << 22
# per-probe rows held before every two are merged into one (a run of unknown length)
MAX_ROWS = 2 * TARGET_PROBES
# skipped steps with fewer good steps than this between them are one episode of a loss scaler
EPISODE_GAP = 8

_SOFTMAXES = (torch.softmax, F.softmax, torch.Tensor.softmax)


class StabilityTap:
    """The stability records of one watch (see the module docstring).

    Parameters
    ----------
    watch : Watch
        The owner: its ``step``, ``due``, ``failed``/``fail``, ``forward`` (``in_probe``,
        ``fixed_probe``).
    model : torch.nn.Module
    layers : list of (str, torch.nn.Module)
        The weighted layers, in registration order.
    """

    def __init__(self, watch: Any, model: nn.Module, layers: list[tuple[str, nn.Module]]) -> None:
        self.watch = watch
        self.model = model
        self.names = [name for name, _ in layers]
        self.weights = [w for _, m in layers if (w := weight_of(m)) is not None]
        self.groups = [shard_group(w) for w in self.weights]
        self.sharded = any(is_dtensor(w) for w in self.weights)
        half = any(w.dtype in (torch.float16, torch.bfloat16) for w in self.weights)
        self.norm_dtype = torch.float32 if half else None
        first = self.weights[0].dtype if self.weights else torch.float32
        self.compute_dtype = str(first).replace("torch.", "")
        self._zero: torch.Tensor | None = None
        # on the device until the next probe: per step its layers' local gradient norms (L 0-d
        # tensors a step), and the attention and output statistics of the probe's forward pass
        self.pending: list[torch.Tensor] = []
        self.pending_steps: list[int] = []
        self.passes: list[SeenPass] = []
        # on the host
        self.grad_norm: list[float] = []
        self.rows: list[dict[str, Any]] = []
        self.sites: list[str] = []
        self.scaler = ScalerCount(watch)
        self._listener: ScalerListener | None = listen_scaler(self.scaler.on_update, watch)
        self.capture = AttentionCapture(self)

    # --- every step ---

    def step(self) -> None:
        """This step's gradient norms per layer, kept on the device (no host sync)."""
        if self.capture.taken:
            self.capture.disarm()
        if self.watch.failed is not None or not self.weights:
            return
        try:
            grads = [w.grad for w in self.weights]
            if self.sharded:
                grads = [None if g is None else local(g) for g in grads]
            if all(g is not None for g in grads):
                norms = torch._foreach_norm(grads, 2, dtype=self.norm_dtype)
            else:
                present = [g for g in grads if g is not None]
                found = iter(
                    torch._foreach_norm(present, 2, dtype=self.norm_dtype) if present else ()
                )
                norms = [next(found) if g is not None else self._zero_like() for g in grads]
            self.pending.extend(norms)  # 0-d tensors, stacked at the probe (one op, not one a step)
            self.pending_steps.append(self.watch.step)
        except Exception as exc:  # the user's training goes on; probing stops
            self.watch.fail("stability", exc)

    def _zero_like(self) -> torch.Tensor:
        if self._zero is None:
            w = local(self.weights[0])
            self._zero = torch.zeros((), device=w.device, dtype=self.norm_dtype or w.dtype)
        return self._zero

    # --- the probes ---

    def arm(self) -> None:
        """The next step is probed: see the attention of the forward pass its probe reads."""
        self.capture.arm()

    def probe(self) -> None:
        """A probed step (after the recorder's probe, whose forward pass on a fixed probe
        batch this reads): everything since the last probe to the host, in one transfer."""
        self._drain(self.watch.step)

    def _drain(self, step: int) -> None:
        if not self.pending_steps and not self.passes:
            return
        parts: list[torch.Tensor] = []
        n = len(self.pending_steps)
        if n:
            L = len(self.weights)
            matrix = combine(torch.stack(self.pending).reshape(n, L), self.groups)  # whole norms
            parts.append(matrix.reshape(-1))
        for seen in self.passes:
            parts.extend(v for _, v in seen.attention)
            if seen.logits is not None:
                parts.append(seen.logits)
        scales = self.scaler.scale_tensors()
        parts.extend(scales)
        values = to_host(parts)
        L = len(self.weights)
        at = n * L
        # the last step it summarises (the probe's own step; at the end, the run's last)
        row: dict[str, Any] = {"step": self.pending_steps[-1] if n else step, "attention": {}}
        if n:
            matrix_h = values[:at].reshape(n, L)
            steps = np.asarray(self.pending_steps)
            self.grad_norm.extend(np.sqrt(np.sum(matrix_h**2, axis=1)).tolist())
            finite = np.where(np.isfinite(matrix_h), matrix_h, -np.inf)
            top = np.argmax(finite, axis=0)
            row["grad_max"] = matrix_h[top, np.arange(L)]
            row["grad_max_step"] = steps[top]
            finite_h = np.isfinite(matrix_h)
            with np.errstate(all="ignore"):  # (a column with no finite step: NaN)
                total = np.where(finite_h, matrix_h, 0.0).sum(axis=0)
                row["grad_mean"] = total / finite_h.sum(axis=0)
        skipped = self.scaler.skipped
        for seen in self.passes:
            # the forward pass's numbers: in this row, or in one of their own when they come
            # from an earlier step (the first pass a watch started late sees, as under `nndoctor
            # run`: the reference its probes are compared with)
            target = row
            if seen.step != row["step"]:
                target = {"step": seen.step, "scale": math.nan, "skipped": skipped}
                self.rows.append(target)
            sites: dict[str, list[float]] = {}
            for name, _ in seen.attention:
                top_logit, entropy = values[at], values[at + 1]
                at += 2
                site = sites.setdefault(name, [-math.inf, 0.0, 0.0])
                site[0] = max(site[0], top_logit)
                site[1] += entropy
                site[2] += 1
                if name not in self.sites:
                    self.sites.append(name)
            target["attention"] = {k: (v[0], v[1] / v[2]) for k, v in sites.items()}
            if seen.logits is not None:
                target["logits"] = (values[at], values[at + 1])
                at += 2
        row["scale"] = math.nan
        if scales:
            row["scale"] = values[at]
            self.scaler.read(values[at : at + len(scales)])
        row["skipped"] = skipped
        self.pending.clear()
        self.pending_steps.clear()
        self.passes = []
        if n or row["attention"] or "logits" in row:
            self.rows.append(row)
        if len(self.rows) >= MAX_ROWS:
            self.rows = _thin(self.rows)

    # --- the end ---

    def trace(self) -> StabilityTrace:
        """Everything recorded (the steps since the last probe included)."""
        if self.watch.failed is None:
            try:
                self._drain(self.watch.step)
            except Exception as exc:
                self.watch.fail("stability", exc)
        rows, sites, L = self.rows, self.sites, len(self.weights)
        blank = np.full(L, math.nan)

        def grid(key: str) -> np.ndarray:
            return np.array([r.get(key, blank) for r in rows], dtype=np.float64).reshape(-1, L)

        attention = np.full((len(rows), len(sites), 2), math.nan)
        for i, r in enumerate(rows):
            for j, name in enumerate(sites):
                if name in r["attention"]:
                    attention[i, j] = r["attention"][name]
        logits = np.array([r.get("logits", (math.nan, math.nan)) for r in rows]).reshape(-1, 2)
        scaler = self.scaler
        return StabilityTrace(
            layers=list(self.names),
            grad_norm=np.asarray(self.grad_norm, dtype=np.float64),
            steps=np.array([r["step"] for r in rows], dtype=np.int64),
            grad_max=grid("grad_max"),
            grad_mean=grid("grad_mean"),
            grad_max_step=grid("grad_max_step"),
            attention=list(sites),
            attention_logit_max=attention[:, :, 0],
            attention_entropy=attention[:, :, 1],
            logit_lse=logits[:, 0],
            logit_max=logits[:, 1],
            compute_dtype=self.compute_dtype,
            scaler_scale=np.array([r["scale"] for r in rows], dtype=np.float64),
            scaler_skipped=np.array([r["skipped"] for r in rows], dtype=np.float64),
            scaler_updates=scaler.updates,
            scaler_skipped_total=scaler.skipped,
            scaler_longest_skip_run=scaler.longest_run,
            scaler_collapse_start=scaler.worst_start,
            scaler_scale_first=scaler.first_scale,
            scaler_scale_last=scaler.last_scale,
        )

    def close(self) -> None:
        self.capture.disarm()
        if self._listener is not None:
            self._listener.remove()
            self._listener = None


def _thin(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every two consecutive rows as one: the largest gradient norm of the two (and when),
    their mean, and the later row's forward-pass numbers."""
    out = []
    for a, b in zip(rows[::2], rows[1::2], strict=False):
        merged = dict(b)
        if "grad_max" in a and "grad_max" in b:
            later = b["grad_max"] >= a["grad_max"]
            merged["grad_max"] = np.where(later, b["grad_max"], a["grad_max"])
            merged["grad_max_step"] = np.where(later, b["grad_max_step"], a["grad_max_step"])
            merged["grad_mean"] = (a["grad_mean"] + b["grad_mean"]) / 2
        out.append(merged)
    if len(rows) % 2:
        out.append(rows[-1])
    return out


# --- the attention of a probe's forward pass ---


@dataclass
class SeenPass:
    """What one captured forward pass gave, on the device until the next probe: per attention
    site its largest logit and mean entropy (2,), and the output's log-sum-exp and largest
    absolute logit (2,)."""

    step: int
    attention: list[tuple[str, torch.Tensor]] = field(default_factory=list)
    logits: torch.Tensor | None = None


class AttentionCapture:
    """Sees the attention of one forward pass (the one a probe reads): a forward pre-hook on the
    model enters :class:`_AttentionMode`, a forward hook leaves it and reads the output's
    logits; both hooks are on the model only while a probe waits for its pass."""

    def __init__(self, tap: StabilityTap) -> None:
        self.tap = tap
        self.handles: list[Any] = []
        self.mode: _AttentionMode | None = None
        self.seen_once = False
        # this probe's pass was read: its hooks go at the next step (see _post)
        self.taken = False
        self.names = {id(m): name for name, m in tap.model.named_modules()}

    def arm(self) -> None:
        self.taken = False
        if self.handles:
            return
        model = self.tap.model
        self.handles = [
            model.register_forward_pre_hook(self._pre),
            model.register_forward_hook(self._post, always_call=True),
        ]

    def disarm(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        self.taken = False
        self._leave()

    def _wanted(self) -> bool:
        """Whether this forward pass is the probe's: the fixed probe batch's pass when there
        is one, else a training pass (gradients on) of a probed step."""
        watch = self.tap.watch
        if watch.failed is not None or self.mode is not None or self.taken:
            return False
        if watch.forward.fixed_probe:
            return bool(watch.forward.in_probe)
        # a training pass of a probed step, or the first one a watch sees (one started after
        # its loop's first step: the reference its later probes are compared with)
        return torch.is_grad_enabled() and (bool(watch.due) or not self.seen_once)

    def _pre(self, module: nn.Module, args: tuple) -> None:
        if self._wanted():
            self.seen_once = True
            self.tap.passes.append(SeenPass(self.tap.watch.step))
            self.mode = _AttentionMode(self)
            self.mode.__enter__()

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self.mode is None:
            return
        self._leave()
        self.tap.watch.guard("attention", lambda: self._logits(output))
        # not disarmed here: a forward pass that raised calls this hook from inside torch's
        # loop over the module's hooks, which removing one breaks ("OrderedDict mutated during
        # iteration" in place of the user's own error); the next step removes them
        self.taken = True

    def _leave(self) -> None:
        if self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)

    def _logits(self, output: Any) -> None:
        """The log-sum-exp and the largest absolute value of the output's logits (a tensor, or
        a Hugging Face output's ``.logits``)."""
        logits = getattr(output, "logits", output)
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
            return
        if logits.dim() < 2 or logits.shape[-1] < 2:
            return
        vocab = logits.shape[-1]
        with torch.no_grad():
            flat = local(logits).detach().reshape(-1, vocab)[: max(1, LOGIT_NUMBERS // vocab)]
            flat = flat.float()
            self.tap.passes[-1].logits = torch.stack(
                [torch.logsumexp(flat, dim=-1).mean(), flat.abs().amax()]
            )

    def site(self) -> str:
        """The module that called the attention: the nearest frame of a module's method
        on the stack (its qualified name; ``"(model)"`` for the model's own forward)."""
        frame = inspect.currentframe()
        try:
            while frame is not None:
                owner = frame.f_locals.get("self")
                if isinstance(owner, nn.Module) and id(owner) in self.names:
                    return self.names[id(owner)] or "(model)"
                frame = frame.f_back
        finally:
            del frame
        return "(model)"

    def attention(self, logits: torch.Tensor, keep: torch.Tensor | None) -> None:
        """One attention's logits ``(rows, heads, queries, keys)`` (float32, a few rows) and
        the entries it attends to (None: all): their largest value and the rows' entropy."""
        if keep is not None:
            logits = logits.masked_fill(~keep, -math.inf)
        top = logits.amax()
        p = torch.softmax(logits, dim=-1)
        entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
        entropy = torch.nan_to_num(entropy).mean()
        self.tap.passes[-1].attention.append((self.site(), torch.stack([top, entropy])))


class _AttentionMode(TorchFunctionMode):
    """On for the probe's forward pass only: passes every call through, and reads each
    attention (``scaled_dot_product_attention``; a softmax over the last axis of a 4-d tensor,
    eager attention's scores) and the dtype of the first linear layer's output."""

    def __init__(self, capture: AttentionCapture) -> None:
        super().__init__()
        self.capture = capture
        self.dtype_seen = False

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            if func is F.scaled_dot_product_attention:
                self._sdpa(args, kwargs)
            elif func in _SOFTMAXES:
                self._softmax(args, kwargs)
            elif func is F.linear and not self.dtype_seen and isinstance(out, torch.Tensor):
                self.dtype_seen = True
                self.capture.tap.compute_dtype = str(out.dtype).replace("torch.", "")
        except Exception as exc:  # never the user's pass: the capture alone stops
            self.capture.tap.watch.fail("attention", exc)
        return out

    def _sdpa(self, args: tuple, kwargs: dict) -> None:
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
        given = dict(zip(names, args, strict=False)) | kwargs
        q, k = given["query"], given["key"]
        if q.dim() != 4 or k.dim() != 4:
            return
        rows, queries = _budget(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        with torch.no_grad():
            qq = q.detach()[:rows, :, -queries:].float()
            kk = k.detach()[:rows].float()
            if kk.shape[1] != qq.shape[1]:  # grouped-query attention: keys shared by heads
                kk = kk.repeat_interleave(qq.shape[1] // kk.shape[1], dim=1)
            scale = given.get("scale") or 1.0 / math.sqrt(q.shape[-1])
            logits = qq @ kk.transpose(-2, -1) * scale  # (rows, heads, queries, keys)
            t, s = q.shape[2], k.shape[2]
            keep = None
            if given.get("is_causal"):
                keep = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()[-queries:]
            mask = given.get("attn_mask")
            if isinstance(mask, torch.Tensor):
                mask = _rows(mask, rows)[..., -queries:, :]
                if mask.dtype == torch.bool:
                    keep = mask if keep is None else keep & mask
                else:
                    logits = logits + mask.float()
            self.capture.attention(logits, keep)

    def _softmax(self, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else kwargs.get("input")
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or dim not in (-1, 3):
            return
        if not x.is_floating_point():
            return
        rows, queries = _budget(x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        with torch.no_grad():
            scores = x.detach()[:rows, :, -queries:].float()
            # masked entries are -inf or the dtype's lowest number (eager attention's fill)
            keep = scores > torch.finfo(x.dtype).min / 2
            self.capture.attention(scores, keep)


def _budget(batch: int, heads: int, queries: int, keys: int) -> tuple[int, int]:
    """Sequences and (last) queries whose logits fit in ``ATTENTION_NUMBERS``."""
    rows = max(1, min(batch, ATTENTION_ROWS, ATTENTION_NUMBERS // max(heads * queries * keys, 1)))
    return rows, max(1, min(queries, ATTENTION_NUMBERS // max(rows * heads * keys, 1)))


def _rows(mask: torch.Tensor, rows: int) -> torch.Tensor:
    """The mask's first ``rows`` batch rows when it has a batch axis (else as it is)."""
    return mask[:rows] if mask.dim() == 4 and mask.shape[0] > 1 else mask


# --- the loss scaler ---


class ScalerCount:
    """A loss scaler's updates, skipped steps and scale. Each ``update()`` ends one iteration;
    when the optimizer took no step since the previous one, the scaler skipped it (it found
    non-finite gradients). The scale tensor is read on the probes only."""

    def __init__(self, watch: Any) -> None:
        self.watch = watch
        self.scaler: Any = None
        self.updates = 0
        self.skipped = 0
        self.run = 0  # consecutive skipped steps now
        self.longest_run = 0
        # episodes of skipped steps (skips fewer than EPISODE_GAP good steps apart are one):
        # the optimizer steps taken when the current one began, its skips, and the episode of
        # the most skips
        self.clean = EPISODE_GAP
        self.episode_start = -1
        self.episode_skips = 0
        self.worst_skips = 0
        self.worst_start = -1
        self.last_step = watch.step
        self.first_scale = math.nan
        self.last_scale = math.nan
        self._first: torch.Tensor | None = None

    def on_update(self, scaler: Any) -> None:
        self.scaler = scaler
        self.updates += 1
        step = self.watch.step
        if step == self.last_step:
            self.skipped += 1
            self.run += 1
            self.longest_run = max(self.longest_run, self.run)
            if self.clean >= EPISODE_GAP:
                self.episode_start, self.episode_skips = step, 0
            self.clean = 0
            self.episode_skips += 1
            if self.episode_skips > self.worst_skips:
                self.worst_skips, self.worst_start = self.episode_skips, self.episode_start
        else:
            self.run = 0
            self.clean += 1
        self.last_step = self.watch.step
        if self._first is None:
            scale = getattr(scaler, "_scale", None)
            if isinstance(scale, torch.Tensor):  # (a copy on the device: no sync)
                self._first = scale.detach().reshape(1).float().clone()

    def scale_tensors(self) -> list[torch.Tensor]:
        """The scale now (and the first one until it was read), as 1-d device tensors."""
        scale = getattr(self.scaler, "_scale", None)
        if not isinstance(scale, torch.Tensor):
            return []
        out = [scale.detach().reshape(1).float()]
        if self._first is not None and math.isnan(self.first_scale):
            out.append(self._first)
        return out

    def read(self, values: np.ndarray) -> None:
        """The host values of :meth:`scale_tensors`."""
        self.last_scale = float(values[0])
        if len(values) > 1:
            self.first_scale = float(values[1])


class ScalerListener:
    """The handle of one :func:`listen_scaler` registration (``remove()`` undoes it)."""

    def __init__(self, fn: Callable[[Any], None], optimizer: Any) -> None:
        self.fn = fn
        self.optimizer = optimizer

    def remove(self) -> None:
        global _scaler_listeners, _original_update
        _scaler_listeners = tuple(x for x in _scaler_listeners if x is not self)
        if not _scaler_listeners and _original_update is not None:
            torch.amp.GradScaler.update = _original_update  # type: ignore[method-assign]
            _original_update = None


_scaler_listeners: tuple[ScalerListener, ...] = ()
_original_update: Callable[..., Any] | None = None


def listen_scaler(fn: Callable[[Any], None], watch: Any) -> ScalerListener:
    """Call ``fn(scaler)`` at each ``torch.amp.GradScaler.update()`` of a scaler that stepped
    ``watch.optimizer`` since its last update, until the handle's ``remove()`` (the last one
    restores ``GradScaler.update`` itself)."""
    global _scaler_listeners, _original_update
    if _original_update is None:
        original = _original_update = torch.amp.GradScaler.update

        def update(scaler: Any, *args: Any, **kwargs: Any) -> Any:
            states = getattr(scaler, "_per_optimizer_states", {})
            for listener in _scaler_listeners:
                if id(listener.optimizer) in states:
                    listener.fn(scaler)
            return original(scaler, *args, **kwargs)

        torch.amp.GradScaler.update = update  # type: ignore[method-assign]
    listener = ScalerListener(fn, watch.optimizer)
    _scaler_listeners = (*_scaler_listeners, listener)
    return listener
