"""nan-source: where the first NaN or inf came from, through diagnose() and watch().

Each case puts the fault at a known place (a row of the batch, a module, a dtype) and checks
that the finding names that place with numbers computed here independently; the learning rate
is blamed only when the run grew before the NaN; the replay leaves the user's objects alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nndoctor
from nndoctor.doctor.rules import gradients, numerics
from nndoctor.doctor.schema import NanSource
from test_doctor_rules import context, probes, trace

BATCH = 8


def _loop(torch, *args, **kwargs):
    """The report of :func:`_watched`."""
    return _watched(torch, *args, **kwargs).report()


def _watched(torch, model, X, Y, loss, opt, epochs=1, functional=False, every=None, autocast=None):
    """A user's loop around ``nndoctor.watch``: batches of ``BATCH`` in order; the watch."""
    watch = nndoctor.watch(
        model, opt, loss=None if functional else loss, every=every, budget=None, alerts=False
    )
    with watch:
        for _ in range(epochs):
            for lo in range(0, len(X), BATCH):
                opt.zero_grad()
                if autocast is not None:
                    with torch.autocast("cpu", dtype=autocast):
                        out = model(X[lo : lo + BATCH])
                    # the loss in float32, as autocast would run it (torch 2.6's mse_loss
                    # backward rejects a float16 input beside a float32 target)
                    out = out.float()
                else:
                    out = model(X[lo : lo + BATCH])
                value = loss(out, Y[lo : lo + BATCH])
                if functional:
                    watch.log(value, out, Y[lo : lo + BATCH])
                value.backward()
                opt.step()
    return watch


def _diagnose(model, X, Y, loss, opt, epochs=1):
    return nndoctor.diagnose(
        model, X, Y, loss=loss, optimizer=opt, epochs=epochs, batch_size=BATCH, trials=False
    )


def _nan_source(report):
    found = [f for f in report.findings if f.code == "nan-source"]
    assert found, report.codes
    assert report.causes[0].code == "nan-source", report.codes
    assert "lr-too-high" not in report.codes
    return found[0]


# --- a softmax over a fully masked row -------------------------------------------------------


def _tagger(torch, nn):
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(12, 8, dtype=torch.float32)
            self.att = nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float32)
            self.out = nn.Linear(8, 2, dtype=torch.float32)

        def forward(self, x):
            h = self.emb(x)
            a, _ = self.att(h, h, h, key_padding_mask=x == 0)
            return self.out(a.mean(1))

    return Tagger


PAD_ROW = 13  # in the second batch: step 1, row 5 of its batch


def _padded_tokens():
    g = np.random.default_rng(0)
    X = g.integers(1, 12, size=(32, 6))
    X[:, 4:] = 0
    X[PAD_ROW] = 0  # an empty sequence: every key masked
    return X, (X[:, 0] > 6).astype(np.int64)


def test_a_fully_masked_attention_row_is_named_not_the_learning_rate(torch, nn):
    X, Y = _padded_tokens()
    torch.manual_seed(0)
    model = _tagger(torch, nn)()
    adam = lambda p: torch.optim.Adam(p, lr=1e-3)  # noqa: E731
    through_diagnose = _diagnose(model, X, Y, nn.CrossEntropyLoss(), adam, epochs=2)
    opt = adam(model.parameters())
    watch = _watched(
        torch, model, torch.as_tensor(X), torch.as_tensor(Y), nn.CrossEntropyLoss(), opt
    )
    through_watch = watch.report()
    # the live alert says it too
    [alert] = [a for a in watch.alerts.history if a.code == "diverged"]
    assert alert.message.endswith(
        "first non-finite: a softmax over a fully masked row (multi_head_attention_forward in "
        "module att (MultiheadAttention))"
    )
    for report in (through_diagnose, through_watch):
        f = _nan_source(report)
        e = f.evidence
        assert e["kind"] == "masked-softmax" and e["operation"] == "multi_head_attention_forward"
        assert e["module"] == "att" and e["module_type"] == "MultiheadAttention"
        assert e["mask"] == "key_padding_mask"
        # the row put in: the step whose batch holds it, its place in that batch
        assert e["step"] == PAD_ROW // BATCH and e["batch_rows"] == [PAD_ROW % BATCH]
        assert e["masked_rows"] == 1
        assert f.title.startswith(f"the NaN at step {PAD_ROW // BATCH} comes from a softmax")
        assert "unmasked" in f.fix


