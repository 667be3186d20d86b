"""Set 5: issue 10's batch, 8 cases at seeds 0, 1, 2, rebuilt from public reports.

Written and frozen before the trial and ranking changes of issue 10, run once with the code of
that time and never tuned on. Each case names the report it was rebuilt from and the cause its
accepted answer (or the article) found; the data are synthetic stand-ins of the same shape.
"""

from __future__ import annotations

import numpy as np

from heldout._common import CaseSet, Setup, column, digits, gauss_reg, mlp, zscore
from nndoctor.nn import ReLU, Sigmoid, Tanh
from nndoctor.nn.losses import BCE, MSE, CrossEntropy
from nndoctor.nn.optim import SGD, Adam

SET = CaseSet("set 5", "never tuned on")


@SET.case(
    "g-relu-dies-under-momentum",
    "lr-too-high",
    "He-initialised ReLU regressor, alive at init, SGD lr 0.2 with momentum 0.9, bs 8: the "
    "units die in the first steps. Rebuilt from "
    "https://deeplearning.jonwalls.dev/common-problems/gradient-flow/dying-relu (a single large "
    "update pushes the bias negative; high learning rates make it likely) and Arnekvist et al., "
    "'The effect of target normalization and momentum on dying ReLU' "
    "(https://paperswithcode.com/paper/the-effect-of-target-normalization-and): the cause is "
    "the step size, lowered learning rate fixes it",
)
def g_relu_dies_under_momentum(seed: int) -> Setup:
    rng = np.random.default_rng(1000 + seed)
    X, y = gauss_reg(rng, 400, 6)
    return Setup(
        mlp([6, 32, 32, 1], ReLU, rng, init="he_uniform"),
        X,
        y,
        MSE(),
        SGD(lr=0.2, momentum=0.9),
        epochs=30,
        batch_size=8,
        shuffle=True,
    )


@SET.case(
    "g-adam-lr-kills-classifier",
    "lr-too-high",
    "ReLU classifier of 8x8 digits (scaled to [0, 1]), Adam lr 1: ReLUs alive at init die "
    "within the first epoch and the net predicts one class. Rebuilt from "
    "https://datarekha.com/interview/deep-learning/dead-relu-problem/ ('very large learning "
    "rate produces a big negative update to the bias in one step'; fix: lower learning rate)",
)
def g_adam_lr_kills_classifier(seed: int) -> Setup:
    rng = np.random.default_rng(1010 + seed)
    X, lab = digits(rng, 600)
    return Setup(
        mlp([64, 64, 10], ReLU, rng, init="he_uniform"),
        X / 16.0,
        lab,
        CrossEntropy(),
        Adam(lr=1.0),
        epochs=20,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "g-loss-to-inf",
    "lr-too-high",
    "Standardised regression, 3 ReLU layers, SGD lr 0.5: the loss climbs from its start to a "
    "trillion and on to inf. Rebuilt from "
    "https://datascience.stackexchange.com/questions/15962 (loss from thousands to a trillion "
    "to nan; a learning rate ten times lower fixed it)",
)
def g_loss_to_inf(seed: int) -> Setup:
    rng = np.random.default_rng(1020 + seed)
    X, y = gauss_reg(rng, 300, 8, linear=True)
    return Setup(
        mlp([8, 32, 32, 1], ReLU, rng, init="he_uniform"),
        X,
        y,
        MSE(),
        SGD(lr=0.5),
        epochs=40,
        batch_size=16,
        shuffle=True,
    )


