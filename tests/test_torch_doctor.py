"""The doctor on torch.nn.Module: diagnose() trains copies, watch() sits in the user's loop.

Every expected number is computed independently here (a plain torch loop, the weights
themselves), never read back from the doctor.
"""

from __future__ import annotations

import numpy as np
import pytest

import nndoctor
from _rows import distinct_rows
from _torch_cases import mlp, regression


def _sgd(lr: float = 0.1):
    import torch

    return lambda p: torch.optim.SGD(p, lr=lr)


def _plain_loop(torch, model, X, y, loss, opt, epochs, batch, zero_grad=True, doctor=None):
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(epochs):
        for lo in range(0, len(Xt), batch):
            if zero_grad:
                opt.zero_grad()
            out = model(Xt[lo : lo + batch])
            value = loss(out, yt[lo : lo + batch])
            value.backward()
            opt.step()


def test_diagnose_leaves_the_model_its_mode_and_the_random_state_alone(torch, nn):
    X, y = regression()
    model = mlp(torch, nn)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    nndoctor.diagnose(
        model, X, y, loss=nn.MSELoss(), optimizer=_sgd(), epochs=3, batch_size=50, trials=False
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert torch.equal(state, torch.get_rng_state())
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_zero_init_seed_net_is_symmetric_with_the_width_counted_from_the_weights(torch, nn):
    X = np.random.default_rng(42).random((40, 64))

    def net():
        m = nn.Sequential(nn.Linear(64, 3), nn.Sigmoid(), nn.Linear(3, 64))
        for p in m.parameters():
            nn.init.zeros_(p)
        return m

    def sse(out, t):
        return 0.5 * ((out - t) ** 2).sum()

    report = nndoctor.diagnose(
        net(), X, None, loss=sse, optimizer=_sgd(0.05), epochs=20, batch_size=1, trials=False
    )
    first = report.causes[0]
    assert first.code == "symmetric-units" and first.evidence["layer"] == "0"
    # the same training, by hand: count the distinct hidden units it ends with
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    _plain_loop(torch, model, X, X, sse, opt, 20, 1)
    W = torch.cat([model[0].weight, model[0].bias[:, None]], dim=1).detach().numpy()
    distinct = distinct_rows(W)
    assert first.evidence["effective_units"] == distinct


def test_stale_gradients_seen_by_diagnose_and_by_watch(torch, nn):
    X, y = regression()
    report = nndoctor.diagnose(
        mlp(torch, nn), X, y, loss=nn.MSELoss(), optimizer=_sgd(), epochs=10, batch_size=20,
        zero_grad=False, trials=False,
    )  # fmt: skip
    assert report.causes[0].code == "stale-gradients"
    model = mlp(torch, nn)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.MSELoss()
    with nndoctor.watch(model, opt, loss=loss) as doctor:
        _plain_loop(torch, model, X, y, loss, opt, 10, 20, zero_grad=False)
    assert doctor.report().causes[0].code == "stale-gradients"
    # a loop that zeroes after the forward pass is right, and is not flagged
    model = mlp(torch, nn)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with nndoctor.watch(model, opt, loss=loss) as doctor:
        Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
        for _ in range(5):
            for lo in range(0, 200, 20):
                value = loss(model(Xt[lo : lo + 20]), yt[lo : lo + 20])
                opt.zero_grad()
                value.backward()
                opt.step()
    assert "stale-gradients" not in doctor.report()


def test_loss_shape_broadcast_is_named_and_its_trial_confirms(torch, nn):
    X, y = regression()
    report = nndoctor.diagnose(
        mlp(torch, nn), X, y[:, 0], loss=nn.MSELoss(), optimizer=_sgd(), epochs=30,
        batch_size=20,
    )  # fmt: skip
    first = report.causes[0]
    assert first.code == "loss-shape-broadcast"
    assert first.evidence["broadcast_shape"] == [20, 20]
    assert first.confirmed is True
    assert first.trial["loss_after"] < 0.5 * first.trial["loss_before"]


def test_double_softmax_and_a_detached_layer(torch, nn):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    labels = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=1))
    report = nndoctor.diagnose(
        model, X, labels, loss=nn.CrossEntropyLoss(), optimizer=_sgd(0.5), epochs=20,
        batch_size=30, trials=False,
    )  # fmt: skip
    assert report.causes[0].code == "double-activation"

    class Cut(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 16), nn.Linear(16, 3)

        def forward(self, x):
            h = torch.relu(self.fc1(x)).detach()  # the bug: fc1 never learns
            return self.fc2(h)

    torch.manual_seed(0)
    report = nndoctor.diagnose(
        Cut(), X, labels, loss=nn.CrossEntropyLoss(), optimizer=_sgd(0.5), epochs=5,
        batch_size=30, trials=False,
    )  # fmt: skip
    f = report["detached-graph"]
    assert f.evidence["parameters_without_gradient"] == ["fc1.bias", "fc1.weight"]


