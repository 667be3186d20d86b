"""Transformer encoder tagger: token ``nn.Embedding`` plus learned positions, two hand-written
encoder layers each calling ``nn.MultiheadAttention`` as
``src, attn = self.self_attn(src, src, src, attn_mask=src_mask, key_padding_mask=...)``
(time-first layout, post-norm, ReLU feed-forward), and a ``nn.Linear`` tag head, trained with
``nn.CrossEntropyLoss(ignore_index=-100)`` on every real token (padding tags set to -100).

Rebuilt from https://github.com/pytorch/pytorch/issues/40932: "I plan to reimplement a
transformer variant model. I import MultiheadAttention ... if the whole input is padded, it
means the key_padding_mask parameter is full of True ... This setting leads to NaN in model
parameters and raises ValueError("nan loss encountered") ... the reason is one example in a
batch is full of <pad>." Every key of that example is filled with -inf, its softmax row is
0/0 = NaN, and the NaN reaches the loss and, through backward, every parameter. In the linked
pytorch/pytorch#41508 a commenter relays the maintainer's view that fully padded rows are an
input error ("these rows should probably be deleted"); fix: drop the empty sentences from the
data. (The call keeps ``need_weights`` at its default True, as in the report; in torch 2.x the
``need_weights=False`` path, used inside ``nn.TransformerEncoderLayer``, no longer gives NaN.)

Departures: synthetic sentences of 12 word ids, length 3-10, about 3% of them empty (as
blank lines in a corpus); the tag of a word is 1 when the word occurs elsewhere in its own
sentence (needs attention); d_model 32, 2 heads, 2 layers, dropout 0; Adam, 5 epochs of
about 2400 sentences; the src_mask (attn_mask) is None as for an encoder. The tagger's
all-pad rows are ignored by the loss, so the first loss is finite: the NaN comes through
backward into the weights at step 1 and the loss is NaN from step 2 on.
Measured: sick: loss NaN in every epoch, tag accuracy 0.594-0.597 (NaN logits argmax to tag
0; the constant-tag accuracy is 0.597); fixed: loss 0.655 -> 0.022, tag accuracy 0.613 ->
0.994.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import MultiheadAttention

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

PAD, N_WORDS, MAX_LEN = 0, 12, 10
N_SENT, EPOCHS, BATCH = 2400, 5, 32


def make_sentence() -> list[int]:
    if rng.random() < 0.03:
        return []  # an empty line of the corpus
    return [int(w) + 1 for w in rng.integers(N_WORDS, size=int(rng.integers(3, MAX_LEN + 1)))]


data = [make_sentence() for _ in range(N_SENT)]


def make_batch(sents: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src = torch.full((MAX_LEN, len(sents)), PAD, dtype=torch.long)  # (len, batch)
    tags = torch.full((MAX_LEN, len(sents)), -100, dtype=torch.long)
    for i, s in enumerate(sents):
        if s:
            src[: len(s), i] = torch.tensor(s)
            tags[: len(s), i] = torch.tensor([int(s.count(w) > 1) for w in s])
    return src, src.t() == PAD, tags  # key_padding_mask: (batch, len), True = <pad>


class EncoderLayer(nn.Module):
    def __init__(self, embed_dim, nhead, dim_feedforward, dropout=0.0):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim=embed_dim, num_heads=nhead, dropout=dropout)
        self.linear1 = nn.Linear(embed_dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, embed_dim)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)

    def forward(self, src, src_mask=None, src_key_padding_mask=None):
        src2, attn = self.self_attn(
            src, src, src, attn_mask=src_mask, key_padding_mask=src_key_padding_mask
        )
        src = self.norm1(src + src2)
        src2 = self.linear2(torch.relu(self.linear1(src)))
        return self.norm2(src + src2)


class Tagger(nn.Module):
    def __init__(self, d_model=32, nhead=2, nlayers=2):
        super().__init__()
        self.embed = nn.Embedding(N_WORDS + 1, d_model, padding_idx=PAD)
        self.pos = nn.Parameter(0.1 * torch.randn(MAX_LEN, 1, d_model))
        self.layers = nn.ModuleList([EncoderLayer(d_model, nhead, 64) for _ in range(nlayers)])
        self.out = nn.Linear(d_model, 2)

    def forward(self, src, src_key_padding_mask):
        x = self.embed(src) + self.pos
        for layer in self.layers:
            x = layer(x, src_mask=None, src_key_padding_mask=src_key_padding_mask)
        return self.out(x)  # (len, batch, 2)


data = [s for s in data if len(s) > 0]  # the fix
model = Tagger()
criterion = nn.CrossEntropyLoss(ignore_index=-100)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

for epoch in range(EPOCHS):
    model.train()
    order = rng.permutation(len(data))
    losses, correct, total = [], 0, 0
    for start in range(0, len(data), BATCH):
        src, pad_mask, tags = make_batch([data[i] for i in order[start : start + BATCH]])
        optimizer.zero_grad()
        logits = model(src, pad_mask)
        loss = criterion(logits.view(-1, 2), tags.view(-1))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        real = tags != -100
        correct += (logits.argmax(-1)[real] == tags[real]).sum().item()
        total += real.sum().item()
    print(f"epoch {epoch}: loss {np.mean(losses):.4f} tag accuracy {correct / total:.3f}")
