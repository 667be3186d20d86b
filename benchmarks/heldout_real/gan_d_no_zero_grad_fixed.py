"""DCGAN-style GAN on 8x8 images: conv discriminator, transposed-conv generator, two Adam
optimizers, BCE losses.

Rebuilt from https://github.com/Adversarial-Deep-Learning/code-soup/pull/73: the training step
never calls zero_grad() on the discriminator's optimizer, so its gradients pile up from step to
step (and collect the generator step's gradients through D too); the PR adds it.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N, Z = 2048, 16
yy, xx = np.mgrid[0:8, 0:8]
angles = rng.uniform(0, np.pi, size=N)
real = np.stack([np.sin(1.2 * (np.cos(a) * xx + np.sin(a) * yy)) for a in angles])
real = torch.as_tensor(real[:, None].astype(np.float32))  # stripes in [-1, 1], (N, 1, 8, 8)

generator = nn.Sequential(
    nn.Linear(Z, 32 * 2 * 2), nn.Unflatten(1, (32, 2, 2)), nn.BatchNorm2d(32), nn.ReLU(),
    nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
    nn.ConvTranspose2d(16, 1, 4, 2, 1), nn.Tanh(),
)  # fmt: skip
discriminator = nn.Sequential(
    nn.Conv2d(1, 16, 4, 2, 1), nn.LeakyReLU(0.2),
    nn.Conv2d(16, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.LeakyReLU(0.2),
    nn.Flatten(), nn.Linear(32 * 2 * 2, 1),
)  # fmt: skip
g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()


def stripe_score(images: torch.Tensor) -> float:
    """How stripe-like the samples are: mean |correlation| with the best-matching real image."""
    a = images.flatten(1) - images.flatten(1).mean(1, keepdim=True)
    b = real[:256].flatten(1) - real[:256].flatten(1).mean(1, keepdim=True)
    corr = (a @ b.T) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1) + 1e-8)
    return corr.abs().amax(1).mean().item()


for epoch in range(10):
    perm = torch.randperm(N)
    for start in range(0, N, 64):
        batch = real[perm[start : start + 64]]
        ones, zeros = torch.ones(len(batch), 1), torch.zeros(len(batch), 1)
        # discriminator step
        d_optimizer.zero_grad()  # the fix
        fake = generator(torch.randn(len(batch), Z))
        d_loss = bce(discriminator(batch), ones) + bce(discriminator(fake.detach()), zeros)
        d_loss.backward()
        d_optimizer.step()
        # generator step
        g_optimizer.zero_grad()
        g_loss = bce(discriminator(fake), ones)
        g_loss.backward()
        g_optimizer.step()
    with torch.no_grad():
        generator.eval()
        score = stripe_score(generator(torch.randn(256, Z)))
        generator.train()
    print(
        f"epoch {epoch}: d_loss {d_loss.item():.3f} g_loss {g_loss.item():.3f} stripes {score:.3f}"
    )