def test_functional_activations_are_read_off_the_numbers(torch, nn):
    from nndoctor.backends.torch import TORCH

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return torch.sigmoid(self.c(torch.tanh(self.b(nn.functional.relu(self.a(x))))))

    X = np.random.default_rng(0).normal(size=(10, 3))
    run = TORCH.prepare(
        Functional(), X, X[:, :2], loss=nn.MSELoss(), optimizer=_sgd(), epochs=1,
        batch_size=None, shuffle=False, seed=0, options={},
    )  # fmt: skip
    kinds = [(s.kind, s.name) for s in TORCH.describe(run)]
    assert kinds == [
        ("dense", "a"), ("relu", "a"), ("dense", "b"), ("tanh", "b"), ("dense", "c"),
        ("sigmoid", "c"),
    ]  # fmt: skip


def test_a_failing_hook_never_breaks_training_and_hooks_go_on_exit(torch, nn, monkeypatch):
    from nndoctor.backends.torch.forward import ForwardTap

    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(ForwardTap, "_statistics", broken)
    X, y = regression()
    model = mlp(torch, nn)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.MSELoss()
    with pytest.raises(KeyError), nndoctor.watch(model, opt, loss=loss) as doctor:
        _plain_loop(torch, model, X, y, loss, opt, 2, 50)
        raise KeyError("the user's own error")
    assert "boom" in doctor.failed
    assert not model._forward_hooks and not model[0]._forward_pre_hooks
    assert not opt._optimizer_step_pre_hooks
    assert torch.Tensor.backward.__module__ == "torch._tensor"


