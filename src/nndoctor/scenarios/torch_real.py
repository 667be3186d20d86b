"""Real-architecture PyTorch scenarios (issue 20): the models people train, sick and healthy.

``REAL_CATALOG`` is a development set for the doctor on models beyond rows of features: CNNs
with BatchNorm on ``(N, C, H, W)`` images, a U-Net with per-pixel class targets ``(N, H, W)``,
LSTM and GRU sequence classifiers and a per-step tagger, transformer encoders over padded token
ids, decoder language models on shifted targets with ``-100`` padding (one in bfloat16
autocast), an embedding-bag text classifier. Each sick scenario carries the fault as its user
wrote it and the code the doctor should rank first; each healthy one is a twin that trains.

Everything is float32 (PyTorch's default, what these models are trained in) and CPU-cheap: a
plain run takes well under 3 s on one thread. Each ``build(seed)`` seeds NumPy (data) and torch
(weights) and returns a fresh :class:`~nndoctor.scenarios.Setup` in the form of
:mod:`nndoctor.scenarios.torch_cases`, so :func:`~nndoctor.scenarios.run_plain_loop`,
``nndoctor.diagnose`` and ``examples/real_<name>.py`` train it the same way. torch is imported
inside the builders only. A GAN (two models, two optimizers) does not fit a ``Setup``:
``GAN_CASES`` describe two example scripts only, ``examples/real_gan.py`` and
``examples/real_gan_detached_generator.py``, written by ``examples/generate.py``. These
scenarios are not in ``TORCH_CATALOG``: the suite's doctor tests do not run them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor import _extras
from nndoctor.scenarios._base import Scenario, Setup

# the target index PyTorch's cross-entropy skips (its default ignore_index)
IGNORE = -100


def _torch() -> Any:
    return _extras.require("torch")


def _float32(build: Callable[..., Setup]) -> Callable[..., Setup]:
    """``build`` run with float32 as torch's default dtype (then the caller's restored): the
    models are float32 whatever default the caller set (the test suite sets float64)."""

    @functools.wraps(build)
    def in_float32(seed: int, **variant: Any) -> Setup:
        torch = _torch()
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            return build(seed, **variant)
        finally:
            torch.set_default_dtype(default)

    return in_float32


def _modules() -> Any:
    """The scenarios' module classes and losses (importing them imports torch)."""
    _torch()
    from nndoctor.scenarios import _torch_real_modules

    return _torch_real_modules


# ------------------------------------------------------------------------------ data


def template_images(
    rng: np.random.Generator, n: int, classes: int, channels: int, size: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images of smooth class templates.

    Each class has a template drawn on a ``size/4`` grid and blown up 4x (blocks, like a
    coarse object); a sample is its class's template plus Gaussian noise of std ``noise``.

    Returns ``X`` of shape ``(n, channels, size, size)`` (float32) and balanced-ish labels
    of shape ``(n,)`` (int64).
    """
    coarse = rng.normal(size=(classes, channels, size // 4, size // 4))
    templates = np.kron(coarse, np.ones((1, 1, 4, 4)))  # (classes, channels, size, size)
    labels = rng.integers(0, classes, n)
    X = templates[labels] + noise * rng.normal(size=(n, channels, size, size))
    return X.astype(np.float32), labels.astype(np.int64)


def blob_masks(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey images with one to three bright discs: the segmentation task.

    Returns images ``(n, 1, size, size)`` (float32, about unit scale: discs at 1, background
    at 0, plus noise of std 0.4 and a random brightness offset per image) and their masks
    ``(n, size, size)`` (int64, 1 inside a disc, 0 outside).
    """
    yy, xx = np.mgrid[0:size, 0:size]
    masks = np.zeros((n, size, size), dtype=np.int64)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(2, size - 2, size=2)
            r = rng.uniform(1.5, size / 4)
            masks[i] |= ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.int64)
    offset = rng.uniform(-0.3, 0.3, size=(n, 1, 1))
    images = masks + offset + 0.4 * rng.normal(size=(n, size, size))
    return images[:, None].astype(np.float32), masks


