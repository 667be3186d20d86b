"""The model's structure as the PyTorch backend reads it (issue 20): activations named by the
modules, an optimizer out of step with its model, parameters the loss does not use, outputs
that mix the samples of a batch.

Every expected number is computed here from the model and the optimizer themselves (the
tensors' identities, two forward passes done by hand, a closed form), never read back from
the doctor.
"""

from __future__ import annotations

import numpy as np
import pytest

import nndoctor
from _torch_cases import mlp, regression


def _watch_loop(torch, nn, model, opt, steps=40, *, pick=None, before_step=None):
    """A plain loop of ``steps`` steps on the regression problem under ``watch``; ``pick``
    chooses the model output the loss reads; ``before_step(step)`` runs first each step."""
    X, y = (torch.as_tensor(a) for a in regression())
    loss = nn.MSELoss()
    with nndoctor.watch(model, opt, loss=loss, alerts=False) as doctor:
        for step in range(steps):
            if before_step is not None:
                before_step(step)
            lo = (step * 20) % len(X)
            opt.zero_grad()
            out = model(X[lo : lo + 20])
            loss(out if pick is None else pick(out), y[lo : lo + 20]).backward()
            opt.step()
    return doctor


# --- activations: the modules say so; the numbers only where they can tell ---


def test_activation_modules_name_the_activation_even_on_all_zero_weights(torch, nn):
    from nndoctor.backends.torch import TORCH

    acts = [nn.ReLU(), nn.GELU(), nn.Sigmoid(), nn.Tanh(), nn.SiLU(), nn.LeakyReLU(0.2),
            nn.ELU(), nn.Softmax(dim=1)]  # fmt: skip
    layers = []
    for act in acts:
        layers += [nn.Linear(4, 4), act]
    model = nn.Sequential(*layers)
    for p in model.parameters():
        nn.init.zeros_(p)  # every pre-activation 0: ReLU, GELU, SiLU, ... all give 0 there
    X = np.random.default_rng(0).normal(size=(10, 4))
    run = TORCH.prepare(
        model, X, X, loss=nn.MSELoss(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        epochs=1, batch_size=None, shuffle=False, seed=0, options={},
    )  # fmt: skip
    kinds = [s.kind for s in TORCH.describe(run) if s.kind != "dense"]
    assert kinds == ["relu", "gelu", "sigmoid", "tanh", "silu", "leakyrelu", "elu", "softmax"]


def test_a_softmax_over_the_batch_axis_is_no_activation_of_the_units(torch, nn):
    from nndoctor.backends.torch.model import module_activation

    z = torch.randn(6, 3)
    assert module_activation(nn.Softmax(dim=1), z, channels_first=False) == "softmax"
    assert module_activation(nn.LogSoftmax(dim=-1), z, channels_first=False) == "log_softmax"
    assert module_activation(nn.Softmax(dim=0), z, channels_first=False) == "unknown"
    image = torch.randn(2, 3, 4, 4)  # (N, C, H, W): a conv's units are its channels
    assert module_activation(nn.Softmax(dim=1), image, channels_first=True) == "softmax"
    assert module_activation(nn.Softmax(dim=-1), image, channels_first=True) == "unknown"
    assert module_activation(nn.ReLU6(), z, channels_first=False) == "relu6"


def test_the_numbers_say_unknown_where_two_candidates_fit(torch):
    from nndoctor.backends.torch.model import infer_activation

    z = torch.randn(8, 5)
    zero = torch.zeros(8, 5)
    assert infer_activation(zero, zero.clone()) == "unknown"  # identity, ReLU, GELU, SiLU ...
    assert infer_activation(z.abs(), z.abs().clone()) == "unknown"  # identity and ReLU
    assert infer_activation(z, torch.relu(z)) == "relu"  # mixed signs: ReLU alone fits
    assert infer_activation(z, torch.tanh(z)) == "tanh"
    # changed in place after the layer made it: the same tensor, but not passed on as it was
    h = z.clone()
    assert infer_activation(h, h) == "identity"
    assert infer_activation(h, torch.relu_(h), in_place=True) == "unknown"


def test_a_layer_norm_over_two_axes_is_no_layer_of_identical_units(torch, nn):
    # LayerNorm([nodes, channels]) has a 2-d weight of ones: a scale per element, not ten
    # units that started identical (a healthy traffic-forecasting net got symmetric-units)
    from nndoctor.backends.torch.model import weighted_modules

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 8)
            self.norm = nn.LayerNorm([5, 8])
            self.out = nn.Linear(8, 1)

        def forward(self, x):  # (batch, nodes 5, features 3)
            return self.out(self.norm(torch.relu(self.fc(x)))).squeeze(-1)

    torch.manual_seed(0)
    X = torch.randn(128, 5, 3)
    Y = X.sum(-1) + 0.1 * torch.randn(128, 5)
    assert [n for n, _ in weighted_modules(Net())] == ["fc", "out"]
    report = nndoctor.diagnose(
        Net(), X.numpy(), Y.numpy(), loss=nn.MSELoss(), epochs=20, batch_size=32,
        optimizer=lambda p: torch.optim.Adam(p, lr=0.01), trials=False, progress=False,
    )  # fmt: skip
    assert "symmetric-units" not in [f.code for f in report.findings]


