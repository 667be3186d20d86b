"""Progress bars for every long step (training, the scenario catalog), drawn by tqdm: a text bar
on a terminal, a widget in a Jupyter notebook that has ipywidgets, a text bar in one that has
not (where ``tqdm.auto`` would warn ``IProgress not found``).

A bar stays silent for runs shorter than about a second and when stderr is not a terminal (CI,
pipes) outside a notebook, unless forced on.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

# text layout: "epoch 12/100 |#####     | loss 2.28  [00:03<00:21]"
BAR_FORMAT = "{desc} {n_fmt}/{total_fmt} |{bar}| {postfix} [{elapsed}<{remaining}]"


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where tqdm.auto draws a widget."""
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def has_widgets() -> bool:
    """True when tqdm can draw its notebook widget (ipywidgets is installed)."""
    try:
        from tqdm.notebook import IProgress
    except ImportError:  # pragma: no cover - tqdm.notebook imports without IPython too
        return False
    return IProgress is not None


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(getattr(stream, "isatty", lambda: False)())
    except (ValueError, OSError):
        return False


class ProgressBar:
    """``bar.update(done, **fields)`` moves the bar to ``done`` of ``total`` units and shows
    ``fields`` (``loss=2.28``) beside it; ``bar.close()`` ends it.

    Parameters
    ----------
    total : int
        Number of units of work (epochs, scenarios).
    label : str
        What a unit is (``"epoch"``).
    enabled : bool or None
        ``True`` always draws, ``False`` never, ``None`` draws on a terminal or in a notebook
        once the run has lasted ``min_seconds``.
    stream : text stream, optional
        Where the text bar goes (stderr).
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        enabled: bool | None = None,
        stream: TextIO | None = None,
        min_seconds: float = 1.0,
        interval: float = 0.1,
        width: int = 30,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.min_seconds = min_seconds
        self.interval = interval
        self.width = width
        self._bar: Any = None
        self._last = 0.0
        notebook = in_notebook()
        if enabled is None:
            self._on = notebook or _isatty(self.stream)
        else:
            self._on = bool(enabled)
        self._notebook = notebook

    def _open(self) -> Any:
        widget = self._notebook and has_widgets()
        if widget:
            from tqdm.notebook import tqdm
        else:
            from tqdm import tqdm
        return tqdm(
            total=self.total,
            desc=self.label,
            file=None if widget else self.stream,
            delay=self.min_seconds if self.enabled is None else 0.0,
            mininterval=self.interval,
            bar_format=None if widget else BAR_FORMAT,
            ncols=None,
            leave=self.enabled is True,
            dynamic_ncols=True,
        )

    def update(self, done: int, **fields: float) -> None:
        if not self._on:
            return
        if self._bar is None:
            self._bar = self._open()
        now = time.perf_counter()
        if now - self._last >= self.interval or done >= self.total:
            self._last = now
            if fields:
                self._bar.set_postfix_str(
                    "  ".join(f"{k} {v:.4g}" for k, v in fields.items()), refresh=False
                )
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
