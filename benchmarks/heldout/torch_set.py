"""Torch set: PyTorch runs rebuilt from real public reports, frozen before the doctor saw them.

Each sick case reconstructs one report (a PyTorch forum thread or a GitHub issue or pull
request, cited in its ``SOURCES`` entry) of a network whose loss was stuck or whose output was
constant, with the cause the accepted answer (or the fix that closed the issue) found as the
expected code. The three healthy cases are the same setups with that fix applied. The code is
written from the reports' descriptions, never copied: sizes, data and step counts are scaled
down to run in about a second, and each case says where it departs from the report.

The set was written and committed before ``diagnose`` was run on any of it; it is never tuned
on. ``python benchmarks/bench_doctor_heldout.py --torch`` runs it. Setups are
``nndoctor.scenarios.Setup`` (their ``options`` carry ``zero_grad`` and ``scheduler``).
Models are float32, as in the reports.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from heldout._common import CaseSet, digits, gauss_reg, spiral
from nndoctor.scenarios import Setup

SET = CaseSet("torch", "never tuned on (frozen before the first run)")

# case name -> (report, what its answer or fix found)
SOURCES: dict[str, tuple[str, str]] = {}

F32 = torch.float32


def _source(name: str, url: str, finding: str) -> None:
    SOURCES[name] = (url, finding)


def _mlp(sizes: list[int], act: type[nn.Module], out: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(act())
    if out is not None:
        layers.append(out)
    return nn.Sequential(*layers).to(F32)


def _t(A: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(A, dtype=F32)


# ---------------------------------------------------------------- double activation


def _digits_classifier(seed: int, softmax: bool) -> Setup:
    rng = np.random.default_rng(1000 + seed)
    X, lab = digits(rng, 600)
    torch.manual_seed(seed)
    model = _mlp([64, 64, 10], nn.ReLU, nn.Softmax(dim=1) if softmax else None)
    return Setup(
        model,
        _t(X / 16.0),
        torch.as_tensor(lab),
        nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=10,
        batch_size=64,
        shuffle=True,
    )


_source(
    "t-softmax-before-ce-digits",
    "https://discuss.pytorch.org/t/cross-entropy-loss-is-not-decreasing/43814",
    "10-class classifier whose loss stays at 2.30: the model ends in a softmax and "
    "CrossEntropyLoss applies log-softmax again; remove the softmax (and lower the lr)",
)


@SET.case(
    "t-softmax-before-ce-digits",
    "double-activation",
    "10 digit classes, 64-64-10 ReLU + nn.Softmax into CrossEntropyLoss, Adam 0.01",
)
def t_softmax_before_ce_digits(seed: int) -> Setup:
    return _digits_classifier(seed, softmax=True)


@SET.case(
    "t-h-softmax-removed-digits",
    None,
    "the same digits classifier with the softmax removed (the thread's fix)",
)
def t_h_softmax_removed_digits(seed: int) -> Setup:
    return _digits_classifier(seed, softmax=False)


class _DotRecommender(nn.Module):
    """Matrix factorisation scored through a sigmoid: ``x`` is (batch, 2) user and item ids."""

    def __init__(self, users: int, items: int, factors: int) -> None:
        super().__init__()
        self.user = nn.Embedding(users, factors)
        self.item = nn.Embedding(items, factors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (self.user(x[:, 0]) * self.item(x[:, 1])).sum(dim=1, keepdim=True)  # (batch, 1)
        return torch.sigmoid(score)


_source(
    "t-sigmoid-before-bcewithlogits-rec",
    "https://github.com/yudi-mars/daisyRec/pull/15",
    "recommender scores passed through a sigmoid before BCEWithLogitsLoss, which applies its "
    "own sigmoid; the loss does not converge until the first sigmoid is removed",
)


@SET.case(
    "t-sigmoid-before-bcewithlogits-rec",
    "double-activation",
    "user/item embeddings, sigmoid of the dot product into BCEWithLogitsLoss, implicit feedback",
)
def t_sigmoid_before_bcewithlogits_rec(seed: int) -> Setup:
    rng = np.random.default_rng(1010 + seed)
    users, items = 50, 40
    U, V = rng.normal(size=(users, 4)), rng.normal(size=(items, 4))
    pairs = np.column_stack([rng.integers(0, users, 1200), rng.integers(0, items, 1200)])
    liked = (np.einsum("nk,nk->n", U[pairs[:, 0]], V[pairs[:, 1]]) > 0).astype(np.float32)
    torch.manual_seed(seed)
    return Setup(
        _DotRecommender(users, items, 8),
        torch.as_tensor(pairs),  # (1200, 2) int64 ids
        _t(liked[:, None]),
        nn.BCEWithLogitsLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=20,
        batch_size=64,
        shuffle=True,
    )


# ---------------------------------------------------------------- shape broadcast


def _sum_of_three(seed: int, unsqueeze: bool) -> Setup:
    # The report's ReduceLROnPlateau (stepped with the loss) is left out: diagnose steps a
    # scheduler once per epoch without a metric, and the thread's answer does not involve it.
    rng = np.random.default_rng(1020 + seed)
    X = rng.random((1024, 3))
    y = X.sum(axis=1)  # (1024,)
    model = nn.Sequential(nn.Linear(3, 1, bias=False)).to(F32)
    with torch.no_grad():
        model[0].weight.zero_()  # the report's [[0, 0, 0]] weight
    return Setup(
        model,
        _t(X),
        _t(y[:, None] if unsqueeze else y),
        nn.MSELoss(),
        lambda p: torch.optim.SGD(p, lr=0.1),
        epochs=200,
    )


_source(
    "t-sum-of-three-broadcast",
    "https://discuss.pytorch.org/t/output-of-the-model-depends-on-the-shape-of-the-weights-tensor/148155",
    "a (1024, 1) output against a (1024,) target: MSELoss broadcasts to (1024, 1024) (the "
    "ignored 'target size' warning); y.unsqueeze(1) fixes it",
)


@SET.case(
    "t-sum-of-three-broadcast",
    "loss-shape-broadcast",
    "learn y = x1 + x2 + x3 with Linear(3, 1), output (N, 1), target (N,), MSELoss, SGD 0.1",
)
def t_sum_of_three_broadcast(seed: int) -> Setup:
    return _sum_of_three(seed, unsqueeze=False)


@SET.case("t-h-sum-of-three-fixed", None, "the same with the target unsqueezed to (N, 1)")
def t_h_sum_of_three_fixed(seed: int) -> Setup:
    return _sum_of_three(seed, unsqueeze=True)


# ---------------------------------------------------------------- parameters never updated


def _straight_line(right_model: bool) -> Setup:
    X = np.arange(0.0, 1.0, 0.02)[:, None]  # (50, 1)
    y = 0.7 * X + 0.3
    torch.manual_seed(42)
    model_0 = nn.Linear(1, 1).to(F32)  # the course's first model, trained earlier
    model_1 = nn.Sequential(nn.Linear(1, 1)).to(F32)
    if right_model:
        factory = lambda p: torch.optim.SGD(p, lr=0.01)  # noqa: E731
    else:
        # The user's line: SGD(params=model_0.parameters()) while training model_1.
        factory = lambda p: torch.optim.SGD(model_0.parameters(), lr=0.01)  # noqa: E731
    return Setup(model_1, _t(X), _t(y), nn.MSELoss(), factory, epochs=300)


_source(
    "t-optimizer-on-other-model",
    "https://github.com/mrdbourke/pytorch-deep-learning/issues/399",
    "'loss remains the same': the optimizer was built on model_0.parameters() while model_1 "
    "was trained, so model_1's parameters never change",
)


@SET.fixed_case(
    "t-optimizer-on-other-model",
    "frozen-parameters",
    "nn.Linear(1, 1) on a straight line, optimizer holding another model's parameters",
    seed=0,
)
def t_optimizer_on_other_model() -> Setup:
    return _straight_line(right_model=False)


@SET.fixed_case(
    "t-h-optimizer-on-own-model", None, "the same, the optimizer on model_1's parameters", seed=0
)
def t_h_optimizer_on_own_model() -> Setup:
    return _straight_line(right_model=True)


class _ListedLayers(nn.Module):
    """Hidden Linear layers kept in a plain Python list (not registered), a registered
    classifier on top."""

    def __init__(self, sizes: tuple[int, ...], classes: int) -> None:
        super().__init__()
        self.hids = [nn.Linear(a, b).to(F32) for a, b in itertools.pairwise(sizes)]
        self.classifier = nn.Linear(sizes[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hids:
            x = torch.relu(layer(x))
        return self.classifier(x)


_source(
    "t-layers-in-python-list",
    "https://github.com/pytorch/pytorch/issues/715",
    "hidden layers built in a Python list are not registered: parameters() (and the "
    "optimizer) hold only the classifier; wrap them in nn.ModuleList (also pytorch#59925)",
)


@SET.case(
    "t-layers-in-python-list",
    "frozen-parameters",
    "3-class spiral, hidden 2-64-64 ReLU layers in a Python list, only the classifier trains",
)
def t_layers_in_python_list(seed: int) -> Setup:
    rng = np.random.default_rng(1030 + seed)
    X, lab = spiral(rng, 300)
    torch.manual_seed(seed)
    return Setup(
        _ListedLayers((2, 64, 64), 3).to(F32),
        _t(X),
        torch.as_tensor(lab),
        nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=200,
    )


# ---------------------------------------------------------------- the training loop


_source(
    "t-no-zero-grad-adam-full-batch",
    "https://github.com/yueliu1999/HSAN/issues/6",
    "'self.optimizer.zero_grad() is not used. The model is not converging': gradients pile up "
    "over the epochs of a full-batch Adam loop",
)


@SET.case(
    "t-no-zero-grad-adam-full-batch",
    "stale-gradients",
    "an MLP encoder trained full batch by Adam 1e-3 for 300 epochs, never zeroing gradients "
    "(a supervised stand-in for the report's clustering objective)",
)
def t_no_zero_grad_adam_full_batch(seed: int) -> Setup:
    rng = np.random.default_rng(1040 + seed)
    X, y = gauss_reg(rng, 300, 10)
    torch.manual_seed(seed)
    return Setup(
        _mlp([10, 64, 64, 1], nn.ReLU),
        _t(X),
        _t(y),
        nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        epochs=300,
        options={"zero_grad": False},
    )


def _blob_images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 noisy images with one bright 2x2 spot, and a Gaussian heatmap centred on it."""
    yy, xx = np.mgrid[0:8, 0:8]
    r, c = rng.integers(0, 7, n), rng.integers(0, 7, n)
    img = 0.1 * rng.normal(size=(n, 8, 8))
    heat = np.empty((n, 8, 8))
    for k in range(n):
        img[k, r[k] : r[k] + 2, c[k] : c[k] + 2] += 1.0
        heat[k] = np.exp(-((yy - r[k] - 0.5) ** 2 + (xx - c[k] - 0.5) ** 2) / 2.0)
    return img[:, None], heat[:, None]  # (n, 1, 8, 8) each


