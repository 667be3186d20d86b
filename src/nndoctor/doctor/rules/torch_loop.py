"""Faults of a PyTorch training loop, read off what the hooks saw (``probes.extra``).

Each rule is silent for other backends and whenever its evidence was not recorded (a
watched loop whose loss the hooks never saw, say). Thresholds and reasons are in
``docs/torch.md``.
"""

from __future__ import annotations

import math

import numpy as np

from nndoctor.doctor.codes import ERROR, NOTE, WARNING
from nndoctor.doctor.report import Finding
from nndoctor.doctor.rules._util import stuck
from nndoctor.doctor.schema import Context, Probes

# share of the gradient checks at which a parameter had no gradient, to call it cut off
NO_GRAD_SHARE = 1.0
# share of the decided checks that saw gradients pile up, to call them never zeroed
STALE_SHARE = 0.5
# share of the steps taken in eval() mode
EVAL_SHARE = 0.5
# a learning rate below this share of its first value has collapsed ...
LR_COLLAPSED = 1e-3
# ... when it got there within this share of the run
LR_EARLY = 0.5
# ... and the loss fell by less than this share of itself afterwards
FROZE_GAIN = 0.05


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _extra(probes: Probes, ctx: Context) -> dict | None:
    return probes.extra if ctx.backend == "torch" and probes.extra else None


def _layer_of(name: str, probes: Probes) -> str | None:
    """The weighted layer a parameter belongs to (``fc1.weight`` -> ``fc1``)."""
    owner = name.rsplit(".", 1)[0] if "." in name else ""
    return next((t.name for t in probes.layers if t.name == owner), None)


def _all_dead(layer: str | None, probes: Probes) -> bool:
    t = next((t for t in probes.layers if t.name == layer), None)
    return t is not None and t.dead_units.size > 0 and bool(t.dead_units.all())


def detached_graph(probes: Probes, ctx: Context) -> list[Finding]:
    x = _extra(probes, ctx)
    if x is None:
        return []
    params = x["parameters"]
    learnable = {n: p for n, p in params.items() if p["requires_grad"] and p["in_optimizer"]}
    error = x.get("backward_error")
    if error:
        cut = sorted(learnable)
    else:
        checks = x["gradient_checks"]
        if checks < 1:
            return []
        cut = sorted(
            n
            for n, p in learnable.items()
            if p["no_grad_checks"] >= NO_GRAD_SHARE * checks
            and not _all_dead(_layer_of(n, probes), probes)
        )
        if not cut or len(cut) == len(learnable):
            # every parameter without a gradient and no error: nothing trains, but a loop
            # that steps without backward is another fault; say nothing rather than guess
            return [] if not cut else _detached(cut, learnable, params, None)
    return _detached(cut, learnable, params, error)


def _detached(cut: list[str], learnable: dict, params: dict, error: str | None) -> list[Finding]:
    n_cut = sum(params[n]["numel"] for n in cut)
    n_all = sum(p["numel"] for p in learnable.values()) or 1
    return [
        Finding(
            "detached-graph",
            ERROR,
            f"{len(cut)} parameter tensor(s) never received a gradient: {_names(cut)}"
            if not error
            else "the loss is not connected to any parameter: backward() failed",
            evidence={
                "parameters_without_gradient": cut[:16],
                "share_of_parameters": n_cut / n_all,
                "backward_error": error or "",
            },
            why="the loss was computed from a tensor cut from the graph (.detach(), .data, "
            ".item(), torch.tensor(...) of a value, a NumPy round-trip in forward): "
            "autograd cannot reach the parameters before the cut, so they never change "
            "and the output before the cut stays as initialised",
            fix="keep the forward pass in torch operations on the tensors themselves: no "
            ".detach(), .data, .item(), .numpy() or torch.tensor(...) between the "
            "parameters and the loss",
            score=n_cut / n_all,
        )
    ]


