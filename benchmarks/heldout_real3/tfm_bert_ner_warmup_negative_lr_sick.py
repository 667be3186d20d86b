"""BERT-style token classifier (``BertForTokenClassification``: word + position + segment
embeddings with LayerNorm, a post-norm GELU Transformer encoder with a padding mask, dropout and
a linear tag head, loss only on the active (non-padding) tokens) trained the way
pytorch-pretrained-BERT 0.5's example scripts did: examples are cut into overlapping
``max_seq_length`` windows ("features"), ``num_train_optimization_steps`` is computed up front,
and every step sets ``lr_this_step = learning_rate * warmup_linear(global_step /
num_train_optimization_steps, warmup_proportion)``.

Rebuilt from https://github.com/huggingface/transformers/issues/297: fine-tuning
BertForTokenClassification for NER with 9 labels, "a network with 99% accuracy that is showing a
converging trend suddenly shifts all of its predictions to a single class. This happens during
the interval of a single epoch" (val_acc 99.7% at epoch 7, 0.03% at epoch 8). The cause was found
in https://github.com/huggingface/transformers/issues/324 (and #132: "run_squad.py using number of
training examples as total step, but number of training features is reasonable"):
``warmup_linear(x) = 1 - x`` goes negative once ``global_step`` passes a ``t_total`` that was set
too small, so the optimizer starts climbing the loss. PR #327 (merged) clamped the schedule at 0;
the script fix is to count the optimization steps from the features actually iterated.

Departures: a small encoder (2 layers, hidden 64) trained from scratch with torch Adam (lr 1e-3)
instead of fine-tuning bert-base with BertAdam (lr 5e-5); synthetic documents whose person and
place names (some names are shared, told apart by the preceding trigger word) get B/I tags, 5
labels; windows of 16 tokens with stride 8, so there are about 2.5 features per example and the
example-based ``t_total`` (108 steps for 300 examples) runs out a third of the way through the
324 steps actually taken; 6 epochs.
Measured: sick: validation token accuracy 0.77 -> 0.84 in the first two epochs, then the lr turns
negative (-4.9e-4 at the end of epoch 2, -2.0e-3 at the end), the training loss climbs 0.53 -> 3.0
-> 66 and every token is tagged B-PER (accuracy 0.108); fixed: loss 1.10 -> 0.24, accuracy 0.77 ->
0.90 with all 5 tags predicted, lr decaying to 3e-6.
"""

import math

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

PAD, CLS, SEP, MR, IN = 0, 1, 2, 3, 4
VOCAB, LABELS = 60, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
MAX_SEQ_LENGTH, DOC_STRIDE = 16, 8
TRAIN_BATCH_SIZE, NUM_TRAIN_EPOCHS, LEARNING_RATE, WARMUP_PROPORTION = 16, 6, 1e-3, 0.1


def make_example():
    """One document: filler words with 'mr <name>' (person) and 'in <name>' (place) spans."""
    tokens, tags = [], []
    while len(tokens) < int(rng.integers(20, 40)):
        r = rng.random()
        if r < 0.2 or r > 0.8:
            trigger, kind = (MR, "PER") if r < 0.2 else (IN, "LOC")
            own = range(10, 20) if kind == "PER" else range(20, 30)
            name = [
                int(rng.choice(list(own) + list(range(30, 40))))
                for _ in range(int(rng.integers(1, 3)))
            ]
            tokens += [trigger] + name
            tags += ["O", f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
        else:
            tokens.append(int(rng.integers(40, VOCAB)))
            tags.append("O")
    return tokens, [LABELS.index(t) for t in tags]


def convert_examples_to_features(examples):
    """Cut every example into MAX_SEQ_LENGTH-2 token windows with stride DOC_STRIDE."""
    features = []
    for tokens, tags in examples:
        width = MAX_SEQ_LENGTH - 2
        for start in range(0, max(len(tokens) - width, 0) + DOC_STRIDE, DOC_STRIDE):
            chunk, chunk_tags = tokens[start : start + width], tags[start : start + width]
            input_ids = [CLS] + chunk + [SEP]
            label_ids = [0] + chunk_tags + [0]
            input_mask = [1] * len(input_ids)
            pad = MAX_SEQ_LENGTH - len(input_ids)
            features.append(
                (input_ids + [PAD] * pad, input_mask + [0] * pad, label_ids + [0] * pad)
            )
            if start + width >= len(tokens):
                break
    ids, mask, labels = (torch.tensor(x) for x in zip(*features))
    return ids, mask, labels


train_examples = [make_example() for _ in range(300)]
eval_examples = [make_example() for _ in range(100)]
train_ids, train_mask, train_labels = convert_examples_to_features(train_examples)
eval_ids, eval_mask, eval_labels = convert_examples_to_features(eval_examples)


class BertForTokenClassification(nn.Module):
    def __init__(self, num_labels, hidden=64, layers=2, heads=4):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, hidden, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(MAX_SEQ_LENGTH, hidden)
        self.token_type_embeddings = nn.Embedding(2, hidden)
        self.emb_norm = nn.LayerNorm(hidden, eps=1e-12)
        layer = nn.TransformerEncoderLayer(
            hidden,
            heads,
            4 * hidden,
            dropout=0.1,
            activation="gelu",
            batch_first=True,
            layer_norm_eps=1e-12,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(hidden, num_labels)
        self.num_labels = num_labels

    def forward(self, input_ids, attention_mask, labels=None):
        pos = torch.arange(input_ids.size(1)).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos)
        x = self.emb_norm(x + self.token_type_embeddings(torch.zeros_like(input_ids)))
        x = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        logits = self.classifier(self.dropout(x))
        if labels is None:
            return logits
        loss_fct = nn.CrossEntropyLoss()
        active_loss = attention_mask.view(-1) == 1
        active_logits = logits.view(-1, self.num_labels)[active_loss]
        active_labels = labels.view(-1)[active_loss]
        return loss_fct(active_logits, active_labels)


def warmup_linear(x, warmup=0.002):
    if x < warmup:
        return x / warmup
    return 1.0 - x


model = BertForTokenClassification(len(LABELS))
optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
num_train_optimization_steps = int(len(train_examples) / TRAIN_BATCH_SIZE) * NUM_TRAIN_EPOCHS
print(f"{len(train_examples)} examples, {len(train_ids)} features, "
      f"t_total {num_train_optimization_steps}")  # fmt: skip

global_step = 0
for epoch in range(NUM_TRAIN_EPOCHS):
    model.train()
    perm = torch.randperm(len(train_ids))
    tr_loss, nb_tr_steps = 0.0, 0
    for step in range(math.ceil(len(train_ids) / TRAIN_BATCH_SIZE)):
        idx = perm[step * TRAIN_BATCH_SIZE : (step + 1) * TRAIN_BATCH_SIZE]
        loss = model(train_ids[idx], train_mask[idx], train_labels[idx])
        loss.backward()
        tr_loss += loss.item()
        nb_tr_steps += 1
        lr_this_step = LEARNING_RATE * warmup_linear(
            global_step / num_train_optimization_steps, WARMUP_PROPORTION
        )
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr_this_step
        optimizer.step()
        optimizer.zero_grad()
        global_step += 1

    model.eval()
    with torch.no_grad():
        pred = model(eval_ids, eval_mask).argmax(-1)
    active = eval_mask == 1
    acc = (pred[active] == eval_labels[active]).float().mean().item()
    print(f"Epoch {epoch}: lr {lr_this_step:+.2e} train loss {tr_loss / nb_tr_steps:.4f} val_acc {acc:.3f} "
          f"tags predicted {pred[active].unique().tolist()}")  # fmt: skip