_source(
    "t-no-zero-grad-heatmap-cnn",
    "https://github.com/yastrebksv/TennisCourtDetector/issues/7",
    "the trainer never called optimizer.zero_grad(); the maintainer confirmed and fixed it",
)


@SET.case(
    "t-no-zero-grad-heatmap-cnn",
    "stale-gradients",
    "a 3-conv keypoint-heatmap net, MSE, Adam 1e-3, batches of 16, no zero_grad",
)
def t_no_zero_grad_heatmap_cnn(seed: int) -> Setup:
    rng = np.random.default_rng(1050 + seed)
    img, heat = _blob_images(rng, 256)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 1, 3, padding=1),
    ).to(F32)
    return Setup(
        model,
        _t(img),
        _t(heat),
        nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        epochs=15,
        batch_size=16,
        shuffle=True,
        options={"zero_grad": False},
    )


def _ce_on_detached(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a prediction cut from the graph, re-marked as requiring grad (the
    report's ``loss.requires_grad = True``)."""
    return nn.functional.cross_entropy(output.detach(), target).requires_grad_()


_source(
    "t-loss-requires-grad-true",
    "https://github.com/ronghuaiyang/arcface-pytorch/issues/56",
    "'element 0 of tensors does not require grad' silenced with loss.requires_grad = True; "
    "then the loss does not decline and the accuracy stays 0: the loss was cut from the graph",
)


@SET.case(
    "t-loss-requires-grad-true",
    "detached-graph",
    "10-class embedding classifier, CE on a detached output re-marked requires_grad, SGD",
)
def t_loss_requires_grad_true(seed: int) -> Setup:
    rng = np.random.default_rng(1060 + seed)
    X, lab = digits(rng, 500)
    torch.manual_seed(seed)
    return Setup(
        _mlp([64, 128, 10], nn.ReLU),
        _t(X / 16.0),
        torch.as_tensor(lab),
        _ce_on_detached,
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        epochs=10,
        batch_size=32,
        shuffle=True,
    )


_source(
    "t-eval-left-on-after-check",
    "https://github.com/facebookresearch/clevr-iep/pull/22",
    "check_accuracy() switches the model to eval mode and training continues without "
    "model.train(): BatchNorm and Dropout train in eval mode (merged fix)",
)


@SET.case(
    "t-eval-left-on-after-check",
    "eval-mode-training",
    "4-class classifier with BatchNorm1d and Dropout(0.5), left in eval() mode, Adam 5e-4",
)
def t_eval_left_on_after_check(seed: int) -> Setup:
    rng = np.random.default_rng(1070 + seed)
    X, lab = spiral(rng, 400, classes=4)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(2, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(64, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(64, 4),
    ).to(F32)
    model.eval()  # the accuracy check before training left it there
    return Setup(
        model,
        _t(X),
        torch.as_tensor(lab),
        nn.CrossEntropyLoss(),
        lambda p: torch.optim.Adam(p, lr=5e-4),
        epochs=20,
        batch_size=64,
        shuffle=True,
    )


def _smooth_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 1, 8, 8) images: sums of three random Gaussian bumps."""
    yy, xx = np.mgrid[0:8, 0:8]
    out = np.zeros((n, 8, 8))
    for k in range(n):
        for cy, cx, w in rng.uniform([0, 0, 0.8], [8, 8, 2.0], size=(3, 3)):
            out[k] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w**2))
    return out[:, None]


def _box_blur(img: np.ndarray) -> np.ndarray:
    """3x3 mean filter with edge padding, per image."""
    p = np.pad(img, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    return sum(p[:, :, i : i + 8, j : j + 8] for i in range(3) for j in range(3)) / 9.0


_source(
    "t-steplr-every-batch",
    "https://github.com/Lornatang/SRGAN-PyTorch/issues/1",
    "StepLR(step_size=epochs // 2, gamma=0.1) stepped every training step instead of every "
    "epoch: the learning rate is about 0 after a few steps and the model does not train",
)


@SET.case(
    "t-steplr-every-batch",
    "lr-schedule-collapse",
    "deblurring conv net, Adam 1e-3, StepLR(epochs // 2 = 10, 0.1) stepped per batch "
    "(10 batches an epoch): as a per-epoch schedule the lr is multiplied by 0.1 every epoch",
)
def t_steplr_every_batch(seed: int) -> Setup:
    rng = np.random.default_rng(1080 + seed)
    sharp = _smooth_images(rng, 200)
    epochs, batches = 20, 10
    step_size = epochs // 2
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1)
    ).to(F32)
    # The report's per-batch stepping, seen at epoch boundaries (diagnose steps per epoch).
    decay = lambda epoch: 0.1 ** ((epoch * batches) // step_size)  # noqa: E731
    return Setup(
        model,
        _t(_box_blur(sharp)),
        _t(sharp),
        nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        epochs=epochs,
        batch_size=20,
        shuffle=True,
        options={"scheduler": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, decay)},
    )


# ---------------------------------------------------------------- the common causes


class _LstmRegressor(nn.Module):
    """LSTM over one-hot residues, last hidden state -> Linear -> ReLU (the report's head)."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm(x)  # (batch, time, hidden)
        return self.relu(self.head(seq[:, -1]))  # (batch, 1)


_source(
    "t-relu-output-lstm",
    "https://github.com/ProteomicsML/ProteomicsML/pull/203",
    "LSTM regressor returning 0 for every peptide: a ReLU after the final Linear; with an "
    "unlucky init its input is negative everywhere and no gradient flows; remove the ReLU",
)


@SET.case(
    "t-relu-output-lstm",
    "dead-units",
    "LSTM(20 -> 32) over one-hot peptides, Linear + ReLU head, MSE on scaled CCS-like values; "
    "the init is drawn (from torch's default) until the head is negative on every peptide, "
    "the unlucky init the report describes",
)
def t_relu_output_lstm(seed: int) -> Setup:
    rng = np.random.default_rng(1090 + seed)
    residues = rng.integers(0, 20, size=(400, 12))
    X = np.eye(20)[residues]  # (400, 12, 20)
    mass = rng.uniform(0.5, 1.5, 20)
    y = (mass[residues].sum(axis=1) + 0.05 * rng.normal(size=400))[:, None]
    y = (y - y.min()) / (y.max() - y.min())  # CCS-like values scaled to [0, 1]
    Xt = _t(X)
    for attempt in range(1000):
        torch.manual_seed(1000 * seed + attempt)
        model = _LstmRegressor(20, 32).to(F32)
        with torch.no_grad():
            if model.head(model.lstm(Xt)[0][:, -1]).max() < 0:
                break
    return Setup(
        model,
        Xt,
        _t(y),
        nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        epochs=10,
        batch_size=32,
        shuffle=True,
    )


_source(
    "t-cubic-unnormalised",
    "https://discuss.pytorch.org/t/neural-network-could-not-learn-on-this-type-of-data-why/96648",
    "x in 1..3999 and target x**3 (up to 6e10): the network cannot learn until the input and "
    "also the target are normalised (the answer's code standardises both)",
)


@SET.fixed_case(
    "t-cubic-unnormalised",
    "unscaled-targets",
    "1-50-1 ReLU, Adam 1e-3, MSE, x = 1..3999 raw, target x**3 raw (200 epochs, not 1000)",
    seed=0,
)
def t_cubic_unnormalised() -> Setup:
    x = np.arange(1.0, 4000.0)[:, None]
    torch.manual_seed(0)
    return Setup(
        _mlp([1, 50, 1], nn.ReLU),
        _t(x),
        _t(x**3),
        nn.MSELoss(),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        epochs=200,
    )