def frozen_parameters(probes: Probes, ctx: Context) -> list[Finding]:
    x = _extra(probes, ctx)
    if x is None:
        return []
    params = x["parameters"]
    frozen = sorted(
        n
        for n, p in params.items()
        if not p["changed"] and (not p["requires_grad"] or not p["in_optimizer"])
    )
    if not frozen:
        return []
    forgotten = [n for n in frozen if params[n]["requires_grad"] and not params[n]["in_optimizer"]]
    share = sum(params[n]["numel"] for n in frozen) / max(
        sum(p["numel"] for p in params.values()), 1
    )
    last = probes.layers[-1].name if probes.layers else None
    output_frozen = any(_layer_of(n, probes) == last for n in frozen)
    is_stuck = stuck(probes, ctx)
    if is_stuck and (forgotten or output_frozen or share >= 0.5):
        severity = ERROR
    elif forgotten:
        severity = WARNING
    else:
        severity = NOTE  # a frozen backbone is a choice, not a fault
    return [
        Finding(
            "frozen-parameters",
            severity,
            f"{len(frozen)} parameter tensor(s) never changed ({share:.0%} of the weights): "
            f"{_names(frozen)}"
            + (
                f"; {len(forgotten)} require a gradient but are not in the optimizer"
                if forgotten
                else ""
            ),
            evidence={
                "frozen": frozen[:16],
                "not_in_optimizer": forgotten[:16],
                "requires_grad_false": [n for n in frozen if not params[n]["requires_grad"]][:16],
                "share_of_parameters": share,
                "output_layer_frozen": output_frozen,
            },
            why="a parameter with requires_grad=False, or one missing from the optimizer's "
            "parameter groups (an optimizer built before layers were added or replaced), "
            "keeps its initial value: whatever it computes stays as initialised",
            fix="build the optimizer after the model is final, from model.parameters(); set "
            "requires_grad=True on the layers that must learn",
            score=share,
        )
    ]


def broadcast_shape(out: tuple, tgt: tuple, loss_kind: str) -> tuple | None:
    """The shape prediction ``out`` and target ``tgt`` broadcast to inside an elementwise
    loss, when it is larger than both (``(N, 1)`` against ``(N,)``); None otherwise. Known
    from the first loss call on (the live alerts say it then)."""
    if loss_kind == "cross_entropy" or out == tgt:
        return None
    try:
        both = np.broadcast_shapes(out, tgt)
    except ValueError:
        return None
    n_out, n_tgt, n_both = (math.prod(s) for s in (out, tgt, both))
    return both if n_both > max(n_out, n_tgt) else None


def loss_shape_broadcast(probes: Probes, ctx: Context) -> list[Finding]:
    x = _extra(probes, ctx)
    if x is None or not x.get("loss_shapes"):
        return []
    out, tgt = (tuple(s) for s in x["loss_shapes"])
    both = broadcast_shape(out, tgt, ctx.loss.kind)
    if both is None:
        return []
    return [
        Finding(
            "loss-shape-broadcast",
            ERROR,
            f"the loss compares a prediction of shape {out} with a target of shape {tgt}: "
            f"both are broadcast to {both}",
            evidence={
                "prediction_shape": list(out),
                "target_shape": list(tgt),
                "broadcast_shape": list(both),
            },
            why="every prediction is compared with every target, so the loss is smallest "
            "when each prediction is the mean of all targets: the output converges to a "
            "constant whatever the input",
            fix="give prediction and target the same shape: output.squeeze(-1) or "
            "target.view(-1, 1)",
            score=1.0,
        )
    ]


def doubled_activation(out_act: str, loss_name: str, from_logits: bool, width: int) -> str | None:
    """What the loss applies a second time after the model's output activation ``out_act``
    (read off the first forward pass, so the live alerts say it then), or None."""
    if loss_name == "CrossEntropyLoss" and out_act in ("softmax", "log_softmax") and width > 1:
        return f"{out_act} before CrossEntropyLoss (which applies log-softmax itself)"
    if from_logits and out_act == "sigmoid":
        return "sigmoid before BCEWithLogitsLoss (which applies a sigmoid itself)"
    return None


def double_activation(probes: Probes, ctx: Context) -> list[Finding]:
    x = _extra(probes, ctx)
    if x is None:
        return []
    out_act = x.get("output_activation", "unknown")
    width = ctx.dense_widths[-1] if ctx.dense_widths else 0
    what = doubled_activation(out_act, ctx.loss.name, ctx.loss.from_logits, width)
    if what is None:
        return []
    return [
        Finding(
            "double-activation",
            ERROR if stuck(probes, ctx) else WARNING,
            f"the model's output already went through {what}",
            evidence={"output_activation": out_act, "loss": ctx.loss.name, "outputs": width},
            why="the loss reads its input as logits: squashed values in a narrow range as "
            "logits cap how confident the prediction can get, so the gradient fades long "
            "before the loss is small and the outputs stay near uniform",
            fix=f"remove the final {out_act} from the model: the loss takes raw logits "
            "(apply it only when you need probabilities, after training)",
            score=1.0,
        )
    ]


