"""A small language model, healthy and with each training instability made to happen (issue 23).

``LM_CATALOG`` holds a GPT-style decoder (two pre-norm blocks, width 32, four heads; see
:mod:`nndoctor.scenarios._torch_lm_modules`) trained on CPU in a few seconds on sequences of a
random sparse bigram language (:func:`bigram_sequences`: each of 32 tokens has 3 successors, 2
in the healthy run), or of a deterministic one. Each sick case carries one instability as a
user would cause it and the code the doctor should name first:

- a learning rate too high for a run without warmup (``update-ratio-jump``);
- attention without qk-layernorm at a high learning rate (``attention-logit-growth``);
- one corrupted batch under SGD without clipping (``grad-norm-spike``), and its benign twin
  whose spike recovers (healthy: information only);
- float16: pure ``model.half()`` training (``nan-source``, issue 20's tracer) and a float16
  autocast run whose loss scaler collapses (``loss-scaler-collapse``).

Every ``build(seed)`` seeds NumPy (data) and torch (weights) and returns a
:class:`~nndoctor.scenarios.Setup`: ``diagnose(setup.model, setup.X, setup.Y,
**setup.training)`` trains it, :func:`run_lm_loop` trains it the way a user's script does (with
``nndoctor.watch`` when asked) and :func:`script` writes that script for ``nndoctor run``.
torch is imported inside the builders only.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndoctor import _extras
from nndoctor.scenarios._base import Scenario, Setup

VOCAB = 32
LENGTH = 16
BATCH = 16
# sequences and epochs: 50 steps an epoch, 200 in all
SEQUENCES = 800
EPOCHS = 4
# the batch a corrupted case's pipeline empties: step 200 of one epoch of 300 (a batch in every
# epoch would recur every 50 steps), late enough for every detector's window to be full
CORRUPT_AT = 200
CORRUPT_STEPS = 300
# the target index PyTorch's cross-entropy skips (its default ignore_index)
IGNORE = -100
# issue 20's NaN tracer names the op that made a run's first NaN or inf (landing on its own
# branch): the code the float16 cases without loss scaling expect first
NAN_SOURCE = "nan-source"


def _torch() -> Any:
    return _extras.require("torch")


def _modules() -> Any:
    _torch()
    from nndoctor.scenarios import _torch_lm_modules

    return _torch_lm_modules


def _float32(build: Callable[..., Setup]) -> Callable[..., Setup]:
    """``build`` with float32 as torch's default dtype (the caller's restored): the models are
    float32 whatever default the caller set (the test suite sets float64)."""

    @functools.wraps(build)
    def in_float32(seed: int) -> Setup:
        torch = _torch()
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            return build(seed)
        finally:
            torch.set_default_dtype(default)

    return in_float32


# ------------------------------------------------------------------------------ data


def bigram_sequences(
    rng: np.random.Generator, n: int, length: int = LENGTH, vocab: int = VOCAB, branch: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of a random sparse bigram language: each token has ``branch`` successors with
    Dirichlet(1) probabilities (``branch=1``: a deterministic chain).

    Returns ids ``(n, length)`` and next-token targets ``(n, length)``, both int64. The
    achievable loss is the chain's entropy rate (about 0.6 nats for 3 successors, 0.45 for 2, 0
    for 1).
    """
    succ = np.stack([rng.choice(vocab, branch, replace=False) for _ in range(vocab)])
    probs = rng.dirichlet(np.ones(branch), size=vocab)
    seq = np.zeros((n, length + 1), dtype=np.int64)
    seq[:, 0] = rng.integers(0, vocab, n)
    for t in range(length):
        u = rng.random(n)
        pick = (u[:, None] > np.cumsum(probs[seq[:, t]], axis=1)).sum(axis=1)
        seq[:, t + 1] = succ[seq[:, t], np.minimum(pick, branch - 1)]
    return seq[:, :-1], seq[:, 1:].copy()


