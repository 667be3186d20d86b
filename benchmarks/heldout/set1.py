"""Set 1: the first held-out set (red-team round 1), 54 cases at one seed each.

Written to differ from the doctor's catalog in data, sizes, optimisers and losses. The doctor's
rules were tuned on this set in round 1. Each case draws its data and weights from its own fixed
generator seed and is diagnosed at the one seed given with it.
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
from nndoctor.nn import Dense, ReLU, Sequential, Sigmoid, Softmax, Tanh
from nndoctor.nn.init import constant, normal, uniform
from nndoctor.nn.losses import BCE, MSE, SSE, CrossEntropy
from nndoctor.nn.optim import SGD, Adam

SET = CaseSet("set 1", "tuned on (round 1)")


# ---- hand-written layers with wrong gradients (the gradient-mismatch cases) ----


class SigmoidBackwardOnInput(Sigmoid):
    """Sigmoid whose backward takes z (1 - z) of the pre-activation z, not of the output."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._Z = X
        return super().forward(X)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY * self._Z * (1.0 - self._Z)


class MasklessReLU(ReLU):
    """ReLU whose backward forgot the mask: passes every gradient through."""

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY


class BatchScaledWeightGradDense(Dense):
    """Dense whose weight gradient (not its bias gradient) is divided by the batch size."""

    def backward(self, dY: np.ndarray) -> np.ndarray:
        dX = super().backward(dY)
        self.grads["W"] *= 1.0 / len(dY)
        return dX


