"""Recurrent VAE of VAME (``vame/model/rnn_vae.py``): a two-stage bidirectional ``nn.GRU``
encoder of pose time series, a linear latent head (mean, softplus log-variance,
reparametrisation), a GRU decoder that reconstructs the observed half window and a
bidirectional GRU decoder that predicts the next frames, trained with summed MSE
reconstruction + prediction losses, an annealed KL term and the k-means (Gram singular value)
loss, Adam (amsgrad) and a per-epoch ``StepLR``.

Rebuilt from https://github.com/LINCellularNeuroscience/VAME/issues/26: "When the 'scheduler'
parameter is turned off, the learning rate decreases to 0 after 100 epochs. This is because
... with optimizer_scheduler deactivated, gamma should be 1, not 0." The maintainer replied
"You are absolutely right, this is a bug we need to fix" and the branch became
``StepLR(..., gamma=1)`` (commit 8ea956f).

Departures: synthetic 12-feature "pose" series (segments of 4 oscillation motifs mixed into 12
channels plus noise, z-scored) instead of DeepLabCut data; windows of 20 frames (10 observed,
5 predicted) instead of 60 (30, 15); hidden sizes 32 instead of 256, zdims 8 instead of 30,
batch 64 instead of 256, 30 batches per epoch, 12 epochs, Adam lr 5e-3 instead of 5e-4
(so that a short run learns); the StepLR step_size is 3 epochs
instead of 100 so that the collapse falls inside the short run; KL start 1 / anneal time 2
epochs instead of 3 / 8; CPU instead of ``.cuda()``.
Measured: sick: lr 5e-3 -> 0 after the third epoch; test reconstruction MSE 0.67, 0.37, 0.203
in epochs 1-3, then frozen at 0.2034 for epochs 4-12 (train MSE per value flat at 0.28-0.29,
future MSE 0.43-0.44); fixed: the same first three epochs, then test MSE 0.161, 0.148, ...,
0.108 at epoch 12 (train MSE per value 0.149, future 0.223). About 8 CPU seconds each.
"""

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

NUM_FEATURES, TIME_WINDOW, FUTURE_STEPS, ZDIMS, HIDDEN = 12, 10, 5, 8, 32
BATCH, BATCHES_PER_EPOCH, EPOCHS, LEARNING_RATE = 64, 30, 13, 5e-3
BETA, KL_START, ANNEALTIME, KMEANS_LAMBDA = 1, 1, 2, 0.1


def make_series(length: int) -> np.ndarray:
    mixing = rng.standard_normal((NUM_FEATURES, 4))
    freqs = np.array([0.15, 0.3, 0.45, 0.7])
    series, t = [], 0
    while t < length:
        seg = int(rng.integers(50, 150))
        w = freqs[rng.integers(4)]
        tt = np.arange(t, t + seg)
        basis = np.stack([np.sin(w * tt), np.cos(w * tt), np.sin(2 * w * tt), np.cos(2 * w * tt)])
        amp = rng.uniform(0.5, 1.5, size=(4, 1))
        series.append(mixing @ (amp * basis))
        t += seg
    x = np.concatenate(series, axis=1)[:, :length]
    x = x + 0.1 * rng.standard_normal(x.shape)
    return ((x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)).astype(np.float32)


SERIES = make_series(20000)
TEMPORAL_WINDOW = TIME_WINDOW * 2


def sample_windows(n: int, lo: int, hi: int) -> torch.Tensor:
    starts = rng.integers(lo, hi - TEMPORAL_WINDOW, size=n)
    return torch.as_tensor(np.stack([SERIES[:, s : s + TEMPORAL_WINDOW] for s in starts]))


test_windows = sample_windows(512, 16000, 20000)  # (N, features, time) as VAME's dataset


class Encoder(nn.Module):
    def __init__(self, NUM_FEATURES, hidden_size_layer_1, hidden_size_layer_2):
        super().__init__()
        self.rnn_1 = nn.GRU(input_size=NUM_FEATURES, hidden_size=hidden_size_layer_1, num_layers=1,
                            bias=True, batch_first=True, bidirectional=True)  # fmt: skip
        self.rnn_2 = nn.GRU(input_size=hidden_size_layer_1 * 2, hidden_size=hidden_size_layer_2,
                            num_layers=1, bias=True, batch_first=True, bidirectional=True)  # fmt: skip

    def forward(self, inputs):
        outputs_1, hidden_1 = self.rnn_1(inputs)
        outputs_2, hidden_2 = self.rnn_2(outputs_1)
        h_n_1 = torch.cat((hidden_1[0, ...], hidden_1[1, ...]), 1)
        h_n_2 = torch.cat((hidden_2[0, ...], hidden_2[1, ...]), 1)
        return torch.cat((h_n_1, h_n_2), 1)


class Lambda(nn.Module):
    def __init__(self, ZDIMS, hidden_size_layer_1, hidden_size_layer_2):
        super().__init__()
        self.hid_dim = hidden_size_layer_1 * 2 + hidden_size_layer_2 * 2
        self.hidden_to_mean = nn.Linear(self.hid_dim, ZDIMS)
        self.hidden_to_logvar = nn.Linear(self.hid_dim, ZDIMS)
        self.softplus = nn.Softplus()

    def forward(self, cell_output):
        self.latent_mean = self.hidden_to_mean(cell_output)
        self.latent_logvar = self.softplus(self.hidden_to_logvar(cell_output))
        if self.training:
            std = self.latent_logvar.mul(0.5).exp_()
            eps = torch.randn_like(std)
            return eps.mul(std).add_(self.latent_mean), self.latent_mean, self.latent_logvar
        return self.latent_mean, self.latent_mean, self.latent_logvar