@SET.case(
    "g-bce-digit-labels",
    "wrong-loss-for-targets",
    "Ten classes as labels 0..9 in one column, one sigmoid output under BCE. Rebuilt from "
    "https://jbencook.com/cross-entropy-loss-in-pytorch/ and "
    "https://jamesmccaffreyblog.com/2023/03/22/why-pytorch-binary-cassification-labels-must-"
    "be-floats-but-multi-class-classification-labels-must-be-integers/ (single-label classes "
    "take CrossEntropy with one output per class and integer labels, BCE takes 0/1 targets)",
)
def g_bce_digit_labels(seed: int) -> Setup:
    rng = np.random.default_rng(1030 + seed)
    X, lab = digits(rng, 600)
    return Setup(
        mlp([64, 32, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X / 16.0,
        column(lab),
        BCE(),
        Adam(lr=0.01),
        epochs=30,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "g-iris-file-order-momentum",
    "unshuffled-data",
    "Three classes read in file order (sorted by class, as Iris is), per-sample SGD with "
    "momentum 0.9, no shuffling: the end weights favour the last class. Rebuilt from "
    "https://datascience.stackexchange.com/questions/18075 (Iris read line by line, trained "
    "in file order, outputs about 1/3 for every class) and "
    "https://dailydoseofds.beehiiv.com/p/why-is-it-important-to-shuffle-your (label-ordered "
    "data fails to converge; shuffling fixes it)",
)
def g_iris_file_order_momentum(seed: int) -> Setup:
    rng = np.random.default_rng(1040 + seed)
    centres = rng.normal(scale=1.0, size=(3, 4))
    lab = np.repeat(np.arange(3), 50)
    X = centres[lab] + 0.6 * rng.normal(size=(150, 4))
    return Setup(
        mlp([4, 8, 3], Tanh, rng),
        zscore(X),
        lab,
        CrossEntropy(),
        SGD(lr=0.05, momentum=0.9),
        epochs=40,
        batch_size=1,
        shuffle=False,
    )


@SET.case(
    "g-sorted-regression-momentum",
    "unshuffled-data",
    "Regression rows sorted by target (an exported table ordered by price), bs 10, SGD "
    "momentum 0.9, no shuffling: each stretch pulls the output to its own level. Rebuilt from "
    "https://dailydoseofds.beehiiv.com/p/why-is-it-important-to-shuffle-your (ordered data, "
    "same model and settings: only the shuffled run converges)",
)
def g_sorted_regression_momentum(seed: int) -> Setup:
    rng = np.random.default_rng(1050 + seed)
    X, y = gauss_reg(rng, 500, 5)
    order = np.argsort(y[:, 0], kind="stable")
    return Setup(
        mlp([5, 16, 1], Tanh, rng),
        X[order],
        y[order],
        MSE(),
        SGD(lr=0.05, momentum=0.9),
        epochs=20,
        batch_size=10,
        shuffle=False,
    )


@SET.case(
    "g-zero-init-relu",
    "symmetric-units",
    "10-10-1 ReLU net with every weight and bias at zero, SGD: the hidden layer never "
    "leaves zero. Rebuilt from https://stats.stackexchange.com/questions/294332 (zero "
    "initialisation with a ReLU hidden layer; answer: initialise randomly) and "
    "http://www.vynguyen.net/2016/08/29/learning-from-data-a-short-course-exercise-7-9/",
)
def g_zero_init_relu(seed: int) -> Setup:
    rng = np.random.default_rng(1060 + seed)
    X, y = gauss_reg(rng, 400, 10)
    return Setup(
        mlp([10, 10, 1], ReLU, rng, init="zeros"),
        X,
        y,
        MSE(),
        SGD(lr=0.05),
        epochs=60,
        batch_size=16,
        shuffle=True,
    )


@SET.case(
    "g-h-relu-momentum-moderate",
    None,
    "healthy control for the first case: the same ReLU regressor, SGD lr 0.01 with momentum "
    "0.9, shuffled",
)
def g_h_relu_momentum_moderate(seed: int) -> Setup:
    rng = np.random.default_rng(1070 + seed)
    X, y = gauss_reg(rng, 400, 6)
    return Setup(
        mlp([6, 32, 32, 1], ReLU, rng, init="he_uniform"),
        zscore(X),
        y,
        MSE(),
        SGD(lr=0.01, momentum=0.9),
        epochs=30,
        batch_size=8,
        shuffle=True,
    )
