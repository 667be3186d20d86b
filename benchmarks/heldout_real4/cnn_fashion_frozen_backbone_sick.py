"""deep-fashion-retrieval's ``f_model``: a ResNet backbone with its classifier removed
(``nn.Sequential(*list(resnet.children())[:-2])``), ``AvgPool2d``, ``fc`` (features to
``INTER_DIM``) and ``fc2`` (to ``CATEGORIES``), trained with ``nn.CrossEntropyLoss`` and
``optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), ...)``; with
``FREEZE_PARAM = True`` every backbone parameter gets ``requires_grad = False``.

Rebuilt from https://github.com/ihciah/deep-fashion-retrieval/issues/1: "It looks like you
freeze all the conv layer parameters?" and then "After changing the freezing flag to true [sic:
the flag that un-freezes], the accuracy improves quickly." The maintainer agreed ("Yes, you are
right ... I first tried to train FC layer first, and set FREEZE to False and fine-tune it again");
config.py had ``FREEZE_PARAM = True`` (commit 4fd86ef), later ``FREEZE_PARAM = False``.

Departures: no pretrained weights can be loaded here, so the frozen backbone is a randomly
initialised small ResNet (stem + two BasicBlocks) instead of an ImageNet ResNet-50, which makes the
frozen run fail much harder than the reported "improves slowly"; synthetic 24x24 images (4 classes:
two identical 3x3 blobs side by side, one above the other, or on either diagonal, at random places
on noise); no triplet loss branch and no DeepFashion loaders; 1200 training images, 7 epochs,
lr 0.05 and momentum 0.9 instead of 0.001 and 0.5 so that the fixed run learns within seconds.
Measured: sick: classification loss 1.413, 1.381, 1.376, 1.380, 1.371, 1.376, 1.388 (ln 4 =
1.386), test accuracy 0.23-0.29 (chance 0.25); fixed: loss 1.27, 0.098, 0.0029, then below 0.001,
test accuracy 0.858, 0.960, then 1.000.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CATEGORIES, INTER_DIM, EPOCH, TRAIN_BATCH_SIZE = 24, 4, 64, 7, 32
LR, MOMENTUM = 0.05, 0.9
FREEZE_PARAM = True
OFFSETS = [(0, 4), (4, 0), (4, 4), (4, -4)]  # where the second blob sits


def make_split(n):
    labels = rng.integers(CATEGORIES, size=n)
    images = 0.3 * rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    for i, c in enumerate(labels):
        dy, dx = OFFSETS[c]
        y = rng.integers(2, SIZE - 5 - max(dy, 0))
        x = rng.integers(2 + max(-dx, 0), SIZE - 5 - max(dx, 0))
        col = rng.uniform(0.5, 1.5, size=(3, 1, 1))
        images[i, :, y : y + 3, x : x + 3] += col
        images[i, :, y + dy : y + dy + 3, x + dx : x + dx + 3] += col
    return torch.as_tensor(images), torch.as_tensor(labels)


train_x, train_y = make_split(1200)
test_x, test_y = make_split(400)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class f_model(nn.Module):
    def __init__(self, freeze_param=False, inter_dim=INTER_DIM, num_classes=CATEGORIES):
        super().__init__()
        self.backbone = nn.Sequential(  # a small ResNet, classifier removed
            nn.Conv2d(3, 16, 3, 1, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            BasicBlock(16, 32, 2),
            BasicBlock(32, 64, 2),
        )
        num_features = 64
        if freeze_param:
            for param in self.backbone.parameters():
                param.requires_grad = False
        self.avg_pooling = nn.AvgPool2d(6, stride=1)
        self.fc = nn.Linear(num_features, inter_dim)
        self.fc2 = nn.Linear(inter_dim, num_classes)

    def forward(self, x):
        x = self.backbone(x)
        pooled = self.avg_pooling(x)
        inter_out = self.fc(pooled.view(pooled.size(0), -1))
        out = self.fc2(inter_out)
        return out, inter_out, x


model = f_model(freeze_param=FREEZE_PARAM)
optimizer = torch.optim.SGD(
    filter(lambda p: p.requires_grad, model.parameters()), lr=LR, momentum=MOMENTUM
)


def test():
    model.eval()
    with torch.no_grad():
        pred = model(test_x)[0].argmax(1)
    model.train()
    return (pred == test_y).float().mean().item()


for epoch in range(EPOCH):
    model.train()
    criterion_c = nn.CrossEntropyLoss()
    perm = torch.randperm(len(train_x))
    total = 0.0
    for batch_idx in range(len(perm) // TRAIN_BATCH_SIZE):
        idx = perm[batch_idx * TRAIN_BATCH_SIZE : (batch_idx + 1) * TRAIN_BATCH_SIZE]
        data, target = train_x[idx], train_y[idx]
        optimizer.zero_grad()
        outputs = model(data)[0]
        classification_loss = criterion_c(outputs, target)
        loss = classification_loss
        loss.backward()
        optimizer.step()
        total += loss.item()
    print(
        f"epoch {epoch}: classification loss {total / (len(perm) // TRAIN_BATCH_SIZE):.4f} "
        f"test accuracy {test():.3f}"
    )
