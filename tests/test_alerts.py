"""Live alerts: each code said once, at the step it became certain, never contradicted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nndoctor.doctor.alerts import SYMMETRY_STEPS, symmetric_message


def _loop(torch, model, lr, steps, every=None):
    """A plain loop under ``nndoctor.watch``; the losses it saw itself."""
    import nndoctor

    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    Y = torch.tanh(X[:, :1] - X[:, 1:2])
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.MSELoss()
    losses = []
    with nndoctor.watch(model, optimizer, loss=loss_fn, every=every) as w:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = loss_fn(model(X), Y)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    return w, losses


def test_divergence_is_said_once_with_its_first_step_and_layer(torch, caplog):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    w, losses = _loop(torch, model, lr=5.0, steps=30)
    first_bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
    (alert,) = w.alerts.history
    assert alert.code == "diverged"
    assert alert.message.startswith(f"diverged at step {first_bad}")
    assert alert.step >= first_bad  # said at the probe that read the loss, not before
    assert "diverged" in w.report().codes  # the report agrees
    said = [r.getMessage() for r in caplog.records if r.name == "nndoctor"]
    assert said == [f"nndoctor: diverged: {alert.message}"]


def test_divergence_on_the_cpu_is_said_within_a_flush_however_sparse_the_probes(torch):
    from nndoctor.backends.torch.watch import FLUSH_EVERY

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    w, losses = _loop(torch, model, lr=5.0, steps=3 * FLUSH_EVERY, every=10**6)
    first_bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
    (alert,) = w.alerts.history
    assert alert.message.startswith(f"diverged at step {first_bad}")
    # a non-finite loss on the CPU reaches the recorder at its own step (nan-source replays
    # that step), so the alert comes at once, not at the next flush
    assert alert.step == first_bad


def test_units_identical_at_init_and_after_the_first_updates_are_said(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Sigmoid(), torch.nn.Linear(6, 1))
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    w, _ = _loop(torch, model, lr=0.5, steps=40)
    (alert,) = w.alerts.history
    # said right after the first probe that follows SYMMETRY_STEPS updates
    probed = [int(s) + 1 for s in w.probes().steps]  # updates done after each probe step
    assert (alert.code, alert.step) == (
        "symmetric-units",
        min(n for n in probed if n >= SYMMETRY_STEPS),
    )
    assert alert.message == "layer 0 has 6 identical units (all weights start at 0)"
    assert w.report().causes[0].code == "symmetric-units"


def test_a_healthy_run_raises_no_alert(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    w, losses = _loop(torch, model, lr=0.1, steps=40, every=5)
    assert losses[-1] < 0.5 * losses[0]
    assert w.alerts.history == []


@pytest.mark.parametrize(
    ("W0", "W", "expected"),
    [
        # identical at init, still identical: said, with the constant
        (np.zeros((3, 2)), np.full((3, 2), 0.1),
         "layer h has 3 identical units (all weights start at 0)"),
        # two of three identical at init (not constant), still identical
        (np.array([[1.0, 2], [1, 2], [3, 4]]), np.array([[1.5, 2], [1.5, 2], [3, 4]]),
         "layer h has 2 identical units (they started identical)"),
        # identical at init, split since: nothing (the report will not say it either)
        (np.zeros((3, 2)), np.array([[0.0, 1], [0, 2], [0, 3]]), None),
    ],
)  # fmt: skip
def test_symmetric_message(W0, W, expected):
    b0, b = np.zeros(len(W0)), np.zeros(len(W))
    assert symmetric_message("h", (W0, b0), (W, b)) == expected