@pytest.mark.parametrize("scale", [1.0, 6.0])
def test_each_candidate_activation_is_read_off_its_own_numbers(torch, scale):
    # each candidate applied by torch, in float32 and float64, is read as itself and as no
    # other (scale 6: the tails, where sigmoid, tanh and softmax saturate)
    from nndoctor.backends.torch.model import _CANDIDATES, infer_activation

    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        z = (torch.randn(64, 12, generator=gen, dtype=torch.float64) * scale).to(dtype)
        for name, f in _CANDIDATES:
            assert infer_activation(z, f(z).clone()) == name, (name, dtype)


def test_an_all_zero_relu_mlp_of_relu_modules_is_symmetric_first_not_affine(torch, nn):
    X, y = regression()

    def net():
        m = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
        for p in m.parameters():
            nn.init.zeros_(p)
        return m

    report = nndoctor.diagnose(
        net(), X, y, loss=nn.MSELoss(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        epochs=5, batch_size=20, trials=False,
    )  # fmt: skip
    model = net()
    doctor = _watch_loop(torch, nn, model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert doctor.activations == ["relu", "identity"]
    for r in (report, doctor.report()):
        assert r.causes[0].code == "symmetric-units"
        assert "missing-nonlinearity" not in r.codes


# --- optimizer and model out of step ---


def _ids(tensors) -> set[int]:
    return {id(t) for t in tensors}


def _shape(p) -> str:
    return "x".join(str(d) for d in p.shape)


def _out_of_step(opt, model):
    """By hand: the tensors ``opt`` holds that ``model`` does not, by place, and the names of
    ``model``'s parameters ``opt`` does not hold."""
    mine = _ids(model.parameters())
    held = _ids(p for g in opt.param_groups for p in g["params"])
    foreign = {
        f"param_groups[{g}][{k}]": p
        for g, group in enumerate(opt.param_groups)
        for k, p in enumerate(group["params"])
        if id(p) not in mine
    }
    return foreign, sorted(n for n, p in model.named_parameters() if id(p) not in held)


def test_a_head_replaced_after_the_watch_began_is_named_by_its_old_name(torch, nn):
    # as under `nndoctor run`, whose watch starts at the first step: the swap comes later
    model = mlp(torch, nn)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    names = {id(p): n for n, p in model.named_parameters()}

    def swap(step):
        if step == 10:
            model[2] = nn.Linear(16, 1)  # the optimizer still holds the old head

    report = _watch_loop(torch, nn, model, opt, before_step=swap).report()
    foreign, unstepped = _out_of_step(opt, model)
    f = report["optimizer-model-mismatch"]
    assert report.causes[0] is f
    assert f.evidence["optimizer_only"] == sorted(
        f"{names[id(p)]} (old, {_shape(p)})" for p in foreign.values()
    ) == ["2.bias (old, 1)", "2.weight (old, 1x16)"]  # fmt: skip
    assert f.evidence["not_in_optimizer"] == unstepped == ["2.bias", "2.weight"]
    assert f.evidence["elements_not_stepped"] == 17  # the new head's 16 weights and its bias


def test_a_body_frozen_and_a_head_replaced_mid_run_keep_the_watch_probing(torch, nn):
    # fine-tuning: after some training the body is frozen and the head replaced, the optimizer
    # left as it was; the parameter the stale-gradient check watched is frozen too, and the
    # watch must go on (it used to stop probing: "cannot register a hook on a tensor that
    # doesn't require gradient"), and see the old head held, the new one not
    model = mlp(torch, nn)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def freeze_and_swap(step):
        if step == 10:
            for p in model.parameters():
                p.requires_grad_(False)
            model[2] = nn.Linear(16, 1)

    watch = _watch_loop(torch, nn, model, opt, before_step=freeze_and_swap)
    report = watch.report()
    assert watch.failed is None
    assert report.causes[0].code == "optimizer-model-mismatch", report.codes
    assert report["optimizer-model-mismatch"].evidence["not_in_optimizer"] == ["2.bias", "2.weight"]


def test_a_head_replaced_before_the_watch_is_named_by_its_place_and_explains_frozen(torch, nn):
    model = mlp(torch, nn)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model[2] = nn.Linear(16, 1)
    foreign, unstepped = _out_of_step(opt, model)
    report = _watch_loop(torch, nn, model, opt).report()
    f = report["optimizer-model-mismatch"]
    assert report.causes[0] is f
    assert f.evidence["optimizer_only"] == sorted(
        f"{place} ({_shape(p)})" for place, p in foreign.items()
    ) == ["param_groups[0][2] (1x16)", "param_groups[0][3] (1)"]  # fmt: skip
    assert f.evidence["not_in_optimizer"] == unstepped
    # the new head requires a gradient that no optimizer applies: frozen-parameters, which
    # the mismatch explains; its gradients, never zeroed by the optimizer, are no stale
    # gradients of the loop (the check watches a parameter the optimizer holds)
    assert report["frozen-parameters"].evidence["not_in_optimizer"] == unstepped
    assert "frozen-parameters" in f.explains
    assert "stale-gradients" not in report.codes


def test_the_model_built_twice_trains_the_copy_the_optimizer_does_not_hold(torch, nn):
    held_model = mlp(torch, nn, seed=0)
    opt = torch.optim.SGD(held_model.parameters(), lr=0.05)
    trained = mlp(torch, nn, seed=1)
    report = _watch_loop(torch, nn, trained, opt).report()
    f = report["optimizer-model-mismatch"]
    assert report.causes[0] is f and f.severity == "error"
    assert f.evidence["not_in_optimizer"] == sorted(n for n, _ in trained.named_parameters())
    assert len(f.evidence["optimizer_only"]) == len(list(held_model.parameters()))
    assert f.evidence["elements_not_stepped"] == sum(p.numel() for p in trained.parameters())


def test_extra_tensors_the_loss_uses_and_an_optimizer_over_a_subset_are_not_a_mismatch(torch, nn):
    # a learnable scale outside the model gets a gradient every step: not stale
    model = mlp(torch, nn)
    scale = torch.ones((), requires_grad=True)
    opt = torch.optim.Adam([*model.parameters(), scale], lr=0.01)
    report = _watch_loop(torch, nn, model, opt, pick=lambda out: scale * out).report()
    assert "optimizer-model-mismatch" not in report.codes
    # an optimizer built over the output layer only holds nothing foreign: frozen-parameters
    model = mlp(torch, nn)
    opt = torch.optim.Adam(model[2].parameters(), lr=0.01)
    report = _watch_loop(torch, nn, model, opt).report()
    assert "optimizer-model-mismatch" not in report.codes
    assert report["frozen-parameters"].evidence["not_in_optimizer"] == ["0.bias", "0.weight"]


# --- parameters the loss does not use ---


def test_parameters_the_loss_does_not_use_are_information_not_a_cut_graph(torch, nn):
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = nn.Linear(5, 16), nn.Linear(16, 1)
            self.aux, self.later = nn.Linear(16, 3), nn.Linear(16, 2)

        def forward(self, x):
            h = torch.relu(self.body(x))
            return self.head(h), self.aux(h)  # self.later never runs; aux is not in the loss

    torch.manual_seed(0)
    model = Heads()
    # the optimizer holds only what the loss uses, as a user who knows would build it
    used = [*model.body.parameters(), *model.head.parameters()]
    opt = torch.optim.Adam(used, lr=0.01)
    report = _watch_loop(torch, nn, model, opt, pick=lambda out: out[0]).report()
    f = report["unused-parameters"]
    assert f.kind == "info" and f.severity == "info"
    assert f.evidence["module_not_run"] == ["later.bias", "later.weight"]
    assert f.evidence["output_not_in_loss"] == ["aux.bias", "aux.weight"]
    n_unused = sum(p.numel() for m in (model.aux, model.later) for p in m.parameters())
    assert f.evidence["share_of_parameters"] == pytest.approx(
        n_unused / sum(p.numel() for p in model.parameters())
    )
    for code in ("detached-graph", "frozen-parameters", "optimizer-model-mismatch"):
        assert code not in report.codes


def test_a_parameter_its_module_declares_and_never_reads_is_information(torch, nn):
    class Sage(nn.Module):
        """A graph layer of a public GraphSAGE: a bias declared and never added."""

        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(0.3 * torch.randn(5, 16))
            self.bias = nn.Parameter(torch.zeros(16))

        def forward(self, x, adj):  # two inputs: the end-of-run forward pass cannot run it
            return torch.relu(adj @ x @ self.W)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.sage, self.out = Sage(), nn.Linear(16, 1)

        def forward(self, x, adj):
            return self.out(self.sage(x, adj))

    torch.manual_seed(0)
    model = Net().double()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    X, y = (torch.as_tensor(a) for a in regression())
    adj = torch.eye(20, dtype=X.dtype)
    loss = nn.MSELoss()
    with nndoctor.watch(model, opt, loss=loss, alerts=False) as doctor:
        for step in range(40):
            lo = (step * 20) % len(X)
            opt.zero_grad()
            loss(model(X[lo : lo + 20], adj), y[lo : lo + 20]).backward()
            opt.step()
    report = doctor.report()
    assert model.sage.bias.grad is None and model.sage.W.grad is not None
    f = report["unused-parameters"]
    assert f.evidence["not_read_by_module"] == ["sage.bias"]
    assert "detached-graph" not in report.codes and "frozen-parameters" not in report.codes


def test_a_graph_cut_inside_forward_or_before_the_loss_stays_a_detached_graph(torch, nn):
    class Cut(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(5, 16), nn.Linear(16, 1)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)).detach())  # fc1's output reaches the loss

    torch.manual_seed(0)
    model = Cut()
    report = _watch_loop(torch, nn, model, torch.optim.SGD(model.parameters(), lr=0.05)).report()
    assert report["detached-graph"].evidence["parameters_without_gradient"] == [
        "fc1.bias",
        "fc1.weight",
    ]
    assert "unused-parameters" not in report.codes

    # the loss computed on a detached output: its graph reaches none of the model's outputs
    model = mlp(torch, nn)
    X, y = (torch.as_tensor(a) for a in regression())
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with nndoctor.watch(model, opt, alerts=False) as doctor:
        for step in range(40):
            opt.zero_grad()
            out = model(X[step * 5 : step * 5 + 5])
            value = nn.functional.mse_loss(out.detach(), y[step * 5 : step * 5 + 5])
            doctor.log(value, out, y[step * 5 : step * 5 + 5])
            value.requires_grad_().backward()
            opt.step()
    report = doctor.report()
    assert report["detached-graph"].evidence["parameters_without_gradient"] == sorted(
        n for n, _ in model.named_parameters()
    )
    assert "unused-parameters" not in report.codes


