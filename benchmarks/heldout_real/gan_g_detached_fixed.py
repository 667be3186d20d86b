"""Conditional GAN (image-to-image: conv encoder-decoder generator, conditional conv
discriminator, least-squares adversarial loss plus an L1 term), two Adam optimizers.

Rebuilt from https://github.com/nikhilsinghmus/image2reverb/issues/37: in the generator step the
fake output is passed to the discriminator as fake.detach(), which cuts the adversarial loss off
from the generator; only the L1 term trains it, and the discriminator dominates from early on
(D loss about 0.2, D(real) about 0.9). The author: the detach is a bug.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N = 2048
yy, xx = np.mgrid[0:8, 0:8]
angles = rng.uniform(0, np.pi, size=N)
target = np.stack([np.sin(1.2 * (np.cos(a) * xx + np.sin(a) * yy)) for a in angles])
keep = rng.random((N, 8, 8)) < 0.35  # the input shows about a third of the pixels
source = np.where(keep, target, 0.0)
Y = torch.as_tensor(target[:, None].astype(np.float32))
X = torch.as_tensor(np.stack([source, keep], 1).astype(np.float32))  # (N, 2, 8, 8)

generator = nn.Sequential(
    nn.Conv2d(2, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
    nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
    nn.Conv2d(32, 1, 3, padding=1), nn.Tanh(),
)  # fmt: skip


class Discriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 1, 2),
        )  # fmt: skip

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, condition], 1)).flatten(1)


discriminator = Discriminator()
g_opt = torch.optim.Adam(generator.parameters(), lr=4e-4, betas=(0.5, 0.999))
d_opt = torch.optim.Adam(discriminator.parameters(), lr=4e-4, betas=(0.5, 0.999))

for epoch in range(8):
    perm = torch.randperm(N)
    for start in range(0, N, 64):
        idx = perm[start : start + 64]
        x, y = X[idx], Y[idx]
        fake = generator(x)
        # generator step: adversarial + L1
        g_opt.zero_grad()
        d_fake = discriminator(fake, x)  # the fix: no detach in the generator step
        g_adv = F.mse_loss(d_fake, torch.ones_like(d_fake))
        g_l1 = F.l1_loss(fake, y)
        (g_adv + 10 * g_l1).backward()
        g_opt.step()
        # discriminator step
        d_opt.zero_grad()
        d_real, d_fake = discriminator(y, x), discriminator(fake.detach(), x)
        d_loss = F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(
            d_fake, torch.zeros_like(d_fake)
        )
        d_loss.backward()
        d_opt.step()
    print(
        f"epoch {epoch}: d_loss {d_loss.item():.3f} D(real) {d_real.mean().item():.2f}"
        f" D(fake) {d_fake.mean().item():.2f} g_adv {g_adv.item():.3f} g_l1 {g_l1.item():.3f}"
    )
