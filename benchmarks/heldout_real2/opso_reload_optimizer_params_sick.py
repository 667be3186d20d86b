"""OpenSoundscape-style ``Resnet18Binary`` spectrogram classifier (a ResNet split into a
``feature`` extractor and a ``classifier`` head, BatchNorm), trained with SGD with momentum and
two parameter groups (feature lr 0.001, classifier lr 0.01), saved with ``model.save`` and
reloaded with ``Resnet18Binary.from_checkpoint`` to continue training.

Rebuilt from https://github.com/kitzeslab/opensoundscape/issues/351 ("Continuing training of
CNN from loaded model may not be working"), fixed by
https://github.com/kitzeslab/opensoundscape/pull/358: the bug was "caused by overwriting the
optimizer_params attribute with the one from the old model",
``self.optimizer_params = model_dict["optimizer_params"]``: the saved ``optimizer_params`` held
the old network's parameter list, so the optimizer built after loading stepped those stale
tensors, not the loaded network's weights. The fix stops storing ``"params"`` in
``optimizer_params`` and adds ``self.network.feature.parameters()`` /
``self.network.classifier.parameters()`` in ``_init_optimizer``, just before building the
optimizer.

Departures: synthetic 24x24 "spectrograms" (positive class: a rising chirp at a random time and
pitch; negative: noise and a flat tone), a two-block ResNet from scratch instead of an
ImageNet-pretrained ResNet-18, the checkpoint written to an in-memory buffer instead of a file,
``CrossEntropyLoss_hot`` written as cross entropy against one-hot labels. The run trains one
epoch, saves, reloads and continues for four more.
Measured: sick: validation accuracy 0.467 (every clip called "present"; 0.47 of them are)
after the first epoch, and exactly 0.467 again after each of the four epochs after reloading
(the loaded network's weights never change); fixed: 0.467, then 0.81, 0.96, 0.98, 1.00.
"""

import io

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE = 24


def make_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = rng.integers(2, size=n)
    x = 0.6 * rng.standard_normal((n, 1, SIZE, SIZE)).astype(np.float32)
    for i, c in enumerate(labels):
        t0, f0 = rng.integers(2, 12), rng.integers(3, 12)
        if c == 1:  # rising chirp
            for k in range(10):
                x[i, 0, min(f0 + k, SIZE - 1), t0 + k] += 2.0
        else:  # flat tone
            x[i, 0, f0 + 5, t0 : t0 + 10] += 2.0
    x = torch.as_tensor(x).repeat(1, 3, 1, 1)  # grey spectrogram to 3 channels
    return x, torch.as_tensor(labels)


train_x, train_y = make_split(900)
valid_x, valid_y = make_split(240)


class BasicBlock(nn.Module):
    def __init__(self, w_in: int, w_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(w_in, w_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w_out)
        self.conv2 = nn.Conv2d(w_out, w_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(w_out)
        self.down = None
        if stride != 1 or w_in != w_out:
            self.down = nn.Sequential(nn.Conv2d(w_in, w_out, 1, stride, bias=False),
                                      nn.BatchNorm2d(w_out))  # fmt: skip

    def forward(self, x):
        skip = x if self.down is None else self.down(x)
        return F.relu(skip + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class ResNetArchitecture(nn.Module):
    def __init__(self, num_cls: int) -> None:
        super().__init__()
        self.feature = nn.Sequential(
            nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            BasicBlock(16, 16, 1), BasicBlock(16, 32, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.classifier = nn.Linear(32, num_cls)

    def forward(self, x):
        return self.classifier(self.feature(x))


def cross_entropy_hot(logits, labels_hot):
    return F.cross_entropy(logits, labels_hot)


class Resnet18Binary:
    def __init__(self, classes):
        self.classes = classes
        self.network = ResNetArchitecture(num_cls=2)
        self.current_epoch = 0
        self.opt_net = None
        self.optimizer_cls = optim.SGD
        self.optimizer_params = {
            "feature": {
                "params": self.network.feature.parameters(),
                "lr": 0.001,
                "momentum": 0.9,
                "weight_decay": 0.0005,
            },
            "classifier": {
                "params": self.network.classifier.parameters(),
                "lr": 0.01,
                "momentum": 0.9,
                "weight_decay": 0.0005,
            },
        }
        self.lr_update_interval = 10
        self.lr_cooling_factor = 0.7
        self.loss_fn = cross_entropy_hot

    def _init_optimizer(self):
        return self.optimizer_cls(self.optimizer_params.values())

    def train(self, epochs, batch_size=32):
        if self.opt_net is None:
            self.opt_net = self._init_optimizer()
        self.scheduler = optim.lr_scheduler.StepLR(
            self.opt_net, step_size=self.lr_update_interval, gamma=self.lr_cooling_factor
        )
        for _ in range(epochs):
            self.network.train()
            perm = torch.randperm(len(train_x))
            for start in range(0, len(perm), batch_size):
                idx = perm[start : start + batch_size]
                batch_tensors = train_x[idx]
                batch_labels = F.one_hot(train_y[idx], 2).float()
                logits = self.network.forward(batch_tensors)
                loss = self.loss_fn(logits, batch_labels)
                self.opt_net.zero_grad()
                loss.backward()
                self.opt_net.step()
            self.scheduler.step()
            self.network.eval()
            with torch.no_grad():
                acc = (self.network(valid_x).argmax(1) == valid_y).float().mean().item()
            print(f"epoch {self.current_epoch}: last batch loss {loss.item():.4f} "
                  f"valid accuracy {acc:.3f}")  # fmt: skip
            self.current_epoch += 1

    def save(self, path):
        model_dict = {
            "classes": self.classes,
            "epoch": self.current_epoch,
            "lr_update_interval": self.lr_update_interval,
            "lr_cooling_factor": self.lr_cooling_factor,
            "optimizer_params": self.optimizer_params,
            "model_state_dict": self.network.state_dict(),
        }
        if self.opt_net is None:
            self.opt_net = self._init_optimizer()
        model_dict["optimizer_state_dict"] = self.opt_net.state_dict()
        torch.save(model_dict, path)

    def load(self, path):
        path.seek(0)
        model_dict = torch.load(path, weights_only=False)
        self.current_epoch = model_dict["epoch"]
        self.lr_update_interval = model_dict["lr_update_interval"]
        self.lr_cooling_factor = model_dict["lr_cooling_factor"]
        self.optimizer_params = model_dict["optimizer_params"]
        self.network.load_state_dict(model_dict["model_state_dict"], strict=False)
        self.opt_net = self._init_optimizer()
        self.opt_net.load_state_dict(model_dict["optimizer_state_dict"])

    @classmethod
    def from_checkpoint(cls, path):
        path.seek(0)
        classes = torch.load(path, weights_only=False)["classes"]
        model_obj = cls(classes)
        model_obj.load(path)
        return model_obj


model = Resnet18Binary(classes=["absent", "present"])
model.train(epochs=1)
checkpoint = io.BytesIO()  # stands in for "epoch-1.model" on disk
model.save(checkpoint)
del model

model = Resnet18Binary.from_checkpoint(checkpoint)
model.train(epochs=4)  # continue training from the loaded model