def summed_sequences(
    rng: np.random.Generator, n: int, time: int, features: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sequences ``(n, time, features)`` of noise; the label is the feature with the largest
    sum over time, so it depends on every step and no single step decides it."""
    X = rng.normal(size=(n, time, features))
    return X.astype(np.float32), X.sum(axis=1).argmax(axis=1).astype(np.int64)


def rare_events(
    rng: np.random.Generator, n: int, time: int, features: int, share: float, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sequences ``(n, time, features)`` of noise; ``round(share * n)`` of them (label 1) carry a
    faint event: ``strength`` added to feature 0 over three consecutive steps. Labels
    ``(n,)`` int64."""
    X = rng.normal(size=(n, time, features))
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.permutation(n)[: round(share * n)]] = 1
    for i in np.flatnonzero(labels):
        t = rng.integers(0, time - 3)
        X[i, t : t + 3, 0] += strength
    return X.astype(np.float32), labels


def scored_texts(
    rng: np.random.Generator, n: int, vocab: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Texts of ``length`` token ids in ``1..vocab-1`` whose label is the sign of the sum of
    the words' hidden sentiment scores (a third of the words carry one): ``(n, length)`` int64
    ids and ``(n,)`` int64 labels in {0, 1}."""
    scores = rng.normal(size=vocab) * (rng.random(vocab) < 1 / 3)
    ids = rng.integers(1, vocab, size=(n, length))
    return ids, (scores[ids].sum(axis=1) > 0).astype(np.int64)


def padded_texts(
    rng: np.random.Generator, n: int, vocab: int, length: int, empty_every: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Texts of 3 to ``length`` tokens right-padded with 0 to ``length``: id 1 (a [CLS]
    token), then ids in ``2..vocab-1``; the label says whether more than half of those are
    "marked" (even ids).

    ``empty_every``: every ``empty_every``-th text (from the first) is all padding, as an empty
    string tokenised with no special tokens is.

    Returns ``(n, length)`` int64 ids and ``(n,)`` int64 labels in {0, 1}.
    """
    ids = np.zeros((n, length), dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    for i in range(n):
        k = rng.integers(3, length + 1)
        tokens = rng.integers(2, vocab, size=k)
        tokens[0] = 1
        ids[i, :k] = tokens
        marked = (tokens[1:] % 2 == 0).sum()
        labels[i] = int(marked * 2 > k - 1)
    if empty_every is not None:
        ids[::empty_every] = 0
    return ids, labels


def tagged_sentences(
    rng: np.random.Generator, n: int, vocab: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``(n, length)`` (ids ``1..vocab-1``, 0 padding after 6 to ``length`` tokens)
    and one tag per token ``(n, length)``: ``id % 3``, plus 3 when the previous token is a
    "negator" (id < 5); ``-100`` at the padding."""
    ids = np.zeros((n, length), dtype=np.int64)
    tags = np.full((n, length), IGNORE, dtype=np.int64)
    for i in range(n):
        k = rng.integers(6, length + 1)
        tokens = rng.integers(1, vocab, size=k)
        negated = np.concatenate([[False], tokens[:-1] < 5])
        ids[i, :k] = tokens
        tags[i, :k] = tokens % 3 + 3 * negated
    return ids, tags


def progressions(
    rng: np.random.Generator, n: int, vocab: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Language-model data: each text counts up from a random id in steps of 1, 2 or 3
    (modulo ``vocab - 1``, ids ``1..vocab-1``), 5 to ``length + 1`` tokens long; inputs are
    the text without its last token right-padded with 0, targets the text shifted by one,
    padded with ``-100``: ``(n, length)`` int64 both."""
    X = np.zeros((n, length), dtype=np.int64)
    Y = np.full((n, length), IGNORE, dtype=np.int64)
    for i in range(n):
        k = rng.integers(5, length + 2)
        start, step = rng.integers(0, vocab - 1), rng.integers(1, 4)
        text = (start + step * np.arange(k)) % (vocab - 1) + 1
        X[i, : k - 1] = text[:-1]
        Y[i, : k - 1] = text[1:]
    return X, Y


def copy_task(
    rng: np.random.Generator, n: int, symbols: int, half: int
) -> tuple[np.ndarray, np.ndarray]:
    """``half`` random symbols (ids ``1..symbols``), a separator (id ``symbols + 1``), the
    same symbols again; inputs are the text without its last token, targets the text shifted
    by one with ``-100`` wherever the next token cannot be known (the first half and the
    separator): ``(n, 2 * half)`` int64 both."""
    a = rng.integers(1, symbols + 1, size=(n, half))
    text = np.concatenate([a, np.full((n, 1), symbols + 1), a], axis=1)  # (n, 2 half + 1)
    X, Y = text[:, :-1].copy(), text[:, 1:].copy()
    Y[:, :half] = IGNORE
    return X, Y


def gan_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """The GAN's real data: ``(n, 2)`` float32 points of a correlated Gaussian centred at
    ``(2, -1)`` (standard deviations 0.5, correlation 0.8), far from where a freshly
    initialised generator puts its samples (near the origin)."""
    mix = np.array([[0.5, 0.0], [0.4, 0.3]])
    return (np.array([2.0, -1.0]) + rng.normal(size=(n, 2)) @ mix.T).astype(np.float32)


def _adam(lr: float) -> Any:
    """The factory ``params -> torch.optim.Adam(params, lr)``."""
    torch = _torch()
    return lambda params: torch.optim.Adam(params, lr=lr)


# ------------------------------------------------------------------------------ images


@_float32
def _cnn(seed: int, lr_one: bool = False) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, labels = template_images(rng, 320, 10, 3, 16, noise=1.0)
    torch.manual_seed(seed)
    model = _modules().ConvNet(3, 16, 8, 10)
    lr = 1.0 if lr_one else 0.01
    return Setup(
        model,
        X,
        labels,
        torch.nn.CrossEntropyLoss(),
        lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
        epochs=6,
        batch_size=32,
        shuffle=True,
    )


@_float32
def _cnn_lr_one(seed: int) -> Setup:
    return _cnn(seed, lr_one=True)


@_float32
def _unet(seed: int, mask_255: bool = False) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    images, masks = blob_masks(rng, 96, 16)
    torch.manual_seed(seed)
    model = _modules().UNet(1, 2, 8)
    if mask_255:  # masks saved as 8-bit PNGs (object 255), loss copied from a VOC script
        masks = masks * 255
        loss = torch.nn.CrossEntropyLoss(ignore_index=255)
    else:
        loss = torch.nn.CrossEntropyLoss()
    return Setup(model, images, masks, loss, _adam(0.03), epochs=6, batch_size=16, shuffle=True)


@_float32
def _unet_mask_255(seed: int) -> Setup:
    return _unet(seed, mask_255=True)


@_float32
def _focal_loss_bf16(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, labels = template_images(rng, 256, 2, 1, 12, noise=0.5)
    torch.manual_seed(seed)
    modules = _modules()
    model = modules.MixedPrecision(modules.ConvNet(1, 12, 8, 1), torch.bfloat16, upcast=False)
    return Setup(
        model,
        X,
        labels[:, None].astype(np.float32),
        modules.BinaryFocalLoss(),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        epochs=8,
        batch_size=32,
        shuffle=True,
    )


@_float32
def _bce_digit_labels(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, labels = template_images(rng, 320, 10, 1, 8, noise=0.5)
    torch.manual_seed(seed)
    model = _modules().ConvNet(1, 8, 8, 1)
    return Setup(
        model,
        X,
        labels[:, None].astype(np.float32),  # digits 0..9 as BCE targets
        torch.nn.BCEWithLogitsLoss(),
        _adam(0.01),
        epochs=6,
        batch_size=32,
        shuffle=True,
    )


@_float32
def _zero_init_mlp(seed: int) -> Setup:
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(seed)
    X, labels = template_images(rng, 320, 10, 1, 8, noise=0.5)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
        nn.Linear(32, 10),
    )  # fmt: skip
    for p in model.parameters():
        nn.init.zeros_(p)
    return Setup(
        model, X, labels, nn.CrossEntropyLoss(), _adam(0.01), epochs=6, batch_size=32,
        shuffle=True,
    )  # fmt: skip


@_float32
def _head_replaced(seed: int) -> Setup:
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(seed)
    X, labels = template_images(rng, 256, 4, 3, 16, noise=1.0)
    torch.manual_seed(seed)
    model = _modules().ConvNet(3, 16, 8, 10)  # "pretrained" on 10 classes
    built_on = list(model.parameters())  # the optimizer is built here, before the new head
    for p in model.parameters():
        p.requires_grad_(False)  # fine-tune the head only
    model.fc = nn.Linear(model.fc.in_features, 4)  # a new head for the 4 classes
    return Setup(
        model,
        X,
        labels,
        nn.CrossEntropyLoss(),
        lambda params: torch.optim.SGD(built_on, lr=0.05, momentum=0.9),
        epochs=5,
        batch_size=32,
    )


@_float32
def _nll_of_probabilities(seed: int) -> Setup:
    torch = _torch()
    nn = torch.nn
    rng = np.random.default_rng(seed)
    X, labels = template_images(rng, 320, 10, 3, 16, noise=1.0)
    torch.manual_seed(seed)
    model = nn.Sequential(_modules().ConvNet(3, 16, 8, 10), nn.Softmax(dim=1))
    return Setup(
        model,
        X,
        labels,
        nn.NLLLoss(),  # wants log-probabilities, gets probabilities
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
        epochs=6,
        batch_size=32,
        shuffle=True,
    )


# ------------------------------------------------------------------------------ sequences


@_float32
def _lstm(seed: int, batch_first: bool = True) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, labels = summed_sequences(rng, 320, 12, 3)
    torch.manual_seed(seed)
    model = _modules().RNNClassifier("lstm", 3, 32, 3, batch_first=batch_first)
    return Setup(
        model, X, labels, torch.nn.CrossEntropyLoss(), _adam(0.01), epochs=8, batch_size=32,
        shuffle=True,
    )  # fmt: skip


@_float32
def _lstm_batch_mixing(seed: int) -> Setup:
    return _lstm(seed, batch_first=False)


@_float32
def _gru_imbalance(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, labels = rare_events(rng, 320, 12, 3, share=0.14, strength=0.6)
    _torch().manual_seed(seed)
    modules = _modules()
    model = modules.RNNClassifier("gru", 3, 16, 2)
    return Setup(
        model, X, labels, modules.SoftmaxCrossEntropy(), _adam(0.01), epochs=8, batch_size=32,
        shuffle=True,
    )  # fmt: skip


@_float32
def _tagger(seed: int, summed: bool = False) -> Setup:
    rng = np.random.default_rng(seed)
    ids, tags = tagged_sentences(rng, 256, 20, 14)
    _torch().manual_seed(seed)
    modules = _modules()
    model = modules.GRUTagger(20, 16, 24, 6)
    loss = modules.sequence_cross_entropy if summed else modules.token_cross_entropy
    return Setup(model, ids, tags, loss, _adam(0.01), epochs=8, batch_size=32, shuffle=True)


@_float32
def _tagger_summed(seed: int) -> Setup:
    return _tagger(seed, summed=True)


@_float32
def _embedding_bag(seed: int, lr: float = 0.01) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    ids, labels = scored_texts(rng, 400, 300, 12)
    torch.manual_seed(seed)
    model = _modules().BagOfEmbeddings(300, 16, 2)
    return Setup(
        model, ids, labels, torch.nn.CrossEntropyLoss(), _adam(lr), epochs=8, batch_size=32,
        shuffle=True,
    )  # fmt: skip


@_float32
def _embedding_bag_fine_tuning_lr(seed: int) -> Setup:
    return _embedding_bag(seed, lr=2e-5)  # BERT's fine-tuning rate, for a model from scratch


@_float32
def _embedding_bag_misaligned(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    ids, labels = scored_texts(rng, 1500, 300, 12)
    ids = ids[rng.permutation(len(ids))]  # the texts were shuffled for the split, not the labels
    torch.manual_seed(seed)
    model = _modules().BagOfEmbeddings(300, 8, 2)
    return Setup(
        model, ids, labels, torch.nn.CrossEntropyLoss(), _adam(0.01), epochs=4, batch_size=32,
        shuffle=True,
    )  # fmt: skip


# ------------------------------------------------------------------------------ attention


@_float32
def _encoder(seed: int, empty_every: int | None = None) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    ids, labels = padded_texts(rng, 256, 16, 12, empty_every=empty_every)
    torch.manual_seed(seed)
    model = _modules().PaddedEncoder(16, 32, 4, 12, 2)
    return Setup(
        model, ids, labels, torch.nn.CrossEntropyLoss(), _adam(0.003), epochs=8,
        batch_size=32,
    )  # fmt: skip


@_float32
def _encoder_empty_rows(seed: int) -> Setup:
    return _encoder(seed, empty_every=20)


@_float32
def _bert_unused_pooler(seed: int) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    ids, labels = padded_texts(rng, 256, 16, 12)
    torch.manual_seed(seed)
    model = _modules().PooledEncoder(16, 32, 4, 12, 2)
    return Setup(
        model, ids, labels, torch.nn.CrossEntropyLoss(), _adam(0.003), epochs=8,
        batch_size=32, shuffle=True,
    )  # fmt: skip


@_float32
def _lm(seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    X, Y = progressions(rng, 256, 24, 12)
    _torch().manual_seed(seed)
    modules = _modules()
    model = modules.TinyGPT(24, 32, 4, 1, 12)
    return Setup(
        model, X, Y, modules.token_cross_entropy, _adam(0.003), epochs=8, batch_size=32,
        shuffle=True,
    )  # fmt: skip


@_float32
def _gpt_copy(seed: int, probabilities: bool = False) -> Setup:
    torch = _torch()
    rng = np.random.default_rng(seed)
    X, Y = copy_task(rng, 256, 8, 4)
    torch.manual_seed(seed)
    modules = _modules()
    gpt = modules.TinyGPT(10, 32, 4, 2, 8, probabilities=probabilities)
    model = modules.MixedPrecision(gpt, torch.bfloat16, upcast=True)
    return Setup(
        model, X, Y, modules.token_cross_entropy, _adam(0.003), epochs=10, batch_size=32,
        shuffle=True,
    )  # fmt: skip


@_float32
def _gpt_copy_softmax(seed: int) -> Setup:
    return _gpt_copy(seed, probabilities=True)


# ------------------------------------------------------------------------------ the catalog

REAL_SICK: list[Scenario] = [
    Scenario(
        "unet-mask-255",
        "constant-targets",
        "A U-Net segments bright discs in 16x16 images, per-pixel class targets (N, H, W). The "
        "masks were saved as 8-bit PNGs (object = 255) and the loss copied from a Pascal VOC "
        "script, CrossEntropyLoss(ignore_index=255): every object pixel is ignored, the only "
        "class left to learn is background, and the net predicts background everywhere while "
        "its loss falls towards 0.",
        "segmentation masks in {0, 255} instead of {0, 1}; VOC's ignore_index=255 hides them "
        "(issue 20; forum reports of a U-Net that outputs an all-black mask)",
        _unet_mask_255,
    ),
    Scenario(
        "embedding-fine-tuning-lr",
        "lr-too-low",
        "An EmbeddingBag text classifier (token ids 1..299 into nn.EmbeddingBag, mean, MLP) "
        "trained from scratch with Adam at 2e-5, BERT's fine-tuning rate: the weights move by "
        "about 2e-3 in the whole run and the loss stays at its initial value. The ids are "
        "indices, not unscaled inputs.",
        "a learning rate copied from a fine-tuning recipe into a model trained from scratch; "
        "issue 20: token ids must not be called unscaled inputs",
        _embedding_bag_fine_tuning_lr,
    ),
    Scenario(
        "embedding-misaligned-labels",
        "no-signal",
        "The same text classifier on 1,500 texts whose token-id matrix was shuffled for a "
        "train/test split and the labels were not: the labels no longer belong to the texts. "
        "The model slowly memorises the training texts; held-out texts are at chance.",
        "inputs and labels shuffled separately (forum reports: 'validation accuracy stays at "
        "50%'); issue 20: token ids must not be called unscaled inputs",
        _embedding_bag_misaligned,
    ),
    Scenario(
        "lstm-batch-first",
        "batch-mixing",
        "An LSTM classifier built with nn.LSTM(3, 32) (batch_first=False, the default) but fed "
        "(batch, time, features) and read as out[:, -1]: the LSTM runs along the batch, and "
        "sample i's output is the state after samples 0..i at the last time step. The label "
        "(the feature with the largest sum over time) needs every step: the loss stays near "
        "the baseline, and one sample's output depends on the others in its batch.",
        "batch_first forgotten on nn.LSTM / nn.GRU (issue 20; very common forum question: "
        "'LSTM output the same for every sample', 'results change with the batch size')",
        _lstm_batch_mixing,
    ),
    Scenario(
        "encoder-empty-text",
        "nan-source",
        "A hand-written transformer encoder block (nn.MultiheadAttention with "
        "key_padding_mask = ids == 0, masked mean pooling) over padded token ids; every 20th "
        "text is empty, all padding. Its attention row masks every key (softmax over nothing) "
        "and its mean divides 0 by 0: the loss is NaN from the first step, the weights after "
        "it.",
        "'Transformer loss is NaN': an all-padding row in key_padding_mask (issue 20; PyTorch "
        "issues on nn.MultiheadAttention with fully masked rows)",
        _encoder_empty_rows,
    ),
    Scenario(
        "cnn-focal-loss-bf16",
        "nan-source",
        "A binary CNN trained in bfloat16 autocast (SGD 0.1, momentum 0.9) with a focal loss "
        "written from the paper: -alpha y (1-p)^g log p - (1-alpha)(1-y) p^g log(1-p). Once a "
        "positive logit passes about 6.2, bfloat16's sigmoid is exactly 1, log(1-p) = -inf and "
        "(1-y) * -inf = NaN: the loss turns NaN after a few steps (5 to 17 at seeds 0-9).",
        "hand-written focal loss NaN under mixed precision (issue 20; GitHub issues on focal "
        "loss implementations)",
        _focal_loss_bf16,
    ),
    Scenario(
        "cnn-head-replaced",
        "optimizer-model-mismatch",
        "Fine-tuning a CNN on 4 classes: the optimizer is built on model.parameters(), then "
        "the backbone is frozen and model.fc replaced by a new nn.Linear(., 4). The optimizer "
        "holds the old head and the frozen backbone; the new head is never stepped, so no "
        "weight of the model ever changes and the loss repeats every epoch.",
        "layers replaced after the optimizer was built (issue 20; transfer-learning forum "
        "reports: 'loss does not change after replacing the classifier')",
        _head_replaced,
    ),
    Scenario(
        "mlp-zero-init",
        "symmetric-units",
        "An MNIST-style MLP on 8x8 images (nn.Flatten, Linear 64-32-32-10 with nn.ReLU modules) "
        "whose every weight and bias is set to zero: every hidden unit outputs ReLU(0) = 0 and "
        "gets no gradient, only the output bias learns, and every image gets the same answer.",
        "zero-initialised weights (issue 20; the seed's cause in a ReLU net)",
        _zero_init_mlp,
    ),
    Scenario(
        "cnn-bce-digit-labels",
        "wrong-loss-for-targets",
        "A CNN with one output trained with BCEWithLogitsLoss on the digit labels 0..9 as float "
        "targets: BCE with a target above 1 has no minimum, the loss goes negative and falls "
        "without end as the logit grows.",
        "BCE on integer class labels (issue 20; 'negative loss with BCEWithLogitsLoss' reports)",
        _bce_digit_labels,
    ),
    Scenario(
        "gru-imbalance-custom-loss",
        "class-imbalance",
        "A GRU classifier of sequences, 86% normal and 14% carrying a faint event, trained with "
        "a cross-entropy written as a custom nn.Module: the net collapses to the majority class "
        "(every sequence 'normal', accuracy 86%) and the loss sits at the prior's entropy.",
        "rare-event detection that always predicts the majority class (issue 20; common report)",
        _gru_imbalance,
    ),
    Scenario(
        "cnn-lr-one",
        "lr-too-high",
        "A CIFAR-style CNN (two Conv-BatchNorm-ReLU-MaxPool blocks, 3x16x16 images, 10 classes) "
        "trained by SGD with learning rate 1.0 and momentum 0.9: the loss jumps to 20 in the "
        "first steps, every ReLU of the second block dies, and the net answers one class for "
        "every image.",
        "a CIFAR CNN with lr 1.0 whose accuracy is stuck at 10% (issue 20; forum reports)",
        _cnn_lr_one,
    ),
    Scenario(
        "gpt-copy-softmax",
        "double-activation",
        "The tiny GPT of gpt-copy-bf16 (bfloat16 autocast, copy task) whose forward ends in the "
        "sampling code's softmax, then cross-entropy over output.reshape(-1, V): the loss "
        "applies log-softmax to probabilities and cannot go below log(1 + 9/e) = 1.459.",
        "softmax before CrossEntropyLoss in a language model (issue 20; forum reports)",
        _gpt_copy_softmax,
    ),
]

REAL_HEALTHY: list[Scenario] = [
    Scenario(
        "cnn",
        None,
        "The CIFAR-style CNN of cnn-lr-one trained by SGD at 0.01 with momentum 0.9: ten "
        "classes of noisy 3x16x16 templates, batches of 32, shuffled.",
        "textbook small CNN with BatchNorm (issue 20's healthy twin)",
        _cnn,
    ),
    Scenario(
        "cnn-nll-of-probabilities",
        None,
        "The CIFAR-style CNN ending in nn.Softmax, trained with nn.NLLLoss, which expects "
        "log-probabilities: the loss is -mean(p_true) in [-1, 0], negative by construction. Its "
        "minimum is still p_true = 1, so the net learns (slower than with cross-entropy): a "
        "weaker loss, not a stuck net, and its negative value is not a fault.",
        "NLLLoss on softmax outputs, 'negative loss' (issue 20; forum reports)",
        _nll_of_probabilities,
    ),
    Scenario(
        "unet",
        None,
        "The U-Net of unet-mask-255 with masks in {0, 1} and the default CrossEntropyLoss: "
        "per-pixel class targets (N, H, W), Adam at 0.03, batches of 16.",
        "textbook small U-Net (issue 20's healthy twin)",
        _unet,
    ),
    Scenario(
        "lstm",
        None,
        "The LSTM classifier of lstm-batch-first with batch_first=True: it reads each sequence "
        "along time and learns which feature has the largest sum.",
        "textbook sequence classifier (issue 20's healthy twin)",
        _lstm,
    ),
    Scenario(
        "gru-tagger",
        None,
        "Per-step tagging: token ids into nn.Embedding, a bidirectional GRU, 6 tags per token "
        "(the tag depends on the previous token), padding tagged -100, cross-entropy on "
        "output.reshape(-1, tags).",
        "part-of-speech style tagger",
        _tagger,
    ),
    Scenario(
        "gru-tagger-summed-loss",
        None,
        "The tagger with the loss summed over each sentence's tokens and averaged over "
        "sentences (a CRF-style sequence NLL): about 10 times the per-token loss (10 tokens a "
        "sentence on average), so it starts near 15, far above the per-token baseline (the "
        "tags' entropy, 1.57), and is not above baseline.",
        "sequence-level loss (issue 20: the doctor must not call it above baseline)",
        _tagger_summed,
    ),
    Scenario(
        "embedding",
        None,
        "The EmbeddingBag text classifier of embedding-fine-tuning-lr with Adam at 0.01: token "
        "ids 1..299, the label the sign of the words' hidden scores.",
        "bag-of-embeddings text classifier (issue 20's healthy twin)",
        _embedding_bag,
    ),
    Scenario(
        "encoder",
        None,
        "The hand-written encoder of encoder-empty-text on texts that all have tokens: it "
        "learns whether most tokens are marked.",
        "transformer encoder with a padding mask (issue 20's healthy twin)",
        _encoder,
    ),
    Scenario(
        "bert-unused-pooler",
        None,
        "A BERT-like classifier (nn.TransformerEncoder with src_key_padding_mask, the [CLS] "
        "state into a Linear) that also holds BERT's pooler, unused by design: the pooler "
        "never gets a gradient, which is harmless (worth an info at most).",
        "unused parameters, as in Hugging Face models fine-tuned without their pooler (issue "
        "20; DDP's find_unused_parameters)",
        _bert_unused_pooler,
    ),
    Scenario(
        "lm",
        None,
        "A small decoder language model (TinyGPT, one causal layer) on counting sequences of "
        "5-13 tokens: ids into nn.Embedding, targets the shifted tokens with -100 padding, "
        "cross-entropy on output.reshape(-1, V).",
        "nanoGPT-style language model (issue 20's healthy twin)",
        _lm,
    ),
    Scenario(
        "gpt-copy-bf16",
        None,
        "A tiny GPT (two causal layers) trained in bfloat16 CPU autocast on a copy task: four "
        "symbols, a separator, the same symbols; only the copied half is scored (-100 "
        "elsewhere).",
        "mixed-precision GPT training (issue 20)",
        _gpt_copy,
    ),
]

REAL_CATALOG: list[Scenario] = [*REAL_SICK, *REAL_HEALTHY]


# ------------------------------------------------------------------------------ the GAN


@dataclass(frozen=True)
class GanCase:
    """A GAN example script (two models, two optimizers), which no ``Setup`` can hold.

    ``examples/generate.py`` writes ``examples/real_<name>.py`` from it: a generator and a
    discriminator (small MLPs) trained adversarially on :func:`gan_points`, the fault (if any)
    written into the loop.

    Attributes
    ----------
    name, expected, description, source : str (expected: None when healthy)
        As in :class:`~nndoctor.scenarios.Scenario`.
    detach_generator : bool
        The fault: the generator's loss reads ``discriminator(fake.detach())`` (the line of
        the discriminator's step copied), so no gradient ever reaches the generator.
    """

    name: str
    expected: str | None
    description: str
    source: str
    detach_generator: bool


GAN_CASES: list[GanCase] = [
    GanCase(
        "gan",
        None,
        "A GAN on 2-D points: generator and discriminator MLPs, two Adam optimizers (lr 1e-3, "
        "betas (0.5, 0.999)), the discriminator's step on fake.detach(), the generator's on "
        "fake. The generated points move from the origin to the data near (2, -1).",
        "textbook GAN loop (issue 20's healthy twin)",
        False,
    ),
    GanCase(
        "gan-detached-generator",
        "detached-graph",
        "The same GAN whose generator loss reads discriminator(fake.detach()), the line of "
        "the discriminator's step copied: the generator never gets a gradient, its samples "
        "stay at the origin, and the discriminator wins (its loss falls towards 0).",
        "'generator loss increases, generator does not learn': fake.detach() in the "
        "generator's step (GAN tutorials' issue trackers)",
        True,
    ),
]
