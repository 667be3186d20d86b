"""Gradient bookkeeping of one watch: which parameters get gradients, whether gradients are
zeroed between steps, which parameters training changed, and the size of a probed step's update.

- at each probe, the parameters that require a gradient and have none (``.grad`` is None) are
  counted: the detached-graph evidence (and, for those the loss does not use, the unused
  parameters); the first probe that finds some traces which of the model's outputs the
  loss's graph reaches (what the end-of-run check of unused parameters compares);
- the tensors the optimizer holds without a gradient at the last probe, and at the end which
  of them the model no longer has, and which of the model's parameters no parameter group
  holds: an optimizer out of step with its model;
- one tensor hook on one small parameter, only on the step before a probe (and on steps 1 and
  2): it sees the fresh gradient, so the probe can tell accumulated (never zeroed) gradients
  from fresh ones; with it, a global step pre-hook splits the fresh gradient where another
  optimizer steps, so the probe can tell a gradient that still holds what another model's
  backward pass put there (a GAN generator's loss, run through the discriminator) from one
  zeroed since;
- each parameter's L1 and L2 norms at the start and the end tell which ones training changed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nndoctor.backends.torch.model import held, when_others_step
from nndoctor.backends.torch.sharded import combine, local, norms, shard_group
from nndoctor.backends.torch.statistics import to_host, wide
from nndoctor.doctor.schema import ParameterFacts


class GradientBook:
    """The gradient bookkeeping of one model and its optimizer (see the module docstring)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self.params = dict(model.named_parameters())
        in_opt = held(optimizer)
        self.in_optimizer = {n: id(p) in in_opt for n, p in self.params.items()}
        self.requires_grad = {n: p.requires_grad for n, p in self.params.items()}
        self.checksum0 = self.checksums()
        self.no_grad_checks: dict[str, int] = {}
        self.checks = 0
        # ids of the tensors the optimizer held without a gradient at the last check
        self.held_without_grad: set[int] | None = None
        # whether the last check found parameters without a gradient, and which of the
        # model's outputs the loss's graph reaches (traced once, where that happened)
        self.missing = False
        self.used_outputs: list[bool] | None = None
        self.stale = [0, 0]  # (stale, decided) checks
        self.leaked = [0, 0]  # (another optimizer's backward kept, decided) checks
        self._spy_param: torch.Tensor | None = None
        self._spy_old: torch.Tensor | None = None
        self._spy_fresh: torch.Tensor | None = None
        # the fresh gradient that came before another optimizer's last step, and that hook
        self._spy_before_other: torch.Tensor | None = None
        self._other_handle: Any = None
        self._spy_handle: Any = None
        self._spy_had_hooks = False
        self._pending_stale: list[torch.Tensor] = []  # (8,) norms of deferred checks
        # a probed step's weights before its update, and their norms (read by the probe)
        self.before: list[torch.Tensor] | None = None
        self.before_norms: list[float] = []
        self._update: tuple[torch.Tensor, list[float]] | None = None

    @property
    def spying(self) -> bool:
        return self._spy_handle is not None

    def check_gradients(self) -> None:
        """Count, per parameter that requires a gradient, the probes at which it had none;
        note the optimizer's tensors without one."""
        self.checks += 1
        self.missing = False
        for n, p in self.params.items():
            # None only: an all-zero gradient reached the parameter (dead units, say)
            if p.requires_grad and p.grad is None:
                self.no_grad_checks[n] = self.no_grad_checks.get(n, 0) + 1
                self.missing = True
        self.held_without_grad = {
            id(p) for g in self.optimizer.param_groups for p in g["params"] if p.grad is None
        }

    def trace_loss(self, loss_edge: tuple[Any, int] | None, out_edges: list[Any]) -> None:
        """Which of the model's outputs (``(grad_fn, output_nr)`` per output tensor) the
        loss's graph reaches, once: at the first check that found parameters without a
        gradient (the graph's nodes outlive the backward pass, their saved tensors do not).
        ``loss_edge`` is None when no loss was seen this step (then nothing is decided), its
        ``grad_fn`` None when the loss has no graph (it reaches no output)."""
        if self.used_outputs is None and self.missing and out_edges and loss_edge is not None:
            self.used_outputs = reached(loss_edge, out_edges)

    def out_of_step(self) -> tuple[dict[str, int], dict[str, int]]:
        """``(optimizer_only, not_in_optimizer)`` at the end (see
        :class:`~nndoctor.doctor.schema.LoopFacts`): the tensors the optimizer holds that the
        model no longer has and that got no gradient at the last check (or now, without a
        check), and the model's parameters that require a gradient and that no parameter
        group holds; each by name with its element count."""
        now = dict(self.model.named_parameters())
        mine = {id(p) for p in now.values()}
        then = {id(p): n for n, p in self.params.items()}
        held = [
            (f"param_groups[{g}][{k}]", p)
            for g, group in enumerate(self.optimizer.param_groups)
            for k, p in enumerate(group["params"])
        ]
        without = self.held_without_grad
        if without is None:
            without = {id(p) for _, p in held if p.grad is None}

        def name(place: str, p: torch.Tensor) -> str:
            """The model's name for it when it was its parameter, else its place."""
            shape = "x".join(str(d) for d in p.shape)
            return f"{then[id(p)]} (old, {shape})" if id(p) in then else f"{place} ({shape})"

        optimizer_only = {
            name(place, p): int(p.numel())
            for place, p in held
            if id(p) not in mine and id(p) in without
        }
        held_ids = {id(p) for _, p in held}
        not_held = {
            n: int(p.numel()) for n, p in now.items() if p.requires_grad and id(p) not in held_ids
        }
        return optimizer_only, not_held

    def arm_spy(self) -> None:
        """Before a checked step: watch the fresh gradient of one small parameter."""
        p = self._spy_param
        if p is not None and not p.requires_grad:
            p = None  # frozen since it was chosen (fine-tuning freezes the body): another one
        if p is None:
            # a parameter the optimizer holds: its zero_grad() leaves the others' gradients
            # to pile up whatever the loop does (they are never stepped)
            cands = [q for n, q in self.params.items() if q.requires_grad and self.in_optimizer[n]]
            if not cands:
                return
            p = self._spy_param = min(cands, key=lambda q: q.numel())
        self._spy_old = None if p.grad is None else p.grad.detach().clone()
        self._spy_fresh = self._spy_before_other = None

        def keep(grad: torch.Tensor) -> None:
            g = grad.detach()
            self._spy_fresh = g.clone() if self._spy_fresh is None else self._spy_fresh + g

        def other_step() -> None:
            fresh, before = self._spy_fresh, self._spy_before_other
            if fresh is not None:
                self._spy_before_other = fresh if before is None else before + fresh
                self._spy_fresh = None

        self._spy_had_hooks = getattr(p, "_backward_hooks", None) is not None
        self._spy_handle = p.register_hook(keep)
        self._other_handle = when_others_step(self.optimizer, other_step)

    def disarm_spy(self) -> None:
        if self._spy_handle is not None:
            self._spy_handle.remove()
            self._other_handle.remove()
            self._spy_handle = self._other_handle = None
            p = self._spy_param
            empty = getattr(p, "_backward_hooks", None) == {}
            if empty and not self._spy_had_hooks:
                # a tensor's first hook also installs a call into Python that stays after
                # the hook is removed and costs every backward pass microseconds: back to
                # no hooks at all, as before the spy (setting None removes that call)
                p._backward_hooks = None  # type: ignore[union-attr]

    def check_stale(self, defer: bool = False) -> None:
        """Zeroed gradients hold only the fresh gradient; never-zeroed ones also the old; and
        ones zeroed only before another optimizer's step also what came before it.

        ``defer``: a step without a probe; the check's norms stay on the device and are judged
        at the next probe (no wait for the device on that step)."""
        p, old, after, before = (
            self._spy_param, self._spy_old, self._spy_fresh, self._spy_before_other
        )  # fmt: skip
        self.disarm_spy()
        fresh = after if before is None else before if after is None else before + after
        if p is not None and p.grad is not None and fresh is not None:
            # float32 at least: the tolerance is a thousandth, far above float32's rounding
            # (this rank's shard of a sharded parameter: the check compares norms of one tensor)
            g, fresh = wide(local(p.grad).detach()), wide(local(fresh))
            old = torch.zeros_like(g) if old is None else wide(local(old))
            split = before is not None and after is not None
            after = wide(local(after)) if split else torch.zeros_like(g)
            norms = torch._foreach_norm(
                [fresh, old, g, g - fresh, g - old - fresh, fresh - after, after, g - after]
            )
            self._pending_stale.append(torch.stack(norms))
        if not defer:
            self.settle_stale()

    def settle_stale(self) -> None:
        """Judge the stale-gradient checks waiting on the device (one transfer)."""
        if not self._pending_stale:
            return
        values = to_host(self._pending_stale).reshape(-1, 8)
        self._pending_stale = []
        for row in values:
            self._judge_stale(*row[:5])
            self._judge_leak(row[2], row[3], *row[5:])

    def _judge_stale(
        self, n_fresh: float, n_old: float, n_g: float, n_zeroed: float, n_kept: float
    ) -> None:
        scale = n_fresh + 1e-30
        if n_old < 0.1 * scale:
            return  # the old gradient is too small to tell the two apart
        _tally(self.stale, n_zeroed, n_kept, 1e-3 * (n_g + scale))

    def _judge_leak(
        self, n_g: float, n_both: float, n_before: float, n_after: float, n_own: float
    ) -> None:
        """The fresh gradient came in two parts, before and after another optimizer's step:
        a gradient of the part after alone (``n_own``: the norm of the gradient less that part)
        was zeroed in between; one of both (``n_both``: less both) kept what the other model's
        backward pass put there."""
        if n_after == 0 or n_before < 0.1 * n_after:
            return  # nothing after the other step, or too little before it to tell
        _tally(self.leaked, n_own, n_both, 1e-3 * (n_g + n_after))

    def keep_before(self, weights: list[torch.Tensor], norms: list[float]) -> None:
        """A probed step's weights (this rank's shards) and their whole norms, before its
        update."""
        self.before = [local(w).detach().clone() for w in weights]
        self.before_norms = norms

    def measure_update(self, weights: list[torch.Tensor]) -> None:
        """The size of the update of the step kept by :meth:`keep_before` (it is done), left on
        the device until :meth:`take_update_ratios` (the next probe: no wait on this step)."""
        assert self.before is not None
        diff = torch._foreach_sub([local(w).detach() for w in weights], self.before)
        groups = [shard_group(w) for w in weights]
        local_norms = torch.stack(torch._foreach_norm([wide(d) for d in diff]))
        self._update = (combine(local_norms, groups), self.before_norms)

        self.before = None

    def take_update_ratios(self) -> list[float] | None:
        """``|W_after - W_before| / |W_before|`` per layer of the update :meth:`measure_update`
        measured (None when none waits)."""
        if self._update is None:
            return None
        norms, before = self._update
        self._update = None
        num = to_host([norms])
        return [a / b if b > 0 else math.nan for a, b in zip(num, before, strict=True)]

    def checksums(self) -> dict[str, tuple[float, float]]:
        """Per parameter its L1 and L2 norms (whether training changed it), in one transfer."""
        ps = [p.detach() for p in self.params.values()]
        if not ps:
            return {}
        with torch.no_grad():  # whole-tensor norms of sharded parameters
            values = to_host([norms(ps, 1), norms(ps, 2)])
        n = len(ps)
        return {name: (values[i], values[n + i]) for i, name in enumerate(self.params)}

    def without_gradient(self) -> list[str]:
        """The parameters that require a gradient and had none at every check."""
        if not self.checks:
            return []
        return [
            n
            for n, p in self.params.items()
            if p.requires_grad and self.no_grad_checks.get(n, 0) >= self.checks
        ]

    def parameter_facts(self) -> dict[str, ParameterFacts]:
        """Every parameter as the loop treated it, by name."""
        now = self.checksums()
        return {
            n: ParameterFacts(
                numel=int(p.numel()),
                requires_grad=self.requires_grad[n],
                in_optimizer=self.in_optimizer[n],
                changed=now[n] != self.checksum0[n],
                no_grad_checks=self.no_grad_checks.get(n, 0),
            )
            for n, p in self.params.items()
        }


