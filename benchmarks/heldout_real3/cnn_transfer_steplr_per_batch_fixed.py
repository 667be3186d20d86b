"""ResNet fine-tuning of the PyTorch "Transfer Learning for Computer Vision" tutorial
(``beginner_source/transfer_learning_tutorial.py``, ants vs bees): a ResNet whose ``fc`` is
replaced by ``nn.Linear(num_ftrs, 2)``, ``nn.CrossEntropyLoss``, SGD(lr=0.001, momentum=0.9),
``lr_scheduler.StepLR(step_size=7, gamma=0.1)`` ("decay LR by a factor of 0.1 every 7
epochs"), and the tutorial's ``train_model`` with a train and a val phase per epoch over
DataLoaders with ``batch_size=4, shuffle=True``.

Rebuilt from https://github.com/pytorch/tutorials/pull/640 ("Update transfer_learning_tutorial.py:
scheduler.step() per epoch not per batch", merged by soumith with "thanks!"): the tutorial called
``scheduler.step()`` inside the batch loop, right after ``optimizer.step()``, so the StepLR that
should divide the learning rate by 10 every 7 epochs divided it by 10 every 7 batches; the fix
moved ``scheduler.step()`` after the batch loop of the train phase.

Departures: the PR states only the cause, not a symptom; synthetic 16x16 RGB "ants"/"bees"
images (two fixed random blocky colour templates, shifted by up to 2 pixels, with heavy noise),
300 training and 150 validation images, instead of the hymenoptera folders; a small ResNet
(one BasicBlock per stage, 16-32-64 channels) from random initialisation instead of the
ImageNet-pretrained ResNet-18 (no weights can be downloaded); 6 epochs instead of 25; no timing
or best-weights bookkeeping.
Measured: sick: the learning rate is 1e-13 after the first epoch (1e-56 after the sixth); train
loss frozen at 0.66-0.67 (ln 2 = 0.69) and val accuracy 0.63-0.66 in every epoch, the weights
no longer moving after the first ~20 batches; fixed: train loss 0.56 -> 0.13-0.18, val accuracy
0.97 after the first epoch and 0.98-0.99 after the third to sixth.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE = 16
TEMPLATES = rng.uniform(-1.0, 1.0, size=(2, 3, 4, 4)).repeat(4, axis=2).repeat(4, axis=3)


def image_folder(n: int) -> TensorDataset:
    labels = rng.integers(2, size=n)
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-2, 3, size=2)
        images[i] = np.roll(TEMPLATES[c], (dy, dx), axis=(1, 2)) + 1.5 * rng.standard_normal(
            (3, SIZE, SIZE)
        )
    return TensorDataset(torch.as_tensor(images), torch.as_tensor(labels))


image_datasets = {"train": image_folder(300), "val": image_folder(150)}
dataloaders = {
    x: DataLoader(image_datasets[x], batch_size=4, shuffle=True) for x in ["train", "val"]
}
dataset_sizes = {x: len(image_datasets[x]) for x in ["train", "val"]}


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
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2)
        self.layer3 = BasicBlock(32, 64, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def train_model(model, criterion, optimizer, scheduler, num_epochs=25):
    for epoch in range(num_epochs):
        print(f"Epoch {epoch}/{num_epochs - 1} lr {optimizer.param_groups[0]['lr']:.3g}")
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()  # Set model to training mode
            else:
                model.eval()  # Set model to evaluate mode

            running_loss = 0.0
            running_corrects = 0
            for inputs, labels in dataloaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == "train":  # the fix
                scheduler.step()  # the fix

            epoch_loss = running_loss / dataset_sizes[phase]
            epoch_acc = running_corrects.double() / dataset_sizes[phase]
            print(f"{phase} Loss: {epoch_loss:.4f} Acc: {epoch_acc:.4f}")
    return model


model_ft = ResNet()
num_ftrs = model_ft.fc.in_features
model_ft.fc = nn.Linear(num_ftrs, 2)

criterion = nn.CrossEntropyLoss()
# Observe that all parameters are being optimized
optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.001, momentum=0.9)
# Decay LR by a factor of 0.1 every 7 epochs
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=7, gamma=0.1)

model_ft = train_model(model_ft, criterion, optimizer_ft, exp_lr_scheduler, num_epochs=6)