def test_a_hand_written_masked_softmax_is_named_with_its_module(torch, nn):
    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(4, 4, dtype=torch.float32)

        def forward(self, x):  # (batch, 5, 4) with feature 0 of a padded position at 0
            scores = self.q(x) @ x.transpose(1, 2)  # (batch, 5, 5)
            scores = scores.masked_fill((x[:, None, :, 0] == 0), float("-inf"))
            return (scores.softmax(-1) @ x).mean(1)  # (batch, 4)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Attend()
            self.head = nn.Linear(4, 1, dtype=torch.float32)

        def forward(self, x):
            return self.head(self.block(x))

    g = np.random.default_rng(1)
    X = g.normal(size=(16, 5, 4)).astype(np.float32) + 3.0
    X[11, :, 0] = 0.0  # sample 11 (step 1, row 3): every position padded
    Y = g.normal(size=(16, 1))
    torch.manual_seed(0)
    report = _diagnose(Net(), X, Y, nn.MSELoss(), lambda p: torch.optim.SGD(p, lr=1e-4))
    e = _nan_source(report).evidence
    assert (e["kind"], e["operation"], e["module"]) == ("masked-softmax", "softmax", "block")
    # rows of the (batch, query, key) scores masked whole: the 5 queries of sample 3
    assert e["step"] == 1 and e["batch_rows"] == [3] and e["masked_rows"] == 5
    assert e["first_row"] == [3, 0] and e["row_length"] == 5


# --- a log of 0 in a hand-written loss -------------------------------------------------------


def focal(z, y):
    """A binary focal loss that takes the logs of sigmoid outputs as they are."""
    p = torch_sigmoid(z)
    return -(y * (1 - p) ** 2 * p.log() + (1 - y) * p**2 * (1 - p).log()).mean()


def torch_sigmoid(z):
    return 1 / (1 + (-z).exp())


BIG_ROW = 20  # step 2, row 4 of its batch


def _focal_case(torch, nn):
    g = np.random.default_rng(2)
    X = g.normal(size=(32, 4)).astype(np.float32)
    X[BIG_ROW] = 40.0  # a reading off the scale
    Y = (X[:, :1] > 0).astype(np.float32)
    Y[BIG_ROW] = 1.0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 1, dtype=torch.float32))
    with torch.no_grad():
        model[0].weight.fill_(0.5)
        model[0].bias.zero_()
    return model, X, Y


def test_a_log_of_zero_in_a_functional_loss_is_named(torch, nn):
    model, X, Y = _focal_case(torch, nn)
    sgd = lambda p: torch.optim.SGD(p, lr=1e-3)  # noqa: E731
    # the probabilities of step 2's batch, from a plain loop of the two steps before it
    twin = nn.Sequential(nn.Linear(4, 1, dtype=torch.float32))
    twin.load_state_dict(model.state_dict())
    opt = sgd(twin.parameters())
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    for lo in (0, BATCH):
        opt.zero_grad()
        focal(twin(Xt[lo : lo + BATCH]), Yt[lo : lo + BATCH]).backward()
        opt.step()
    with torch.no_grad():
        p = torch_sigmoid(twin(Xt[2 * BATCH : 3 * BATCH]))
    zeros = int((1 - p == 0).sum())
    assert zeros == 1 and bool(1 - p[BIG_ROW % BATCH, 0] == 0)

    through_diagnose = _diagnose(model, X, Y, focal, sgd)
    through_watch = _loop(torch, model, Xt, Yt, focal, sgd(model.parameters()), functional=True)
    for report in (through_diagnose, through_watch):
        f = _nan_source(report)
        e = f.evidence
        assert (e["kind"], e["operation"], e["module"]) == ("log-of-zero", "log", "loss")
        assert e["step"] == 2 and e["zeros"] == zeros
        assert e["first_index"] == [BIG_ROW % BATCH, 0]
        assert "logsigmoid" in f.fix


