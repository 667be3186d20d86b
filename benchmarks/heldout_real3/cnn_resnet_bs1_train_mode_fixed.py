"""CIFAR-style ResNet (3x3 stem, BasicBlocks with BatchNorm, global average pooling) of
huyvnphan/PyTorch_CIFAR10, trained with ``nn.CrossEntropyLoss`` and SGD with momentum and
checked by computing its accuracy on the training images through a ``DataLoader`` with
``batch_size=1``, ``RandomCrop(32, padding=4)``/``RandomHorizontalFlip`` augmentation and the
CIFAR-10 ``Normalize`` mean/std.

Rebuilt from https://github.com/huyvnphan/PyTorch_CIFAR10/issues/4 ("Pre-trained models - low
accuracy?"): "When loading the pretrained ResNets, I am getting very low training set accuracy
(around 22% on a subset of 1000 images)", measured with ``batch_size=1, shuffle=True`` and no
call to ``model.eval()``. The asker's answer, which closed the issue: "The answer is to call
``model.eval()`` after loading the weights! This will tell the dropout and batch-normalization
layers that we are in evaluation, and not training mode. This fixed my issue!" In train mode
every BatchNorm normalises a lone image by its own spatial statistics instead of the running
statistics learned in training.

Departures: the "pretrained weights" are produced by an ordinary training loop in the script
(batch 64, model.train()) instead of being downloaded, and the accuracy check the asker ran is
done after every training epoch; a small 3-stage ResNet (16-32-64 channels, one BasicBlock per
stage) on 1600 synthetic 16x16 RGB "CIFAR" images (10 classes, each a fixed random blocky colour
template, shifted by up to 2 pixels, with noise; crop padding 2 instead of 4) instead of
ResNet-50 on CIFAR-10; the check uses 300 training images; 4 epochs.
Measured: sick: training loss 1.40 -> 0.15 -> 0.022 while the batch_size=1 check gives
accuracy 0.107-0.110 every epoch (chance 0.10); fixed (``model.eval()`` before the check): the
same training, check accuracy 0.26 after the first epoch, 0.96 after the second and 1.00 after
the fourth.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES, EPOCHS = 16, 10, 4
mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
std = torch.tensor([0.2023, 0.1994, 0.2010]).view(3, 1, 1)

TEMPLATES = rng.uniform(0.1, 0.9, size=(CLASSES, 3, 4, 4)).repeat(4, axis=2).repeat(4, axis=3)


def make_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = rng.integers(CLASSES, size=n)
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-2, 3, size=2)
        im = np.roll(TEMPLATES[c], (dy, dx), axis=(1, 2)) + 0.15 * rng.standard_normal(
            (3, SIZE, SIZE)
        )
        images[i] = np.clip(im, 0.0, 1.0)  # ToTensor: pixels in [0, 1]
    return torch.as_tensor(images), torch.as_tensor(labels)


class ImageSet(Dataset):
    """RandomCrop(SIZE, padding=2), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = F.pad(self.images[i], (2, 2, 2, 2))
        top, left = torch.randint(0, 5, (2,)).tolist()
        img = img[:, top : top + SIZE, left : left + SIZE]
        if torch.rand(()) < 0.5:
            img = img.flip(2)
        return (img - mean) / std, self.labels[i]


train_images, train_labels = make_images(1600)
train_loader = DataLoader(ImageSet(train_images, train_labels), batch_size=64, shuffle=True)
check_loader = DataLoader(
    ImageSet(train_images[:300], train_labels[:300]), batch_size=1, shuffle=True
)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2)
        self.layer3 = BasicBlock(32, 64, stride=2)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


model = ResNet(num_classes=CLASSES)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

for epoch in range(EPOCHS):
    model.train()
    running, seen = 0.0, 0
    for images, labels in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running += loss.item() * len(labels)
        seen += len(labels)

    correct = 0
    model.eval()  # the fix
    with torch.no_grad():
        for image, label in check_loader:
            correct += (model(image).argmax(1) == label).sum().item()
    print(f"epoch {epoch + 1}: train loss {running / seen:.4f} "
          f"training-set accuracy (batch_size=1) {correct / len(check_loader.dataset):.3f}")  # fmt: skip
