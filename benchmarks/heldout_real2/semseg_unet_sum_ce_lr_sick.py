"""U-Net from meetps/pytorch-semseg (ptsemseg/models/unet.py, feature_scale 4): encoder blocks
unetConv2 = 2 x (3x3 conv + BatchNorm + ReLU) with max-pooling, decoder blocks unetUp =
ConvTranspose2d(2, stride 2) + concat + 2 x (3x3 conv + ReLU) without BatchNorm, 1x1 final
conv. 5-class semantic segmentation trained with the repository's cross_entropy2d under
configs/fcn8s_pascal.yml: batch_size 1, SGD momentum 0.99, weight_decay 5e-4, loss
cross_entropy with size_average: False (summed over all pixels, ignore_index 250).

Rebuilt from https://github.com/meetps/pytorch-semseg/issues/159: the asker trained the U-Net
on Pascal VOC with learning rate 0.001 and the loss was "particularly large" and jumping
around (1e5 .. 1e8 per iteration); the answer: the learning rate is too large, try a small one.
(The shipped config pairs the summed, not averaged, cross entropy with lr 1e-10, so 1e-3 is
about 1e4 x the step the summed loss tolerates; cf. #212, same symptom, answered by
size_average: True.)

Departures: synthetic 32x32 RGB images with four kinds of coloured shapes (5 classes) instead
of VOC (21 classes, ~500x500); 3x3 convs padded (the repository pads the skip instead);
three levels instead of five; 4 epochs of 96 images; the fix uses lr 1e-6 (1e-3 divided by the
1024 summed pixels, i.e. a usual step for a mean loss).

Measured (OMP_NUM_THREADS=1): sick: summed loss 750 -> 1600 -> 1230 (never below the start),
every pixel predicted one class (background, later another class), overall accuracy 0.769
then 0.065, mean IoU 0.154 then 0.013; fixed: loss 550 -> 225..290, overall accuracy 0.966,
mean IoU 0.83 after 4 epochs. ~6 s CPU each.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, N, N_CLASSES = 32, 96, 5
LR = 1.0e-3


def make_scene() -> tuple[np.ndarray, np.ndarray]:
    """Normalised RGB image (3, H, W) and class-index label map (H, W)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    image = rng.normal(90, 25, size=(SIZE, SIZE, 3))
    label = np.zeros((SIZE, SIZE), dtype=np.int64)
    colours = {1: (220, 60, 60), 2: (60, 200, 60), 3: (70, 70, 230), 4: (230, 220, 60)}
    for cls in rng.permutation([1, 2, 3, 4])[: rng.integers(2, 5)]:
        r, c = rng.uniform(6, SIZE - 6, size=2)
        size = rng.uniform(3.5, 6.5)
        if cls in (1, 3):  # discs
            region = (yy - r) ** 2 + (xx - c) ** 2 <= size**2
        else:  # squares
            region = (np.abs(yy - r) <= size) & (np.abs(xx - c) <= size)
        label[region] = cls
        image[region] = np.array(colours[cls]) + rng.normal(0, 25, size=(region.sum(), 3))
    image = (np.clip(image, 0, 255) - 120.0) / 60.0
    return image.transpose(2, 0, 1).astype(np.float32), label


scenes = [make_scene() for _ in range(N)]
X = torch.as_tensor(np.stack([s[0] for s in scenes]))
Y = torch.as_tensor(np.stack([s[1] for s in scenes]))


class unetConv2(nn.Module):
    def __init__(self, in_size: int, out_size: int, is_batchnorm: bool) -> None:
        super().__init__()
        if is_batchnorm:
            bn1, bn2 = nn.BatchNorm2d(out_size), nn.BatchNorm2d(out_size)
            self.conv1 = nn.Sequential(nn.Conv2d(in_size, out_size, 3, 1, 1), bn1, nn.ReLU())
            self.conv2 = nn.Sequential(nn.Conv2d(out_size, out_size, 3, 1, 1), bn2, nn.ReLU())
        else:
            self.conv1 = nn.Sequential(nn.Conv2d(in_size, out_size, 3, 1, 1), nn.ReLU())
            self.conv2 = nn.Sequential(nn.Conv2d(out_size, out_size, 3, 1, 1), nn.ReLU())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(inputs))


class unetUp(nn.Module):
    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        self.conv = unetConv2(in_size, out_size, False)
        self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2)

    def forward(self, inputs1: torch.Tensor, inputs2: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([inputs1, self.up(inputs2)], 1))


class unet(nn.Module):
    def __init__(self, feature_scale: int = 4, n_classes: int = 21, in_channels: int = 3) -> None:
        super().__init__()
        filters = [int(x / feature_scale) for x in [64, 128, 256]]
        self.conv1 = unetConv2(in_channels, filters[0], True)
        self.conv2 = unetConv2(filters[0], filters[1], True)
        self.center = unetConv2(filters[1], filters[2], True)
        self.maxpool = nn.MaxPool2d(kernel_size=2)
        self.up_concat2 = unetUp(filters[2], filters[1])
        self.up_concat1 = unetUp(filters[1], filters[0])
        self.final = nn.Conv2d(filters[0], n_classes, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        conv1 = self.conv1(inputs)
        conv2 = self.conv2(self.maxpool(conv1))
        center = self.center(self.maxpool(conv2))
        up2 = self.up_concat2(conv2, center)
        up1 = self.up_concat1(conv1, up2)
        return self.final(up1)


def cross_entropy2d(input, target, weight=None, size_average=True):
    c = input.size(1)
    input = input.transpose(1, 2).transpose(2, 3).contiguous().view(-1, c)
    target = target.view(-1)
    return F.cross_entropy(
        input, target, weight=weight, reduction="mean" if size_average else "sum", ignore_index=250
    )


model = unet(feature_scale=4, n_classes=N_CLASSES, in_channels=3)
optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.99, weight_decay=0.0005)


def loss_fn(input, target):  # cfg training.loss: {name: cross_entropy, size_average: False}
    return cross_entropy2d(input, target, size_average=False)


batch_size = 1
i = 0
for epoch in range(4):
    perm = torch.randperm(N)
    for start in range(0, N, batch_size):
        i += 1
        model.train()
        images, labels = X[perm[start : start + batch_size]], Y[perm[start : start + batch_size]]
        optimizer.zero_grad()
        outputs = model(images)
        loss = loss_fn(input=outputs, target=labels)
        loss.backward()
        optimizer.step()
        if i % 48 == 0:
            print(f"Iter [{i}/{4 * N}]  Loss: {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        pred = model(X).argmax(1)
    acc = (pred == Y).float().mean().item()
    ious = []
    for k in range(N_CLASSES):
        hit, true = pred == k, Y == k  # noqa: SIM300
        ious.append((hit & true).sum().item() / max((hit | true).sum().item(), 1))
    print(f"epoch {epoch}: Overall Acc {acc:.3f}  Mean IoU {np.mean(ious):.3f}")
