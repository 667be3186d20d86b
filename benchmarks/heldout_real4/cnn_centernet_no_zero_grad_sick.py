"""CenterNet ("Objects as Points") detector, ctdet task: a small ResNet backbone (stem conv+BN+ReLU,
two BasicBlocks with stride 2) and a transposed-conv upsampler, as in ``PoseResNet``, with a ``hm``
head (sigmoid heat map per class, bias filled with -2.19) and a ``wh`` size head; the loss is
CenterNet's ``_neg_loss`` focal loss on ``_sigmoid(hm)`` plus 0.1 * L1 on the size gathered at the
object centre (``_transpose_and_gather_feat``); Adam.

Rebuilt from https://github.com/xingyizhou/CenterNet/issues/928: "Recently I'm re-organizing the
code and train the detector on my own dataset. The problem is that loss since 2nd epoch becomes
huge and unchanged". The asker found the cause himself: his re-organised loop called
``loss.backward(); optimizer.step()`` without ``optimizer.zero_grad()`` (the repository's
base_trainer.py zeroes the gradients every step), so gradients piled up; adding
``optimizer.zero_grad()`` after ``optimizer.step()`` fixed it.

Departures: synthetic 24x24 images with one coloured rectangle on noise (the class is the colour
channel), ground-truth Gaussian heat maps at stride 2 (12x12) drawn as in CenterNet but with a
fixed sigma rule, one object per image, no offset head; a 2-block ResNet instead of ResNet-18/DLA;
960 training images, 5 epochs, lr 1.25e-3 (CenterNet's 1.25e-4 is for batch 32 and 140 epochs);
the evaluation is a simple "top peak has the right class and lies within 1 cell of the centre".
Measured: sick: mean epoch loss 2.03, 1.95, 1.70, 1.86, 1.70 (hm_loss jumping 0.9-2.1), test hit
rate 0.85, 0.98, then falling to 0.34, 0.33, 0.32; fixed: loss 0.79, 0.24, 0.18, 0.12, 0.099 and hit
rate 1.00 from the first epoch.
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, OUT, CLASSES, EPOCHS, BATCH = 24, 12, 3, 5, 16


def gaussian_radius_draw(hm, cx, cy, sigma):
    ys, xs = np.ogrid[:OUT, :OUT]
    g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma * sigma))
    np.maximum(hm, g, out=hm)


def make_split(n):
    images = 0.1 * rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    hm = np.zeros((n, CLASSES, OUT, OUT), dtype=np.float32)
    ind = np.zeros((n, 1), dtype=np.int64)
    wh = np.zeros((n, 1, 2), dtype=np.float32)
    for i in range(n):
        c = rng.integers(CLASSES)
        w, h = rng.integers(4, 11, size=2)
        x0, y0 = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
        images[i, c, y0 : y0 + h, x0 : x0 + w] += 1.0  # the class is the colour channel
        cx, cy = (x0 + w / 2) / 2, (y0 + h / 2) / 2
        ix, iy = int(cx), int(cy)
        gaussian_radius_draw(hm[i, c], ix, iy, sigma=max(w, h) / 10)
        ind[i, 0] = iy * OUT + ix
        wh[i, 0] = (w, h)
    return [torch.as_tensor(a) for a in (images, hm, ind, wh)]


train = make_split(960)
test = make_split(300)


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


class PoseResNet(nn.Module):
    def __init__(self, heads, head_conv=32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = BasicBlock(16, 32, stride=2)
        self.layer2 = BasicBlock(32, 64, stride=2)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
        )
        self.heads = heads
        for head, classes in heads.items():
            fc = nn.Sequential(
                nn.Conv2d(32, head_conv, 3, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(head_conv, classes, 1, bias=True),
            )
            if "hm" in head:
                fc[-1].bias.data.fill_(-2.19)
            self.__setattr__(head, fc)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.deconv(self.layer2(self.layer1(x)))
        return [{head: self.__getattr__(head)(x) for head in self.heads}]


def _sigmoid(x):
    return torch.clamp(x.sigmoid_(), min=1e-4, max=1 - 1e-4)


def _neg_loss(pred, gt):
    pos_inds = gt.eq(1).float()
    neg_inds = gt.lt(1).float()
    neg_weights = torch.pow(1 - gt, 4)
    loss = 0
    pos_loss = torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds
    neg_loss = torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds
    num_pos = pos_inds.float().sum()
    pos_loss = pos_loss.sum()
    neg_loss = neg_loss.sum()
    if num_pos == 0:
        loss = loss - neg_loss
    else:
        loss = loss - (pos_loss + neg_loss) / num_pos
    return loss


def _transpose_and_gather_feat(feat, ind):
    feat = feat.permute(0, 2, 3, 1).contiguous().view(feat.size(0), -1, feat.size(1))
    ind = ind.unsqueeze(2).expand(ind.size(0), ind.size(1), feat.size(2))
    return feat.gather(1, ind)


class CtdetLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.wh_weight = 0.1

    def forward(self, outputs, batch):
        output = outputs[0]
        output["hm"] = _sigmoid(output["hm"])
        hm_loss = _neg_loss(output["hm"], batch["hm"])
        pred = _transpose_and_gather_feat(output["wh"], batch["ind"])
        wh_loss = nn.functional.l1_loss(pred, batch["wh"], reduction="mean")
        loss = hm_loss + self.wh_weight * wh_loss
        return loss, {"loss": loss, "hm_loss": hm_loss, "wh_loss": wh_loss}


model = PoseResNet({"hm": CLASSES, "wh": 2})
loss_fn = CtdetLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1.25e-3)


def evaluate():
    model.eval()
    with torch.no_grad():
        out = model(test[0])[0]
        hm = out["hm"].sigmoid()
        peak = hm.flatten(1).argmax(1)
        cls, pos = peak // (OUT * OUT), peak % (OUT * OUT)
        true_cls = test[1].flatten(2).amax(2).argmax(1)
        hit = (
            (cls == true_cls)
            & ((pos // OUT - test[2][:, 0] // OUT).abs() <= 1)
            & ((pos % OUT - test[2][:, 0] % OUT).abs() <= 1)
        )
    model.train()
    return hit.float().mean().item()


for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train[0]))
    total = 0.0
    for iter_id in range(len(perm) // BATCH):
        idx = perm[iter_id * BATCH : (iter_id + 1) * BATCH]
        batch = {
            "input": train[0][idx],
            "hm": train[1][idx],
            "ind": train[2][idx],
            "wh": train[3][idx],
        }
        outputs = model(batch["input"])
        loss, loss_stats = loss_fn(outputs, batch)
        loss = loss.mean()
        loss.backward()
        optimizer.step()
        total += loss.item()
    print(
        f"epoch {epoch}: loss {total / (len(perm) // BATCH):.4f} hm_loss {loss_stats['hm_loss'].item():.4f} "
        f"wh_loss {loss_stats['wh_loss'].item():.3f} test detection hit rate {evaluate():.3f}"
    )