# --- a division by 0 -------------------------------------------------------------------------


CONST_ROW = 9  # step 1, row 1 of its batch


def _standardise(nn):
    class Standardise(nn.Module):
        def forward(self, x):  # no eps: a constant row divides by a std of 0
            return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)

    return Standardise


def test_a_division_by_zero_is_named_with_its_module(torch, nn):
    g = np.random.default_rng(3)
    X = g.normal(size=(24, 5))
    X[CONST_ROW] = 1.5
    Y = X.sum(1, keepdims=True)
    torch.manual_seed(0)
    model = nn.Sequential(_standardise(nn)(), nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
    sgd = lambda p: torch.optim.SGD(p, lr=0.01)  # noqa: E731
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    std = Xt[BATCH : 2 * BATCH].std(1)  # the divisors of step 1
    for report in (
        _diagnose(model, X, Y, nn.MSELoss(), sgd),
        _loop(torch, model, Xt, Yt, nn.MSELoss(), sgd(model.parameters())),
    ):
        e = _nan_source(report).evidence
        assert (e["kind"], e["operation"]) == ("division-by-zero", "div")
        assert (e["module"], e["module_type"]) == ("0", "Standardise")
        assert e["step"] == 1 and e["zero_divisors"] == int((std == 0).sum()) == 1
        assert e["first_index"] == [CONST_ROW % BATCH, 0]
        assert e["zero_over_zero"] == 5  # every entry of the row minus its mean is 0


# --- a float16 overflow ----------------------------------------------------------------------


def test_a_float16_overflow_is_named_with_the_module_and_its_dtype(torch, nn):
    g = np.random.default_rng(4)
    X = np.abs(g.normal(size=(16, 8))) * 4e3
    X[:BATCH] /= 1000.0  # step 0 is finite, step 1 overflows
    Y = g.normal(size=(16, 1))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1)).to(torch.float16)
    with torch.no_grad():  # positive weights: every first-layer output grows with the inputs
        model[0].weight.uniform_(2.0, 6.0, generator=torch.Generator().manual_seed(0))
    W0 = model[0].weight.detach().double()
    b0 = model[0].bias.detach().double()
    # step 1's first layer in float64: beyond float16's largest number, 65504
    exact = torch.as_tensor(X[BATCH:]) @ W0.T + b0
    assert exact.max() > torch.finfo(torch.float16).max
    f = _nan_source(_diagnose(model, X, Y, nn.MSELoss(), lambda p: torch.optim.SGD(p, lr=1e-6)))
    e = f.evidence
    assert (e["kind"], e["operation"], e["module"], e["module_type"]) == (
        "overflow", "linear", "0", "Linear"
    )  # fmt: skip
    assert e["dtype"] == "float16" and e["dtype_max"] == 65504.0 and e["step"] == 1
    x16 = torch.as_tensor(X[BATCH:], dtype=torch.float16).double()
    assert e["max_abs_input"] == pytest.approx(float(x16.abs().max()))
    assert "float16 overflow" in f.title and "float32" in f.fix


