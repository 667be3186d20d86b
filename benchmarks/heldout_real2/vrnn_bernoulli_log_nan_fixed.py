"""Variational recurrent neural network (VRNN, Chung et al. 2015) as in
emited/VariationalRecurrentNeuralNetwork: feature extractors phi_x / phi_z, an encoder, a learned
prior and a decoder (sigmoid means, a Bernoulli likelihood) around a GRU that reads an image row by
row; loss = KL(encoder || prior) + Bernoulli negative log-likelihood, summed over rows; Adam 1e-3.

Rebuilt from https://github.com/emited/VariationalRecurrentNeuralNetwork/issues/2: "loss got nan":
the KLD and NLL losses train for two epochs, then both become nan at epoch 3 and stay nan. The
answers: "This is due to the numerical issue of \\log" -- the decoder's sigmoid saturates to exactly
1.0 for a confident pixel, and `(1 - x) * torch.log(1 - theta)` is then 0 * log(0) = 0 * -inf = nan
(and its gradient 0/0); add a small eps inside the logs, `torch.log(theta + eps)` and
`torch.log(1 - theta + eps)`, and to the stds in the Gaussian KL (the repository's fix, commit
cdc8af2 "fixed log", adds EPS to the logs of the KL and of the Bernoulli NLL).

Departures: synthetic 10x10 "images" (eight templates of two or three vertical strokes plus a
margin line down the left edge, each image rolled sideways by up to a pixel, values exactly 0 and 1
after the repository's min-max normalisation) instead of MNIST, so that confident pixels appear
within a few hundred steps; h_dim 128, z_dim 8, one GRU layer, batch 32, Adam 1e-3 (the
repository's lr); the fixed script adds eps as the issue's answer does (`1 - theta + eps`; the
commit's `1 - theta - EPS` would take the log of a negative number for a saturated pixel); the
training loop (and its clip_grad_norm_ placed after optimizer.step) is the repository's; a pixel
accuracy of the reconstruction is printed.
Measured here (3 epochs, 189 steps): sick: KLD and NLL finite through epoch 2 (NLL 69 -> 12 per
image, pixel accuracy 0.96), nan from about step 140 (early epoch 3) on, 26 of the 28 parameter
tensors all nan at the end, pixel accuracy 0.684; fixed: no nan, NLL 6.1 per image on the last
logged batch (epoch average 7.7), pixel accuracy 0.974.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)
EPS = torch.finfo(torch.float).eps  # numerical logs  # the fix

ROWS, COLS, N = 10, 10, 2000


def make_templates(k: int) -> np.ndarray:
    """k binary images of two or three vertical strokes, each running down most of the rows."""
    out = np.zeros((k, ROWS, COLS), dtype=np.float32)
    for t in range(k):
        for _ in range(rng.integers(2, 4)):
            col, top = rng.integers(1, COLS - 1), rng.integers(0, 3)
            out[t, top:, col] = 1.0
        out[t, :, 0] = 1.0  # a margin line down every image
    return out


templates = make_templates(8)
ids = rng.integers(0, 8, size=N)
shifts = rng.integers(-1, 2, size=N)
images = np.stack([np.roll(templates[i], s, axis=1) for i, s in zip(ids, shifts, strict=True)])
X = torch.as_tensor(images)  # (N, rows, cols), values 0 and 1


class VRNN(nn.Module):
    def __init__(
        self, x_dim: int, h_dim: int, z_dim: int, n_layers: int, bias: bool = False
    ) -> None:
        super().__init__()
        self.x_dim, self.h_dim, self.z_dim, self.n_layers = x_dim, h_dim, z_dim, n_layers
        # feature-extracting transformations
        self.phi_x = nn.Sequential(
            nn.Linear(x_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, h_dim), nn.ReLU()
        )
        self.phi_z = nn.Sequential(nn.Linear(z_dim, h_dim), nn.ReLU())
        # encoder
        self.enc = nn.Sequential(
            nn.Linear(h_dim + h_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, h_dim), nn.ReLU()
        )
        self.enc_mean = nn.Linear(h_dim, z_dim)
        self.enc_std = nn.Sequential(nn.Linear(h_dim, z_dim), nn.Softplus())
        # prior
        self.prior = nn.Sequential(nn.Linear(h_dim, h_dim), nn.ReLU())
        self.prior_mean = nn.Linear(h_dim, z_dim)
        self.prior_std = nn.Sequential(nn.Linear(h_dim, z_dim), nn.Softplus())
        # decoder
        self.dec = nn.Sequential(
            nn.Linear(h_dim + h_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, h_dim), nn.ReLU()
        )
        self.dec_mean = nn.Sequential(nn.Linear(h_dim, x_dim), nn.Sigmoid())
        # recurrence
        self.rnn = nn.GRU(h_dim + h_dim, h_dim, n_layers, bias)

    def forward(self, x: torch.Tensor):
        kld_loss, nll_loss, all_dec_mean = 0, 0, []
        h = torch.zeros(self.n_layers, x.size(1), self.h_dim)
        for t in range(x.size(0)):
            phi_x_t = self.phi_x(x[t])
            # encoder
            enc_t = self.enc(torch.cat([phi_x_t, h[-1]], 1))
            enc_mean_t = self.enc_mean(enc_t)
            enc_std_t = self.enc_std(enc_t)
            # prior
            prior_t = self.prior(h[-1])
            prior_mean_t = self.prior_mean(prior_t)
            prior_std_t = self.prior_std(prior_t)
            # sampling and reparameterization
            z_t = self._reparameterized_sample(enc_mean_t, enc_std_t)
            phi_z_t = self.phi_z(z_t)
            # decoder
            dec_t = self.dec(torch.cat([phi_z_t, h[-1]], 1))
            dec_mean_t = self.dec_mean(dec_t)
            # recurrence
            _, h = self.rnn(torch.cat([phi_x_t, phi_z_t], 1).unsqueeze(0), h)
            # computing losses
            kld_loss += self._kld_gauss(enc_mean_t, enc_std_t, prior_mean_t, prior_std_t)
            nll_loss += self._nll_bernoulli(dec_mean_t, x[t])
            all_dec_mean.append(dec_mean_t)
        return kld_loss, nll_loss, torch.stack(all_dec_mean)

    def _reparameterized_sample(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        eps = torch.empty(size=std.size(), dtype=torch.float).normal_()
        return eps.mul(std).add_(mean)

    def _kld_gauss(self, mean_1, std_1, mean_2, std_2):
        """Using std to compute KLD"""
        kld_element = (
            2 * torch.log(std_2 + EPS)  # the fix
            - 2 * torch.log(std_1 + EPS)  # the fix
            + (std_1.pow(2) + (mean_1 - mean_2).pow(2)) / std_2.pow(2)
            - 1
        )
        return 0.5 * torch.sum(kld_element)

    def _nll_bernoulli(self, theta, x):
        # the fix: eps inside the logs
        return -torch.sum(x * torch.log(theta + EPS) + (1 - x) * torch.log(1 - theta + EPS))


x_dim, h_dim, z_dim, n_layers = COLS, 128, 8, 1
clip, learning_rate, batch_size = 10, 1e-3, 32
model = VRNN(x_dim, h_dim, z_dim, n_layers)
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)

for epoch in range(1, 4):
    model.train()
    perm = torch.randperm(N)
    train_kld, train_nll, step = 0.0, 0.0, 0
    for batch_idx, start in enumerate(range(0, N, batch_size)):
        data = X[perm[start : start + batch_size]]
        data = data.transpose(0, 1)  # (seq, batch, elem)
        data = (data - data.min()) / (data.max() - data.min())
        # forward + backward + optimize
        optimizer.zero_grad()
        kld_loss, nll_loss, _ = model(data)
        loss = kld_loss + nll_loss
        loss.backward()
        optimizer.step()
        # grad norm clipping, only in pytorch version >= 1.10
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        train_kld += kld_loss.item()
        train_nll += nll_loss.item()
        if batch_idx % 15 == 0:
            print(
                f"epoch {epoch} [{start}/{N}]  KLD loss {kld_loss.item() / data.size(1):.4f}"
                f"  NLL loss {nll_loss.item() / data.size(1):.4f}"
            )
    with torch.no_grad():
        model.eval()
        test = X[:500].transpose(0, 1)  # values 0 and 1 already
        _, _, dec_mean = model(test)
        acc = ((dec_mean > 0.5).float() == test).float().mean().item()
    print(
        f"====> epoch {epoch}: average KLD {train_kld / N:.4f}  NLL {train_nll / N:.4f}"
        f"  pixel accuracy {acc:.3f}"
    )
