"""The custom ``torch.nn.Module`` classes of the PyTorch scenarios.

This module imports torch at the top, so only the builders in ``torch_cases`` import it (lazily):
``import nndoctor.scenarios`` stays NumPy-only. The classes live at module level so models built
from them can be deep-copied and pickled like a user's own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FunctionalMLP(nn.Module):
    """Two hidden layers whose ReLUs are called in ``forward`` (``F.relu``), not modules.

    Nothing between the ``Linear`` modules is a module, so only the values that pass between
    them show that the net is not affine.
    """

    def __init__(self, sizes: tuple[int, int, int, int], dtype: torch.dtype) -> None:
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1], dtype=dtype)
        self.fc2 = nn.Linear(sizes[1], sizes[2], dtype=dtype)
        self.fc3 = nn.Linear(sizes[2], sizes[3], dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(x))  # (batch, sizes[1])
        h = F.relu(self.fc2(h))  # (batch, sizes[2])
        return self.fc3(h)  # (batch, sizes[3])


class ForgottenActivation(nn.Module):
    """Three ``Linear`` layers chained in ``forward`` with no activation between them, a
    sigmoid on the output: the user meant ``F.relu`` around the hidden layers and forgot it."""

    def __init__(self, sizes: tuple[int, int, int, int], dtype: torch.dtype) -> None:
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1], dtype=dtype)
        self.fc2 = nn.Linear(sizes[1], sizes[2], dtype=dtype)
        self.fc3 = nn.Linear(sizes[2], sizes[3], dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc3(self.fc2(self.fc1(x))))  # (batch, sizes[3])


class LastStepLSTM(nn.Module):
    """An LSTM over ``(batch, time, features)`` whose last hidden state goes through a Linear
    head, optionally followed by ``out`` (e.g. ``nn.ReLU()``). ``batch_first=False`` is the
    bug of swapped axes: the LSTM then reads the batch as time and the time as batch."""

    def __init__(
        self,
        features: int,
        hidden: int,
        dtype: torch.dtype,
        out: nn.Module | None = None,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=batch_first, dtype=dtype)
        self.head = nn.Linear(hidden, 1, dtype=dtype)
        self.out = out if out is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm(x)  # (batch, time, hidden)
        return self.out(self.head(seq[:, -1]))  # (batch, 1)


class TinyTransformer(nn.Module):
    """Scalar tokens projected to ``d_model``, one ``TransformerEncoderLayer``, mean-pooled,
    then a Linear classifier over ``classes`` logits."""

    def __init__(self, d_model: int, classes: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.embed = nn.Linear(1, d_model, dtype=dtype)
        self.encoder = nn.TransformerEncoderLayer(
            d_model,
            nhead=2,
            dim_feedforward=2 * d_model,
            dropout=0.0,
            batch_first=True,
            dtype=dtype,
        )
        self.head = nn.Linear(d_model, classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x))  # (batch, time, d_model)
        return self.head(h.mean(dim=1))  # (batch, classes)


class SmallCNN(nn.Module):
    """``(batch, 1, 8, 8)`` images: Conv 3x3 -> BatchNorm -> ReLU -> 2x2 max-pool -> Linear."""

    def __init__(self, channels: int, classes: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1, dtype=dtype)
        self.bn = nn.BatchNorm2d(channels, dtype=dtype)
        self.head = nn.Linear(channels * 16, classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)  # (batch, channels, 4, 4)
        return self.head(h.flatten(1))  # (batch, classes)


class PaddedTagger(nn.Module):
    """Token ids ``(batch, length)``, 0 the padding: an embedding, one self-attention over the
    tokens with the padding masked out (``key_padding_mask``), mean-pooled, a Linear head."""

    def __init__(self, vocabulary: int, d_model: int, classes: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, d_model, padding_idx=0, dtype=dtype)
        self.attend = nn.MultiheadAttention(d_model, 2, batch_first=True, dtype=dtype)
        self.head = nn.Linear(d_model, classes, dtype=dtype)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens)  # (batch, length, d_model)
        h, _ = self.attend(h, h, h, key_padding_mask=tokens == 0)
        return self.head(h.mean(dim=1))  # (batch, classes)


def binary_focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0
) -> torch.Tensor:
    """A hand-written binary focal loss on sigmoid probabilities, as often copied: the logs of
    ``p`` and ``1 - p`` are taken as they are, so a probability of exactly 0 or 1 (a logit
    beyond about 17 in float32) gives ``log(0) = -inf`` and ``0 * -inf = NaN``."""
    p = torch.sigmoid(logits)
    pos = target * (1 - p) ** gamma * torch.log(p)
    neg = (1 - target) * p**gamma * torch.log(1 - p)
    return -(pos + neg).mean()