def reached(root: tuple[Any, int] | None, targets: list[Any]) -> list[bool]:
    """Which of ``targets`` (``(grad_fn, output_nr)`` edges of autograd's graph, None for a
    tensor without a graph) the graph behind ``root`` (the loss's edge, None when the loss
    has no graph) reaches, walking ``next_functions`` until all are found."""
    want: dict[tuple[int, int], list[int]] = {}
    for k, edge in enumerate(targets):
        if edge is not None and edge[0] is not None:
            want.setdefault((id(edge[0]), edge[1]), []).append(k)
    found = [False] * len(targets)
    if root is None or root[0] is None or not want:
        return found
    left = len(want)
    hit = want.pop((id(root[0]), root[1]), None)
    for k in hit or ():
        found[k] = True
    left -= hit is not None
    seen: set[int] = set()
    stack = [root[0]]
    while stack and left:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for nxt, nr in getattr(node, "next_functions", ()):
            if nxt is None:
                continue
            hit = want.pop((id(nxt), nr), None)
            if hit is not None:
                left -= 1
                for k in hit:
                    found[k] = True
            if id(nxt) not in seen:
                stack.append(nxt)
    return found


def _tally(counts: list[int], n_zeroed: float, n_kept: float, tol: float) -> None:
    """One check into ``counts`` (kept, decided): decided when the gradient is, within
    ``tol``, what zeroing would leave (``n_zeroed``: the norm of their difference) or what
    keeping would (``n_kept``); kept in the second case."""
    if n_zeroed <= tol:
        counts[1] += 1
    elif n_kept <= tol:
        counts[0] += 1
        counts[1] += 1
