"""Knowledge distillation of a small CNN student from a larger CNN teacher, as in
knowledge-distillation-pytorch's ``cnn_distill`` experiment: ``Net`` (three Conv2d 3x3 +
BatchNorm + max-pool + ReLU stages, ``fc1`` + BatchNorm1d + dropout, ``fc2`` to 10 classes),
the teacher a wider ``Net``; ``loss_fn_kd`` = ``nn.KLDivLoss()(log_softmax(student/T),
softmax(teacher/T)) * alpha * T * T + cross_entropy(student, labels) * (1 - alpha)``, Adam
lr 1e-3, batch 128, a shuffled training DataLoader.

Rebuilt from https://github.com/haitongli/knowledge-distillation-pytorch/issues/9 ("Is student
net really learn what teacher output?"): "I print the first 32 labels of train dataloader for
teacher net and got: 14, 8, 29, ... while the first 32 labels of train dataloader of student net
but they are: 86, 40, 14, ... So it seems that the output index of teacher net and student net
are not the same at each batch", and "If alpha=0.95, t=6, then alpha*t*t would be far larger
than 1-alpha ... the loss is almost depending on the kl-divergence between the student and
teacher". Fixed by the merged pull request
https://github.com/haitongli/knowledge-distillation-pytorch/pull/17 ("The teacher's output
disagree with batch's labels"): ``fetch_teacher_outputs`` ran the teacher once over the shuffled
train DataLoader and ``train_kd`` then paired ``teacher_outputs[i]`` with batch ``i`` of a new,
differently shuffled pass, so every soft target belongs to other images; the fix computes the
teacher output on the current batch (``with torch.no_grad(): output_teacher_batch =
teacher_model(train_batch)``).

Departures: synthetic 16x16 colour "objects" (10 classes, each a fixed random stroke template
per channel, shifted by up to 1 pixel, with noise) instead of CIFAR-10, so the flattened size is
2*2*4*num_channels; student num_channels 8 and no dropout (``cnn_distill_nodropout`` config);
alpha 0.999, T 2 (the repository's ``experiments/cnn_distill_subset/alpha_0.999_Temp_2`` config):
with the issue's alpha 0.95, T 6 the 5% cross-entropy term alone still taught the student this
easy synthetic task (sick 0.998 test accuracy), so the KD-dominated setting is used; the teacher
(num_channels 32 instead of a ResNet-18) is trained in the script for 3 epochs with
cross-entropy as a stand-in for the pretrained checkpoint; 2000 training images, 8 epochs; the
teacher call is written as one line with ``.detach()``; no tqdm/metrics helpers.
Measured (teacher test accuracy 1.000 in both): sick: KD loss 0.376 -> 0.370 over 8 epochs,
student test accuracy 0.09-0.16 (chance 0.10); fixed: KD loss 0.312 -> 0.037, student test
accuracy 0.574 after epoch 1, 0.968 after epoch 2, 1.000 after epoch 8. Both print a torch
UserWarning about KLDivLoss reduction='mean' (as the repository's code does).
CPU: sick 6.1 s, fixed 8.4 s user.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

SIZE, CLASSES, BATCH, EPOCHS = 16, 10, 128, 8
ALPHA, TEMPERATURE, LR = 0.999, 2.0, 1e-3


def make_templates():
    templates = np.zeros((CLASSES, 3, SIZE, SIZE), dtype=np.float32)
    for c in range(CLASSES):
        for ch in range(3):
            y, x = rng.integers(4, 12, size=2)
            for _ in range(10):  # a random walk of thick strokes
                templates[c, ch, y - 1 : y + 1, x - 1 : x + 1] = 1.0
                y = int(np.clip(y + rng.integers(-1, 2), 3, 12))
                x = int(np.clip(x + rng.integers(-1, 2), 3, 12))
    return templates


TEMPLATES = make_templates()


def make_split(n):
    labels = rng.integers(CLASSES, size=n)
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-1, 2, size=2)
        images[i] = np.roll(TEMPLATES[c], (dy, dx), axis=(1, 2)) + 0.3 * rng.standard_normal(
            (3, SIZE, SIZE)
        )
    x = torch.as_tensor(images)
    return (x - 0.2) / 0.5, torch.as_tensor(labels)


train_x, train_y = make_split(2000)
test_x, test_y = make_split(500)
train_dataloader = DataLoader(TensorDataset(train_x, train_y), batch_size=BATCH, shuffle=True)


class Net(nn.Module):
    def __init__(self, num_channels, dropout_rate):
        super(Net, self).__init__()
        self.num_channels = num_channels
        self.conv1 = nn.Conv2d(3, self.num_channels, 3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(self.num_channels)
        self.conv2 = nn.Conv2d(self.num_channels, self.num_channels * 2, 3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm2d(self.num_channels * 2)
        self.conv3 = nn.Conv2d(self.num_channels * 2, self.num_channels * 4, 3, stride=1, padding=1)
        self.bn3 = nn.BatchNorm2d(self.num_channels * 4)
        self.fc1 = nn.Linear(2 * 2 * self.num_channels * 4, self.num_channels * 4)
        self.fcbn1 = nn.BatchNorm1d(self.num_channels * 4)
        self.fc2 = nn.Linear(self.num_channels * 4, 10)
        self.dropout_rate = dropout_rate

    def forward(self, s):
        s = self.bn1(self.conv1(s))
        s = F.relu(F.max_pool2d(s, 2))
        s = self.bn2(self.conv2(s))
        s = F.relu(F.max_pool2d(s, 2))
        s = self.bn3(self.conv3(s))
        s = F.relu(F.max_pool2d(s, 2))
        s = s.view(-1, 2 * 2 * self.num_channels * 4)
        s = F.dropout(F.relu(self.fcbn1(self.fc1(s))), p=self.dropout_rate, training=self.training)
        s = self.fc2(s)
        return s


def loss_fn_kd(outputs, labels, teacher_outputs):
    alpha = ALPHA
    T = TEMPERATURE
    KD_loss = nn.KLDivLoss()(
        F.log_softmax(outputs / T, dim=1), F.softmax(teacher_outputs / T, dim=1)
    ) * (alpha * T * T) + F.cross_entropy(outputs, labels) * (1.0 - alpha)
    return KD_loss


def evaluate(net):
    net.eval()
    with torch.no_grad():
        pred = net(test_x).argmax(1)
    return (pred == test_y).float().mean().item()


# ---- stand-in for the pretrained teacher checkpoint
teacher_model = Net(num_channels=32, dropout_rate=0.5)
teacher_optimizer = torch.optim.Adam(teacher_model.parameters(), lr=LR)
for epoch in range(3):
    teacher_model.train()
    for train_batch, labels_batch in train_dataloader:
        teacher_loss = F.cross_entropy(teacher_model(train_batch), labels_batch)
        teacher_optimizer.zero_grad()
        teacher_loss.backward()
        teacher_optimizer.step()
print(f"teacher test accuracy {evaluate(teacher_model):.3f}")


# Helper function: get [batch_idx, teacher_outputs] list by running teacher model once
def fetch_teacher_outputs(teacher_model, dataloader):
    teacher_model.eval()
    teacher_outputs = []
    for i, (data_batch, labels_batch) in enumerate(dataloader):
        output_teacher_batch = teacher_model(data_batch).data.cpu().numpy()
        teacher_outputs.append(output_teacher_batch)
    return teacher_outputs


def train_kd(model, teacher_model, teacher_outputs, optimizer, loss_fn_kd, dataloader):
    model.train()
    losses = []
    for i, (train_batch, labels_batch) in enumerate(dataloader):
        # compute model output, fetch teacher output, and compute KD loss
        output_batch = model(train_batch)

        # get one batch output from teacher_outputs list
        output_teacher_batch = teacher_model(train_batch).detach()  # the fix

        loss = loss_fn_kd(output_batch, labels_batch, output_teacher_batch)

        # clear previous gradients, compute gradients of all variables wrt loss
        optimizer.zero_grad()
        loss.backward()

        # performs updates using calculated gradients
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


model = Net(num_channels=8, dropout_rate=0.0)
optimizer = torch.optim.Adam(model.parameters(), lr=LR)

# fetch teacher outputs using teacher_model under eval() mode
teacher_model.eval()
teacher_outputs = fetch_teacher_outputs(teacher_model, train_dataloader)

for epoch in range(EPOCHS):
    train_loss = train_kd(
        model, teacher_model, teacher_outputs, optimizer, loss_fn_kd, train_dataloader
    )
    print(
        f"Epoch {epoch + 1}/{EPOCHS} KD loss {train_loss:.4f} student test accuracy {evaluate(model):.3f}"
    )