# --- outputs that mix samples ---


class _Centred:
    """A Linear layer whose outputs are centred over the batch in forward (a custom
    normalisation across samples): ``o_i = W (x_i - mean_j x_j)``."""

    def __new__(cls, torch, nn):
        class Centred(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(5, 2)

            def forward(self, x):
                z = self.fc(x)
                return z - z.mean(dim=0, keepdim=True)

        torch.manual_seed(0)
        return Centred()


def test_batch_mixing_is_the_row_change_two_forward_passes_give(torch, nn):
    from nndoctor.backends.torch.checks import batch_mixing

    model = _Centred(torch, nn)
    x = torch.as_tensor(np.random.default_rng(3).normal(size=(9, 5)))
    # by hand: every even row 2k (k < 4) replaced by the odd row after it; odd rows compared
    x2 = x.clone()
    x2[0:8:2] = x[1:8:2]
    with torch.no_grad():
        o1, o2 = model(x)[1:8:2], model(x2)[1:8:2]
    # the closed form: each output moves by W (mean x - mean x2), the same for every row
    W = model.fc.weight.detach()
    shift = W @ (x.mean(dim=0) - x2.mean(dim=0))
    np.testing.assert_allclose((o2 - o1).numpy(), np.tile(shift.numpy(), (4, 1)), atol=1e-12)
    norms = o1.norm(dim=1)
    change = (o2 - o1).norm(dim=1) / torch.clamp(norms, min=float(norms.mean()))
    m = batch_mixing(model, x)
    assert (m.rows, m.replaced, m.changed_rows) == (4, 4, 4)
    assert m.max_change == pytest.approx(float(change.max()), rel=1e-12)
    assert m.row == 1 + 2 * int(change.argmax())
    # a row-wise model: the same rows give the same outputs, bit for bit
    m = batch_mixing(nn.Sequential(nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 2)), x)
    assert m.changed_rows == 0 and m.max_change == 0.0


