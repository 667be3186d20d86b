"""Bad input is refused at the door (issue 24): one sentence naming what is wrong, raised by
nndoctor before any training, never a torch traceback from inside nndoctor."""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
import pytest

import nndoctor

SRC = str(Path(nndoctor.__file__).parent)


def _refused(exc_info: pytest.ExceptionInfo, *words: str) -> str:
    """The message of a door refusal: one line, raised by nndoctor's own code with no torch
    error chained to it, naming each of ``words``."""
    exc = exc_info.value
    message = str(exc)
    assert "\n" not in message, message
    chained = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    assert chained is None, f"{chained!r} is chained to it"
    last = traceback.extract_tb(exc.__traceback__)[-1]
    assert last.filename.startswith(SRC), f"raised from {last.filename}"
    for w in words:
        assert w in message, f"{w!r} not in {message!r}"
    return message


@pytest.fixture()
def no_training(monkeypatch):
    """diagnose must refuse in ``prepare``: reaching the pipeline fails the test."""

    def started(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("nndoctor.diagnosis.examine", started)


def _mlp(torch, nn, inputs=4, outputs=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(inputs, 8), nn.ReLU(), nn.Linear(8, outputs))


def _data(n=32, d=4, classes=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)), rng.integers(0, classes, n)


def _diagnose(torch, model, X, Y, loss, **kw):
    return nndoctor.diagnose(
        model, X, Y, loss=loss, optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=1,
        trials=False, **kw,
    )  # fmt: skip


def test_x_with_the_wrong_feature_count_names_the_layer_and_both_widths(torch, nn, no_training):
    X, Y = _data(d=5)
    with pytest.raises(ValueError) as info:
        _diagnose(torch, _mlp(torch, nn), X, Y, nn.CrossEntropyLoss())
    _refused(info, "layer '0' (Linear) takes 4 input features", "got input of shape (8, 5)")


def test_a_layer_deep_inside_is_named_by_its_qualified_name(torch, nn, no_training):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten())
            self.head = nn.Linear(99, 3)  # a Conv1d on length 10 gives 4 * 8 = 32 features

        def forward(self, x):
            return self.head(self.body(x))

    X = np.random.default_rng(0).normal(size=(16, 2, 10))
    with pytest.raises(ValueError) as info:
        _diagnose(torch, Net(), X, np.zeros(16, dtype=int), nn.CrossEntropyLoss())
    _refused(info, "layer 'head' (Linear) takes 99 input features", "shape (8, 32)")


def test_a_failure_in_the_models_own_code_names_the_line_and_the_last_layer(torch, nn, no_training):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 6)

        def forward(self, x):
            return self.a(x).view(-1, 5)  # 8 rows of 6 do not reshape into rows of 5

    X, Y = _data()
    with pytest.raises(ValueError) as info:
        _diagnose(torch, Net(), X, Y, nn.CrossEntropyLoss())
    _refused(
        info,
        "the model's own forward code (Net) after layer 'a' gave shape (8, 6)",
        "is invalid for input of size 48",
        f"(at {Path(__file__).name}:",
    )


def test_integer_inputs_to_a_linear_layer_name_both_dtypes(torch, nn, no_training):
    X, Y = _data()
    with pytest.raises(ValueError) as info:
        _diagnose(torch, _mlp(torch, nn), X.astype(int), Y, nn.CrossEntropyLoss())
    _refused(info, "layer '0' (Linear) takes float64 inputs, got int64")


def test_a_model_on_the_meta_device_is_refused_by_name(torch, nn, no_training):
    with torch.device("meta"):
        model = _mlp(torch, nn)
    X, Y = _data()
    with pytest.raises(ValueError) as info:
        _diagnose(torch, model, X, Y, nn.CrossEntropyLoss())
    _refused(info, "4 of the model's 4 parameters ('0.weight' first) are on the meta device")


