"""GMF (generalized matrix factorization) recommender of yihong-chen/neural-collaborative-filtering:
user and item ``nn.Embedding`` tables (latent dim 8), their element-wise product, ``Linear(8, 1)``
and ``Sigmoid``; explicit feedback (ratings normalised to [0, 1], 4 sampled negatives per rating
with target 0) trained with ``nn.MSELoss`` and Adam in the repository's ``Engine`` structure,
evaluated by leave-one-out HR@10 against 99 sampled negative items.

Rebuilt from https://github.com/yihong-chen/neural-collaborative-filtering/issues/5: with PyTorch
1.0.1 "my training results are too bad, the evaluating HR and NDCG of some epochs are 0.0000";
with PyTorch 0.4.0 the same code stopped with "RuntimeError: input and target shapes do not match:
input [1024 x 1], target [1024]". The maintainer reproduced it ("I reproduced the bug in pytorch
1.0 as well") and fixed ``Engine.train_single_batch`` in commit acd7f92 ("Fix: migrate to
torch0.4"): ``loss = self.crit(ratings_pred.view(-1), ratings)``. Without the ``.view(-1)`` the
model's (batch, 1) output and the (batch,) ratings broadcast to (batch, batch) inside MSELoss
(newer PyTorch only warns), so every prediction is pulled towards the batch's mean rating.

Departures: synthetic ratings (600 users, 400 items, 4 latent factors, 24 training ratings + 1
held-out item per user) instead of MovieLens-1M; Adam lr 1e-2 instead of 1e-3 and 12 epochs instead
of 200 (far fewer steps per epoch here); ``l2_regularization`` 0 in both scripts, the value of the
repository's fixed torch-1.0 config (the reporter's then-master also had Adam weight_decay 0.01,
which the maintainer also dropped: the README now says large L2 "might lead to the bug of HR=0.0
NDCG=0.0"; only the shape fix is rebuilt here); no tensorboard, checkpoints or CUDA.
Measured: sick: loss flat at 0.142 from epoch 4 on, HR@10 0.08-0.13 over 12 epochs (chance 0.10),
spread of the predicted scores 0.0003 (torch's broadcasting UserWarning printed); fixed: the same
loss until epoch 4, then 0.140 -> 0.080, HR@10 0.21 at epoch 5 and 0.69 at epoch 11, score spread 0.27.
"""

import numpy as np
import torch

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)

NUM_USERS, NUM_ITEMS, FACTORS = 600, 400, 4
config = {
    "num_epoch": 12,
    "batch_size": 1024,
    "optimizer": "adam",
    "adam_lr": 1e-2,
    "num_users": NUM_USERS,
    "num_items": NUM_ITEMS,
    "latent_dim": 8,
    "num_negative": 4,
    "l2_regularization": 0,
}

# synthetic explicit feedback: each user rated the 25 items it likes most (1..5 stars)
user_f = rng.standard_normal((NUM_USERS, FACTORS))
item_f = rng.standard_normal((NUM_ITEMS, FACTORS))
affinity = user_f @ item_f.T + 0.5 * rng.standard_normal((NUM_USERS, NUM_ITEMS))
train_users, train_items, train_ratings = [], [], []
test_items, eval_negatives, negative_pool = [], [], []
for u in range(NUM_USERS):
    rated = rng.permutation(np.argsort(-affinity[u])[:25])
    stars = np.clip(np.round(3 + affinity[u, rated] / 2), 1, 5)
    test_items.append(rated[0])  # leave-one-out: one rated item held out
    pool = np.setdiff1d(np.arange(NUM_ITEMS), rated)
    negative_pool.append(pool)
    eval_negatives.append(rng.choice(pool, 99, replace=False))
    for item, r in zip(rated[1:], stars[1:]):
        train_users.append(u)
        train_items.append(item)
        train_ratings.append(r / 5.0)  # _normalize: into [0, 1] from [0, max_rating]
train_users, train_items = np.array(train_users), np.array(train_items)
train_ratings = np.array(train_ratings, dtype=np.float32)


def instance_a_train_loader(num_negatives, batch_size):
    negatives = np.array([rng.choice(negative_pool[u], num_negatives) for u in train_users])
    users = np.concatenate([train_users, np.repeat(train_users, num_negatives)])
    items = np.concatenate([train_items, negatives.reshape(-1)])
    ratings = np.concatenate([train_ratings, np.zeros(negatives.size, dtype=np.float32)])
    perm = torch.randperm(len(users))
    users, items, ratings = (
        torch.as_tensor(users)[perm],
        torch.as_tensor(items)[perm],
        torch.as_tensor(ratings)[perm],
    )
    return [(users[b : b + batch_size], items[b : b + batch_size], ratings[b : b + batch_size])
            for b in range(0, len(users), batch_size)]  # fmt: skip


class GMF(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_users = config["num_users"]
        self.num_items = config["num_items"]
        self.latent_dim = config["latent_dim"]
        self.embedding_user = torch.nn.Embedding(
            num_embeddings=self.num_users, embedding_dim=self.latent_dim
        )
        self.embedding_item = torch.nn.Embedding(
            num_embeddings=self.num_items, embedding_dim=self.latent_dim
        )
        self.affine_output = torch.nn.Linear(in_features=self.latent_dim, out_features=1)
        self.logistic = torch.nn.Sigmoid()

    def forward(self, user_indices, item_indices):
        user_embedding = self.embedding_user(user_indices)
        item_embedding = self.embedding_item(item_indices)
        element_product = torch.mul(user_embedding, item_embedding)
        logits = self.affine_output(element_product)
        rating = self.logistic(logits)
        return rating


class Engine:
    def __init__(self, config):
        self.config = config
        self.model = GMF(config)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config["adam_lr"],
                                    weight_decay=config["l2_regularization"])  # fmt: skip
        self.crit = torch.nn.MSELoss()

    def train_single_batch(self, users, items, ratings):
        self.opt.zero_grad()
        ratings_pred = self.model(users, items)
        loss = self.crit(ratings_pred, ratings)
        loss.backward()
        self.opt.step()
        return loss.item()

    def train_an_epoch(self, train_loader, epoch_id):
        self.model.train()
        total_loss = 0
        for batch_id, batch in enumerate(train_loader):
            user, item, rating = batch[0], batch[1], batch[2]
            rating = rating.float()
            total_loss += self.train_single_batch(user, item, rating)
        return total_loss / len(train_loader)

    def evaluate(self):
        self.model.eval()
        with torch.no_grad():
            users = torch.arange(NUM_USERS)
            test_scores = self.model(users, torch.as_tensor(np.array(test_items))).view(-1)
            negative_scores = self.model(users.repeat_interleave(99),
                                         torch.as_tensor(np.concatenate(eval_negatives))).view(-1, 99)  # fmt: skip
        above = (negative_scores > test_scores[:, None]).sum(1).float()
        ties = (negative_scores == test_scores[:, None]).sum(1).float()
        hit_ratio = (above + 0.5 * ties < 10).float().mean().item()  # HR@10
        return hit_ratio, test_scores.std().item()


engine = Engine(config)
for epoch in range(config["num_epoch"]):
    train_loader = instance_a_train_loader(config["num_negative"], config["batch_size"])
    loss = engine.train_an_epoch(train_loader, epoch_id=epoch)
    hit_ratio, spread = engine.evaluate()
    print(
        f"[Epoch {epoch}] loss {loss:.4f} HR@10 {hit_ratio:.4f} (chance 0.10) score spread {spread:.4f}"
    )
