"""Sick networks: each has one root cause, named by its ``expected`` code.

Most are small replicas of what people posted when their network's output was always the same;
``source`` paraphrases the situation. Every build is seeded and trains in a fraction of a second.
"""

from __future__ import annotations

import numpy as np

from nndoctor.nn.init import normal, uniform
from nndoctor.nn.layers import Dense, ReLU, Sequential, Sigmoid, Softmax, Tanh, mlp
from nndoctor.nn.losses import BCE, MSE, SSE, CrossEntropy
from nndoctor.nn.optim import SGD, Adam
from nndoctor.scenarios._base import (
    Scenario,
    Setup,
    blobs,
    noisy_xor,
    rings,
    smooth_regression,
    standardize,
    uniform_matrices,
)


class ForgetfulDense(Dense):
    """A Dense layer with a deliberately WRONG backward, for the gradient-mismatch scenario.

    Its own weight and bias gradients are right, but the gradient it hands to the layers below
    ignores its weights: ``dY @ ones`` instead of ``dY @ W``. That is the seed's bug, where the
    hand-written encoder gradient never used ``W2``. Never use it for anything else.
    """

    def backward(self, dY: np.ndarray) -> np.ndarray:
        super().backward(dY)  # fills grads["W"], grads["b"] correctly
        return np.repeat(dY.sum(axis=1, keepdims=True), self.in_features, axis=1)  # (n, in)


def _seed_zero_init(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X = uniform_matrices(rng, 30)
    model = Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())
    return Setup(model, X, None, SSE(), SGD(lr=0.05), epochs=300, batch_size=8)


