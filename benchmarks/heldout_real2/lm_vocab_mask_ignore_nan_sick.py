"""Small GPT-style decoder language model whose next-token logits are restricted by a vocabulary
mask (-inf on the tokens not allowed at a position), trained with F.cross_entropy and
ignore_index=-1 on the padded positions.

Rebuilt from https://jkschin.com/blog/2023/cross-entropy-loss-ignore-index/: the author trained a
GPT-based model whose output was post-processed with a -inf mask; for convenience the positions
that do not count (their label set to -1, ignore_index=-1) were masked with -inf on every
vocabulary entry. The loss was a normal number on the first step and NaN from the second on.
The cause found: a row of logits that is -inf everywhere gives NaN in log_softmax; ignore_index
drops that row from the loss value but not from the backward pass (0 * NaN = NaN), so the first
optimizer step writes NaN into every weight. The fix: mask the ignored rows with 0, not -inf.

Departures: synthetic sequences of alternating "letter" and "digit" tokens (a digit is a function
of the letter before it, so half of the tokens are predictable), right-padded to a fixed length;
the vocabulary mask allows the letter half or the digit half of the vocabulary by position.
Measured: sick: loss 2.34 at step 0, NaN from step 1 on, digit accuracy 0.000 (argmax of NaN);
fixed: loss 1.04 (the letters are random: half of ln 10), digit accuracy 1.000 after 2 epochs.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

PAD, IGNORE, T, N = 0, -1, 16, 1024
LETTERS = np.arange(1, 11)  # tokens 1..10
DIGITS = np.arange(11, 21)  # tokens 11..20
VOCAB = 21


def make_sequence() -> list[int]:
    length = 2 * int(rng.integers(3, T // 2 + 1))  # 6..16 tokens, letter/digit pairs
    seq = []
    for _ in range(length // 2):
        letter = int(rng.choice(LETTERS))
        seq += [letter, int(DIGITS[(letter * 3) % 10])]  # the digit follows from the letter
    return seq + [PAD] * (T - length)


tokens = torch.as_tensor([make_sequence() for _ in range(N)])
inputs, labels = tokens[:, :-1], tokens[:, 1:].clone()
labels[labels == PAD] = IGNORE  # padded positions do not count

# vocabulary mask: the next token is a digit after a letter and a letter after a digit
vocab_mask = torch.full((N, T - 1, VOCAB), float("-inf"))
next_is_digit = torch.zeros(N, T - 1, dtype=torch.bool)
next_is_digit[:, 0::2] = True
vocab_mask[..., DIGITS] = torch.where(next_is_digit[..., None], 0.0, float("-inf"))
vocab_mask[..., LETTERS] = torch.where(next_is_digit[..., None], float("-inf"), 0.0)
vocab_mask[labels == IGNORE] = float("-inf")  # positions that do not count: mask everything


class TinyGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 64)
        self.pos = nn.Parameter(torch.randn(1, T, 64) * 0.02)
        layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.lm_head = nn.Linear(64, VOCAB)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(T))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.blocks(self.embed(x) + self.pos[:, :t], mask=self.causal[:t, :t], is_causal=True)
        return self.lm_head(h)  # (batch, time, vocab)


model = TinyGPT()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
step = 0
for epoch in range(2):
    perm = torch.randperm(N)
    for start in range(0, N, 32):
        idx = perm[start : start + 32]
        optimizer.zero_grad()
        logits = model(inputs[idx]) + vocab_mask[idx]
        loss = F.cross_entropy(
            logits.reshape(-1, VOCAB), labels[idx].reshape(-1), ignore_index=IGNORE
        )
        loss.backward()
        optimizer.step()
        if step < 3 or step % 16 == 0:
            print(f"epoch {epoch} step {step}: loss {loss.item():.4f}")
        step += 1
    with torch.no_grad():
        pred = (model(inputs) + vocab_mask).argmax(-1)
        digit_pos = (labels != IGNORE) & next_is_digit
        acc = (pred[digit_pos] == labels[digit_pos]).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} digit accuracy {acc:.3f}")
