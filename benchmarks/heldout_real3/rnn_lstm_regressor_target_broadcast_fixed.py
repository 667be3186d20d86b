"""aibox-nlp's ``LSTMRegressor``: an ``nn.Sequential`` of a 2-layer batch-first ``nn.LSTM``, an
extractor that keeps the last time step (``tensor[:, -1, :]``) and ``nn.Linear(hidden, 1)``,
trained on padded sequences of token vectors with ``nn.MSELoss`` and AdamW in mini-batches of
256 (``LSTMEstimator.fit``).

Rebuilt from https://github.com/aiboxlab/nlp/issues/97 ("bug: shape de saída em
LSTMRegressor"): running the estimator tests gives "UserWarning: Using a target size
(torch.Size([3])) that is different to the input size (torch.Size([3, 1])). This will likely
lead to incorrect results due to broadcasting." The maintainer's diagnosis: the last Linear
layer outputs (batch_size, 1) while the target given to ``MSELoss`` is (batch_size,); the fix
squeezes the innermost dimension of the network output (and updates the target shape). With the
bug the loss averages (out_i - y_j)^2 over all pairs, so every prediction is pulled to the
batch mean of the targets.

Departures: synthetic data instead of essays: 1024 sequences of 16 token vectors (8 features),
the score is six times the mean over time of a fixed projection of the tokens plus noise, so it is
near unit scale; all sequences have the same length (the original pads variable lengths);
``epochs=40`` and ``learning_rate=1e-2`` instead of the class defaults 10 and 1e-3 so that the
fixed estimator learns within a few CPU seconds; ``predict`` and the label encoder are left out;
the loss, R^2 and the spread of the predictions are printed.
Measured: sick: PyTorch warns "Using a target size (torch.Size([256])) that is different to
the input size (torch.Size([256, 1]))", the loss stays at 1.002 (= the target variance, the
constant-prediction baseline) for 40 epochs, R2 0.001, prediction std 0.002 against a target
std of 1.00; fixed: R2 0.81 after 5 epochs, 0.99 (MSE 0.009) after 40, prediction std 1.01.
CPU: about 5.2 s (sick), 5.4 s (fixed).
"""

import typing

import numpy as np
import torch
import torch.optim as optim
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

N_SAMPLES, SEQ_LEN, N_FEATURES = 1024, 16, 8
W = rng.standard_normal(N_FEATURES) / np.sqrt(N_FEATURES)
X_np = rng.standard_normal((N_SAMPLES, SEQ_LEN, N_FEATURES)).astype(np.float32)
y_np = (6.0 * (X_np @ W).mean(axis=1) + 0.1 * rng.standard_normal(N_SAMPLES)).astype(np.float32)


class _LSTMTensorExtractor(nn.Module):
    def forward(self, x):
        # Output shape (batch, features, hidden)
        tensor, _ = x

        # Reshape shape (batch, hidden)
        return tensor[:, -1, :]


class LSTMEstimator:
    _OPTIMIZER: typing.ClassVar[dict] = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD}

    def __init__(
        self,
        hidden_size,
        num_layers,
        kind,
        epochs=100,
        bias=True,
        dropout_prob=0,
        bidirectional=False,
        proj_size=0,
        learning_rate=1e-3,
        optim="adamw",
        train_batch_size=256,
    ):
        self._hyperparams = {
            "lstm_hidden_size": hidden_size,
            "lstm_layers": num_layers,
            "lstm_bias": bias,
            "lstm_dropout": dropout_prob,
            "lstm_bidirectional": bidirectional,
            "lstm_proj_size": proj_size,
        }
        self._optim = self._OPTIMIZER[optim]
        self._lr = learning_rate
        self._epochs = epochs
        if kind == "classifier":
            self._criterion = nn.CrossEntropyLoss()
        else:
            self._criterion = nn.MSELoss()
        self._model = None
        self._kind = kind
        self._batch_size = train_batch_size

    def _create_model(self, input_size, y):
        out = 1
        h = self._hyperparams["lstm_hidden_size"]
        self._model = nn.Sequential(
            nn.LSTM(
                input_size,
                h,
                self._hyperparams["lstm_layers"],
                self._hyperparams["lstm_bias"],
                True,
                self._hyperparams["lstm_dropout"],
                self._hyperparams["lstm_bidirectional"],
                self._hyperparams["lstm_proj_size"],
            ),
            _LSTMTensorExtractor(),
            nn.Linear(h, out),
        )

    def fit(self, X, y):
        # (batch_size, max_seq_len, n_features)
        X = torch.tensor(X)
        feature_size = X.size(dim=2)
        y = torch.tensor(y)
        self._create_model(input_size=feature_size, y=y)
        ds = torch.utils.data.TensorDataset(X, y)
        loader = torch.utils.data.DataLoader(ds, batch_size=self._batch_size, shuffle=True)
        self._optim = self._optim(self._model.parameters(), lr=self._lr)
        baseline = y.var(unbiased=False).item()
        print(f"constant-prediction baseline MSE {baseline:.4f}")

        for epoch in range(self._epochs):
            epoch_loss = 0.0
            for data in loader:
                inputs, targets = data
                self._optim.zero_grad()
                outputs = self._model(inputs)
                loss = self._criterion(outputs.squeeze(-1), targets)  # the fix
                loss.backward()
                self._optim.step()
                epoch_loss += loss.item() * len(inputs)
            if epoch % 4 == 0 or epoch == self._epochs - 1:
                with torch.no_grad():
                    pred = self._model(X).reshape(-1)
                mse = ((pred - y) ** 2).mean().item()
                print(
                    f"epoch {epoch}: train loss {epoch_loss / len(X):.4f} true MSE {mse:.4f} "
                    f"R2 {1 - mse / baseline:.3f} prediction std {pred.std().item():.3f} "
                    f"(target std {y.std().item():.3f})"
                )


estimator = LSTMEstimator(
    hidden_size=20, num_layers=2, kind="regressor", epochs=40, learning_rate=1e-2
)
estimator.fit(X_np, y_np)
