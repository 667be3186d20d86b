"""Small ResNet-style CNN (BatchNorm) image classifier, SGD with Nesterov momentum, trained from a
DataLoader over a data set stored class by class.

Rebuilt from https://github.com/Deci-AI/super-gradients/issues/416: the default dataloader
parameters did not pass shuffle=True, so a SequentialSampler fed the ImageNet training set in
its stored order and the network saw one class at a time, which "quickly throws it out of the
minima"; passing shuffle=True solves it.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

CLASSES, PER_CLASS = 6, 300
yy, xx = np.mgrid[0:16, 0:16]
images, labels = [], []
for c in range(CLASSES):  # stored class by class, as on disk
    for _ in range(PER_CLASS):
        angle = (c % 3) * np.pi / 3
        wave = np.sin(0.9 * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 2 * np.pi))
        color = np.array([1.0, 0.3, 0.3]) if c < 3 else np.array([0.3, 0.3, 1.0])
        images.append(color[:, None, None] * wave + 0.5 * rng.standard_normal((3, 16, 16)))
        labels.append(c)
dataset = TensorDataset(
    torch.as_tensor(np.array(images), dtype=torch.float32), torch.as_tensor(labels)
)


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


model = nn.Sequential(
    nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
    Block(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, CLASSES),
)  # fmt: skip
loader = DataLoader(dataset, batch_size=60, shuffle=True)  # the fix
optimizer = torch.optim.SGD(
    model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4
)
criterion = nn.CrossEntropyLoss()
X, y = dataset.tensors
for epoch in range(6):
    model.train()
    for images_batch, labels_batch in loader:
        optimizer.zero_grad()
        loss = criterion(model(images_batch), labels_batch)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(X).argmax(1)
    acc = (pred == y).float().mean().item()
    classes = pred.unique().tolist()
    print(f"epoch {epoch}: loss {loss.item():.4f} accuracy {acc:.3f} predicted classes {classes}")
