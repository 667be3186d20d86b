"""Small pycls-style ResNet (BatchNorm) CIFAR classifier, SGD with momentum, fed by a map-style
Dataset whose ``__getitem__`` normalises and augments (flip, pad-and-crop) each image, read with
a DataLoader whose ``num_workers`` is 0.

Rebuilt from https://github.com/facebookresearch/pycls/pull/21: the CIFAR-10 dataset class
performed its data augmentation in place: ``__getitem__`` took a view of the stored array and
``color_norm`` subtracted the mean and divided by the SD into it, so every read normalised the
stored image once more. With worker processes each epoch got a fresh copy and the bug went
unnoticed; with ``DATA_LOADER.NUM_WORKERS=0`` "the model fails to train after ~3 epochs".
The fix copies the selected image (``self._inputs[index, ...].copy()``) before preparing it.

Departures: synthetic 16x16 images (6 classes: horizontal / vertical stripes or checks x
dominant colour, pixel values in 0..255 like the CIFAR batches), a two-block ResNet instead of
ResNet-56, 6 epochs; the test split goes through the same Dataset class, as in pycls.
The collapse comes one epoch earlier here than in the report: the second pass has already
divided the stored pixels by the SD twice, leaving them within ~0.02 of a constant.
Measured: sick: test accuracy 1.00 after the first epoch, then 0.15-0.18 (chance 0.17) and
train accuracy 0.16-0.20 for the five epochs after; fixed: test accuracy 1.00 after every
epoch.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

IM_SIZE, CLASSES = 16, 6
_MEAN = [125.3, 123.0, 113.9]  # per-channel mean and SD of the raw 0..255 pixels, as in pycls
_SD = [63.0, 62.1, 66.7]


def make_split(n: int) -> tuple[np.ndarray, list[int]]:
    yy, xx = np.mgrid[0:IM_SIZE, 0:IM_SIZE]
    images, labels = [], []
    for _ in range(n):
        c = int(rng.integers(CLASSES))
        phase = rng.uniform(0, 2 * np.pi, size=2)
        if c % 3 == 0:  # horizontal stripes
            wave = np.sin(0.9 * yy + phase[0])
        elif c % 3 == 1:  # vertical stripes
            wave = np.sin(0.9 * xx + phase[0])
        else:  # checks
            wave = 1.4 * np.sin(0.9 * xx + phase[0]) * np.sin(0.9 * yy + phase[1])
        tint = np.array([1.0, 0.35, 0.35]) if c < 3 else np.array([0.35, 0.35, 1.0])
        im = 120.0 + 70.0 * tint[:, None, None] * wave + 25.0 * rng.standard_normal((3, 16, 16))
        images.append(np.clip(im, 0, 255))
        labels.append(c)
    return np.array(images, dtype=np.float32), labels


def color_norm(im, mean, std):
    """Performs per-channel normalization (CHW format)."""
    for i in range(im.shape[0]):
        im[i] = im[i] - mean[i]
        im[i] = im[i] / std[i]
    return im


def horizontal_flip(im, p):
    if rng.uniform() < p:
        im = im[:, :, ::-1]
    return im


def random_crop(im, size, pad_size=0):
    if pad_size > 0:
        im = np.pad(im, ((0, 0), (pad_size, pad_size), (pad_size, pad_size)), mode="constant")
    h, w = im.shape[1:]
    y = rng.integers(0, h - size)
    x = rng.integers(0, w - size)
    return im[:, y : (y + size), x : (x + size)]


class Cifar(Dataset):
    def __init__(self, inputs: np.ndarray, labels: list[int], split: str) -> None:
        self._inputs, self._labels, self._split = inputs, labels, split

    def _prepare_im(self, im):
        im = color_norm(im, _MEAN, _SD)
        if self._split == "train":
            im = horizontal_flip(im=im, p=0.5)
            im = random_crop(im=im, size=IM_SIZE, pad_size=2)
        return np.ascontiguousarray(im)

    def __getitem__(self, index):
        im, label = self._inputs[index, ...].copy(), self._labels[index]  # the fix
        im = self._prepare_im(im)
        return im, label

    def __len__(self):
        return self._inputs.shape[0]


train_set = Cifar(*make_split(1200), "train")
test_set = Cifar(*make_split(400), "test")
train_loader = DataLoader(train_set, batch_size=50, shuffle=True, num_workers=0)
test_loader = DataLoader(test_set, batch_size=200, shuffle=False, num_workers=0)


class ResBlock(nn.Module):
    def __init__(self, w_in: int, w_out: int, stride: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(w_in, w_out, 3, stride=stride, padding=1, bias=False)
        self.a_bn = nn.BatchNorm2d(w_out)
        self.b = nn.Conv2d(w_out, w_out, 3, padding=1, bias=False)
        self.b_bn = nn.BatchNorm2d(w_out)
        self.proj = None
        if stride != 1 or w_in != w_out:
            self.proj = nn.Sequential(nn.Conv2d(w_in, w_out, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(w_out))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.proj is None else self.proj(x)
        return F.relu(skip + self.b_bn(self.b(F.relu(self.a_bn(self.a(x))))))


model = nn.Sequential(
    nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
    ResBlock(16, 16, 1), ResBlock(16, 32, 2),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, CLASSES),
)  # fmt: skip
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
criterion = nn.CrossEntropyLoss()

for epoch in range(6):
    model.train()
    correct = seen = 0
    for images, labels in train_loader:
        optimizer.zero_grad()
        logits = model(images)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    model.eval()
    test_correct = 0
    with torch.no_grad():
        for images, labels in test_loader:
            test_correct += (model(images).argmax(1) == labels).sum().item()
    print(f"epoch {epoch}: loss {loss.item():.4f} train acc {correct / seen:.3f} "
          f"test acc {test_correct / len(test_set):.3f}")  # fmt: skip
