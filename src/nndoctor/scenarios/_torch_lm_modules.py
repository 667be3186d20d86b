"""The small GPT-style decoder of the language-model scenarios (:mod:`nndoctor.scenarios.torch_lm`).

Imports torch at the top: only the builders import it (lazily), so ``import nndoctor.scenarios``
stays NumPy-only. Module-level classes, so the models deep-copy and pickle like a user's own.

The model is nanoGPT's shape at a size a CPU trains in seconds: token and position embeddings,
``layers`` pre-norm blocks (causal self-attention with separate ``q``, ``k``, ``v`` projections
through ``F.scaled_dot_product_attention``, then a GELU MLP), a final LayerNorm and an untied
head over the vocabulary: ``(batch, time)`` ids -> ``(batch, time, vocab)`` logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; ``qk_norm`` puts a LayerNorm on each head's queries and
    keys before their dot products (Wortsman et al. 2023's fix for attention-logit growth), with
    learned gains unless ``qk_gain`` is False (then each logit is at most ``sqrt(head_dim)``)."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = False, qk_gain: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        head_dim = dim // heads
        affine = qk_norm != "fixed"
        self.q_norm = (
            nn.LayerNorm(head_dim, elementwise_affine=affine) if qk_norm else nn.Identity()
        )
        self.k_norm = (
            nn.LayerNorm(head_dim, elementwise_affine=affine) if qk_norm else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, h, d // h).transpose(1, 2)  # (batch, heads, time, head_dim)

        q = self.q_norm(split(self.q(x)))
        k = self.k_norm(split(self.k(x)))
        y = F.scaled_dot_product_attention(q, k, split(self.v(x)), is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))  # (batch, time, dim)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, dim: int, heads: int, qk_norm: bool, qk_gain: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, qk_norm, qk_gain)
        self.ln2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 4 * dim)
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))  # (batch, time, dim)


class GPT(nn.Module):
    """A decoder-only language model; see the module docstring.

    Parameters
    ----------
    vocab, length : int
        Vocabulary size and the longest sequence.
    dim, heads, layers : int
        Width, attention heads and blocks.
    qk_norm, qk_gain : bool
        LayerNorm on queries and keys in every block, with learned gains or without.
    """

    def __init__(
        self,
        vocab: int,
        length: int,
        dim: int,
        heads: int,
        layers: int,
        qk_norm: bool = False,
        qk_gain: bool = True,
    ) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(length, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, qk_norm, qk_gain) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        # GPT-2's init: N(0, 0.02), the residual projections scaled by 1/sqrt(2 * layers)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                residual = name.endswith(("proj.weight", "out.weight"))
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers) if residual else 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        h = self.token(ids) + self.position(torch.arange(t, device=ids.device))  # (b, t, dim)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))  # (batch, time, vocab)


class Autocast(nn.Module):
    """``model`` run under autocast in ``dtype`` (what ``with torch.autocast(...)`` around a
    training script's forward pass does, kept inside the model so any loop trains it so); the
    logits come back in float32 when ``upcast`` (as a language model computes its loss on
    them), else in autocast's precision."""

    def __init__(self, model: nn.Module, dtype: torch.dtype, upcast: bool = True) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.upcast = upcast

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.autocast(ids.device.type, dtype=self.dtype):
            out = self.model(ids)
        return out.float() if self.upcast else out


def token_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy: ``logits`` ``(batch, time, vocab)``, ``target``
    ``(batch, time)`` token ids."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def naive_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy written from its formula, ``log(sum(exp(logits))) - logit of
    the target``, in the logits' own dtype and without subtracting the largest logit first:
    ``exp`` overflows float16 once a logit passes log(65504) = 11.09."""
    log_z = logits.exp().sum(dim=-1).log()  # (batch, time)
    picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (batch, time)
    return (log_z - picked).mean()
