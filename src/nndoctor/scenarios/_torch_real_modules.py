"""The ``torch.nn.Module`` classes and loss functions of the real-architecture scenarios.

Like :mod:`nndoctor.scenarios._torch_modules` this module imports torch at the top, so only the
builders in :mod:`nndoctor.scenarios.torch_real` import it (lazily). Everything lives at module
level, so the models deep-copy and pickle like a user's own, and every ``forward`` is written the
way such a model is usually written, faults included where a scenario asks for one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# the index PyTorch's cross-entropy skips by default: padded target positions
IGNORE = -100


# ------------------------------------------------------------------------------ images


class ConvNet(nn.Module):
    """A CIFAR-style CNN: two blocks of Conv 3x3 -> (BatchNorm) -> ReLU -> 2x2 max-pool, then
    a Linear classifier over ``outputs`` logits; ``(batch, channels, size, size)`` images with
    ``size`` divisible by 4."""

    def __init__(
        self, channels: int, size: int, width: int, outputs: int, batchnorm: bool = True
    ) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            norm = nn.BatchNorm2d(c_out) if batchnorm else nn.Identity()
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1), norm, nn.ReLU(), nn.MaxPool2d(2)
            )

        self.features = nn.Sequential(block(channels, width), block(width, 2 * width))
        self.fc = nn.Linear(2 * width * (size // 4) ** 2, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (batch, 2 * width, size / 4, size / 4)
        return self.fc(h.flatten(1))  # (batch, outputs)


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class UNet(nn.Module):
    """A two-level U-Net: encoder, 2x2 max-pool, bottleneck, transposed-conv up-sampling,
    skip connection by concatenation, decoder, 1x1 conv to ``classes`` logits per pixel:
    ``(batch, channels, H, W)`` -> ``(batch, classes, H, W)``."""

    def __init__(self, channels: int, classes: int, width: int) -> None:
        super().__init__()
        self.down = _double_conv(channels, width)
        self.bottom = _double_conv(width, 2 * width)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.decode = _double_conv(2 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)  # (batch, width, H, W)
        h = self.bottom(F.max_pool2d(skip, 2))  # (batch, 2 width, H/2, W/2)
        h = self.up(h)  # (batch, width, H, W)
        h = self.decode(torch.cat([h, skip], dim=1))  # (batch, width, H, W)
        return self.head(h)  # (batch, classes, H, W)


# ------------------------------------------------------------------------------ sequences


class RNNClassifier(nn.Module):
    """An LSTM or GRU over ``(batch, time, features)`` whose last output step goes through a
    Linear classifier.

    ``batch_first=False`` reproduces a common fault: the recurrent layer is built with
    PyTorch's default ``(time, batch, features)`` layout but fed ``(batch, time, features)``,
    so it runs along the batch, and ``out[:, -1]`` reads, for each sample, the state after
    every *earlier sample's* last time step.
    """

    def __init__(
        self, cell: str, features: int, hidden: int, classes: int, batch_first: bool = True
    ) -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(features, hidden, batch_first=batch_first)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (batch, time, hidden) when the layout is right
        return self.fc(out[:, -1])  # (batch, classes)


class GRUTagger(nn.Module):
    """Token ids ``(batch, time)`` -> Embedding -> bidirectional GRU -> a tag's logits per
    step ``(batch, time, tags)``; id 0 is padding."""

    def __init__(self, vocab: int, dim: int, hidden: int, tags: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.gru = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, tags)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.embed(ids))  # (batch, time, 2 hidden)
        return self.fc(out)  # (batch, time, tags)


class BagOfEmbeddings(nn.Module):
    """A text classifier: the mean of the token embeddings (``nn.EmbeddingBag``) through a
    small MLP; ``(batch, tokens)`` ids -> ``(batch, classes)``."""

    def __init__(self, vocab: int, dim: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, classes))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(ids))  # (batch, classes)


# ------------------------------------------------------------------------------ attention


class EncoderBlock(nn.Module):
    """A pre-norm transformer block written by hand around ``nn.MultiheadAttention``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        a, _ = self.attn(h, h, h, key_padding_mask=padding)  # (batch, time, dim)
        x = x + a
        return x + self.ff(self.norm2(x))


