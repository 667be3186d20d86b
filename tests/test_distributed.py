"""Several ranks, one report: the merge of the ranks' probes equals what one process records
on the global batches, the exchange never blocks on a rank that failed, and a 2-process gloo run
of ``nndoctor run`` reports what one process reports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nndoctor.doctor.merge import merge_probes
from nndoctor.doctor.schema import LAYER_SERIES, LayerTrace, LoopFacts, Probes, numeric_rank

ROOT = Path(__file__).resolve().parents[1]


def _probes(z: np.ndarray, losses: np.ndarray, weights: np.ndarray) -> Probes:
    """The probes of one process that saw ``z`` ``(probes, rows, units)`` (a ReLU layer's
    outputs on its rows), per-row ``losses`` ``(steps, rows)`` and ``weights`` per probe,
    computed from their definitions."""
    h = np.maximum(z, 0)
    trace = LayerTrace(
        name="fc1",
        in_features=3,
        out_features=z.shape[2],
        activation="relu",
        weight_norm=weights,
        grad_norm=weights / 10,
        update_ratio=weights / 100,
        frac_saturated=np.zeros(len(z)),
        frac_dead=np.array([np.mean(np.all(zi <= 0, axis=0)) for zi in z]),
        act_rank=np.array([numeric_rank(hi) for hi in h], dtype=float),
        W_init=np.ones((z.shape[2], 3)),
        b_init=np.zeros(z.shape[2]),
        W_final=np.ones((z.shape[2], 3)),
        b_final=np.zeros(z.shape[2]),
        dead_units=np.all(z[-1] <= 0, axis=0),
        unit_saturation=np.zeros(z.shape[2]),
        z_rms=np.sqrt(np.mean(z**2, axis=(1, 2))),
    )
    out = h[-1].sum(axis=1, keepdims=True)
    target = 2 * z[-1][:, :1]
    return Probes(
        steps=np.arange(len(z)),
        step_loss=losses.mean(axis=1),
        epoch_loss=losses.mean(axis=1)[::2],
        layers=[trace],
        output_std=np.array([hi.sum(axis=1).std() for hi in h]),
        target_std=float(target.std()),
        probe_output=out,
        probe_target=target,
        diverged=None,
        steps_per_epoch=2,
        epochs=len(z) // 2,
        batch_size=len(out),
        probe_every=1,
        probe_loss=float(losses[-1].mean()),
        loop=LoopFacts(),
    )


def test_merged_ranks_equal_one_process_on_the_global_batch():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 8, 5))  # (probes, rows, units)
    z[:, :, 0] = -1.0  # unit 0 dead on every row of both ranks
    z[:, :4, 1] = -1.0  # unit 1 dead on rank 0's rows only: alive globally
    losses = rng.uniform(size=(4, 8))
    weights = rng.uniform(1, 2, size=4)
    one = _probes(z, losses, weights)
    merged = merge_probes(
        [_probes(z[:, :4], losses[:, :4], weights), _probes(z[:, 4:], losses[:, 4:], weights)]
    )
    np.testing.assert_allclose(merged.step_loss, one.step_loss, rtol=1e-12)
    np.testing.assert_allclose(merged.epoch_loss, one.epoch_loss, rtol=1e-12)
    np.testing.assert_allclose(merged.probe_loss, one.probe_loss, rtol=1e-12)
    np.testing.assert_array_equal(merged.probe_output, one.probe_output)
    assert merged.target_std == pytest.approx(one.target_std)
    a, b = merged.layers[0], one.layers[0]
    for key in ("weight_norm", "grad_norm", "update_ratio", "frac_saturated", "z_rms"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-12, err_msg=key)
    np.testing.assert_array_equal(a.dead_units, b.dead_units)
    assert a.dead_units.tolist() == [True, False, False, False, False]
    # bounds: a unit dead on every row is dead on each rank's rows; each rank's activations
    # span at most what the global batch spans
    assert np.all(a.frac_dead >= b.frac_dead) and np.any(a.frac_dead > b.frac_dead)
    assert np.all(a.act_rank <= b.act_rank)
    assert set(LAYER_SERIES) <= set(vars(a))
    assert merged.loop.ranks == 2 and merged.loop.missing_ranks == []


def test_a_rank_that_sent_nothing_is_named_and_left_out():
    rng = np.random.default_rng(1)
    z, losses = rng.normal(size=(2, 6, 3)), rng.uniform(size=(2, 6))
    alone = _probes(z, losses, np.ones(2))
    merged = merge_probes([alone, None])
    np.testing.assert_allclose(merged.step_loss, alone.step_loss)
    assert merged.loop.missing_ranks == [1]
    with pytest.raises(ValueError, match="no rank"):
        merge_probes([None, None])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], world: int = 2, env: dict[str, str] | None = None, timeout=120):
    """Start ``world`` processes as ``torchrun`` would on one machine (loopback only); their
    ``(returncode, stdout, stderr)`` in rank order."""
    port = str(free_port())
    procs = []
    for rank in range(world):
        penv = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "OMP_NUM_THREADS": "1",
            **(env or {}),
        }
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        procs.append(subprocess.Popen([sys.executable, *argv], env=penv, **pipes))
    outs = [p.communicate(timeout=timeout) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


GATHER = """
import os, sys, time
import torch.distributed as dist
from nndoctor.backends.torch import distributed
dist.init_process_group("gloo")
distributed.capture()
rank = dist.get_rank()
dist.destroy_process_group()  # as scripts do at the end: the exchange must still work
if os.environ.get("FAIL_RANK") == str(rank):
    sys.exit(7)
