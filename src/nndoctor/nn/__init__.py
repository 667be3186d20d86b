"""The NumPy engine: dense networks with hand-derived, vectorised backprop, in float64.

Every backward rule sits beside its forward; ``docs/backprop.md`` derives them.
"""

from nndoctor.nn.init import INITIALIZERS, get_initializer
from nndoctor.nn.io import load, save
from nndoctor.nn.layers import (
    Dense,
    Identity,
    Layer,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
    mlp,
)
from nndoctor.nn.losses import BCE, MSE, SSE, CrossEntropy, Loss, get_loss
from nndoctor.nn.optim import SGD, Adam, Optimizer
from nndoctor.nn.train import Callback, History, TrainState, train, validate_data

__all__ = [
    "BCE",
    "INITIALIZERS",
    "MSE",
    "SGD",
    "SSE",
    "Adam",
    "Callback",
    "CrossEntropy",
    "Dense",
    "History",
    "Identity",
    "Layer",
    "LeakyReLU",
    "Loss",
    "Optimizer",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TrainState",
    "get_activation",
    "get_initializer",
    "get_loss",
    "load",
    "mlp",
    "save",
    "train",
    "validate_data",
]
