"""Layers of the engine. Each backward rule sits right below its forward.

Shapes: a batch ``X`` is ``(n, in_features)``, one sample per row. ``forward`` caches what
``backward`` needs; ``backward(dY)`` takes dL/dY of the layer's output, fills ``grads`` for the
layer's parameters and returns dL/dX. The formulas are derived in ``docs/backprop.md``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from nndoctor._validate import as_float_array, as_rng
from nndoctor.nn.init import Initializer, get_initializer

# what forward caches for backward: transient, never copied, pickled or kept by the doctor
CACHE_ATTRIBUTES = ("_X", "_Y", "_active")


class Layer:
    """Base class: no parameters, identity config.

    A copy (``copy.deepcopy``, ``Sequential.copy``) or a pickle carries the parameters and the
    gradients but not what ``forward`` cached for ``backward`` (activations of the last batch,
    as large as the batch): run ``forward`` again before ``backward`` on a copy.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def clear_cache(self) -> None:
        """Drop what the last ``forward`` cached for ``backward``."""
        for name in CACHE_ATTRIBUTES:
            self.__dict__.pop(name, None)

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by the cache of the last ``forward``."""
        return sum(
            int(getattr(self.__dict__[k], "nbytes", 0))
            for k in CACHE_ATTRIBUTES
            if k in self.__dict__
        )

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in CACHE_ATTRIBUTES}

    def forward(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dY: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (weights excluded)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Affine layer ``Y = X @ W.T + b``, with ``W`` of shape ``(out_features, in_features)``.

    Parameters
    ----------
    in_features, out_features : int
        Widths of the input and of the output.
    init, bias_init : str, float or callable
        Initialisers for ``W`` and ``b`` (see :mod:`nndoctor.nn.init`).
    seed : int or numpy.random.Generator
        Source of randomness for the initialisers. Pass one shared Generator to several
        layers so that they get different draws.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        init: str | float | Initializer = "xavier_uniform",
        bias_init: str | float | Initializer = "zeros",
        seed: int | np.random.Generator = 0,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"Dense {name} must be a positive integer, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init
        self.bias_init = bias_init
        rng = as_rng(seed)
        W = get_initializer(init)((self.out_features, self.in_features), rng)
        b = get_initializer(bias_init)((self.out_features,), rng)
        self.params = {"W": np.asarray(W, dtype=np.float64), "b": np.asarray(b, dtype=np.float64)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != self.in_features:
            raise ValueError(
                f"Dense({self.in_features}, {self.out_features}) expects input of shape "
                f"(n, {self.in_features}), got {X.shape}"
            )
        self._X = X
        return X @ self.params["W"].T + self.params["b"]  # (n, out)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        # dL/dW[o, i] = sum_n dY[n, o] X[n, i]; dL/db = column sums; dL/dX = dY W.
        # Written in place so that name-keyed views of the gradients stay valid across steps.
        np.matmul(dY.T, self._X, out=self.grads["W"])  # (out, in)
        np.add.reduce(dY, axis=0, out=self.grads["b"])  # (out,); skips np.sum's wrapper
        return dY @ self.params["W"]  # (n, in)

    def config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features}


class Sigmoid(Layer):
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow for any input."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        # exp(-|x|) never overflows; both branches are the same function rearranged.
        e = np.exp(-np.abs(X))
        self._Y = np.where(X >= 0, 1.0, e) / (1.0 + e)
        return self._Y

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY * self._Y * (1.0 - self._Y)  # s' = s (1 - s)


class Tanh(Layer):
    def forward(self, X: np.ndarray) -> np.ndarray:
        self._Y = np.tanh(X)
        return self._Y

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY * (1.0 - self._Y**2)  # tanh' = 1 - tanh^2


class ReLU(Layer):
    def forward(self, X: np.ndarray) -> np.ndarray:
        self._active = X > 0
        return np.where(self._active, X, 0.0)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY * self._active  # derivative 0 at x = 0, as in PyTorch


class LeakyReLU(Layer):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._active = X > 0
        return np.where(self._active, X, self.negative_slope * X)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return np.where(self._active, dY, self.negative_slope * dY)

    def config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


class Identity(Layer):
    def forward(self, X: np.ndarray) -> np.ndarray:
        return X

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY


class Softmax(Layer):
    """Row-wise softmax: each output row is a probability vector."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        Z = np.exp(X - X.max(axis=1, keepdims=True))  # shift: same result, no overflow
        self._Y = Z / Z.sum(axis=1, keepdims=True)
        return self._Y

    def backward(self, dY: np.ndarray) -> np.ndarray:
        # Jacobian-vector product of dS_j/dx_k = S_j (delta_jk - S_k), one row at a time.
        S = self._Y
        return S * (dY - (dY * S).sum(axis=1, keepdims=True))


LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Dense, Sigmoid, Tanh, ReLU, LeakyReLU, Identity, Softmax)
}

ACTIVATIONS: dict[str, type[Layer]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "identity": Identity,
    "linear": Identity,
    "softmax": Softmax,
}


def get_activation(name: str | Layer) -> Layer:
    """An activation layer from its name (``"sigmoid"``, ``"relu"``, ...) or a layer instance."""
    if isinstance(name, Layer):
        return name
    if isinstance(name, str) and name.lower() in ACTIVATIONS:
        return ACTIVATIONS[name.lower()]()
    raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")


class Sequential:
    """Layers applied in order; parameters and gradients exposed in name-keyed dicts.

    Names are ``"{index}.{param}"`` with the index of the layer, e.g. ``"0.W"``, ``"2.b"``. The
    dict values are the layers' own arrays, so an optimiser updating them in place updates the
    model.
    """

    def __init__(self, *layers: Layer) -> None:
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {type(layer).__name__}, not an nndoctor.nn layer")
        self.layers: list[Layer] = list(layers)
        dense = [(i, layer) for i, layer in enumerate(self.layers) if isinstance(layer, Dense)]
        for (i, a), (j, b) in itertools.pairwise(dense):
            if a.out_features != b.in_features:
                raise ValueError(
                    f"layer {i} outputs {a.out_features} features but layer {j} expects "
                    f"{b.in_features}"
                )

    @property
    def in_features(self) -> int | None:
        first = next((x for x in self.layers if isinstance(x, Dense)), None)
        return None if first is None else first.in_features

    @property
    def out_features(self) -> int | None:
        last = next((x for x in reversed(self.layers) if isinstance(x, Dense)), None)
        return None if last is None else last.out_features

    def forward(self, X: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            X = layer.forward(X)
        return X

    __call__ = forward

    def backward(self, dY: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dY = layer.backward(dY)
        return dY

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Forward pass on validated input: ``X`` of shape ``(n, in_features)``."""
        return self.forward(as_float_array(X, "X", ndim=2))

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()
        }

    def named_gradients(self) -> dict[str, np.ndarray]:
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()
        }

    def set_parameters(self, values: dict[str, np.ndarray]) -> None:
        """Copy ``values`` (name -> array) into the parameters, checking names and shapes."""
        params = self.named_parameters()
        unknown = sorted(set(values) - set(params))
        if unknown:
            raise KeyError(f"unknown parameter(s) {unknown}; the model has {sorted(params)}")
        for name, value in values.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != params[name].shape:
                raise ValueError(
                    f"parameter {name} has shape {params[name].shape}, got {value.shape}"
                )
            params[name][...] = value

    def zero_grad(self) -> None:
        for layer in self.layers:
            for g in layer.grads.values():
                g[...] = 0.0

    def copy(self) -> Sequential:
        """An independent deep copy (weights and gradients included, forward caches not)."""
        return copy.deepcopy(self)

    def clear_cache(self) -> None:
        """Drop every layer's forward cache (the activations of the last batch)."""
        for layer in self.layers:
            layer.clear_cache()

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by the layers' forward caches."""
        return sum(layer.cache_nbytes for layer in self.layers)

    @property
    def n_parameters(self) -> int:
        return sum(v.size for v in self.named_parameters().values())

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


def mlp(
    sizes: list[int] | tuple[int, ...],
    activation: str = "relu",
    output_activation: str = "identity",
    init: str | float | Initializer = "xavier_uniform",
    seed: int | np.random.Generator = 0,
) -> Sequential:
    """A multilayer perceptron ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    One Generator drawn from ``seed`` initialises all layers, so they differ from each other.
    ``output_activation="identity"`` adds no layer after the last Dense.
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {sizes!r}")
    rng = as_rng(seed)
    layers: list[Layer] = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(Dense(n_in, n_out, init=init, seed=rng))
        last = k == len(sizes) - 2
        act = output_activation if last else activation
        if not (last and act in ("identity", "linear")):
            layers.append(get_activation(act))
    return Sequential(*layers)