def test_batch_mixing_leaves_the_run_as_it_was_and_is_silent_where_it_cannot_tell(torch, nn):
    from nndoctor.backends.torch.checks import batch_mixing

    x = torch.as_tensor(np.random.default_rng(0).normal(size=(16, 5)))
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 1))
    model.train()
    model(x).sum().backward()  # running statistics moved, gradients present
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    state = torch.get_rng_state()
    m = batch_mixing(model, x)  # in eval mode: BatchNorm's running statistics, no dropout
    assert m is not None and m.changed_rows == 0
    assert model.training and all(mod.training for mod in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert torch.equal(state, torch.get_rng_state())
    # silent: batch statistics in eval mode by design, rows that are all the same, a batch
    # pooled into one output
    by_batch = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, track_running_stats=False))
    assert batch_mixing(by_batch, x) is None
    assert batch_mixing(model, torch.zeros(16, 5)) is None

    class Pooled(nn.Module):
        def forward(self, x):
            return x.mean(dim=0, keepdim=True)

    assert batch_mixing(Pooled(), x) is None


def test_an_lstm_reading_the_batch_as_time_mixes_samples_in_diagnose_and_watch(torch, nn):
    from nndoctor.scenarios._torch_modules import LastStepLSTM

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6, 1))
    Y = X[:, -1, :] + 0.5 * X[:, -3, :]

    def swapped():
        torch.manual_seed(0)
        model = LastStepLSTM(1, 8, torch.float64)
        model.lstm = nn.LSTM(1, 8)  # batch_first=False: (batch, time, 1) read as (time, batch, 1)
        return model

    report = nndoctor.diagnose(
        swapped(), X, Y, loss=nn.MSELoss(), optimizer=lambda p: torch.optim.Adam(p, lr=0.01),
        epochs=3, batch_size=20, trials=False,
    )  # fmt: skip
    model = swapped()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    with nndoctor.watch(model, opt, loss=nn.MSELoss(), alerts=False) as doctor:
        for step in range(18):
            lo = (step * 20) % len(Xt)
            opt.zero_grad()
            nn.functional.mse_loss(model(Xt[lo : lo + 20]), Yt[lo : lo + 20]).backward()
            opt.step()
    for r in (report, doctor.report()):
        f = r["batch-mixing"]
        assert f.kind == "cause" and f.evidence["changed_rows"] > 0.9 * f.evidence["kept_rows"]
        assert f.evidence["max_relative_change"] > 10 * f.evidence["tolerance"]