def test_a_model_partly_on_the_meta_device_names_the_first_such_parameter(torch, nn, no_training):
    model = _mlp(torch, nn)
    model[2].to("meta")
    X, Y = _data()
    with pytest.raises(ValueError) as info:
        _diagnose(torch, model, X, Y, nn.CrossEntropyLoss())
    _refused(info, "2 of the model's 4 parameters ('2.weight' first) are on the meta device")


def test_parameters_on_several_devices_are_refused_unless_a_device_is_given(torch, nn):
    from types import SimpleNamespace

    from nndoctor.backends.torch.validate import check_device

    class Split:  # stand-in parameters: the test machine has no second device
        def named_parameters(self):
            for name, device in (("0.weight", "cpu"), ("1.weight", "cuda:0")):
                dev = torch.device(device)
                yield name, SimpleNamespace(is_meta=False, device=dev, dtype=torch.float64)

    with pytest.raises(ValueError) as info:
        check_device(Split(), None)
    _refused(info, "the model's parameters are on several devices (cpu, cuda:0)", "device=")
    assert check_device(Split(), "cpu")[0] == torch.device("cpu")


def test_a_device_this_machine_lacks_is_refused_by_name(torch, nn, no_training):
    X, Y = _data()
    with pytest.raises(ValueError) as info:
        _diagnose(torch, _mlp(torch, nn), X, Y, nn.CrossEntropyLoss(), device="nonsense")
    _refused(info, "device 'nonsense' cannot be used here")


def test_a_dataloader_with_y_as_well_is_refused(torch, nn, no_training):
    X, Y = _data()
    data = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(Y))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    with pytest.raises(TypeError) as info:
        _diagnose(torch, _mlp(torch, nn), loader, Y, nn.CrossEntropyLoss())
    _refused(info, "X is a DataLoader", "pass Y=None")


def test_whole_number_float_labels_with_cross_entropy_say_to_pass_integers(torch, nn, no_training):
    X, Y = _data()
    for labels in (Y.astype(float), torch.as_tensor(Y, dtype=torch.float32)):
        with pytest.raises(TypeError) as info:
            _diagnose(torch, _mlp(torch, nn), X, labels, nn.CrossEntropyLoss())
        _refused(info, "CrossEntropyLoss takes integer class labels", "pass Y.long()")


def test_fractional_labels_with_cross_entropy_name_the_first_one(torch, nn, no_training):
    X, Y = _data()
    labels = Y.astype(float)
    labels[5] = 0.5
    with pytest.raises(ValueError) as info:
        _diagnose(torch, _mlp(torch, nn), X, labels, nn.CrossEntropyLoss())
    _refused(info, "Y[5] = 0.5 is not a whole number", "shaped like the output, (n, 3)")


def test_labels_out_of_range_name_the_first_and_the_output_width(torch, nn, no_training):
    X, Y = _data()
    labels = Y.copy()
    labels[7] = 3
    with pytest.raises(ValueError) as info:
        _diagnose(torch, _mlp(torch, nn), X, labels, nn.NLLLoss())
    _refused(info, "NLLLoss label Y[7] = 3 is out of range for a model with 3 outputs")
    with pytest.raises(ValueError) as info:  # 1..C instead of 0..C-1
        _diagnose(torch, _mlp(torch, nn), X, Y + 1, nn.CrossEntropyLoss())
    _refused(info, "(labels must be in 0..2); subtract 1 from Y")


def test_labels_equal_to_ignore_index_are_left_out_not_miscounted(torch, nn):
    X, Y = _data()
    labels = Y.copy()
    labels[[3, 9]] = -100  # CrossEntropyLoss's ignore_index: those rows count for nothing
    report = nndoctor.diagnose(
        _mlp(torch, nn), X, labels, loss=nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=2, trials=False, progress=False,
    )  # fmt: skip
    kept = labels[labels != -100]
    shares = np.bincount(kept) / kept.size
    entropy = float(-(shares[shares > 0] * np.log(shares[shares > 0])).sum())
    assert report.bounds["baseline"] == pytest.approx(entropy, rel=1e-9)


def _prepare(torch, model, X, Y, loss):
    from nndoctor.backends.torch import TORCH

    return TORCH.prepare(
        model, X, Y, loss=loss, optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=1,
        batch_size=None, shuffle=False, seed=0, options={},
    )  # fmt: skip


