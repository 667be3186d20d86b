"""Character-level RNN name classifier (the char-rnn-classification tutorial's i2h / i2o cell).

Rebuilt from https://github.com/spro/practical-pytorch/issues/9: the model is instantiated twice,
once right after the RNN class (where the optimizer is built) and once again before the training
loop; the optimizer steps the first instance while the loop trains the second, so the loss stays
big and goes up and down. The answer: build the optimizer after the second instantiation.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

LETTERS, LANGUAGES, LENGTH, N = 26, 6, 7, 3000
# each language favours its own handful of letters
styles = rng.dirichlet(np.full(LETTERS, 0.15), size=LANGUAGES)
langs = rng.integers(0, LANGUAGES, size=N)
names = np.stack([rng.choice(LETTERS, size=LENGTH, p=styles[k]) for k in langs])
X = torch.nn.functional.one_hot(torch.as_tensor(names), LETTERS).float()  # (N, time, letters)
y = torch.as_tensor(langs)


class RNN(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)

    def forward(self, letter: torch.Tensor, hidden: torch.Tensor):
        combined = torch.cat((letter, hidden), 1)
        return self.i2o(combined).log_softmax(1), self.i2h(combined)

    def init_hidden(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.hidden_size)


rnn = RNN(LETTERS, 64, LANGUAGES)
optimizer = torch.optim.SGD(rnn.parameters(), lr=0.05)
criterion = nn.NLLLoss()

rnn = RNN(LETTERS, 64, LANGUAGES)  # (later in the notebook, before training)


def classify(names: torch.Tensor) -> torch.Tensor:
    hidden = rnn.init_hidden(len(names))
    for t in range(LENGTH):
        output, hidden = rnn(names[:, t], hidden)
    return output


for epoch in range(10):
    perm = torch.randperm(N)
    for start in range(0, N, 32):
        idx = perm[start : start + 32]
        optimizer.zero_grad()
        loss = criterion(classify(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        acc = (classify(X).argmax(1) == y).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} accuracy {acc:.3f}")
