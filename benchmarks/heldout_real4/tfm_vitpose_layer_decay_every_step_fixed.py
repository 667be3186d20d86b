"""ViTPose-style top-down keypoint model: a small ViT backbone (patch embedding, learned position
embedding, pre-norm blocks with hand-written multi-head attention) and a deconvolution heatmap
head, trained with ``JointsMSELoss`` (per-joint MSE on Gaussian heatmaps), AdamW wrapped in the
repository's ``LayerDecayOptimizer``, gradient clipping (max_norm 1), a linear warm-up
``LambdaLR`` stepped per iteration during warm-up and a ``MultiStepLR`` stepped per epoch.

Rebuilt from https://github.com/jaehyunnn/ViTPose_pytorch/issues/20: "The learning rate warms up
to the preset value during training and quickly becomes 0, but the training is still ongoing".
The maintainer found the cause (commit 0a2848e, "Fixes #20"): ``LayerDecayOptimizer.step``
multiplied every group's lr by the layer-decay rate (0.75) on EVERY step instead of once at
initialisation, "causing LR to exponentially decay to zero". Once the warm-up scheduler stops
overwriting the lr, nothing undoes the decay and the network stops learning. The fix moves the
multiplication into ``__init__``.

Departures: synthetic 16x16 images with 2 "joints" (a faint 3x3 blob in channel 0 and one in
channel 1 at random places, in noise of std 0.3) and 8x8 Gaussian target heatmaps instead of
COCO 256x192 with 17 joints; ViT of depth 2, width 48, patch 4 instead of ViT-B; 500 warm-up
iterations -> 8 (of 320), milestones [170, 200] of 210 epochs -> [8, 9] of 10 epochs, lr 5e-4
-> 1e-3; no AMP, no DataParallel, target weights all 1. Only one param group (as in the
repository, which passes ``model.parameters()``), so only ``lr_mult[0]`` is used.
Measured: sick: lr 1.0e-06 after epoch 0, 1e-10 after epoch 1, 1e-44 at the end; train loss
0.0559, then 0.0374 for epochs 1-9 (predicting all zeros gives ~0.049), keypoint accuracy
(argmax within one heatmap cell) flat at 0.36-0.37; fixed: lr 7.5e-4, train loss 0.0542 ->
0.0270 -> 0.0049, keypoint accuracy 0.70 -> 0.99. About 7 CPU seconds each.
"""

import numpy as np
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR, MultiStepLR

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, HM, JOINTS, EPOCHS, BATCH = 16, 8, 2, 10, 32


def make_split(n: int):
    images = 0.3 * rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    heatmaps = np.zeros((n, JOINTS, HM, HM), dtype=np.float32)
    joints = rng.integers(1, SIZE - 1, size=(n, JOINTS, 2))
    yy, xx = np.mgrid[0:HM, 0:HM]
    for i in range(n):
        for j in range(JOINTS):
            y, x = joints[i, j]
            images[i, j, y - 1 : y + 2, x - 1 : x + 2] += 0.6
            cy, cx = y / 2.0, x / 2.0
            heatmaps[i, j] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.0**2))
    return torch.as_tensor(images), torch.as_tensor(heatmaps)


train_x, train_y = make_split(1024)
valid_x, valid_y = make_split(256)


class Attention(nn.Module):
    def __init__(self, dim, num_heads=4):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = (
            self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class ViTPose(nn.Module):
    def __init__(self, dim=48, depth=2, patch=4):
        super().__init__()
        self.grid = SIZE // patch
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList([Block(dim) for _ in range(depth)])
        self.last_norm = nn.LayerNorm(dim)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(dim, 64, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        )
        self.final_layer = nn.Conv2d(64, JOINTS, kernel_size=1)

    def forward(self, x):
        B = x.shape[0]
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.last_norm(x)
        x = x.permute(0, 2, 1).reshape(B, -1, self.grid, self.grid)
        return self.final_layer(self.deconv(x))


class JointsMSELoss(nn.Module):
    def __init__(self, use_target_weight=False):
        super().__init__()
        self.criterion = nn.MSELoss()
        self.use_target_weight = use_target_weight

    def forward(self, output, target, target_weight):
        batch_size, num_joints = output.size(0), output.size(1)
        heatmaps_pred = output.reshape((batch_size, num_joints, -1)).split(1, 1)
        heatmaps_gt = target.reshape((batch_size, num_joints, -1)).split(1, 1)
        loss = 0.0
        for idx in range(num_joints):
            heatmap_pred = heatmaps_pred[idx].squeeze(1)
            heatmap_gt = heatmaps_gt[idx].squeeze(1)
            if self.use_target_weight:
                loss += self.criterion(
                    heatmap_pred * target_weight[:, idx], heatmap_gt * target_weight[:, idx]
                )
            else:
                loss += self.criterion(heatmap_pred, heatmap_gt)
        return loss / num_joints


class LayerDecayOptimizer:
    def __init__(self, optimizer, layerwise_decay_rate):
        self.optimizer = optimizer
        self.layerwise_decay_rate = layerwise_decay_rate
        self.param_groups = optimizer.param_groups
        for i, group in enumerate(self.optimizer.param_groups):  # the fix
            group["lr"] *= layerwise_decay_rate[i]  # the fix

    def step(self, *args, **kwargs):
        self.optimizer.step(*args, **kwargs)

    def zero_grad(self, *args, **kwargs):
        self.optimizer.zero_grad(*args, **kwargs)


def keypoint_accuracy(output, target):
    pred = output.flatten(2).argmax(-1)
    true = target.flatten(2).argmax(-1)
    dy = (pred // HM - true // HM).abs()
    dx = (pred % HM - true % HM).abs()
    return ((dy <= 1) & (dx <= 1)).float().mean().item()


model = ViTPose()
criterion = JointsMSELoss(use_target_weight=False)
optimizer = AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1)
lr_mult = [0.75] * 2  # layer_decay_rate x num_layers
layerwise_optimizer = LayerDecayOptimizer(optimizer, lr_mult)
scheduler = MultiStepLR(optimizer, [8, 9], 0.1)
num_warmup_steps, warmup_factor = 8, 0.001
warmup_scheduler = LambdaLR(
    optimizer,
    lr_lambda=lambda step: warmup_factor + (1.0 - warmup_factor) * step / num_warmup_steps,
)
target_weights = torch.ones(BATCH, JOINTS, 1)

global_step = 0
for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train_x))
    total_loss = 0.0
    for batch_idx in range(len(train_x) // BATCH):
        idx = perm[batch_idx * BATCH : (batch_idx + 1) * BATCH]
        images, targets = train_x[idx], train_y[idx]
        layerwise_optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, targets, target_weights)
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=1.0, norm_type=2)
        layerwise_optimizer.step()
        if global_step < num_warmup_steps:
            warmup_scheduler.step()
        global_step += 1
        total_loss += loss.item()
    scheduler.step()
    model.eval()
    with torch.no_grad():
        acc = keypoint_accuracy(model(valid_x), valid_y)
    print(f"epoch {epoch}: train loss {total_loss / (len(train_x) // BATCH):.4f} "
          f"lr {optimizer.param_groups[0]['lr']:.2e} keypoint accuracy {acc:.3f}")  # fmt: skip
