"""Pre-flight checks, seconds before the full run: the sanity checks practitioners use.

- the loss at initialisation against what a sensible init gives (about the constant baseline;
  ``ln c`` for ``c`` balanced classes);
- the same net trained on all-zero inputs for a tenth of the budget: if it does as well, the
  net is not using its inputs;
- overfitting a tiny batch with Adam: any working model memorises a handful of samples, so a
  failure points at the model or its gradients, not at the data or the optimiser settings.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nndoctor import bounds
from nndoctor.nn import Adam, CrossEntropy, Dense, Loss, Optimizer, Sequential, train

# share of the epochs the zeroed-input run gets
ZEROED_FRACTION = 0.1
# rows of the tiny batch (at most), and the Adam steps and learning rate to fit it
TINY_ROWS = 8
TINY_STEPS = 1000
TINY_LR = 0.03
# rows per forward pass when measuring the loss at initialisation
INIT_CHUNK_ROWS = 8192


def init_loss(
    model: Sequential, X: np.ndarray, Y: np.ndarray, loss: Loss, batch_size: int
) -> dict[str, Any]:
    # chunks of whole batches, on a copy: the activations of all of X are never held at once
    work = model.copy()
    chunk = batch_size * max(1, INIT_CHUNK_ROWS // batch_size)
    values = []
    with np.errstate(all="ignore"):
        for start in range(0, len(X), chunk):
            P = work.forward(X[start : start + chunk])
            Yc = Y[start : start + chunk]
            values += [
                loss(P[lo : lo + batch_size], Yc[lo : lo + batch_size])
                for lo in range(0, len(P), batch_size)
            ]
    value = float(np.mean(values))
    out: dict[str, Any] = {"loss": value}
    if isinstance(loss, CrossEntropy):
        out["ln_classes"] = math.log(max(model.out_features or 1, 1))
    return out


def zeroed_inputs(
    model: Sequential,
    X: np.ndarray,
    Y: np.ndarray,
    loss: Loss,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> dict[str, Any]:
    """Train a copy on all-zero inputs (same targets) for a tenth of the epochs."""
    n_epochs = max(1, min(epochs, round(epochs * ZEROED_FRACTION)))
    history = train(
        model.copy(),
        np.broadcast_to(np.zeros((1, X.shape[1])), X.shape),  # no (n, d) copy
        Y,
        loss=loss,
        optimizer=optimizer.fresh(),
        epochs=n_epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        progress=False,
    )
    return {"epochs": len(history.loss), "loss": history.final_loss}


def tiny_batch(
    model: Sequential, X: np.ndarray, Y: np.ndarray, loss: Loss, seed: int
) -> dict[str, Any]:
    """Fit a copy to a few rows with Adam; report the loss against their constant baseline.

    The rows are as many as the narrowest layer can separate (at most ``TINY_ROWS``): a net
    with a 3-unit bottleneck cannot be asked to memorise 8 generic points.
    """
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    narrowest = min(d.out_features for d in dense[:-1]) if len(dense) > 1 else dense[0].in_features
    rows = int(min(TINY_ROWS, narrowest + 1, len(X)))
    pick = np.sort(np.random.default_rng(seed).permutation(len(X))[:rows])
    Xt, Yt = X[pick], Y[pick]
    history = train(
        model.copy(),
        Xt,
        Yt,
        loss=loss,
        optimizer=Adam(lr=TINY_LR),
        epochs=TINY_STEPS,
        progress=False,
    )
    try:
        base = bounds.constant_baseline(Yt, loss).loss
    except ValueError:
        base = math.nan
    return {"rows": rows, "steps": len(history.loss), "loss": history.final_loss, "baseline": base}
