"""SRGAN (Lornatang/SRGAN-PyTorch ``train_gan.py``): an SRResNet generator ``g_model`` (conv,
residual blocks, pixel-shuffle upsampling) trained with an L1 pixel loss plus 0.001 x an
adversarial ``BCEWithLogitsLoss`` term, and a VGG-style discriminator ``d_model`` (strided
conv + BatchNorm + LeakyReLU stages, two Linear layers, one logit) trained with
``BCEWithLogitsLoss`` on real (1) and super-resolved (0) images; separate Adam optimizers
from ``define_optimizer``; ``requires_grad`` of the discriminator switched off during the
generator step and back on for the discriminator step, as in the repository.

Rebuilt from https://github.com/Lornatang/SRGAN-PyTorch/issues/85: "I notice that you specify
'g_optimizer' as discriminator optimizer and 'd_optimizer' is not used during training model.
I want to make sure whether it is a mistake or not." The maintainer: "You're right. It's a
mistake." Fixed in commit e8ef682 ("Update train_gan.py"), which changes the second
``g_optimizer`` argument of ``train(...)`` to ``d_optimizer``. With the typo,
``d_optimizer`` inside ``train`` is ``g_optimizer``, so its step moves the generator a second time and the
discriminator's weights never move.

Departures: synthetic 16x16 grey "ground truth" images (random bright rectangles and stripes on
noise) and 8x8 low-resolution inputs made by 2x2 average pooling, instead of ImageNet crops with
x2 bicubic degradation; a 4-block, 32-channel SRResNet and a discriminator with two
stride-2 stages instead of 16 blocks and the four-stage 64-512-channel VGG discriminator; the
generator starts from scratch instead of from a pretrained SRResNet; no VGG content (feature)
loss, no AMP/GradScaler, no EMA model, no schedulers or augmentation; 5 epochs of 768 images;
the ``train(...)`` call is inlined, the optimizer it received bound to ``optimizer_d`` on the
line the commit changed, the body kept in the repository's order. Adam at the config's 1e-4.
Measured: sick: the discriminator loss stays at 2 ln 2 (1.390-1.403 every epoch) with
D(GT) 0.528 and D(SR) 0.526-0.532 fixed from the first epoch, accuracy 0.49-0.53 (chance),
while the generator's pixel loss falls (0.156 -> 0.096); fixed: discriminator loss
1.34 -> 0.84, D(GT) 0.65 vs D(SR) 0.32, accuracy 0.62 -> 0.91, pixel loss 0.180 -> 0.102.
CPU: sick 8.4 s, fixed 8.1 s (user, one thread).
"""

import numpy as np
import torch
from torch import nn, optim

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

GT_SIZE, SCALE, EPOCHS, BATCH, N = 16, 2, 5, 32, 768


def make_images(n: int) -> torch.Tensor:
    images = 0.1 * rng.standard_normal((n, 1, GT_SIZE, GT_SIZE)).astype(np.float32)
    for i in range(n):
        for _ in range(rng.integers(2, 5)):
            y, x = rng.integers(0, GT_SIZE - 3, size=2)
            h, w = rng.integers(2, 8, size=2)
            images[i, 0, y : y + h, x : x + w] += rng.uniform(0.5, 1.0)
        if rng.random() < 0.5:  # one-pixel stripes
            images[i, 0, :, rng.integers(0, GT_SIZE) :: 4] += 0.5
    return torch.as_tensor(np.clip(images, 0.0, 1.0))


train_gt = make_images(N)
train_lr = nn.functional.avg_pool2d(train_gt, SCALE)


class _ResidualConvBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.rcb = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.rcb(x)


