"""Inpainting GAN in the DeepFill v2 layout (zhaoyuzhi/deepfillv2, WGAN_trainer): a two-stage
convolutional generator (coarse net, then a refinement net fed with the coarse result pasted into
the hole) and a spectral-normalised PatchGAN discriminator on (image, mask); mask-L1 losses on
both stages plus 0.01 x the WGAN generator loss; Wasserstein discriminator loss; two Adam
optimizers (lr_g 1e-4, lr_d 4e-4, betas (0.5, 0.999)).

Rebuilt from https://github.com/zhaoyuzhi/deepfillv2/issues/6: "Discriminator parameter not
update? It seems like that you do not include optimizer.step in trainer.py". The discriminator
step calls ``optimizer_d.zero_grad()`` and ``loss_D.backward()`` but never
``optimizer_d.step()``, so the discriminator keeps its initial weights for the whole run and its
adversarial signal to the generator is that of a random network. The author agreed and added
``optimizer_d.step()`` (commit 0786ae0); the asker noted the generator still trained on the L1
terms.

Departures: 3x16x16 synthetic images (smooth colour ramps with a bright disc) with random
rectangular holes in place of ImageNet 256x256 with free-form masks; plain convolutions instead
of gated ones; much narrower networks; the VGG perceptual loss is left out (it needs pretrained
weights).
Measured (1 CPU thread): sick: the discriminator's weights never change and its Wasserstein
estimate D(real) - D(fake) (mean of 32 batches) stays between 0.001 and 0.003 for all 4 epochs;
fixed: the estimate is 0.18 after 32 steps and 0.4-0.86 from then on (the mask-L1 falls from
about 0.05-0.06 to about 0.04 in both, as the asker noted).
"""

import numpy as np
import torch
from torch import nn
from torch.nn.utils import spectral_norm

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N, S = 1024, 16
yy, xx = np.mgrid[0:S, 0:S] / (S - 1)
images = np.empty((N, 3, S, S), dtype=np.float32)
masks = np.zeros((N, 1, S, S), dtype=np.float32)
for i in range(N):
    c0, c1 = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
    a = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + 0.5 * (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) * 1.4, 0, 1)
    img = c0[:, None, None] * (1 - t) + c1[:, None, None] * t
    cy, cx = rng.uniform(0.2, 0.8, 2)
    r = rng.uniform(0.1, 0.25)
    img[:, (yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = 0.9
    images[i] = img
    h, w = rng.integers(4, 9, size=2)
    top, left = rng.integers(1, S - h), rng.integers(1, S - w)
    masks[i, 0, top : top + h, left : left + w] = 1.0  # 1 = the hole to fill
IMG, MASK = torch.as_tensor(images), torch.as_tensor(masks)


def conv(cin: int, cout: int, dilation: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, dilation, dilation), nn.LeakyReLU(0.2))


class GatedGenerator(nn.Module):  # plain convolutions here
    def __init__(self) -> None:
        super().__init__()
        self.coarse = nn.Sequential(conv(4, 16), conv(16, 16, 2), conv(16, 16, 4), conv(16, 16),
                                    nn.Conv2d(16, 3, 3, 1, 1), nn.Tanh())  # fmt: skip
        self.refinement = nn.Sequential(conv(4, 16), conv(16, 16, 2), conv(16, 16, 4), conv(16, 16),
                                        nn.Conv2d(16, 3, 3, 1, 1), nn.Tanh())  # fmt: skip

    def forward(self, img: torch.Tensor, mask: torch.Tensor):
        first_masked_img = img * (1 - mask) + mask
        first_out = self.coarse(torch.cat((first_masked_img, mask), 1))
        second_masked_img = img * (1 - mask) + first_out * mask
        second_out = self.refinement(torch.cat((second_masked_img, mask), 1))
        return first_out, second_out


class PatchDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(
            spectral_norm(nn.Conv2d(4, 16, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(16, 32, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(32, 1, 3, 1, 1)),
        )  # fmt: skip

    def forward(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat((img, mask), 1))


generator, discriminator = GatedGenerator(), PatchDiscriminator()
optimizer_g = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=4e-4, betas=(0.5, 0.999))
L1Loss = nn.L1Loss()
gan_param = 0.01

for epoch in range(4):
    perm = torch.randperm(N)
    w_estimates = []
    for batch_idx, start in enumerate(range(0, N, 16)):
        idx = perm[start : start + 16]
        img, mask = IMG[idx], MASK[idx]

        ### Train Discriminator
        optimizer_d.zero_grad()
        first_out, second_out = generator(img, mask)
        first_out_wholeimg = img * (1 - mask) + first_out * mask
        second_out_wholeimg = img * (1 - mask) + second_out * mask
        fake_scalar = discriminator(second_out_wholeimg.detach(), mask)
        true_scalar = discriminator(img, mask)
        loss_D = -torch.mean(true_scalar) + torch.mean(fake_scalar)
        loss_D.backward()

        ### Train Generator
        optimizer_g.zero_grad()
        first_MaskL1Loss = L1Loss(first_out_wholeimg, img)
        second_MaskL1Loss = L1Loss(second_out_wholeimg, img)
        fake_scalar = discriminator(second_out_wholeimg, mask)
        GAN_Loss = -torch.mean(fake_scalar)
        loss = first_MaskL1Loss + second_MaskL1Loss + gan_param * GAN_Loss
        loss.backward()
        optimizer_g.step()
        w_estimates.append(-loss_D.item())

        if batch_idx % 32 == 31:
            print(
                f"[Epoch {epoch + 1}/4] [Batch {batch_idx + 1}/{N // 16}]"
                f" [first Mask L1 Loss: {first_MaskL1Loss.item():.5f}]"
                f" [second Mask L1 Loss: {second_MaskL1Loss.item():.5f}]"
                f" [D Loss: {loss_D.item():.5f}] [G Loss: {GAN_Loss.item():.5f}]"
                f" [D(real) - D(fake), mean of 32 batches: {np.mean(w_estimates[-32:]):.4f}]"
            )
