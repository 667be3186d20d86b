"""PyTorch scenarios: small sick and healthy ``torch.nn.Module`` runs, and a plain training loop.

``TORCH_SICK`` holds one scenario per PyTorch training-loop fault (gradients never zeroed, a loss
cut from the graph, frozen or unoptimised parameters, an ``(N, 1)`` prediction against an
``(N,)`` target, an activation the loss applies again, training in ``eval()`` mode, a schedule
that drives the learning rate to 0, a head swapped after the optimizer was built, an LSTM that
reads the batch as time) and the common causes in PyTorch form (the seed's zero init
in float64 and float32, a learning rate that kills the ReLUs, unscaled inputs and targets,
...). ``TORCH_HEALTHY`` holds networks that train well (a CNN with BatchNorm, an LSTM, a tiny
transformer, functional activations, Dropout, bfloat16, the seed with Xavier init).

Each ``build(seed)`` returns a :class:`~nndoctor.scenarios.Setup` whose ``training`` is the
keyword arguments of ``nndoctor.diagnose`` (``options`` carries ``zero_grad`` and
``scheduler``); the optimizer is a factory ``params -> torch.optim.Optimizer``. torch is
imported inside the builders only, so ``import nndoctor.scenarios`` needs NumPy alone.
:func:`run_plain_loop` trains a setup the way a user's script does, fault included, optionally
under ``nndoctor.watch``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor import _extras
from nndoctor.scenarios._base import (
    Scenario,
    Setup,
    blobs,
    noisy_xor,
    smooth_regression,
    standardize,
    uniform_matrices,
)


def _torch() -> Any:
    return _extras.require("torch")


def _modules() -> Any:
    """The scenarios' custom module classes (importing them imports torch)."""
    _torch()
    from nndoctor.scenarios import _torch_modules

    return _torch_modules


def _mlp(sizes: list[int], act: str, dtype: Any, out: str | None = None) -> Any:
    """``nn.Sequential`` of Linear layers of ``sizes`` with ``nn.<act>()`` between them and
    ``nn.<out>()`` (if any) after the last, every parameter in ``dtype`` (torch's default init,
    drawn from the global generator the builder seeded)."""
    nn = _torch().nn
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1], dtype=dtype))
        if k < len(sizes) - 2:
            layers.append(getattr(nn, act)())
    if out is not None:
        layers.append(getattr(nn, out)(dim=1) if out == "Softmax" else getattr(nn, out)())
    return nn.Sequential(*layers)


def _sse_half(output: Any, target: Any) -> Any:
    """The seed's loss: half the sum of squared errors over the batch (one 8x8 matrix)."""
    return 0.5 * ((output - target) ** 2).sum()


def _detached_mse(output: Any, target: Any) -> Any:
    """MSE on a detached prediction, made to "require grad" again so that ``backward`` runs:
    the workaround people apply to 'element 0 of tensors does not require grad'. The loss no
    longer depends on any parameter."""
    F = _torch().nn.functional
    return F.mse_loss(output.detach(), target).requires_grad_()


# ------------------------------------------------------------------------------ sick: the loop


