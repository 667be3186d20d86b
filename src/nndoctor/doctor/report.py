"""The report: what was found, ranked, with everything the doctor measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nndoctor._files import write_text_atomic
from nndoctor.doctor.codes import CODES
from nndoctor.doctor.finding import CAUSE, Finding, json_text, plain

# probe series too long to be worth saving in JSON (one value per step)
_UNSAVED_PROBES = frozenset({"step_loss"})
# probe arrays with more elements than this stay out of JSON (their plot is then left out):
# a 64 x 64 layer's end weights at most, about 80 KB of text
MAX_SAVED_PROBE_SIZE = 4096
# a saved report keeps at most this many probes of each series (evenly spaced, the last one
# included) and this many epochs of each loss curve (the same thinning the plots draw with:
# the first, the last, the lowest and the highest of each stretch), every value exact
SAVED_PROBES = 256
SAVED_EPOCHS = 1000
# probes whose first axis is not the probes'
_NOT_PER_PROBE = ("epoch_loss", "epoch_at", "target_std", "steps_per_epoch")
_NOT_PER_PROBE_TAILS = (".W_final", ".act_edges", ".activation")


def _array(value: Any) -> Any:
    """A JSON list back as a float array ("nan"/"inf" strings included); other values as-is."""
    if isinstance(value, list):
        try:
            return np.asarray(
                [[float(x) for x in v] if isinstance(v, list) else float(v) for v in value]
            )
        except (TypeError, ValueError):
            return value
    return value


@dataclass
class Report:
    """What the doctor found, ranked, with everything it measured.

    Attributes
    ----------
    findings : list of Finding
        Causes first (root causes before what they explain), then symptoms, then information.
    summary : dict
        The run: final loss, steps, budget, loss and optimiser names.
    bounds : dict
        Achievable losses in the user's units (constant baseline, rank-k codes, least squares,
        predictability).
    preflight : dict
        Loss at initialisation, zeroed-input baseline, tiny-batch overfit.
    probes : dict
        The recorded probe series (NumPy arrays) for plots; ``to_dict`` keeps all but the
        per-step loss.
    curves : dict
        Other runs of the same setup to draw beside this one: label -> loss per epoch (the
        seed case puts its Xavier run here).
    """

    findings: list[Finding]
    summary: dict[str, Any] = field(default_factory=dict)
    bounds: dict[str, Any] = field(default_factory=dict)
    preflight: dict[str, Any] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict, repr=False)
    curves: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        unknown = [f.code for f in self.findings if f.code not in CODES]
        if unknown:
            raise ValueError(f"unknown finding code(s) {unknown}; known: {sorted(CODES)}")
        for f in self.findings:  # (a finding read back from JSON has no record yet)
            f.rule = f.rule or CODES[f.code]

    @property
    def codes(self) -> list[str]:
        """Codes of all findings, in report order."""
        return [f.code for f in self.findings]

    @property
    def causes(self) -> list[Finding]:
        """Cause findings in rank order (the root cause first)."""
        return [f for f in self.findings if f.kind == CAUSE]

    def __getitem__(self, code: str) -> Finding:
        for f in self.findings:
            if f.code == code:
                return f
        raise KeyError(f"no finding {code!r}; found {self.codes}")

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``docs/report-schema.md``), of a size bounded
        whatever the run's length: see :meth:`probe_series`."""
        probes, curves = self._saved_series()
        return {
            "findings": [f.to_dict() for f in self.findings],
            "summary": plain(self.summary),
            "bounds": plain(self.bounds),
            "preflight": plain(self.preflight),
            **({"curves": plain(curves)} if curves else {}),
            **({"probes": plain(probes)} if probes else {}),
        }

    def probe_series(self) -> dict[str, Any]:
        """The recorded series as a saved report keeps them: every probe series but the
        per-step loss, at most :data:`SAVED_PROBES` probes (evenly spaced, ``steps`` thinned
        alike) and :data:`SAVED_EPOCHS` epochs of the loss (thinned as the plots draw it,
        with ``epoch_at``: the epochs kept, from 1), arrays of more than
        :data:`MAX_SAVED_PROBE_SIZE` numbers (the end weights of a wide layer) left out.
        Every value kept is exact: the findings' numbers are in their evidence."""
        return self._saved_series()[0]

    def _saved_series(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(probes, curves) as :meth:`to_dict` saves them."""
        probes = {k: v for k, v in self.probes.items() if k not in _UNSAVED_PROBES}
        n = np.size(probes.get("steps", []))
        if n > SAVED_PROBES:
            keep = np.unique(np.linspace(0, n - 1, SAVED_PROBES).round().astype(int))
            for key, value in probes.items():
                per_probe = key not in _NOT_PER_PROBE and not key.endswith(_NOT_PER_PROBE_TAILS)
                if per_probe and not isinstance(value, str) and np.ndim(value) and len(value) == n:
                    probes[key] = np.asarray(value)[keep]
        curves = dict(self.curves)
        loss = probes.get("epoch_loss")
        if loss is not None and "epoch_at" not in probes and len(loss) > SAVED_EPOCHS:
            from nndoctor.plot import thin_indices

            keep = thin_indices(np.asarray(loss, dtype=float), SAVED_EPOCHS)
            probes["epoch_loss"] = np.asarray(loss)[keep]
            probes["epoch_at"] = keep + 1
            # other runs of the same length are thinned alike: they share the epochs
            for key, curve in curves.items():
                if len(curve) == len(loss):
                    curves[key] = np.asarray(curve)[keep]
        # what is still too big once thinned: the end weights of a wide layer
        probes = {k: v for k, v in probes.items() if np.size(v) <= MAX_SAVED_PROBE_SIZE}
        return probes, curves

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text, each list of numbers on one line; also written to
        ``path`` (atomically) when given."""
        text = json_text(self.to_dict())
        if path is not None:
            write_text_atomic(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        return cls(
            findings=[Finding.from_dict(f) for f in d["findings"]],
            summary=d.get("summary", {}),
            bounds=d.get("bounds", {}),
            preflight=d.get("preflight", {}),
            probes={k: _array(v) for k, v in d.get("probes", {}).items()},
            curves={k: _array(v) for k, v in d.get("curves", {}).items()},
        )

    @property
    def plots(self) -> list[str]:
        """Names of the plots this report has data for (``nndoctor.plot.PLOTS``)."""
        from nndoctor.plot import available_plots

        return available_plots(self)

    def plot(self, name: str) -> Any:
        """One plot of this report as a matplotlib Figure (the ``plot`` extra); ``name`` is one
        of :attr:`plots`: ``loss``, ``output-spread``, ``unit-similarity``, ``activations``,
        ``gradients``, ``spectrum``."""
        from nndoctor.plot import plot

        return plot(self, name)

    def render(self, stream: Any = None, verbosity: int = 1, color: bool | None = None) -> None:
        """Print the terminal summary: colours on a terminal, plain text on a file, a pipe or
        when ``NO_COLOR`` is set. ``verbosity`` 0 = quiet, 1 = normal, 2 = verbose."""
        from nndoctor.render.terminal import render

        render(self, stream, verbosity, color)

    def to_html(self, *, title: str = "nndoctor report", plots: bool = True) -> str:
        """The report as one self-contained HTML page (plots embedded as SVG)."""
        from nndoctor.render.html import render_report

        return render_report(self, title=title, plots=plots)

    def save_html(
        self, path: str | Path, *, title: str = "nndoctor report", plots: bool = True
    ) -> Path:
        """Write :meth:`to_html` to ``path`` atomically and return the path."""
        return write_text_atomic(path, self.to_html(title=title, plots=plots))

    def _repr_html_(self) -> str:
        from nndoctor.render.html import render_report

        return render_report(self, fragment=True)

    def __repr__(self) -> str:
        """One line: the codes found and the final loss (a notebook's plain-text view of the
        report; ``str(report)`` is the whole text)."""
        marks = {True: ", confirmed", False: ", not confirmed", None: ""}
        found = [f"{f.code}{marks[f.confirmed]}" for f in self.findings[:4]]
        if len(self.findings) > 4:
            found.append(f"{len(self.findings) - 4} more")
        loss = self.summary.get("final_loss")
        tail = f"; final loss {float(loss):.4g}" if isinstance(loss, int | float) else ""
        return f"<nndoctor Report: {'; '.join(found) or 'no problem found'}{tail}>"

    def __str__(self) -> str:
        from nndoctor.render.terminal import plain_text

        return plain_text(self)
