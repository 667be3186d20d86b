"""Small U-Net (two 3x3 conv+ReLU stages, max-pool, ConvTranspose2d up-sampling with a skip
concatenation, 1x1 conv to one logit channel) for binary segmentation of tiny objects, trained
with ``nn.BCEWithLogitsLoss`` on (N, 1, H, W) masks of 0/1 and Adam.

Rebuilt from https://discuss.pytorch.org/t/bcewithlogitsloss-weight/174762: a binary
segmentation whose ground-truth images are almost all 0 ("the ratio of pixel value of 1 to pixel
value of 0 is 0.00005"): "As expected the model is predicting a lot of pixel value of 0 while
attaining small loss value and not predicting any pixel values with value of 1." The answer:
the foreground class is swamped by the background; weight it through ``BCEWithLogitsLoss``'s
``pos_weight`` (number of negatives / number of positives, as in the documentation's example).

Departures: synthetic 32x32 noisy images with one or two faint 2x2 "lesions" each (foreground
0.6 % of the pixels rather than 0.005 %, so that a 6-epoch CPU run can show the fix working);
800 training and 200 test images; a two-level U-Net with 8/16 channels; pos_weight computed
once from the training masks as a scalar tensor.
Measured: sick: loss 0.39 -> 0.012 (below the 0.036 constant-prediction entropy), yet test
Dice 0.000, recall 0.000 and 0 foreground pixels predicted after every epoch (all background);
fixed: test recall 0.76 after the first epoch, 0.93-1.00 after the others, Dice 0.31-0.54
(epoch 5: Dice 0.376, recall 0.995, 5112 pixels predicted for 1192 true).
"""

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, EPOCHS, BATCH = 32, 6, 16


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = 0.5 * rng.standard_normal((n, 1, SIZE, SIZE)).astype(np.float32)
    masks = np.zeros((n, 1, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 3)):  # one or two 2x2 "lesions" per image
            y, x = rng.integers(2, SIZE - 3, size=2)
            masks[i, 0, y : y + 2, x : x + 2] = 1.0
            images[i, 0, y : y + 2, x : x + 2] += 1.6
    return torch.as_tensor(images), torch.as_tensor(masks)


train_x, train_y = make_split(800)
test_x, test_y = make_split(200)


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.ReLU(),
    )


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down1 = block(1, 8)
        self.down2 = block(8, 16)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = block(16, 8)
        self.out = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        x1 = self.down1(x)
        x2 = self.down2(self.pool(x1))
        x = self.dec(torch.cat([self.up(x2), x1], dim=1))
        return self.out(x)  # logits


model = UNet()
fg = train_y.mean().item()
print(f"foreground fraction {fg:.4f}")
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(EPOCHS):
    model.train()
    perm = torch.randperm(len(train_x))
    total = 0.0
    for i in range(0, len(train_x), BATCH):
        idx = perm[i : i + BATCH]
        images, masks = train_x[idx], train_y[idx]
        optimizer.zero_grad()
        logits = model(images)
        loss = criterion(logits, masks)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        pred = (torch.sigmoid(model(test_x)) > 0.5).float()
    tp = (pred * test_y).sum().item()
    dice = 2 * tp / (pred.sum().item() + test_y.sum().item())
    recall = tp / test_y.sum().item()
    print(f"epoch {epoch}: loss {total / len(train_x):.4f} test dice {dice:.3f} "
          f"recall {recall:.3f} foreground pixels predicted {int(pred.sum().item())} "
          f"(true {int(test_y.sum().item())})")  # fmt: skip
