"""Set 3: red-team round 2's set, 46 cases at seeds 0, 1, 2.

Written from real reports before reading the doctor's rules; the rules were then tuned on it.
``build(seed)`` draws data and weights from a generator seeded by the case's base plus the seed.
"""

from __future__ import annotations

import numpy as np

from heldout._common import CaseSet, Setup, column, friedman, glyphs, mlp, spiral, zscore
from nndoctor.nn import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Softmax, Tanh
from nndoctor.nn.init import constant, normal, uniform
from nndoctor.nn.losses import BCE, MSE, CrossEntropy
from nndoctor.nn.optim import SGD, Adam

SET = CaseSet("set 3", "tuned on (round 2)")


# ---- hand-written layers with wrong gradients (the gradient-mismatch cases) ----


class WrongMaskReLU(ReLU):
    """Hand-written ReLU whose backward uses the wrong mask (x < 0 instead of x > 0)."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._X = X
        return np.maximum(X, 0.0)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY * (self._X < 0)


class SignFlipBiasDense(Dense):
    """Dense with a sign error in its bias gradient (a hand-derived -sum)."""

    def backward(self, dY: np.ndarray) -> np.ndarray:
        dX = super().backward(dY)
        self.grads["b"] = -self.grads["b"]
        return dX


@SET.case(
    "sigmoid-out-targets-0-500",
    "targets-out-of-range",
    "regression on y in [0, 500] with a sigmoid output",
)
def sigmoid_out_targets_0_500(seed: int) -> Setup:
    rng = np.random.default_rng(100 + seed)
    X, y = friedman(rng, 400)
    y = 500 * (y - y.min()) / (y.max() - y.min())
    return Setup(
        mlp([6, 32, 1], Tanh, rng, out=Sigmoid),
        zscore(X),
        column(y),
        MSE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "relu-output-standardised-targets",
    "targets-out-of-range",
    "ReLU after the last Dense on z-scored targets",
)
def relu_output_standardised_targets(seed: int) -> Setup:
    rng = np.random.default_rng(110 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 32, 1], Tanh, rng, out=ReLU),
        zscore(X),
        column(zscore(y)),
        MSE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case("tanh-out-counts", "targets-out-of-range", "tanh output for bike-rental counts 0..40")
def tanh_out_counts(seed: int) -> Setup:
    rng = np.random.default_rng(120 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 24, 1], ReLU, rng, init="he_uniform", out=Tanh),
        zscore(X),
        column(np.round(y)),
        MSE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "glyphs-255-into-tanh", "unscaled-inputs", "8x8 glyphs with pixel values 0-255 into a tanh net"
)
def glyphs_255_into_tanh(seed: int) -> Setup:
    rng = np.random.default_rng(130 + seed)
    X, lab = glyphs(rng, 500)
    return Setup(
        mlp([64, 32, 10], Tanh, rng),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.05),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "one-feature-1e6",
    "unscaled-inputs",
    "one feature a million times larger than the rest, sigmoid net",
)
def one_feature_1e6(seed: int) -> Setup:
    rng = np.random.default_rng(140 + seed)
    X = rng.normal(size=(500, 5))
    lab = (X[:, 0] + X[:, 1] * X[:, 2] - X[:, 3] > 0).astype(float)
    X[:, 4] = 1e6 * (1 + 0.1 * X[:, 4])  # e.g. a timestamp-like column
    return Setup(
        mlp([5, 16, 1], Sigmoid, rng, out=Sigmoid),
        X,
        column(lab),
        BCE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case("sgd-lr-10", "lr-too-high", "SGD learning rate 10 on a small tanh classifier")
def sgd_lr_10(seed: int) -> Setup:
    rng = np.random.default_rng(150 + seed)
    X, lab = spiral(rng, 450)
    return Setup(
        mlp([2, 32, 3], Tanh, rng),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=10.0),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "wide-512-lr-too-high",
    "lr-too-high",
    "width-512 ReLU regressor, SGD lr 0.3 (fine for width 16)",
)
def wide_512_lr_too_high(seed: int) -> Setup:
    rng = np.random.default_rng(160 + seed)
    X, y = friedman(rng, 500, p=8)
    return Setup(
        mlp([8, 512, 512, 1], ReLU, rng, init="he_uniform"),
        zscore(X),
        column(zscore(y)),
        MSE(),
        SGD(lr=0.3, momentum=0.9),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "relu-lr-1-dies",
    "lr-too-high",
    "ReLU regressor SGD lr 1 on z-scored data: spikes then all dead",
)
def relu_lr_1_dies(seed: int) -> Setup:
    rng = np.random.default_rng(170 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 32, 32, 1], ReLU, rng, init="he_uniform"),
        zscore(X),
        column(zscore(y)),
        MSE(),
        SGD(lr=1.0),
        epochs=60,
        batch_size=16,
        shuffle=True,
    )


@SET.case(
    "relu-negative-bias-init", "dead-units", "ReLU net with every hidden bias initialised to -3"
)
def relu_negative_bias_init(seed: int) -> Setup:
    rng = np.random.default_rng(180 + seed)
    X, lab = spiral(rng, 450)
    return Setup(
        mlp([2, 64, 64, 3], ReLU, rng, init="he_uniform", bias=-3.0),
        X,
        lab,
        CrossEntropy(),
        Adam(lr=0.003),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "zero-init-relu-classifier",
    "symmetric-units",
    "every weight and bias zero in a ReLU classifier",
)
def zero_init_relu_classifier(seed: int) -> Setup:
    rng = np.random.default_rng(190 + seed)
    X, lab = spiral(rng, 450)
    return Setup(
        mlp([2, 32, 32, 3], ReLU, rng, init="zeros"),
        X,
        lab,
        CrossEntropy(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "constant-init-tanh-regressor",
    "symmetric-units",
    "all weights 0.01 (a 'small constant') in a tanh regressor",
)
def constant_init_tanh_regressor(seed: int) -> Setup:
    rng = np.random.default_rng(200 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 32, 1], Tanh, rng, init=constant(0.01)),
        zscore(X),
        column(zscore(y)),
        MSE(),
        Adam(lr=0.01),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "bottleneck-1-autoencoder", "insufficient-capacity", "12-1-12 tanh autoencoder on rank-6 data"
)
def bottleneck_1_autoencoder(seed: int) -> Setup:
    rng = np.random.default_rng(210 + seed)
    Z = rng.normal(size=(500, 6))
    X = np.tanh(Z @ rng.normal(size=(6, 12)) / 2) + 0.05 * rng.normal(size=(500, 12))
    return Setup(
        mlp([12, 1, 12], Tanh, rng),
        zscore(X),
        None,
        MSE(),
        Adam(lr=0.01),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "linear-model-for-x1-times-x2", "insufficient-capacity", "y = x1*x2 fitted by one Dense layer"
)
def linear_model_for_x1_times_x2(seed: int) -> Setup:
    rng = np.random.default_rng(220 + seed)
    X = rng.normal(size=(400, 2))
    y = X[:, 0] * X[:, 1] + 0.05 * rng.normal(size=400)
    return Setup(
        Sequential(Dense(2, 1, seed=rng)),
        X,
        column(y),
        MSE(),
        Adam(lr=0.05),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "stacked-dense-no-activation-circles",
    "missing-nonlinearity",
    "concentric circles, Dense-Dense-Dense logits, CE",
)
def stacked_dense_no_activation_circles(seed: int) -> Setup:
    rng = np.random.default_rng(230 + seed)
    n = 400
    lab = rng.integers(0, 2, n)
    r = np.where(lab == 0, 0.5, 1.2) + 0.1 * rng.normal(size=n)
    t = rng.uniform(0, 2 * np.pi, n)
    X = np.column_stack([r * np.cos(t), r * np.sin(t)])
    m = Sequential(Dense(2, 32, seed=rng), Dense(32, 32, seed=rng), Dense(32, 2, seed=rng))
    return Setup(m, X, lab, CrossEntropy(), Adam(lr=0.01), epochs=60, batch_size=32, shuffle=True)


@SET.case(
    "bce-targets-minus1-plus1",
    "wrong-loss-for-targets",
    "BCE with targets in {-1, 1} (SVM-style labels)",
)
def bce_targets_minus1_plus1(seed: int) -> Setup:
    rng = np.random.default_rng(240 + seed)
    X = rng.normal(size=(400, 4))
    lab = np.where(X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=400) > 0, 1.0, -1.0)
    return Setup(
        mlp([4, 16, 1], Tanh, rng, out=Sigmoid),
        X,
        column(lab),
        BCE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "softmax-before-crossentropy",
    "wrong-loss-for-targets",
    "Softmax layer, then CrossEntropy (which expects logits)",
)
def softmax_before_crossentropy(seed: int) -> Setup:
    rng = np.random.default_rng(250 + seed)
    X, lab = glyphs(rng, 500, scale=1.0)
    return Setup(
        mlp([64, 32, 10], ReLU, rng, init="he_uniform", out=Softmax),
        X,
        lab,
        CrossEntropy(),
        Adam(lr=0.003),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "softmax-single-output-regression",
    "wrong-loss-for-targets",
    "Dense(k,1)+Softmax on a regression target: always 1.0",
)
def softmax_single_output_regression(seed: int) -> Setup:
    rng = np.random.default_rng(260 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 16, 1], Tanh, rng, out=Softmax),
        zscore(X),
        column(zscore(y)),
        MSE(),
        Adam(lr=0.01),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "row-centred-single-feature",
    "constant-inputs",
    "X - X.mean(axis=1) on a one-feature input: all zeros",
)
def row_centred_single_feature(seed: int) -> Setup:
    rng = np.random.default_rng(270 + seed)
    x = rng.uniform(0, 10, (400, 1))
    y = np.sin(x) + 0.1 * rng.normal(size=(400, 1))
    X = x - x.mean(axis=1, keepdims=True)
    return Setup(
        mlp([1, 32, 1], Tanh, rng),
        X,
        y,
        MSE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "labels-from-wrong-column",
    "constant-targets",
    "class labels read from a column that holds one value",
)
def labels_from_wrong_column(seed: int) -> Setup:
    rng = np.random.default_rng(280 + seed)
    X, _ = spiral(rng, 400)
    return Setup(
        mlp([2, 32, 3], ReLU, rng, init="he_uniform"),
        X,
        np.full(400, 2),
        CrossEntropy(),
        Adam(lr=0.01),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "house-prices-unscaled-targets-sgd",
    "unscaled-targets",
    "prices ~2e5 as raw MSE targets, tanh net, SGD lr 1e-3",
)
def house_prices_unscaled_targets_sgd(seed: int) -> Setup:
    rng = np.random.default_rng(290 + seed)
    X, y = friedman(rng, 400)
    price = 2e5 + 4e3 * y
    return Setup(
        mlp([6, 32, 1], Tanh, rng),
        zscore(X),
        column(price),
        MSE(),
        SGD(lr=1e-3),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "population-counts-adam", "unscaled-targets", "town populations ~1e4..1e5, ReLU net, Adam 1e-3"
)
def population_counts_adam(seed: int) -> Setup:
    rng = np.random.default_rng(300 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 32, 32, 1], ReLU, rng, init="he_uniform"),
        zscore(X),
        column(1e4 + 3e3 * y),
        MSE(),
        Adam(lr=1e-3),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case("random-labels-images", "no-signal", "labels shuffled independently of the glyphs")
def random_labels_images(seed: int) -> Setup:
    rng = np.random.default_rng(310 + seed)
    X, lab = glyphs(rng, 400, scale=1.0)
    return Setup(
        mlp([64, 32, 10], ReLU, rng, init="he_uniform"),
        X,
        rng.permutation(lab),
        CrossEntropy(),
        Adam(lr=0.001),
        epochs=30,
        batch_size=32,
        shuffle=True,
    )


@SET.case("coin-flip-outcome", "no-signal", "predicting a fair coin from 8 sensor readings")
def coin_flip_outcome(seed: int) -> Setup:
    rng = np.random.default_rng(320 + seed)
    X = rng.normal(size=(500, 8))
    return Setup(
        mlp([8, 16, 1], Tanh, rng, out=Sigmoid),
        X,
        column(rng.integers(0, 2, 500)),
        BCE(),
        Adam(lr=0.003),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case("imbalanced-3-class", "class-imbalance", "94/3/3 class split, overlapping minority, CE")
def imbalanced_3_class(seed: int) -> Setup:
    rng = np.random.default_rng(330 + seed)
    n = 600
    lab = rng.choice(3, n, p=[0.94, 0.03, 0.03])
    X = rng.normal(size=(n, 6)) + 1.2 * np.eye(3, 6)[lab]
    return Setup(
        mlp([6, 16, 3], ReLU, rng, init="he_uniform"),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.01),
        epochs=30,
        batch_size=32,
        shuffle=True,
    )


@SET.case("adam-lr-1e-6", "lr-too-low", "Adam with lr 1e-6 on a regressor")
def adam_lr_1e_6(seed: int) -> Setup:
    rng = np.random.default_rng(340 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 32, 32, 1], ReLU, rng, init="he_uniform"),
        zscore(X),
        column(zscore(y)),
        MSE(),
        Adam(lr=1e-6),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "tanh-6-deep-small-init",
    "vanishing-gradients",
    "6 tanh layers of 48, N(0, 0.05) init, SGD momentum",
)
def tanh_6_deep_small_init(seed: int) -> Setup:
    rng = np.random.default_rng(350 + seed)
    X, lab = spiral(rng, 450)
    return Setup(
        mlp([2, 48, 48, 48, 48, 48, 48, 3], Tanh, rng, init=normal(0.05)),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.05, momentum=0.9),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "relu-5-deep-uniform-1", "exploding-gradients", "5 ReLU layers of 64 with U(-1, 1) weights"
)
def relu_5_deep_uniform_1(seed: int) -> Setup:
    rng = np.random.default_rng(360 + seed)
    X, y = friedman(rng, 400)
    return Setup(
        mlp([6, 64, 64, 64, 64, 64, 1], ReLU, rng, init=uniform(-1.0, 1.0)),
        zscore(X),
        column(zscore(y)),
        MSE(),
        SGD(lr=1e-3),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "tanh-large-normal-init",
    "saturated-units",
    "tanh net on 20 z-scored features with N(0, 2) weights",
)
def tanh_large_normal_init(seed: int) -> Setup:
    rng = np.random.default_rng(370 + seed)
    X = rng.normal(size=(500, 20))
    lab = (np.sin(X[:, :3].sum(1)) + 0.3 * rng.normal(size=500) > 0).astype(float)
    m = Sequential(
        Dense(20, 32, init=normal(2.0), seed=rng), Tanh(), Dense(32, 1, seed=rng), Sigmoid()
    )
    return Setup(m, X, column(lab), BCE(), SGD(lr=0.05), epochs=60, batch_size=32, shuffle=True)


@SET.case(
    "relu-backward-wrong-mask",
    "gradient-mismatch",
    "custom ReLU backward passes gradient where x < 0",
)
def relu_backward_wrong_mask(seed: int) -> Setup:
    rng = np.random.default_rng(380 + seed)
    X, y = friedman(rng, 400)
    m = Sequential(
        Dense(6, 32, init="he_uniform", seed=rng), WrongMaskReLU(), Dense(32, 1, seed=rng)
    )
    return Setup(
        m,
        zscore(X),
        column(zscore(y)),
        MSE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "dense-bias-grad-sign",
    "gradient-mismatch",
    "custom Dense with a sign error in db, biased targets",
)
def dense_bias_grad_sign(seed: int) -> Setup:
    rng = np.random.default_rng(390 + seed)
    X, y = friedman(rng, 400)
    m = Sequential(SignFlipBiasDense(6, 16, seed=rng), Tanh(), SignFlipBiasDense(16, 1, seed=rng))
    return Setup(
        m, zscore(X), column(y), MSE(), SGD(lr=0.01), epochs=60, batch_size=32, shuffle=True
    )


@SET.case(
    "sorted-by-class-batch-1",
    "unshuffled-data",
    "data sorted by class, shuffle off, batch_size=1, SGD",
)
def sorted_by_class_batch_1(seed: int) -> Setup:
    rng = np.random.default_rng(400 + seed)
    X, lab = spiral(rng, 450)
    order = np.argsort(lab, kind="stable")
    return Setup(
        mlp([2, 32, 32, 3], ReLU, rng, init="he_uniform"),
        X[order],
        lab[order],
        CrossEntropy(),
        SGD(lr=0.05),
        epochs=10,
        batch_size=1,
        shuffle=False,
    )


@SET.case("h-tiny-20-points", None, "20 points, 1-16-1 tanh, Adam: fits them")
def h_tiny_20_points(seed: int) -> Setup:
    rng = np.random.default_rng(500 + seed)
    x = rng.uniform(-2, 2, (20, 1))
    return Setup(
        mlp([1, 16, 1], Tanh, rng),
        x,
        np.sin(2 * x) + 0.05 * rng.normal(size=(20, 1)),
        MSE(),
        Adam(lr=0.01),
        epochs=300,
        batch_size=None,
        shuffle=False,
    )


@SET.case(
    "h-glyphs-scaled-blank-corners", None, "glyphs /255 with always-blank corner pixels, ReLU CE"
)
def h_glyphs_scaled_blank_corners(seed: int) -> Setup:
    rng = np.random.default_rng(510 + seed)
    X, lab = glyphs(rng, 500)
    return Setup(
        mlp([64, 32, 10], ReLU, rng, init="he_uniform"),
        X / 255.0,
        lab,
        CrossEntropy(),
        Adam(lr=0.003),
        epochs=30,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-noisy-labels-30pct", None, "learnable boundary with 30% of labels flipped")
def h_noisy_labels_30pct(seed: int) -> Setup:
    rng = np.random.default_rng(520 + seed)
    X = rng.normal(size=(500, 4))
    lab = (X[:, 0] + X[:, 1] > 0).astype(float)
    flip = rng.random(500) < 0.3
    lab[flip] = 1 - lab[flip]
    return Setup(
        mlp([4, 16, 1], Tanh, rng, out=Sigmoid),
        X,
        column(lab),
        BCE(),
        Adam(lr=0.01),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-linear-regression-one-dense", None, "one Dense layer on truly linear data")
def h_linear_regression_one_dense(seed: int) -> Setup:
    rng = np.random.default_rng(530 + seed)
    X = rng.normal(size=(300, 5))
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=300)
    return Setup(
        Sequential(Dense(5, 1, seed=rng)),
        X,
        column(y),
        MSE(),
        SGD(lr=0.05),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-wide-256-adam", None, "width-256 ReLU on a sine, Adam 1e-3")
def h_wide_256_adam(seed: int) -> Setup:
    rng = np.random.default_rng(540 + seed)
    x = rng.uniform(-3, 3, (400, 1))
    return Setup(
        mlp([1, 256, 1], ReLU, rng, init="he_uniform"),
        x,
        np.sin(2 * x),
        MSE(),
        Adam(lr=1e-3),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-leaky-deep-he", None, "4 LeakyReLU layers, He init, Adam, Friedman regression")
def h_leaky_deep_he(seed: int) -> Setup:
    rng = np.random.default_rng(550 + seed)
    X, y = friedman(rng, 500)
    return Setup(
        mlp([6, 32, 32, 32, 32, 1], LeakyReLU, rng, init="he_uniform"),
        zscore(X),
        column(zscore(y)),
        MSE(),
        Adam(lr=0.002),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-imbalanced-80-20-learnable", None, "80/20 split, separable enough, BCE")
def h_imbalanced_80_20_learnable(seed: int) -> Setup:
    rng = np.random.default_rng(560 + seed)
    n = 500
    lab = (rng.random(n) < 0.2).astype(float)
    X = rng.normal(size=(n, 5)) + 2.0 * lab[:, None] * np.array([1, 1, 0, 0, 0])
    return Setup(
        mlp([5, 16, 1], ReLU, rng, init="he_uniform", out=Sigmoid),
        X,
        column(lab),
        BCE(),
        Adam(lr=0.01),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-multi-output-tanh", None, "3 correlated targets from 6 inputs, tanh, SGD momentum")
def h_multi_output_tanh(seed: int) -> Setup:
    rng = np.random.default_rng(570 + seed)
    X, y = friedman(rng, 400)
    Y = np.column_stack([y, np.sin(3 * X[:, 0]), X[:, 1] * X[:, 2]])
    return Setup(
        mlp([6, 32, 3], Tanh, rng),
        zscore(X),
        zscore(Y),
        MSE(),
        SGD(lr=0.05, momentum=0.9),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-relu-autoencoder-rank5", None, "20-8-20 ReLU autoencoder on rank-5 data")
def h_relu_autoencoder_rank5(seed: int) -> Setup:
    rng = np.random.default_rng(580 + seed)
    X = rng.normal(size=(500, 5)) @ rng.normal(size=(5, 20)) / np.sqrt(5) + 0.05 * rng.normal(
        size=(500, 20)
    )
    return Setup(
        mlp([20, 8, 20], ReLU, rng, init="he_uniform"),
        X,
        None,
        MSE(),
        Adam(lr=0.005),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-sigmoid-2-hidden-momentum", None, "2 sigmoid hidden layers, SGD momentum, spiral")
def h_sigmoid_2_hidden_momentum(seed: int) -> Setup:
    rng = np.random.default_rng(590 + seed)
    X, lab = spiral(rng, 450, noise=0.1)
    return Setup(
        mlp([2, 32, 32, 3], Sigmoid, rng),
        X,
        lab,
        CrossEntropy(),
        SGD(lr=0.5, momentum=0.9),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "h-proportion-sigmoid-out",
    None,
    "predicting a proportion in (0,1) with a sigmoid output and MSE",
)
def h_proportion_sigmoid_out(seed: int) -> Setup:
    rng = np.random.default_rng(600 + seed)
    X = rng.normal(size=(400, 4))
    p = 1 / (1 + np.exp(-(X[:, 0] - X[:, 1] ** 2 + 0.5)))
    return Setup(
        mlp([4, 16, 1], Tanh, rng, out=Sigmoid),
        X,
        column(p),
        MSE(),
        Adam(lr=0.01),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "h-full-batch-sgd-moons-long", None, "full-batch SGD lr 0.5, 400 epochs, tanh, two crescents"
)
def h_full_batch_sgd_moons_long(seed: int) -> Setup:
    rng = np.random.default_rng(610 + seed)
    n = 300
    lab = rng.integers(0, 2, n)
    t = rng.uniform(0, np.pi, n)
    X = np.column_stack(
        [np.where(lab, 1 - np.cos(t), np.cos(t)), np.where(lab, 0.5 - np.sin(t), np.sin(t))]
    )
    X += 0.1 * rng.normal(size=(n, 2))
    return Setup(
        mlp([2, 16, 1], Tanh, rng, out=Sigmoid),
        X,
        column(lab),
        BCE(),
        SGD(lr=0.5),
        epochs=400,
        batch_size=None,
        shuffle=False,
    )


@SET.case("h-100-features-sparse-signal", None, "100 z-scored features, 5 matter, ReLU, Adam")
def h_100_features_sparse_signal(seed: int) -> Setup:
    rng = np.random.default_rng(620 + seed)
    X = rng.normal(size=(600, 100))
    y = (
        X[:, :5] @ np.array([1.0, -1, 0.5, 2, -0.5])
        + 0.5 * np.tanh(X[:, 5] * X[:, 6])
        + 0.2 * rng.normal(size=600)
    )
    return Setup(
        mlp([100, 32, 1], ReLU, rng, init="he_uniform"),
        X,
        column(zscore(y)),
        MSE(),
        Adam(lr=0.001),
        epochs=40,
        batch_size=32,
        shuffle=True,
    )


@SET.case(
    "h-softmax-mse-onehot", None, "one-hot float targets, softmax output, MSE (unusual but learns)"
)
def h_softmax_mse_onehot(seed: int) -> Setup:
    rng = np.random.default_rng(630 + seed)
    X, lab = spiral(rng, 450, noise=0.1)
    return Setup(
        mlp([2, 32, 3], Tanh, rng, out=Softmax),
        X,
        np.eye(3)[lab],
        MSE(),
        Adam(lr=0.01),
        epochs=80,
        batch_size=32,
        shuffle=True,
    )


@SET.case("h-heavy-tail-noise-regression", None, "regression with Student-t(2) noise, tanh, Adam")
def h_heavy_tail_noise_regression(seed: int) -> Setup:
    rng = np.random.default_rng(640 + seed)
    X, y = friedman(rng, 500)
    y = y + 2.0 * rng.standard_t(2, 500)
    return Setup(
        mlp([6, 32, 1], Tanh, rng),
        zscore(X),
        column((y - np.median(y)) / 5),
        MSE(),
        Adam(lr=0.005),
        epochs=60,
        batch_size=32,
        shuffle=True,
    )
