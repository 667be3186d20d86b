"""DCGAN in the StudioGAN layout: the generator is a linear layer to 4x4 maps, two
upsample-and-conv blocks with BatchNorm and ReLU, a 3x3 conv and tanh; the discriminator is
3x3 convs with LeakyReLU(0.1), a global *sum* over the spatial map and one linear unit;
orthogonal initialisation with zero biases, two Adam optimizers, and the "vanilla"
(non-saturating) GAN loss written by hand.

Rebuilt from https://github.com/POSTECH-CVLab/PyTorch-StudioGAN/issues/112: with the DCGAN
config "the Gen_loss start at -0.0 and the Dis_loss at 13.82 remain fixed at this initial
value" for thousands of steps. 13.82 is -log(1e-6): the discriminator loss had been rewritten
(after issue #67) as ``-mean(logsigmoid(real) + log(1 - sigmoid(fake) + 1e-6))``. The
sum-pooled discriminator starts with large positive logits; sigmoid(fake) rounds to exactly 1,
so the fake term is the constant log(1e-6) with a gradient of exactly 0, the generator loss
``-logsigmoid(fake)`` is saturated at 0, and nothing moves (the real term only pushes every logit
further up). The maintainers rolled the loss back and then (commit 3f875a9) wrote it with
softplus, ``mean(softplus(-real)) + mean(softplus(fake))``, which keeps a gradient of about 1 for
large fake logits.

Departures: 16x16 synthetic RGB ramps (one of three colours, random brightness) in place of
Tiny-ImageNet at 64x64; much narrower networks; no BatchNorm in the discriminator (with it this
small GAN does not learn even with the fixed loss); both learning rates 4e-4 with betas
(0.5, 0.999) instead of 1e-4 / 4e-4 with beta1 = 0; one process, 300 steps. With this seed the
initial logits are about +12 (real) and +37 (fake); other seeds start negative, where the
written-out loss trains as well as the softplus one. The quality measure is the mean absolute
gap between the per-pixel mean and standard deviation of 512 generated and 512 real images.
Measured (1 CPU thread): sick: Gen_loss 0.0000 and Dis_loss 13.8155 at every print, the
moment gap stays at 0.51; fixed: both losses move from the first steps and the gap falls to
0.20 after 300 steps.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N, S, Z = 4096, 16, 16
palette = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.2], [0.2, 0.3, 0.9]])
colour = palette[rng.integers(0, 3, size=N)]  # (N, 3)
ramp = np.linspace(-1, 1, S)[None, :] * np.ones((S, 1))  # left-to-right ramp
amplitude = rng.uniform(0.4, 1.0, size=N)
images = amplitude[:, None, None, None] * colour[:, :, None, None] * ramp[None, None]
images += 0.05 * rng.standard_normal(images.shape)  # (N, 3, S, S)
X = torch.as_tensor(images.astype(np.float32))


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                m.bias.data.fill_(0.0)


class Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear0 = nn.Linear(Z, 32 * 4 * 4)
        self.blocks = nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(32, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(16, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(),
        )  # fmt: skip
        self.conv4 = nn.Conv2d(8, 3, 3, 1, 1)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        act = self.linear0(z).view(-1, 32, 4, 4)
        return torch.tanh(self.conv4(self.blocks(act)))


class Discriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Conv2d(3, 8, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(8, 8, 3, 1, 1), nn.LeakyReLU(0.1),
        )  # fmt: skip
        self.conv1 = nn.Conv2d(8, 32, 3, 1, 1)
        self.linear1 = nn.Linear(32, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(self.blocks(x)), 0.1)
        h = torch.sum(h, dim=[2, 3])
        return self.linear1(h).flatten()


def d_vanilla(d_logit_real: torch.Tensor, d_logit_fake: torch.Tensor) -> torch.Tensor:
    d_loss = torch.mean(F.softplus(-d_logit_real)) + torch.mean(F.softplus(d_logit_fake))  # the fix
    return d_loss


def g_vanilla(d_logit_fake: torch.Tensor) -> torch.Tensor:
    return torch.mean(F.softplus(-d_logit_fake))  # the fix (the same value, as in commit 3f875a9)


def moment_gap() -> float:
    with torch.no_grad():
        fake = generator(torch.randn(512, Z))
    real = X[:512]
    return (
        (fake.mean(0) - real.mean(0)).abs().mean() + (fake.std(0) - real.std(0)).abs().mean()
    ).item()


generator, discriminator = Generator(), Discriminator()
g_optimizer = torch.optim.Adam(generator.parameters(), lr=4e-4, betas=(0.5, 0.999))
d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=4e-4, betas=(0.5, 0.999))

batch_size = 32
for step in range(300):
    real = X[torch.as_tensor(rng.integers(0, N, size=batch_size))]
    # discriminator step
    d_optimizer.zero_grad()
    with torch.no_grad():
        fake = generator(torch.randn(batch_size, Z))
    d_logit_real, d_logit_fake = discriminator(real), discriminator(fake)
    d_loss = d_vanilla(d_logit_real, d_logit_fake)
    d_loss.backward()
    d_optimizer.step()
    # generator step
    g_optimizer.zero_grad()
    g_loss = g_vanilla(discriminator(generator(torch.randn(batch_size, Z))))
    g_loss.backward()
    g_optimizer.step()
    if step % 50 == 0 or step == 299:
        print(
            f"step {step}: Gen_loss {g_loss.item():.4f} Dis_loss {d_loss.item():.4f}"
            f" D(real) logit {d_logit_real.mean().item():.1f} D(fake) logit"
            f" {d_logit_fake.mean().item():.1f} moment gap {moment_gap():.3f}"
        )
