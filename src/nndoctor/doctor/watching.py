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


def watch(model: Any, optimizer: Any, *, loss: Any = None, every: int | None = None) -> Any:
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

    Returns
    -------
    Watch
        A context manager; ``.report()`` gives the :class:`~nndoctor.Report`, ``.close()``
        removes the hooks.
    """
    require("torch")
    from nndoctor.doctor.backends.torch_watch import Watch

    return Watch(model, optimizer, loss=loss, every=every)
