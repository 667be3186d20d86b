"""Faults of the training loop, read off the loop's facts (``probes.loop``).

A backend that sees the user's loop (PyTorch's hooks) records which parameters got gradients,
the mode of every step, the learning rate where it changed and the loss's shapes
(:class:`~nndoctor.doctor.schema.LoopFacts`); these rules need them (``needs={"loop"}``) and are
silent without them, or whenever their own evidence was not recorded (a watched loop whose
loss the hooks never saw, say). Thresholds and reasons are in ``docs/torch.md``.
"""

from __future__ import annotations

import math

import numpy as np

from nndoctor.doctor.changes import RemoveOutputActivation, SetOption
from nndoctor.doctor.finding import CAUSE, ERROR, INFO, NOTE, WARNING, Finding
from nndoctor.doctor.rule import LOOP, Rule
from nndoctor.doctor.rules.common import stuck
from nndoctor.doctor.schema import (
    NOT_REACHING_LOSS,
    NOT_READ,
    NOT_RUN,
    Context,
    LoopFacts,
    ParameterFacts,
    Probes,
)

# share of the gradient checks at which a parameter had no gradient, to call it cut off
NO_GRAD_SHARE = 1.0
# a term cut from the model at this share of the probed steps whose loss adds terms
CUT_TERM_SHARE = 0.5
# share of the decided checks that saw gradients pile up, to call them never zeroed
STALE_SHARE = 0.5
# share of the steps taken in eval() mode
EVAL_SHARE = 0.5
# a learning rate below this share of its first value has collapsed ...
LR_COLLAPSED = 1e-3
# ... when it got there within this share of the run
LR_EARLY = 0.5
# ... or fell below this share of it there while the loss was still falling (by at least
# FROZE_GAIN of itself over the stretch before: from half the steps until then)
LR_CUT = 1e-2
# ... and the loss fell by less than this share of itself afterwards
FROZE_GAIN = 0.05


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _numel(params: dict[str, ParameterFacts], names: list[str]) -> int:
    return sum(params[n].numel for n in names)


def _layer_of(name: str, probes: Probes) -> str | None:
    """The weighted layer a parameter belongs to (``fc1.weight`` -> ``fc1``)."""
    owner = name.rsplit(".", 1)[0] if "." in name else ""
    return next((t.name for t in probes.layers if t.name == owner), None)


def _all_dead(layer: str | None, probes: Probes) -> bool:
    t = next((t for t in probes.layers if t.name == layer), None)
    return t is not None and t.dead_units.size > 0 and bool(t.dead_units.all())


