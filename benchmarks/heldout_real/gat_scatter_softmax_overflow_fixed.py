"""Graph attention network (two GAT layers, edge-wise softmax written with scatter) for node
classification on a citation-like graph with bag-of-words counts as node features.

Rebuilt from https://github.com/pyg-team/pytorch_geometric/issues/53: the edge softmax did
exp(score) directly; a large attention score overflows exp to inf and inf / inf gives NaN,
which GATConv then produced "frequently"; the fix subtracts each node's maximum score first.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

NODES, WORDS, CLASSES = 600, 50, 4
labels = rng.integers(0, CLASSES, size=NODES)
topic = rng.dirichlet(np.full(WORDS, 0.3), size=CLASSES)
counts = np.stack([rng.multinomial(rng.integers(200, 3000), topic[c]) for c in labels])
edges = []
for i in range(NODES):  # mostly links within the class, a few across
    same = np.flatnonzero(labels == labels[i])
    for j in rng.choice(same, size=4):
        edges += [(i, j), (j, i)]
    j = int(rng.integers(0, NODES))
    edges += [(i, j), (j, i)]
edges += [(i, i) for i in range(NODES)]
src, dst = torch.as_tensor(np.array(edges).T)
X = torch.as_tensor(counts, dtype=torch.float32)  # raw word counts
y = torch.as_tensor(labels)
train = torch.as_tensor(rng.random(NODES) < 0.5)


def scatter_softmax(scores: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Softmax of edge scores over the edges arriving at each node."""
    # the fix: subtract each node's largest score before exp
    node_max = torch.full((size, scores.shape[1]), -torch.inf).index_reduce_(
        0, index, scores, "amax"
    )
    out = (scores - node_max[index]).exp()
    total = torch.zeros(size, out.shape[1]).index_add_(0, index, out)
    return out / total[index]


class GATLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, heads: int) -> None:
        super().__init__()
        self.heads, self.c_out = heads, c_out
        self.lin = nn.Linear(c_in, heads * c_out, bias=False)
        self.att_src = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, heads, c_out)))
        self.att_dst = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, heads, c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x).view(-1, self.heads, self.c_out)  # (nodes, heads, c_out)
        score = (h * self.att_src).sum(-1)[src] + (h * self.att_dst).sum(-1)[dst]
        alpha = scatter_softmax(F.leaky_relu(score, 0.2), dst, len(x))  # (edges, heads)
        out = torch.zeros_like(h).index_add_(0, dst, alpha[..., None] * h[src])
        return out.flatten(1)


class GAT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = GATLayer(WORDS, 8, heads=4)
        self.conv2 = GATLayer(32, CLASSES, heads=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.elu(self.conv1(x)))


model = GAT()
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3, weight_decay=5e-4)
for epoch in range(200):
    optimizer.zero_grad()
    out = model(X)
    loss = F.cross_entropy(out[train], y[train])
    loss.backward()
    optimizer.step()
    if epoch % 40 == 39:
        acc = (out.argmax(1)[~train] == y[~train]).float().mean().item()
        print(f"epoch {epoch}: loss {loss.item():.4f} test accuracy {acc:.3f}")
