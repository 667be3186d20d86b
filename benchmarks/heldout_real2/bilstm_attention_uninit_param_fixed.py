"""TextRNN_Att of 649453932/Chinese-Text-Classification-Pytorch: embedding (padding index), a
two-layer bidirectional LSTM (batch_first), attention scores tanh(H) @ w with a learned
vector `w` (nn.Parameter), softmax over the positions, the attention-weighted sum of H, ReLU, two
linear layers; the repository's init_network (xavier for every 'weight', 0 for every 'bias'), Adam
1e-3, cross-entropy, 10 classes, sentences padded to a fixed length.

Rebuilt from https://github.com/649453932/Chinese-Text-Classification-Pytorch/issues/8: "TextRNN_Att
seems to have a problem": the loss becomes nan (the author reproduced it in one run of five;
several users hit it). A user found the line: `self.w = nn.Parameter(torch.Tensor(config.hidden_size
* 2))`: torch.Tensor(n) returns uninitialised memory, and init_network skips `w` (its name holds
neither 'weight' nor 'bias'), so w keeps whatever the allocator hands back, nan or huge values
included. The fix (commit 6cb2681, "solved null problem in TextRNN_Att"): torch.zeros(...).

Departures: synthetic "news titles" (token ids 0..1999, 1999 = padding, 10 to 24 tokens; each
class has four keywords, two to four of which appear among random tokens) instead of THUCNews;
embedding 64, hidden 64, second hidden 32 instead of 300, 128, 64; 2000 training titles, 6 epochs.
What uninitialised memory holds varies from run to run, so, to make the failing
run reproducible, the rebuild turns on torch.use_deterministic_algorithms, in which PyTorch fills
uninitialised memory with nan (torch.Tensor(n) included): w starts as nan on every run; the fixed
script differs only in torch.zeros.
Measured here: sick: loss nan from the first step on, every weight nan after the first update, dev
accuracy 0.098 (chance; argmax of nan); fixed: dev loss 0.31, dev accuracy 0.906 after 6 epochs.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)
# rebuild: deterministic mode fills uninitialised memory (torch.empty, torch.Tensor(n)) with nan,
# so the failing draw of the report happens on every run
# (torch.utils.deterministic.fill_uninitialized_memory)
torch.use_deterministic_algorithms(True)

N_VOCAB, PAD_SIZE, NUM_CLASSES, N_TRAIN, N_DEV = 2000, 24, 10, 2000, 500
keywords = rng.choice(np.arange(1, N_VOCAB - 1), size=(NUM_CLASSES, 4), replace=False)
labels = rng.integers(0, NUM_CLASSES, size=N_TRAIN + N_DEV)
tokens = np.full((N_TRAIN + N_DEV, PAD_SIZE), N_VOCAB - 1)
for i, c in enumerate(labels):
    length = rng.integers(10, PAD_SIZE + 1)
    title = rng.integers(0, N_VOCAB - 1, size=length)
    k = rng.integers(2, 5)
    title[rng.choice(length, size=k, replace=False)] = rng.choice(keywords[c], size=k)
    tokens[i, :length] = title
X = torch.as_tensor(tokens)
Y = torch.as_tensor(labels)


class Config:
    n_vocab = N_VOCAB
    embed = 64
    hidden_size = 64
    num_layers = 2
    hidden_size2 = 32
    dropout = 0.5
    num_classes = NUM_CLASSES
    learning_rate = 1e-3
    batch_size = 128
    num_epochs = 6


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config.n_vocab, config.embed, padding_idx=config.n_vocab - 1)
        self.lstm = nn.LSTM(
            config.embed,
            config.hidden_size,
            config.num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=config.dropout,
        )
        self.tanh1 = nn.Tanh()
        self.w = nn.Parameter(torch.zeros(config.hidden_size * 2))  # the fix
        self.tanh2 = nn.Tanh()
        self.fc1 = nn.Linear(config.hidden_size * 2, config.hidden_size2)
        self.fc = nn.Linear(config.hidden_size2, config.num_classes)

    def forward(self, x):
        emb = self.embedding(x)  # [batch_size, seq_len, embed]
        H, _ = self.lstm(emb)  # [batch_size, seq_len, hidden_size * 2]
        M = self.tanh1(H)
        alpha = F.softmax(torch.matmul(M, self.w), dim=1).unsqueeze(-1)  # [batch_size, seq_len, 1]
        out = H * alpha
        out = torch.sum(out, 1)
        out = F.relu(out)
        out = self.fc1(out)
        out = self.fc(out)
        return out


def init_network(model, method="xavier", exclude="embedding"):
    for name, w in model.named_parameters():
        if exclude not in name:
            if "weight" in name:
                nn.init.xavier_normal_(w)
            elif "bias" in name:
                nn.init.constant_(w, 0)
            else:
                pass


config = Config()
model = Model(config)
init_network(model)
optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
total_batch = 0
for epoch in range(config.num_epochs):
    model.train()
    perm = torch.randperm(N_TRAIN)
    for start in range(0, N_TRAIN, config.batch_size):
        idx = perm[start : start + config.batch_size]
        outputs = model(X[idx])
        model.zero_grad()
        loss = F.cross_entropy(outputs, Y[idx])
        loss.backward()
        optimizer.step()
        if total_batch % 16 == 0:
            train_acc = (outputs.argmax(1) == Y[idx]).float().mean().item()
            print(f"iter {total_batch:4d}: train loss {loss.item():.4f} train acc {train_acc:.3f}")
        total_batch += 1
    model.eval()
    with torch.no_grad():
        dev_out = model(X[N_TRAIN:])
        dev_loss = F.cross_entropy(dev_out, Y[N_TRAIN:]).item()
        dev_acc = (dev_out.argmax(1) == Y[N_TRAIN:]).float().mean().item()
    print(f"epoch {epoch + 1}: dev loss {dev_loss:.4f} dev acc {dev_acc:.3f}")