def corrupt_batch(Y: np.ndarray, batch: int, at: int, mislabel: bool) -> np.ndarray:
    """``Y`` with the targets of batch ``at`` (rows ``at * batch`` on) all padding but its first
    token: a batch the data pipeline emptied. The loss's mean over one token weighs that token
    as much as a whole batch, so its gradient is many times the usual; ``mislabel`` also gives
    the token a wrong target (a corrupted label: a larger gradient still)."""
    Y = Y.copy()
    rows = Y[at * batch : (at + 1) * batch]
    keep = rows[0, 0]
    rows[:] = IGNORE
    rows[0, 0] = (keep + 1) % VOCAB if mislabel else keep
    return Y


# ------------------------------------------------------------------------------ builders


def _adamw(lr: float, beta2: float = 0.999) -> Callable[..., Any]:
    def make(params: Any) -> Any:
        return _torch().optim.AdamW(params, lr=lr, betas=(0.9, beta2), weight_decay=0.0)

    make.__name__ = f"AdamW(lr={lr:g})"
    return make


def _sgd(lr: float) -> Callable[..., Any]:
    def make(params: Any) -> Any:
        return _torch().optim.SGD(params, lr=lr, momentum=0.9)

    make.__name__ = f"SGD(lr={lr:g}, momentum=0.9)"
    return make


def _gpt(seed: int, **kwargs: Any) -> Any:
    _torch().manual_seed(seed)
    return _modules().GPT(VOCAB, LENGTH, 32, 4, 2, **kwargs)


def _setup(
    model: Any, X: np.ndarray, Y: np.ndarray, optimizer: Any, epochs: int = EPOCHS, **options: Any
) -> Setup:
    return Setup(
        model, X, Y, _modules().token_cross_entropy, optimizer, epochs=epochs, batch_size=BATCH,
        shuffle=False, options=options,
    )  # fmt: skip


@_float32
def _healthy(seed: int) -> Setup:
    # two successors a token: learned to 15% of the constant baseline in 200 steps, so that
    # diagnose skips the costly checks that explain a run that does not learn
    X, Y = bigram_sequences(np.random.default_rng(seed), SEQUENCES, branch=2)
    return _setup(_gpt(seed), X, Y, _adamw(1e-2), warmup=20, clip=1.0)


@_float32
def _no_warmup(seed: int) -> Setup:
    X, Y = bigram_sequences(np.random.default_rng(seed), SEQUENCES)
    return _setup(_gpt(seed), X, Y, _adamw(0.1))


@_float32
def _no_qk_norm(seed: int) -> Setup:
    X, Y = bigram_sequences(np.random.default_rng(seed), SEQUENCES)
    return _setup(_gpt(seed), X, Y, _adamw(0.3), warmup=50)


def _sgd_run(seed: int, Y_of: Callable[[np.ndarray, np.ndarray], tuple]) -> Setup:
    X, Y = bigram_sequences(np.random.default_rng(seed), CORRUPT_STEPS * BATCH)
    X, Y = Y_of(X, Y)
    return _setup(_gpt(seed), X, Y, _sgd(0.4), epochs=1, warmup=20)


@_float32
def _noise_batch(seed: int) -> Setup:
    rows = slice(CORRUPT_AT * BATCH, (CORRUPT_AT + 1) * BATCH)

    def noise(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed + 1)  # the pipeline's garbage: random tokens
        X, Y = X.copy(), Y.copy()
        X[rows] = rng.integers(0, VOCAB, X[rows].shape)
        Y[rows] = rng.integers(0, VOCAB, Y[rows].shape)
        return X, Y

    return _sgd_run(seed, noise)


@_float32
def _corrupted_batch(seed: int) -> Setup:
    return _sgd_run(seed, lambda X, Y: (X, corrupt_batch(Y, BATCH, CORRUPT_AT, mislabel=True)))


@_float32
def _fp16_half(seed: int) -> Setup:
    X, Y = bigram_sequences(np.random.default_rng(seed), SEQUENCES)
    model = _gpt(seed).half()
    return _setup(model, X, Y, _adamw(1e-2), warmup=20)


