"""``DoctorCallback`` for PyTorch Lightning::

    from nndoctor.integrations.lightning import DoctorCallback

    trainer = lightning.pytorch.Trainer(callbacks=[DoctorCallback()])
    trainer.fit(model, data)

Live alerts while training runs; the report at ``on_fit_end``, and also when ``fit`` fails or
is interrupted (``on_exception``). Where the Trainer has a logger, the report goes into the
logger's directory as ``nndoctor_report.json`` and its counts are logged as metrics. Under
several processes (DDP) rank 0 alone reports, for all ranks. Needs ``nndoctor[lightning]``.
"""

from __future__ import annotations

from typing import Any

from nndoctor._extras import require
from nndoctor.integrations._session import DoctorSession, SessionReports

pl = require("lightning.pytorch")

# the hooks Lightning calls on every batch
_PER_BATCH = (
    *(name for name in vars(pl.Callback) if "_batch_" in name),
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)


class DoctorCallback(SessionReports, pl.Callback):
    """Watch the model a Lightning ``Trainer`` fits; see the module docstring.

    Parameters
    ----------
    every : int, optional
        Probe every ``every`` optimizer steps (default: every 16 steps, sparser as needed to
        keep probing within 1% of the run's time; see ``nndoctor.watch``).
    alerts : bool
        Say findings as soon as they are certain (default True).
    verbose : bool
        Print the report at the end (default True); ``report()`` gives it either way.

    Methods
    -------
    report()
        The report of the fitted model once ``fit`` ended (None before, or on ranks other
        than 0), as ``nndoctor.watch(...).report()`` gives its own.
    reports()
        ``(model name, report)`` per model an optimizer stepped (a GAN has two).
    """

    def __init__(self, *, every: int | None = None, alerts: bool = True, verbose: bool = True):
        self._session = DoctorSession(
            every=every, alerts=alerts, verbose=verbose, step_pre_hook=False
        )
        # Lightning calls every hook of every callback on every batch, each inside a profiler
        # context: a few microseconds a hook, 1.5-3% of a small model's step for a callback
        # that does nothing. It skips an attribute that is not callable, so the per-batch
        # hooks this class (or a subclass) does not define are switched off
        for name in _PER_BATCH:
            if getattr(type(self), name) is getattr(pl.Callback, name):
                setattr(self, name, None)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._session.start()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        # Lightning steps with a closure (forward and backward run inside optimizer.step),
        # so the optimizer's pre-hook would see last step's gradients: read them here
        self._session.before_optimizer_step(optimizer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._finish(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._finish(trainer)

    def _finish(self, trainer: Any) -> None:
        reports = self._session.finish()
        logger = trainer.logger
        if not reports or logger is None:
            return
        report = reports[0][1]
        logger.log_metrics(
            {
                "nndoctor/causes": float(len(report.causes)),
                "nndoctor/findings": float(len(report.findings)),
            },
            step=trainer.global_step,
        )
        folder = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
        if folder:
            self._session.save_json(folder)