def detached_graph(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None or x.gradient_checks < 1:
        return []
    params = x.parameters
    learnable = {n: p for n, p in params.items() if p.requires_grad and p.in_optimizer}
    cut = sorted(
        n
        for n, p in learnable.items()
        if p.no_grad_checks >= NO_GRAD_SHARE * x.gradient_checks
        and n not in x.unused  # the loss does not use them: unused-parameters
        and not _all_dead(_layer_of(n, probes), probes)
    )
    if not cut:
        return _cut_term(x)
    n_cut = sum(params[n].numel for n in cut)
    n_all = sum(p.numel for p in learnable.values()) or 1
    return [
        DETACHED_GRAPH.finding(
            ERROR,
            f"{len(cut)} parameter tensor(s) never received a gradient: {_names(cut)}",
            evidence={
                "parameters_without_gradient": cut[:16],
                "share_of_parameters": n_cut / n_all,
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


def _cut_term(x: LoopFacts) -> list[Finding]:
    """A term of the loss that reaches no parameter this model's optimizer trains, at
    ``CUT_TERM_SHARE`` or more of the probed steps whose loss adds terms: its gradient never
    trains the model."""
    cut, checked = x.cut_terms
    if checked < 2 or cut < CUT_TERM_SHARE * checked:
        return []
    return [
        DETACHED_GRAPH.finding(
            ERROR,
            f"a term of the loss reaches none of this model's trained parameters (only "
            f"{x.cut_reached} tensor(s) no optimizer of it holds) at {cut} of {checked} "
            "probed steps",
            evidence={
                "cut_term_steps": cut,
                "steps_with_terms": checked,
                "tensors_reached": x.cut_reached,
            },
            why="the loss adds that term, but its graph was cut from this model (a "
            ".detach() on the model's output before it, as on a generator's fake passed to "
            "the discriminator in the generator's own step): its gradient reaches only "
            "another model's parameters, so it never trains this one, and only the other "
            "terms do",
            fix="remove the .detach() between this model's output and that term (detach the "
            "fake only in the discriminator's step)",
            score=cut / checked,
        )
    ]


def frozen_parameters(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None:
        return []
    params = x.parameters
    frozen = sorted(
        n
        for n, p in params.items()
        if not p.changed
        and (not p.requires_grad or not p.in_optimizer)
        and n not in x.unused  # no gradient to step with: unused-parameters
    )
    if not frozen:
        return []
    forgotten = [n for n in frozen if params[n].requires_grad and not params[n].in_optimizer]
    share = _numel(params, frozen) / max(_numel(params, list(params)), 1)
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
        FROZEN_PARAMETERS.finding(
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
                "requires_grad_false": [n for n in frozen if not params[n].requires_grad][:16],
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
    x = probes.loop
    if x is None or x.loss_shapes is None:
        return []
    out, tgt = x.loss_shapes
    both = broadcast_shape(out, tgt, ctx.loss.kind)
    if both is None:
        return []
    return [
        LOSS_SHAPE_BROADCAST.finding(
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


# output activations whose range caps the logits a cross-entropy reads
_SQUASHING = ("softmax", "sigmoid", "tanh")


def doubled_activation(out_act: str, loss_name: str, from_logits: bool, width: int) -> str | None:
    """What the loss applies a second time after the model's output activation ``out_act``
    (read off the first forward pass, so the live alerts say it then), or None. A log-softmax
    before CrossEntropyLoss is not one: the log-softmax of log-probabilities is the same
    log-probabilities, so loss and gradients are exactly those of the raw scores. A sigmoid or
    tanh before it is one: the loss's log-softmax then reads scores squashed into a unit range."""
    if loss_name == "CrossEntropyLoss" and out_act in _SQUASHING and width > 1:
        return f"{out_act} before CrossEntropyLoss (which applies log-softmax itself)"
    if from_logits and out_act == "sigmoid":
        return "sigmoid before BCEWithLogitsLoss (which applies a sigmoid itself)"
    return None


def double_activation(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None:
        return []
    out_act = x.output_activation
    width = ctx.dense_widths[-1] if ctx.dense_widths else 0
    what = doubled_activation(out_act, ctx.loss.name, ctx.loss.from_logits, width)
    if what is None and x.loss_softmaxes >= 2:
        # read off the loss's graph: a softmax the model applied, then the loss's own
        # log-softmax (F.cross_entropy inside a function, after a softmax the numbers did not
        # show: an output reshaped per token, say)
        what = "softmax before a cross-entropy (which applies log-softmax itself)"
        out_act = "softmax"
    if what is None:
        return []
    return [
        DOUBLE_ACTIVATION.finding(
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


def _evaluated_in_train_mode(x: LoopFacts) -> list[Finding]:
    """Forward passes without gradients (an evaluation) in train() mode, in at most
    ``EVAL_SHARE`` of the gaps between steps: an evaluation now and then, not a pass that is
    part of every step (a GAN's generator run without gradients for its discriminator's step,
    where BatchNorm in train mode is meant)."""
    if not x.train_mode_evals or x.adversarial or x.train_mode_eval_gaps > EVAL_SHARE * x.steps:
        return []
    return [
        EVAL_MODE_TRAINING.finding(
            WARNING,
            f"{x.train_mode_evals} forward pass(es) without gradients, an evaluation, ran with "
            "the model in train() mode",
            evidence={
                "train_mode_evals": x.train_mode_evals,
                "gaps_with_one": x.train_mode_eval_gaps,
                "steps": x.steps,
            },
            why="in train() mode BatchNorm normalises each batch with its own statistics "
            "(with a batch of one sample, over that sample alone) instead of the running "
            "statistics gathered in training, so the evaluation scores a different function "
            "than the trained one: accuracy looks far worse than the network is",
            fix="call model.eval() before evaluating (and model.train() before training again)",
            score=0.5,
        )
    ]


def stale_gradients(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None:
        return []
    for kept, checks, leaked in (
        (x.stale_checks, x.decided_stale_checks, False),
        (x.leaked_checks, x.decided_leak_checks, True),
    ):
        if checks >= 2 and kept / checks >= STALE_SHARE:
            return [_stale(kept, checks, leaked)]
    return []


def _stale(kept: int, checks: int, leaked: bool) -> Finding:
    """Gradients kept at ``kept`` of ``checks`` checks: the previous steps' (never zeroed), or
    (``leaked``) what another model's backward pass put there."""
    if leaked:
        title = (
            f"another model's loss leaks into this model's updates: at {kept} of {checks} "
            "checks its gradient still held what a backward pass put there before another "
            "optimizer stepped"
        )
        why = (
            "a loss that runs through this model (a generator's, through its discriminator) "
            "leaves gradients in its .grad; zeroed only after this model's own step, they are "
            "added to that step, which then also follows the other model's objective (a "
            "discriminator pushed to call fakes real)"
        )
        fix = (
            "zero this model's gradients before its own backward pass (or detach its input in "
            "the other model's loss); zero_grad() after step() leaves them in"
        )
    else:
        title = (
            f"gradients were never zeroed: at {kept} of {checks} checks the gradient held the "
            "previous steps' too"
        )
        why = (
            "PyTorch adds each backward's gradient to .grad: without zero_grad() every step "
            "moves along the sum of all past gradients, which grows and points wherever the "
            "early batches pointed, so the loss stops improving or blows up"
        )
        fix = "call optimizer.zero_grad() once per step, before loss.backward()"
    share = kept / checks
    counted = "leaked_checks" if leaked else "stale_checks"
    evidence = {counted: kept, "checks": checks, "share": share}
    return STALE_GRADIENTS.finding(ERROR, title, evidence=evidence, why=why, fix=fix, score=share)


def eval_mode_training(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None or not x.steps or not x.has_norm_or_dropout:
        return []
    share = x.eval_steps / x.steps
    if share < EVAL_SHARE:
        return _evaluated_in_train_mode(x)
    return [
        EVAL_MODE_TRAINING.finding(
            ERROR if stuck(probes, ctx) else WARNING,
            f"{share:.0%} of the optimizer steps ran with the model in eval() mode",
            evidence={"eval_steps": x.eval_steps, "steps": x.steps},
            why="in eval() mode BatchNorm normalises with its running statistics (never "
            "updated) instead of the batch's, and Dropout is off: the network trains a "
            "different function than the one it was built as",
            fix="call model.train() before the training loop (and model.eval() only around "
            "evaluation)",
            score=share,
        )
    ]


def lr_schedule_collapse(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None:
        return []
    # the rate where it changed, ``(step, lr)``, read at every step: the rule does not depend
    # on how sparse the probes were
    changes = np.asarray(x.lr_steps, dtype=np.float64).reshape(-1, 2)
    steps = max(x.steps, 1)
    curve = probes.step_loss[np.isfinite(probes.step_loss)]
    spe = max(probes.steps_per_epoch, 1)
    negative = np.flatnonzero(changes[:, 1] < 0)
    if negative.size:
        k = int(negative[0])
        rose = _gain(curve[int(changes[k, 0]) :], spe) < 0
        return [_negative_rate(changes, k, steps, rose or stuck(probes, ctx))]
    if not changes.size or not changes[0, 1] > 0 or steps < 3:
        return []
    lr, early = changes[:, 1], changes[:, 0] <= LR_EARLY * steps
    low = np.flatnonzero(early & (lr < LR_COLLAPSED * lr[0]))
    if not low.size:
        # a cut to 1% is no collapse when the loss had already settled (a decay at the end of
        # training), but it is one that stopped a loss still falling
        low = np.flatnonzero(early & (lr < LR_CUT * lr[0]))
        cut = int(changes[low[0], 0]) if low.size else 0
        before = curve[cut // 2 : cut]  # empty without a cut
        if before.size < 2 * spe or not _gain(before, spe) >= FROZE_GAIN:
            return []
    k = int(low[0])
    at = int(changes[k, 0])
    # the loss froze where the rate collapsed: it improved by less than FROZE_GAIN after
    after = curve[max(at, 0) :]
    if after.size < 2 * spe:
        return []
    froze = _gain(after, spe) < FROZE_GAIN
    is_stuck = stuck(probes, ctx)
    if not (froze or is_stuck):
        return []
    return [
        LR_SCHEDULE_COLLAPSE.finding(
            ERROR if is_stuck else WARNING,
            f"the learning rate fell from {lr[0]:.3g} to {lr[k]:.3g} by step {at} "
            f"({at / steps:.0%} of the run) and ended at {lr[-1]:.3g}",
            evidence={"lr_start": float(lr[0]), "lr_end": float(lr[-1]), "collapsed_at": at},
            why="the scheduler shrinks the step size so fast that the weights stop moving "
            "long before the loss is low: training freezes where it was",
            fix="use a gentler schedule (a larger step_size or gamma closer to 1), or step a "
            "per-epoch scheduler once per epoch, not once per batch",
            score=1.0,
        )
    ]


def _gain(part: np.ndarray, spe: int) -> float:
    """How far the loss fell over ``part``, as a share of where it started (windows of ``spe``
    steps at both ends: a minibatch loss is noisy)."""
    if not part.size:
        return math.nan
    start, end = float(np.mean(part[:spe])), float(np.mean(part[-spe:]))
    return (start - end) / start if start > 0 else math.nan


def _negative_rate(changes: np.ndarray, k: int, steps: int, harmed: bool) -> Finding:
    """The finding for a learning rate that turned negative at ``changes[k]``: an error when
    it ``harmed`` the run (the loss rose after, or training is stuck), a warning otherwise."""
    at, lr = int(changes[k, 0]), changes[:, 1]
    return LR_SCHEDULE_COLLAPSE.finding(
        ERROR if harmed else WARNING,
        f"the learning rate turned negative at step {at} ({at / steps:.0%} of the run) and "
        f"reached {lr.min():.3g}",
        evidence={
            "lr_start": float(lr[0]),
            "lr_end": float(lr[-1]),
            "collapsed_at": at,
            "lr_min": float(lr.min()),
        },
        why="a negative step size moves the weights up the gradient: from that step on every "
        "update raises the loss (a linear decay computed with fewer total steps than the loop "
        "runs goes past 0)",
        fix="compute the schedule's total steps from the batches actually trained (epochs x "
        "batches per epoch), or clamp its factor at 0",
        score=1.0,
    )


def unused_parameters(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None or not x.unused:
        return []
    not_run = sorted(n for n, why in x.unused.items() if why == NOT_RUN)
    unread = sorted(n for n, why in x.unused.items() if why == NOT_REACHING_LOSS)
    not_read = sorted(n for n, why in x.unused.items() if why == NOT_READ)
    params = x.parameters
    share = _numel(params, [n for n in x.unused if n in params]) / max(
        _numel(params, list(params)), 1
    )
    parts = []
    if not_run:
        parts.append(f"{len(not_run)} belong to modules that never ran in the forward pass")
    if unread:
        parts.append(f"{len(unread)} to modules whose output never reached the loss")
    if not_read:
        parts.append(
            f"{len(not_read)} are never read by their module's forward(), whose other "
            "parameters got gradients"
        )
    return [
        UNUSED_PARAMETERS.finding(
            NOTE,
            f"{len(x.unused)} parameter tensor(s) never got a gradient because the loss does "
            f"not use them: " + "; ".join(parts),
            evidence={
                "module_not_run": not_run[:16],
                "output_not_in_loss": unread[:16],
                "not_read_by_module": not_read[:16],
                "share_of_parameters": share,
            },
            why="autograd gives a gradient only to the parameters the loss depends on: a "
            "module that is not called, or whose output is left out of the loss (an "
            "auxiliary head, a branch kept for later), or a parameter its module declares "
            "and never reads (a bias never added), gets none, which is harmless when it is "
            "meant to be so",
            fix="nothing, if these modules are unused by design (leave them out of the "
            "optimizer, or set requires_grad=False, to save its memory); else call them in "
            "forward() and put their output into the loss",
            score=share,
        )
    ]


def optimizer_model_mismatch(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    if x is None or not x.optimizer_only or not x.not_in_optimizer:
        return []
    stale, missing = sorted(x.optimizer_only), sorted(x.not_in_optimizer)
    last = probes.layers[-1].name if probes.layers else None
    output_missing = any(_layer_of(n, probes) == last for n in missing)
    severity = ERROR if stuck(probes, ctx) or output_missing else WARNING
    return [
        OPTIMIZER_MODEL_MISMATCH.finding(
            severity,
            f"the optimizer and the model are out of step: it steps {len(stale)} tensor(s) the "
            f"model no longer uses ({_names(stale, 4)}) and none of {len(missing)} of the "
            f"model's parameters ({_names(missing, 4)})",
            evidence={
                "optimizer_only": stale[:16],
                "not_in_optimizer": missing[:16],
                "elements_not_stepped": sum(x.not_in_optimizer.values()),
                "output_layer_not_stepped": output_missing,
            },
            why="an optimizer holds the tensors it was given when it was built: layers "
            "replaced after that (a new head for fine-tuning), or a model built a second "
            "time, leave it stepping the old tensors, which no longer take part in the "
            "forward pass, while the new ones get gradients that nothing applies, so they "
            "stay as initialised",
            fix="build the optimizer after the model is final, from model.parameters() (or "
            "add the new layers with optimizer.add_param_group({'params': "
            "new_layer.parameters()})), and train the same model object you gave it",
            score=1.0,
        )
    ]


def _loss_mixing(op: str, shape: tuple[int, ...], probes: Probes, ctx: Context) -> Finding:
    """batch-mixing in the loss: a softmax over the batch's axis (the model's own outputs do
    not mix)."""
    return BATCH_MIXING.finding(
        ERROR if stuck(probes, ctx) else WARNING,
        f"the loss takes a {op} over dim 0 of a {tuple(shape)} tensor: over the {shape[0]} "
        "samples of the batch, so each sample's loss depends on the others",
        evidence={"operation": op, "dim": 0, "shape": list(shape), "samples": shape[0]},
        why="a softmax turns scores into probabilities over one axis; over dim 0 of a "
        "(batch, classes) tensor they are shares of the batch, not of the classes, and the "
        "loss pushes samples against each other instead of classes (softmax's implicit dim, "
        "or dim=0 where dim=1 was meant)",
        fix=f"take the {op} over the classes: {op}(output, dim=1) (or dim=-1)",
        score=1.0,
    )


def batch_mixing(probes: Probes, ctx: Context) -> list[Finding]:
    x = probes.loop
    m = x.batch_mixing if x is not None else None
    if m is None or m.changed_rows == 0:
        # the model's outputs do not mix (or could not be checked): its loss still may
        loss_side = x.softmax_over_batch if x is not None else None
        return [_loss_mixing(*loss_side, probes, ctx)] if loss_side else []
    share = m.changed_rows / max(m.rows, 1)
    return [
        BATCH_MIXING.finding(
            ERROR if stuck(probes, ctx) else WARNING,
            f"a sample's output depends on the other samples of its batch: with {m.replaced} "
            f"other rows of the probe batch replaced, {m.changed_rows} of the {m.rows} kept "
            f"rows changed their output (by up to {m.max_change:.3g} of its size, row "
            f"{m.row}), in eval mode",
            evidence={
                "kept_rows": m.rows,
                "replaced_rows": m.replaced,
                "changed_rows": m.changed_rows,
                "max_relative_change": m.max_change,
                "changed_row": m.row,
                "tolerance": m.tolerance,
            },
            why="each row of a batch is one sample, and in eval mode its output should depend "
            "on that sample alone; here it depends on the others, so some layer runs across "
            "the batch: a recurrent or attention layer that reads (batch, time, features) as "
            "(time, batch, features) (batch_first=False, the default), a view or reshape "
            "where a transpose was meant, a softmax or normalisation over dim 0; the net "
            "then learns from the wrong neighbours and its output barely follows its own input",
            fix="keep the batch on the axis each layer expects: batch_first=True on "
            "nn.LSTM/GRU/RNN/TransformerEncoderLayer/MultiheadAttention fed (batch, time, "
            "features), or x.transpose(0, 1) instead of x.view/reshape, and softmax over "
            "dim=-1",
            score=min(1.0, share),
        )
    ]


# --- the records ---

DETACHED_GRAPH = Rule(
    code="detached-graph",
    kind=CAUSE,
    tier=0,
    meaning="parameters, or a term of the loss, cut from the graph: no gradient reaches them",
    sentence=(
        "a term your loss adds never reaches this model ({cut_term_steps} of {steps_with_terms} "
        "probed steps): the graph was cut before it (a .detach()), so that term never trains it|"
        "some of your parameters never get a gradient: the loss was cut off from them (a .detach(),"
        " .item() or a tensor rebuilt from numbers), so they never learn"
    ),
    detect=detached_graph,
    fix="keep the graph: no `.detach()`, `.data`, `.item()` or NumPy in the forward",
    needs=frozenset({LOOP}),
    explains=("lr-too-low", "insufficient-capacity"),
)

FROZEN_PARAMETERS = Rule(
    code="frozen-parameters",
    kind=CAUSE,
    tier=0,
    meaning="parameters that never change (frozen or not optimised)",
    sentence=(
        "some of your parameters never change during training: they are frozen "
        "(requires_grad=False) or not given to the optimiser"
    ),
    detect=frozen_parameters,
    change=lambda f, ctx: SetOption(
        "unfreeze", True, "train every parameter (requires_grad, in the optimizer)"
    ),
    fix="build the optimizer after the model; `requires_grad=True`",
    needs=frozenset({LOOP}),
    explains=("lr-too-low", "insufficient-capacity"),
)

LOSS_SHAPE_BROADCAST = Rule(
    code="loss-shape-broadcast",
    kind=CAUSE,
    tier=0,
    meaning="prediction and target shapes broadcast to (N, N) inside the loss",
    sentence=(
        "your predictions and targets have different shapes, so the loss compares every prediction "
        "with every target (an (N, N) table) instead of each with its own"
    ),
    detect=loss_shape_broadcast,
    change=lambda f, ctx: SetOption(
        "reshape_target", True, "give the target the prediction's shape"
    ),
    fix="make the shapes equal (`squeeze`/`view`)",
    needs=frozenset({LOOP}),
    explains=("insufficient-capacity",),
)

DOUBLE_ACTIVATION = Rule(
    code="double-activation",
    kind=CAUSE,
    tier=0,
    meaning="an activation the loss applies itself, applied twice",
    sentence=(
        "you squash your scores before a loss that applies its own activation to raw scores (a "
        "sigmoid before BCEWithLogitsLoss, a softmax or sigmoid before CrossEntropyLoss)"
    ),
    detect=double_activation,
    change=lambda f, ctx: RemoveOutputActivation(
        str(f.evidence.get("output_activation", "softmax"))
    ),
    fix="remove the activation",
    needs=frozenset({LOOP}),
    explains=("insufficient-capacity",),
)

STALE_GRADIENTS = Rule(
    code="stale-gradients",
    kind=CAUSE,
    tier=0,
    meaning="gradients never zeroed, or kept from another model's loss: they pile up",
    sentence=(
        "your gradients are never set back to zero ({stale_checks} of {checks} checks), so every "
        "step adds the old gradients again and the steps grow and point the wrong way|another "
        "model's loss leaks into your model's gradients, zeroed after its step instead of before "
        "its backward pass, so each update also follows the other model's objective"
    ),
    detect=stale_gradients,
    change=lambda f, ctx: SetOption("zero_grad", True, "zero the gradients every step"),
    fix="`optimizer.zero_grad()` every step",
    needs=frozenset({LOOP}),
    explains=("lr-too-high", "exploding-gradients", "dead-units"),
)

EVAL_MODE_TRAINING = Rule(
    code="eval-mode-training",
    kind=CAUSE,
    tier=1,
    meaning="trained in eval() mode (or evaluated in train() mode)",
    sentence=(
        "your model is evaluated in train() mode ({train_mode_evals} forward passes without "
        "gradients), so batch normalisation scores another network than the one trained|your "
        "model trains in eval() mode (or is judged in train() mode), so dropout and "
        "batch normalisation do not behave as they should"
    ),
    detect=eval_mode_training,
    change=lambda f, ctx: SetOption("train_mode", True, "train in train() mode"),
    fix="`model.train()` before training",
    needs=frozenset({LOOP}),
    explains=("insufficient-capacity",),
    labels={
        "train_mode_evals": "forward passes without gradients in train() mode",
        "gaps_with_one": "gaps between optimizer steps that held one",
        "eval_steps": "optimizer steps taken in eval() mode",
    },
)

LR_SCHEDULE_COLLAPSE = Rule(
    code="lr-schedule-collapse",
    kind=CAUSE,
    tier=1,
    meaning="a scheduler drives the learning rate to about 0 (or below)",
    sentence=(
        "your learning-rate schedule turns the learning rate negative (down to {lr_min}), so from "
        "then on every step climbs the loss|your learning-rate schedule drives the learning rate "
        "to about 0, so training stops moving long before the end"
    ),
    detect=lr_schedule_collapse,
    change=lambda f, ctx: SetOption("scheduler", None, "no LR scheduler"),
    fix="a gentler schedule",
    needs=frozenset({LOOP}),
    explains=("lr-too-low", "insufficient-capacity"),
    labels={"lr_min": "lowest learning rate"},
)

UNUSED_PARAMETERS = Rule(
    code="unused-parameters",
    kind=INFO,
    tier=0,
    meaning="parameters the loss does not use (their module never ran, is left out, or never "
    "reads them)",
    sentence=(
        "some of your parameters never get a gradient because the loss does not use them: their "
        "module never runs, its output never reaches the loss, or its forward() never reads them"
    ),
    detect=unused_parameters,
    fix="nothing, if unused by design; else use them in the loss",
    needs=frozenset({LOOP}),
    labels={
        "module_not_run": "parameters of modules that never ran in the forward pass",
        "output_not_in_loss": "parameters of modules whose output never reached the loss",
        "not_read_by_module": "parameters their module's forward() never reads",
    },
)

OPTIMIZER_MODEL_MISMATCH = Rule(
    code="optimizer-model-mismatch",
    kind=CAUSE,
    tier=0,
    meaning="the optimizer steps tensors the model no longer uses, not the model's own",
    sentence=(
        "your optimizer and your model are out of step: the optimizer updates tensors the model no "
        "longer uses (layers replaced after it was built, or another copy of the model), and "
        "some of the model's own parameters are never updated"
    ),
    detect=optimizer_model_mismatch,
    change=lambda f, ctx: SetOption(
        "unfreeze", True, "train every parameter (requires_grad, in the optimizer)"
    ),
    fix="build the optimizer after the model is final",
    needs=frozenset({LOOP}),
    explains=("frozen-parameters", "lr-too-low", "insufficient-capacity"),
    labels={
        "optimizer_only": "tensors the optimiser steps that the model does not use",
        "elements_not_stepped": "numbers in the model's parameters the optimiser never steps",
        "output_layer_not_stepped": "the output layer is not stepped",
    },
)

BATCH_MIXING = Rule(
    code="batch-mixing",
    kind=CAUSE,
    tier=1,
    meaning="a sample's output depends on the other samples of its batch",
    sentence=(
        "the output your model gives for one sample changes when the other samples of its batch "
        "change, by up to {max_relative_change} of its size: some layer runs across the batch "
        "(swapped batch and time axes, a reshape where a transpose was meant)|the loss your "
        "model gets for one sample depends on the other samples of its batch: a softmax in the "
        "loss runs across the batch instead of across the classes"
    ),
    detect=batch_mixing,
    fix="keep the batch on the axis each layer expects (`batch_first=True`, `transpose`)",
    needs=frozenset({LOOP}),
    explains=("insufficient-capacity",),
    labels={
        "kept_rows": "samples kept in place and compared (kept rows)",
        "replaced_rows": "other samples of the batch replaced (replaced rows)",
        "changed_rows": "kept samples whose output changed (changed rows)",
        "max_relative_change": "largest change of a sample's output, relative to its size",
        "changed_row": "the sample where it is largest (row of the probe batch)",
        "tolerance": "change counted as rounding (tolerance)",
        "operation": "the loss's operation that runs across the batch",
        "dim": "the axis it normalises over (0: the batch)",
        "shape": "the shape of the tensor it normalises over dim 0",
        "samples": "samples of the batch it mixes",
    },
)

RULES = (
    DETACHED_GRAPH,
    OPTIMIZER_MODEL_MISMATCH,
    FROZEN_PARAMETERS,
    UNUSED_PARAMETERS,
    LOSS_SHAPE_BROADCAST,
    DOUBLE_ACTIVATION,
    STALE_GRADIENTS,
    EVAL_MODE_TRAINING,
    LR_SCHEDULE_COLLAPSE,
    BATCH_MIXING,
)