def test_a_softmax_over_the_batch_axis_is_found_in_the_loss_graph(torch):
    from nndoctor.backends.torch.checks import softmax_over_batch

    x = torch.randn(6, 4, requires_grad=True)
    over_batch = -torch.log_softmax(x * 2, 0).gather(1, torch.zeros(6, 1).long()).mean()
    assert softmax_over_batch(over_batch, 6) == ("log_softmax", (6, 4))
    assert softmax_over_batch(over_batch, 5) is None  # not the batch's rows
    over_classes = -torch.log_softmax(x * 2, 1).gather(1, torch.zeros(6, 1).long()).mean()
    assert softmax_over_batch(over_classes, 6) is None
    # dim=-1 of a 3-d tensor is kept as 2**64 - 1, which is 0 modulo 3: read as -1
    assert (
        softmax_over_batch(torch.softmax(torch.randn(6, 5, 3, requires_grad=True), -1).sum(), 6)
        is None
    )
    # a (batch, batch) matrix of pairs, normalised both ways by a contrastive loss: by design
    pairs = x @ x.T
    both = (
        torch.log_softmax(pairs, 0).diagonal().mean()
        + torch.log_softmax(pairs, 1).diagonal().mean()
    )
    assert softmax_over_batch(both, 6) is None


def test_a_loss_that_softmaxes_over_the_batch_is_batch_mixing_in_a_watched_loop(torch, nn):
    F = nn.functional
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(96, 5, generator=g), torch.randint(0, 3, (96,), generator=g)

    def report(dim):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with nndoctor.watch(model, opt, budget=None, alerts=False) as w:
            for _ in range(4):
                for lo in range(0, 96, 16):
                    opt.zero_grad()
                    logp = F.log_softmax(model(X[lo : lo + 16]), dim)
                    (-logp.gather(1, y[lo : lo + 16, None]).mean()).backward()
                    opt.step()
        return w.report()

    f = report(0)["batch-mixing"]
    assert f.kind == "cause" and f.evidence["operation"] == "log_softmax"
    assert f.evidence["shape"] == [16, 3] and f.evidence["samples"] == 16
    assert "batch-mixing" not in report(1).codes


