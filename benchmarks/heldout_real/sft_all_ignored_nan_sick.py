"""Supervised fine-tuning of a small decoder language model, prompt tokens masked with -100.

Rebuilt from https://github.com/nvidia-cosmos/cosmos-rl/pull/155: when every label of a
micro-batch is -100 (here: a long prompt truncated to the context, so its answer is cut off),
F.cross_entropy(..., ignore_index=-100) divides 0 by 0 and returns NaN, which poisons the
accumulated gradient and every weight after the step.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, PAD, SEP, EOS, CONTEXT, IGNORE = 20, 0, 1, 2, 16, -100


def make_example() -> tuple[list[int], list[int]]:
    """Prompt of content tokens, SEP, then the answer: the prompt's first 3 tokens and EOS."""
    prompt = list(rng.integers(3, VOCAB, size=rng.integers(3, 19)))
    answer = [*prompt[:3], EOS]
    ids = [*prompt, SEP, *answer][:CONTEXT]  # truncated to the context length
    labels = ([IGNORE] * (len(prompt) + 1) + answer)[:CONTEXT]
    pad = CONTEXT - len(ids)
    return ids + [PAD] * pad, labels + [IGNORE] * pad


examples = [make_example() for _ in range(1024)]
ids = torch.as_tensor([e[0] for e in examples])
labels = torch.as_tensor([e[1] for e in examples])


class TinyGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 64)
        self.pos = nn.Parameter(torch.randn(1, CONTEXT, 64) * 0.02)
        layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.lm_head = nn.Linear(64, VOCAB)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(CONTEXT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.blocks(self.embed(x) + self.pos[:, :t], mask=self.causal[:t, :t], is_causal=True)
        return self.lm_head(h)  # (batch, time, vocab)


model = TinyGPT()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
ACCUM = 8  # micro-batches of one sequence, 8 per optimizer step

for step in range(300):
    optimizer.zero_grad()
    total = 0.0
    for i in rng.integers(0, len(ids), size=ACCUM):
        logits = model(ids[i : i + 1])
        target = labels[i : i + 1, 1:]  # next-token labels
        loss = F.cross_entropy(
            logits[:, :-1].reshape(-1, VOCAB), target.reshape(-1), ignore_index=IGNORE
        )
        (loss / ACCUM).backward()
        total += loss.item() / ACCUM
    optimizer.step()
    if step % 50 == 49:
        with torch.no_grad():
            pred = model(ids).argmax(-1)[:, :-1]
            mask = labels[:, 1:] != IGNORE
            acc = (pred[mask] == labels[:, 1:][mask]).float().mean().item()
        print(f"step {step}: loss {total:.4f} answer-token accuracy {acc:.3f}")
