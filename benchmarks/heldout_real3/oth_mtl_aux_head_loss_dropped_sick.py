"""Two-head action recogniser in the manner of mmaction2's TPN models: a ``Recognizer2D`` runs a 2D
CNN backbone over every frame of a clip, a ``TPN``-like neck takes the backbone's middle and top
feature maps and returns the fused features *and* the loss of its ``AuxHead`` (a conv + pooling +
Linear classifier on the middle feature map, cross-entropy weighted 0.5), and a ``TSNHead``-like
``cls_head`` averages the frames and classifies. ``forward_train`` returns a dict of losses that
the runner sums (every key containing "loss"), and one SGD optimizer steps the whole model.

Rebuilt from https://github.com/open-mmlab/mmaction2/issues/682: "in tpn_tsm_r50.py or
tpn_slowonly_r50.py neck parameter aux_head_cfg is not None which indicated when need to optimize
this loss, but in recognizer2d.py line 23 ``x, _ = self.neck(x, labels.squeeze())``, the aux head
loss does not seem to be used." A maintainer confirmed ("It seems the codes have been mistakenly
changed") and the fix (pull/683) keeps the neck's loss: ``x, loss_aux = self.neck(...)`` and
``losses.update(loss_aux)``. Dropped, the auxiliary head's parameters never receive a gradient, so
that head stays at chance and the backbone loses the deep supervision.

Departures: synthetic clips (4 frames of 1x12x12, 6 classes, each a fixed random pattern that
drifts by one pixel a frame, with noise) instead of Something-Something; a 3-stage toy backbone
and a neck that only average-pools instead of ResNet-50 + the temporal pyramid; 6 epochs of 40
batches of 32.
Measured: sick: only loss_cls in the dict; cls_head validation accuracy 0.38 -> 0.97 but aux_head
accuracy 0.177 after every epoch (chance 0.167, its weights never change); fixed: loss_aux 0.69 ->
0.32, aux_head accuracy 0.26 -> 0.83 (epoch 2) -> 0.91, cls_head 0.37 -> 0.97.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, SEGS, CLASSES, BATCH, EPOCHS, STEPS = 12, 4, 6, 32, 6, 40
PATTERNS = rng.standard_normal((CLASSES, SIZE, SIZE)).astype(np.float32)


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = rng.integers(CLASSES, size=n)
    clips = np.empty((n, SEGS, 1, SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-1, 2, size=2)
        for t in range(SEGS):
            clips[i, t, 0] = np.roll(PATTERNS[c], (dy * t, dx * t), axis=(0, 1))
    clips += 1.5 * rng.standard_normal(clips.shape).astype(np.float32)
    return torch.as_tensor(clips), torch.as_tensor(labels)


train_x, train_y = make_split(BATCH * STEPS)
val_x, val_y = make_split(600)


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.layer2 = nn.Sequential(
            nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.BatchNorm2d(32), nn.ReLU()
        )
        self.layer3 = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.BatchNorm2d(64), nn.ReLU()
        )

    def forward(self, x):
        x = self.layer1(x)
        mid = self.layer2(x)
        top = self.layer3(mid)
        return mid, top


class AuxHead(nn.Module):
    def __init__(self, in_channels, out_channels, loss_weight=0.5):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, in_channels * 2, 3, padding=1, stride=2),
                                  nn.BatchNorm2d(in_channels * 2), nn.ReLU())  # fmt: skip
        self.fc = nn.Linear(in_channels * 2, out_channels)
        self.loss_weight = loss_weight

    def forward(self, x, target=None):
        x = self.conv(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        x = self.fc(x)
        losses = dict()
        if target is None:
            return losses, x
        losses["loss_aux"] = self.loss_weight * F.cross_entropy(x, target)
        return losses, x


class TPN(nn.Module):
    def __init__(self, num_segments, num_classes):
        super().__init__()
        self.num_segments = num_segments
        self.aux_head = AuxHead(32, num_classes)

    def forward(self, x, target=None):
        mid, top = x
        loss_aux = dict()
        if target is not None:
            # every frame of a clip carries the clip's label
            loss_aux, _ = self.aux_head(mid, target.repeat_interleave(self.num_segments))
        out = F.adaptive_avg_pool2d(top, 1).flatten(1)
        return out, loss_aux


class TSNHead(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def forward(self, x, num_segs):
        x = x.view(-1, num_segs, x.size(1)).mean(1)
        return self.fc_cls(x)

    def loss(self, cls_score, labels):
        return {"loss_cls": F.cross_entropy(cls_score, labels)}


class Recognizer2D(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.neck = TPN(SEGS, CLASSES)
        self.cls_head = TSNHead(CLASSES, 64)

    def extract_feat(self, imgs):
        return self.backbone(imgs)

    def forward_train(self, imgs, labels):
        batches = imgs.shape[0]
        imgs = imgs.reshape((-1,) + imgs.shape[2:])
        num_segs = imgs.shape[0] // batches
        losses = dict()
        x = self.extract_feat(imgs)
        x, _ = self.neck(x, labels.squeeze())
        cls_score = self.cls_head(x, num_segs)
        loss_cls = self.cls_head.loss(cls_score, labels.squeeze())
        losses.update(loss_cls)
        return losses

    def forward_test(self, imgs):
        batches = imgs.shape[0]
        imgs = imgs.reshape((-1,) + imgs.shape[2:])
        x = self.extract_feat(imgs)
        _, aux_score = self.neck.aux_head(x[0])
        aux_score = aux_score.view(batches, -1, aux_score.size(1)).mean(1)
        x, _ = self.neck(x)
        return self.cls_head(x, imgs.shape[0] // batches), aux_score


def parse_losses(losses):
    return sum(value for key, value in losses.items() if "loss" in key)


model = Recognizer2D()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train_x))
    for step in range(STEPS):
        idx = perm[step * BATCH : (step + 1) * BATCH]
        losses = model.forward_train(train_x[idx], train_y[idx])
        loss = parse_losses(losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        cls_score, aux_score = model.forward_test(val_x)
    acc = (cls_score.argmax(1) == val_y).float().mean().item()
    aux_acc = (aux_score.argmax(1) == val_y).float().mean().item()
    print(f"epoch {epoch}: " + " ".join(f"{k} {v.item():.4f}" for k, v in losses.items())
          + f" val accuracy: cls_head {acc:.3f} aux_head {aux_acc:.3f}")  # fmt: skip
