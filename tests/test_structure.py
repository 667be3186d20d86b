"""The data's structure (issue 20): images, token ids, per-token and per-pixel targets with
``ignore_index``, losses summed per sequence, and minibatch noise in the loss curve. Every
number is checked against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nndoctor
from nndoctor.doctor.rules import curve
from nndoctor.doctor.schema import TaskSpec


def _entropy(labels: np.ndarray) -> float:
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_read_loss_sees_pixels_ignored_targets_and_a_sum_per_sample(torch):
    from nndoctor.backends.torch.task import read_loss

    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 5, 6, generator=g, requires_grad=True)  # (N, C, H, W)
    target = torch.randint(0, 3, (4, 5, 6), generator=g)
    target[0, 0, :4] = -100
    view = read_loss(F.cross_entropy(logits, target))
    assert view.kind == "cross_entropy" and view.ignore_index == -100
    assert view.units == 4 * 5 * 6 - 4 and view.scale == pytest.approx(1.0, rel=1e-9)
    # the predictions are the softmax over the classes, one row per pixel that counts
    keep = target.reshape(-1) != -100
    probs = torch.softmax(logits.detach().double(), dim=1).movedim(1, -1).reshape(-1, 3)
    torch.testing.assert_close(view.predictions, probs[keep])
    torch.testing.assert_close(view.targets, target.reshape(-1)[keep])
    # summed per sample, averaged over the batch: the scale is the units of a sample
    summed = F.cross_entropy(logits, target, reduction="sum") / 4
    assert read_loss(summed).scale == pytest.approx((4 * 5 * 6 - 4) / 4, rel=1e-9)
    # a hand-written loss has no node the doctor knows
    assert read_loss((logits.softmax(1) - 0.5).pow(2).mean()) is None


def test_a_loss_with_other_terms_added_is_read_through_its_one_known_term(torch):
    from nndoctor.backends.torch.task import loss_spec_of, read_loss
    from nndoctor.doctor.schema import LossSpec

    F = torch.nn.functional
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 1, 5, 5, generator=g, requires_grad=True)  # one logit per pixel
    mask = (torch.rand(4, 1, 5, 5, generator=g) > 0.5).double() * 2 - 1  # {-1, 1}: a bug
    p = torch.sigmoid(z)
    dice = 1 - (2 * (p * mask).sum() + 1) / (p.sum() + mask.sum() + 1)
    view = read_loss(0.5 * F.binary_cross_entropy_with_logits(z, mask) + 0.5 * dice)
    assert (view.kind, view.added, view.from_logits) == ("bce", True, True)
    assert math.isnan(view.scale)  # the scalar is not the BCE's mean
    torch.testing.assert_close(view.targets, mask.reshape(4, -1))
    torch.testing.assert_close(view.predictions, torch.sigmoid(z.detach()).reshape(4, -1))
    spec = loss_spec_of(view, LossSpec("callable"))
    assert (spec.kind, spec.added_terms, spec.words) == ("bce", True, "bce plus other terms")
    # a weight penalty added to a cross-entropy
    w = torch.randn(3, 6, generator=g, requires_grad=True)
    x, y = torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
    view = read_loss(F.cross_entropy(x @ w.T, y) + 1e-3 * w.pow(2).sum())
    assert view.added and view.kind == "cross_entropy"
    torch.testing.assert_close(view.targets, y)
    # two loss terms (a discriminator's real and fake halves) are not one loss
    a, b = z[:2].reshape(2, -1), z[2:].reshape(2, -1)
    both = F.binary_cross_entropy_with_logits(a, torch.ones_like(a))
    assert read_loss(both + F.binary_cross_entropy_with_logits(b, torch.zeros_like(b))) is None
    assert not read_loss(both).added


def test_a_watched_loss_with_other_terms_added_has_no_bounds_and_its_targets_checked(torch):
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    X = torch.randn(64, 1, 6, 6, generator=g)
    mask = (X > 0).double() * 2 - 1  # normalised like the image: {-1, 1}, not {0, 1}
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with nndoctor.watch(model, opt, alerts=False) as doctor:
        for _ in range(4):
            for lo in range(0, 64, 16):
                out, m = model(X[lo : lo + 16]), mask[lo : lo + 16]
                p = torch.sigmoid(out)
                dice = 1 - (2 * (p * m).sum() + 1) / (p.sum() + m.sum() + 1)
                opt.zero_grad()
                (F.binary_cross_entropy_with_logits(out, m) + dice).backward()
                opt.step()
    report = doctor.report()
    assert "adds other terms to bce" in report.bounds["baseline_error"]
    assert "baseline" not in report.bounds
    # two labels on the wrong scale: the targets need mapping to {0, 1}, the loss may stay
    finding = report["targets-out-of-range"]
    assert finding.evidence["case"] == "bce-two-labels-outside-unit-interval"
    assert (finding.evidence["target_min"], finding.evidence["target_max"]) == (-1.0, 1.0)
    assert 0.3 < finding.evidence["share_outside"] < 0.7  # the -1s of the rows kept (half)
    assert "wrong-loss-for-targets" not in report.codes
    assert report.summary["loss"] == "bce plus other terms"


def test_the_terms_a_loss_adds_are_told_apart(torch):
    from nndoctor.backends.torch.task import loss_terms, reached_under

    a, b, c = (torch.randn(3, requires_grad=True) for _ in range(3))
    terms = loss_terms((a.square().sum() + 2 * b.sum() + c.exp().mean()) / 3)
    assert sorted(len(reached_under(t)) for t in terms) == [1, 1, 1]
    reached = set().union(*(reached_under(t) for t in terms))
    assert reached == {id(a), id(b), id(c)}
    assert loss_terms(a.square().sum() * 2) == []  # one term
    assert loss_terms((a * b).sum()) == []  # a product is not a sum of terms


class _Seg:
    @staticmethod
    def data(n=48):
        g = np.random.default_rng(0)
        X = g.normal(size=(n, 1, 6, 6)).astype(np.float32)
        Y = np.where(X[:, 0] > 0.4, 2, np.where(X[:, 0] < -0.4, 0, 1)).astype(np.int64)
        return X, Y

    @staticmethod
    def model(torch):
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))


def test_per_pixel_class_targets_get_a_report_with_the_pixel_baseline(torch):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X, Y = _Seg.data()
    report = nndoctor.diagnose(
        _Seg.model(torch), X, Y, loss=torch.nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.Adam(p, lr=1e-2), epochs=6, batch_size=16,
        shuffle=True, trials=False, progress=False,
    )  # fmt: skip
    # the best constant prediction per pixel is the pixels' class shares: their entropy
    assert report.bounds["baseline"] == pytest.approx(_entropy(Y.reshape(-1)), rel=1e-9)
    assert "per pixel" in report.bounds["text"]
    assert not [f.code for f in report.findings if f.severity == "error"]


def _lm(torch, n=64, T=8, V=10):
    nn = torch.nn

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.out = nn.Embedding(V, 16), nn.Linear(16, V)

        def forward(self, x):
            return self.out(torch.tanh(self.emb(x)))

    g = np.random.default_rng(1)
    X = g.integers(0, V, size=(n, T))
    Y = X.copy()  # copy the token: learnable
    Y[:, T - 3 :] = -100  # padding
    return LM(), X, Y


def test_token_ids_with_ignored_targets_are_ids_not_features(torch):
    torch.manual_seed(0)
    model, X, Y = _lm(torch)
    F = torch.nn.functional

    def per_token(out, y):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    report = nndoctor.diagnose(
        model, X, Y, loss=per_token, optimizer=lambda p: torch.optim.Adam(p, lr=3e-2),
        epochs=8, batch_size=16, trials=False, progress=False,
    )  # fmt: skip
    tokens = Y.reshape(-1)
    # a cross-entropy baseline: the kind was read off F.cross_entropy's graph
    assert report.bounds["baseline"] == pytest.approx(_entropy(tokens[tokens != -100]), rel=1e-9)
    assert report.summary["loss"] == "per_token"  # the header keeps the user's name
    for code in ("unscaled-inputs", "no-signal", "constant-inputs", "output-collapse"):
        assert code not in report, code


def test_a_loss_summed_per_sequence_is_judged_against_the_same_sum(torch):
    torch.manual_seed(0)
    model, X, Y = _lm(torch)
    F = torch.nn.functional

    def per_sequence(out, y):
        return F.cross_entropy(
            out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="sum"
        ) / len(y)

    report = nndoctor.diagnose(
        model, X, Y, loss=per_sequence, optimizer=lambda p: torch.optim.Adam(p, lr=3e-2),
        epochs=8, batch_size=16, trials=False, progress=False,
    )  # fmt: skip
    tokens = Y.reshape(-1)
    kept = tokens[tokens != -100]
    per_sample = len(kept) / len(Y)
    assert report.bounds["baseline"] == pytest.approx(_entropy(kept) * per_sample, rel=1e-6)
    assert "loss-at-baseline" not in report and report.summary["final_loss"] < 0.5 * per_sample


def test_a_watched_functional_loss_tells_its_tokens(torch):
    torch.manual_seed(0)
    model, X, Y = _lm(torch)
    F = torch.nn.functional
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    with nndoctor.watch(model, opt, alerts=False, every=4) as doctor:
        for _ in range(6):
            for lo in range(0, len(X), 16):
                out = model(Xt[lo : lo + 16])
                loss = F.cross_entropy(out.reshape(-1, 10), Yt[lo : lo + 16].reshape(-1))
                opt.zero_grad()
                loss.backward()
                opt.step()
    task = doctor.task_spec()
    assert task.unit == "token" and task.inputs == "tokens" and task.ignore_index == -100
    assert task.units_per_sample == pytest.approx(5.0)  # 8 tokens, 3 of them padding
    report = doctor.report()
    assert report.summary["loss"] == "cross_entropy"
    assert not [f.code for f in report.findings if f.severity in ("error", "warning")]


def _noisy_probes(step_loss: np.ndarray, steps_per_epoch: int, epochs_known: bool = True):
    from test_doctor_rules import probes as make_probes

    p = make_probes(
        epoch_loss=np.array(
            [c.mean() for c in np.array_split(step_loss, len(step_loss) // steps_per_epoch)]
        )
    )
    p.step_loss = step_loss
    p.steps_per_epoch = steps_per_epoch
    p.epochs_known = epochs_known
    return p


def test_minibatch_noise_is_not_oscillation_but_real_swings_are():
    from test_doctor_rules import context

    g = np.random.default_rng(0)
    trend = np.linspace(1.0, 0.2, 400)
    noisy = trend + g.normal(0, 0.3, size=400)  # steps of noise: 20 windows of 20 steps
    assert curve.oscillating_loss(_noisy_probes(noisy, 20, False), context()) == []
    # the same windows alternating up and down by far more than their noise
    swings = trend + np.repeat(np.tile([0.0, 0.6], 10), 20) + g.normal(0, 0.05, size=400)
    (f,) = curve.oscillating_loss(_noisy_probes(swings, 20, False), context())
    assert "window of 20 steps" in f.title and f.evidence["sign_flip_share"] > 0.9
    # full-batch training (one step an epoch) has no minibatch noise: unchanged
    assert curve.curve_noise(_noisy_probes(noisy, 1)).max() == 0.0


def test_windows_after_a_stretch_of_easy_batches_are_not_spikes():
    # a loop without epochs: 40 steps of batches the net has memorised (loss near 0) set the
    # lowest window for good; the later windows at the run's usual level are no spikes of it
    # (a loop's spikes are judged step by step, with their recovery, by the stability rules)
    from test_doctor_rules import context

    g = np.random.default_rng(1)
    step_loss = np.abs(0.3 + g.normal(0, 0.1, size=480))
    step_loss[120:160] = 0.002
    assert curve.oscillating_loss(_noisy_probes(step_loss, 8, False), context()) == []
    # the same numbers as the means of whole epochs: a loss five times the best epoch's
    (f,) = curve.oscillating_loss(_noisy_probes(step_loss, 8, True), context())
    assert f.evidence["spikes"] > 10


def test_task_spec_defaults_to_one_target_per_sample():
    assert TaskSpec().per_sample and TaskSpec().scale == 1.0
    assert not TaskSpec(unit="token").per_sample
    assert math.isnan(TaskSpec(scale=math.nan).scale)


def _weighted_pixels(torch):
    """Per-pixel class targets, 5% foreground, and a 1x1 conv that tells the two apart."""
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(64, 6, 6, generator=g) < 0.05).long()
    images = masks.double() + 0.3 * torch.randn(64, 6, 6, generator=g, dtype=torch.float64)
    return images[:, None], masks


@pytest.mark.parametrize("way", ["module", "function"])
def test_a_class_weighted_loss_gets_no_baseline_of_the_class_shares(torch, way):
    # with weights (0.05, 0.95) the best constant prediction is not the class shares: its
    # weighted loss is the entropy of the weighted shares, far above the shares' own entropy
    # (0.2 here), so a healthy net's loss sits above the unweighted baseline. The doctor must
    # not read that as "no better than a constant"
    F, nn = torch.nn.functional, torch.nn
    X, Y = _weighted_pixels(torch)
    w = torch.tensor([0.05, 0.95], dtype=torch.float64)
    share = Y.double().mean().item()
    weighted = np.array([0.05 * (1 - share), 0.95 * share])
    weighted /= weighted.sum()
    unweighted = -(share * np.log(share) + (1 - share) * np.log(1 - share))
    assert -(weighted * np.log(weighted)).sum() > 2 * unweighted
    torch.manual_seed(0)
    model = nn.Conv2d(1, 2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    loss = nn.CrossEntropyLoss(weight=w) if way == "module" else None
    with nndoctor.watch(model, opt, loss=loss, alerts=False) as doctor:
        for step in range(120):
            lo = (step * 16) % 64
            opt.zero_grad()
            out = model(X[lo : lo + 16])
            value = loss(out, Y[lo : lo + 16]) if loss else F.cross_entropy(out, Y[lo : lo + 16], w)
            value.backward()
            opt.step()
    report = doctor.report()
    assert "baseline" not in report.bounds
    assert "class weights" in report.bounds["baseline_error"]
    assert not [f for f in report.findings if f.code in ("loss-at-baseline", "output-collapse")]


def test_ids_whose_target_is_their_interaction_are_not_called_signal_free(torch):
    # a user likes an item when their hidden signs agree: no user and no item on its own says
    # anything (each likes half), so the test on a bag of the ids finds nothing, and the
    # doctor must not read that as "the targets are not predictable from the inputs"
    nn = torch.nn

    class Dot(nn.Module):
        def __init__(self):
            super().__init__()
            self.users, self.items = nn.Embedding(40, 4), nn.Embedding(40, 4)

        def forward(self, x):
            return (self.users(x[:, 0]) * self.items(x[:, 1])).sum(1, keepdim=True)

    g = np.random.default_rng(3)
    su, si = g.choice([-1.0, 1.0], 40), g.choice([-1.0, 1.0], 40)
    pairs = np.column_stack([g.integers(0, 40, 1500), g.integers(0, 40, 1500)])
    liked = (su[pairs[:, 0]] * si[pairs[:, 1]] > 0).astype(np.float32)[:, None]
    # each id's own sign says nothing alone: either sign likes about half the items
    for col, s in ((0, su), (1, si)):
        for v in (-1.0, 1.0):
            assert abs(liked[s[pairs[:, col]] == v].mean() - 0.5) < 0.1
    torch.manual_seed(0)
    report = nndoctor.diagnose(
        Dot(), pairs, liked, loss=nn.BCEWithLogitsLoss(),
        optimizer=lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=3, batch_size=64, trials=False, progress=False,
    )  # fmt: skip
    # the test on the bag of ids finds nothing (it cannot see the interaction) ...
    assert report.bounds["predictability"]["has_signal"] is False
    assert "one id's effect, not two ids' interaction" in report.bounds["text"]
    # ... and that is not read as targets without signal: information that says so
    f = report["no-signal"]
    assert f.severity == "info" and "interaction of ids" in f.title
    assert not [g for g in report.findings if g.severity in ("error", "warning")
                and g.code in ("no-signal", "insufficient-capacity")]  # fmt: skip


def _causal_lm(torch, V=12, width=16):
    nn = torch.nn

    class SeqFirstLM(nn.Module):
        # nn.TransformerEncoder's default layout: (time, batch); a causal mask of the
        # sequence's length, built once (as PyTorch's word_language_model example does)
        def __init__(self, T):
            super().__init__()
            self.embed = nn.Embedding(V, width)
            layer = nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0)
            self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.head = nn.Linear(width, V)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(T))

        def forward(self, src):
            return self.head(self.encoder(self.embed(src), mask=self.mask))

    return SeqFirstLM


def test_a_sequence_first_language_model_is_reported_without_batch_mixing(torch):
    # rows of the inputs are time steps, which a causal model mixes by design; the probe's
    # rows gathered along dim 0 (more than T of them) do not fit the mask: the first input
    # as given is probed instead, and the report is made
    T, N, V = 8, 40, 12
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, V, (T + 1, 4 * N), generator=g)
    torch.manual_seed(0)
    model = _causal_lm(torch, V)(T)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    with nndoctor.watch(model, opt, loss=loss_fn, budget=None, alerts=False) as w:
        for _ in range(3):
            for lo in range(0, 4 * N, N):
                src, tgt = tokens[:T, lo : lo + N], tokens[1:, lo : lo + N]
                opt.zero_grad()
                out = model(src)
                loss_fn(out.reshape(-1, V), tgt.reshape(-1)).backward()
                opt.step()
    report = w.report()
    assert tuple(w.forward.probe_x.shape) == (T, N)  # the first input, not 256 "rows"
    assert w.loss_shapes == ((T * N, V), (T * N,))
    assert "batch-mixing" not in report.codes, report.codes
    assert report.summary["steps"] == 12


def test_a_graph_net_scored_on_a_mask_of_its_nodes_is_not_told_it_mixes_samples(torch):
    # the rows are the nodes of one graph, which message passing mixes by design; the
    # functional loss scores the nodes of a training mask, fewer than the rows: the rows are
    # not the loss's samples. Scored on every node, the same mixing is reported.
    nn, F = torch.nn, torch.nn.functional
    N, D, C = 40, 5, 3
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g)
    y = torch.randint(0, C, (N,), generator=g)
    mask = torch.arange(N) % 2 == 0
    A = (torch.rand(N, N, generator=g) < 0.1).double() + torch.eye(N)
    A = A / A.sum(1, keepdim=True)

    class GraphNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin1, self.lin2 = nn.Linear(D, 16), nn.Linear(16, C)
            self.register_buffer("adjacency", A)

        def forward(self, h):
            return self.lin2(torch.tanh(self.adjacency @ self.lin1(h)))

    def codes(rows):
        torch.manual_seed(0)
        model = GraphNet()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        with nndoctor.watch(model, opt, budget=None, alerts=False) as w:
            for _ in range(30):
                opt.zero_grad()
                F.cross_entropy(model(x)[rows], y[rows]).backward()
                opt.step()
        return w.report().codes

    assert "batch-mixing" not in codes(mask)
    assert "batch-mixing" in codes(slice(None))
