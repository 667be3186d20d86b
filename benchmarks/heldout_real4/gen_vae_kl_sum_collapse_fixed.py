"""MMVAE's ``HumanVAE``: a single-cell expression VAE (zdebruine/MMVAE) made of an expert
encoder (genes -> Linear/LeakyReLU x3), a shared VAE (``SharedEncoder`` three Linear +
leaky_relu, ``mean`` and ``var`` heads, reparameterisation ``mean + exp(0.5 var) * eps``,
``SharedDecoder`` four Linear + leaky_relu) and an expert decoder back to genes; three Adam
optimizers (``encoder``, ``decoder``, ``shr_vae``) stepped together; the loss of
``HumanVAETrainer.train_trace_complete`` is ``recon_loss + kl_loss * kl_weight`` with the KL
weight annealed as ``min(1, epoch / annealing_steps)``.

Rebuilt from https://github.com/zdebruine/MMVAE/pull/19 (merged): "Fix incorrect scaling
between MSE and KL. Current implement of KL are scale over sum ``-0.5 * torch.sum(1 + logvar -
mu.pow(2) - logvar.exp())``. But MSE are scale over mean by default ... This lead to imbalance
between KL loss and MSE loss. We can clearly see that KL Loss easily drop to 0 at few epoch".
The fix (the PR's ``HumanVAE.py`` hunk) replaces the mean L1 term by a squared error summed
over the genes and averaged over the batch, and averages the per-cell KL over the batch (two
changed lines).

Departures: synthetic "cells" (4096) of 6 cell types over 500 genes (a sparse log-normal mean
profile per type, a per-cell library factor and noise, then log1p) instead of 60,664-gene
CellCensus chunks; layer widths scaled down (500 -> 256 -> 192 -> 192 expert encoder, shared
192 -> 128 -> 128 -> 64, latent 32) from (60664 -> 1024 -> 768 -> 768, 768 -> 512 -> 512 ->
256, latent 128); learning rate 1e-3 for all three optimizers instead of 1e-4 (expert) and
1e-5 (shared) so that a 6-epoch run shows learning; ``annealing_steps`` 3 instead of 50 so the KL weight
reaches 1 within the run; the merged fix's literal code has typos (``reduction=None``,
``F.MSE``), so the fixed script writes what it means: ``F.mse_loss(..., reduction="none")``.
Measured: sick: as soon as the KL weight is non-zero (epoch 1) the posterior collapses: KL
per cell 236 -> 0.001 -> 0.000, the decoded outputs become identical for every cell (output
spread across cells / data spread 0.263 -> 0.000) and the reconstruction MSE sits at 0.725,
above the per-gene variance 0.534 (a constant prediction); fixed: KL per cell 96 -> 12,
reconstruction MSE 0.41 -> 0.070, output spread ratio 0.38 -> 0.91.
CPU: sick 6.4 s, fixed 6.4 s (user, one thread).
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

GENES, TYPES, CELLS, EPOCHS, BATCH = 500, 6, 4096, 6, 32


def make_cells() -> torch.Tensor:
    profiles = np.where(
        rng.random((TYPES, GENES)) < 0.3, rng.lognormal(1.0, 1.0, (TYPES, GENES)), 0.0
    )
    cell_type = rng.integers(TYPES, size=CELLS)
    library = rng.lognormal(0.0, 0.3, size=(CELLS, 1))
    counts = rng.poisson(profiles[cell_type] * library)
    return torch.tensor(np.log1p(counts), dtype=torch.float32)


train_data_all = make_cells()
gene_variance = train_data_all.var(0).mean().item()


class SharedEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(192, 128)
        self.fc2 = nn.Linear(128, 128)
        self.fc3 = nn.Linear(128, 64)

    def forward(self, x):
        x = F.leaky_relu(self.fc1(x))
        x = F.leaky_relu(self.fc2(x))
        return F.leaky_relu(self.fc3(x))


class SharedDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 128)
        self.fc3 = nn.Linear(128, 128)
        self.fc4 = nn.Linear(128, 192)

    def forward(self, x):
        x = F.leaky_relu(self.fc1(x))
        x = F.leaky_relu(self.fc2(x))
        x = F.leaky_relu(self.fc3(x))
        return F.leaky_relu(self.fc4(x))


class VAE(nn.Module):
    def __init__(self, encoder, decoder, mean, var):
        super().__init__()
        self.encoder, self.decoder, self.mean, self.var = encoder, decoder, mean, var

    def reparameterize(self, mean, var):
        eps = torch.randn_like(var)
        return mean + var * eps

    def forward(self, x):
        x = self.encoder(x)
        mu = self.mean(x)
        var = self.var(x)
        x = self.reparameterize(mu, torch.exp(0.5 * var))
        return self.decoder(x), mu, var


class Expert(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


class Model(nn.Module):
    def __init__(self, expert, shared_vae):
        super().__init__()
        self.expert = expert
        self.shared_vae = shared_vae

    def forward(self, x):
        x = self.expert.encoder(x)
        x, mu, var = self.shared_vae(x)
        x = self.expert.decoder(x)
        return x, mu, var


def kl_divergence(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


model = Model(
    Expert(
        nn.Sequential(nn.Linear(GENES, 256), nn.LeakyReLU(), nn.Linear(256, 192), nn.LeakyReLU(),
                      nn.Linear(192, 192), nn.LeakyReLU()),
        nn.Sequential(nn.Linear(192, 192), nn.LeakyReLU(), nn.Linear(192, 256), nn.LeakyReLU(),
                      nn.Linear(256, GENES), nn.LeakyReLU()),
    ),
    VAE(SharedEncoder(), SharedDecoder(), nn.Linear(64, 32), nn.Linear(64, 32)),
)  # fmt: skip
optimizers = {
    "encoder": torch.optim.Adam(model.expert.encoder.parameters(), lr=1e-3),
    "decoder": torch.optim.Adam(model.expert.decoder.parameters(), lr=1e-3),
    "shr_vae": torch.optim.Adam(model.shared_vae.parameters(), lr=1e-3),
}
annealing_steps = 3

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(CELLS)
    for b in range(CELLS // BATCH):
        train_data = train_data_all[perm[b * BATCH : (b + 1) * BATCH]]
        optimizers["shr_vae"].zero_grad()
        optimizers["encoder"].zero_grad()
        optimizers["decoder"].zero_grad()

        x_hat, mu, var = model(train_data)
        recon_loss = F.mse_loss(x_hat, train_data, reduction="none").sum(dim=1).mean()  # the fix
        kl_loss = torch.mean(-0.5 * torch.sum(1 + var - mu.pow(2) - var.exp(), dim=1))  # the fix
        kl_weight = min(1.0, epoch / annealing_steps)
        loss = recon_loss + (kl_loss * kl_weight)
        loss.backward()

        optimizers["shr_vae"].step()
        optimizers["encoder"].step()
        optimizers["decoder"].step()
    model.eval()
    with torch.no_grad():
        x = train_data_all[:1024]
        h = model.shared_vae.encoder(model.expert.encoder(x))
        mu_x, var_x = model.shared_vae.mean(h), model.shared_vae.var(h)
        kl_per_cell = (-0.5 * (1 + var_x - mu_x.pow(2) - var_x.exp()).sum(dim=1)).mean().item()
        out = model.expert.decoder(model.shared_vae.decoder(mu_x))
        mse = ((out - x) ** 2).mean().item()
        spread = out.std(0).mean().item() / x.std(0).mean().item()
    print(f"epoch {epoch}: loss {loss.item():.3f} kl per cell {kl_per_cell:.3f} "
          f"kl weight {kl_weight:.2f} reconstruction mse {mse:.4f} (per-gene variance {gene_variance:.4f}) "
          f"output spread across cells / data spread {spread:.3f}")  # fmt: skip