def _no_zero_grad(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    torch.manual_seed(seed)
    model = _mlp([8, 32, 1], "Tanh", torch.float64)
    return Setup(
        model,
        X,
        Y,
        torch.nn.MSELoss(),
        lambda p: torch.optim.SGD(p, lr=0.02),
        epochs=20,
        batch_size=20,
        options={"zero_grad": False},
    )


def _detached_loss(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    torch.manual_seed(seed)
    model = _mlp([8, 32, 1], "Tanh", torch.float64)
    return Setup(model, X, Y, _detached_mse, lambda p: torch.optim.Adam(p, lr=0.01), epochs=100)


def _weights_frozen(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    torch.manual_seed(seed)
    model = _mlp([8, 32, 32, 1], "ReLU", torch.float64)
    for name, p in model.named_parameters():
        if "weight" in name:  # meant for the normalisation layers' weights only
            p.requires_grad_(False)
    return Setup(
        model, X, Y, torch.nn.MSELoss(), lambda p: torch.optim.Adam(p, lr=0.01), epochs=100
    )


def _optimizer_skips_hidden(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = noisy_xor(rng, 200)
    torch.manual_seed(seed)
    model = _mlp([2, 8, 1], "Tanh", torch.float64)
    # The factory keeps only the output layer's weight and bias (parameters 2 and 3).
    return Setup(
        model,
        X,
        Y,
        torch.nn.BCEWithLogitsLoss(),
        lambda p: torch.optim.Adam(list(p)[2:], lr=0.05),
        epochs=150,
    )


def _target_shape_broadcast(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 5)
    torch.manual_seed(seed)
    model = _mlp([5, 16, 1], "Tanh", torch.float64)
    # Y[:, 0] has shape (200,) against the model's (200, 1): MSELoss broadcasts to (200, 200).
    return Setup(
        model, X, Y[:, 0], torch.nn.MSELoss(), lambda p: torch.optim.Adam(p, lr=0.01), epochs=100
    )


def _softmax_into_cross_entropy(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [70, 70, 70], 6, spread=6.0)
    torch.manual_seed(seed)
    model = _mlp([6, 16, 3], "ReLU", torch.float64, out="Softmax")
    return Setup(
        model,
        X,
        labels,
        torch.nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=30,
        batch_size=30,
        shuffle=True,
    )


def _sigmoid_into_bce_with_logits(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [100, 100], 5, spread=4.0)
    torch.manual_seed(seed)
    model = _mlp([5, 8, 1], "Tanh", torch.float64, out="Sigmoid")
    Y = labels[:, None].astype(np.float64)
    return Setup(
        model,
        X,
        Y,
        torch.nn.BCEWithLogitsLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=100,
    )


def _batchnorm_eval_mode(seed: int) -> Setup:
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    torch.manual_seed(seed)
    dt = torch.float64
    model = nn.Sequential(
        nn.Linear(8, 32, dtype=dt),
        nn.BatchNorm1d(32, dtype=dt),
        nn.ReLU(),
        nn.Linear(32, 32, dtype=dt),
        nn.BatchNorm1d(32, dtype=dt),
        nn.ReLU(),
        nn.Linear(32, 1, dtype=dt),
    )
    model.eval()  # left in eval mode by an evaluation before training
    return Setup(
        model,
        X,
        Y,
        nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=20,
        batch_size=20,
        shuffle=True,
    )


def _steplr_collapse(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    torch.manual_seed(seed)
    model = _mlp([8, 16, 1], "Tanh", torch.float64)
    return Setup(
        model,
        X,
        Y,
        torch.nn.MSELoss(),
        lambda p: torch.optim.SGD(p, lr=0.05),
        epochs=30,
        batch_size=20,
        options={"scheduler": lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.01)},
    )


def _head_swapped_after_optimizer(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [70, 70, 70], 6, spread=6.0)
    torch.manual_seed(seed)
    model = _mlp([6, 16, 2], "Tanh", torch.float64)  # built for an earlier 2-class task
    held = list(model.parameters())  # the optimizer's parameters, taken before the swap
    for p in model.parameters():  # fine-tune the head only: freeze the body ...
        p.requires_grad_(False)
    model[2] = torch.nn.Linear(16, 3, dtype=torch.float64)  # ... and swap in a 3-class head
    return Setup(
        model,
        X,
        labels,
        torch.nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(held, lr=0.01),
        epochs=30,
        batch_size=30,
        shuffle=True,
    )


def _lstm_batch_as_time(seed: int) -> Setup:
    """The healthy LSTM's run with its LSTM left at ``batch_first=False``."""
    return _lstm_sequence(seed, batch_first=False)


# ------------------------------------------------------------------------------ sick: common


def _seed_zero_init(dtype_name: str) -> Any:
    def build(seed: int) -> Setup:
        torch = _torch()
        nn = torch.nn
        dt = getattr(torch, dtype_name)
        rng = np.random.default_rng(seed)
        X = uniform_matrices(rng, 100)  # (800, 8): one 8x8 matrix per batch of 8 rows
        model = nn.Sequential(
            nn.Linear(8, 3, dtype=dt), nn.Sigmoid(), nn.Linear(3, 8, dtype=dt), nn.Sigmoid()
        )
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        return Setup(
            model,
            torch.as_tensor(X, dtype=dt),
            None,
            _sse_half,
            lambda p: torch.optim.SGD(p, lr=0.05),
            epochs=10,
            batch_size=8,
        )

    return build


def _adam_lr_one(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    torch.manual_seed(seed)
    model = _mlp([8, 32, 32, 1], "ReLU", torch.float64)
    return Setup(model, X, Y, torch.nn.MSELoss(), lambda p: torch.optim.Adam(p, lr=1.0), epochs=100)


def _unscaled_pixels(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    P = rng.integers(0, 256, size=(200, 64))  # 8x8 grey levels 0..255, never divided by 255
    Y = (P[:, :32].mean(axis=1) > P[:, 32:].mean(axis=1)).astype(np.float64)[:, None]
    torch.manual_seed(seed)
    model = _mlp([64, 16, 1], "Sigmoid", torch.float64, out="Sigmoid")
    return Setup(
        model,
        P.astype(np.float64),
        Y,
        torch.nn.BCELoss(),
        lambda p: torch.optim.SGD(p, lr=0.5),
        epochs=100,
    )


def _raw_salaries(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X = standardize(rng.normal(size=(300, 5)))
    salary = 5e4 + 1.5e4 * np.tanh(X @ rng.normal(size=5) / 2.0) + 2e3 * rng.normal(size=300)
    torch.manual_seed(seed)
    model = _mlp([5, 16, 1], "Tanh", torch.float64)
    return Setup(
        model,
        X,
        salary[:, None],
        torch.nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=0.05),
        epochs=100,
    )


def _sigmoid_output_ages(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 5))
    ages = 50.0 + 12.0 * np.tanh(X @ rng.normal(size=5) / 2.0) + rng.normal(size=200)
    torch.manual_seed(seed)
    model = _mlp([5, 16, 1], "Tanh", torch.float64, out="Sigmoid")
    return Setup(
        model,
        X,
        ages[:, None],
        torch.nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=100,
    )


def _forward_without_activation(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = noisy_xor(rng, 200)
    torch.manual_seed(seed)
    model = _modules().ForgottenActivation((2, 8, 8, 1), torch.float64)
    return Setup(
        model, X, Y, torch.nn.BCELoss(), lambda p: torch.optim.Adam(p, lr=0.05), epochs=150
    )


def _integer_division_pixels(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    P = rng.integers(0, 250, size=(210, 64))  # a scan whose grey levels never reach 255
    labels = np.digitize(P[:, :32].mean(axis=1) - P[:, 32:].mean(axis=1), [-5.0, 5.0])
    torch.manual_seed(seed)
    model = _mlp([64, 32, 3], "ReLU", torch.float64)
    return Setup(
        model,
        (P // 255).astype(np.float64),  # integer division: every input is 0
        labels,
        torch.nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=60,
    )


def _pass_fail_one_class(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X = standardize(rng.normal(size=(300, 6)))
    scores = np.clip(60 + 15 * (X @ rng.normal(size=6)) / 2.5, 0, 99).astype(np.int64)
    Y = (scores // 100).astype(np.float64)[:, None]  # every label 0
    torch.manual_seed(seed)
    model = _mlp([6, 16, 1], "ReLU", torch.float64, out="Sigmoid")
    return Setup(
        model,
        X,
        Y,
        torch.nn.BCELoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=30,
        batch_size=32,
        shuffle=True,
    )


def _random_returns(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    returns = rng.standard_t(df=4, size=610) * 0.01  # i.i.d.: nothing to learn
    X = standardize(np.lib.stride_tricks.sliding_window_view(returns, 11)[:, :10])
    Y = standardize(returns[10:, None])
    torch.manual_seed(seed)
    model = _mlp([10, 4, 1], "Tanh", torch.float64)
    return Setup(
        model, X, Y, torch.nn.MSELoss(), lambda p: torch.optim.Adam(p, lr=0.01), epochs=100
    )


# ------------------------------------------------------------------------------ healthy


def _cnn_batchnorm(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(3, 8, 8))
    labels = rng.integers(0, 3, 240)
    X = templates[labels] + 0.8 * rng.normal(size=(240, 8, 8))
    torch.manual_seed(seed)
    model = _modules().SmallCNN(4, 3, torch.float64)
    return Setup(
        model,
        X[:, None, :, :],  # (240, 1, 8, 8)
        labels,
        torch.nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=10,
        batch_size=32,
        shuffle=True,
    )


def _lstm_sequence(seed: int, batch_first: bool = True) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 8, 1))
    Y = standardize(X[:, -1, :] + 0.5 * X[:, -3, :])  # remember the last few steps
    torch.manual_seed(seed)
    model = _modules().LastStepLSTM(1, 16, torch.float64, batch_first=batch_first)
    return Setup(
        model,
        X,
        Y,
        torch.nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=10,
        batch_size=20,
        shuffle=True,
    )


def _tiny_transformer(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 8, 1)) + rng.choice([-0.5, 0.5], size=(200, 1, 1))
    labels = (X.mean(axis=(1, 2)) > 0).astype(np.int64)
    torch.manual_seed(seed)
    model = _modules().TinyTransformer(16, 2, torch.float64)
    return Setup(
        model,
        X,
        labels,
        torch.nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.005),
        epochs=8,
        batch_size=20,
        shuffle=True,
    )


def _functional_relu(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 6)
    torch.manual_seed(seed)
    model = _modules().FunctionalMLP((6, 32, 32, 1), torch.float64)
    return Setup(
        model, X, Y, torch.nn.MSELoss(), lambda p: torch.optim.Adam(p, lr=0.005), epochs=150
    )


def _dropout_mlp(seed: int) -> Setup:
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [70, 70, 70], 6, spread=6.0)
    torch.manual_seed(seed)
    dt = torch.float64
    model = nn.Sequential(
        nn.Linear(6, 32, dtype=dt), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3, dtype=dt)
    )
    return Setup(
        model,
        X,
        labels,
        nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=30,
        batch_size=30,
        shuffle=True,
    )


def _bfloat16_mlp(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = smooth_regression(rng, 200, 8)
    torch.manual_seed(seed)
    dt = torch.bfloat16
    model = _mlp([8, 32, 1], "Tanh", dt)
    return Setup(
        model,
        torch.as_tensor(X, dtype=dt),
        torch.as_tensor(Y, dtype=dt),
        torch.nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=150,
    )


def _all_padding_row(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    n, length, vocabulary = 160, 10, 20
    lengths = rng.integers(3, length + 1, size=n)
    tokens = rng.integers(1, vocabulary, size=(n, length))
    tokens[np.arange(length) >= lengths[:, None]] = 0  # padding after each sentence
    labels = (tokens[:, 0] >= vocabulary // 2).astype(np.int64)  # the first word decides
    tokens[rng.integers(n)] = 0  # an empty sentence: every position is padding
    torch.manual_seed(seed)
    model = _modules().PaddedTagger(vocabulary, 16, 2, torch.float32)
    return Setup(
        model,
        tokens,
        labels,
        torch.nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        epochs=5,
        batch_size=16,
        shuffle=True,
    )


def _focal_log_zero(seed: int) -> Setup:
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(seed)
    X, labels = blobs(rng, [100, 100], 6, spread=4.0)
    # two missing readings, coded as +-999: one of them drives the logit far past 17
    X[rng.choice(len(X), size=2, replace=False), 0] = [999.0, -999.0]
    Y = labels.astype(np.float64)[:, None]
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 1))
    return Setup(
        model,
        X,
        Y,
        _modules().binary_focal_loss,
        lambda p: torch.optim.SGD(p, lr=0.01),
        epochs=5,
        batch_size=20,
        shuffle=True,
    )


def _seed_xavier(seed: int) -> Setup:
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(seed)
    X = uniform_matrices(rng, 100)
    torch.manual_seed(seed)
    dt = torch.float64
    model = nn.Sequential(
        nn.Linear(8, 3, dtype=dt), nn.Sigmoid(), nn.Linear(3, 8, dtype=dt), nn.Sigmoid()
    )
    with torch.no_grad():
        for layer in (model[0], model[2]):
            nn.init.xavier_uniform_(layer.weight)
            layer.bias.zero_()
    # lr 0.2 rather than the seed's 0.05: the same end point in 10 epochs instead of 30.
    return Setup(
        model, X, None, _sse_half, lambda p: torch.optim.SGD(p, lr=0.2), epochs=10, batch_size=8
    )


TORCH_SICK: list[Scenario] = [
    Scenario(
        "torch-no-zero-grad",
        "stale-gradients",
        "An 8-32-1 tanh regressor trained by SGD (lr 0.02, batches of 20) in a loop that never "
        "calls optimizer.zero_grad(): each step applies the sum of every gradient so far, the "
        "steps grow and the loss climbs a hundredfold.",
        "'loss goes up and down and never converges': the training loop has no "
        "optimizer.zero_grad() (GitHub issues on many training scripts, forum threads)",
        _no_zero_grad,
    ),
    Scenario(
        "torch-detached-loss",
        "detached-graph",
        "The loss is computed on output.detach() and then marked requires_grad_() so that "
        "backward() runs: no parameter gets a gradient and the loss never moves.",
        "'element 0 of tensors does not require grad', silenced with loss.requires_grad = True; "
        "then the loss does not decline and the accuracy stays at 0 (GitHub issue reports)",
        _detached_loss,
    ),
    Scenario(
        "torch-weights-frozen",
        "frozen-parameters",
        "An 8-32-32-1 ReLU regressor whose every Linear weight has requires_grad=False (a name "
        "filter on 'weight' meant for other layers): only the biases train, the fit barely "
        "improves on the mean.",
        "freezing layers with a requires_grad=False loop that caught more parameters than "
        "intended; the model does not learn (forum reports)",
        _weights_frozen,
    ),
    Scenario(
        "torch-optimizer-skips-hidden",
        "frozen-parameters",
        "A 2-8-1 tanh classifier of noisy XOR whose optimizer was built on the output layer's "
        "parameters only: the hidden layer keeps its random, nearly linear init, its gradients "
        "are computed and thrown away, and the loss stays 100 times above what the same net "
        "reaches with every parameter optimised.",
        "optimizer built from one sub-module's parameters (or another model's) while the whole "
        "model is trained; 'loss remains the same' (GitHub and forum reports)",
        _optimizer_skips_hidden,
    ),
    Scenario(
        "torch-target-shape-broadcast",
        "loss-shape-broadcast",
        "A 5-16-1 tanh regressor whose (200, 1) prediction meets a (200,) target in MSELoss: "
        "the difference broadcasts to (200, 200), whose mean is smallest for a constant "
        "prediction at the targets' mean.",
        "'Using a target size that is different to the input size' warning ignored; the model "
        "predicts the same value for every input (PyTorch forum reports)",
        _target_shape_broadcast,
    ),
    Scenario(
        "torch-softmax-into-cross-entropy",
        "double-activation",
        "Three Gaussian classes through a 6-16-3 ReLU net ending in nn.Softmax, trained with "
        "nn.CrossEntropyLoss, which applies log-softmax itself: the loss cannot go below "
        "about 0.55 and its gradients are squashed.",
        "'Cross entropy loss is not decreasing' with a softmax layer before CrossEntropyLoss "
        "(PyTorch forum, very common)",
        _softmax_into_cross_entropy,
    ),
    Scenario(
        "torch-sigmoid-into-bce-with-logits",
        "double-activation",
        "A binary classifier whose output goes through nn.Sigmoid before nn.BCEWithLogitsLoss: "
        "the loss sees probabilities in [0.5, 0.73] only and cannot fit the negatives.",
        "sigmoid applied before BCEWithLogitsLoss; the loss does not converge (GitHub pull "
        "requests and issues)",
        _sigmoid_into_bce_with_logits,
    ),
    Scenario(
        "torch-batchnorm-eval-mode",
        "eval-mode-training",
        "An MLP with BatchNorm1d trained while in eval() mode: BatchNorm normalises with its "
        "initial running statistics (mean 0, variance 1) and never updates them, so it does "
        "not normalise at all.",
        "model.eval() called for a validation pass and model.train() never called again "
        "(GitHub issues and pull requests on training scripts)",
        _batchnorm_eval_mode,
    ),
    Scenario(
        "torch-steplr-collapse",
        "lr-schedule-collapse",
        "An 8-16-1 tanh regressor with SGD lr 0.05 and StepLR(step_size=1, gamma=0.01): after "
        "two epochs the learning rate is 5e-6 and the loss stops where the first epoch left it.",
        "a StepLR meant per epoch stepped every batch, or with a tiny step size: the learning "
        "rate becomes 0 after a few steps and the model does not train (GitHub issues)",
        _steplr_collapse,
    ),
    Scenario(
        "torch-head-swapped-after-optimizer",
        "optimizer-model-mismatch",
        "Fine-tuning a 6-16-2 tanh classifier on 3 classes: the body is frozen and the head "
        "replaced by a new 3-class Linear after the optimizer was built, so the optimizer steps "
        "the old head (no longer used) and never the new one: nothing trains.",
        "'freeze the body and swap the classification head' with the optimizer built before the "
        "swap (GitHub pull requests on fine-tuning scripts, forum threads)",
        _head_swapped_after_optimizer,
    ),
    Scenario(
        "torch-lstm-batch-as-time",
        "batch-mixing",
        "The healthy LSTM regressor with nn.LSTM's default batch_first=False fed (batch, time, "
        "features): the LSTM runs along the batch, so each sample's output depends on the "
        "samples before it in the batch and on its own last step only; the loss stops near "
        "0.2, the share of the target the third-last step explains.",
        "LSTM given batch-first data without batch_first=True; loss stuck, accuracy near chance "
        "(GitHub issues on tutorials, forum threads)",
        _lstm_batch_as_time,
    ),
    Scenario(
        "torch-seed-zero-init-float64",
        "symmetric-units",
        "The seed's 8-3-8 sigmoid autoencoder in PyTorch, float64, every weight and bias zero, "
        "SSE/2 per 8x8 matrix, SGD lr 0.05 one matrix per step (100 matrices, 10 epochs): the "
        "three hidden units stay identical.",
        "the seed: 'why is my network's output always the same?', the answer's own PyTorch "
        "version with nn.Parameter zeros",
        _seed_zero_init("float64"),
    ),
    Scenario(
        "torch-seed-zero-init-float32",
        "symmetric-units",
        "The same zero-initialised seed autoencoder in float32.",
        "the seed, in PyTorch's default precision",
        _seed_zero_init("float32"),
    ),
    Scenario(
        "torch-all-padding-row",
        "nan-source",
        "Sentences of token ids, padded with 0 and classified by one self-attention layer "
        "whose key_padding_mask hides the padding; one sentence is empty (all padding), so its "
        "attention row masks every key and its softmax is 0/0: the loss is NaN at the first "
        "step that meets it, at lr 1e-3.",
        "issue 20: 'a NaN at step 1 caused by an all-padding row in key_padding_mask, blamed on "
        "the learning rate'",
        _all_padding_row,
    ),
    Scenario(
        "torch-focal-log-zero",
        "nan-source",
        "Two Gaussian blobs, a logistic regression and a hand-written binary focal loss that "
        "takes log(p) and log(1 - p) of sigmoid outputs as they are; two rows hold a missing "
        "reading coded as +-999, a logit goes far beyond 17, p is exactly 1 in float32 and "
        "log(1 - p) = -inf: the loss is non-finite at the first step that meets it, at lr 0.01.",
        "issue 20: 'a NaN from log(0) in a hand-written focal loss, blamed on the learning rate'",
        _focal_log_zero,
    ),
    Scenario(
        "torch-adam-lr-one",
        "lr-too-high",
        "An 8-32-32-1 ReLU regressor trained by Adam with lr 1.0: the first steps throw the "
        "hidden units into the dead zone and the output becomes one number.",
        "PyTorch model predicting the same value for every input until Adam's learning rate is "
        "lowered to 1e-3 (forum reports)",
        _adam_lr_one,
    ),
    Scenario(
        "torch-unscaled-pixels",
        "unscaled-inputs",
        "Grey levels 0-255 fed unscaled into a 64-16-1 sigmoid net: the hidden units saturate "
        "from the first step and every image gets the same prediction.",
        "images loaded as raw 0-255 tensors without ToTensor()/255 scaling (common report)",
        _unscaled_pixels,
    ),
    Scenario(
        "torch-raw-salaries",
        "unscaled-targets",
        "Salaries around 50,000 regressed by a tanh net with a linear output: the output bias "
        "crawls towards 50,000 at Adam's step size and the loss stays near the targets' scale.",
        "regression with unscaled targets (prices, salaries) stuck at a huge MSE (common report)",
        _raw_salaries,
    ),
    Scenario(
        "torch-sigmoid-output-ages",
        "targets-out-of-range",
        "Ages of about 35-65 regressed through a sigmoid output: the output pins at 1.",
        "regression model that always outputs 1.0 with a sigmoid last layer (common report)",
        _sigmoid_output_ages,
    ),
    Scenario(
        "torch-forward-without-activation",
        "missing-nonlinearity",
        "XOR through a custom module whose forward chains fc1, fc2, fc3 with no activation "
        "between them: the net is affine and the best affine answer is 0.5.",
        "custom forward() that forgot F.relu between the layers; XOR outputs 0.5 (common report)",
        _forward_without_activation,
    ),
    Scenario(
        "torch-integer-division-pixels",
        "constant-inputs",
        "Grey levels 0-249 turned into inputs by integer division by 255: every input is 0, the "
        "classifier can only learn the class prior.",
        "pixels divided with // 255 (or as integer tensors), every input 0, the model predicts "
        "one class (common report)",
        _integer_division_pixels,
    ),
    Scenario(
        "torch-pass-fail-one-class",
        "constant-targets",
        "Pass/fail labels made with score // 100 from scores 0-99: every label is 0.",
        "labels that all became one class after an integer division (common report)",
        _pass_fail_one_class,
    ),
    Scenario(
        "torch-random-returns",
        "no-signal",
        "Tomorrow's return from the last ten i.i.d. returns: nothing to learn.",
        "stock-price network that always predicts the same value (forecasting noise)",
        _random_returns,
    ),
]

TORCH_HEALTHY: list[Scenario] = [
    Scenario(
        "torch-cnn-batchnorm",
        None,
        "Three classes of noisy 8x8 templates, Conv2d-BatchNorm2d-ReLU-MaxPool-Linear, "
        "CrossEntropyLoss, Adam, shuffled batches of 32.",
        "textbook small CNN",
        _cnn_batchnorm,
    ),
    Scenario(
        "torch-lstm-sequence",
        None,
        "An LSTM (16 units) reads sequences of 8 noise values and regresses a mix of the last "
        "and the third-last value.",
        "textbook sequence regression",
        _lstm_sequence,
    ),
    Scenario(
        "torch-tiny-transformer",
        None,
        "One nn.TransformerEncoderLayer (d_model 16, 2 heads) over 8 scalar tokens, mean-pooled, "
        "classifies whether the sequence's mean is positive.",
        "the smallest transformer classifier",
        _tiny_transformer,
    ),
    Scenario(
        "torch-functional-relu",
        None,
        "A custom module calling F.relu in forward between three Linear layers, regression "
        "with Adam: not affine, although no activation module exists.",
        "the usual custom nn.Module style",
        _functional_relu,
    ),
    Scenario(
        "torch-dropout-mlp",
        None,
        "Three Gaussian classes, a 6-32-3 ReLU net with Dropout(0.2), Adam, shuffled batches.",
        "textbook classifier with dropout",
        _dropout_mlp,
    ),
    Scenario(
        "torch-bfloat16-mlp",
        None,
        "An 8-32-1 tanh regressor whose weights, inputs and targets are bfloat16 on the CPU.",
        "low-precision training",
        _bfloat16_mlp,
    ),
    Scenario(
        "torch-seed-xavier",
        None,
        "The seed's autoencoder in PyTorch with Xavier weights and zero biases (SGD lr 0.2, "
        "10 epochs): it reaches the rank-3 bound of uniform data; nothing is wrong.",
        "the seed after the fix",
        _seed_xavier,
    ),
]

TORCH_CATALOG: list[Scenario] = [*TORCH_SICK, *TORCH_HEALTHY]


# ------------------------------------------------------------------------------ plain loop


@dataclass
class PlainRun:
    """What :func:`run_plain_loop` did.

    Attributes
    ----------
    losses : list of float
        The loss of every step, in order.
    optimizer : torch.optim.Optimizer
        The optimizer the loop built (its ``param_groups`` hold the final learning rates).
    watch : nndoctor Watch or None
        The closed watch around the loop (its ``report()`` is the doctor's verdict), or None.
    """

    losses: list[float]
    optimizer: Any
    watch: Any | None


def _as_tensors(setup: Setup) -> tuple[Any, Any]:
    """``X`` and the targets as tensors: floating data in the model's dtype, integer
    targets as ``long`` (class labels), ``Y=None`` as the inputs themselves."""
    torch = _torch()
    dtype = next(setup.model.parameters()).dtype

    def convert(A: Any) -> Any:
        T = torch.as_tensor(A)
        return T.to(dtype) if T.is_floating_point() else T.long()

    X = convert(setup.X)
    return X, (X if setup.Y is None else convert(setup.Y))


def run_plain_loop(setup: Setup, watch: bool = False, seed: int = 0) -> PlainRun:
    """Train ``setup.model`` in place the way a user's script does, fault included.

    Per epoch: the batches in order (or in a ``torch.randperm`` order from a generator seeded
    with ``seed`` when ``setup.shuffle``); per batch ``optimizer.zero_grad()`` (left out when
    ``setup.options["zero_grad"]`` is False), forward, loss, ``backward()``, ``step()``; after
    each epoch ``scheduler.step()`` when ``setup.options["scheduler"]`` is given. The model's
    train/eval mode is left as the setup built it.

    Parameters
    ----------
    setup : Setup
        A PyTorch setup (see :data:`TORCH_CATALOG`).
    watch : bool
        Run the loop inside ``nndoctor.watch(model, optimizer, loss=...)``: a loss module is
        handed to the watch, a functional loss is logged with ``watch.log(loss, output,
        target)`` after each step, as the watch's documentation asks a user to.
    seed : int
        Seeds the shuffling order.

    Returns
    -------
    PlainRun
    """
    torch = _torch()
    unknown = set(setup.options) - {"zero_grad", "scheduler"}
    if unknown:
        raise ValueError(f"run_plain_loop does not know the option(s) {sorted(unknown)}")
    X, Y = _as_tensors(setup)
    model = setup.model
    optimizer = setup.optimizer(model.parameters())
    make_scheduler = setup.options.get("scheduler")
    scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    zero_grad = setup.options.get("zero_grad", True)
    functional = not isinstance(setup.loss, torch.nn.Module)
    n = X.shape[0]
    batch = setup.batch_size or n
    generator = torch.Generator().manual_seed(seed)
    w = None
    if watch:
        import nndoctor

        w = nndoctor.watch(model, optimizer, loss=None if functional else setup.loss)
    losses: list[float] = []
    with w if w is not None else contextlib.nullcontext():
        for _ in range(setup.epochs):
            order = torch.randperm(n, generator=generator) if setup.shuffle else torch.arange(n)
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                xb, yb = X[rows], Y[rows]
                if zero_grad:
                    optimizer.zero_grad()
                output = model(xb)
                loss = setup.loss(output, yb)
                if w is not None and functional:
                    w.log(loss, output, yb)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.item()))
            if scheduler is not None:
                scheduler.step()
    return PlainRun(losses, optimizer, w)