@SET.fixed_case(
    "gm-sigmoid-z-derivative",
    "gradient-mismatch",
    "custom sigmoid backward uses z(1-z) on pre-activation",
    seed=3,
)
def gm_sigmoid_z_derivative() -> Setup:
    rng = np.random.default_rng(101)
    X, lab = moons(rng, 300)
    m = Sequential(
        Dense(2, 12, seed=rng), SigmoidBackwardOnInput(), Dense(12, 1, seed=rng), Sigmoid()
    )
    return Setup(
        m,
        X,
        lab[:, None].astype(float),
        BCE(),
        SGD(lr=0.5),
        epochs=200,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case("gm-relu-no-mask", "gradient-mismatch", "ReLU backward forgot the mask", seed=5)
def gm_relu_no_mask() -> Setup:
    rng = np.random.default_rng(102)
    X, Y = poly(rng, 400, 5)
    m = Sequential(
        Dense(5, 16, init="he_uniform", seed=rng),
        MasklessReLU(),
        Dense(16, 16, init="he_uniform", seed=rng),
        MasklessReLU(),
        Dense(16, 1, seed=rng),
    )
    return Setup(m, X, Y, MSE(), Adam(lr=0.01), epochs=150, batch_size=32, shuffle=True)


@SET.fixed_case(
    "gm-weight-grad-scaled",
    "gradient-mismatch",
    "Dense weight gradient divided by batch size (SGD)",
    seed=7,
)
def gm_weight_grad_scaled() -> Setup:
    rng = np.random.default_rng(103)
    X, Y = sine(rng, 500)
    m = Sequential(
        BatchScaledWeightGradDense(1, 24, seed=rng),
        Tanh(),
        BatchScaledWeightGradDense(24, 1, seed=rng),
    )
    return Setup(m, X, Y, SSE(), SGD(lr=0.002), epochs=200, batch_size=50, shuffle=False)


@SET.fixed_case(
    "sym-moons-constant-relu", "symmetric-units", "all weights 0.5, ReLU MLP on moons, Adam", seed=1
)
def sym_moons_constant_relu() -> Setup:
    rng = np.random.default_rng(201)
    X, lab = moons(rng, 400)
    m = mlp([2, 16, 16, 1], ReLU, rng, init=constant(0.5), out=Sigmoid)
    return Setup(
        m,
        X,
        lab[:, None].astype(float),
        BCE(),
        Adam(lr=0.01),
        epochs=150,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "sym-digits-zeros-tanh",
    "symmetric-units",
    "np.zeros weights, tanh, CE 10 classes, momentum",
    seed=2,
)
def sym_digits_zeros_tanh() -> Setup:
    rng = np.random.default_rng(202)
    X, lab = digits(rng, 600, levels=1)
    m = mlp([64, 32, 10], Tanh, rng, init="zeros")
    return Setup(
        m, X, lab, CrossEntropy(), SGD(lr=0.1, momentum=0.9), epochs=60, batch_size=16, shuffle=True
    )


@SET.fixed_case(
    "sym-sine-constant-tanh-batch1",
    "symmetric-units",
    "constant 0.05 init, tanh, SGD batch 1",
    seed=4,
)
def sym_sine_constant_tanh_batch1() -> Setup:
    rng = np.random.default_rng(203)
    X, Y = sine(rng, 60)
    m = mlp([1, 32, 32, 1], Tanh, rng, init=constant(0.05))
    return Setup(m, X, Y, MSE(), SGD(lr=0.02), epochs=150, batch_size=1, shuffle=False)


@SET.fixed_case(
    "sat-sigmoid-big-init",
    "saturated-units",
    "sigmoid hidden layer with N(0, 4) weights, 20 features",
    seed=6,
)
def sat_sigmoid_big_init() -> Setup:
    rng = np.random.default_rng(301)
    X, Y = gauss_reg(rng, 500, 20)
    m = mlp([20, 32, 1], Sigmoid, rng, init=normal(4.0))
    return Setup(m, X, Y, MSE(), SGD(lr=0.1), epochs=100, batch_size=32, shuffle=True)


@SET.fixed_case(
    "sat-tanh-bias-8",
    "saturated-units",
    "tanh hidden units with bias +8 on moons, SGD full batch",
    seed=8,
)
def sat_tanh_bias_8() -> Setup:
    rng = np.random.default_rng(302)
    X, lab = moons(rng, 300)
    m = mlp([2, 16, 1], Tanh, rng, bias=8.0, out=Sigmoid)
    return Setup(
        m,
        X,
        lab[:, None].astype(float),
        BCE(),
        SGD(lr=0.2),
        epochs=300,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "dead-he-bias-minus3-sine",
    "dead-units",
    "He init + bias -3 ReLU on sine, momentum batch 16",
    seed=9,
)
def dead_he_bias_minus3_sine() -> Setup:
    rng = np.random.default_rng(401)
    X, Y = sine(rng, 400)
    m = mlp([1, 32, 32, 1], ReLU, rng, init="he_normal", bias=-3.0)
    return Setup(
        m, X, Y, MSE(), SGD(lr=0.01, momentum=0.9), epochs=100, batch_size=16, shuffle=True
    )


@SET.fixed_case(
    "dead-digits-bias-minus4", "dead-units", "ReLU bias -4 on [0,1] pixels, CE, Adam", seed=10
)
def dead_digits_bias_minus4() -> Setup:
    rng = np.random.default_rng(402)
    X, lab = digits(rng, 500, levels=1)
    m = mlp([64, 48, 10], ReLU, rng, init="he_uniform", bias=-4.0)
    return Setup(m, X, lab, CrossEntropy(), Adam(lr=0.003), epochs=80, batch_size=32, shuffle=True)


@SET.fixed_case(
    "van-sigmoid-small-init-4", "vanishing-gradients", "4 sigmoid layers, 0.05*randn init", seed=11
)
def van_sigmoid_small_init_4() -> Setup:
    rng = np.random.default_rng(501)
    X, Y = gauss_reg(rng, 400, 10)
    m = mlp([10, 16, 16, 16, 16, 1], Sigmoid, rng, init=normal(0.05))
    return Setup(m, X, Y, MSE(), SGD(lr=0.1), epochs=100, batch_size=16, shuffle=True)


@SET.fixed_case(
    "van-sigmoid-6-moons",
    "vanishing-gradients",
    "6 sigmoid layers width 8 Xavier, moons full batch",
    seed=12,
)
def van_sigmoid_6_moons() -> Setup:
    rng = np.random.default_rng(502)
    X, lab = moons(rng, 300)
    m = mlp([2, 8, 8, 8, 8, 8, 8, 1], Sigmoid, rng, out=Sigmoid)
    return Setup(
        m,
        X,
        lab[:, None].astype(float),
        BCE(),
        SGD(lr=0.1),
        epochs=300,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "exp-relu-randn-adam",
    "exploding-gradients",
    "4 ReLU layers width 64 with N(0,1) weights, Adam",
    seed=13,
)
def exp_relu_randn_adam() -> Setup:
    rng = np.random.default_rng(601)
    X, Y = poly(rng, 300, 5)
    m = mlp([5, 64, 64, 64, 64, 1], ReLU, rng, init=normal(1.0))
    return Setup(m, X, Y, MSE(), Adam(lr=1e-3), epochs=60, batch_size=32, shuffle=True)


@SET.fixed_case(
    "exp-relu-uniform1-sgd-sum",
    "exploding-gradients",
    "3 ReLU layers U(-1,1) width 48, SGD, MSE sum",
    seed=14,
)
def exp_relu_uniform1_sgd_sum() -> Setup:
    rng = np.random.default_rng(602)
    X, Y = gauss_reg(rng, 200, 8)
    m = mlp([8, 48, 48, 48, 1], ReLU, rng, init=uniform(-1.0, 1.0))
    return Setup(
        m, X, Y, MSE(reduction="sum"), SGD(lr=1e-4), epochs=100, batch_size=20, shuffle=False
    )


@SET.fixed_case(
    "lrh-adam-0.1-deep-relu",
    "lr-too-high",
    "Adam lr 0.1 on a deep ReLU net, digits CE, batch 16",
    seed=15,
)
def lrh_adam_0_1_deep_relu() -> Setup:
    rng = np.random.default_rng(701)
    X, lab = digits(rng, 600, levels=1)
    m = mlp([64, 64, 64, 64, 10], ReLU, rng, init="he_uniform")
    return Setup(m, X, lab, CrossEntropy(), Adam(lr=0.1), epochs=40, batch_size=16, shuffle=True)


@SET.fixed_case(
    "lrh-momentum-sgd-3",
    "lr-too-high",
    "SGD lr 3 with momentum 0.9 on a small sine regression",
    seed=16,
)
def lrh_momentum_sgd_3() -> Setup:
    rng = np.random.default_rng(702)
    X, Y = sine(rng, 300, freq=1.0)
    m = mlp([1, 16, 1], Tanh, rng)
    return Setup(
        m, X, Y, MSE(), SGD(lr=3.0, momentum=0.9), epochs=200, batch_size=None, shuffle=False
    )


@SET.fixed_case(
    "lrh-sum-reduction-2000",
    "lr-too-high",
    "MSE sum over full batch of 2000 with SGD lr 0.01",
    seed=17,
)
def lrh_sum_reduction_2000() -> Setup:
    rng = np.random.default_rng(703)
    X, Y = gauss_reg(rng, 2000, 12)
    m = mlp([12, 32, 1], Tanh, rng)
    return Setup(
        m, X, Y, MSE(reduction="sum"), SGD(lr=0.01), epochs=100, batch_size=None, shuffle=False
    )


@SET.fixed_case("lrl-adam-1e-6", "lr-too-low", "Adam lr 1e-6 on moons, batch 16", seed=18)
def lrl_adam_1e_6() -> Setup:
    rng = np.random.default_rng(801)
    X, lab = moons(rng, 400)
    m = mlp([2, 16, 1], Tanh, rng, out=Sigmoid)
    return Setup(
        m,
        X,
        lab[:, None].astype(float),
        BCE(),
        Adam(lr=1e-6),
        epochs=100,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "lrl-sgd-1e-4-full", "lr-too-low", "SGD lr 1e-4 full batch ReLU regression", seed=19
)
def lrl_sgd_1e_4_full() -> Setup:
    rng = np.random.default_rng(802)
    X, Y = gauss_reg(rng, 400, 12)
    m = mlp([12, 32, 1], ReLU, rng, init="he_uniform")
    return Setup(m, X, Y, MSE(), SGD(lr=1e-4), epochs=300, batch_size=None, shuffle=False)


@SET.fixed_case(
    "uns-sensor-readings",
    "unscaled-inputs",
    "pressure in Pa, temperature in K, humidity %, tanh, Adam",
    seed=20,
)
def uns_sensor_readings() -> Setup:
    rng = np.random.default_rng(901)
    n = 500
    p = rng.normal(101325, 800, n)
    t = rng.normal(293, 8, n)
    h = rng.uniform(10, 95, n)
    z = (p - 101325) / 800 - (t - 293) / 8 + ((h - 50) / 25) ** 2 - 1
    lab = (z + 0.3 * rng.normal(size=n) > 0).astype(float)
    m = mlp([3, 16, 1], Tanh, rng, out=Sigmoid)
    return Setup(
        m,
        np.column_stack([p, t, h]),
        lab[:, None],
        BCE(),
        Adam(lr=0.01),
        epochs=100,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "uns-pixels-255-relu-sgd", "unscaled-inputs", "0-255 pixels, ReLU, SGD lr 0.01, CE", seed=21
)
def uns_pixels_255_relu_sgd() -> Setup:
    rng = np.random.default_rng(902)
    X, lab = digits(rng, 500, levels=255)
    m = mlp([64, 32, 10], ReLU, rng, init="he_uniform")
    return Setup(m, X, lab, CrossEntropy(), SGD(lr=0.01), epochs=50, batch_size=16, shuffle=True)


@SET.fixed_case(
    "const-digits-intdiv",
    "constant-inputs",
    "0-16 digits integer-divided by 255, 10 classes, momentum",
    seed=22,
)
def const_digits_intdiv() -> Setup:
    rng = np.random.default_rng(1001)
    X, lab = digits(rng, 500, levels=16)
    return Setup(
        mlp([64, 32, 10], ReLU, rng, init="he_uniform"),
        (X // 255).astype(float),
        lab,
        CrossEntropy(),
        SGD(lr=0.05, momentum=0.9),
        epochs=60,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "const-broadcast-first-row",
    "constant-inputs",
    "every row a copy of the first (broadcast bug), regression",
    seed=23,
)
def const_broadcast_first_row() -> Setup:
    rng = np.random.default_rng(1002)
    X, Y = gauss_reg(rng, 300, 8)
    X[:] = X[0]
    return Setup(
        mlp([8, 16, 1], Tanh, rng),
        X,
        Y,
        MSE(),
        Adam(lr=0.01),
        epochs=150,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "tor-ratings-tanh-output", "targets-out-of-range", "ratings 1-5 with a tanh output", seed=24
)
def tor_ratings_tanh_output() -> Setup:
    rng = np.random.default_rng(1101)
    X = rng.normal(size=(400, 6))
    r = np.clip(np.round(3 + 1.2 * np.tanh(X @ rng.normal(size=6) / 2) * 2), 1, 5)
    return Setup(
        mlp([6, 16, 1], ReLU, rng, init="he_uniform", out=Tanh),
        X,
        r[:, None],
        MSE(),
        Adam(lr=0.01),
        epochs=150,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "tor-relu-output-standardised",
    "targets-out-of-range",
    "ReLU on the output, standardised targets",
    seed=25,
)
def tor_relu_output_standardised() -> Setup:
    rng = np.random.default_rng(1102)
    X, Y = sine(rng, 300, freq=1.0)
    return Setup(
        mlp([1, 32, 1], Tanh, rng, out=ReLU),
        X,
        Y - Y.mean(),
        MSE(),
        Adam(lr=0.01),
        epochs=200,
        batch_size=32,
        shuffle=False,
    )


@SET.fixed_case(
    "tor-sigmoid-prices",
    "targets-out-of-range",
    "sigmoid output on house prices in dollars",
    seed=26,
)
def tor_sigmoid_prices() -> Setup:
    rng = np.random.default_rng(1103)
    X = rng.normal(size=(300, 5))
    price = 300000 + 80000 * np.tanh(X @ rng.normal(size=5) / 2) + 10000 * rng.normal(size=300)
    return Setup(
        mlp([5, 16, 1], Tanh, rng, out=Sigmoid),
        X,
        price[:, None],
        MSE(),
        Adam(lr=0.01),
        epochs=100,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "wl-ten-classes-one-sigmoid",
    "wrong-loss-for-targets",
    "10 classes 0..9 on one sigmoid unit with BCE",
    seed=27,
)
def wl_ten_classes_one_sigmoid() -> Setup:
    rng = np.random.default_rng(1201)
    X, lab = digits(rng, 500, levels=1)
    return Setup(
        mlp([64, 32, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        lab[:, None].astype(float),
        BCE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "wl-bce-on-logits",
    "wrong-loss-for-targets",
    "BCE on an identity output (logits) on moons",
    seed=28,
)
def wl_bce_on_logits() -> Setup:
    rng = np.random.default_rng(1202)
    X, lab = moons(rng, 300)
    return Setup(
        mlp([2, 16, 1], Tanh, rng),
        X,
        lab[:, None].astype(float),
        BCE(),
        Adam(lr=0.01),
        epochs=100,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "wl-softmax-then-ce",
    "wrong-loss-for-targets",
    "Softmax layer before CrossEntropy, digits",
    seed=29,
)
def wl_softmax_then_ce() -> Setup:
    rng = np.random.default_rng(1203)
    X, lab = digits(rng, 500, levels=1)
    return Setup(
        mlp([64, 32, 10], ReLU, rng, init="he_uniform", out=Softmax),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.05),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "mn-moons-dense-stack", "missing-nonlinearity", "Dense-Dense-Dense-Sigmoid on moons", seed=30
)
def mn_moons_dense_stack() -> Setup:
    rng = np.random.default_rng(1301)
    X, lab = moons(rng, 400)
    m = Sequential(
        Dense(2, 16, seed=rng), Dense(16, 16, seed=rng), Dense(16, 1, seed=rng), Sigmoid()
    )
    return Setup(
        m,
        X,
        lab[:, None].astype(float),
        BCE(),
        Adam(lr=0.01),
        epochs=150,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "mn-sine-two-dense", "missing-nonlinearity", "Dense(1,32)-Dense(32,1) on a sine", seed=31
)
def mn_sine_two_dense() -> Setup:
    rng = np.random.default_rng(1302)
    X, Y = sine(rng, 300)
    m = Sequential(Dense(1, 32, seed=rng), Dense(32, 1, seed=rng))
    return Setup(
        m, X, Y, MSE(), SGD(lr=0.01, momentum=0.9), epochs=150, batch_size=16, shuffle=True
    )


@SET.fixed_case(
    "ns-shuffled-digit-labels", "no-signal", "digit labels shuffled apart from images", seed=32
)
def ns_shuffled_digit_labels() -> Setup:
    rng = np.random.default_rng(1401)
    X, lab = digits(rng, 600, levels=1)
    return Setup(
        mlp([64, 16, 10], ReLU, rng, init="he_uniform"),
        X,
        rng.permutation(lab),
        CrossEntropy(),
        Adam(lr=0.001),
        epochs=30,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "ns-noise-regression", "no-signal", "15 features, target independent noise", seed=33
)
def ns_noise_regression() -> Setup:
    rng = np.random.default_rng(1402)
    X = rng.normal(size=(800, 15))
    Y = rng.normal(size=(800, 1))
    return Setup(
        mlp([15, 8, 1], Tanh, rng),
        X,
        Y,
        MSE(),
        SGD(lr=0.01, momentum=0.9),
        epochs=40,
        batch_size=64,
        shuffle=True,
    )


@SET.fixed_case(
    "imb-digits-3class-95", "class-imbalance", "3 classes 570/15/15, CE, SGD full batch", seed=34
)
def imb_digits_3class_95() -> Setup:
    rng = np.random.default_rng(1501)
    X, lab = digits(rng, 600, classes=3, levels=1, counts=[570, 15, 15])
    return Setup(
        mlp([64, 16, 3], ReLU, rng, init="he_uniform"),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.05),
        epochs=100,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "imb-rare-positive-2pct", "class-imbalance", "2% positives, overlapping Gaussians, BCE", seed=35
)
def imb_rare_positive_2pct() -> Setup:
    rng = np.random.default_rng(1502)
    n = 2000
    lab = (rng.random(n) < 0.02).astype(float)
    X = rng.normal(size=(n, 10)) + 1.2 * lab[:, None] * (np.arange(10) < 3)
    return Setup(
        mlp([10, 8, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        lab[:, None],
        BCE(),
        SGD(lr=0.05),
        epochs=30,
        batch_size=64,
        shuffle=True,
    )


@SET.fixed_case(
    "cap-sine-two-units", "insufficient-capacity", "sin(5x) with a 1-2-1 tanh net", seed=36
)
def cap_sine_two_units() -> Setup:
    rng = np.random.default_rng(1601)
    X, Y = sine(rng, 500, freq=5.0)
    return Setup(
        mlp([1, 2, 1], Tanh, rng),
        X,
        Y,
        MSE(),
        Adam(lr=0.01),
        epochs=300,
        batch_size=50,
        shuffle=True,
    )


@SET.fixed_case(
    "cap-parity-logistic", "insufficient-capacity", "3-bit parity with logistic regression", seed=37
)
def cap_parity_logistic() -> Setup:
    rng = np.random.default_rng(1602)
    B = rng.integers(0, 2, size=(400, 3)).astype(float)
    lab = (B.sum(axis=1) % 2)[:, None]
    X = 2 * B - 1 + 0.1 * rng.normal(size=B.shape)
    return Setup(
        Sequential(Dense(3, 1, seed=rng), Sigmoid()),
        X,
        lab,
        BCE(),
        SGD(lr=0.5),
        epochs=200,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "x-labels-div-255",
    "constant-targets",
    "labels divided by 255 -> all zero (broken labels)",
    seed=38,
)
def x_labels_div_255() -> Setup:
    rng = np.random.default_rng(1701)
    X, lab = digits(rng, 400, levels=1)
    return Setup(
        mlp([64, 32, 10], ReLU, rng, init="he_uniform"),
        X,
        lab // 255,
        CrossEntropy(),
        Adam(lr=0.01),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "x-unscaled-price-targets",
    "unscaled-targets",
    "house prices (3e5) as targets on a linear output, Adam",
    seed=39,
)
def x_unscaled_price_targets() -> Setup:
    rng = np.random.default_rng(1702)
    X = rng.normal(size=(400, 6))
    price = 300000 + 80000 * np.tanh(X @ rng.normal(size=6) / 2) + 10000 * rng.normal(size=400)
    return Setup(
        mlp([6, 32, 1], ReLU, rng, init="he_uniform"),
        X,
        price[:, None],
        MSE(),
        Adam(lr=0.01),
        epochs=100,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "x-mask-labels-div-256",
    "constant-targets",
    "binary 0/255 mask labels // 256 -> all 0, BCE",
    seed=53,
)
def x_mask_labels_div_256() -> Setup:
    rng = np.random.default_rng(1703)
    X, lab = moons(rng, 300)
    mask = lab * 255
    return Setup(
        mlp([2, 16, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        (mask // 256)[:, None].astype(float),
        BCE(),
        SGD(lr=0.1),
        epochs=100,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "x-salary-targets-sgd",
    "unscaled-targets",
    "salaries (~6e4) as targets with SGD on a tanh net",
    seed=54,
)
def x_salary_targets_sgd() -> Setup:
    rng = np.random.default_rng(1704)
    X = rng.normal(size=(500, 8))
    sal = 60000 + 15000 * (X[:, 0] + 0.5 * X[:, 1] ** 2) + 3000 * rng.normal(size=500)
    return Setup(
        mlp([8, 16, 1], Tanh, rng),
        X,
        sal[:, None],
        MSE(),
        SGD(lr=0.001),
        epochs=100,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case("h-moons-relu-adam", None, "moons 2-16-16-1 ReLU He Adam batch 16", seed=40)
def h_moons_relu_adam() -> Setup:
    rng = np.random.default_rng(1801)
    X, lab = moons(rng, 400)
    return Setup(
        mlp([2, 16, 16, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        lab[:, None].astype(float),
        BCE(),
        Adam(lr=0.01),
        epochs=100,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "h-digits-tanh-momentum", None, "digits 64-32-10 tanh SGD momentum batch 16", seed=41
)
def h_digits_tanh_momentum() -> Setup:
    rng = np.random.default_rng(1802)
    X, lab = digits(rng, 600, levels=1)
    return Setup(
        mlp([64, 32, 10], Tanh, rng),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.05, momentum=0.9),
        epochs=40,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case("h-sine-tanh-adam-full", None, "sine 1-32-32-1 tanh Adam full batch", seed=42)
def h_sine_tanh_adam_full() -> Setup:
    rng = np.random.default_rng(1803)
    X, Y = sine(rng, 300)
    return Setup(
        mlp([1, 32, 32, 1], Tanh, rng),
        X,
        Y,
        MSE(),
        Adam(lr=0.01),
        epochs=500,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "h-linear-regression-20", None, "linear regression p=20 with a single Dense, SGD", seed=43
)
def h_linear_regression_20() -> Setup:
    rng = np.random.default_rng(1804)
    X, Y = gauss_reg(rng, 500, 20, linear=True)
    return Setup(
        Sequential(Dense(20, 1, seed=rng)),
        X,
        Y,
        MSE(),
        SGD(lr=0.05),
        epochs=200,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "h-lowrank-ae-tanh-sum", None, "rank-3 data in 16-d, 16-6-16 tanh AE, MSE sum, Adam", seed=44
)
def h_lowrank_ae_tanh_sum() -> Setup:
    rng = np.random.default_rng(1805)
    X = lowrank(rng, 300, 16, 3)
    return Setup(
        mlp([16, 6, 16], Tanh, rng),
        X,
        None,
        MSE(reduction="sum"),
        Adam(lr=0.003),
        epochs=300,
        batch_size=30,
        shuffle=True,
    )


@SET.fixed_case("h-poly-relu-batch1", None, "poly regression 5-64-1 ReLU SGD batch 1", seed=45)
def h_poly_relu_batch1() -> Setup:
    rng = np.random.default_rng(1806)
    X, Y = poly(rng, 200, 5)
    return Setup(
        mlp([5, 64, 1], ReLU, rng, init="he_uniform"),
        X,
        Y,
        MSE(),
        SGD(lr=0.005),
        epochs=60,
        batch_size=1,
        shuffle=True,
    )


@SET.fixed_case("h-blobs4-batch1", None, "4 Gaussian classes CE batch 1 SGD n=120", seed=46)
def h_blobs4_batch1() -> Setup:
    rng = np.random.default_rng(1807)
    lab = rng.integers(0, 4, 120)
    C = rng.normal(size=(4, 3)) * 3
    X = C[lab] + rng.normal(size=(120, 3))
    return Setup(
        mlp([3, 12, 4], ReLU, rng, init="he_uniform"),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.01),
        epochs=40,
        batch_size=1,
        shuffle=True,
    )


@SET.fixed_case(
    "h-digit-ae-bce", None, "binary 8x8 patterns autoencoded 64-16-64 sigmoid with BCE", seed=47
)
def h_digit_ae_bce() -> Setup:
    rng = np.random.default_rng(1808)
    X, _ = digits(rng, 400, levels=1)
    return Setup(
        mlp([64, 16, 64], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        X.copy(),
        BCE(),
        Adam(lr=0.01),
        epochs=100,
        batch_size=32,
        shuffle=True,
    )


@SET.fixed_case(
    "h-sine-sigmoid-sse", None, "sine 1-64-1 sigmoid hidden SGD momentum SSE batch 16", seed=48
)
def h_sine_sigmoid_sse() -> Setup:
    rng = np.random.default_rng(1809)
    X, Y = sine(rng, 400, freq=1.0)
    return Setup(
        mlp([1, 64, 1], Sigmoid, rng),
        X,
        Y,
        SSE(),
        SGD(lr=0.01, momentum=0.9),
        epochs=150,
        batch_size=16,
        shuffle=True,
    )


@SET.fixed_case(
    "h-binary-1000-relu", None, "10-d binary, 10-8-1 ReLU, SGD full batch n=1000", seed=49
)
def h_binary_1000_relu() -> Setup:
    rng = np.random.default_rng(1810)
    X = rng.normal(size=(1000, 10))
    lab = ((X[:, 0] * X[:, 1] + X[:, 2]) > 0).astype(float)[:, None]
    return Setup(
        mlp([10, 8, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        lab,
        BCE(),
        SGD(lr=0.5),
        epochs=400,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "h-linear-ae-factorisation",
    None,
    "deliberate linear AE (Dense-Dense) on rank-4 data, SSE",
    seed=50,
)
def h_linear_ae_factorisation() -> Setup:
    rng = np.random.default_rng(1811)
    X = lowrank(rng, 300, 12, 4)
    m = Sequential(Dense(12, 4, seed=rng), Dense(4, 12, seed=rng))
    return Setup(m, X, None, SSE(), SGD(lr=0.002), epochs=300, batch_size=10, shuffle=True)


@SET.fixed_case("h-tiny-n60", None, "n=60, 3-8-1 tanh, Adam", seed=51)
def h_tiny_n60() -> Setup:
    rng = np.random.default_rng(1812)
    X = rng.normal(size=(60, 3))
    Y = np.tanh(X[:, :1] - X[:, 1:2]) + 0.05 * rng.normal(size=(60, 1))
    return Setup(
        mlp([3, 8, 1], Tanh, rng),
        X,
        Y,
        MSE(),
        Adam(lr=0.02),
        epochs=300,
        batch_size=None,
        shuffle=False,
    )


@SET.fixed_case(
    "h-regression-width2-depth1", None, "width-2 hidden layer on a near-linear target", seed=52
)
def h_regression_width2_depth1() -> Setup:
    rng = np.random.default_rng(1813)
    X, Y = gauss_reg(rng, 300, 5, linear=True)
    return Setup(
        mlp([5, 2, 1], Tanh, rng),
        X,
        Y,
        MSE(),
        Adam(lr=0.01),
        epochs=200,
        batch_size=16,
        shuffle=True,
    )
