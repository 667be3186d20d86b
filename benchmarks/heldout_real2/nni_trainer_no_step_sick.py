"""LeNet-style CNN digit classifier (two 5x5 conv + max-pool stages, two Linear layers,
log_softmax output) trained by NNI Retiarii's ``PyTorchImageClassificationTrainer``:
``nn.CrossEntropyLoss``, an SGD optimizer built from ``optimizer_kwargs``, a DataLoader of
batch 32, and a ``fit`` that runs ``_train`` for ``max_epochs``.

Rebuilt from https://github.com/microsoft/nni/pull/3339: "the current process only calculates
the loss and gradient, and does not use the optimizer for optimization. Therefore, the model is
not actually trained, and its accuracy on the Web UI remains unchanged." ``_train`` ran
``loss = self.training_step(batch, i); loss.backward()`` and nothing else; the fix adds
``self._optimizer.zero_grad()`` before and ``self._optimizer.step()`` after (and a
``self._validate()`` per epoch, which both scripts here do, to print the accuracy).

Departures: synthetic 28x28 "digits" (10 classes, each a fixed random stroke template, shifted
by up to 2 pixels, with noise) instead of torchvision's MNIST, 2000 training and 500 validation
images, the trainer's data set and data loader built from tensors; lr 0.01 (the repository's
test scripts pass 1e-3), 4 epochs; the ``nn.LayerChoice`` of the search space fixed to its
first choice.
Measured: sick: validation accuracy 0.109 (chance 0.10) and the same last-batch loss 2.3178
after every epoch (the weights never move); fixed: validation accuracy 0.81 after the first
epoch, 0.96 after the fourth.
"""

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES = 28, 10


def make_templates() -> np.ndarray:
    templates = np.zeros((CLASSES, SIZE, SIZE), dtype=np.float32)
    for c in range(CLASSES):
        y, x = rng.integers(8, 20, size=2)
        for _ in range(30):  # a random walk of thick strokes
            templates[c, y - 2 : y + 2, x - 2 : x + 2] = 1.0
            y = int(np.clip(y + rng.integers(-2, 3), 6, 21))
            x = int(np.clip(x + rng.integers(-2, 3), 6, 21))
    return templates


TEMPLATES = make_templates()


def make_split(n: int) -> TensorDataset:
    labels = rng.integers(CLASSES, size=n)
    images = np.empty((n, 1, SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-2, 3, size=2)
        images[i, 0] = np.roll(TEMPLATES[c], (dy, dx), axis=(0, 1))
        images[i, 0] += 0.2 * rng.standard_normal((SIZE, SIZE))
    x = (torch.as_tensor(images) - 0.1307) / 0.3081  # transforms.Normalize((0.1307,), (0.3081,))
    return TensorDataset(x, torch.as_tensor(labels))


class Net(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, hidden_size)
        self.fc2 = nn.Linear(hidden_size, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2, 2)
        x = x.view(-1, 4 * 4 * 50)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class PyTorchImageClassificationTrainer:
    def __init__(self, model, train_dataset, val_dataset, dataloader_kwargs=None,
                 optimizer_cls="SGD", optimizer_kwargs=None, trainer_kwargs=None):  # fmt: skip
        self.model = model
        self._loss_fn = nn.CrossEntropyLoss()
        self._train_dataset, self._val_dataset = train_dataset, val_dataset
        self._optimizer = getattr(torch.optim, optimizer_cls)(
            model.parameters(), **(optimizer_kwargs or {})
        )
        self._trainer_kwargs = trainer_kwargs or {"max_epochs": 10}
        self._train_dataloader = DataLoader(self._train_dataset, **(dataloader_kwargs or {}))
        self._val_dataloader = DataLoader(self._val_dataset, **(dataloader_kwargs or {}))

    def _accuracy(self, input, target):
        _, predict = torch.max(input.data, 1)
        correct = predict.eq(target.data).cpu().sum().item()
        return correct / input.size(0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        y_hat = self.model(x)
        return self._loss_fn(y_hat, y)

    def validation_step(self, batch, batch_idx: int) -> dict[str, Any]:
        x, y = batch
        y_hat = self.model(x)
        return {"val_acc": self._accuracy(y_hat, y)}

    def validation_epoch_end(self, outputs: list[dict[str, Any]]) -> dict[str, Any]:
        avg_acc = np.mean([x["val_acc"] for x in outputs]).item()
        return {"val_acc": avg_acc}

    def _validate(self):
        validation_outputs = []
        with torch.no_grad():
            for i, batch in enumerate(self._val_dataloader):
                validation_outputs.append(self.validation_step(batch, i))
        return self.validation_epoch_end(validation_outputs)

    def _train(self):
        for i, batch in enumerate(self._train_dataloader):
            loss = self.training_step(batch, i)
            loss.backward()
        return loss

    def fit(self) -> None:
        for epoch in range(self._trainer_kwargs["max_epochs"]):
            loss = self._train()
            val_acc = self._validate()["val_acc"]
            print(f"epoch {epoch}: last batch loss {loss.item():.4f} val_acc {val_acc:.3f}")


base_model = Net(128)
trainer = PyTorchImageClassificationTrainer(
    base_model,
    train_dataset=make_split(2000),
    val_dataset=make_split(500),
    dataloader_kwargs={"batch_size": 32},
    optimizer_kwargs={"lr": 1e-2},
    trainer_kwargs={"max_epochs": 4},
)
trainer.fit()
