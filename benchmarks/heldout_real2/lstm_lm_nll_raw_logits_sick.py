"""LSTM word language model (the pytorch/examples word_language_model, --model LSTM): embedding,
LSTM, dropout, linear decoder to the vocabulary; SGD with lr 20 and gradient clipping at 0.25, the
example's defaults, hidden state carried across BPTT chunks and detached.

Rebuilt from https://github.com/pytorch/examples/issues/734: after the criterion of the example was
changed from CrossEntropyLoss to NLLLoss (PR #721, "remove double usage of log_softmax"), running
the example gave a negative loss and a perplexity of 0 (issue #730: "it seems like loss is going to
explode"). The maintainers pointed to PR #732: the RNN returned the raw decoder output, and
NLLLoss on raw logits is just -logit[target], which is unbounded below; the fix makes the model
return F.log_softmax(decoded).

Departures: a synthetic corpus of 40 words (each word has two likely successors, Zipf-like noise)
instead of WikiText-2; a small model (64 units); torch.optim.SGD instead of the example's manual
`p.data.add_(-lr, p.grad)` (the same update); the loss and a true cross-entropy are printed.
Measured here (4 epochs, about 5 s): sick: NLL loss -1827 and falling without bound, true
validation cross-entropy 2636 nats, next-word accuracy 0.096 (one word predicted everywhere);
fixed: cross-entropy 1.72 (ppl 5.6), accuracy 0.435 (the corpus allows about 0.46).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, BPTT, BATCH, EMSIZE, NHID = 40, 16, 32, 64, 64
# a corpus with structure: each word has two likely successors; word frequencies are Zipf-like
successors = rng.integers(0, VOCAB, size=(VOCAB, 2))
unigram = 1.0 / np.arange(1, VOCAB + 1)
unigram /= unigram.sum()
draws, noise = rng.random(40000), rng.choice(VOCAB, size=40000, p=unigram)
corpus = [0]
for r, u in zip(draws, noise, strict=True):
    corpus.append(int(successors[corpus[-1], int(r < 0.35)] if r < 0.8 else u))
split = 34000
train_ids = torch.as_tensor(corpus[:split])
valid_ids = torch.as_tensor(corpus[split:])


def batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous()  # (time, batch)


train_data = batchify(train_ids, BATCH)
valid_data = batchify(valid_ids, 10)


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(
        self, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout if nlayers > 1 else 0.0)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        return decoded.view(-1, VOCAB), hidden  # raw scores, fed to NLLLoss

    def init_hidden(self, bsz: int):
        weight = next(self.parameters())
        return (
            weight.new_zeros(self.nlayers, bsz, self.nhid),
            weight.new_zeros(self.nlayers, bsz, self.nhid),
        )


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source: torch.Tensor, i: int):
    seq_len = min(BPTT, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


def evaluate(data_source: torch.Tensor) -> tuple[float, float]:
    model.eval()
    total_ce, correct, count = 0.0, 0, 0
    hidden = model.init_hidden(data_source.size(1))
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, BPTT):
            data, targets = get_batch(data_source, i)
            output, hidden = model(data, hidden)
            # the true cross-entropy, whatever the model returns
            total_ce += F.cross_entropy(output, targets, reduction="sum").item()
            correct += (output.argmax(1) == targets).sum().item()
            count += targets.numel()
    return total_ce / count, correct / count


model = RNNModel(VOCAB, EMSIZE, NHID, 1)
criterion = nn.NLLLoss()
lr, clip = 20.0, 0.25
optimizer = torch.optim.SGD(model.parameters(), lr=lr)
for epoch in range(1, 5):
    model.train()
    total_loss, nbatches = 0.0, 0
    hidden = model.init_hidden(BATCH)
    for i in range(0, train_data.size(0) - 1, BPTT):
        data, targets = get_batch(train_data, i)
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        # `clip_grad_norm` helps prevent the exploding gradient problem in RNNs / LSTMs.
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total_loss += loss.item()
        nbatches += 1
    train_loss = total_loss / nbatches
    val_ce, val_acc = evaluate(valid_data)
    print(
        f"epoch {epoch}: train loss {train_loss:8.3f} ppl {math.exp(min(train_loss, 50)):10.2f} | "
        f"valid cross-entropy {val_ce:7.3f} ppl {math.exp(min(val_ce, 50)):10.2f} "
        f"accuracy {val_acc:.3f}"
    )
