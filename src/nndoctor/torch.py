"""The PyTorch twin of an engine model: same layers, float64 weights, losses and optimisers.

torch is imported lazily (``_extras.require("torch")``) so that ``import nndoctor.torch`` needs
NumPy only. Weights are copied, never re-initialised: the twin starts from exactly the engine's
values.
Layer ``i`` of the engine's ``Sequential`` is module ``i`` of the twin, so the engine's parameter
``"{i}.W"`` / ``"{i}.b"`` is the twin's ``"{i}.weight"`` / ``"{i}.bias"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nndoctor import _extras
from nndoctor.nn import (
    BCE,
    MSE,
    SGD,
    SSE,
    Adam,
    CrossEntropy,
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)

# torch's types cannot be named here without importing torch; these aliases say what is meant.
TorchModule = Any  # torch.nn.Module
TorchTensor = Any  # torch.Tensor
TorchOptimizer = Any  # torch.optim.Optimizer

_PARAM_NAMES = {"W": "weight", "b": "bias"}


def _torch() -> Any:
    return _extras.require("torch")


def torch_parameter_name(name: str) -> str:
    """The twin's name for the engine parameter ``name`` (``"2.W"`` -> ``"2.weight"``)."""
    index, _, key = name.rpartition(".")
    if key not in _PARAM_NAMES or not index:
        raise ValueError(f"not an engine parameter name: {name!r} (expected like '0.W' or '0.b')")
    return f"{index}.{_PARAM_NAMES[key]}"


def _linear(layer: Dense) -> TorchModule:
    torch = _torch()
    W = layer.params["W"]  # (out, in), the same layout as nn.Linear.weight
    b = layer.params["b"]  # (out,)
    module = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.array(W, dtype=np.float64)))
        module.bias.copy_(torch.from_numpy(np.array(b, dtype=np.float64)))
    return module


def to_torch(model: Sequential) -> TorchModule:
    """Build the float64 ``torch.nn.Sequential`` twin of an engine model.

    Parameters
    ----------
    model : nndoctor.nn.Sequential
        Engine model made of ``Dense``, ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``,
        ``Identity`` and ``Softmax`` layers.

    Returns
    -------
    torch.nn.Sequential
        Module ``i`` mirrors layer ``i``; ``Dense`` becomes ``nn.Linear`` with ``weight`` (out, in)
        ``= W`` and ``bias`` (out,) ``= b`` (copies, float64); ``Softmax`` is ``nn.Softmax(dim=1)``.

    Raises
    ------
    TypeError
        If ``model`` is not a ``Sequential`` or holds a layer with no torch counterpart (named by
        index and type).
    ImportError
        If torch is not installed (with the ``pip install`` that fixes it).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"to_torch expects an nndoctor.nn.Sequential, got {type(model).__name__}")
    # exact types: a subclass may change forward or backward, so its twin would be a guess
    supported = (Dense, Sigmoid, Tanh, ReLU, LeakyReLU, Identity, Softmax)
    for i, layer in enumerate(model.layers):
        if type(layer) not in supported:
            raise TypeError(
                f"layer {i} ({type(layer).__name__}) has no torch twin; supported: "
                + ", ".join(cls.__name__ for cls in supported)
            )
    nn = _torch().nn
    builders: dict[type, Callable[[Any], TorchModule]] = {
        Dense: _linear,
        Sigmoid: lambda _: nn.Sigmoid(),
        Tanh: lambda _: nn.Tanh(),
        ReLU: lambda _: nn.ReLU(),
        LeakyReLU: lambda layer: nn.LeakyReLU(negative_slope=float(layer.negative_slope)),
        Identity: lambda _: nn.Identity(),
        Softmax: lambda _: nn.Softmax(dim=1),
    }
    modules = [builders[type(layer)](layer) for layer in model.layers]
    return nn.Sequential(*modules)


def _dense_from_linear(index: int, module: TorchModule) -> Dense:
    if module.bias is None:
        raise TypeError(
            f"module {index} (Linear with bias=False) is not supported: engine Dense layers "
            "always have a bias"
        )
    layer = Dense(module.in_features, module.out_features, init="zeros")
    layer.params["W"][...] = module.weight.detach().cpu().double().numpy()
    layer.params["b"][...] = module.bias.detach().cpu().double().numpy()
    return layer


def _softmax_from_module(index: int, module: TorchModule) -> Softmax:
    # The engine's Softmax normalises over the features of one sample (axis 1 of a 2-D batch).
    if module.dim not in (1, -1):
        raise TypeError(
            f"module {index} (Softmax(dim={module.dim})) is not supported: only dim=1 or dim=-1 "
            "(over the features of each sample) matches the engine's Softmax"
        )
    return Softmax()


def from_torch(module: TorchModule) -> Sequential:
    """Build an engine model from a ``torch.nn.Sequential`` of supported layers.

    Parameters
    ----------
    module : torch.nn.Sequential
        Children of type ``Linear`` (with bias), ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``,
        ``Identity`` or ``Softmax(dim=1 or -1)``; weights of any floating dtype.

    Returns
    -------
    nndoctor.nn.Sequential
        Layer ``i`` mirrors module ``i``; weights are copied as float64.

    Raises
    ------
    TypeError
        If ``module`` is not a ``torch.nn.Sequential`` or holds an unsupported module: the error
        names the first one by index and type.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch expects a torch.nn.Sequential, got {type(module).__name__}")
    builders: dict[type, Callable[[int, Any], Any]] = {
        nn.Linear: _dense_from_linear,
        nn.Sigmoid: lambda i, m: Sigmoid(),
        nn.Tanh: lambda i, m: Tanh(),
        nn.ReLU: lambda i, m: ReLU(),
        nn.LeakyReLU: lambda i, m: LeakyReLU(negative_slope=float(m.negative_slope)),
        nn.Identity: lambda i, m: Identity(),
        nn.Softmax: _softmax_from_module,
    }
    layers = []
    for i, child in enumerate(module):
        build = builders.get(type(child))
        if build is None:
            raise TypeError(
                f"module {i} ({type(child).__name__}) is not supported by the engine; supported: "
                + ", ".join(cls.__name__ for cls in builders)
            )
        layers.append(build(i, child))
    return Sequential(*layers)


