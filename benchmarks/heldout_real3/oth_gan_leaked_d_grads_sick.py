"""GAN of PyTorch Lightning's GAN template (pl_examples/domain_templates/gan.py): a ``Generator``
(Linear blocks with BatchNorm1d and LeakyReLU, Tanh output reshaped to an image) and a
``Discriminator`` (Linear + LeakyReLU, Sigmoid output), ``F.binary_cross_entropy`` as the
adversarial loss, one Adam optimizer each (lr 2e-4, betas (0.5, 0.999)), the discriminator loss
being the mean of the real and the fake (``.detach()``-ed) terms. The loop does what the Lightning
trainer of that time did for each optimizer in turn: ``loss.backward()``, ``optimizer.step()``,
then ``optimizer.zero_grad()`` of that optimizer only.

Rebuilt from https://github.com/Lightning-AI/pytorch-lightning/issues/591 ("GAN training with
Pytorch Lightning is broken", labelled bug): "The culprit is only calling optimizer.zero_grad()
after optimizer.step() since it clears the gradients of Generator or Discriminator only ... when
it comes the Discriminator loss.backward(), leftover gradients are accumulated for Discriminator
parameters and it just messes up with everything. Any kind of GAN training is impossible with
this settings." The generator loss ``BCE(D(G(z)), valid)`` also fills the discriminator's
``.grad``; nothing clears it, so the discriminator step adds the gradient that tells it to call
the fakes real (weight 1) to its own, which tells it to call them fake (weight 1/2). The fix
(pull/603, merged) zeroes the gradients of every parameter before each backward; here:
``discriminator.zero_grad()`` before the discriminator's backward.

Departures: 8x8 one-channel images of one bright bar (8 horizontal + 8 vertical positions, in
[-1, 1], small noise) instead of MNIST; smaller layers (latent 32, generator 32-128-256-64,
discriminator 64-128-64-1); 32 epochs of 32 batches of 64; plain loops instead of the Lightning
trainer. Quality is the fraction of 1000 generated images within mean squared error 0.15 of one of
the 16 bar images.
Measured: sick: D(fake) stays at 0.66-0.69 from epoch 4 on while D(real) rises to 0.94, d_loss
flat at 0.62-0.67, quality 0.000 for 20 epochs and 0.062 (3 of 16 bars) after the 32nd; fixed:
D(fake) falls to 0.11-0.18, quality 0.395 at epoch 25 and 0.625 (5 bars) after the 32nd.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, LATENT, BATCH, EPOCHS, STEPS = 8, 32, 64, 32, 32
img_shape = (1, SIZE, SIZE)


def make_templates() -> torch.Tensor:
    t = -np.ones((2 * SIZE, SIZE, SIZE), dtype=np.float32)
    for k in range(SIZE):
        t[k, k, :] = 1.0
        t[SIZE + k, :, k] = 1.0
    return torch.as_tensor(t)


TEMPLATES = make_templates()
train_imgs = TEMPLATES[rng.integers(2 * SIZE, size=BATCH * STEPS)]
train_imgs = (train_imgs + 0.05 * torch.as_tensor(rng.standard_normal(train_imgs.shape),
                                                   dtype=torch.float32)).unsqueeze(1)  # fmt: skip


class Generator(nn.Module):
    def __init__(self, latent_dim, img_shape):
        super().__init__()
        self.img_shape = img_shape

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(latent_dim, 128, normalize=False),
            *block(128, 256),
            nn.Linear(256, int(np.prod(img_shape))),
            nn.Tanh(),
        )

    def forward(self, z):
        img = self.model(z)
        return img.view(img.size(0), *self.img_shape)


class Discriminator(nn.Module):
    def __init__(self, img_shape):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(int(np.prod(img_shape)), 128),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(128, 64),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(64, 1),
            nn.Sigmoid(),
        )

    def forward(self, img):
        return self.model(img.view(img.size(0), -1))


def adversarial_loss(y_hat, y):
    return F.binary_cross_entropy(y_hat, y)


def quality(generator) -> tuple[float, int]:
    generator.eval()
    with torch.no_grad():
        samples = generator(torch.randn(1000, LATENT)).view(1000, 1, -1)
    generator.train()
    mse = ((samples - TEMPLATES.view(1, 2 * SIZE, -1)) ** 2).mean(2)
    best, which = mse.min(1)
    good = best < 0.15
    return good.float().mean().item(), len(which[good].unique())


generator = Generator(LATENT, img_shape)
discriminator = Discriminator(img_shape)
opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

for epoch in range(EPOCHS):
    perm = torch.randperm(len(train_imgs))
    for batch_idx in range(STEPS):
        imgs = train_imgs[perm[batch_idx * BATCH : (batch_idx + 1) * BATCH]]
        valid = torch.ones(imgs.size(0), 1)
        fake = torch.zeros(imgs.size(0), 1)

        # optimizer_idx 0: train generator
        z = torch.randn(imgs.shape[0], LATENT)
        generated_imgs = generator(z)
        g_loss = adversarial_loss(discriminator(generated_imgs), valid)
        g_loss.backward()
        opt_g.step()
        opt_g.zero_grad()

        # optimizer_idx 1: train discriminator
        real_loss = adversarial_loss(discriminator(imgs), valid)
        fake_loss = adversarial_loss(discriminator(generated_imgs.detach()), fake)
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        opt_d.step()
        opt_d.zero_grad()

    with torch.no_grad():
        d_real = discriminator(imgs).mean().item()
        d_fake = discriminator(generated_imgs).mean().item()
    good, modes = quality(generator)
    print(f"epoch {epoch}: d_loss {d_loss.item():.4f} g_loss {g_loss.item():.4f} "
          f"D(real) {d_real:.3f} D(fake) {d_fake:.3f} quality {good:.3f} modes {modes}")  # fmt: skip
