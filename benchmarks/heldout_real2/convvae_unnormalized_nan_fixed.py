"""Convolutional VAE as in atomai's VAE(conv_encoder=True, conv_decoder=True): encoder = two
3x3 conv + LeakyReLU(0.1) layers (no pooling), flattened into two Linear heads (z_mean,
z_logsd); decoder = Linear(z -> 16*H*W) + two 3x3 conv + LeakyReLU layers + a 1x1 conv.
Loss = -ELBO with atomai's default summed-squared-error ("mse") likelihood and the analytic
KL; z = mu + exp(logsd) * eps; Adam. Grayscale images (batch, H, W).

Rebuilt from https://github.com/pycroscopy/atomai/issues/85: training atomai's VAE on
grayscale images with the convolutional encoder and decoder gives NaN training loss (the whole
loss history is nan); the maintainer's answer: the data are probably not normalized; the
asker: normalizing the images to [0, 1] fixed the NaN. With raw detector counts the unbounded
conv encoder (no Tanh, unlike atomai's MLP encoder) puts z_logsd in the hundreds, exp() of it
overflows to inf, and the KL term and every gradient become NaN.

Departures: synthetic 24x24 frames (one soft-edged bright particle at a random position and
size) stored as raw 16-bit detector counts (the report does not say the raw range; 8-bit
0..255 frames are not enough to overflow at this size); a plain training loop instead of
atomai's trainer; 16 conv filters instead of 32; Adam lr 1e-3 instead of atomai's default 1e-4
(at 1e-4 this small rebuild needs far more steps to move off the mean image).

Measured (OMP_NUM_THREADS=1): sick: loss nan from the first epoch, reconstruction MSE nan;
fixed: reconstruction MSE (in [0,1] units) 0.016 vs 0.042 for the mean image after 16 epochs,
loss 17.9 -> 8.0. ~6 s CPU each.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, N, LATENT, FILTERS = 24, 256, 2, 16


def make_frames(n: int) -> np.ndarray:
    """16-bit detector frames: dark noisy background, one bright round particle (soft edge)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frames = np.empty((n, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        r, c = rng.uniform(5, SIZE - 5, size=2)
        radius = rng.uniform(3.5, 6.0)
        particle = 1.0 / (1.0 + np.exp(2.0 * (np.sqrt((yy - r) ** 2 + (xx - c) ** 2) - radius)))
        frames[i] = 2000 + 50000 * particle + rng.normal(0, 500, size=(SIZE, SIZE))
    return np.clip(frames, 0, 65535).round()


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.1),
    )  # fmt: skip


class ConvEncoderNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = conv_block(1, FILTERS)
        self.fc11 = nn.Linear(FILTERS * SIZE * SIZE, LATENT)
        self.fc12 = nn.Linear(FILTERS * SIZE * SIZE, LATENT)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x.unsqueeze(1)).reshape(x.size(0), -1)
        return self.fc11(h), self.fc12(h)  # z_mean, z_logsd


class ConvDecoderNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc_linear = nn.Linear(LATENT, FILTERS * SIZE * SIZE, bias=False)
        self.decoder = conv_block(FILTERS, FILTERS)
        self.conv_1x1 = nn.Conv2d(FILTERS, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc_linear(z).reshape(-1, FILTERS, SIZE, SIZE)
        return self.conv_1x1(self.decoder(h)).squeeze(1)


def vae_loss(x, x_reconstr, z_mean, z_logsd):
    """-ELBO: summed squared error likelihood, KL to the standard normal."""
    b = x.size(0)
    likelihood = -0.5 * torch.sum((x_reconstr.reshape(b, -1) - x.reshape(b, -1)) ** 2, 1).mean()
    z_sd = torch.exp(z_logsd)
    kl = torch.sum(-z_logsd + 0.5 * z_sd**2 + 0.5 * z_mean**2 - 0.5, -1).mean()
    return -(likelihood - kl)


frames = make_frames(N)
X_train = torch.as_tensor(frames / 65535.0)  # the fix: normalize the images to [0, 1]
reference = torch.as_tensor(frames / 65535.0)  # only for the printed metric

encoder_net, decoder_net = ConvEncoderNet(), ConvDecoderNet()
params = list(decoder_net.parameters()) + list(encoder_net.parameters())
optim = torch.optim.Adam(params, lr=1e-3)
batch_size = 16
for epoch in range(16):
    perm = torch.randperm(N)
    total = 0.0
    for start in range(0, N, batch_size):
        x = X_train[perm[start : start + batch_size]]
        optim.zero_grad()
        z_mean, z_logsd = encoder_net(x)
        z = z_mean + torch.exp(z_logsd) * torch.randn_like(z_mean)
        x_reconstr = decoder_net(z)
        loss = vae_loss(x, x_reconstr, z_mean, z_logsd)
        loss.backward()
        optim.step()
        total += loss.item()
    if epoch % 4 == 3 or epoch == 0:
        with torch.no_grad():
            z_mean, _ = encoder_net(X_train)
            recon = decoder_net(z_mean) * (reference.max() / X_train.max())  # back to [0, 1]
            mse = ((recon - reference) ** 2).mean().item()
            baseline = ((reference - reference.mean(0)) ** 2).mean().item()
        print(
            f"epoch {epoch}: loss {total / (N // batch_size):.4f} "
            f"reconstruction MSE {mse:.4f} (mean-image baseline {baseline:.4f})"
        )