def test_healthy_cnn_with_batchnorm_has_no_error(torch, nn):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 1, 8, 8))
    labels = (X[:, 0, :4].mean(axis=(1, 2)) > X[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(256, 2),
    )  # fmt: skip
    report = nndoctor.diagnose(
        model, X, labels, loss=nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.Adam(p, lr=1e-2), epochs=15, batch_size=32,
        trials=False,
    )  # fmt: skip
    assert not [f.code for f in report.findings if f.severity == "error"]
    assert report.summary["final_loss"] < 0.2


def _loop_parts(torch, nn, model=None):
    """The regression problem as tensors, its MLP (or ``model``), SGD and MSELoss."""
    X, y = regression()
    model = mlp(torch, nn) if model is None else model
    return (
        model,
        torch.optim.SGD(model.parameters(), lr=0.05),
        nn.MSELoss(),
        *(torch.as_tensor(a) for a in (X, y)),
    )


def _watched_loop(
    torch, nn, *, steps, transform=None, functional=False, scheduler=None, model=None, **kw
):
    """A plain loop under ``watch``; returns the watch and the loss values it computed."""
    model, opt, loss, Xt, yt = _loop_parts(torch, nn, model)
    sched = scheduler(opt) if scheduler else None
    seen = []
    with nndoctor.watch(model, opt, loss=None if functional else loss, **kw) as doctor:
        for step in range(steps):
            lo = (step * 20) % len(Xt)
            opt.zero_grad()
            value = loss(model(Xt[lo : lo + 20]), yt[lo : lo + 20])
            seen.append(float(value.detach()))
            (transform(value) if transform else value).backward()
            opt.step()
            if sched is not None:
                sched.step()
    return doctor, np.array(seen)


@pytest.mark.parametrize("functional", [False, True], ids=["loss-module", "functional"])
def test_the_end_state_is_the_final_models_output_not_the_last_probes(torch, nn, functional):
    # a watch's probes thin out: the last one can be hundreds of steps before the end, and its
    # outputs (here the untrained net's, at step 0) are not the end state the rules judge
    doctor, _ = _watched_loop(torch, nn, steps=300, functional=functional, every=1000)
    X, _ = regression()
    with torch.no_grad():
        final = doctor.model(torch.as_tensor(X[:20])).numpy()
        first = mlp(torch, nn)(torch.as_tensor(X[:20])).numpy()  # the same init, untrained
    P = doctor.probes().probe_output
    assert doctor.probes().steps.tolist() == [0]
    assert np.abs(final - first).max() > 0.1  # training moved the outputs
    np.testing.assert_allclose(P, final, rtol=1e-6, atol=1e-9)


def test_the_end_state_of_a_model_returning_a_tuple_is_the_final_models_output(torch, nn):
    from nndoctor.backends.torch.record import final_rows

    # the rows the loss read are redone through whichever tensor of the output held them
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(4, 3, generator=g)
    whole = (torch.cat([rows, torch.randn(2, 3, generator=g)]), torch.randn(6, 5, generator=g))
    now = (torch.randn(6, 3, generator=g), torch.randn(6, 5, generator=g))
    assert torch.equal(final_rows(rows, whole, now), now[0][:4])
    assert final_rows(rows, whole[1:], now[1:]) is rows  # not that tensor's rows: as they were

    class Pair(nn.Module):  # logits, then features (a retrieval net's forward)
        def __init__(self):
            super().__init__()
            self.net = mlp(torch, nn)

        def forward(self, x):
            out = self.net(x)
            return out, torch.tanh(out)

    model, opt, loss, Xt, yt = _loop_parts(torch, nn, Pair())
    with nndoctor.watch(model, opt, loss=loss, every=1000) as doctor:
        for step in range(300):
            lo = (step * 20) % len(Xt)
            opt.zero_grad()
            loss(model(Xt[lo : lo + 20])[0], yt[lo : lo + 20]).backward()
            opt.step()
    with torch.no_grad():
        final = model(Xt[:20])[0].numpy()
    assert doctor.probes().steps.tolist() == [0]  # the only probe: the untrained net
    np.testing.assert_allclose(doctor.probes().probe_output, final, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("transform", "functional"),
    [(None, False), (lambda v: 4.0 * v, False), (None, True)],
    ids=["loss-module", "scaled-before-backward", "functional"],
)
def test_watch_records_every_steps_loss_whatever_is_called_backward(
    torch, nn, transform, functional
):
    # the loss module is hooked on probe steps only; a loop that scales the loss before
    # .backward() (AMP, gradient accumulation) must still get the loss itself on every step,
    # a functional loss the scalar .backward() is called on
    doctor, seen = _watched_loop(torch, nn, steps=70, transform=transform, functional=functional)
    curve = doctor.probes().step_loss
    np.testing.assert_allclose(curve, seen, rtol=1e-6)
    assert not doctor.loss.handle and not doctor._handles  # every hook is gone after exit


def test_watch_reads_the_learning_rate_at_every_step_where_it_changes(torch, nn):
    doctor, _ = _watched_loop(
        torch, nn, steps=40,
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    )  # fmt: skip
    changes = doctor.probes().loop.lr_steps
    # StepLR halves the rate after every 3 optimizer steps: steps 0, 3, 6, ... start a new rate
    expected = [[k, 0.05 * 0.5 ** (k // 3)] for k in range(0, 40, 3)]
    np.testing.assert_allclose(np.array(changes), np.array(expected), rtol=1e-12)


def test_watch_without_budget_probes_on_the_step_count_alone(torch, nn):
    from nndoctor.doctor.recorder import OPEN_START

    first, _ = _watched_loop(torch, nn, steps=100, budget=None)
    again, _ = _watched_loop(torch, nn, steps=100, budget=None)
    steps = first.probes().steps.tolist()
    assert steps == list(range(0, 100, OPEN_START)) == again.probes().steps.tolist()


def test_watch_tells_the_budget_its_probes_own_time(torch, nn, monkeypatch):
    # each probe's own code made to take 5 ms more: the watch hands the schedule at least
    # that as the probes' own time (the floor of the budget's estimate, see
    # test_schedule_doubles_its_interval_until_the_next_probe_fits_the_budget)
    import time

    from nndoctor.backends.torch.record import Recording
    from nndoctor.doctor.recorder import Schedule

    before_step, spend = Recording.probe, Schedule.spend
    told = []

    def slow(self):
        time.sleep(0.005)
        before_step(self)

    def spy(self, *args, own=0.0):
        told.append((args[-1], own))  # (probes so far, their own seconds)
        spend(self, *args, own=own)

    monkeypatch.setattr(Recording, "probe", slow)
    monkeypatch.setattr(Schedule, "spend", spy)
    _watched_loop(torch, nn, steps=40)
    assert len(told) >= 2
    for probes, own in told:
        assert 0.005 * probes <= own < 0.005 * probes + 0.5


def test_watch_does_not_repeat_the_users_own_warnings(torch, nn):
    import warnings

    model, opt, loss, Xt, yt = _loop_parts(torch, nn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own default: once per place in the code
        with nndoctor.watch(model, opt, loss=loss, every=1, alerts=False):
            for _ in range(20):
                opt.zero_grad()
                warnings.warn("the user's own warning", UserWarning, stacklevel=1)
                loss(model(Xt), yt).backward()
                opt.step()
    mine = [w for w in caught if "the user's own warning" in str(w.message)]
    assert len(mine) == 1


def test_watch_without_the_step_pre_hook_records_what_before_step_is_called_for(torch, nn):
    # a framework that steps with a closure (Lightning) calls before_step() itself once the
    # gradients are ready; the watch then registers no optimizer pre-hook of its own
    model, opt, loss, Xt, yt = _loop_parts(torch, nn)
    seen = []
    with nndoctor.watch(model, opt, loss=loss, step_pre_hook=False) as doctor:
        assert not opt._optimizer_step_pre_hooks
        for _ in range(30):
            opt.zero_grad()
            value = loss(model(Xt[:50]), yt[:50])
            value.backward()
            doctor.before_step()
            seen.append(float(value.detach()))
            opt.step()
    probes = doctor.probes()
    np.testing.assert_allclose(probes.step_loss, seen, rtol=1e-12)
    assert doctor.step == 30 and probes.steps.tolist() == [0, 16]  # both probes taken
    assert probes.layers[0].grad_norm[0] > 0  # the gradients were there when it was called


def test_a_watched_loops_summary_counts_steps_not_epochs_it_never_saw(torch, nn):
    from nndoctor.render.plain import summary_line

    doctor, _ = _watched_loop(torch, nn, steps=40)
    report = doctor.report()
    assert report.summary["epochs_known"] is False
    assert summary_line(report).startswith("trained 40 steps") and "epoch" not in summary_line(
        report
    )


def test_an_all_zero_tanh_net_is_symmetric_first_not_a_cut_graph(torch, nn):
    # every weight 0 and tanh(0) = 0: every gradient is exactly 0 but not None, which is
    # identical units, not a graph cut from the loss
    X, y = regression()

    def net():
        m = mlp(torch, nn)
        m[1] = nn.Tanh()
        for p in m.parameters():
            nn.init.zeros_(p)
        return m

    report = nndoctor.diagnose(
        net(), X, y, loss=nn.MSELoss(), optimizer=_sgd(), epochs=5, batch_size=20, trials=False
    )
    doctor, _ = _watched_loop(torch, nn, steps=50, model=net())
    for r in (report, doctor.report()):
        assert r.causes[0].code == "symmetric-units"
        assert "detached-graph" not in r.codes


def test_the_device_path_keeps_losses_as_tensors_until_a_probe_and_reads_them_all(torch, nn):
    # no GPU here: the watch is told its model is on a device, so it takes the path a CUDA
    # run takes (0-d tensors kept, read in one transfer on probe steps only)
    model, opt, loss, Xt, yt = _loop_parts(torch, nn)
    seen, held = [], []
    with nndoctor.watch(model, opt, loss=loss, every=10, alerts=False) as doctor:
        doctor.loss.on_device = True
        for step in range(35):
            opt.zero_grad()
            value = loss(model(Xt[step % 4 * 50 :][:50]), yt[step % 4 * 50 :][:50])
            value.backward()
            opt.step()
            seen.append(float(value.detach()))
            held.append(len(doctor.loss.unsynced))
    assert all(isinstance(v, torch.Tensor) for v in doctor.loss.unsynced)
    assert held[9] == 9 and held[10] == 0  # steps 1-9 read at the probe of step 10, not before
    np.testing.assert_allclose(doctor.probes().step_loss, seen, rtol=1e-12)


def test_watch_update_ratios_are_the_probed_steps_own_updates(torch, nn):
    # the size of a probed step's update is read at the next step (there is no post-hook):
    # it must still be |W_after - W_before| / |W_before| of that step, the last one included
    model, opt, loss, Xt, yt = _loop_parts(torch, nn)
    W = model[0].weight
    expected = {}
    with nndoctor.watch(model, opt, loss=loss, every=5, alerts=False) as doctor:
        for step in range(21):
            opt.zero_grad()
            loss(model(Xt[step % 4 * 50 :][:50]), yt[step % 4 * 50 :][:50]).backward()
            before = W.detach().clone()
            opt.step()
            ratio = torch.linalg.norm(W.detach() - before) / torch.linalg.norm(before)
            expected[step] = float(ratio)
    probes = doctor.probes()
    assert probes.steps.tolist() == [0, 5, 10, 15, 20]
    want = [expected[s] for s in probes.steps.tolist()]
    np.testing.assert_allclose(probes.layers[0].update_ratio, want, rtol=1e-5)


def test_watch_layer_statistics_are_those_of_the_probed_steps_own_forward_pass(torch, nn):
    # per probe: share saturated (tanh inputs beyond 5), share of dead units (ReLU inputs <= 0
    # on every row), RMS of each layer's output and the spread of the predictions, all of the
    # probed step's own batch before its update; computed here from the weights themselves
    from nndoctor.doctor.schema import SATURATION_Z

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)
    )  # fmt: skip
    with torch.no_grad():
        model[0].weight.mul_(6.0)  # some tanh inputs beyond 5
        model[2].bias[:3] = -20.0  # three ReLU units dead on every row
    X, _ = regression()
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(np.random.default_rng(1).normal(size=(len(X), 3)))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = nn.MSELoss()
    expected = {}
    with nndoctor.watch(model, opt, loss=loss, every=4, alerts=False) as doctor:
        for step in range(13):
            xb, yb = Xt[step % 5 * 40 :][:40], yt[step % 5 * 40 :][:40]
            W = [model[i].weight.detach().numpy().copy() for i in (0, 2, 4)]
            b = [model[i].bias.detach().numpy().copy() for i in (0, 2, 4)]
            z0 = xb.numpy() @ W[0].T + b[0]
            z1 = np.tanh(z0) @ W[1].T + b[1]
            z2 = np.maximum(z1, 0) @ W[2].T + b[2]
            expected[step] = {
                "sat": np.mean(np.abs(z0) > SATURATION_Z),
                "dead": np.mean(np.all(z1 <= 0, axis=0)),
                "rms": [np.sqrt(np.mean(z**2)) for z in (z0, z1, z2)],
                "std": np.mean(z2.std(axis=0)),
            }
            opt.zero_grad()
            loss(model(xb), yb).backward()
            opt.step()
    probes = doctor.probes()
    assert probes.steps.tolist() == [0, 4, 8, 12]
    assert [layer.activation for layer in probes.layers] == ["tanh", "relu", "identity"]
    want = [expected[s] for s in probes.steps.tolist()]
    tanh, relu, out = probes.layers
    np.testing.assert_allclose(tanh.frac_saturated, [w["sat"] for w in want], rtol=1e-12)
    assert 0 < tanh.frac_saturated[0] < 1
    np.testing.assert_allclose(relu.frac_dead, [w["dead"] for w in want], rtol=1e-12)
    assert relu.frac_dead[0] >= 3 / 8
    for i, layer in enumerate(probes.layers):
        np.testing.assert_allclose(layer.z_rms, [w["rms"][i] for w in want], rtol=1e-10)
    np.testing.assert_allclose(probes.output_std, [w["std"] for w in want], rtol=1e-10)
    assert np.all(out.frac_dead == 0) and np.all(out.frac_saturated == 0)  # identity


def test_never_zeroed_gradients_are_checked_on_steps_1_and_2_without_a_probe(torch, nn):
    # the stale-gradient check needs no probe: a watch that probes step 0 alone still has
    # its two decided checks, and the parameter it spied on is left without hooks
    counts = {}
    for zero_grad in (True, False):
        model, opt, loss, Xt, yt = _loop_parts(torch, nn)
        with nndoctor.watch(model, opt, loss=loss, every=10**6, alerts=False) as doctor:
            for step in range(6):
                if zero_grad or step == 0:
                    opt.zero_grad()
                loss(model(Xt[step * 20 :][:20]), yt[step * 20 :][:20]).backward()
                opt.step()
        x = doctor.probes().loop
        assert doctor.probes().steps.tolist() == [0]
        counts[zero_grad] = (x.stale_checks, x.decided_stale_checks)
        # a tensor's first hook leaves a call into Python behind when removed: undone
        assert all(p._backward_hooks is None for p in model.parameters())
    assert counts == {True: (0, 2), False: (2, 2)}
    # a hook of the user's own on the spied parameter stays where it is
    model, opt, loss, Xt, yt = _loop_parts(torch, nn)
    seen = []
    smallest = min(model.parameters(), key=lambda p: p.numel())
    smallest.register_hook(lambda g: seen.append(1))
    with nndoctor.watch(model, opt, loss=loss, every=10**6, alerts=False):
        for step in range(4):
            opt.zero_grad()
            loss(model(Xt[step * 20 :][:20]), yt[step * 20 :][:20]).backward()
            opt.step()
    assert len(seen) == 4 and len(smallest._backward_hooks) == 1


def test_to_host_concatenates_norms_and_vectors_of_mixed_dtypes_in_order(torch, nn):
    from nndoctor.backends.torch.statistics import to_host

    a = torch.tensor(1.5, dtype=torch.float32)
    b = torch.tensor([2.0, -3.25], dtype=torch.float64)
    c = torch.tensor(1e300, dtype=torch.float64)  # a float64 value float32 cannot hold
    want = np.concatenate([np.atleast_1d(t.double().numpy()) for t in (a, b, c)])
    np.testing.assert_array_equal(to_host([a, b, c]), want)
    np.testing.assert_array_equal(to_host([a, c]), [1.5, 1e300])  # all 0-d
    assert to_host([]).shape == (0,)


def test_watch_tells_which_parameters_training_changed(torch, nn):
    # the end report's "changed" per parameter: the frozen layer's weights and bias stay as
    # they were (bit for bit), the trained ones moved
    model, opt, loss, Xt, yt = _loop_parts(torch, nn)
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    for p in first.parameters():
        p.requires_grad_(False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with nndoctor.watch(model, opt, loss=loss, alerts=False) as doctor:
        for step in range(4):
            opt.zero_grad()
            loss(model(Xt[step * 20 :][:20]), yt[step * 20 :][:20]).backward()
            opt.step()
    changed = {n: v.changed for n, v in doctor.probes().loop.parameters.items()}
    want = {n: not torch.equal(p, before[n]) for n, p in model.named_parameters()}
    assert changed == want and not all(want.values()) and any(want.values())


def test_an_output_passed_on_as_it_is_reads_as_identity(torch):
    from nndoctor.backends.torch.model import infer_activation

    z = torch.randn(5, 3)
    assert infer_activation(z, z) == "identity"
    assert infer_activation(z, z.clone()) == "identity"  # read off the numbers
    assert infer_activation(z, torch.relu(z)) == "relu"


def test_a_watch_started_at_the_first_step_reads_step_1s_forward_for_activations_only(torch, nn):
    # as under `nndoctor run`: the watch starts at step 0's optimizer step, after its forward
    # pass; step 1's forward pass tells the activations, and no probe reads its statistics
    model, opt, loss, Xt, yt = _loop_parts(torch, nn)
    doctor = None
    for step in range(20):
        opt.zero_grad()
        loss(model(Xt[step * 10 :][:10]), yt[step * 10 :][:10]).backward()
        if step == 0:
            doctor = nndoctor.watch(model, opt, loss=loss, alerts=False)
        opt.step()
        if step == 1:
            assert doctor.activations and doctor.forward.last_stats is None
    doctor.close()
    probes = doctor.probes()
    assert probes.steps.tolist() == [0, 16]
    rms = np.array([layer.z_rms for layer in probes.layers])  # (layers, probes)
    assert np.all(np.isnan(rms[:, 0])) and np.all(np.isfinite(rms[:, 1]))


def test_a_watched_loop_over_class_sorted_batches_is_told_its_data_is_unshuffled(torch, nn):
    # the loop's own order, read off the rows its probed batches held: sorted by class, every
    # batch one class; the run stays poor. The same loop over shuffled batches is not told.
    g = torch.Generator().manual_seed(0)
    C, K = 6, 60
    y = torch.arange(C).repeat_interleave(K)
    X = (torch.randn(C, 8, generator=g) * 2)[y] + torch.randn(C * K, 8, generator=g)

    def report(shuffle):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, C))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        with nndoctor.watch(model, opt, loss=loss_fn, budget=None, alerts=False) as w:
            for _ in range(5):
                order = torch.randperm(C * K, generator=g) if shuffle else torch.arange(C * K)
                for lo in range(0, C * K, 30):
                    i = order[lo : lo + 30]
                    opt.zero_grad()
                    loss_fn(model(X[i]), y[i]).backward()
                    opt.step()
                w.end_epoch()
        return w.report()

    f = report(shuffle=False)["unshuffled-data"]
    assert f.kind == "cause" and f.evidence["target_order_correlation"] > 0.9
    assert f.evidence["last_epoch_batch_loss"] >= 0.5 * f.evidence["baseline"]
    assert "unshuffled-data" not in report(shuffle=True).codes


def test_a_watched_loop_whose_first_batches_hold_one_class_is_not_told_its_targets_are_constant(
    torch, nn
):
    # sorted by class and not shuffled: the rows the watch keeps (the first 1024, from the
    # first probed batches) are all class 0, but the loop's later batches held the others
    from nndoctor.backends.torch.loss import SAMPLE_ROWS

    g = torch.Generator().manual_seed(0)
    y = torch.repeat_interleave(torch.arange(4), torch.tensor([1200, 400, 400, 400]))
    X = torch.randn(4, 6, generator=g)[y] + torch.randn(2400, 6, generator=g)
    assert SAMPLE_ROWS <= 1200  # the kept rows end inside class 0

    def codes(labels):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        loss_fn = nn.CrossEntropyLoss()
        with nndoctor.watch(model, opt, loss=loss_fn, every=1, alerts=False) as w:
            for lo in range(0, 2400, 16):
                opt.zero_grad()
                loss_fn(model(X[lo : lo + 16]), labels[lo : lo + 16]).backward()
                opt.step()
        return w.report().codes

    assert "constant-targets" not in codes(y)
    assert "constant-targets" in codes(torch.zeros_like(y))  # every batch one class: told


def test_a_rate_cut_to_half_a_percent_while_the_loss_still_fell_is_a_collapse(torch, nn):
    """Below 1% of the first rate (not the 0.1% the rule asks otherwise), a cut in the first
    half of the run is a collapse when it froze a loss that was still falling, and nothing
    when the loss had settled before it (a decay at the end of training)."""

    def run(model, opt_fn, cut_at, steps=240):
        X, y = (torch.as_tensor(a) for a in regression(200))
        model = model.double()
        opt = opt_fn(model.parameters())
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < cut_at else 0.005)
        loss, curve = nn.MSELoss(), []
        with nndoctor.watch(model, opt, loss=loss, alerts=False) as doctor:
            for _ in range(steps):  # full batch: the curve has no minibatch noise
                opt.zero_grad()
                value = loss(model(X), y)
                value.backward()
                opt.step()
                sched.step()
                curve.append(value.item())
        return doctor.report(), np.array(curve)

    report, curve = run(mlp(torch, nn), lambda p: torch.optim.SGD(p, lr=0.05), 80)
    assert curve[79] < 0.9 * curve[40] and curve[-1] > 0.95 * curve[80]  # falling, then frozen
    f = report["lr-schedule-collapse"]
    assert f.severity == "warning" and f.evidence["collapsed_at"] == 80
    assert f.evidence["lr_start"] == pytest.approx(0.05)
    torch.manual_seed(0)  # a least-squares fit: its loss settles at the floor, then stays
    report, curve = run(nn.Linear(5, 1), lambda p: torch.optim.Adam(p, lr=0.1), 110)
    assert curve[109] > 0.99 * curve[55]  # settled well before the cut
    assert "lr-schedule-collapse" not in report.codes


def test_a_schedule_that_turns_the_rate_negative_is_named_with_the_step(torch, nn):
    # a linear decay whose total steps are fewer than the loop runs: 1 - step / 40 past step 40
    X, y = (torch.as_tensor(a) for a in regression(200))
    model = mlp(torch, nn).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / 40)
    loss, curve, rates = nn.MSELoss(), [], []
    with nndoctor.watch(model, opt, loss=loss, alerts=False) as doctor:
        for _ in range(80):
            opt.zero_grad()
            value = loss(model(X), y)
            value.backward()
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            curve.append(value.item())
    first = next(i for i, r in enumerate(rates) if r < 0)  # the step it went below 0
    assert curve[-1] > curve[first]  # from there the loss climbs
    f = doctor.report()["lr-schedule-collapse"]
    assert f.severity == "error" and f.evidence["collapsed_at"] == first == 41
    assert f.evidence["lr_min"] == pytest.approx(min(rates))
    assert "negative" in f.title