@_float32
def _fp16_scaler(seed: int) -> Setup:
    torch = _torch()
    X, Y = bigram_sequences(np.random.default_rng(seed), SEQUENCES, branch=1)
    model = _modules().Autocast(_gpt(seed), torch.float16, upcast=False)
    setup = _setup(model, X, Y, _adamw(0.03), warmup=20, grad_scaler=True)
    setup.loss = _modules().naive_cross_entropy
    return setup


@_float32
def _fp16_scaled(seed: int) -> Setup:
    torch = _torch()
    X, Y = bigram_sequences(np.random.default_rng(seed), SEQUENCES)
    model = _modules().Autocast(_gpt(seed), torch.float16)
    return _setup(model, X, Y, _adamw(1e-2), warmup=20, clip=1.0, grad_scaler=True)


# ------------------------------------------------------------------------------ the catalog

LM_SICK: list[Scenario] = [
    Scenario(
        "lm-no-warmup",
        "update-ratio-jump",
        "The GPT trained with AdamW at learning rate 0.1 from the first step, no warmup: the "
        "fresh optimizer's first updates move every weight by about 0.1, several times the "
        "initial weights, the loss spikes at step 3 and the attention logits blow up after.",
        "'loss spikes right at the start of training: add warmup' (nanoGPT, Hugging Face forums)",
        _no_warmup,
    ),
    Scenario(
        "lm-no-qk-norm",
        "attention-logit-growth",
        "The GPT at learning rate 0.3 with a 50-step warmup and no qk-layernorm: the queries "
        "and keys grow until attention logits pass 1e4, the softmax is one-hot and the loss "
        "climbs back up after the warmup.",
        "Wortsman et al. 2023, 'Small-scale proxies for large-scale Transformer training "
        "instabilities': attention-logit growth, fixed by qk-layernorm",
        _no_qk_norm,
    ),
    Scenario(
        "lm-corrupted-batch",
        "grad-norm-spike",
        "The GPT under SGD (lr 0.4, momentum 0.9) without gradient clipping; batch 200 of 300 "
        "is all padding (-100) but one token, whose label is wrong: the loss's mean over one "
        "token gives its gradient many times the usual weight, and momentum carries the jump "
        "until the loss explodes (in 3 seeds of 5: in the others the run recovers, and the "
        "doctor says a spike that recovered).",
        "'loss spike then NaN after a bad batch; gradient clipping fixes it' (PyTorch forums, "
        "OLMo's and PaLM's spike reports)",
        _corrupted_batch,
    ),
    Scenario(
        "lm-fp16-half",
        NAN_SOURCE,
        "The GPT converted with model.half() and trained with AdamW in pure float16, no loss "
        "scaling and no float32 master weights: Adam's eps (1e-8) and most squared gradients "
        "are 0 in float16, the first update divides by 0 and the weights are NaN.",
        "'model.half() with Adam gives NaN after the first step' (PyTorch forums)",
        _fp16_half,
    ),
    Scenario(
        "lm-fp16-scaler-collapse",
        "loss-scaler-collapse",
        "The GPT in float16 autocast with a GradScaler, its logits returned in float16 and a "
        "hand-written cross-entropy (log of a sum of exp, no max subtracted) on a deterministic "
        "chain: once a logit passes 11.09, exp overflows float16, every step's loss is inf, the "
        "scaler skips every step and its scale falls to 0.",
        "'GradScaler scale keeps decreasing, loss is inf' (PyTorch forums, AMP issues)",
        _fp16_scaler,
    ),
]