t0 = time.monotonic()
out = distributed.gather({"rank": rank}, timeout=3.0)
print(repr(out), round(time.monotonic() - t0, 1))
"""


def test_gather_reaches_rank_zero_and_never_waits_forever(tmp_path, torch):
    script = tmp_path / "gather.py"
    script.write_text(textwrap.dedent(GATHER))
    # rank 2 fails before sending: rank 0 has rank 1's payload and, after the timeout, None
    (rc0, out0, err0), (rc1, out1, _), (rc2, _, _) = launch(
        [str(script)], world=3, env={"FAIL_RANK": "2"}
    )
    assert (rc0, rc1, rc2) == (0, 0, 7), err0
    got0, waited = out0.rsplit(" ", 1)
    assert got0 == repr([{"rank": 0}, {"rank": 1}, None])
    assert 2.5 <= float(waited) < 30  # the 3 s timeout, not forever
    assert out1.split(" ")[0] == "None"  # other ranks send and go on


DDP_SCRIPT = """
import json
import os
import torch
import torch.distributed as dist
from torch import nn

world = int(os.environ.get("WORLD_SIZE", 1))
rank = int(os.environ.get("RANK", 0))
if world > 1:
    dist.init_process_group("gloo")
torch.manual_seed(0)  # the same weights on every rank, as DDP expects
X = torch.randn(64, 4, dtype=torch.float64)
Y = torch.tanh(X[:, :1] - 2 * X[:, 1:2])
net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
for p in net.parameters():  # constant weights: the hidden units stay identical
    nn.init.constant_(p, 0.5 if p is net[2].weight else 0.0)
model = nn.parallel.DistributedDataParallel(net) if world > 1 else net
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.MSELoss()
share = 64 // world  # each rank its rows of the same global batch
x, y = X[rank * share : (rank + 1) * share], Y[rank * share : (rank + 1) * share]
for step in range(60):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
if world > 1:
    dist.destroy_process_group()
"""


# PyTorch's own race at exit, with or without nndoctor (a plain 2-rank run of DDP_SCRIPT under
# CPU load aborted in 1 of 60 runs, ``nndoctor run`` in 2 of 40): a gloo worker thread frees its
# last allreduce only after the interpreter began to exit; the work's saved thread-local state
# drops a Python object, the thread takes the GIL, the exiting interpreter ends the thread, and
# the unwinding hits a noexcept frame (gdb: ``take_gil`` <- ``~ThreadLocalState`` <-
# ``~AsyncAllreduceWork`` <- ``ProcessGroupGloo::runLoop``, the main thread in ``Py_FinalizeEx``)
GLOO_EXIT_ABORT = "terminate called without an active exception"


def _past_gloo_exit_abort(rc: int, err: str) -> tuple[int, str]:
    """A rank's exit status and stderr, read as if that abort at exit had not happened: it
    comes after the rank's last line of Python, so whatever nndoctor did is done by then."""
    if rc == -signal.SIGABRT and err.rstrip().endswith(GLOO_EXIT_ABORT):
        return 0, err.rstrip()[: -len(GLOO_EXIT_ABORT)]
    return rc, err


def _numbers(evidence: dict) -> dict[str, float]:
    return {k: float(v) for k, v in evidence.items() if isinstance(v, int | float)}


def test_two_gloo_ranks_report_what_one_process_sees_on_the_global_batches(tmp_path, torch):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    # a fixed interval: the single process would otherwise probe within its time budget,
    # at steps its own clock picks (the ranks probe on the step count alone)
    run = ["-m", "nndoctor", "run", "--no-alerts", "--every", "16", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env = {k: v for k, v in env.items() if k not in ("RANK", "WORLD_SIZE")}
    one_process = subprocess.Popen(  # alongside the two ranks: the test takes one run's time
        [sys.executable, *run, str(tmp_path / "one.json"), str(script)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    ranks = launch([*run, str(tmp_path / "two.json"), str(script)])
    (rc0, err0), (rc1, err1) = (_past_gloo_exit_abort(rc, err) for rc, _, err in ranks)
    _, err = one_process.communicate(timeout=120)
    assert (rc0, rc1, one_process.returncode) == (0, 0, 0), err0 + err1 + err
    assert "symmetric-units" in err0 and err1.strip() == ""  # rank 0 alone reports
    (two,) = json.loads((tmp_path / "two.json").read_text())
    (one,) = json.loads((tmp_path / "one.json").read_text())
    assert two["model"] == one["model"] == "net (Sequential)"  # as the script names it
    f2, f1 = two["report"]["findings"], one["report"]["findings"]
    assert [f["code"] for f in f2] == [f["code"] for f in f1]
    assert f1[0]["code"] == "symmetric-units"
    for a, b in zip(f2, f1, strict=True):
        x, y = _numbers(a["evidence"]), _numbers(b["evidence"])
        assert x.keys() == y.keys()
        for key in x:
            assert x[key] == pytest.approx(y[key], rel=1e-6, abs=1e-9, nan_ok=True), key
