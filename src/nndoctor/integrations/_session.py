"""What both callbacks do: start the global hooks, report once at the end, and give the
report as ``doctor.report()``, as ``nndoctor.watch`` does."""

from __future__ import annotations

import atexit
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from nndoctor.runner import GlobalWatcher, print_reports, torch_watch, write_json


class DoctorSession:
    """One watched training run of a framework's ``Trainer``.

    Parameters
    ----------
    every : int, optional
        Probe interval (default: the watch's adaptive schedule).
    alerts : bool
        Say findings while training runs.
    verbose : bool
        Print the report at the end (on rank 0); False keeps it in :attr:`reports` only.
    step_pre_hook : bool
        Whether models are paired with their optimizer and gradients read in the optimizer's
        step pre-hook (plain loops, Hugging Face), or the framework calls
        :meth:`before_optimizer_step` once the gradients are ready (Lightning steps with a
        closure: the pre-hook runs before the forward and backward).
    """

    def __init__(
        self,
        *,
        every: int | None = None,
        alerts: bool = True,
        verbose: bool = True,
        step_pre_hook: bool = True,
    ) -> None:
        self.every = every
        self.alerts = alerts
        self.verbose = verbose
        self.step_pre_hook = step_pre_hook
        self.watcher: GlobalWatcher | None = None
        self.reports: list[tuple[str, Any]] | None = None

    @property
    def report(self) -> Any:
        """The report of the (first) trained model, None before the end or on ranks > 0."""
        return self.reports[0][1] if self.reports else None

    def start(self) -> None:
        if self.watcher is not None:
            return
        self.reports = None
        self.watcher = GlobalWatcher(
            self._make_watch,
            every=self.every,
            alerts=self.alerts,
            pair_on_step=self.step_pre_hook,
        )
        self.watcher.install()
        atexit.register(self.finish)  # a run that never reaches the framework's end hook

    def _make_watch(self, *args: Any) -> Any:
        return torch_watch(*args, step_pre_hook=self.step_pre_hook)

    def before_optimizer_step(self, optimizer: Any) -> None:
        """The gradients of this step are ready and the update has not run."""
        if self.watcher is None:
            return
        self.watcher.pair(optimizer)
        for pair in self.watcher.pairs:
            if pair.optimizer is optimizer:
                pair.watch.before_step()

    def finish(self) -> list[tuple[str, Any]] | None:
        """Close the hooks, build the reports and print them (rank 0); idempotent."""
        if self.watcher is None:
            return self.reports
        watcher, self.watcher = self.watcher, None
        atexit.unregister(self.finish)
        self.reports = watcher.close()
        if self.reports is not None and self.verbose and (self.reports or not watcher.pairs):
            print(file=sys.stderr)  # (after the framework's own last lines)
            print_reports(self.reports, sys.stderr)
        return self.reports

    def save_json(self, folder: str, name: str = "nndoctor_report.json") -> str | None:
        """Write the reports into ``folder`` (a logger's directory); the path, or None."""
        if not self.reports:
            return None
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        write_json(path, self.reports)
        return path


class ReportMethod:
    """``doctor.report`` / ``doctor.reports`` of a callback: call it, as ``watch(...).report()``.

    The callbacks used to give the report as an attribute; code that still uses it so
    (``doctor.report.causes``, ``print(doctor.report)``, ``for name, r in doctor.reports``)
    keeps working, with a ``DeprecationWarning``. ``doctor.report is None`` cannot: it is
    ``doctor.report() is None`` now.
    """

    def __init__(self, get: Callable[[], Any], name: str) -> None:
        self._get = get
        self._name = name

    def __call__(self) -> Any:
        return self._get()

    def _as_attribute(self) -> Any:
        warnings.warn(
            f"DoctorCallback.{self._name} is a method now, as watch(...).report() is: "
            f"call doctor.{self._name}()",
            DeprecationWarning,
            stacklevel=3,
        )
        return self._get()

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):  # copy, pickle and friends: not the old attribute's
            raise AttributeError(attribute)
        return getattr(self._as_attribute(), attribute)

    def __str__(self) -> str:
        return str(self._as_attribute())

    def __bool__(self) -> bool:
        return bool(self._as_attribute())

    def __iter__(self) -> Any:
        return iter(self._as_attribute())

    def __len__(self) -> int:
        return len(self._as_attribute())

    def __getitem__(self, key: Any) -> Any:
        return self._as_attribute()[key]

    def __contains__(self, item: object) -> bool:
        return item in self._as_attribute()


class SessionReports:
    """``report()`` and ``reports()`` of a callback that keeps its :class:`DoctorSession` as
    ``self._session``."""

    _session: DoctorSession

    @property
    def report(self) -> ReportMethod:
        """``doctor.report()``: the report of the (first) trained model once training ended;
        None before, or on ranks other than 0."""
        return ReportMethod(lambda: self._session.report, "report")

    @property
    def reports(self) -> ReportMethod:
        """``doctor.reports()``: ``(model name, report)`` per model an optimizer stepped (a GAN
        has two) once training ended; None before, or on ranks other than 0."""
        return ReportMethod(lambda: self._session.reports, "reports")
