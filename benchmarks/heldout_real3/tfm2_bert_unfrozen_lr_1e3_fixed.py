"""Spam classifier of the Fine-Tuning-BERT notebook: a small BERT-style encoder (token + position
embeddings, post-LN ``nn.TransformerEncoder`` with GELU, ``src_key_padding_mask`` built from the
tokenizer's ``attention_mask``, tanh pooler on [CLS]) inside ``BERT_Arch`` (fc1 + ReLU + dropout +
fc2 + ``LogSoftmax``), trained with ``nn.NLLLoss(weight=class_wts)`` ('balanced' class weights),
``AdamW``, ``clip_grad_norm_(..., 1.0)``, exactly as the notebook's ``train()`` loop.

Rebuilt from https://github.com/prateekjoshi565/Fine-Tuning-BERT/issues/15: "I don't want to freeze
BERT parameters, so I commented those 2 lines ... However, when I did that all my sentences were
classified 0 (or sometimes all classified as 1) ... a single label is assigned to all sentences".
The notebook's ``AdamW(model.parameters(), lr = 1e-3)`` was chosen for training only the head on a
frozen BERT; once the encoder is unfrozen that rate is 20-50x the usual BERT fine-tuning rate
(2e-5 - 5e-5) and the encoder collapses to one output for every input. Cause: learning rate too
high for the unfrozen transformer; fix: a learning rate suited to the transformer.

Departures: synthetic "SMS" (vocabulary 300, 8-25 tokens padded to 25, 25% spam; spam messages
carry 2-3 of 18 "spam words") instead of spamdata_v2.csv; a 2-layer, d_model 32 encoder trained
from scratch instead of pretrained bert-base; 6 epochs instead of 10. Because a tiny encoder from
scratch tolerates larger steps than pretrained BERT, the rates are scaled with the same ratio as in
the report (about 30x the working rate): the sick script uses 3e-2, the fixed one 1e-3.
Measured: sick (lr 3e-2): train and valid loss flat at 0.69-0.70 (= ln 2 under the balanced
weights), every epoch a single class for all messages: valid accuracy 0.732 (all ham, epochs 1-2
and 4-6) or 0.268 (all spam, epoch 3); fixed (lr 1e-3): train loss 0.68 -> 0.19, valid accuracy
0.51 -> 0.93, fraction predicted spam 0.27 (true 0.27).
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

VOCAB, MAX_LEN, D_MODEL, EPOCHS, BATCH = 300, 25, 32, 6, 32
PAD, CLS = 0, 1
SPAM_WORDS = np.arange(2, 20)


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids padded to MAX_LEN, the tokenizer's attention_mask (1 = token), labels."""
    ids = np.full((n, MAX_LEN), PAD, dtype=np.int64)
    labels = (rng.random(n) < 0.25).astype(np.int64)  # 1 = spam
    for i in range(n):
        length = rng.integers(8, MAX_LEN + 1)
        toks = rng.integers(20, VOCAB, size=length)
        toks[0] = CLS
        if labels[i]:
            k = rng.integers(2, 4)
            toks[rng.choice(np.arange(1, length), k, replace=False)] = rng.choice(SPAM_WORDS, k)
        ids[i, :length] = toks
    ids = torch.as_tensor(ids)
    return ids, (ids != PAD).long(), torch.as_tensor(labels)


train_seq, train_mask, train_y = make_split(1200)
val_seq, val_mask, val_y = make_split(500)


class TinyBert(nn.Module):
    """Stands in for AutoModel.from_pretrained('bert-base-uncased'): returns (hidden, pooled)."""

    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, D_MODEL, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(MAX_LEN, D_MODEL)
        layer = nn.TransformerEncoderLayer(
            D_MODEL, nhead=4, dim_feedforward=4 * D_MODEL, dropout=0.1, activation="gelu",
            batch_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.pooler = nn.Linear(D_MODEL, D_MODEL)

    def forward(self, sent_id, attention_mask):
        pos = torch.arange(sent_id.shape[1])
        h = self.word_embeddings(sent_id) + self.position_embeddings(pos)
        h = self.encoder(h, src_key_padding_mask=attention_mask == 0)
        return h, torch.tanh(self.pooler(h[:, 0]))


class BERT_Arch(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(0.1)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(D_MODEL, 64)
        self.fc2 = nn.Linear(64, 2)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, sent_id, mask):
        _, cls_hs = self.bert(sent_id, attention_mask=mask)
        x = self.fc1(cls_hs)
        x = self.relu(x)
        x = self.dropout(x)
        x = self.fc2(x)
        x = self.softmax(x)
        return x


bert = TinyBert()
# freeze all the parameters  -- commented out, as in the report: BERT is fine-tuned too
# for param in bert.parameters():
#     param.requires_grad = False

model = BERT_Arch(bert)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # the fix

counts = np.bincount(train_y.numpy(), minlength=2)
class_wts = len(train_y) / (2 * counts)  # compute_class_weight('balanced', ...)
weights = torch.tensor(class_wts, dtype=torch.float)
cross_entropy = nn.NLLLoss(weight=weights)


def train():
    model.train()
    total_loss = 0
    perm = torch.randperm(len(train_seq))
    steps = 0
    for start in range(0, len(perm), BATCH):
        idx = perm[start : start + BATCH]
        sent_id, mask, labels = train_seq[idx], train_mask[idx], train_y[idx]
        model.zero_grad()
        preds = model(sent_id, mask)
        loss = cross_entropy(preds, labels)
        total_loss = total_loss + loss.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
    return total_loss / steps


def evaluate():
    model.eval()
    with torch.no_grad():
        preds = model(val_seq, val_mask)
        loss = cross_entropy(preds, val_y).item()
    pred = preds.argmax(1)
    return loss, (pred == val_y).float().mean().item(), pred.float().mean().item()


for epoch in range(EPOCHS):
    train_loss = train()
    valid_loss, acc, spam_frac = evaluate()
    print(f"epoch {epoch + 1}: train loss {train_loss:.3f} valid loss {valid_loss:.3f} "
          f"valid accuracy {acc:.3f} fraction predicted spam {spam_frac:.2f}")  # fmt: skip