def test_class_probabilities_shaped_like_the_output_pass_the_door(torch, nn):
    X, Y = _data()
    probabilities = np.eye(3)[Y] * 0.8 + 0.2 / 3  # soft labels, which CrossEntropyLoss takes
    run = _prepare(torch, _mlp(torch, nn), X, probabilities, nn.CrossEntropyLoss())
    assert np.array_equal(run.Y, probabilities)


def test_targets_the_loss_cannot_compare_name_the_loss_and_both_shapes(torch, nn, no_training):
    X = _data()[0]
    Y = np.random.default_rng(1).normal(size=(32, 3))
    with pytest.raises(ValueError) as info:
        _diagnose(torch, _mlp(torch, nn, outputs=2), X, Y, nn.MSELoss())
    _refused(info, "the loss (MSELoss) fails on the model's output of shape (8, 2) and Y's rows "
             "of shape (8, 3)")  # fmt: skip


def test_a_loss_that_returns_one_value_per_sample_is_refused(torch, nn, no_training):
    X, Y = _data()
    with pytest.raises(ValueError) as info:
        _diagnose(torch, _mlp(torch, nn), X, Y, nn.CrossEntropyLoss(reduction="none"))
    _refused(info, "must return one number (a scalar tensor), got a tensor of shape (8,)")


def test_a_loss_class_without_parentheses_gets_the_hint(torch, nn, no_training):
    X, Y = _data()
    with pytest.raises(TypeError) as info:
        _diagnose(torch, _mlp(torch, nn), X, Y, nn.CrossEntropyLoss)
    _refused(info, "write loss=CrossEntropyLoss() with parentheses")


def test_nan_in_x_is_refused_by_position(torch, nn, no_training):
    X, Y = _data()
    X[4, 2] = np.nan
    for data in (X, torch.as_tensor(X)):
        with pytest.raises(ValueError) as info:
            _diagnose(torch, _mlp(torch, nn), data, Y, nn.CrossEntropyLoss())
        _refused(info, "X contains 1 non-finite value(s); first is NaN at index (4, 2)")


def test_the_door_leaves_the_users_model_and_random_state_alone(torch, nn):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    X, Y = _data()
    _prepare(torch, model, X, Y, nn.CrossEntropyLoss())
    assert torch.equal(torch.get_rng_state(), state)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats included


# --- nndoctor.watch ---


def test_watch_refuses_a_loss_it_cannot_call_and_a_probe_interval_below_one(torch, nn):
    model = _mlp(torch, nn)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError) as info:
        nndoctor.watch(model, opt, loss="cross_entropy")
    _refused(info, "loss must be a torch loss module or a function, got str")
    with pytest.raises(TypeError) as info:
        nndoctor.watch(model, opt, loss=nn.MSELoss)
    _refused(info, "write loss=MSELoss() with parentheses")
    for every in (0, -1, 1.5):
        with pytest.raises(ValueError) as info:
            nndoctor.watch(model, opt, every=every)
        _refused(info, f"every must be a positive integer, got {every}")


# --- the report's header tells the truth ---


def _header(report) -> str:
    from nndoctor.render.plain import summary_line

    return summary_line(report)


def _warm_loop(torch, nn, scheduler, steps=60):
    """A watched AdamW loop at peak rate 3e-3 whose scheduler steps once per step."""
    model = _mlp(torch, nn)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = scheduler(opt)
    X, Y = (torch.as_tensor(a) for a in _data())
    loss = nn.CrossEntropyLoss()
    with nndoctor.watch(model, opt, loss=loss, alerts=False, budget=None) as doctor:
        for _ in range(steps):
            opt.zero_grad()
            loss(model(X), Y).backward()
            opt.step()
            sched.step()
    return doctor.report()