def stale_gradients(probes: Probes, ctx: Context) -> list[Finding]:
    x = _extra(probes, ctx)
    if x is None or x.get("decided_stale_checks", 0) < 2:
        return []
    share = x["stale_checks"] / x["decided_stale_checks"]
    if share < STALE_SHARE:
        return []
    return [
        Finding(
            "stale-gradients",
            ERROR,
            f"gradients were never zeroed: at {x['stale_checks']} of "
            f"{x['decided_stale_checks']} checks the gradient held the previous steps' too",
            evidence={
                "stale_checks": x["stale_checks"],
                "checks": x["decided_stale_checks"],
                "share": share,
            },
            why="PyTorch adds each backward's gradient to .grad: without zero_grad() every "
            "step moves along the sum of all past gradients, which grows and points "
            "wherever the early batches pointed, so the loss stops improving or blows up",
            fix="call optimizer.zero_grad() once per step, before loss.backward()",
            score=share,
        )
    ]


def eval_mode_training(probes: Probes, ctx: Context) -> list[Finding]:
    x = _extra(probes, ctx)
    if x is None or not x.get("steps") or not x.get("has_norm_or_dropout"):
        return []
    share = x["eval_steps"] / x["steps"]
    if share < EVAL_SHARE:
        return []
    return [
        Finding(
            "eval-mode-training",
            ERROR if stuck(probes, ctx) else WARNING,
            f"{share:.0%} of the optimizer steps ran with the model in eval() mode",
            evidence={"eval_steps": x["eval_steps"], "steps": x["steps"]},
            why="in eval() mode BatchNorm normalises with its running statistics (never "
            "updated) instead of the batch's, and Dropout is off: the network trains a "
            "different function than the one it was built as",
            fix="call model.train() before the training loop (and model.eval() only around "
            "evaluation)",
            score=share,
        )
    ]


def lr_schedule_collapse(probes: Probes, ctx: Context) -> list[Finding]:
    x = _extra(probes, ctx)
    # the rate where it changed, ``(step, lr)``, read at every step: the rule does not depend
    # on how sparse the probes were
    changes = np.asarray(x.get("lr_steps", []) if x else [], dtype=np.float64).reshape(-1, 2)
    steps = max(int(x.get("steps", 0)) if x else 0, 1)
    if not changes.size or not changes[0, 1] > 0 or steps < 3:
        return []
    lr = changes[:, 1]
    low = np.flatnonzero(lr < LR_COLLAPSED * lr[0])
    if not low.size or changes[low[0], 0] > LR_EARLY * steps:
        return []
    at = int(changes[low[0], 0])
    # the loss froze where the rate collapsed: it improved by less than FROZE_GAIN after
    curve = probes.step_loss[np.isfinite(probes.step_loss)]
    after = curve[max(at, 0) :]
    spe = max(probes.steps_per_epoch, 1)
    if after.size < 2 * spe:
        return []
    start, end = float(np.mean(after[:spe])), float(np.mean(after[-spe:]))
    froze = start > 0 and (start - end) / start < FROZE_GAIN
    is_stuck = stuck(probes, ctx)
    if not (froze or is_stuck):
        return []
    return [
        Finding(
            "lr-schedule-collapse",
            ERROR if is_stuck else WARNING,
            f"the learning rate fell from {lr[0]:.3g} to {lr[low[0]]:.3g} by step {at} "
            f"({at / steps:.0%} of the run) and ended at {lr[-1]:.3g}",
            evidence={"lr_start": float(lr[0]), "lr_end": float(lr[-1]), "collapsed_at": at},
            why="the scheduler shrinks the step size so fast that the weights stop moving "
            "long before the loss is low: training freezes where it was",
            fix="use a gentler schedule (a larger step_size or gamma closer to 1), or step a "
            "per-epoch scheduler once per epoch, not once per batch",
            score=1.0,
        )
    ]


RULES = (
    detached_graph,
    frozen_parameters,
    loss_shape_broadcast,
    double_activation,
    stale_gradients,
    eval_mode_training,
    lr_schedule_collapse,
)
