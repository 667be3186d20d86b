"""Two-layer GraphSAGE node classifier written in plain torch (``PyGraphsage``: two ``Graphsage``
layers that concatenate a node's own features with the mean of its neighbours' features, then a
Linear layer and ``log_softmax``), trained with ``F.nll_loss`` and Adam on mini-batches of training
node indices while the whole graph is run forward at every step, as in MrLeeeee/GCN-GAT-and-Graphsage.

Rebuilt from https://github.com/MrLeeeee/GCN-GAT-and-Graphsage/issues/3: "h1 = h1 / degree in
Graphsage.py. The degree of some nodes might be zero leading to the loss to become NAN. It's
recommended to add a small number to denominator, e.g., 1e-5." The mean aggregation divides the
summed neighbour features by the row sum of the adjacency matrix; for a node without neighbours
that is 0 / 0 = NaN, and the NaN rows then spread to every node through the next ``adj @ h``
(0 * NaN = NaN), so the loss is NaN from the first step. The fix adds 1e-5 to the degree.

Departures: a synthetic homophilous graph (800 nodes, 4 classes, 16 features with noise of std 3, about 5
same-class-biased neighbours per node, 4% of the nodes isolated and no self loops) instead of the
repository's citation data; dense adjacency; 30 epochs; hidden size 8 and Adam as in main.py.
Measured: sick: loss nan from the first epoch on, validation accuracy 0.265 (chance 0.25, every
prediction the same class); fixed: last-batch loss 0.78 after the first epoch and 0.06 after the
thirtieth, validation accuracy 0.725 -> 0.965 (epoch 3) -> 0.985.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N, FEAT, CLASSES, EPOCHS, BATCH = 800, 16, 4, 30, 32


def make_graph():
    labels = rng.integers(CLASSES, size=N)
    centers = rng.standard_normal((CLASSES, FEAT))
    feats = centers[labels] + 3.0 * rng.standard_normal((N, FEAT))
    adj = np.zeros((N, N), dtype=np.float32)
    isolated = rng.random(N) < 0.04
    for i in range(N):
        if isolated[i]:
            continue
        for _ in range(3):
            if rng.random() < 0.85:
                same = np.flatnonzero((labels == labels[i]) & ~isolated)
                j = rng.choice(same)
            else:
                j = rng.choice(np.flatnonzero(~isolated))
            if j != i:
                adj[i, j] = adj[j, i] = 1.0
    return (torch.as_tensor(feats, dtype=torch.float32), torch.as_tensor(adj),
            torch.as_tensor(labels))  # fmt: skip


features, adj, labels = make_graph()
perm = torch.as_tensor(rng.permutation(N))
idx_train, idx_val = perm[:400], perm[400:600]


class Graphsage(nn.Module):
    def __init__(self, infeat, outfeat):
        super().__init__()
        self.infeat = infeat
        self.W = nn.Parameter(torch.zeros(size=(2 * infeat, outfeat)))
        self.bias = nn.Parameter(torch.zeros(outfeat))
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.W.size(1))
        self.W.data.uniform_(-stdv, stdv)
        self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        h1 = torch.mm(adj, input)
        degree = adj.sum(axis=1).repeat(self.infeat, 1).T
        h1 = h1 / (degree + 1e-5)  # the fix
        h1 = torch.cat([input, h1], dim=1)
        h1 = torch.mm(h1, self.W)
        return h1


class PyGraphsage(nn.Module):
    def __init__(self, nfeat, nhid, nclass):
        super().__init__()
        self.droput = nn.Dropout()
        self.sage1 = Graphsage(nfeat, nhid)
        self.sage2 = Graphsage(nhid, nhid)
        self.att = nn.Linear(nhid, nclass)

    def forward(self, input, adj):
        hid1 = self.sage1(input, adj)
        hid1 = self.droput(hid1)
        hid2 = self.sage2(hid1, adj)
        out = self.att(hid2)
        return F.log_softmax(out, dim=1)


model = PyGraphsage(FEAT, 8, CLASSES)
criterion = F.nll_loss
optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
lr = 0.01

for epoch in range(EPOCHS):
    model.train()
    order = idx_train[torch.randperm(len(idx_train))]
    for start in range(0, len(order), BATCH):
        trains = order[start : start + BATCH]
        optimizer.zero_grad()
        outputs = model(features, adj)
        loss = criterion(outputs[trains], labels[trains])
        loss.backward()
        optimizer.step()
    lr = lr * 0.98
    for param_groups in optimizer.param_groups:
        param_groups["lr"] = lr
    model.eval()
    with torch.no_grad():
        pred = model(features, adj)[idx_val].argmax(1)
    acc = (pred == labels[idx_val]).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} val accuracy {acc:.3f} "
          f"classes predicted {len(pred.unique())}")  # fmt: skip
