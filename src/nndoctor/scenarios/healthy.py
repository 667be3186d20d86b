"""Healthy networks: each trains to a good loss; the doctor must raise no error on them."""

from __future__ import annotations

import numpy as np

from nndoctor.nn.layers import Dense, Sequential, Sigmoid, Tanh, mlp
from nndoctor.nn.losses import BCE, MSE, SSE, CrossEntropy
from nndoctor.nn.optim import SGD, Adam
from nndoctor.scenarios._base import (
    Scenario,
    Setup,
    blobs,
    noisy_xor,
    smooth_regression,
    uniform_matrices,
)


def _relu_momentum(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 300, 8)
    model = mlp([8, 32, 32, 1], activation="relu", init="he_uniform", seed=rng)
    optimizer = SGD(lr=0.01, momentum=0.9)
    return Setup(model, X, Y, MSE(), optimizer, epochs=40, batch_size=10, shuffle=True)


def _regression_tanh(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    model = mlp([8, 32, 1], activation="tanh", seed=rng)
    return Setup(model, X, Y, MSE(), Adam(lr=0.01), epochs=300)


def _xor_tanh(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = noisy_xor(rng, 200)
    model = mlp([2, 8, 1], activation="tanh", output_activation="sigmoid", seed=rng)
    return Setup(model, X, Y, BCE(), Adam(lr=0.05), epochs=300)


def _three_blobs(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [70, 70, 70], 6, spread=6.0)
    model = mlp([6, 16, 3], activation="relu", init="he_uniform", seed=rng)
    optimizer = SGD(lr=0.05, momentum=0.9)
    return Setup(
        model, X, labels, CrossEntropy(), optimizer, epochs=40, batch_size=30, shuffle=True
    )


def _low_rank_autoencoder(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(200, 2))
    X = codes @ rng.normal(size=(2, 10)) / np.sqrt(2.0) + 0.05 * rng.normal(size=(200, 10))
    model = Sequential(Dense(10, 4, seed=rng), Tanh(), Dense(4, 10, seed=rng))
    return Setup(model, X, None, MSE(), Adam(lr=0.01), epochs=400)


def _logistic_regression(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [100, 100], 5, spread=6.0)
    model = Sequential(Dense(5, 1, seed=rng), Sigmoid())
    return Setup(model, X, labels[:, None].astype(np.float64), BCE(), SGD(lr=0.5), epochs=200)


def _relu_he_adam(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 6)
    model = mlp([6, 32, 32, 1], activation="relu", init="he_normal", seed=rng)
    return Setup(model, X, Y, MSE(), Adam(lr=0.005), epochs=300)


def _seed_xavier(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X = uniform_matrices(rng, 30)
    model = Sequential(Dense(8, 3, seed=rng), Sigmoid(), Dense(3, 8, seed=rng), Sigmoid())
    return Setup(model, X, None, SSE(), SGD(lr=0.05), epochs=300, batch_size=8)


HEALTHY: list[Scenario] = [
    Scenario(
        "regression-tanh",
        None,
        "Standardised 8-feature regression with a tanh ridge and a product term, 8-32-1 tanh "
        "net, Adam.",
        "textbook small regression MLP",
        _regression_tanh,
    ),
    Scenario(
        "xor-tanh",
        None,
        "Noisy XOR with a 2-8-1 tanh net, Xavier init, sigmoid output and BCE.",
        "the classic XOR exercise done right",
        _xor_tanh,
    ),
    Scenario(
        "three-blobs-softmax",
        None,
        "Three balanced Gaussian classes, 6-16-3 ReLU net on logits with cross-entropy, "
        "shuffled mini-batches of 30 and SGD with momentum.",
        "textbook multi-class classifier",
        _three_blobs,
    ),
    Scenario(
        "low-rank-autoencoder",
        None,
        "Ten features that are noisy linear mixtures of two: a 10-4-10 tanh autoencoder "
        "reconstructs them almost to the noise level.",
        "autoencoder on data that really is compressible",
        _low_rank_autoencoder,
    ),
    Scenario(
        "logistic-regression",
        None,
        "Two Gaussian classes in 5 dimensions, one Dense unit and a sigmoid, BCE, SGD.",
        "logistic regression as the smallest network",
        _logistic_regression,
    ),
    Scenario(
        "relu-he-adam",
        None,
        "6-32-32-1 ReLU regressor with He init and Adam on a smooth nonlinear target.",
        "the usual modern default: ReLU, He init, Adam",
        _relu_he_adam,
    ),
    Scenario(
        "seed-xavier",
        None,
        "The seed's autoencoder with the fix applied (Xavier init): on uniform data the loss "
        "reaches the rank-3 bound, the best any three-unit code can do; nothing is wrong.",
        "the seed after the fix; the data itself is nearly incompressible",
        _seed_xavier,
    ),
    Scenario(
        "relu-momentum",
        None,
        "The relu-killed-by-momentum regressor with SGD 0.01 and momentum 0.9: the units stay "
        "alive and the net fits the data.",
        "the dying-ReLU reports' setup with the smaller learning rate that worked",
        _relu_momentum,
    ),
]
