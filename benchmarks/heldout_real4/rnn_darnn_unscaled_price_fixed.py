"""Dual-stage attention LSTM forecaster of JulesBelveze/time-series-autoencoder
(``tsa/model.py``, ``AutoEncForecast`` with ``input_att`` and ``temporal_att``): an encoder
``nn.LSTM`` stepped one time step at a time behind an input (feature) attention, and a decoder
``nn.LSTM`` stepped over the lagged target history behind a temporal attention over the encoder
states, predicting the next value; ``nn.MSELoss`` + L1 weight penalty, Adam,
``clip_grad_norm_`` and a StepLR stepped every batch, as in ``tsa/train.py``.

Rebuilt from https://github.com/JulesBelveze/time-series-autoencoder/issues/18: "Trained model
on NFLX stock data from 2014-2021. Predictions are scaled wrongly." The features went through
a ``StandardScaler`` in ``TimeSeriesDataset.preprocess_data`` but the target column (the
price, fed both as the regression target and as the decoder's lagged ``y_hist`` input) was
returned raw (``y_train.values``). The maintainer labelled it a bug and fixed it in PR #19
(commit 9bff0e7, "fix: target scale") by fitting a ``StandardScaler`` on the target too and
inverting it for evaluation.

Departures: synthetic daily "stock" table (a mean-reverting close around 300 (std 16) with
open/high/low/volume derived from it) instead of the NFLX csv, and numpy standardisation
instead of sklearn's ``ColumnTransformer`` / ``StandardScaler``; hidden sizes 32 instead of
128, batch 32 instead of 16, lr 1e-3 instead of 1e-5 and 6 epochs instead of 100 so that the
short run can learn; no tensorboard / checkpoint writing; the test RMSE is printed in price
units (the fixed script inverts the target scaling, as PR #19's ``invert_scale`` does).
Measured: the constant-prediction test RMSE is 20.3 (price mean 296, std 16). Sick: train MSE
87393 -> 77554, predictions crawl from 1 to 19 (std 0.02) while the target is ~296, test RMSE
308 -> 290 over 6 epochs; fixed: train loss 1.06 -> 0.39 (standardised units), test RMSE
20.1 -> 9.5 price units, predictions follow the series (std 10.7). About 6 CPU seconds each.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as tf

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

config = dict(
    output_size=1, num_epochs=6, batch_size=32, lr=1e-3, reg1=True, reg_factor1=1e-4,
    seq_len=10, prediction_window=1, hidden_size_encoder=32, hidden_size_decoder=32,
    max_grad_norm=0.1, lrs_step_size=5000,
)  # fmt: skip


def make_table(n: int):
    close = np.empty(n)
    close[0] = 300.0
    for t in range(1, n):
        close[t] = close[t - 1] + 0.03 * (300.0 - close[t - 1]) + 4.0 * rng.standard_normal()
    open_ = np.r_[close[0], close[:-1]] + rng.standard_normal(n)
    high = np.maximum(open_, close) + np.abs(rng.standard_normal(n)) * 2
    low = np.minimum(open_, close) - np.abs(rng.standard_normal(n)) * 2
    volume = 5e6 + 1e5 * np.abs(close - np.r_[close[0], close[:-1]]) + 1e5 * rng.standard_normal(n)
    return np.stack([open_, high, low, volume], 1), close[:, None]


X_all, y_all = make_table(1500)


def init_hidden(x, hidden_size: int, num_dir: int = 1, xavier: bool = True):
    if xavier:
        return nn.init.xavier_normal_(torch.zeros(num_dir, x.size(0), hidden_size))
    return torch.zeros(num_dir, x.size(0), hidden_size)


class TimeSeriesDataset:
    def __init__(self, X, y, seq_length, prediction_window=1):
        self.X, self.y = X, y
        self.seq_length = seq_length
        self.prediction_window = prediction_window

    def preprocess_data(self):
        split = int(len(self.X) * 0.8)  # train_test_split(..., shuffle=False)
        X_train, X_test = self.X[:split], self.X[split:]
        y_train, y_test = self.y[:split], self.y[split:]
        self.x_mean, self.x_std = X_train.mean(0), X_train.std(0)  # StandardScaler
        X_train = (X_train - self.x_mean) / self.x_std
        X_test = (X_test - self.x_mean) / self.x_std
        self.y_mean, self.y_std = y_train.mean(0), y_train.std(0)  # the fix
        y_train, y_test = (
            (y_train - self.y_mean) / self.y_std,
            (y_test - self.y_mean) / self.y_std,
        )  # the fix
        return X_train, X_test, y_train, y_test

    def frame_series(self, X, y):
        nb_obs, nb_features = X.shape
        features, target, y_hist = [], [], []
        for i in range(1, nb_obs - self.seq_length - self.prediction_window):
            features.append(torch.FloatTensor(X[i : i + self.seq_length, :]).unsqueeze(0))
            y_hist.append(torch.FloatTensor(y[i - 1 : i + self.seq_length - 1]).unsqueeze(0))
            target.append(
                torch.FloatTensor(
                    y[i + self.seq_length : i + self.seq_length + self.prediction_window]
                )
            )
        return torch.cat(features), torch.cat(y_hist), torch.cat(target)

    def invert_scale(self, predictions):
        return predictions * float(self.y_std[0]) + float(self.y_mean[0])  # the fix


class AttnEncoder(nn.Module):
    def __init__(self, config, input_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = config["hidden_size_encoder"]
        self.seq_len = config["seq_len"]
        self.lstm = nn.LSTM(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=1)
        self.attn = nn.Linear(in_features=2 * self.hidden_size + self.seq_len, out_features=1)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, input_data):
        h_t, c_t = (
            init_hidden(input_data, self.hidden_size),
            init_hidden(input_data, self.hidden_size),
        )
        attentions = torch.zeros(input_data.size(0), self.seq_len, self.input_size)
        input_encoded = torch.zeros(input_data.size(0), self.seq_len, self.hidden_size)
        for t in range(self.seq_len):
            x = torch.cat((h_t.repeat(self.input_size, 1, 1).permute(1, 0, 2),
                           c_t.repeat(self.input_size, 1, 1).permute(1, 0, 2),
                           input_data.permute(0, 2, 1)), dim=2)  # fmt: skip
            e_t = self.attn(x.view(-1, self.hidden_size * 2 + self.seq_len))
            a_t = self.softmax(e_t.view(-1, self.input_size))
            weighted_input = torch.mul(a_t, input_data[:, t, :])
            _, (h_t, c_t) = self.lstm(weighted_input.unsqueeze(0), (h_t, c_t))
            input_encoded[:, t, :] = h_t
            attentions[:, t, :] = a_t
        return attentions, input_encoded


class AttnDecoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.seq_len = config["seq_len"]
        self.encoder_hidden_size = config["hidden_size_encoder"]
        self.decoder_hidden_size = config["hidden_size_decoder"]
        self.out_feats = config["output_size"]
        self.attn = nn.Sequential(
            nn.Linear(
                2 * self.decoder_hidden_size + self.encoder_hidden_size, self.encoder_hidden_size
            ),
            nn.Tanh(),
            nn.Linear(self.encoder_hidden_size, 1),
        )
        self.lstm = nn.LSTM(input_size=self.out_feats, hidden_size=self.decoder_hidden_size)
        self.fc = nn.Linear(self.encoder_hidden_size + self.out_feats, self.out_feats)
        self.fc_out = nn.Linear(self.decoder_hidden_size + self.encoder_hidden_size, self.out_feats)
        self.fc.weight.data.normal_()

    def forward(self, input_encoded, y_history):
        h_t, c_t = (init_hidden(input_encoded, self.decoder_hidden_size),
                    init_hidden(input_encoded, self.decoder_hidden_size))  # fmt: skip
        context = torch.zeros(input_encoded.size(0), self.encoder_hidden_size)
        for t in range(self.seq_len):
            x = torch.cat((h_t.repeat(self.seq_len, 1, 1).permute(1, 0, 2),
                           c_t.repeat(self.seq_len, 1, 1).permute(1, 0, 2),
                           input_encoded), dim=2)  # fmt: skip
            x = tf.softmax(self.attn(x.view(-1, 2 * self.decoder_hidden_size + self.encoder_hidden_size))
                           .view(-1, self.seq_len), dim=1)  # fmt: skip
            context = torch.bmm(x.unsqueeze(1), input_encoded)[:, 0, :]
            y_tilde = self.fc(torch.cat((context, y_history[:, t]), dim=1))
            _, (h_t, c_t) = self.lstm(y_tilde.unsqueeze(0), (h_t, c_t))
        return self.fc_out(torch.cat((h_t[0], context), dim=1))


class AutoEncForecast(nn.Module):
    def __init__(self, config, input_size):
        super().__init__()
        self.encoder = AttnEncoder(config, input_size)
        self.decoder = AttnDecoder(config)

    def forward(self, encoder_input, y_hist):
        attentions, encoder_output = self.encoder(encoder_input)
        return self.decoder(encoder_output, y_hist.float())


ts = TimeSeriesDataset(X_all, y_all, config["seq_len"], config["prediction_window"])
X_train, X_test, y_train, y_test = ts.preprocess_data()
train_feat, train_hist, train_target = ts.frame_series(X_train, y_train)
test_feat, test_hist, test_target = ts.frame_series(X_test, y_test)
y_raw_train, y_raw_test = y_all[: len(X_train)], y_all[len(X_train) :]
price_test = torch.FloatTensor(
    y_raw_test[config["seq_len"] + 1 : len(y_raw_test) - config["prediction_window"]]
)
baseline_rmse = (price_test - float(y_raw_train.mean())).pow(2).mean().sqrt().item()
print(f"target mean {train_target.mean().item():.1f} std {train_target.std().item():.2f}; "
      f"constant-prediction test RMSE {baseline_rmse:.2f}")  # fmt: skip

model = AutoEncForecast(config, input_size=X_train.shape[1])
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config["lrs_step_size"], gamma=0.5)

n_batches = len(train_feat) // config["batch_size"]  # DataLoader(shuffle=False, drop_last=True)
for epoch in range(config["num_epochs"]):
    train_loss = 0.0
    for i in range(n_batches):
        model.train()
        optimizer.zero_grad()
        sl = slice(i * config["batch_size"], (i + 1) * config["batch_size"])
        feature, y_hist, target = train_feat[sl], train_hist[sl], train_target[sl]
        output = model(feature, y_hist)
        loss = criterion(output, target)
        if config["reg1"]:
            params = torch.cat(
                [p.view(-1) for name, p in model.named_parameters() if "bias" not in name]
            )
            loss += config["reg_factor1"] * torch.norm(params, 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config["max_grad_norm"])
        train_loss += loss.item()
        optimizer.step()
        scheduler.step()

    model.eval()
    with torch.no_grad():
        preds = ts.invert_scale(model(test_feat, test_hist))
    rmse = (preds - price_test).pow(2).mean().sqrt().item()
    print(f"epoch {epoch}: train loss {train_loss / n_batches:.4f} test RMSE {rmse:.2f} "
          f"(pred mean {preds.mean().item():.1f} std {preds.std().item():.2f})")  # fmt: skip