class PaddedEncoder(nn.Module):
    """Token ids ``(batch, time)`` (0 is padding) -> embeddings + learned positions -> one
    :class:`EncoderBlock` that masks the padding keys -> mean over the real tokens -> Linear.

    A sequence that is all padding has every key masked: the attention's softmax over nothing
    is NaN, and so is the mean over no tokens.
    """

    def __init__(self, vocab: int, dim: int, heads: int, length: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.position = nn.Parameter(0.02 * torch.randn(length, dim))
        self.block = EncoderBlock(dim, heads)
        self.fc = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        padding = ids == 0  # (batch, time), True where there is no token
        h = self.block(self.embed(ids) + self.position[: ids.shape[1]], padding)
        keep = (~padding).unsqueeze(-1).to(h.dtype)  # (batch, time, 1)
        pooled = (h * keep).sum(1) / keep.sum(1)  # (batch, dim)
        return self.fc(pooled)  # (batch, classes)


class PooledEncoder(nn.Module):
    """A BERT-like classifier: ``nn.TransformerEncoder`` with ``src_key_padding_mask`` (id 0
    is padding), the first token's state (a [CLS] token) through a Linear classifier.

    ``pooler`` is built as in BERT but unused by design (the classifier reads the [CLS]
    state directly): its parameters never get a gradient, which is harmless.
    """

    def __init__(self, vocab: int, dim: int, heads: int, length: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.position = nn.Parameter(0.02 * torch.randn(length, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.pooler = nn.Linear(dim, dim)  # kept for checkpoints; not on the forward path
        self.fc = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids) + self.position[: ids.shape[1]]  # (batch, time, dim)
        h = self.encoder(h, src_key_padding_mask=ids == 0)
        return self.fc(h[:, 0])  # (batch, classes)


class TinyGPT(nn.Module):
    """A decoder-only language model: token and position embeddings, ``layers`` causal
    pre-norm transformer layers, a final LayerNorm and a Linear head over the vocabulary:
    ``(batch, time)`` ids -> ``(batch, time, vocab)`` logits.

    ``probabilities=True`` ends the forward with a softmax (the sampling code's), which a
    cross-entropy loss then applies a second time.
    """

    def __init__(
        self, vocab: int, dim: int, heads: int, layers: int, length: int,
        probabilities: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.token = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(length, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        self.probabilities = probabilities

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        h = self.token(ids) + self.position(torch.arange(t, device=ids.device))  # (batch, t, dim)
        causal = nn.Transformer.generate_square_subsequent_mask(t, ids.device, h.dtype)
        h = self.blocks(h, mask=causal, is_causal=True)
        logits = self.head(self.norm(h))  # (batch, t, vocab)
        return logits.softmax(-1) if self.probabilities else logits


class MixedPrecision(nn.Module):
    """``model`` run under CPU autocast in ``dtype``: what ``with torch.autocast(...)`` around
    the forward pass does in a mixed-precision training script, kept inside the model so that
    any loop trains it so.

    ``upcast=True`` returns the output as float32 (as an LM computes its loss on float32
    logits); False returns it in autocast's precision, and a loss computed on it outside the
    autocast region runs in that precision too.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, upcast: bool) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.upcast = upcast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=self.dtype):
            out = self.model(x)
        return out.float() if self.upcast else out


# ------------------------------------------------------------------------------ losses


def token_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every scored position: ``output`` ``(batch, time, classes)``
    logits flattened to ``(batch * time, classes)``, ``target`` ``(batch, time)`` with
    ``-100`` at the positions not scored (padding)."""
    return F.cross_entropy(
        output.reshape(-1, output.shape[-1]), target.reshape(-1), ignore_index=IGNORE
    )


def sequence_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The negative log-likelihood of each whole sequence (the sum over its scored positions),
    averaged over the batch: what a CRF tagger or a sentence-level LM reports. It is about
    ``time`` times :func:`token_cross_entropy`."""
    total = F.cross_entropy(
        output.reshape(-1, output.shape[-1]),
        target.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return total / output.shape[0]


class BinaryFocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) for one logit per sample, written by hand from the paper:
    ``-alpha y (1-p)^gamma log p - (1-alpha) (1-y) p^gamma log(1-p)`` with ``p = sigmoid(z)``.

    The fault is the paper's formula taken literally: once ``sigmoid`` rounds to exactly 1
    (a logit above about 6.2 in bfloat16, 16.6 in float32) ``log(1 - p)`` is ``-inf``, and
    ``(1 - y) * -inf`` is NaN for a positive sample, whose ``1 - y`` is 0.
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25) -> None:
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits)
        positive = -self.alpha * target * (1 - p) ** self.gamma * torch.log(p)
        negative = -(1 - self.alpha) * (1 - target) * p**self.gamma * torch.log(1 - p)
        return (positive + negative).mean()


class SoftmaxCrossEntropy(nn.Module):
    """Cross-entropy written as a module of its own (log-softmax, then the true class's
    negative log-probability, averaged): ``(batch, classes)`` logits, ``(batch,)`` labels."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = logits.log_softmax(dim=1)  # (batch, classes)
        return -log_p.gather(1, target.unsqueeze(1)).mean()