def test_an_autocast_float16_overflow_is_replayed_under_autocast(torch, nn):
    # float32 weights, the forward pass under CPU autocast to float16: the watch replays the
    # step in the same autocast region, so the overflow shows in float16 as it did
    g = np.random.default_rng(5)
    X = torch.as_tensor(np.abs(g.normal(size=(16, 8))) * 4e3, dtype=torch.float32)
    X[:BATCH] /= 1000.0
    Y = torch.as_tensor(g.normal(size=(16, 1)), dtype=torch.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4, dtype=torch.float32), nn.ReLU(),
                          nn.Linear(4, 1, dtype=torch.float32))  # fmt: skip
    with torch.no_grad():
        model[0].weight.uniform_(2.0, 6.0, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    report = _loop(torch, model, X, Y, nn.MSELoss(), opt, autocast=torch.float16)
    e = _nan_source(report).evidence
    assert (e["kind"], e["module"], e["dtype"], e["step"]) == ("overflow", "0", "float16", 1)


# --- a gradient that is not finite under a finite loss ----------------------------------------


def _distances(nn):
    class Spread(nn.Module):
        """Mean distance between the rows' embeddings: sqrt of 0 on the diagonal."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(3, 2)

        def forward(self, x):
            z = self.embed(x)  # (batch, 2)
            d = ((z[:, None] - z[None]) ** 2).sum(-1).sqrt()  # (batch, batch)
            return d.mean(1, keepdim=True)

    return Spread


def test_an_infinite_gradient_of_sqrt_at_zero_is_named_by_its_backward_step(torch, nn):
    g = np.random.default_rng(6)
    X, Y = g.normal(size=(16, 3)), g.normal(size=(16, 1))
    torch.manual_seed(0)
    model = _distances(nn)()
    sgd = lambda p: torch.optim.SGD(p, lr=0.01)  # noqa: E731
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    # the loss of step 0 is finite, its gradient is not (d sqrt(x)/dx at x = 0)
    copy_ = _distances(nn)()
    copy_.load_state_dict(model.state_dict())
    value = nn.MSELoss()(copy_(Xt[:BATCH]), Yt[:BATCH])
    value.backward()
    assert math.isfinite(float(value.detach()))
    assert not torch.isfinite(copy_.embed.weight.grad).all()
    for report in (
        _diagnose(model, X, Y, nn.MSELoss(), sgd),  # replays step 0 from step 1's NaN
        _loop(torch, model, Xt, Yt, nn.MSELoss(), sgd(model.parameters()), every=1),
    ):
        e = _nan_source(report).evidence
        assert (e["kind"], e["operation"], e["step"]) == ("backward", "SqrtBackward0", 0)
        assert e["module"] == "" and e["module_type"] == "Spread"
        assert e["saved"] == "result" and e["saved_zeros"] == BATCH  # the diagonal


# --- the learning rate, and a healthy run ----------------------------------------------------


def test_a_regression_blown_up_by_lr_10_is_still_the_learning_rate(torch, nn):
    g = np.random.default_rng(7)
    X = g.normal(size=(64, 3))
    Y = X @ np.array([[1.0], [-2.0], [0.5]])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    report = nndoctor.diagnose(
        model, X, Y, loss=nn.MSELoss(), optimizer=lambda p: torch.optim.SGD(p, lr=10.0),
        epochs=20, batch_size=16, trials=False,
    )  # fmt: skip
    assert report.causes[0].code == "lr-too-high", report.codes
    assert "nan-source" not in report.codes
    title = report["lr-too-high"].title
    assert "became non-finite" in title and "grew" in title


def test_a_healthy_run_has_no_nan_source(torch, nn):
    g = np.random.default_rng(8)
    X = g.normal(size=(64, 3))
    Y = np.tanh(X @ np.array([[1.0], [-2.0], [0.5]]))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    sgd = lambda p: torch.optim.SGD(p, lr=0.05)  # noqa: E731
    report = _diagnose(model, X, Y, nn.MSELoss(), sgd, epochs=5)
    watched = _loop(torch, model, torch.as_tensor(X), torch.as_tensor(Y), nn.MSELoss(),
                    sgd(model.parameters()), epochs=5)  # fmt: skip
    for r in (report, watched):
        assert "nan-source" not in r.codes and "diverged" not in r.codes


def test_a_nan_computed_in_the_step_is_not_blamed_on_the_data(torch, nn):
    # a recurrent state fed back from the model's last call carries the NaN of an earlier
    # computation of the step: not the batch, and not located by replaying this call
    from nndoctor.backends.torch.nan_replay import check_data

    w = torch.ones(3, requires_grad=True)
    state = w * torch.tensor([1.0, math.nan, 2.0])
    batch = torch.tensor([[1.0, math.nan]])
    data = check_data((batch,), {}, None, 4)
    assert (data.kind, data.values["argument"], data.values["count"]) == (
        "non-finite-data",
        "input 0",
        1,
    )
    computed = check_data((torch.zeros(1, 2), state), {}, None, 4)
    assert (computed.kind, computed.located, computed.values["argument"]) == (
        "not-reproduced",
        False,
        "input 1",
    )


def test_a_nan_another_module_computed_is_read_off_its_graph_not_the_model(torch, nn):
    # a graph learner computes the model's input in the step: its pow(degree, -0.5) of a
    # degree of 0 is the source; a state that ran through the model itself is left alone
    from nndoctor.backends.torch.nan_replay import check_data

    learner, model = nn.Linear(3, 3, bias=False), nn.Linear(3, 2)
    x = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    h = learner(x)
    degree = h.abs().sum(1)
    adj = degree.pow(-0.5)[:, None] * h  # the second row: inf * 0
    assert bool(torch.isnan(adj[1]).all()) and bool(torch.isfinite(adj[0]).all())
    own = frozenset(id(p) for p in model.parameters())
    found = check_data((adj,), {}, None, 0, own)
    assert (found.kind, found.phase, found.op, found.module) == (
        "division-by-zero",
        "input",
        "pow",
        "input 0",
    )
    assert found.values["zero_divisors"] == int((degree == 0).sum()) == 1
    state = model(adj)
    assert check_data((x, state), {}, None, 0, own).kind == "not-reproduced"


# --- the user's objects ----------------------------------------------------------------------


def test_the_replay_leaves_the_model_the_optimizer_and_the_random_state_alone(torch, nn):
    X, Y = _padded_tokens()
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)

    def build():
        torch.manual_seed(0)
        model = nn.Sequential(
            _tagger(torch, nn)(), nn.Dropout(0.3), nn.BatchNorm1d(2, dtype=torch.float32)
        )
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(watched):
        model, opt = build()
        torch.manual_seed(1)
        watch = nndoctor.watch(model, opt, alerts=False) if watched else None
        for lo in (0, BATCH):  # step 1 is the NaN: the replay runs in its pre-step hook
            opt.zero_grad()
            nn.CrossEntropyLoss()(model(Xt[lo : lo + BATCH]), Yt[lo : lo + BATCH]).backward()
            opt.step()
        found = watch.nan_source if watch is not None else None
        if watch is not None:
            watch.close()
        return model, opt, torch.get_rng_state(), found

    plain, opt_plain, rng_plain, _ = run(False)
    model, opt, rng, found = run(True)
    assert found is not None and found.kind == "masked-softmax"
    assert torch.equal(rng, rng_plain)  # the replay's dropout drew from a forked state
    assert model.training and plain.training
    for (k, a), (_, b) in zip(model.state_dict().items(), plain.state_dict().items(), strict=True):
        assert torch.equal(a.nan_to_num(), b.nan_to_num()), k  # weights and BatchNorm buffers
    sa, sb = opt.state_dict()["state"], opt_plain.state_dict()["state"]
    for i in sa:
        for key in sa[i]:
            assert torch.equal(sa[i][key].nan_to_num(), sb[i][key].nan_to_num()), (i, key)
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


# --- the rules, on probes made here ----------------------------------------------------------


def _diverged_probes(losses, weight_norms, source=None):
    layers = [trace(weight_norm=np.asarray(weight_norms, dtype=float), m=len(weight_norms)),
              trace(1, 3, "identity", m=len(weight_norms))]  # fmt: skip
    p = probes(layers, diverged={"step": len(losses), "epoch": 0, "layer": None})
    p.step_loss = np.r_[losses, np.nan]
    p.steps = np.arange(len(weight_norms)) * max(1, len(losses) // len(weight_norms))
    p.nan_source = source
    return p


def test_growth_before_the_nan_is_a_rise_of_the_loss_or_of_the_weights():
    flat = np.full(40, 2.0) + 0.3 * np.sin(np.arange(40))  # minibatch noise, no trend
    assert not numerics.growth_before_nan(_diverged_probes(flat, np.ones(5)))["grew"]
    rising = np.geomspace(1.0, 50.0, 40)
    g = numerics.growth_before_nan(_diverged_probes(rising, np.ones(5)))
    assert g["grew"] and g["loss_rise"] > numerics.NAN_LOSS_ROSE
    # the weights grew 20-fold under a flat loss
    grown = numerics.growth_before_nan(_diverged_probes(flat, np.geomspace(1, 20, 5)))
    assert grown["grew"] and grown["weight_growth"] == pytest.approx(20.0)
    # two noisy steps are no trend; three rising ones that double are
    assert not numerics.growth_before_nan(_diverged_probes([0.48, 0.76], [1.0]))["grew"]
    assert numerics.growth_before_nan(_diverged_probes([2.3, 8.0, 20.0], [1.0]))["grew"]


def test_lr_too_high_on_a_nan_only_when_the_run_grew_before_it():
    masked = NanSource("masked-softmax", 12, op="softmax", module="att",
                       values={"masked_rows": 1, "batch_rows": [3]})  # fmt: skip
    calm = _diverged_probes(np.linspace(2.0, 1.0, 12), np.ones(4), masked)
    assert gradients.lr_too_high(calm, context(lr=1e-3)) == []
    [f] = numerics.nan_source(calm, context(lr=1e-3))
    assert f.evidence["batch_rows"] == [3] and f.severity == "error"
    overflow = NanSource("overflow", 12, op="linear", module="2", dtype="float32",
                         values={"max_abs_input": 1e30, "dtype_max": 3.4e38})  # fmt: skip
    blown = _diverged_probes(np.geomspace(1.0, 1e30, 12), np.geomspace(1, 1e6, 4), overflow)
    [g] = gradients.lr_too_high(blown, context(lr=10.0))
    assert "grew" in g.title and "overflow of float32 (linear in module 2)" in g.title
    assert numerics.nan_source(blown, context(lr=10.0)) == []  # the learning rate's
    # a fully masked row makes a NaN whatever came before
    masked_blown = _diverged_probes(np.geomspace(1.0, 1e30, 12), np.ones(4), masked)
    assert numerics.nan_source(masked_blown, context())[0].code == "nan-source"


def test_lr_too_high_reads_a_negative_loss_rise_as_a_difference():
    # an NLL of probabilities falling from -13.7 to -334 is improving, not rising 1.5-fold
    falling = probes(epoch_loss=np.linspace(-13.7, -334.5, 50))
    assert gradients.lr_too_high(falling, context()) == []
    rising = probes(epoch_loss=np.r_[np.linspace(-10.0, -1.0, 25), np.full(25, -1.0)])
    [f] = gradients.lr_too_high(rising, context())
    assert f.evidence["loss_grew"]
    assert numerics.relative_rise(-10.0, -1.0) == pytest.approx(0.9)
    assert numerics.relative_rise(2.0, 3.0) == pytest.approx(0.5)


def test_the_inputs_are_kept_through_the_class_call_and_its_handles_restore_it(torch, nn):
    from nndoctor.backends.torch.nan_tap import listen_calls

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def forward(self, x, scale=1.0):
            return self.fc(x) * scale

    a, b, other = Net(), Net(), Net()
    seen: list = []
    ha = listen_calls(a, lambda args, kwargs: seen.append(("a", args[0].shape, kwargs)))
    hb = listen_calls(b, lambda args, kwargs: seen.append(("b", args[0].shape, kwargs)))
    assert "__call__" in Net.__dict__ and not a._forward_pre_hooks  # no hook: the fast path
    x = torch.ones(3, 2)
    a(x, scale=2.0), other(x), b(x[:1])
    assert seen == [("a", (3, 2), {"scale": 2.0}), ("b", (1, 2), {})]
    ha.remove()
    ha.remove()  # twice: nothing
    assert "__call__" in Net.__dict__  # b still listens
    hb.remove()
    assert "__call__" not in Net.__dict__ and Net.__call__ is nn.Module.__call__
