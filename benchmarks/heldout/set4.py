"""Set 4: the fresh batch, 8 cases at seeds 0, 1, 2.

Written after round 2's fixes as variants of the new rules, run once and never tuned on.
"""

from __future__ import annotations

import numpy as np

from heldout._common import CaseSet, Setup, column, friedman, mlp, spiral, zscore
from nndoctor.nn import ReLU, Sigmoid, Softmax, Tanh
from nndoctor.nn.init import normal
from nndoctor.nn.losses import BCE, MSE, CrossEntropy
from nndoctor.nn.optim import SGD, Adam

SET = CaseSet("set 4", "never tuned on")


@SET.case(
    "f-timeseries-unshuffled-bs4",
    "unshuffled-data",
    "regression on a drifting series, rows in time order, bs 4, no shuffle",
)
def f_timeseries_unshuffled_bs4(seed: int) -> Setup:
    rng = np.random.default_rng(900 + seed)
    t = np.linspace(0, 1, 600)
    X = np.column_stack([np.sin(20 * t), rng.normal(size=600), rng.normal(size=600)])
    y = 3 * t + 0.5 * X[:, 0] + 0.1 * rng.normal(size=600)
    return Setup(
        mlp([3, 16, 1], Tanh, rng),
        X,
        column(zscore(y)),
        MSE(),
        SGD(lr=0.1),
        epochs=10,
        batch_size=4,
        shuffle=False,
    )


@SET.case(
    "f-relu-deep-small-init", "vanishing-gradients", "5 ReLU layers of 64, N(0, 0.01) weights, SGD"
)
def f_relu_deep_small_init(seed: int) -> Setup:
    rng = np.random.default_rng(910 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 64, 64, 64, 64, 64, 1], ReLU, rng, init=normal(0.01)),
        zscore(X),
        column(zscore(y)),
        MSE(),
        SGD(lr=0.05),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case("f-ae-2-units-rank8", "insufficient-capacity", "16-2-16 tanh autoencoder on rank-8 data")
def f_ae_2_units_rank8(seed: int) -> Setup:
    rng = np.random.default_rng(920 + seed)
    X = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 16)) / np.sqrt(8) + 0.05 * rng.normal(
        size=(500, 16)
    )
    return Setup(
        mlp([16, 2, 16], Tanh, rng),
        zscore(X),
        None,
        MSE(),
        Adam(lr=0.01),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case("f-bce-labels-1-2", "wrong-loss-for-targets", "BCE with labels {1, 2}")
def f_bce_labels_1_2(seed: int) -> Setup:
    rng = np.random.default_rng(930 + seed)
    X = rng.normal(size=(400, 3))
    y = np.where(X[:, 0] * X[:, 1] > 0, 2.0, 1.0)
    return Setup(
        mlp([3, 16, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        column(y),
        BCE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "f-softmax-ce-3-classes", "wrong-loss-for-targets", "Softmax + CrossEntropy on a 3-class spiral"
)
def f_softmax_ce_3_classes(seed: int) -> Setup:
    rng = np.random.default_rng(940 + seed)
    X, lab = spiral(rng, 450)
    return Setup(
        mlp([2, 64, 3], ReLU, rng, init="he_uniform", out=Softmax),
        X,
        lab,
        CrossEntropy(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case("f-h-sorted-but-shuffled", None, "data sorted by class, but shuffle=True, bs 8")
def f_h_sorted_but_shuffled(seed: int) -> Setup:
    rng = np.random.default_rng(950 + seed)
    X, lab = spiral(rng, 450)
    o = np.argsort(lab, kind="stable")
    return Setup(
        mlp([2, 32, 32, 3], ReLU, rng, init="he_uniform"),
        X[o],
        lab[o],
        CrossEntropy(),
        Adam(lr=0.01),
        epochs=40,
        batch_size=8,
        shuffle=True,
    )


@SET.case("f-h-sorted-full-batch", None, "data sorted by class, full batch (order irrelevant)")
def f_h_sorted_full_batch(seed: int) -> Setup:
    rng = np.random.default_rng(960 + seed)
    X, lab = spiral(rng, 450)
    o = np.argsort(lab, kind="stable")
    return Setup(
        mlp([2, 32, 32, 3], ReLU, rng, init="he_uniform"),
        X[o],
        lab[o],
        CrossEntropy(),
        Adam(lr=0.02),
        epochs=300,
        batch_size=None,
        shuffle=False,
    )


@SET.case("f-h-timeseries-shuffled", None, "the drifting series, shuffled mini-batches")
def f_h_timeseries_shuffled(seed: int) -> Setup:
    rng = np.random.default_rng(970 + seed)
    t = np.linspace(0, 1, 600)
    X = np.column_stack([t, np.sin(20 * t), rng.normal(size=600)])
    y = 3 * t + 0.5 * X[:, 1] + 0.1 * rng.normal(size=600)
    return Setup(
        mlp([3, 16, 1], Tanh, rng),
        zscore(X),
        column(zscore(y)),
        MSE(),
        Adam(lr=0.01),
        epochs=40,
        batch_size=16,
        shuffle=True,
    )
