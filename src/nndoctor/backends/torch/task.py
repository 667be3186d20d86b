"""The data's structure, read off the loss's own computation.

Whatever the user wrote around it (a loss module, ``F.cross_entropy(out.reshape(-1, V),
y.reshape(-1))``, a sum per sequence divided by the batch), a standard loss leaves a node in the
autograd graph of the scalar ``.backward()`` is called on, and that node keeps what it compared:
``NllLossBackward0`` (cross-entropy, NLL) its log-probabilities, class targets, reduction and
``ignore_index``; ``MseLossBackward0``, ``BinaryCrossEntropy*Backward0``, ``L1LossBackward0``, ...
their predictions and targets. :func:`read_loss` finds that node (at most a few nodes of sums,
means and constant factors above it) and returns the loss's view of the batch: predictions and
targets as one row per unit the loss averages over (a sample, a token, a pixel), the ignored
targets left out, and how the scalar relates to the mean loss of those units.

Reading it costs nothing on the steps between probes: the watch asks on probe steps only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from nndoctor.doctor.schema import (
    FEATURES,
    IMAGES,
    SEQUENCES,
    TOKENS,
    LossSpec,
    TaskSpec,
)

# how far above the scalar the loss node may sit (sums, means, constant factors, a division by
# the batch size: the nodes a user's aggregation adds)
MAX_DEPTH = 6
# node name -> the loss kind the bounds know
_LOSS_NODES = {
    "NllLossBackward0": "cross_entropy",
    "NllLoss2DBackward0": "cross_entropy",
    "MseLossBackward0": "mse",
    "BinaryCrossEntropyBackward0": "bce",
    "BinaryCrossEntropyWithLogitsBackward0": "bce",
    "L1LossBackward0": "l1",
    "SmoothL1LossBackward0": "smooth_l1",
    "HuberLossBackward0": "huber",
}
# the nodes between the loss node and the scalar that keep it one loss (an aggregation of it)
_AGGREGATES = {
    "NegBackward0",
    "MeanBackward0",
    "MeanBackward1",
    "SumBackward0",
    "SumBackward1",
    "DivBackward0",
    "DivBackward1",
    "MulBackward0",
    "MulBackward1",
    "ViewBackward0",
    "ReshapeAliasBackward0",
    "UnsafeViewBackward0",
    "SqueezeBackward0",
    "SqueezeBackward1",
    "UnsqueezeBackward0",
}
# the nodes that add terms: a loss and a penalty, or two loss terms (BCE + Dice)
_SUMS = {"AddBackward0", "SubBackward0"}
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}
# at most this many units are kept from one batch (a language model's batch holds thousands)
MAX_UNITS = 4096
# an NLL input whose rows' logsumexp (or, for probabilities, sum - 1) is this far from 0 is not
# what the NLL expects: log-softmax leaves it within rounding of 0
LOG_PROB_TOL = 0.1


@dataclass
class LossView:
    """A batch as its loss saw it.

    Attributes
    ----------
    kind : str
        ``"cross_entropy"``, ``"mse"``, ``"bce"``, ... (:data:`_LOSS_NODES`).
    predictions : Tensor, shape (units, outputs)
        Comparable with the targets: class probabilities for cross-entropy, probabilities for
        BCE on logits, the predictions themselves otherwise (float64, detached).
    targets : Tensor, shape (units,) for class labels, (units, outputs) otherwise
    reduction : {"mean", "sum", "none"}
    ignore_index : int or None
    units : int
        Units of the batch the loss compared (the ignored ones left out).
    scale : float
        The scalar over the mean loss of those units (NaN when it cannot be told).
    from_logits : bool
        BCE computed from logits.
    weighted : bool
        The loss node weighs classes or positives (``weight``, ``pos_weight``).
    """

    kind: str
    predictions: torch.Tensor
    targets: torch.Tensor
    reduction: str
    ignore_index: int | None
    units: int
    scale: float
    from_logits: bool = False
    weighted: bool = False
    # softmax and log-softmax nodes in a row under the loss node (views between them skipped):
    # 2 is a softmax the loss applies again (softmax into F.cross_entropy)
    softmaxes: int = 0
    # the node's own input and targets, whole (to redo the view on new weights: refresh)
    raw: tuple[torch.Tensor, torch.Tensor] = field(default=(torch.zeros(0), torch.zeros(0)))
    # the scalar adds other terms to this loss (a Dice term, a weight penalty): what it
    # compared is read, its value is not the scalar's (scale NaN)
    added: bool = False


def _parents(node: Any) -> list[Any]:
    """The nodes ``node`` passes its gradient on to (its inputs' ``grad_fn``), in order."""
    return [n for n, _ in node.next_functions if n is not None]


def _picked_log_probs(node: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(log-probabilities (M, C), labels (M,))`` when ``node`` picks each row's label out of
    a log-softmax over its classes (a gather along that axis, or an index by ``(rows,
    labels)``); None otherwise."""
    name = type(node).__name__
    if name not in ("GatherBackward0", "IndexBackward0"):
        return None
    parents = _parents(node)
    if len(parents) != 1 or type(parents[0]).__name__ != "LogSoftmaxBackward0":
        return None
    try:
        log_p = parents[0]._saved_result.detach()
        axis = int(parents[0]._saved_dim) % log_p.dim()
        if log_p.dim() != 2 or axis != 1:
            return None
        if name == "GatherBackward0":
            index = node._saved_index.detach()
            if int(node._saved_dim) % 2 != 1 or index.shape != (len(log_p), 1):
                return None
            return log_p, index.reshape(-1)
        rows, labels = node._saved_indices
        if (
            rows is None
            or labels is None
            or not torch.equal(rows.reshape(-1).cpu(), torch.arange(len(log_p)))
        ):
            return None
        return log_p, labels.detach().reshape(-1)
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None


def as_signed(index: int) -> int:
    """An integer a graph node keeps as an unsigned 64-bit one (``ignore_index=-100``, a
    ``dim=-1``), back as Python's signed int."""
    return index - 2**64 if index >= 2**63 else index


def _under_aggregates(node: Any) -> Any:
    """The first node from ``node`` down that is not an aggregating node of one input (a sum,
    a mean, a constant factor, a view: what a user's reduction adds), within ``MAX_DEPTH``;
    None past it."""
    for _ in range(MAX_DEPTH):
        if node is None or type(node).__name__ not in _AGGREGATES:
            return node
        parents = _parents(node)
        if len(parents) != 1:
            return node
        node = parents[0]
    return None


def _sum_of_terms(node: Any) -> list[Any] | None:
    """The nodes ``node`` adds, when it is a sum of several terms; else None."""
    if node is None or type(node).__name__ not in _SUMS:
        return None
    parents = _parents(node)
    return parents if len(parents) > 1 else None


def _loss_node(node: Any) -> tuple[Any, bool]:
    """``(the loss node under node, added)``, through at most ``MAX_DEPTH`` aggregating nodes:
    a loss function's, or the gather of log-probabilities of a hand-written cross-entropy
    (``-log_softmax(z).gather(1, y).mean()``, ``-log_p[range(n), y]``). Through a sum too, when
    exactly one of its branches leads to a loss node: ``added`` then says the scalar adds other
    terms to that loss (a Dice term, a weight penalty). ``(None, False)`` when there is none
    (another hand-written loss) or more than one (a GAN's real and fake terms: not one loss)."""
    node = _under_aggregates(node)
    if node is None:
        return None, False
    if type(node).__name__ in _LOSS_NODES or _picked_log_probs(node) is not None:
        return node, False
    terms = _sum_of_terms(node)
    if terms is None:
        return None, False
    found = [n for n, _ in map(_loss_node, terms) if n is not None]
    return (found[0], True) if len(found) == 1 else (None, False)


def _loop_reduction(loss: torch.Tensor, node: Any) -> str:
    """How the loop reduced a loss node of ``reduction="none"`` to the scalar ``loss``: the
    first sum or mean between them (``"mean"`` when there is none to read)."""
    step = loss.grad_fn
    # (older torch makes a new Python object per access to a node: stop at its kind too)
    while step is not None and step is not node and type(step).__name__ not in _LOSS_NODES:
        name = type(step).__name__
        if name.startswith("SumBackward"):
            return "sum"
        if name.startswith("MeanBackward"):
            return "mean"
        parents = _parents(step)
        step = parents[0] if len(parents) == 1 else None
    return "mean"


def read_loss(loss: Any) -> LossView | None:
    """The loss's view of the batch from the scalar ``loss`` (see the module docstring); None for
    a loss the doctor cannot see into."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or loss.grad_fn is None:
        return None
    node, added = _loss_node(loss.grad_fn)
    if node is None:
        return None
    # with other terms added, the scalar is not this loss: no scale relates the two
    value = math.nan if added else float(loss.detach())
    picked = _picked_log_probs(node)
    if picked is not None:  # a hand-written cross-entropy: the log-probabilities it picked
        log_p, labels = picked
        view = _view("cross_entropy", log_p, labels, "mean", None, False, value)
        view.softmaxes = _softmaxes_under(node)
        view.added = added
        return view
    name = type(node).__name__
    kind = _LOSS_NODES[name]
    try:
        s = node._saved_self.detach()
        t = node._saved_target.detach()
        reduction = _REDUCTIONS.get(int(node._saved_reduction), "mean")
    except (AttributeError, RuntimeError):  # saved tensors freed (backward already ran)
        return None
    ignore = as_signed(int(node._saved_ignore_index)) if kind == "cross_entropy" else None
    from_logits = name == "BinaryCrossEntropyWithLogitsBackward0"
    if reduction == "none":  # per-unit losses the loop reduces itself (.sum() or .mean())
        reduction = _loop_reduction(loss, node)
    view = _view(kind, s, t, reduction, ignore, from_logits, value)
    view.softmaxes = _softmaxes_under(node)
    view.added = added
    view.weighted = any(
        isinstance(getattr(node, a, None), torch.Tensor)
        for a in ("_saved_weight", "_saved_pos_weight")
    )
    return view


def _class_rows(s: torch.Tensor) -> torch.Tensor:
    """A cross-entropy node's input, ``(M, C)`` or ``(N, C, *)``, as one float64 row of class
    scores per unit (a sample, a token, a pixel): ``(units, C)``."""
    return s.double().movedim(1, -1).reshape(-1, s.shape[1])


def nll_not_log_probs(view: LossView | None) -> tuple[float, float] | None:
    """``(median logsumexp of the input's rows, largest input)`` when a cross-entropy's NLL node
    was given scores that are neither log-probabilities (each row's logsumexp is 0) nor
    probabilities (non-negative rows that sum to 1: an NLL bounded by -1, which still learns):
    raw scores, on which the NLL falls without bound as the picked score grows; None otherwise
    (no log-softmax check is needed when one sits right under the node)."""
    if view is None or view.kind != "cross_entropy" or view.softmaxes:
        return None
    s = view.raw[0]
    if s.dim() < 2 or s.shape[1] < 2:
        return None
    rows = _class_rows(s.detach())[:MAX_UNITS]
    rows = rows[torch.isfinite(rows).all(1)]
    if not len(rows):
        return None
    if rows.min() >= 0 and float((rows.sum(1) - 1).abs().max()) < LOG_PROB_TOL:
        return None  # probabilities
    lse = float(torch.quantile(torch.logsumexp(rows, 1), 0.5))
    if abs(lse) < LOG_PROB_TOL:
        return None
    return lse, float(rows.max())


# nodes that move or reshape numbers without computing anything new
_VIEWS = (
    "View",
    "ReshapeAlias",
    "UnsafeView",
    "Transpose",
    "Permute",
    "Clone",
    "Squeeze",
    "Unsqueeze",
    "Expand",
    "Slice",
    "Select",
    "ToCopy",
)


def _softmaxes_under(node: Any) -> int:
    """Softmax and log-softmax nodes in a row under ``node``'s first input, views skipped. A
    log-softmax right under another counts once: the log-softmax of log-probabilities
    changes nothing."""
    count, last = 0, None
    for _ in range(MAX_DEPTH * 3):
        parents = _parents(node)
        if not parents:
            break
        node = parents[0]
        name = type(node).__name__
        if name in ("SoftmaxBackward0", "LogSoftmaxBackward0"):
            count += not (name == last == "LogSoftmaxBackward0")
            last = name
        elif not name.startswith(_VIEWS):
            break
    return count


def _view(
    kind: str,
    s: torch.Tensor,
    t: torch.Tensor,
    reduction: str,
    ignore: int | None,
    from_logits: bool,
    value: float,
) -> LossView:
    """The view of a loss node that compared ``s`` (its input: log-probabilities for
    cross-entropy, logits for BCE on logits, predictions otherwise) with targets ``t``."""
    if kind == "cross_entropy":
        # log-probabilities (M, C) or (N, C, *): classes last, one row per unit
        logp = _class_rows(s) if s.dim() > 1 else s[None]
        labels = t.reshape(-1)
        keep = labels != ignore if ignore is not None else torch.ones_like(labels, dtype=torch.bool)
        logp, labels = logp[keep], labels[keep]
        per_unit = -logp.gather(1, labels[:, None].long()).squeeze(1)
        predictions = logp.exp()
        targets = labels
    else:
        s2, t2 = s.double(), t.double()
        if from_logits:
            s2 = torch.sigmoid(s2)
        predictions = s2.reshape(len(s2), -1) if s2.dim() > 1 else s2.reshape(-1, 1)
        targets = t2.reshape(predictions.shape) if t2.numel() == predictions.numel() else t2
        per_unit = _elementwise(kind, s2, t2)
    units = int(per_unit.numel())
    mean = float(per_unit.mean()) if units else math.nan
    scale = value / mean if units and math.isfinite(mean) and mean != 0 else math.nan
    return LossView(
        kind=kind,
        predictions=predictions[:MAX_UNITS],
        targets=targets[:MAX_UNITS],
        reduction=reduction,
        ignore_index=ignore,
        units=units,
        scale=scale,
        from_logits=from_logits,
        raw=(s, t),
    )


def refresh(view: LossView, old_out: Any, new_out: Any) -> LossView | None:
    """The view the same loss would give for the same batch on the model's ``new_out``, when
    the loss's input is the model's output ``old_out`` reshaped (and, for cross-entropy, put
    through ``log_softmax``, which leaves log-probabilities as they are); None otherwise."""
    s, t = view.raw
    if not isinstance(old_out, torch.Tensor) or not isinstance(new_out, torch.Tensor):
        return None
    if old_out.numel() != s.numel() or new_out.numel() != s.numel():
        return None

    def loss_input(out: torch.Tensor) -> torch.Tensor:
        z = out.detach().double().reshape(s.shape)
        return torch.log_softmax(z, dim=1) if view.kind == "cross_entropy" else z

    if not torch.allclose(loss_input(old_out), s.double(), rtol=1e-3, atol=1e-4):
        return None  # the loss's input is not the output reshaped: no way to redo it
    return _view(
        view.kind, loss_input(new_out), t, view.reduction, view.ignore_index, view.from_logits,
        math.nan,
    )  # fmt: skip


def _elementwise(kind: str, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The loss of each element, for the scale (the mean of these is the loss with
    ``reduction="mean"``)."""
    if kind == "mse":
        return ((s - t) ** 2).reshape(-1)
    if kind == "bce":
        p = s.clamp(1e-12, 1 - 1e-12)
        return -(t * p.log() + (1 - t) * (1 - p).log()).reshape(-1)
    if kind == "l1":
        return (s - t).abs().reshape(-1)
    return torch.full((max(s.numel(), 1),), math.nan, dtype=torch.float64)


def input_kind(x: Any) -> str:
    """What one input is, from a batch: integer ids are tokens; 4-D floats images, 3-D
    sequences, anything else rows of features."""
    if isinstance(x, torch.Tensor | np.ndarray):
        dtype = x.dtype
        integer = (
            not x.is_floating_point() and not x.is_complex()
            if isinstance(x, torch.Tensor)
            else np.issubdtype(dtype, np.integer)
        )
        if integer:
            return TOKENS
        if x.ndim == 4:
            return IMAGES
        if x.ndim == 3:
            return SEQUENCES
    return FEATURES


def task_spec(view: LossView | None, inputs: str, samples: int, outputs: int) -> TaskSpec:
    """The :class:`TaskSpec` of a batch of ``samples`` samples whose model gave ``outputs``
    numbers and whose loss gave ``view``: its units are elements of the samples (tokens,
    pixels) when the loss compared another number of them than samples, no more than the model
    output (a prediction of shape ``(N, 1)`` broadcast against targets ``(N,)`` shows ``N * N``
    units: a fault of its own, not a structure)."""
    if view is None:
        return TaskSpec(inputs=inputs, known=False)
    # one target per sample: a class label each (some of them ignored, perhaps), or a row of
    # values (a regression's outputs: a map per pixel or per step has more axes); a broadcast
    # of (N, 1) against (N,) is a fault of its own, not a structure
    target = view.raw[1]
    per_sample = target.numel() == samples if view.kind == "cross_entropy" else target.dim() <= 2
    if per_sample or view.units > outputs:
        return TaskSpec(inputs=inputs, ignore_index=view.ignore_index, scale=view.scale)
    unit = {TOKENS: "token", SEQUENCES: "step", IMAGES: "pixel"}.get(inputs, "element")
    return TaskSpec(
        inputs=inputs,
        unit=unit,
        units_per_sample=view.units / max(samples, 1),
        ignore_index=view.ignore_index,
        scale=view.scale,
    )


def loss_spec_of(view: LossView | None, spec: LossSpec) -> LossSpec:
    """``spec`` with the kind and reduction the graph shows, for a loss the module's name did
    not tell (a function around ``F.cross_entropy``)."""
    if spec.reduction not in ("mean", "sum"):
        # a loss module of reduction="none" that the loop reduces itself: the graph says how;
        # without the graph, a loss the doctor does not know (no bounds rather than a guess)
        if view is None:
            return replace(spec, kind=spec.name or "callable", reduction="mean")
        spec = replace(spec, reduction=view.reduction)
    if view is None or spec.known:
        return replace(spec, weighted=True) if view is not None and view.weighted else spec
    return LossSpec(
        view.kind, view.reduction, view.from_logits, spec.name, kind_read=True,
        weighted=view.weighted, added_terms=view.added,
    )  # fmt: skip


def view_arrays(view: LossView) -> tuple[np.ndarray, np.ndarray]:
    """Predictions ``(units, outputs)`` and targets in the same space (one-hot for class
    labels), as float64 NumPy arrays: what the rules compare."""
    P = view.predictions.to("cpu", torch.float64).numpy()
    if view.kind == "cross_entropy":
        labels = view.targets.to("cpu").long().numpy()
        T = np.zeros_like(P)
        inside = (labels >= 0) & (labels < P.shape[1])
        T[np.flatnonzero(inside), labels[inside]] = 1.0
        return P, T
    return P, view.targets.to("cpu", torch.float64).numpy().reshape(len(P), -1)


def reached_parameters(loss: Any, limit: int = 20_000) -> set[int]:
    """The ids of the tensors a backward of ``loss`` would reach (its graph's leaves that
    accumulate a gradient), at most ``limit`` nodes visited."""
    return reached_under(getattr(loss, "grad_fn", None), limit)


# at most this many terms of a loss are told apart
MAX_TERMS = 16


def loss_terms(loss: Any) -> list[Any]:
    """The graph nodes of the terms the scalar ``loss`` adds (the branches of the first sum
    under it, through aggregating nodes; nested sums flattened, at most ``MAX_TERMS``): ``[]``
    when it is one term."""
    stack = _sum_of_terms(_under_aggregates(getattr(loss, "grad_fn", None)))
    terms: list[Any] = []
    while stack:
        node = stack.pop()
        inner = _sum_of_terms(node) if len(terms) < MAX_TERMS else None
        if inner is None:
            terms.append(node)
        else:
            stack.extend(inner)
    return terms


def reached_under(node: Any, limit: int = 20_000) -> set[int]:
    """The ids of the leaves that accumulate a gradient under the graph node ``node``."""
    out: set[int] = set()
    # the nodes seen are kept alive: older torch (2.6) makes a new Python object per access
    # to a node, and a freed one's id, reused by the next, would read as seen
    stack, seen = [node], {}
    while stack and len(seen) < limit:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        variable = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf
        if isinstance(variable, torch.Tensor):
            out.add(id(variable))
        stack.extend(n for n, _ in node.next_functions)
    return out