def test_a_warm_up_is_headed_by_its_peak_rate_and_its_first_steps(torch, nn):
    warm = 40
    report = _warm_loop(
        torch, nn, lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1, (s + 1) / warm))
    )
    opt = report.summary["optimizer"]
    assert opt["lr"] == 3e-3 and opt["lr_first"] == 3e-3 * (1 / warm)
    assert "with AdamW (lr 0.003 peak, 7.50e-05 at step 0) on cross_entropy loss" in _header(report)


def test_one_cycle_is_headed_by_max_lr(torch, nn):
    # OneCycleLR starts at max_lr / div_factor and climbs to max_lr at pct_start of the run
    report = _warm_loop(
        torch,
        nn,
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.01, total_steps=60),
        steps=10,  # stopped before the peak: the scheduler's max_lr is the peak all the same
    )
    opt = report.summary["optimizer"]
    assert opt["lr"] == 0.01 and opt["lr_first"] == pytest.approx(0.01 / 25, rel=1e-12)
    assert "(lr 0.01 peak, 4.00e-04 at step 0)" in _header(report)


def test_a_warm_up_from_zero_is_not_a_learning_rate_of_zero(torch, nn):
    # the rules read the peak rate: a warm-up that starts at 0 is not "the learning rate is 0"
    report = _warm_loop(
        torch, nn, lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1, s / 10))
    )
    assert "lr-too-low" not in report.codes  # (was: "the learning rate is 0")
    assert report.summary["optimizer"]["lr_first"] == 0.0


def test_diagnose_reads_the_first_steps_rate_off_the_scheduler_factory(torch, nn):
    X, Y = _data()
    report = nndoctor.diagnose(
        _mlp(torch, nn), X, Y, loss=nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.SGD(p, lr=0.2), epochs=3, trials=False,
        scheduler=lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25),
    )  # fmt: skip
    assert "with SGD (lr 0.2 peak, 0.05 at step 0)" in _header(report)


def test_a_constant_rate_is_headed_by_it_alone(torch, nn):
    X, Y = _data()
    report = _diagnose(torch, _mlp(torch, nn), X, Y, nn.CrossEntropyLoss())
    assert "lr_first" not in report.summary["optimizer"]
    assert "with SGD (lr 0.1) on cross_entropy loss" in _header(report)


def test_a_lambda_loss_is_named_by_the_torch_loss_it_calls_or_as_a_function(torch, nn):
    import functools

    from nndoctor.backends.torch.loss import loss_name

    F = nn.functional
    assert loss_name(lambda o, y: F.cross_entropy(o, y)) == "function calling F.cross_entropy"
    assert loss_name(lambda o, y: torch.nn.functional.mse_loss(o, y).sqrt()) == (
        "function calling F.mse_loss"
    )
    assert loss_name(functools.partial(F.l1_loss, reduction="sum")) == "function calling F.l1_loss"
    # two torch losses, or none: what it computes is not one name
    assert loss_name(lambda o, y: F.l1_loss(o, y) + F.mse_loss(o, y)) == "function"
    assert loss_name(lambda o, y: ((o - y) ** 2).mean()) == "function"

    def focal(o, y):
        return F.cross_entropy(o, y)

    assert loss_name(focal) == "focal"
    X, Y = _data()
    headers = [
        _header(_diagnose(torch, _mlp(torch, nn), X, Y, loss))
        for loss in (
            lambda o, y: F.cross_entropy(o, y),
            lambda o, y: F.nll_loss(o.log_softmax(1), y) * 1.0,
            focal,
        )
    ]
    assert "on a function calling F.cross_entropy: final loss" in headers[0]
    assert "on a function calling F.nll_loss: final loss" in headers[1]
    assert "on focal loss: final loss" in headers[2]
    onehot = np.eye(3)[Y]
    report = _diagnose(torch, _mlp(torch, nn), X, onehot, lambda o, y: ((o - y) ** 2).mean())
    assert "on a function loss: final loss" in _header(report)
    assert "<lambda>" not in _header(report) + str(report.to_dict()["summary"])


def _plain_losses(torch, nn, lr, steps):
    """Full-batch SGD losses of ``_mlp`` on ``_data`` in a plain torch loop."""
    model = _mlp(torch, nn)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    X, Y = (torch.as_tensor(a) for a in _data())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X), Y)
        losses.append(float(loss.detach()))
        loss.backward()
        opt.step()
    return np.array(losses)


