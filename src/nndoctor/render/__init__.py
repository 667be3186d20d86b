"""Renderers of a doctor's report: plain words (:mod:`.plain`), the terminal
(:mod:`.terminal`), one self-contained HTML page (:mod:`.html`). All of them read the report's
data only; none imports matplotlib or torch at import time."""