def _seed_gradient_bug(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X = uniform_matrices(rng, 30)
    model = Sequential(Dense(8, 3, seed=rng), Sigmoid(), ForgetfulDense(3, 8, seed=rng), Sigmoid())
    return Setup(model, X, None, SSE(), SGD(lr=0.05), epochs=300, batch_size=8)


def _xor_zero_init(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = noisy_xor(rng, 200)
    model = Sequential(Dense(2, 8, init="zeros"), Tanh(), Dense(8, 1, init="zeros"), Sigmoid())
    return Setup(model, X, Y, BCE(), Adam(lr=0.05), epochs=300)


def _constant_init_rings(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = rings(rng, 200)
    model = Sequential(
        Dense(2, 16, init=0.1, bias_init=0.1),
        Tanh(),
        Dense(16, 1, init=0.1, bias_init=0.1),
        Sigmoid(),
    )
    return Setup(model, X, Y, BCE(), Adam(lr=0.05), epochs=300)


def _positive_uniform_init(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X = rng.random((200, 64))  # 8x8 grey images in [0, 1]
    Y = (X[:, :32].mean(axis=1) > X[:, 32:].mean(axis=1)).astype(np.float64)[:, None]
    positive = uniform(0.0, 1.0)  # np.random.rand-style weights: all positive
    model = Sequential(
        Dense(64, 16, init=positive, seed=rng),
        Sigmoid(),
        Dense(16, 1, init=positive, seed=rng),
        Sigmoid(),
    )
    return Setup(model, X, Y, BCE(), SGD(lr=0.5), epochs=300)


def _dead_relu_bias(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 10)
    model = Sequential(
        Dense(10, 32, init="he_normal", bias_init=-5.0, seed=rng),
        ReLU(),
        Dense(32, 32, init="he_normal", bias_init=-5.0, seed=rng),
        ReLU(),
        Dense(32, 1, seed=rng),
    )
    return Setup(model, X, Y, MSE(), Adam(lr=0.01), epochs=300)


def _deep_sigmoid(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    model = mlp([8] + [16] * 10 + [1], activation="sigmoid", seed=rng)
    return Setup(model, X, Y, MSE(), SGD(lr=0.1), epochs=300)


def _deep_randn_init(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    model = mlp([8] + [32] * 6 + [1], activation="relu", init=normal(1.0), seed=rng)
    return Setup(model, X, Y, MSE(), SGD(lr=0.01), epochs=300)


def _sgd_lr_diverges(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    model = mlp([8, 16, 1], activation="tanh", seed=rng)
    return Setup(model, X, Y, MSE(), SGD(lr=5.0), epochs=300)


def _adam_lr_one(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    model = mlp([8, 32, 32, 1], activation="relu", init="he_uniform", seed=rng)
    return Setup(model, X, Y, MSE(), Adam(lr=1.0), epochs=200)


def _sgd_lr_tiny(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    model = mlp([8, 16, 1], activation="tanh", seed=rng)
    return Setup(model, X, Y, MSE(), SGD(lr=1e-5), epochs=300)


def _pixels(rng: np.random.Generator, n: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images as integer grey levels 0..high-1 and a binary label: brighter left half."""
    P = rng.integers(0, high, size=(n, 64))
    Y = (P[:, :32].mean(axis=1) > P[:, 32:].mean(axis=1)).astype(np.float64)[:, None]
    return P, Y


def _unscaled_pixels(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    P, Y = _pixels(rng, 200, 256)
    model = mlp([64, 16, 1], activation="sigmoid", output_activation="sigmoid", seed=rng)
    return Setup(model, P.astype(np.float64), Y, BCE(), SGD(lr=0.5), epochs=300)


def _raw_house_features(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    n = 200
    sqft, lot = rng.uniform(500, 4000, n), rng.uniform(1000, 20000, n)
    bedrooms, year = rng.integers(1, 6, n).astype(np.float64), rng.uniform(1900, 2020, n)
    X = np.column_stack([sqft, bedrooms, year, lot])
    price = (
        150 * sqft + 1e4 * bedrooms + 800 * (year - 1900) + 3 * lot + 6 * np.sqrt(sqft * lot)
    ) + rng.normal(0, 2e4, n)
    model = mlp([4, 16, 1], activation="tanh", seed=rng)
    return Setup(model, X, standardize(price[:, None]), MSE(), SGD(lr=0.01), epochs=300)


def _integer_division_pixels(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    # A scan whose grey levels never reach 255: integer division by 255 makes every input 0.
    P = rng.integers(0, 250, size=(210, 64))
    labels = np.digitize(P[:, :32].mean(axis=1) - P[:, 32:].mean(axis=1), [-5.0, 5.0])
    X = (P // 255).astype(np.float64)
    model = mlp([64, 32, 3], activation="relu", init="he_uniform", seed=rng)
    return Setup(model, X, labels, CrossEntropy(), Adam(lr=0.01), epochs=200)


def _sigmoid_output_ages(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 5))
    ages = 50.0 + 12.0 * np.tanh(X @ rng.normal(size=5) / 2.0) + rng.normal(size=200)
    model = mlp([5, 16, 1], activation="tanh", output_activation="sigmoid", seed=rng)
    return Setup(model, X, ages[:, None], MSE(), Adam(lr=0.01), epochs=300)


def _softmax_single_output(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [100, 100], 4, spread=4.0)
    model = Sequential(Dense(4, 8, seed=rng), ReLU(), Dense(8, 1, seed=rng), Softmax())
    return Setup(model, X, labels[:, None].astype(np.float64), BCE(), Adam(lr=0.01), epochs=200)


def _xor_no_activation(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = noisy_xor(rng, 200)
    model = Sequential(
        Dense(2, 8, seed=rng), Dense(8, 8, seed=rng), Dense(8, 1, seed=rng), Sigmoid()
    )
    return Setup(model, X, Y, BCE(), Adam(lr=0.05), epochs=300)


def _random_returns(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    # Today's return from the last ten: independent draws, so nothing is there to learn.
    returns = rng.standard_t(df=4, size=1010) * 0.01
    X = standardize(np.lib.stride_tricks.sliding_window_view(returns, 11)[:, :10])
    Y = standardize(returns[10:, None])
    model = mlp([10, 4, 1], activation="tanh", seed=rng)
    return Setup(model, X, Y, MSE(), Adam(lr=0.01), epochs=150)


def _rare_fraud(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [388, 12], 8, spread=2.0)
    model = mlp([8, 16, 1], activation="relu", output_activation="sigmoid", seed=rng)
    Y = labels[:, None].astype(np.float64)
    return Setup(model, X, Y, BCE(), Adam(lr=0.003), epochs=300)


def _one_hidden_unit_rings(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = rings(rng, 200)
    model = mlp([2, 1, 1], activation="tanh", output_activation="sigmoid", seed=rng)
    return Setup(model, X, Y, BCE(), Adam(lr=0.05), epochs=300)


def _pass_fail_by_integer_division(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    # Exam scores 0-99 turned into pass/fail labels with ``score // 100``: every label is 0.
    X = standardize(rng.normal(size=(300, 6)))
    scores = np.clip(60 + 15 * (X @ rng.normal(size=6)) / 2.5, 0, 99).astype(np.int64)
    Y = (scores // 100).astype(np.float64)[:, None]
    model = mlp([6, 16, 1], activation="relu", output_activation="sigmoid", seed=rng)
    return Setup(model, X, Y, BCE(), Adam(lr=0.01), epochs=200, batch_size=32, shuffle=True)


def _salaries_as_raw_targets(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    # Standardised features, but salaries (tens of thousands) as the regression target.
    X = standardize(rng.normal(size=(300, 5)))
    salary = 5e4 + 1.5e4 * np.tanh(X @ rng.normal(size=5) / 2.0) + 2e3 * rng.normal(size=300)
    model = mlp([5, 16, 1], activation="tanh", seed=rng)
    return Setup(model, X, salary[:, None], MSE(), Adam(lr=0.05), epochs=200)


def _sorted_csv_no_shuffle(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    # A CSV sorted by its label column, read in order, trained in small batches without
    # shuffling: every stretch of batches holds one class only.
    X, labels = blobs(rng, [150, 150, 150], 4, spread=2.0)
    order = np.argsort(labels, kind="stable")
    model = mlp([4, 16, 3], activation="tanh", seed=rng)
    return Setup(model, X[order], labels[order], CrossEntropy(), SGD(lr=0.1), 20, batch_size=5)


def _relu_killed_by_momentum(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 300, 8)
    # He init: every unit is alive at the start; SGD 0.1 with momentum 0.9 is an effective
    # step of 1.0 on batches of 10, which throws the second layer into the dead zone
    model = mlp([8, 32, 32, 1], activation="relu", init="he_uniform", seed=rng)
    optimizer = SGD(lr=0.1, momentum=0.9)
    return Setup(model, X, Y, MSE(), optimizer, epochs=40, batch_size=10, shuffle=True)


def _raw_sensor_readings(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 300, 6)
    # sensor readings around 10,000 with spreads of hundreds to thousands, fed raw
    X = X * np.array([800.0, 1500.0, 3000.0, 2000.0, 900.0, 5000.0]) + 1e4
    model = mlp([6, 16, 1], activation="relu", init="he_uniform", seed=rng)
    return Setup(model, X, Y, MSE(), SGD(lr=0.01), epochs=100, batch_size=16, shuffle=True)


def _bce_on_class_labels(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [60] * 10, 8, spread=6.0)
    # ten classes given to BCE as one column of labels 0..9
    model = mlp(
        [8, 32, 1], activation="relu", output_activation="sigmoid", init="he_uniform", seed=rng
    )
    Y = labels[:, None].astype(np.float64)
    return Setup(model, X, Y, BCE(), Adam(lr=0.01), epochs=60, batch_size=32, shuffle=True)


def _sorted_targets_momentum(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 400, 5)
    order = np.argsort(Y[:, 0], kind="stable")  # a table exported sorted by the target
    model = mlp([5, 16, 1], activation="tanh", seed=rng)
    optimizer = SGD(lr=0.05, momentum=0.9)
    return Setup(model, X[order], Y[order], MSE(), optimizer, epochs=30, batch_size=10)


SICK: list[Scenario] = [
    Scenario(
        "seed-zero-init",
        "symmetric-units",
        "The seed's 8-3-8 sigmoid autoencoder on uniform 8x8 matrices, every weight and bias "
        "starting at zero: the three hidden units stay identical, so the loss stops at the "
        "rank-1 bound instead of the rank-3 one (30 matrices, 300 epochs).",
        "the seed: 'why is my network's output always the same?', a sparse autoencoder "
        "initialised with zeros whose outputs all sat near 0.5",
        _seed_zero_init,
    ),
    Scenario(
        "seed-encoder-gradient-bug",
        "gradient-mismatch",
        "The seed's autoencoder with a random init but the asker's hand-written backward: the "
        "gradient reaching the encoder ignores W2 (ForgetfulDense), so the encoder follows a "
        "direction that is not the loss's gradient.",
        "the seed: hand-derived per-element gradients whose encoder term never used W2",
        _seed_gradient_bug,
    ),
    Scenario(
        "xor-zero-init",
        "symmetric-units",
        "A 2-8-1 tanh/sigmoid net for XOR with every weight set to zero: the hidden units stay "
        "identical (here all zero), only the output bias learns and the output is 0.5.",
        "XOR network built with np.zeros weights always answers 0.5 (common Q&A report)",
        _xor_zero_init,
    ),
    Scenario(
        "constant-init-rings",
        "symmetric-units",
        "Two concentric rings, a 2-16-1 tanh net whose weights and biases all start at 0.1: "
        "the sixteen hidden units get identical gradients and stay one unit, which cannot "
        "separate the rings.",
        "weights set with a constant initialiser (tf.constant_initializer(0.1)) and a network "
        "that learns no better than a single neuron (Q&A report)",
        _constant_init_rings,
    ),
    Scenario(
        "positive-uniform-init",
        "saturated-units",
        "64 inputs in [0, 1] into 16 sigmoid units whose weights are all drawn from U(0, 1): "
        "every pre-activation is about +16, every unit sits at 1 for every input.",
        "weights initialised with np.random.rand (all positive) in a sigmoid MLP on images; "
        "the prediction is the same for every image (common Q&A report)",
        _positive_uniform_init,
    ),
    Scenario(
        "dead-relu-bias",
        "dead-units",
        "A 10-32-32-1 ReLU regressor whose hidden biases start at -5: no hidden unit is ever "
        "active, no gradient flows through them, only the output bias learns the mean.",
        "ReLU network predicting a constant: all hidden activations zero after a strongly "
        "negative bias initialisation (dying-ReLU Q&A reports)",
        _dead_relu_bias,
    ),
    Scenario(
        "deep-sigmoid",
        "vanishing-gradients",
        "Ten hidden sigmoid layers of 16 units, Xavier init, plain SGD: the sigmoid's slope is "
        "at most 1/4, so the backward signal shrinks layer after layer, the first layers never "
        "learn and the output barely depends on the input.",
        "deep sigmoid MLP gives the same value for every input while a shallow one learns "
        "(common Q&A report on vanishing gradients)",
        _deep_sigmoid,
    ),
    Scenario(
        "deep-randn-init",
        "exploding-gradients",
        "Six hidden ReLU layers of 32 units with weights from N(0, 1), unscaled: activations "
        "and gradients grow about fourfold per layer, the loss starts near 1e9 (6e8 times the "
        "constant baseline: loss-at-init-high) and SGD only makes it grow.",
        "weights drawn with np.random.randn and no fan-in scaling in a deep net; the loss "
        "becomes NaN after a few steps (common Q&A report)",
        _deep_randn_init,
    ),
    Scenario(
        "sgd-lr-diverges",
        "lr-too-high",
        "A small, well-initialised tanh regressor on standardised data trained by SGD with "
        "learning rate 5: the loss oscillates upward and diverges.",
        "'loss goes to NaN' / 'loss explodes' with a learning rate copied from another problem "
        "(common Q&A report)",
        _sgd_lr_diverges,
    ),
    Scenario(
        "adam-lr-one",
        "lr-too-high",
        "An 8-32-32-1 ReLU regressor with He init trained by Adam with learning rate 1: the "
        "first steps throw every unit of the second layer into the dead zone and the output "
        "becomes the same number for every input.",
        "Keras model predicting the same value for every input, fixed by lowering Adam's "
        "learning rate from 0.1-1 to 0.001 (common Q&A report)",
        _adam_lr_one,
    ),
    Scenario(
        "sgd-lr-tiny",
        "lr-too-low",
        "The same small tanh regressor trained by SGD with learning rate 1e-5: the gradients "
        "are healthy but each step changes the weights by a few millionths; nothing is learnt.",
        "'my loss does not change at all' with a learning rate far too small (Q&A report)",
        _sgd_lr_tiny,
    ),
    Scenario(
        "unscaled-pixels",
        "unscaled-inputs",
        "Grey levels 0-255 fed unscaled into a 64-16-1 sigmoid net: every hidden unit is "
        "saturated from the first step and the prediction is the same for every image.",
        "pixels 0-255 fed unscaled into a sigmoid network; dividing by 255 fixes it (common "
        "Q&A report)",
        _unscaled_pixels,
    ),
    Scenario(
        "raw-house-features",
        "unscaled-inputs",
        "House prices (standardised) from raw square feet, bedrooms, year built and lot size, "
        "in the hundreds to tens of thousands: every tanh unit is saturated, the net cannot "
        "follow the inputs.",
        "house-price regression on unscaled features predicting nearly the same price for "
        "every house; standardising the features fixes it (common Q&A report)",
        _raw_house_features,
    ),
    Scenario(
        "integer-division-pixels",
        "constant-inputs",
        "Grey levels 0-249 turned into inputs by integer division by 255: every input is 0, "
        "the classifier can only learn the class prior.",
        "images divided by 255 with integer division, so every pixel became 0 and the model "
        "predicts the same class (common Q&A report)",
        _integer_division_pixels,
    ),
    Scenario(
        "sigmoid-output-ages",
        "targets-out-of-range",
        "Ages of about 35-65 regressed through a sigmoid output: the output cannot exceed 1, "
        "it pins at 1 for every input.",
        "regression network that always outputs 1.0: a sigmoid output layer on targets in the "
        "tens (common Q&A report)",
        _sigmoid_output_ages,
    ),
    Scenario(
        "softmax-single-output",
        "wrong-loss-for-targets",
        "A binary classifier ending in Dense(8, 1) + Softmax under BCE: softmax over one "
        "output is exactly 1 for every input, every gradient is exactly 0.",
        "Keras Dense(1, activation='softmax') with binary_crossentropy always predicts 1 "
        "(very common Q&A report)",
        _softmax_single_output,
    ),
    Scenario(
        "xor-no-activation",
        "missing-nonlinearity",
        "XOR through Dense-Dense-Dense-Sigmoid with no activation between the Dense layers: "
        "the net is affine, and the best affine map for XOR is the constant 0.5.",
        "XOR network that outputs 0.5 for every input because the hidden layers had no "
        "activation (common Q&A report)",
        _xor_no_activation,
    ),
    Scenario(
        "random-returns",
        "no-signal",
        "Tomorrow's return regressed on the last ten i.i.d. heavy-tailed returns: there is "
        "nothing to learn and predicting the mean is the right answer.",
        "stock-price network that always predicts the same value (Q&A reports about "
        "forecasting noise)",
        _random_returns,
    ),
    Scenario(
        "rare-fraud",
        "class-imbalance",
        "Binary classifier with 12 positives among 400 samples: the positives are separable "
        "enough, but the net predicts the majority class for everything.",
        "fraud / rare-disease classifier that always predicts 'no' at 97% accuracy (common "
        "Q&A report on imbalanced classes)",
        _rare_fraud,
    ),
    Scenario(
        "one-hidden-unit-rings",
        "insufficient-capacity",
        "Two concentric rings classified by a 2-1-1 tanh net: one hidden unit can only cut "
        "the plane along a line, so the output stays near the prior.",
        "tiny network (one or two hidden neurons) on circles data predicts 0.5 everywhere; a "
        "wider hidden layer solves it (Q&A and playground reports)",
        _one_hidden_unit_rings,
    ),
    Scenario(
        "pass-fail-integer-division",
        "constant-targets",
        "Pass/fail labels made from exam scores 0-99 with score // 100: every label is 0, so "
        "the only thing to learn is 'always fail', and the net learns exactly that.",
        "classifier that always outputs the same class because the labels were all 0 after "
        "an integer division (common Q&A report: labels divided like pixels)",
        _pass_fail_by_integer_division,
    ),
    Scenario(
        "salaries-as-raw-targets",
        "unscaled-targets",
        "Salaries around 50,000 regressed with a tanh net and a linear output from "
        "standardised features: the output bias crawls towards 50,000 at Adam's step size, "
        "and the loss stays near the variance of the targets' scale.",
        "regression network that predicts about the same value for every input because the "
        "targets (prices, salaries) were not scaled (common Q&A report)",
        _salaries_as_raw_targets,
    ),
    Scenario(
        "sorted-csv-no-shuffle",
        "unshuffled-data",
        "Three classes read from a CSV sorted by label and trained in batches of 5 without "
        "shuffling: each stretch of batches drags the net to one class, so the epoch loss looks "
        "fine while the final net predicts the last class for everything.",
        "network that always predicts the last class seen: the training file was sorted by "
        "label and never shuffled (common Q&A report)",
        _sorted_csv_no_shuffle,
    ),
    Scenario(
        "relu-killed-by-momentum",
        "lr-too-high",
        "An 8-32-32-1 ReLU regressor with He init (every unit alive at the start) trained by "
        "SGD 0.1 with momentum 0.9 on batches of 10: within the first steps most units of the "
        "second layer die and the output becomes a constant. The cause is the step size, not "
        "the init: a lower learning rate keeps them alive, re-initialising does not.",
        "dying-ReLU reports where the net worked with a smaller learning rate: 'a single large "
        "update pushes the bias negative', made likelier by momentum (Arnekvist et al. 2020)",
        _relu_killed_by_momentum,
    ),
    Scenario(
        "raw-sensor-readings",
        "unscaled-inputs",
        "Sensor readings around 10,000 fed raw into a 6-16-1 ReLU regressor with SGD: the loss "
        "reaches 1e30 and beyond. Lowering the learning rate or re-initialising only moves it "
        "between astronomical values; standardising the inputs cures it.",
        "regression on raw physical measurements whose loss explodes to inf/NaN; scaling the "
        "features fixes it (common Q&A report)",
        _raw_sensor_readings,
    ),
    Scenario(
        "bce-on-class-labels",
        "wrong-loss-for-targets",
        "Ten classes given to BCE as one column of labels 0..9 with one sigmoid output: the "
        "loss runs negative without bound and the output pins at 1. The fix is CrossEntropy "
        "with ten outputs, not regression.",
        "BCELoss used for a multi-class problem with integer labels (PyTorch forum and Q&A "
        "reports; the accepted answers switch to CrossEntropyLoss with class indices)",
        _bce_on_class_labels,
    ),
    Scenario(
        "sorted-targets-momentum",
        "unshuffled-data",
        "Regression rows sorted by their target, batches of 10, SGD with momentum 0.9 and no "
        "shuffling: each stretch of batches drags the output to its own level, so even the "
        "running epoch loss ends worse than the constant baseline.",
        "a table exported sorted by price and trained in file order (label-ordered training "
        "fails to converge; shuffling fixes it)",
        _sorted_targets_momentum,
    ),
]
