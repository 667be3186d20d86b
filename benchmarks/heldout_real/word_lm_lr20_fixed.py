"""Transformer word language model (the pytorch/examples word_language_model, model=Transformer):
embedding, positional encoding, causal encoder, decoder to the vocabulary; SGD with lr 20 and
gradient clipping at 0.25, the example's defaults for its LSTM.

Rebuilt from https://github.com/pytorch/examples/issues/846: the Transformer predicts the same,
most frequent token at every step; the asker's fix: drop the RNN-oriented clipping and use a
learning rate of 0.1 instead of 20.
"""

import math

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, BPTT, BATCH = 40, 16, 32
# a corpus with structure: each word has two likely successors; word frequencies are Zipf-like
successors = rng.integers(0, VOCAB, size=(VOCAB, 2))
unigram = 1.0 / np.arange(1, VOCAB + 1)
unigram /= unigram.sum()
corpus = [0]
for _ in range(60000):
    r = rng.random()
    nxt = successors[corpus[-1], int(r < 0.35)] if r < 0.8 else rng.choice(VOCAB, p=unigram)
    corpus.append(int(nxt))
data = torch.as_tensor(corpus[: len(corpus) // BATCH * BATCH]).view(BATCH, -1).T  # (time, batch)


class TransformerModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Embedding(VOCAB, 64)
        position = torch.arange(BPTT)[:, None]
        div = torch.exp(torch.arange(0, 64, 2) * (-math.log(10000.0) / 64))
        pe = torch.zeros(BPTT, 1, 64)
        pe[:, 0, 0::2], pe[:, 0, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("pe", pe)
        layer = nn.TransformerEncoderLayer(64, 2, 128, dropout=0.0)
        self.transformer = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.decoder = nn.Linear(64, VOCAB)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(BPTT))

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        x = self.encoder(src) * math.sqrt(64) + self.pe[: len(src)]
        return self.decoder(self.transformer(x, self.mask[: len(src), : len(src)]))


model = TransformerModel()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # the fix: lr 0.1, no clipping
for epoch in range(3):
    total = 0.0
    starts = range(0, data.size(0) - 1 - BPTT, BPTT)
    for i in starts:
        source, targets = data[i : i + BPTT], data[i + 1 : i + 1 + BPTT]
        optimizer.zero_grad()
        output = model(source)
        loss = criterion(output.view(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        total += loss.item()
    with torch.no_grad():
        guesses = model(data[:BPTT]).argmax(-1)
    distinct = len(torch.unique(guesses))
    print(f"epoch {epoch}: loss {total / len(starts):.3f} ppl {math.exp(total / len(starts)):.1f}"
          f" distinct argmax tokens {distinct}")  # fmt: skip
