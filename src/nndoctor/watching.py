"""``nndoctor.watch``: the doctor inside the user's own PyTorch training loop.

::

    with nndoctor.watch(model, optimizer, loss=criterion) as doctor:
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
    print(doctor.report())

The hooks are described in :mod:`nndoctor.backends.torch.watch`; the report is the core's
(:func:`nndoctor.doctor.examine.watched_report`). ``watch`` runs no pre-flight checks and no
trials (they need extra training runs): its report names the causes that
:func:`nndoctor.diagnose` could confirm. Under ``torch.distributed`` rank 0 reports for every
rank (:func:`report_across_ranks`).
"""

from __future__ import annotations

from typing import Any

from nndoctor._extras import require
from nndoctor.doctor.examine import watched_report
from nndoctor.doctor.merge import merge_probes

_DEFAULT = object()


def watch(
    model: Any,
    optimizer: Any,
    *,
    loss: Any = None,
    every: int | None = None,
    alerts: bool = True,
    budget: Any = _DEFAULT,
    step_pre_hook: bool = True,
) -> Any:
    """Start watching ``model`` trained by ``optimizer``; returns the :class:`Watch`.

    Parameters
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
    loss : torch loss module, optional
        Its forward hook sees the output and the target; without it the scalar that
        ``.backward()`` is called on is taken as the loss (``watch.log`` adds output and
        target for a functional loss).
    every : int, optional
        Probe every ``every`` optimizer steps. Default: every 16 steps at first, then ever
        sparser, so that probing takes at most ``budget`` of the run's time and at most 200
        probes are held.
    alerts : bool
        Say each finding in one line the moment it is certain, while training goes on
        (:mod:`nndoctor.doctor.alerts`; on rank 0 only under ``torch.distributed``). False
        keeps them, unsaid, in ``.alerts.history``.
    budget : float or None, optional
        Share of the run's time probing may take (default 0.01, measured with the run's own
        clock, so the probed steps can differ between two runs); None probes on the step
        count alone (every 16 steps, thinned past 200 probes): the same steps every run.
        Under ``torch.distributed`` with several ranks the default is None (the ranks' probes
        are merged step by step).
    step_pre_hook : bool
        Read the gradients in the optimizer's step pre-hook (default); False for a framework
        that calls ``.before_step()`` once the gradients are ready (see ``Watch``).

    Returns
    -------
    Watch
        A context manager; ``.report()`` gives the :class:`~nndoctor.Report`, ``.close()``
        removes the hooks.
    """
    require("torch")
    from nndoctor.backends.torch import Watch, distributed
    from nndoctor.doctor.alerts import Alerts, attach
    from nndoctor.doctor.recorder import PROBE_BUDGET

    distributed.capture()  # the store the ranks' probes meet in at the end
    if budget is _DEFAULT:
        # ranks merge their probes step by step: they must probe the same steps, which a
        # budget on each rank's own clock would not guarantee
        budget = None if distributed.is_distributed() else PROBE_BUDGET
    w = Watch(
        model,
        optimizer,
        loss=loss,
        every=every,
        budget=budget,
        step_pre_hook=step_pre_hook,
        reporter=watched_report,
    )
    w.alerts = Alerts(echo=alerts and distributed.is_rank_zero())
    attach(w, w.alerts)
    return w


def report_across_ranks(watch: Any, timeout: float | None = None) -> Any:
    """The report of ``watch`` over every rank: on rank 0 the report of the merged probes,
    on other ranks None (they send their probes and go on). One process: ``watch.report()``.
    ``timeout``: seconds rank 0 waits for each other rank (default
    :data:`nndoctor.backends.torch.distributed.TIMEOUT_S`)."""
    from nndoctor.backends.torch import distributed

    if not distributed.is_distributed():
        return watch.report()
    runs = distributed.gather(watch.probes(), timeout or distributed.TIMEOUT_S)
    if runs is None:
        return None
    return watched_report(watch, probes=merge_probes(runs))