LM_HEALTHY: list[Scenario] = [
    Scenario(
        "lm",
        None,
        "The GPT trained with AdamW (lr 0.01) after a 20-step warmup, gradients clipped at 1.",
        "nanoGPT's recipe at a CPU size (issue 23's healthy run)",
        _healthy,
    ),
    Scenario(
        "lm-noise-batch",
        None,
        "The GPT under SGD (lr 0.4, momentum 0.9); batch 200 of 300 is random tokens: its loss "
        "jumps to about 8 times the level and the next steps are back. A benign spike: "
        "information only.",
        "benign loss spikes of LM training on a bad batch (OLMo's stability monitor counts them)",
        _noise_batch,
    ),
    Scenario(
        "lm-fp16-scaled",
        None,
        "The GPT in float16 autocast with a GradScaler, the usual way: logits in float32, "
        "PyTorch's cross-entropy. The scaler skips its first step or two (its initial scale "
        "65536 overflows) and settles: no collapse.",
        "PyTorch's automatic mixed precision recipe (the scaler-collapse case's healthy twin)",
        _fp16_scaled,
    ),
]

LM_CATALOG: list[Scenario] = [*LM_SICK, *LM_HEALTHY]


# ------------------------------------------------------------------------------ the loop


@dataclass
class LMRun:
    """What :func:`run_lm_loop` returns: each step's loss, the total gradient norm of every
    step (all parameters, before clipping; empty unless asked), and the watch (or None)."""

    losses: list[float]
    watch: Any
    grad_norms: list[float]


def run_lm_loop(setup: Setup, watch: bool = False, grad_norms: bool = False) -> LMRun:
    """Train ``setup`` in place the way a user's script does: batches in order, a linear warmup
    of ``options["warmup"]`` steps, ``clip_grad_norm_`` at ``options["clip"]``, a
    ``torch.amp.GradScaler`` when ``options["grad_scaler"]``; inside ``nndoctor.watch`` when
    ``watch`` (the loss logged with ``watch.log``, as for any functional loss). ``grad_norms``:
    also keep every step's total gradient norm (what a loop's own spike detector reads)."""
    torch = _torch()
    opts = setup.options
    X, Y = torch.as_tensor(setup.X), torch.as_tensor(setup.Y)
    model = setup.model
    optimizer = setup.optimizer(model.parameters())
    base = [g["lr"] for g in optimizer.param_groups]
    warmup, clip = opts.get("warmup", 0), opts.get("clip")
    scaler = torch.amp.GradScaler("cpu") if opts.get("grad_scaler") else None
    w = None
    if watch:
        import nndoctor

        w = nndoctor.watch(model, optimizer, alerts=False)
    batch = setup.batch_size or len(X)
    losses: list[float] = []
    norms: list[float] = []
    step = 0
    with w if w is not None else contextlib.nullcontext():
        for _ in range(setup.epochs):
            for start in range(0, len(X), batch):
                if step < warmup:
                    for g, lr in zip(optimizer.param_groups, base, strict=True):
                        g["lr"] = lr * (step + 1) / warmup
                xb, yb = X[start : start + batch], Y[start : start + batch]
                optimizer.zero_grad()
                output = model(xb)
                loss = setup.loss(output, yb)
                if w is not None:
                    w.log(loss, output, yb)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if clip or grad_norms:
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip or math.inf)
                    if grad_norms:
                        norms.append(float(norm))
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                losses.append(float(loss.detach()))
                step += 1
    return LMRun(losses, w, norms)


SCRIPT = '''\
"""{name}: {description}

Root cause: {expected}. Watched without changing a line: nndoctor run {file}
"""

import torch

from nndoctor.scenarios.torch_lm import LM_CATALOG, run_lm_loop

setup = next(s for s in LM_CATALOG if s.name == "{name}").build({seed})
losses = run_lm_loop(setup).losses
print(f"final batch loss {{losses[-1]:.4g}}")
'''


def script(name: str, seed: int = 0, file: str = "lm.py") -> str:
    """The plain training script of case ``name`` (for ``nndoctor run``)."""
    case = next(s for s in LM_CATALOG if s.name == name)
    return SCRIPT.format(
        name=name,
        description=case.description,
        expected=case.expected or "none, this run is healthy",
        file=file,
        seed=seed,
    )