def test_a_run_whose_loss_became_nan_is_headed_nan_with_its_last_finite_loss(torch, nn):
    from nndoctor.doctor.report import Report
    from nndoctor.render.plain import fmt

    losses = _plain_losses(torch, nn, 1e12, 30)
    bad = int(np.flatnonzero(~np.isfinite(losses))[0])
    assert np.isnan(losses[bad]) and bad > 2
    expected = f"final loss NaN (last finite {fmt(losses[bad - 1])})"  # one step per epoch
    X, Y = _data()
    report = nndoctor.diagnose(
        _mlp(torch, nn), X, Y, loss=nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.SGD(p, lr=1e12), epochs=30, trials=False,
    )  # fmt: skip
    assert _header(report).endswith(expected)
    again = Report.from_dict(report.to_dict())
    assert _header(again).endswith(expected)


def test_an_engine_run_stopped_at_a_non_finite_loss_is_headed_so():
    # the engine stops before recording the non-finite loss: which one it was is not known
    from nndoctor.nn import SGD, mlp, train
    from nndoctor.render.plain import fmt

    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3))
    Y = X @ rng.normal(size=(3, 1))

    def setup():
        return mlp([3, 8, 1], "tanh", seed=1), SGD(lr=5.0)

    model, opt = setup()
    history = train(model, X, Y, loss="mse", optimizer=opt, epochs=200)
    assert history.diverged is not None
    finite = history.step_loss[np.isfinite(history.step_loss)]  # one step per epoch
    model, opt = setup()
    report = nndoctor.diagnose(model, X, Y, loss="mse", optimizer=opt, epochs=200, trials=False)
    assert _header(report).endswith(f"final loss NaN or inf (last finite {fmt(finite[-1])})")


def _suggested(report, code):
    (finding,) = [f for f in report.findings if f.code == code]
    return finding.evidence["suggested_lr"], finding.fix


def _layer_ratios(torch, nn):
    """Per weighted layer ``|grad W| / |W|`` at the initial weights on the full batch: the
    first SGD step's update-to-weight ratio divided by the rate."""
    model = _mlp(torch, nn)
    X, Y = (torch.as_tensor(a) for a in _data())
    nn.functional.cross_entropy(model(X), Y).backward()
    with torch.no_grad():
        return np.array(
            [float(m.weight.grad.norm() / m.weight.norm()) for m in (model[0], model[2])]
        )


def test_a_learning_rate_of_1e12_gets_a_usual_rate_to_try_and_why(torch, nn):
    X, Y = _data()
    report = nndoctor.diagnose(
        _mlp(torch, nn), X, Y, loss=nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.SGD(p, lr=1e12), epochs=30, trials=False,
    )  # fmt: skip
    lr, fix = _suggested(report, "lr-too-high")
    # the rate whose first step changes the weights by 1e-2 of their norm, to one digit
    implied = 1e-2 / _layer_ratios(torch, nn).max()
    assert 1e-6 <= lr <= 1 and lr == float(f"{implied:.0e}")
    assert f"try {lr:g}" in fix and "gives 1e+09, outside the usual range 1e-06 to 1" in fix


def test_a_learning_rate_of_1e_minus_12_gets_a_usual_rate_to_try_and_why(torch, nn):
    X, Y = _data()
    report = nndoctor.diagnose(
        _mlp(torch, nn), X, Y, loss=nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.SGD(p, lr=1e-12), epochs=30, trials=False,
    )  # fmt: skip
    lr, fix = _suggested(report, "lr-too-low")
    # the weights do not move: every probe's ratio is the first step's, so the median over
    # probes and the two layers is the mean of the two layers' ratios
    implied = 1e-3 / _layer_ratios(torch, nn).mean()
    assert 1e-6 <= lr <= 1 and lr == float(f"{implied:.0e}")
    assert f"try {lr:g}" in fix and "gives 1e-09, outside the usual range 1e-06 to 1" in fix
