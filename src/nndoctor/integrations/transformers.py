"""``DoctorCallback`` for the Hugging Face ``Trainer``::

    from nndoctor.integrations.transformers import DoctorCallback

    trainer = transformers.Trainer(model=model, args=args, train_dataset=data,
                                   callbacks=[DoctorCallback()])
    trainer.train()

Live alerts while training runs; the report at ``on_train_end``, and also when ``train`` fails
or is interrupted (the Trainer has no hook for that: the report is printed at the interpreter's
exit). The report goes into ``args.output_dir`` as ``nndoctor_report.json``. Under several
processes rank 0 alone reports, for all ranks. Needs ``nndoctor[transformers]``.

A model that computes its loss inside ``forward`` (``labels=`` given) hands the watch no
targets: the rules that need them stay silent, the others judge as usual.
"""

from __future__ import annotations

from typing import Any

from nndoctor._extras import require
from nndoctor.integrations._session import DoctorSession, SessionReports

transformers = require("transformers")


class DoctorCallback(SessionReports, transformers.TrainerCallback):
    """Watch the model a Hugging Face ``Trainer`` trains; see the module docstring.

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
        The report of the trained model once ``train`` ended (None before, or on ranks other
        than 0), as ``nndoctor.watch(...).report()`` gives its own.
    reports()
        ``(model name, report)`` per model an optimizer stepped.
    """

    def __init__(self, *, every: int | None = None, alerts: bool = True, verbose: bool = True):
        self._session = DoctorSession(every=every, alerts=alerts, verbose=verbose)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._session.start()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._session.finish()
        if state.is_world_process_zero and args.output_dir:
            self._session.save_json(args.output_dir)