def test_an_evaluation_in_train_mode_is_named_and_a_pass_in_every_step_is_not(torch, nn):
    X, y = (torch.as_tensor(a) for a in regression(200))

    def run(evaluate, norm=nn.BatchNorm1d):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 16), norm(16), nn.ReLU(), nn.Linear(16, 1))
        model = model.double()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        loss = nn.MSELoss()
        with nndoctor.watch(model, opt, loss=loss, alerts=False) as doctor:
            for step in range(60):
                opt.zero_grad()
                lo = (step * 20) % len(X)
                loss(model(X[lo : lo + 20]), y[lo : lo + 20]).backward()
                opt.step()
                evaluate(model, step)
        return doctor.report()

    def each_epoch(model, step, eval_mode=False):
        if step % 10 == 9:
            model.train(not eval_mode)
            with torch.no_grad():
                for i in range(5):  # small batches, as a batch-1 check of a CNN does
                    model(X[2 * i : 2 * i + 2])
            model.train()

    f = run(each_epoch)["eval-mode-training"]
    assert f.severity == "warning" and f.evidence["train_mode_evals"] == 30
    assert f.evidence["gaps_with_one"] == 6
    assert "eval-mode-training" not in run(lambda m, s: each_epoch(m, s, True)).codes
    # Dropout alone only adds noise to an evaluation's scores: left alone
    assert "eval-mode-training" not in run(each_epoch, lambda n: nn.Dropout(0.1)).codes

    def every_step(model, step):  # a pass without gradients in every step, as a GAN's
        with torch.no_grad():
            model(X[:20])

    assert "eval-mode-training" not in run(every_step).codes


def test_a_kept_output_is_a_copy_that_the_loss_cannot_change_in_place(torch, nn):
    # CenterNet's loss applies hm.sigmoid_() to the model's output: the output kept for the end
    # state must stay the model's, or the end state would be redone as if the loss read it
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 3), torch.rand(8, 2)
    with nndoctor.watch(model, opt, every=1, alerts=False) as doctor:
        out = model(x)
        raw = out.detach().clone()
        loss = ((out.sigmoid_() - y) ** 2).mean()  # in place, after the model ran
        opt.zero_grad()
        loss.backward()
        opt.step()
        kept = doctor.forward.step_out
    assert torch.equal(kept, raw) and not torch.equal(kept, out.detach())
