"""The Keras ``examples/cifar10_cnn.py`` network rebuilt in PyTorch: Conv(32, same)-ReLU,
Conv(32)-ReLU, MaxPool, Dropout(0.25), Conv(64, same)-ReLU, Conv(64)-ReLU, MaxPool, Dropout(0.25),
Flatten, Dense(512)-ReLU, Dropout(0.5), Dense(10) with softmax + categorical cross-entropy
(here ``nn.CrossEntropyLoss`` on the logits), Keras' default glorot_uniform / zero-bias init,
inputs scaled by ``/= 255``.

Rebuilt from https://github.com/keras-team/keras/issues/4066: "Cifar10 example sometimes only
predicts 1 class and does not improve ... accuracy fixes at 0.1". One user solved it by switching to
Adam; another answered "I've changed to Adam but the loss still get stucked at 2.304, and
accu=0.1. are you using Adam with lr 0.01?" and the reply was to use Adam's default settings;
he confirmed that the default "is using a smaller learning rate 0.001", which trains. The cause:
the learning rate (Adam 0.01) is too high for this net, which collapses to one class at the
constant-prediction loss ln 10 = 2.303.

Departures: PyTorch instead of Keras; synthetic 16x16 "CIFAR" (10 classes, each a fixed random
4x4 colour pattern upsampled to 16x16, shifted by up to 2 pixels, on uniform noise, pixel values
in 0-255 then divided by 255) instead of CIFAR-10 32x32, so the flattened size is 64*2*2; 2000
training images, 5 epochs, batch 32; the sick script is the commenter's Adam(lr=0.01) variant,
not the original SGD(lr=0.01, momentum 0.9, nesterov) run that "sometimes" locked up.
Measured: sick: loss 2.3255, 2.3058, 2.3041, 2.3043, 2.3030, train accuracy 0.09-0.11, val
accuracy 0.082 with 1 class predicted in every epoch; fixed: loss 1.415, 0.101, 0.030, 0.024,
0.012, val accuracy 0.996 after the first epoch and 1.000 after.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES, EPOCHS, BATCH = 16, 10, 5, 32

TEMPLATES = rng.standard_normal((CLASSES, 3, 4, 4)).astype(np.float32)


def make_split(n):
    labels = rng.integers(CLASSES, size=n)
    images = rng.uniform(0, 255, size=(n, 3, SIZE, SIZE)).astype(np.float32) * 0.3 + 90
    for i, c in enumerate(labels):
        up = np.kron(TEMPLATES[c], np.ones((4, 4), dtype=np.float32))  # a 16x16 colour pattern
        dy, dx = rng.integers(-2, 3, size=2)
        images[i] += 60 * np.roll(up, (dy, dx), axis=(1, 2))
    x = torch.as_tensor(np.clip(images, 0, 255)) / 255  # x_train /= 255
    y = torch.as_tensor(labels)
    return x, y


x_train, y_train = make_split(2000)
x_test, y_test = make_split(500)


def glorot(m):  # Keras defaults: glorot_uniform kernels, zero biases
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


model = nn.Sequential(
    nn.Conv2d(3, 32, 3, padding=1),
    nn.ReLU(),
    nn.Conv2d(32, 32, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.25),
    nn.Conv2d(32, 64, 3, padding=1),
    nn.ReLU(),
    nn.Conv2d(64, 64, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.25),
    nn.Flatten(),
    nn.Linear(64 * 2 * 2, 512),
    nn.ReLU(),
    nn.Dropout(0.5),
    nn.Linear(512, CLASSES),
)
model.apply(glorot)
criterion = nn.CrossEntropyLoss()  # categorical_crossentropy on the softmax output
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(x_train))
    total, correct = 0.0, 0
    for i in range(0, len(perm), BATCH):
        idx = perm[i : i + BATCH]
        optimizer.zero_grad()
        out = model(x_train[idx])
        loss = criterion(out, y_train[idx])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        correct += (out.argmax(1) == y_train[idx]).sum().item()
    model.eval()
    with torch.no_grad():
        pred = model(x_test).argmax(1)
    print(
        f"epoch {epoch}: loss {total / len(perm):.4f} acc {correct / len(perm):.3f} "
        f"val_acc {(pred == y_test).float().mean().item():.3f} classes predicted {len(pred.unique())}"
    )