class Decoder(nn.Module):
    def __init__(self, ZDIMS, NUM_FEATURES, hidden_size_rec):
        super().__init__()
        self.rnn_rec = nn.GRU(ZDIMS, hidden_size=hidden_size_rec, num_layers=1, bias=True,
                              batch_first=True, bidirectional=False)  # fmt: skip
        self.hidden_to_output = nn.Linear(hidden_size_rec, NUM_FEATURES)

    def forward(self, inputs):
        decoder_output, _ = self.rnn_rec(inputs)
        return self.hidden_to_output(decoder_output)


class Decoder_Future(nn.Module):
    def __init__(self, ZDIMS, NUM_FEATURES, FUTURE_STEPS, hidden_size_pred):
        super().__init__()
        self.future_steps = FUTURE_STEPS
        self.rnn_pred = nn.GRU(ZDIMS, hidden_size=hidden_size_pred, num_layers=1, bias=True,
                               batch_first=True, bidirectional=True)  # fmt: skip
        self.hidden_to_output = nn.Linear(hidden_size_pred * 2, NUM_FEATURES)

    def forward(self, inputs):
        inputs = inputs[:, : self.future_steps, :]
        decoder_output, _ = self.rnn_pred(inputs)
        return self.hidden_to_output(decoder_output)


class RNN_VAE(nn.Module):
    def __init__(self, TEMPORAL_WINDOW, ZDIMS, NUM_FEATURES, FUTURE_STEPS, hidden):
        super().__init__()
        self.seq_len = int(TEMPORAL_WINDOW / 2)
        self.encoder = Encoder(NUM_FEATURES, hidden, hidden)
        self.lmbda = Lambda(ZDIMS, hidden, hidden)
        self.decoder = Decoder(ZDIMS, NUM_FEATURES, hidden)
        self.decoder_future = Decoder_Future(ZDIMS, NUM_FEATURES, FUTURE_STEPS, hidden)

    def forward(self, seq):
        h_n = self.encoder(seq)
        latent, mu, logvar = self.lmbda(h_n)
        z = latent.unsqueeze(2).repeat(1, 1, self.seq_len)
        z = z.permute(0, 2, 1)
        prediction = self.decoder(z)
        future = self.decoder_future(z)
        return prediction, future, latent, mu, logvar


def reconstruction_loss(x, x_tilde, reduction):
    return nn.MSELoss(reduction=reduction)(x_tilde, x)


def cluster_loss(H, kloss, lmbda, batch_size):
    gram_matrix = (H.T @ H) / batch_size
    _, sv_2, _ = torch.svd(gram_matrix)
    sv = torch.sqrt(sv_2[:kloss])
    return lmbda * torch.sum(sv)


def kullback_leibler_loss(mu, logvar):
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


def kl_annealing(epoch, kl_start, annealtime):
    if epoch > kl_start:
        return min(1, epoch / annealtime)
    return 0


def gaussian(ins, seq_len, std_n=0.8):
    emp_std = ins.std(1) * std_n
    emp_std = emp_std.unsqueeze(2).repeat(1, 1, seq_len).permute(0, 2, 1)
    return ins + torch.randn_like(ins) * emp_std


model = RNN_VAE(TEMPORAL_WINDOW, ZDIMS, NUM_FEATURES, FUTURE_STEPS, HIDDEN)
optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, amsgrad=True)
optimizer_scheduler = 0  # the asker turned the 'scheduler' option off

if optimizer_scheduler:
    scheduler = StepLR(optimizer, step_size=3, gamma=0.2, last_epoch=-1)
else:
    scheduler = StepLR(optimizer, step_size=3, gamma=0, last_epoch=-1)

seq_len_half = int(TEMPORAL_WINDOW / 2)
per_value = BATCH * seq_len_half * NUM_FEATURES
for epoch in range(1, EPOCHS):
    model.train()
    train_loss, mse_loss, fut_loss = 0.0, 0.0, 0.0
    for idx in range(BATCHES_PER_EPOCH):
        data_item = sample_windows(BATCH, 0, 16000).permute(0, 2, 1)
        data = data_item[:, :seq_len_half, :]
        fut = data_item[:, seq_len_half : seq_len_half + FUTURE_STEPS, :]
        data_gaussian = gaussian(data, seq_len_half)

        data_tilde, future, latent, mu, logvar = model(data_gaussian)
        rec_loss = reconstruction_loss(data, data_tilde, "sum")
        fut_rec_loss = reconstruction_loss(fut, future, "sum")
        kmeans_loss = cluster_loss(latent.T, ZDIMS, KMEANS_LAMBDA, BATCH)
        kl_loss = kullback_leibler_loss(mu, logvar)
        kl_weight = kl_annealing(epoch, KL_START, ANNEALTIME)
        loss = rec_loss + fut_rec_loss + BETA * kl_weight * kl_loss + kl_weight * kmeans_loss

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5)

        train_loss += loss.item()
        mse_loss += rec_loss.item()
        fut_loss += fut_rec_loss.item()
    scheduler.step()

    model.eval()
    with torch.no_grad():
        test_data = test_windows.permute(0, 2, 1)[:, :seq_len_half, :]
        recon, _, _, _, _ = model(test_data)
        test_mse = nn.functional.mse_loss(recon, test_data).item()
    print(f"epoch {epoch}: train loss {train_loss / BATCHES_PER_EPOCH:.1f} "
          f"MSE per value {mse_loss / BATCHES_PER_EPOCH / per_value:.4f} "
          f"future MSE per value {fut_loss / BATCHES_PER_EPOCH / (BATCH * FUTURE_STEPS * NUM_FEATURES):.4f} "
          f"test MSE {test_mse:.4f} lr {optimizer.param_groups[0]['lr']:.2e}")  # fmt: skip
