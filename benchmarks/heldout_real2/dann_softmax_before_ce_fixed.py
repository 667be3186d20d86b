"""CNN digit classifier of pytorch-DANN's source-only mode: an ``Extractor`` (two 5x5 conv +
ReLU + max-pool stages) and a ``Classifier`` (three Linear layers) trained with
``nn.CrossEntropyLoss`` and SGD with momentum, the learning rate annealed as
``0.01 / (1 + 10 p) ** 0.75``; grey digits repeated to 3 channels as in the repository.

Rebuilt from https://github.com/NaJaeMin92/pytorch-DANN/issues/7: "The softmax layer makes
models hard to train. If you faced the same problem try to remove the last softmax layer in
Classifier and Discriminator." The maintainer agreed ("Since LogSoftmax is already included in
nn.CrossEntropyLoss, it is redundant") and removed ``F.softmax`` from ``Classifier.forward``
and ``Discriminator.forward`` (commit a70cf59).

Departures: synthetic 16x16 "digits" (10 classes, each a fixed random stroke template, shifted
by up to 1 pixel, with noise) instead of MNIST, so the feature size is 48*4*4 instead of
48*7*7; 2000 training images, 6 epochs instead of 100; only the source-only branch (no
discriminator, which had the same softmax before its own CrossEntropyLoss).
Measured: sick: loss flat at 2.30 (= ln 10), test accuracy 0.11-0.19 (chance 0.10) with 3
classes predicted; fixed: test accuracy 0.63 after the first epoch, 0.95 after the sixth.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES, EPOCHS, BATCH = 16, 10, 6, 32


def make_templates() -> np.ndarray:
    templates = np.zeros((CLASSES, SIZE, SIZE), dtype=np.float32)
    for c in range(CLASSES):
        y, x = rng.integers(4, 12, size=2)
        for _ in range(14):  # a random walk of thick strokes
            templates[c, y - 1 : y + 1, x - 1 : x + 1] = 1.0
            y = int(np.clip(y + rng.integers(-1, 2), 3, 12))
            x = int(np.clip(x + rng.integers(-1, 2), 3, 12))
    return templates


TEMPLATES = make_templates()


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = rng.integers(CLASSES, size=n)
    images = np.empty((n, 1, SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-1, 2, size=2)
        im = np.roll(TEMPLATES[c], (dy, dx), axis=(0, 1)) + 0.2 * rng.standard_normal((SIZE, SIZE))
        images[i, 0] = im
    x = torch.as_tensor(images)
    return (x - 0.2) / 0.45, torch.as_tensor(labels)  # transforms.Normalize


train_x, train_y = make_split(2000)
test_x, test_y = make_split(500)


class Extractor(nn.Module):
    def __init__(self):
        super().__init__()
        self.extractor = nn.Sequential(
            nn.Conv2d(in_channels=3, out_channels=32, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
            nn.Conv2d(in_channels=32, out_channels=48, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )

    def forward(self, x):
        x = self.extractor(x)
        x = x.view(-1, 48 * 4 * 4)
        return x


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = nn.Sequential(
            nn.Linear(in_features=48 * 4 * 4, out_features=100),
            nn.ReLU(),
            nn.Linear(in_features=100, out_features=100),
            nn.ReLU(),
            nn.Linear(in_features=100, out_features=10),
        )

    def forward(self, x):
        x = self.classifier(x)
        return x  # the fix


def optimizer_scheduler(optimizer, p):
    for param_group in optimizer.param_groups:
        param_group["lr"] = 0.01 / (1.0 + 10 * p) ** 0.75
    return optimizer


encoder, classifier = Extractor(), Classifier()
classifier_criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(
    list(encoder.parameters()) + list(classifier.parameters()), lr=0.01, momentum=0.9
)
steps_per_epoch = len(train_x) // BATCH
total_steps = EPOCHS * steps_per_epoch

for epoch in range(EPOCHS):
    encoder.train()
    classifier.train()
    perm = torch.randperm(len(train_x))
    for batch_idx in range(steps_per_epoch):
        idx = perm[batch_idx * BATCH : (batch_idx + 1) * BATCH]
        source_image, source_label = train_x[idx], train_y[idx]
        p = float(batch_idx + epoch * steps_per_epoch) / total_steps
        source_image = torch.cat((source_image, source_image, source_image), 1)  # to 3 channels

        optimizer = optimizer_scheduler(optimizer=optimizer, p=p)
        optimizer.zero_grad()
        source_feature = encoder(source_image)
        class_pred = classifier(source_feature)
        class_loss = classifier_criterion(class_pred, source_label)
        class_loss.backward()
        optimizer.step()

    encoder.eval()
    classifier.eval()
    with torch.no_grad():
        pred = classifier(encoder(torch.cat((test_x, test_x, test_x), 1))).argmax(1)
    acc = (pred == test_y).float().mean().item()
    print(f"epoch {epoch}: classification loss {class_loss.item():.4f} test accuracy {acc:.3f} "
          f"classes predicted {len(pred.unique())}")  # fmt: skip