class SRResNet(nn.Module):
    def __init__(self, channels: int = 32, num_rcb: int = 4, upscale_factor: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, channels, 9, 1, 4), nn.PReLU())
        self.trunk = nn.Sequential(*[_ResidualConvBlock(channels) for _ in range(num_rcb)])
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels)
        )
        self.upsampling = nn.Sequential(
            nn.Conv2d(channels, channels * upscale_factor * upscale_factor, 3, 1, 1),
            nn.PixelShuffle(upscale_factor),
            nn.PReLU(),
        )
        self.conv3 = nn.Conv2d(channels, 1, 9, 1, 4)

    def forward(self, x):
        conv1 = self.conv1(x)
        x = self.conv2(self.trunk(conv1)) + conv1
        x = self.upsampling(x)
        return torch.clamp_(self.conv3(x), 0.0, 1.0)


class DiscriminatorForVGG(nn.Module):
    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, 1, 1, bias=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(channels, channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(channels, 2 * channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(2 * channels),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * channels, 2 * channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(2 * channels),
            nn.LeakyReLU(0.2, True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(2 * channels * 4 * 4, 64),
            nn.LeakyReLU(0.2, True),
            nn.Linear(64, 1),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def define_optimizer(g_model: nn.Module, d_model: nn.Module):
    g_optimizer = optim.Adam(g_model.parameters(), 1e-4, (0.9, 0.999), 1e-8, 0.0)
    d_optimizer = optim.Adam(d_model.parameters(), 1e-4, (0.9, 0.999), 1e-8, 0.0)
    return g_optimizer, d_optimizer


g_model, d_model = SRResNet(), DiscriminatorForVGG()
pixel_criterion = nn.L1Loss()
adversarial_criterion = nn.BCEWithLogitsLoss()
g_optimizer, d_optimizer = define_optimizer(g_model, d_model)
pixel_weight, adversarial_weight = 1.0, 0.001
real_label = torch.full([BATCH, 1], 1.0)
fake_label = torch.full([BATCH, 1], 0.0)

# train(g_model, ema_g_model, d_model, ..., g_optimizer, <discriminator optimizer>, epoch, ...)
optimizer_g, optimizer_d = g_optimizer, g_optimizer

for epoch in range(EPOCHS):
    g_model.train()
    d_model.train()
    perm = torch.randperm(N)
    sums = np.zeros(5)
    for b in range(N // BATCH):
        idx = perm[b * BATCH : (b + 1) * BATCH]
        gt, lr = train_gt[idx], train_lr[idx]

        # start training the generator model
        for d_parameters in d_model.parameters():
            d_parameters.requires_grad = False
        g_model.zero_grad(set_to_none=True)
        sr = g_model(lr)
        pixel_loss = pixel_weight * pixel_criterion(sr, gt)
        adversarial_loss = adversarial_weight * adversarial_criterion(d_model(sr), real_label)
        g_loss = pixel_loss + adversarial_loss
        g_loss.backward()
        optimizer_g.step()

        # start training the discriminator model
        for d_parameters in d_model.parameters():
            d_parameters.requires_grad = True
        d_model.zero_grad(set_to_none=True)
        gt_output = d_model(gt)
        d_loss_gt = adversarial_criterion(gt_output, real_label)
        d_loss_gt.backward()
        sr_output = d_model(sr.detach().clone())
        d_loss_sr = adversarial_criterion(sr_output, fake_label)
        d_loss_sr.backward()
        d_loss = d_loss_gt + d_loss_sr
        optimizer_d.step()

        accuracy = 0.5 * ((gt_output > 0).float().mean() + (sr_output < 0).float().mean())
        sums += [d_loss.item(), pixel_loss.item(), torch.sigmoid(gt_output).mean().item(),
                 torch.sigmoid(sr_output).mean().item(), accuracy.item()]  # fmt: skip
    d, p, pg, ps, acc = sums / (N // BATCH)
    print(f"epoch {epoch}: D loss {d:.4f} (2 ln 2 = 1.3863) D(GT) {pg:.3f} D(SR) {ps:.3f} "
          f"D accuracy {acc:.3f} pixel loss {p:.4f}")  # fmt: skip
