"""SLAPS-style graph-structure learner + GCN classifier in plain PyTorch: an ``MLP_Diag`` graph
generator (two element-wise ``Diag`` layers with ReLU, no bias) embeds the node features, a
sparse kNN graph is built from the cosine similarities by ``knn_fast`` and symmetrically
normalised by the degree, ``apply_non_linearity`` ("elu") maps the edge values to weights, and
a two-layer GCN (``GCNConv_dgl``: linear, then weighted sum over incoming edges) classifies the
nodes with ``F.cross_entropy`` on the training mask, Adam over both modules.

Rebuilt from https://github.com/BorealisAI/SLAPS-GNN/issues/3: "When I run the code on Citeseer
and set args.sparse=1, I got a nan loss. I debug the code and find that the values of edges
calculated by function knn_fast() contain nan values." Maintainer: "either the adj is not loaded
properly or there are nodes with no connections. The fix for cases when there are nodes in the
adj with no connections is to change line 150 to the following: norm = norm_row + norm_col +
0.000000001 (a small number)"; the asker: "The problem has been solved after fixing the code."
Citeseer has nodes whose feature rows are all zero; their embedding is zero (``Diag`` layers
have no bias), every similarity and so the degree ``norm`` is 0, ``torch.pow(norm, -0.5)`` is
inf and ``0 * inf`` makes the edge values NaN, which the GCN spreads into the loss.

Departures: a synthetic citation-like graph instead of Citeseer (900 nodes, 120 binary "word"
features, 6 classes, each class drawing 5 words from its own topic and 4 at random, 3% of the
nodes with no words at all; 180 training nodes, 600 test nodes); only the classification
branch (``GCN_C`` on the learned graph) is trained, the denoising-autoencoder branch of SLAPS and its warm-up epochs are left out; the dgl graph and
``GCNConv_dgl`` are replaced by an edge list and ``index_add_``; CPU instead of CUDA; k = 15,
i = 6, 120 epochs.
Measured: sick: loss nan from epoch 1 to epoch 120, train accuracy 0.133, test accuracy 0.163
(chance 1/6), all parameters NaN after the first step; fixed: loss 1.79 at epoch 1, 0.97 at
epoch 120, test accuracy 0.50 at epoch 20 and 0.91 at epoch 120 (train 0.97).
CPU: sick 4.5 s, fixed 5.8 s user.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N_NODES, N_FEATS, CLASSES, K, I_, EPOCHS = 900, 120, 6, 15, 6, 120

# ---- synthetic "citation" node features: bag of words, topic per class, some empty rows
labels_np = rng.integers(CLASSES, size=N_NODES)
topics = rng.permutation(N_FEATS).reshape(CLASSES, N_FEATS // CLASSES)
feats_np = np.zeros((N_NODES, N_FEATS), dtype=np.float32)
for v, c in enumerate(labels_np):
    feats_np[v, rng.choice(topics[c], size=5, replace=False)] = 1.0
    feats_np[v, rng.choice(N_FEATS, size=4, replace=False)] = 1.0
empty = rng.choice(N_NODES, size=int(0.03 * N_NODES), replace=False)
feats_np[empty] = 0.0  # documents without any word, as in Citeseer
features = torch.as_tensor(feats_np)
labels = torch.as_tensor(labels_np)
perm = rng.permutation(N_NODES)
train_mask = torch.zeros(N_NODES, dtype=torch.bool)
train_mask[perm[:180]] = True
test_mask = torch.zeros(N_NODES, dtype=torch.bool)
test_mask[perm[300:]] = True


def apply_non_linearity(tensor, non_linearity, i):
    if non_linearity == "elu":
        return F.elu(tensor * i - i) + 1
    elif non_linearity == "relu":
        return F.relu(tensor)
    elif non_linearity == "none":
        return tensor
    else:
        raise NameError("We dont support the non-linearity yet")


def knn_fast(X, k, b):
    X = F.normalize(X, dim=1, p=2)
    index = 0
    values = torch.zeros(X.shape[0] * (k + 1))
    rows = torch.zeros(X.shape[0] * (k + 1))
    cols = torch.zeros(X.shape[0] * (k + 1))
    norm_row = torch.zeros(X.shape[0])
    norm_col = torch.zeros(X.shape[0])
    while index < X.shape[0]:
        if (index + b) > (X.shape[0]):
            end = X.shape[0]
        else:
            end = index + b
        sub_tensor = X[index : index + b]
        similarities = torch.mm(sub_tensor, X.t())
        vals, inds = similarities.topk(k=k + 1, dim=-1)
        values[index * (k + 1) : (end) * (k + 1)] = vals.view(-1)
        cols[index * (k + 1) : (end) * (k + 1)] = inds.view(-1)
        rows[index * (k + 1) : (end) * (k + 1)] = (
            torch.arange(index, end).view(-1, 1).repeat(1, k + 1).view(-1)
        )
        norm_row[index:end] = torch.sum(vals, dim=1)
        norm_col.index_add_(-1, inds.view(-1), vals.view(-1))
        index += b
    norm = norm_row + norm_col + 0.000000001  # the fix
    rows = rows.long()
    cols = cols.long()
    values *= torch.pow(norm[rows], -0.5) * torch.pow(norm[cols], -0.5)
    return rows, cols, values


class Diag(nn.Module):
    def __init__(self, input_size):
        super(Diag, self).__init__()
        self.W = nn.Parameter(torch.ones(input_size))
        self.input_size = input_size

    def forward(self, input):
        hidden = input @ torch.diag(self.W)
        return hidden


class MLP_Diag(nn.Module):
    def __init__(self, nlayers, isize, k, non_linearity, i, mlp_act):
        super(MLP_Diag, self).__init__()
        self.i = i
        self.layers = nn.ModuleList()
        for _ in range(nlayers):
            self.layers.append(Diag(isize))
        self.k = k
        self.non_linearity = non_linearity
        self.mlp_act = mlp_act

    def internal_forward(self, h):
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i != (len(self.layers) - 1):
                if self.mlp_act == "relu":
                    h = F.relu(h)
                elif self.mlp_act == "tanh":
                    h = F.tanh(h)
        return h

    def forward(self, features):
        embeddings = self.internal_forward(features)
        rows, cols, values = knn_fast(embeddings, self.k, 1000)
        rows_ = torch.cat((rows, cols))
        cols_ = torch.cat((cols, rows))
        values_ = torch.cat((values, values))
        values_ = apply_non_linearity(values_, self.non_linearity, self.i)
        return rows_, cols_, values_


class GCNConv_dgl(nn.Module):
    def __init__(self, input_size, output_size):
        super(GCNConv_dgl, self).__init__()
        self.linear = nn.Linear(input_size, output_size)

    def forward(self, x, g):
        rows, cols, w = g
        h = self.linear(x)
        # update_all(fn.u_mul_e('h', 'w', 'm'), fn.sum(msg='m', out='h')): message src -> dst
        return torch.zeros_like(h).index_add_(0, cols, h[rows] * w[:, None])


class GCN_C(nn.Module):
    def __init__(
        self, in_channels, hidden_channels, out_channels, num_layers, dropout, dropout_adj
    ):
        super(GCN_C, self).__init__()
        self.layers = nn.ModuleList()
        self.layers.append(GCNConv_dgl(in_channels, hidden_channels))
        for _ in range(num_layers - 2):
            self.layers.append(GCNConv_dgl(hidden_channels, hidden_channels))
        self.layers.append(GCNConv_dgl(hidden_channels, out_channels))
        self.dropout = dropout
        self.dropout_adj_p = dropout_adj

    def forward(self, x, adj_t):
        rows, cols, w = adj_t
        Adj = (rows, cols, F.dropout(w, p=self.dropout_adj_p, training=self.training))
        for i, conv in enumerate(self.layers[:-1]):
            x = conv(x, Adj)
            x = F.relu(x)
            x = F.dropout(x, p=self.dropout, training=self.training)
        x = self.layers[-1](x, Adj)
        return x


graph_gen = MLP_Diag(2, N_FEATS, K, "elu", I_, "relu")
model = GCN_C(N_FEATS, 32, CLASSES, 2, dropout=0.5, dropout_adj=0.25)
optimizer = torch.optim.Adam(
    list(model.parameters()) + list(graph_gen.parameters()), lr=0.01, weight_decay=5e-4
)

for epoch in range(1, EPOCHS + 1):
    model.train()
    graph_gen.train()
    adj = graph_gen(features)
    logits = model(features, adj)
    loss = F.cross_entropy(logits[train_mask], labels[train_mask])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    if epoch == 1 or epoch % 10 == 0:
        model.eval()
        graph_gen.eval()
        with torch.no_grad():
            pred = model(features, graph_gen(features)).argmax(1)
        test_acc = (pred[test_mask] == labels[test_mask]).float().mean().item()
        train_acc = (pred[train_mask] == labels[train_mask]).float().mean().item()
        print(
            f"Epoch {epoch:4d} loss {loss.item():.4f} train acc {train_acc:.3f} test acc {test_acc:.3f}"
        )