def loss_to_torch(loss: Any) -> Callable[[TorchTensor, TorchTensor], TorchTensor]:
    """The torch loss that computes what an engine loss computes.

    Parameters
    ----------
    loss : SSE, MSE, BCE or CrossEntropy
        Engine loss object.

    Returns
    -------
    callable
        ``f(prediction, target) -> scalar tensor``. ``SSE`` is ``MSELoss(reduction="sum") / 2``;
        ``MSE``, ``BCE`` and ``CrossEntropy`` are ``nn.MSELoss``, ``nn.BCELoss`` and
        ``nn.CrossEntropyLoss`` with the same reduction. CrossEntropy targets are integer labels
        of shape (n,) (see :func:`target_to_torch`).
    """
    torch = _torch()
    nn = torch.nn
    if isinstance(loss, SSE):
        mse_sum = nn.MSELoss(reduction="sum")
        return lambda prediction, target: mse_sum(prediction, target) / 2
    classes = {MSE: nn.MSELoss, BCE: nn.BCELoss, CrossEntropy: nn.CrossEntropyLoss}
    for engine_cls, torch_cls in classes.items():
        if isinstance(loss, engine_cls):
            return torch_cls(reduction=loss.reduction)
    raise TypeError(
        f"loss {type(loss).__name__} has no torch twin; supported: SSE, MSE, BCE, CrossEntropy"
    )


def target_to_torch(loss: Any, Y: np.ndarray) -> TorchTensor:
    """Targets as the torch loss of ``loss`` expects them: int64 labels for ``CrossEntropy``,
    float64 otherwise. ``Y`` has shape (n,) of labels or (n, n_outputs)."""
    torch = _torch()
    Y = np.asarray(Y)
    if isinstance(loss, CrossEntropy):
        return torch.from_numpy(np.ascontiguousarray(Y, dtype=np.int64))
    return torch.from_numpy(np.array(Y, dtype=np.float64))


def optimizer_to_torch(optimizer: SGD | Adam, torch_params: Iterable[Any]) -> TorchOptimizer:
    """A torch optimiser with the hyperparameters of an engine ``SGD`` or ``Adam``.

    Parameters
    ----------
    optimizer : SGD or Adam
        Engine optimiser; only its hyperparameters are carried over (momentum buffers and Adam
        moments are not), so build the twin's optimiser before training either side.
    torch_params : iterable of torch.nn.Parameter
        Typically ``twin.parameters()``.

    Returns
    -------
    torch.optim.SGD or torch.optim.Adam
    """
    torch = _torch()
    hp = optimizer.get_params()
    if isinstance(optimizer, SGD):
        return torch.optim.SGD(
            torch_params,
            lr=hp["lr"],
            momentum=hp["momentum"],
            dampening=hp["dampening"],
            weight_decay=hp["weight_decay"],
            nesterov=hp["nesterov"],
        )
    if isinstance(optimizer, Adam):
        return torch.optim.Adam(
            torch_params,
            lr=hp["lr"],
            betas=tuple(hp["betas"]),
            eps=hp["eps"],
            weight_decay=hp["weight_decay"],
        )
    raise TypeError(f"optimizer {type(optimizer).__name__} has no torch twin; supported: SGD, Adam")