def test_a_model_that_samples_in_its_forward_pass_is_not_told_it_mixes_samples(torch, nn):
    from nndoctor.backends.torch.checks import batch_mixing

    class Sampling(nn.Module):
        """A VAE-like row-wise model: each row draws its own noise, even in eval mode."""

        def __init__(self):
            super().__init__()
            self.mu, self.out = nn.Linear(5, 4), nn.Linear(4, 2)

        def forward(self, x):
            z = self.mu(x)
            return self.out(z + torch.randn_like(z))

    torch.manual_seed(0)
    x, model = torch.randn(16, 5), Sampling()
    before = torch.random.get_rng_state()
    m = batch_mixing(model, x)
    assert m is not None and m.changed_rows == 0 and m.max_change == 0.0
    assert torch.equal(torch.random.get_rng_state(), before)  # the run's draws are its own


# --- an NLL given raw scores: the loss's input read off its graph ---


def _watched_classifier(torch, nn, X, y, head, loss):
    """The report of a 5-16-3 ReLU classifier ending in the modules ``head``, trained on the
    96 rows ``X``, labels ``y`` for 6 epochs of batch 16 under ``watch`` with ``loss``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3), *head)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with nndoctor.watch(model, opt, loss=loss, budget=None, alerts=False) as w:
        for _ in range(6):
            for lo in range(0, 96, 16):
                opt.zero_grad()
                loss(model(X[lo : lo + 16]), y[lo : lo + 16]).backward()
                opt.step()
    return w.report()


def test_an_nll_of_raw_scores_is_found_and_log_probabilities_or_probabilities_are_not(torch, nn):
    from nndoctor.backends.torch.task import nll_not_log_probs, read_loss

    g = torch.Generator().manual_seed(0)
    scores = 3 * torch.randn(8, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (8,), generator=g)
    F = nn.functional
    found = nll_not_log_probs(read_loss(F.nll_loss(scores, y)))
    rows = scores.detach().double().numpy()
    lse = np.log(np.exp(rows).sum(1))  # independent of the code: NumPy on the same numbers
    assert found == pytest.approx((np.median(lse), rows.max()))
    # per-token scores (batch, classes, time): the rows are the tokens'
    per_token = 3 * torch.randn(2, 5, 4, generator=g, requires_grad=True)
    assert nll_not_log_probs(read_loss(F.nll_loss(per_token, torch.zeros(2, 4).long()))) is not None
    for fine in (
        F.nll_loss(F.log_softmax(scores, 1), y),  # the node's own log-softmax
        F.nll_loss(torch.log(F.softmax(scores, 1)), y),  # log-probabilities made otherwise
        F.nll_loss(F.softmax(scores, 1), y),  # probabilities: bounded by -1, it still learns
        F.cross_entropy(scores, y),
    ):
        assert nll_not_log_probs(read_loss(fine)) is None


def test_a_watched_nll_of_raw_logits_is_the_wrong_loss_first(torch, nn):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(96, 5, generator=g), torch.randint(0, 3, (96,), generator=g)

    def report(head):
        return _watched_classifier(torch, nn, X, y, head, nn.NLLLoss())

    sick = report(())
    assert sick.causes[0].code == "wrong-loss-for-targets"
    assert sick.causes[0].evidence["case"] == "nll-on-scores"
    assert sick.summary["final_loss"] < 0  # falls without bound: impossible on log-probabilities
    assert "wrong-loss-for-targets" not in report((nn.LogSoftmax(dim=1),)).codes


def test_a_log_softmax_before_cross_entropy_changes_nothing_and_is_no_double_activation(torch, nn):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(96, 5, generator=g), torch.randint(0, 3, (96,), generator=g)
    F = nn.functional
    # independent of the rule: the same loss and the same gradient, to rounding
    z = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = y[:8]
    (g_raw,) = torch.autograd.grad(F.cross_entropy(z, t), z)
    (g_log,) = torch.autograd.grad(F.cross_entropy(F.log_softmax(z, 1), t), z)
    assert torch.allclose(g_raw, g_log, rtol=0, atol=1e-15)

    def codes(head, loss):
        return _watched_classifier(torch, nn, X, y, head, loss).codes

    assert "double-activation" not in codes((nn.LogSoftmax(dim=1),), nn.CrossEntropyLoss())
    # the same log-softmax, the loss a function the watch reads off the graph alone
    assert "double-activation" not in codes((nn.LogSoftmax(dim=1),), F.cross_entropy)
    assert "double-activation" in codes((nn.Softmax(dim=1),), nn.CrossEntropyLoss())
    # a sigmoid squashes the scores too: on 3 classes the loss cannot go below log(1 + 2 / e)
    best = F.cross_entropy(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]))
    assert float(best) == pytest.approx(np.log(1 + 2 / np.e))
    assert "double-activation" in codes((nn.Sigmoid(),), nn.CrossEntropyLoss())
    assert "double-activation" in codes((nn.Softmax(dim=1), nn.LogSoftmax(dim=1)), F.cross_entropy)


def test_a_sequence_first_model_with_a_custom_loss_is_not_told_it_mixes_samples(torch, nn):
    from nndoctor.backends.torch.checks import batch_mixing, sample_mixing

    torch.manual_seed(0)

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.out = nn.GRU(3, 8), nn.Linear(8, 3)  # (time, batch, features)

        def forward(self, x):
            return self.out(self.gru(x)[0])

    model = Seq()
    x = torch.randn(6, 8, 3, generator=torch.Generator().manual_seed(1))
    # by hand: a later time step reads the earlier ones; a sample never reads another
    with torch.no_grad():
        x2 = x.clone()
        x2[0] = 0.0
        assert not torch.allclose(model(x2)[1], model(x)[1])
        x2 = x.clone()
        x2[:, 0] = 0.0
        assert torch.equal(model(x2)[:, 1], model(x)[:, 1])
    assert batch_mixing(model, x).changed_rows > 0
    assert batch_mixing(model, x, axis=1).changed_rows == 0
    assert sample_mixing(model, x, targets_say=False) is None  # which axis is the batch? untold
    assert sample_mixing(model, x, targets_say=True).changed_rows > 0  # the targets said axis 0

    # in a watched loop with a custom loss (a next-step prediction error summed by hand)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with nndoctor.watch(model, opt, budget=None, alerts=False) as w:
        for _ in range(30):
            opt.zero_grad()
            pred = model(x[:-1])
            ((pred - x[1:]) ** 2).sum().backward()
            opt.step()
    assert "batch-mixing" not in w.report().codes
