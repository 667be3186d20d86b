"""Urban-sound CNN classifier of the "PyTorch for Audio and Music Processing" course: a
``CNNNetwork`` of four Conv2d(3x3, padding 2) + ReLU + MaxPool2d blocks over a mel spectrogram,
then ``nn.Flatten``, ``nn.Linear`` to 10 classes and ``nn.Softmax(dim=1)``, trained with
``nn.CrossEntropyLoss`` and Adam (lr 0.001, batch 128) on torchaudio ``MelSpectrogram`` power
spectrograms (no log / dB scaling), the DataLoader not shuffled.

Rebuilt from https://github.com/musikalkemist/pytorchforaudio/issues/9: "I trained this urban
sound classifier for 10 epochs, but there one problem. The loss stays extactly same except for
1st epochs. What could be the reason?" (another user: "I had met the same problem").
Cause/fix (pull request https://github.com/musikalkemist/pytorchforaudio/pull/10, approved by
the maintainer and merged into the v2.0 release branch): "SoftMax is not needed in Pytorch when
using CrossEntropyLoss" - the ``nn.Softmax`` at the end of ``CNNNetwork.forward`` was removed and
the logits returned. Applied before CrossEntropyLoss (which does its own log-softmax), the
softmax saturates on the large unscaled power-spectrogram activations, its outputs become
one-hot and the gradient through it vanishes, so the loss freezes.

Departures: synthetic power "mel spectrograms" (1, 32, 22) instead of (1, 64, 44) from
UrbanSound8K (10 classes, each a fixed set of active mel bands with a class-specific onset,
band power about 2e4 over a background of about 200, like an unscaled power mel spectrogram
of loud clips); channel widths halved (8/16/32/64 instead of 16/32/64/128) and the Linear input is 64*3*3 accordingly;
1280 clips, 6 epochs instead of 10; no torchaudio, no GPU, no torchsummary.
Measured: sick: the printed loss is 2.3362 in every one of the 6 epochs, to the last digit
(saturated one-hot softmax), test accuracy 0.110 with 1 class predicted; fixed: loss 7.88 after
epoch 1, 0.0021 after epoch 6, test accuracy 0.764 after epoch 1 and 0.994 after epoch 6, all
10 classes predicted. CPU: sick 4.9 s, fixed 6.5 s user.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

BATCH_SIZE = 128
EPOCHS = 6
LEARNING_RATE = 0.001
N_MELS, N_FRAMES, CLASSES = 32, 22, 10

# each class: a few active mel bands and an onset frame
BANDS = [rng.choice(N_MELS, size=4, replace=False) for _ in range(CLASSES)]
ONSETS = rng.integers(0, N_FRAMES // 2, size=CLASSES)


def make_split(n):
    labels = rng.integers(CLASSES, size=n)
    specs = np.empty((n, 1, N_MELS, N_FRAMES), dtype=np.float32)
    for i, c in enumerate(labels):
        power = rng.exponential(200.0, size=(N_MELS, N_FRAMES))  # background noise power
        start = ONSETS[c] + rng.integers(-1, 2)
        for b in BANDS[c]:
            power[b, max(start, 0) :] += rng.exponential(20000.0) + 5000.0 * rng.random(
                N_FRAMES - max(start, 0)
            )
        specs[i, 0] = power
    return torch.as_tensor(specs), torch.as_tensor(labels)


train_x, train_y = make_split(1280)
test_x, test_y = make_split(500)


class CNNNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        # 4 conv blocks / flatten / linear / softmax
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=8, kernel_size=3, stride=1, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(in_channels=8, out_channels=16, kernel_size=3, stride=1, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )
        self.conv3 = nn.Sequential(
            nn.Conv2d(in_channels=16, out_channels=32, kernel_size=3, stride=1, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )
        self.conv4 = nn.Sequential(
            nn.Conv2d(in_channels=32, out_channels=64, kernel_size=3, stride=1, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(64 * 3 * 3, 10)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, input_data):
        x = self.conv1(input_data)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.conv4(x)
        x = self.flatten(x)
        logits = self.linear(x)
        predictions = logits  # the fix
        return predictions


def train_single_epoch(model, loss_fn, optimiser):
    for start in range(
        0, len(train_x), BATCH_SIZE
    ):  # DataLoader(train_data, batch_size), no shuffle
        input, target = train_x[start : start + BATCH_SIZE], train_y[start : start + BATCH_SIZE]

        # calculate loss
        prediction = model(input)
        loss = loss_fn(prediction, target)

        # backpropagate error and update weights
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    print(f"loss: {loss.item()}")


cnn = CNNNetwork()
loss_fn = nn.CrossEntropyLoss()
optimiser = torch.optim.Adam(cnn.parameters(), lr=LEARNING_RATE)

for i in range(EPOCHS):
    print(f"Epoch {i + 1}")
    train_single_epoch(cnn, loss_fn, optimiser)
    with torch.no_grad():
        pred = cnn(test_x).argmax(1)
    acc = (pred == test_y).float().mean().item()
    print(f"test accuracy {acc:.3f} classes predicted {len(pred.unique())}")
    print("---------------------------")
print("Finished training")
