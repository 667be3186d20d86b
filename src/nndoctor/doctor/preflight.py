"""Pre-flight checks, seconds before the full run: the sanity checks practitioners use.

- the loss at initialisation against what a sensible init gives (about the constant baseline;
  ``ln c`` for ``c`` balanced classes), on a sample of ``INIT_ROWS`` rows of large data;
- the same net trained on all-zero inputs for a tenth of the budget (of the steps: a run of
  fewer than 5 epochs gets one epoch over a sample of the rows): if it does as well, the net is
  not using its inputs;
- overfitting a tiny batch with Adam: any working model memorises a handful of samples, so a
  failure points at the model or its gradients, not at the data or the optimiser settings.
  It stops once the rows are memorised (``TINY_MEMORISED`` of their constant baseline).

Each check is a :class:`~nndoctor.doctor.schema.Run` changed and trained by its backend.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from nndoctor import bounds
from nndoctor.doctor.changes import SwitchOptimizer
from nndoctor.doctor.schema import Context, Run

# the loss at initialisation is measured on at most this many rows (a seeded sample beyond;
# every catalog and held-out case has fewer), its error bar from this many equal parts
INIT_ROWS = 8192
INIT_CHUNKS = 16
# share of the steps the zeroed-input run gets
ZEROED_FRACTION = 0.1
# rows of the tiny batch (at most), and the Adam steps and learning rate to fit it
TINY_ROWS = 8
TINY_STEPS = 1000
TINY_LR = 0.03
# the tiny-batch fit stops once its loss is at most this share of the rows' constant baseline:
# memorised, a tenth of what cannot-overfit asks (rules/curve.py OVERFIT_RATIO); most healthy
# nets get there in tens of steps, and the rest of the 1000 cost more than a small run
TINY_MEMORISED = 0.01


def init_loss(run: Run, ctx: Context) -> dict[str, Any]:
    """The loss at initialisation, on all rows or, beyond ``INIT_ROWS``, on a seeded sample
    of them (``rows``), with the standard error of its mean over ``INIT_CHUNKS`` equal parts
    of the sample (``stderr``)."""
    backend = run.backend
    X, Y, out = run.X, run.Y, {}
    if len(X) > INIT_ROWS:
        pick = np.sort(np.random.default_rng(run.seed).permutation(len(X))[:INIT_ROWS])
        X, Y = X[pick], Y[pick]
    with np.errstate(all="ignore"):
        P = backend.predict(run.model, X)
        value = backend.loss_value(run, P, Y)
        if len(X) < len(run.X):
            parts = [backend.loss_value(run, P[c], Y[c])
                     for c in np.array_split(np.arange(len(X)), INIT_CHUNKS)]  # fmt: skip
            out = {"rows": len(X), "stderr": float(np.std(parts, ddof=1) / np.sqrt(INIT_CHUNKS))}
    out = {"loss": value, **out}
    if ctx.loss.kind == "cross_entropy":
        out["ln_classes"] = math.log(max(ctx.dense_widths[-1] if ctx.dense_widths else 1, 1))
    return out


def zeroed_inputs(run: Run) -> dict[str, Any]:
    """Train a copy on all-zero inputs (same targets) for a tenth of the run's steps.

    A tenth of the epochs; a run of fewer than 5 epochs (where that rounds to none) gets one
    epoch over a seeded sample of ``epochs / 10`` of its rows (``rows`` in the result): with
    every input zero the net can learn only a constant, which a sample shows as well as all
    rows, and one whole epoch would be up to all of a one-epoch run's cost.
    """
    n_epochs = min(run.epochs, round(run.epochs * ZEROED_FRACTION))
    X, Y, out = run.X, run.Y, {}
    if n_epochs < 1:
        n_epochs = 1
        rows = max(1, math.ceil(len(X) * run.epochs * ZEROED_FRACTION))
        pick = np.sort(np.random.default_rng(run.seed).permutation(len(X))[:rows])
        X, Y, out = X[pick], Y[pick], {"rows": rows}
    # no (n, d) copy; the inputs keep their dtype (token ids stay integers)
    zeros = np.broadcast_to(np.zeros((1, *X.shape[1:]), dtype=X.dtype), X.shape)
    fit = run.backend.fit(replace(run, X=zeros, Y=Y), n_epochs, run.seed)
    return {"epochs": len(fit.epoch_loss), "loss": fit.final_loss, **out}


def tiny_batch(run: Run, ctx: Context) -> dict[str, Any]:
    """Fit a copy to a few rows with Adam; report the loss against their constant baseline.

    The rows are as many as the narrowest layer can separate (at most ``TINY_ROWS``): a net
    with a 3-unit bottleneck cannot be asked to memorise 8 generic points.
    """
    # weighted layers of any kind (an embedding or a recurrent layer has units too)
    widths = [s.out_features for s in ctx.layers if s.out_features is not None]
    dense = [s for s in ctx.layers if s.out_features is not None]
    if len(widths) > 1:
        narrowest = min(widths[:-1])
    else:
        narrowest = dense[0].in_features if dense and dense[0].in_features else TINY_ROWS
    rows = int(min(TINY_ROWS, narrowest + 1, len(run.X)))
    pick = np.sort(np.random.default_rng(run.seed).permutation(len(run.X))[:rows])
    Xt, Yt = run.X[pick], run.Y[pick]
    loss = ctx.loss.numpy_loss()
    try:
        base = bounds.constant_baseline(Yt, loss).loss if loss is not None else math.nan
    except ValueError:
        base = math.nan
    adam = run.backend.apply(run, SwitchOptimizer("adam", TINY_LR))
    small = replace(adam, X=Xt, Y=Yt, batch_size=rows, shuffle=False)
    stop = TINY_MEMORISED * base if math.isfinite(base) and base > 0 else None
    fit = run.backend.fit(small, TINY_STEPS, 0, stop_below=stop)
    return {"rows": rows, "steps": len(fit.epoch_loss), "loss": fit.final_loss, "baseline": base}


def run_all(run: Run, ctx: Context, tiny: bool = True) -> dict[str, Any]:
    """Every pre-flight check of ``run``; ``init.baseline`` is the constant baseline.

    ``tiny=False`` leaves out the tiny-batch fit (a fixed ``TINY_STEPS`` Adam steps, more than
    a small run costs): ``diagnose`` adds it after the recorded run when that run did not
    clearly learn (:mod:`nndoctor.doctor.lazy`).
    """
    out = {"init": init_loss(run, ctx), "zeroed_inputs": zeroed_inputs(run)}
    if tiny:
        out["tiny_batch"] = tiny_batch(run, ctx)
    out["init"]["baseline"] = ctx.bounds.get("baseline", math.nan)
    return out
