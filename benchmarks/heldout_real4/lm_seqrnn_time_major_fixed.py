"""ESPnet's ``SequentialRNNLM`` (espnet/nets/pytorch_backend/lm/seq_rnn.py): an ``nn.Embedding``
encoder, a two-layer ``nn.LSTM``, a ``nn.Linear`` decoder over the vocabulary, every weight
initialised uniform(-0.1, 0.1), trained with a token-level ``F.cross_entropy(...,
reduction="none")`` masked by ``x != 0`` (0 = <blank> padding) and averaged over real tokens;
sentences are fed as (batch, len) id tensors with <eos> as start and end symbol.

Rebuilt from https://github.com/espnet/espnet/issues/1456: "I Trained the same dataset using
Default LM and Seq_RNN LM with similar model size, and got very different results. With
Default LM ... ppl at 7. While using Seq_RNN LM, it early stop at epoch 5, with ppl at 37."
The asker then found the cause ("I think I know what's wrong: torch.nn.LSTM ta[kes] ...") :
``forward`` documents ``x`` as ``(batch, len)`` but the ``nn.LSTM`` is built without
``batch_first=True``, so it runs its recurrence down the batch axis: each sentence's state
carries tokens of the other sentences in the batch at the same position and never its own
earlier tokens (maintainers labelled it Bug). Fix, as in ESPnet's later rewrite of the same
class (espnet2/lm/seq_rnn_lm.py): ``batch_first=True`` on the LSTM.

Departures: synthetic "sentences" instead of ASR transcripts: 10 word ids (1..10), length
6-14, the first two words random and each later word ``w[t-2] % 10 + 1`` (two interleaved
counting streams), so the next word is set by the word two back and not by the current one;
vocabulary 12 (0 <blank>, 11 <eos>); 64 units, dropout 0.1 instead of 650/1024 units and 0.5;
Adam lr 5e-3 (espnet's optimizer for character LMs) with clip 1.0, 10 epochs of 1500
sentences; only the loss part of the class (no ``score`` / ``init_state`` for decoding);
``output.contiguous().view`` in ``_before_loss`` in both scripts, as espnet2 has it (with
``batch_first=True`` the LSTM output is not contiguous and a bare ``view`` raises).
Measured: sick: mean token loss 2.40 -> 2.33 and flat from epoch 3 (perplexity 10.2, about
ln 10 = 2.30, the loss of a model that does not know the sentence's own past); fixed: 2.33 ->
0.68 (perplexity 1.98; the floor set by the two random first words and the random length is
about 0.6).
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N_WORDS, EOS, N_VOCAB = 10, 11, 12
N_SENT, EPOCHS, BATCH = 1500, 10, 64


def make_sentence() -> list[int]:
    length = int(rng.integers(6, 15))
    w = [int(rng.integers(N_WORDS)) + 1, int(rng.integers(N_WORDS)) + 1]
    while len(w) < length:
        w.append(w[-2] % N_WORDS + 1)
    return w


def make_batch(sents: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """x = <eos> y, t = y <eos>, both padded with 0 (<blank>) to the longest: (batch, len)."""
    maxlen = max(len(s) for s in sents) + 1
    x = torch.zeros(len(sents), maxlen, dtype=torch.long)
    t = torch.zeros(len(sents), maxlen, dtype=torch.long)
    for i, s in enumerate(sents):
        x[i, : len(s) + 1] = torch.tensor([EOS] + s)
        t[i, : len(s) + 1] = torch.tensor(s + [EOS])
    return x, t


sentences = [make_sentence() for _ in range(N_SENT)]


class SequentialRNNLM(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(
            ninp, nhid, nlayers, dropout=dropout, batch_first=True
        )  # the fix
        self.decoder = nn.Linear(nhid, ntoken)
        for param in self.parameters():
            param.data.uniform_(-0.1, 0.1)

    def forward(self, x, t):
        """x: input ids (batch, len); t: target ids (batch, len)."""
        y = self._before_loss(x, None)[0]
        mask = (x != 0).to(y.dtype)
        loss = F.cross_entropy(y.view(-1, y.shape[-1]), t.view(-1), reduction="none")
        logp = loss * mask.view(-1)
        logp = logp.sum()
        count = mask.sum()
        return logp / count, logp, count

    def _before_loss(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(
            output.contiguous().view(output.size(0) * output.size(1), output.size(2))
        )
        return decoded.view(output.size(0), output.size(1), decoded.size(1)), hidden


model = SequentialRNNLM("LSTM", N_VOCAB, 64, 64, 2, dropout=0.1)
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

for epoch in range(EPOCHS):
    model.train()
    order = rng.permutation(N_SENT)
    total_logp, total_count = 0.0, 0.0
    for start in range(0, N_SENT, BATCH):
        x, t = make_batch([sentences[i] for i in order[start : start + BATCH]])
        optimizer.zero_grad()
        loss, logp, count = model(x, t)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total_logp += logp.item()
        total_count += count.item()
    mean = total_logp / total_count
    print(f"epoch {epoch}: loss {mean:.4f} perplexity {np.exp(mean):.2f}")
