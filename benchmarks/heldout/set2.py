"""Set 2: the second held-out set (round 1), 26 cases at one seed each.

Written after round 1's fixes as a fresh check and not tuned on directly. Each case draws its
data and weights from its own fixed generator seed and is diagnosed at the one seed given with it.
"""

from __future__ import annotations

import numpy as np

from heldout._common import (
    CaseSet,
    Setup,
    digits,
    gauss_reg,
    lowrank,
    mlp,
    moons,
    poly,
    sine,
)
from nndoctor.nn import Dense, ReLU, Sequential, Sigmoid, Tanh
from nndoctor.nn.init import normal, uniform
from nndoctor.nn.losses import BCE, MSE, SSE, CrossEntropy
from nndoctor.nn.optim import SGD, Adam

SET = CaseSet("set 2", "less so: written after round 1's fixes, not tuned on directly")


class TanhBackwardOnInput(Tanh):
    """Tanh whose backward takes 1 - x**2 of the input x, not of the output."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._Z = X
        return super().forward(X)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY * (1 - self._Z**2)


@SET.fixed_case(
    "v-gm-tanh-wrong-deriv", "gradient-mismatch", "tanh backward uses 1 - x^2 of the input", seed=61
)
def v_gm_tanh_wrong_deriv() -> Setup:
    rng = np.random.default_rng(3001)
    X, Y = gauss_reg(rng, 300, 6)
    m = Sequential(Dense(6, 20, seed=rng), TanhBackwardOnInput(), Dense(20, 1, seed=rng))
    return Setup(
        m, X, Y, MSE(), SGD(lr=0.05, momentum=0.9), epochs=100, batch_size=30, shuffle=True
    )


@SET.fixed_case(
    "v-sym-ones-init-sigmoid-ae",
    "symmetric-units",
    "ones init in a 12-5-12 sigmoid autoencoder",
    seed=62,
)
def v_sym_ones_init_sigmoid_ae() -> Setup:
    rng = np.random.default_rng(3002)
    X = lowrank(rng, 400, 12, 5)
    m = Sequential(Dense(12, 5, init="ones", seed=rng), Sigmoid(), Dense(5, 12, seed=rng))
    return Setup(m, X, None, MSE(), Adam(lr=0.01), epochs=150, batch_size=40, shuffle=True)


@SET.fixed_case(
    "v-sat-sigmoid-counts",
    "saturated-units",
    "sigmoid net with uniform(0, 2) weights on standardised data",
    seed=63,
)
def v_sat_sigmoid_counts() -> Setup:
    rng = np.random.default_rng(3003)
    X, lab = moons(rng, 500)
    X = np.column_stack([X, rng.normal(size=(500, 8))])
    m = Sequential(
        Dense(10, 24, init=uniform(0.0, 2.0), seed=rng),
        Sigmoid(),
        Dense(24, 1, seed=rng),
        Sigmoid(),
    )
    return Setup(
        m,
        (X - X.mean(0)) / X.std(0),
        lab[:, None].astype(float),
        BCE(),
        SGD(lr=0.1),
        epochs=150,
        batch_size=50,
        shuffle=True,
    )


@SET.fixed_case(
    "v-dead-leaky-lr",
    "dead-units",
    "ReLU biases initialised to -6 in a depth-3 regressor on 20 features, Adam",
    seed=64,
)
def v_dead_leaky_lr() -> Setup:
    rng = np.random.default_rng(3004)
    X, Y = gauss_reg(rng, 600, 20)
    m = mlp([20, 24, 24, 24, 1], ReLU, rng, init="he_normal", bias=-6.0)
    return Setup(m, X, Y, MSE(), Adam(lr=0.002), epochs=60, batch_size=64, shuffle=True)


@SET.fixed_case(
    "v-van-tanh-deep-small", "vanishing-gradients", "5 tanh layers, N(0, 0.05) init", seed=65
)
def v_van_tanh_deep_small() -> Setup:
    rng = np.random.default_rng(3005)
    X, Y = sine(rng, 400, freq=1.5)
    m = mlp([1, 32, 32, 32, 32, 32, 1], Tanh, rng, init=normal(0.05))
    return Setup(m, X, Y, MSE(), SGD(lr=0.05), epochs=80, batch_size=20, shuffle=True)


@SET.fixed_case(
    "v-exp-randn-tanh-out",
    "exploding-gradients",
    "3 ReLU layers width 40 N(0,1), SGD momentum",
    seed=66,
)
def v_exp_randn_tanh_out() -> Setup:
    rng = np.random.default_rng(3006)
    X, Y = poly(rng, 400, 6)
    m = mlp([6, 40, 40, 40, 1], ReLU, rng, init=normal(1.0))
    return Setup(m, X, Y, MSE(), SGD(lr=1e-3, momentum=0.9), epochs=50, batch_size=40, shuffle=True)


@SET.fixed_case("v-lrh-sgd-ce", "lr-too-high", "SGD lr 20 on a digits classifier", seed=67)
def v_lrh_sgd_ce() -> Setup:
    rng = np.random.default_rng(3007)
    X, lab = digits(rng, 500, levels=1)
    return Setup(
        mlp([64, 32, 10], Tanh, rng),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=20.0),
        epochs=40,
        batch_size=25,
        shuffle=True,
    )


@SET.fixed_case("v-lrh-adam-0.5-regr", "lr-too-high", "Adam lr 0.5 ReLU regression", seed=68)
def v_lrh_adam_0_5_regr() -> Setup:
    rng = np.random.default_rng(3008)
    X, Y = gauss_reg(rng, 500, 10)
    return Setup(
        mlp([10, 32, 32, 1], ReLU, rng, init="he_uniform"),
        X,
        Y,
        MSE(),
        Adam(lr=0.5),
        epochs=60,
        batch_size=25,
        shuffle=True,
    )


@SET.fixed_case("v-lrl-momentum-1e-5", "lr-too-low", "SGD momentum lr 1e-5 on digits CE", seed=69)
def v_lrl_momentum_1e_5() -> Setup:
    rng = np.random.default_rng(3009)
    X, lab = digits(rng, 400, levels=1)
    return Setup(
        mlp([64, 32, 10], ReLU, rng, init="he_uniform"),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=1e-5, momentum=0.9),
        epochs=40,
        batch_size=20,
        shuffle=True,
    )


@SET.fixed_case(
    "v-uns-ages-incomes",
    "unscaled-inputs",
    "age and income in dollars as features, sigmoid net",
    seed=70,
)
def v_uns_ages_incomes() -> Setup:
    rng = np.random.default_rng(3010)
    n = 600
    age = rng.uniform(18, 80, n)
    inc = rng.lognormal(10.5, 0.5, n)
    lab = ((age - 45) / 15 + (np.log(inc) - 10.5) / 0.5 + 0.5 * rng.normal(size=n) > 0).astype(
        float
    )
    return Setup(
        mlp([2, 12, 1], Sigmoid, rng, out=Sigmoid),
        np.column_stack([age, inc]),
        lab[:, None],
        BCE(),
        SGD(lr=0.05),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "v-const-nan-filled",
    "constant-inputs",
    "all features filled with the same imputed value",
    seed=71,
)
def v_const_nan_filled() -> Setup:
    rng = np.random.default_rng(3011)
    X, lab = moons(rng, 300)
    X = np.full((300, 5), -1.0)
    return Setup(
        mlp([5, 8, 2], ReLU, rng, init="he_uniform"),
        X,
        lab,
        CrossEntropy(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=30,
        shuffle=True,
    )


@SET.fixed_case(
    "v-tor-sigmoid-temperatures",
    "targets-out-of-range",
    "temperatures in C (-10..35) through a sigmoid",
    seed=72,
)
def v_tor_sigmoid_temperatures() -> Setup:
    rng = np.random.default_rng(3012)
    X = rng.normal(size=(400, 4))
    T = 12 + 10 * np.tanh(X[:, 0] - X[:, 1]) + rng.normal(size=400)
    return Setup(
        mlp([4, 16, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        T[:, None],
        MSE(),
        Adam(lr=0.01),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "v-wl-bce-labels-1-2", "wrong-loss-for-targets", "binary labels coded 1/2 with BCE", seed=73
)
def v_wl_bce_labels_1_2() -> Setup:
    rng = np.random.default_rng(3013)
    X, lab = moons(rng, 300)
    return Setup(
        mlp([2, 16, 1], Tanh, rng, out=Sigmoid),
        X,
        (lab + 1)[:, None].astype(float),
        BCE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=30,
        shuffle=True,
    )


@SET.fixed_case(
    "v-mn-digits-linear-stack",
    "missing-nonlinearity",
    "4-32-32-4 Dense stack, no activations, on two XOR-like label bits",
    seed=74,
)
def v_mn_digits_linear_stack() -> Setup:
    rng = np.random.default_rng(3014)
    X = rng.normal(size=(600, 4))
    lab = ((X[:, 0] * X[:, 1] > 0).astype(int) + 2 * (X[:, 2] * X[:, 3] > 0)).astype(int)
    m = Sequential(Dense(4, 32, seed=rng), Dense(32, 32, seed=rng), Dense(32, 4, seed=rng))
    return Setup(m, X, lab, CrossEntropy(), Adam(lr=0.01), epochs=60, batch_size=32, shuffle=True)


@SET.fixed_case("v-ns-coinflip-bce", "no-signal", "coin-flip labels on 6 features, BCE", seed=75)
def v_ns_coinflip_bce() -> Setup:
    rng = np.random.default_rng(3015)
    X = rng.normal(size=(1000, 6))
    return Setup(
        mlp([6, 16, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        (rng.random((1000, 1)) < 0.5).astype(float),
        BCE(),
        SGD(lr=0.05, momentum=0.9),
        epochs=30,
        batch_size=50,
        shuffle=True,
    )


@SET.fixed_case(
    "v-imb-10pct-ce", "class-imbalance", "binary CE with 3% positives weakly separated", seed=76
)
def v_imb_10pct_ce() -> Setup:
    rng = np.random.default_rng(3016)
    n = 1500
    lab = (rng.random(n) < 0.03).astype(int)
    X = rng.normal(size=(n, 6)) + 1.0 * lab[:, None]
    return Setup(
        mlp([6, 8, 2], Tanh, rng),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.05),
        epochs=20,
        batch_size=100,
        shuffle=True,
    )


@SET.fixed_case(
    "v-cap-checker-one-unit", "insufficient-capacity", "4x4 checkerboard with a 2-2-1 net", seed=77
)
def v_cap_checker_one_unit() -> Setup:
    rng = np.random.default_rng(3017)
    X = rng.uniform(-2, 2, (800, 2))
    lab = ((np.floor(X[:, 0]) + np.floor(X[:, 1])) % 2)[:, None]
    return Setup(
        mlp([2, 2, 1], Tanh, rng, out=Sigmoid),
        X,
        lab,
        BCE(),
        Adam(lr=0.02),
        epochs=200,
        batch_size=50,
        shuffle=True,
    )


@SET.fixed_case(
    "v-consttarget-regression",
    "constant-targets",
    "regression target column filled with its first value",
    seed=78,
)
def v_consttarget_regression() -> Setup:
    rng = np.random.default_rng(3018)
    X, Y = gauss_reg(rng, 300, 6)
    return Setup(
        mlp([6, 16, 1], Tanh, rng),
        X,
        np.full_like(Y, Y[0, 0]),
        MSE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=30,
        shuffle=True,
    )


@SET.fixed_case(
    "v-unscaled-kelvin-targets",
    "unscaled-targets",
    "targets in Kelvin (~290) on a ReLU net, SGD",
    seed=79,
)
def v_unscaled_kelvin_targets() -> Setup:
    rng = np.random.default_rng(3019)
    X = rng.normal(size=(400, 5))
    T = 290 + 8 * np.tanh(X[:, 0]) + 3 * X[:, 1] + rng.normal(size=400)
    return Setup(
        mlp([5, 16, 1], ReLU, rng, init="he_uniform"),
        X,
        T[:, None],
        MSE(),
        Adam(lr=0.001),
        epochs=100,
        batch_size=40,
        shuffle=True,
    )


@SET.fixed_case("v-h-moons-sgd-batch1", None, "moons 2-8-1 tanh, SGD batch 1", seed=80)
def v_h_moons_sgd_batch1() -> Setup:
    rng = np.random.default_rng(3020)
    X, lab = moons(rng, 150)
    return Setup(
        mlp([2, 8, 1], Tanh, rng, out=Sigmoid),
        X,
        lab[:, None].astype(float),
        BCE(),
        SGD(lr=0.05),
        epochs=60,
        batch_size=1,
        shuffle=True,
    )


@SET.fixed_case("v-h-deep-relu-4", None, "4 hidden ReLU layers width 24, Adam, poly", seed=81)
def v_h_deep_relu_4() -> Setup:
    rng = np.random.default_rng(3021)
    X, Y = poly(rng, 800, 6)
    return Setup(
        mlp([6, 24, 24, 24, 24, 1], ReLU, rng, init="he_uniform"),
        X,
        Y,
        MSE(),
        Adam(lr=0.003),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "v-h-ae-sigmoid-sse", None, "8-4-8 sigmoid AE on rank-2 data in [0,1], SSE, batch 8", seed=82
)
def v_h_ae_sigmoid_sse() -> Setup:
    rng = np.random.default_rng(3022)
    Z = lowrank(rng, 400, 8, 2, noise=0.02)
    X = 1 / (1 + np.exp(-Z))
    return Setup(
        mlp([8, 4, 8], Sigmoid, rng, out=Sigmoid),
        X,
        None,
        SSE(),
        SGD(lr=0.5),
        epochs=200,
        batch_size=8,
        shuffle=True,
    )


@SET.fixed_case("v-h-digits-ce-adam-wide", None, "digits 64-64-10 ReLU Adam full batch", seed=83)
def v_h_digits_ce_adam_wide() -> Setup:
    rng = np.random.default_rng(3023)
    X, lab = digits(rng, 800, levels=1)
    return Setup(
        mlp([64, 64, 10], ReLU, rng, init="he_uniform"),
        X,
        lab,
        CrossEntropy(),
        Adam(lr=0.005),
        epochs=150,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "v-h-regression-targets-0-10",
    None,
    "targets in [0, 10] (not standardised) with Adam, enough epochs",
    seed=84,
)
def v_h_regression_targets_0_10() -> Setup:
    rng = np.random.default_rng(3024)
    X = rng.normal(size=(400, 4))
    T = 5 + 4 * np.tanh(X[:, 0] + 0.5 * X[:, 2])
    return Setup(
        mlp([4, 32, 1], Tanh, rng),
        X,
        T[:, None],
        MSE(),
        Adam(lr=0.01),
        epochs=300,
        batch_size=40,
        shuffle=True,
    )


@SET.fixed_case(
    "v-h-imbalanced-but-learns", None, "85/15 classes well separated: learns the minority", seed=85
)
def v_h_imbalanced_but_learns() -> Setup:
    rng = np.random.default_rng(3025)
    n = 600
    lab = (rng.random(n) < 0.15).astype(int)
    X = rng.normal(size=(n, 4)) + 3.0 * lab[:, None]
    return Setup(
        mlp([4, 8, 2], ReLU, rng, init="he_uniform"),
        X,
        lab,
        CrossEntropy(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "v-h-counts-features", None, "count features up to 40 with a ReLU net, Adam", seed=86
)
def v_h_counts_features() -> Setup:
    rng = np.random.default_rng(3026)
    X = rng.poisson(12, size=(500, 5)).astype(float)
    Y = ((X[:, 0] - X[:, 1]) / 5 + 0.1 * rng.normal(size=500))[:, None]
    return Setup(
        mlp([5, 16, 1], ReLU, rng, init="he_uniform"),
        X,
        Y,
        MSE(),
        Adam(lr=0.003),
        epochs=150,
        batch_size=25,
        shuffle=True,
    )
