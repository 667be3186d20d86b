"""Convolutional VAE as in AntixK/PyTorch-VAE models/vanilla_vae.py: encoder = stride-2 3x3
Conv + BatchNorm + LeakyReLU blocks, flattened into Linear fc_mu / fc_var; decoder = Linear
+ stride-2 ConvTranspose + BatchNorm + LeakyReLU blocks and a final conv + Tanh. Loss =
F.mse_loss(recons, input) (mean over pixels) + kld_weight * KLD (summed over the latent
dims, mean over the batch), Adam lr 0.005 (configs/vae.yaml). RGB images (batch, 3, H, W)
in [0, 1].

Rebuilt from https://github.com/AntixK/PyTorch-VAE/issues/56: "When I set kld_weight to 1 in
my model, it could not learn how to reconstruct the images"; the thread (and #11, #35 on the
same term) explains that the repository's reconstruction term is a per-pixel mean while the
KL term is a per-sample sum, so the KL must be down-weighted (kld_weight = batch/dataset
size, 0.00025 in the configs); at weight 1 the KL dominates, the posterior collapses to the
prior and every reconstruction is the same mean image. The cause is the relative weighting
of the two loss terms (posterior collapse), which no finding code names directly.

Departures: synthetic 16x16 images (one or two coloured discs on a coloured background)
instead of CelebA 64x64; hidden dims 16/32/64 instead of 32..512, latent 8 instead of 128;
a plain loop instead of the Lightning experiment, no scheduler.

Measured (OMP_NUM_THREADS=1): sick: KLD 0.27 -> 0.006, eval reconstruction MSE 0.0619 = the
mean-image baseline 0.0612, output spread across images 0.00 (every reconstruction the same);
fixed: KLD ~12, eval MSE 0.026 vs 0.061, output spread 0.72 after 10 epochs. ~4.5 s CPU each.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, N, LATENT = 16, 512, 8
kld_weight = 1.0  # the asker's setting


def make_images(n: int) -> torch.Tensor:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        images[i] = rng.uniform(0.0, 0.4, size=(3, 1, 1))
        for _ in range(int(rng.integers(1, 3))):
            r, c = rng.uniform(3, SIZE - 3, size=2)
            radius = rng.uniform(2.5, 5.0)
            disc = (yy - r) ** 2 + (xx - c) ** 2 <= radius**2
            images[i][:, disc] = rng.uniform(0.5, 1.0, size=(3, 1))
    return torch.as_tensor(images)


class VanillaVAE(nn.Module):
    def __init__(self, in_channels: int = 3, latent_dim: int = LATENT, hidden_dims=(16, 32, 64)):
        super().__init__()
        modules, c = [], in_channels
        for h in hidden_dims:
            conv = nn.Conv2d(c, h, 3, stride=2, padding=1)
            modules.append(nn.Sequential(conv, nn.BatchNorm2d(h), nn.LeakyReLU()))
            c = h
        self.encoder = nn.Sequential(*modules)
        self.last = hidden_dims[-1]
        self.fc_mu = nn.Linear(self.last * 4, latent_dim)
        self.fc_var = nn.Linear(self.last * 4, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, self.last * 4)
        h = list(hidden_dims)[::-1]
        modules = []
        for i in range(len(h) - 1):
            up = nn.ConvTranspose2d(h[i], h[i + 1], 3, stride=2, padding=1, output_padding=1)
            modules.append(nn.Sequential(up, nn.BatchNorm2d(h[i + 1]), nn.LeakyReLU()))
        self.decoder = nn.Sequential(*modules)
        self.final_layer = nn.Sequential(
            nn.ConvTranspose2d(h[-1], h[-1], 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(h[-1]), nn.LeakyReLU(),
            nn.Conv2d(h[-1], 3, 3, padding=1), nn.Tanh(),
        )  # fmt: skip

    def encode(self, x):
        result = torch.flatten(self.encoder(x), start_dim=1)
        return self.fc_mu(result), self.fc_var(result)

    def decode(self, z):
        result = self.decoder_input(z).view(-1, self.last, 2, 2)
        return self.final_layer(self.decoder(result))

    def forward(self, x):
        mu, log_var = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return self.decode(z), x, mu, log_var

    def loss_function(self, recons, x, mu, log_var, kld_weight):
        recons_loss = F.mse_loss(recons, x)
        kld_loss = torch.mean(-0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp(), dim=1), dim=0)
        return recons_loss + kld_weight * kld_loss, recons_loss, kld_loss


X = make_images(N)
model = VanillaVAE()
optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=0.0)
batch_size = 64
for epoch in range(10):
    model.train()
    perm = torch.randperm(N)
    for start in range(0, N, batch_size):
        real_img = X[perm[start : start + batch_size]]
        optimizer.zero_grad()
        loss, recons_loss, kld_loss = model.loss_function(*model(real_img), kld_weight=kld_weight)
        loss.backward()
        optimizer.step()
    if epoch % 3 == 0 or epoch == 9:
        model.eval()
        with torch.no_grad():
            mu, _ = model.encode(X)
            recons = model.decode(mu)
        mse = F.mse_loss(recons, X).item()
        baseline = F.mse_loss(X.mean(0, keepdim=True).expand_as(X), X).item()
        spread = recons.std(0).mean().item() / X.std(0).mean().item()
        print(
            f"epoch {epoch}: loss {loss.item():.4f} "
            f"(recon {recons_loss.item():.4f}, kld {kld_loss.item():.4f}) "
            f"eval MSE {mse:.4f} (mean-image baseline {baseline:.4f}) output spread {spread:.2f}"
        )
