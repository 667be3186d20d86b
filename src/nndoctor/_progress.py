"""A dependency-free terminal progress bar, drawn on stderr only when it helps.

It stays silent for runs shorter than about a second and when stderr is not a terminal (CI,
pipes), unless forced on.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``bar.update(done, **fields)`` redraws at most every ``interval`` seconds.

    Parameters
    ----------
    total : int
        Number of units of work (epochs).
    enabled : bool or None
        ``True`` always draws, ``False`` never, ``None`` draws on a terminal once the run is
        predicted to take longer than ``min_seconds``.
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
        self._start = time.perf_counter()
        self._last = 0.0
        self._drawn = False

    def _should_draw(self, done: int, now: float) -> bool:
        if self.enabled is not None:
            return self.enabled
        if not getattr(self.stream, "isatty", lambda: False)():
            return False
        elapsed = now - self._start
        return done > 0 and elapsed / done * self.total > self.min_seconds

    def update(self, done: int, **fields: float) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval and done < self.total:
            return
        if not self._should_draw(done, now):
            return
        self._last = now
        filled = int(self.width * done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        extra = "  ".join(f"{k} {v:.4g}" for k, v in fields.items())
        elapsed = now - self._start
        eta = elapsed / done * (self.total - done) if done else 0.0
        self.stream.write(
            f"\r{self.label} {done}/{self.total} [{bar}] {extra}  {elapsed:.1f}s (eta {eta:.1f}s)"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
