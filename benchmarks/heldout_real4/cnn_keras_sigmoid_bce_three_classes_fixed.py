"""A small Keras-style CNN image classifier rebuilt in PyTorch: three Conv(3x3)-ReLU-MaxPool stages
(32, 32, 64 filters), Flatten, Dense(64)-ReLU, Dropout(0.5), and as output ``Dense(1)`` +
sigmoid trained with ``binary_crossentropy`` and RMSprop, on images of THREE classes whose
labels come as 0, 1, 2 (``flow_from_directory(..., class_mode='binary')``).

Rebuilt from https://newbedev.com/cnn-with-keras-accuracy-not-improving (a copy of the Stack
Overflow question "CNN with keras, accuracy not improving" and its accepted answer): the asker's
accuracy did not improve. Accepted answer: "The issue is caused by a mis-match between the number of
output classes (three) and your choice of final layer activation (sigmoid) and loss-function
(binary cross entropy) ... model.add(Dense(3)) model.add(Activation('softmax')) ...
loss='categorical_crossentropy' ... you need to specify class_mode='categorical'".

Departures: PyTorch instead of Keras; Keras' ``binary_crossentropy`` written out (clipped at
1e-7, no check on the targets) because ``nn.BCELoss`` refuses targets above 1; the fixed script
uses ``nn.CrossEntropyLoss`` on 3 logits with integer labels, which is softmax + categorical
cross-entropy on one-hot targets; synthetic 32x32 images (3 classes, each a fixed random 4x4
colour pattern upsampled to 32x32 and shifted by up to 3 pixels, on noise, already in [0, 1]);
1500 training images, 5 epochs, batch 32; the sick accuracy is Keras' binary accuracy
(``round(p) == y``), the fixed one argmax.
Measured: sick: loss -0.079, -0.73, -4.08, -5.35, -5.40 (negative: label 2 rewards p -> 1 without
bound until the clip), val accuracy 0.313, 0.313, then 0.663 with only classes [0, 1] ever
predicted; fixed: loss 0.546, 0.056, 0.050, 0.021, 0.0029, val accuracy 1.000 from the first epoch.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES, EPOCHS, BATCH = 32, 3, 5, 32

TEMPLATES = rng.uniform(0, 1, size=(CLASSES, 3, 4, 4)).astype(np.float32)


def make_split(n):  # like flow_from_directory(..., class_mode='binary'): labels 0., 1., 2.
    labels = rng.integers(CLASSES, size=n)
    images = rng.uniform(0, 1, size=(n, 3, SIZE, SIZE)).astype(np.float32) * 0.5
    for i, c in enumerate(labels):
        up = np.kron(TEMPLATES[c], np.ones((8, 8), dtype=np.float32))
        dy, dx = rng.integers(-3, 4, size=2)
        images[i] += 0.5 * np.roll(up, (dy, dx), axis=(1, 2))
    return torch.as_tensor(images), torch.as_tensor(labels)  # rescale=1. / 255 already applied


train_x, train_y = make_split(1500)
test_x, test_y = make_split(300)

model = nn.Sequential(
    nn.Conv2d(3, 32, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(32, 32, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(64 * 2 * 2, 64),
    nn.ReLU(),
    nn.Dropout(0.5),
    nn.Linear(64, 3),  # the fix (Dense(3) + softmax, applied by the loss)
)


def binary_crossentropy(y_pred, y_true, eps=1e-7):  # Keras' binary_crossentropy: no check on y_true
    y_pred = y_pred.clamp(eps, 1 - eps)
    return -(y_true * torch.log(y_pred) + (1 - y_true) * torch.log(1 - y_pred)).mean()


criterion = nn.CrossEntropyLoss()  # the fix
optimizer = torch.optim.RMSprop(
    model.parameters(), lr=0.001, alpha=0.9, eps=1e-7
)  # Keras 'rmsprop'

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train_x))
    total = 0.0
    for i in range(0, len(perm), BATCH):
        idx = perm[i : i + BATCH]
        optimizer.zero_grad()
        out = model(train_x[idx])
        loss = criterion(out, train_y[idx])  # the fix
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        out = model(test_x)
    pred = out.argmax(1)  # the fix
    acc = (pred == test_y).float().mean().item()
    print(
        f"epoch {epoch}: loss {total / len(perm):.4f} val_acc {acc:.3f} "
        f"predicted classes {pred.unique().tolist()}"
    )
