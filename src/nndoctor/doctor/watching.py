"""``nndoctor.watch``: the doctor inside the user's own PyTorch training loop.

::

    with nndoctor.watch(model, optimizer, loss=criterion) as doctor:
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
    print(doctor.report())

The hooks are described in :mod:`nndoctor.doctor.backends.torch_watch`. ``watch`` runs no
pre-flight checks and no trials (they need extra training runs): its report names the causes
that :func:`nndoctor.diagnose` could confirm.
"""

from __future__ import annotations

from typing import Any

from nndoctor._extras import require


def watch(
    model: Any, optimizer: Any, *, loss: Any = None, every: int | None = None, alerts: bool = True
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
        Probe every ``every`` optimizer steps (default: every step at first, ever sparser,
        about 100 to 200 probes in all).
    alerts : bool
        Say each finding in one line the moment it is certain, while training goes on
        (:mod:`nndoctor.doctor.alerts`; on rank 0 only under ``torch.distributed``). False
        keeps them, unsaid, in ``.alerts.history``.

    Returns
    -------
    Watch
        A context manager; ``.report()`` gives the :class:`~nndoctor.Report`, ``.close()``
        removes the hooks.
    """
    require("torch")
    from nndoctor.doctor import distributed
    from nndoctor.doctor.alerts import Alerts, attach
    from nndoctor.doctor.backends.torch_watch import Watch

    distributed.capture()  # the store the ranks' probes meet in at the end
    w = Watch(model, optimizer, loss=loss, every=every)
    w.alerts = Alerts(echo=alerts and distributed.is_rank_zero())
    attach(w, w.alerts)
    return w
