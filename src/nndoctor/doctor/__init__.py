"""The doctor's core: name why the output is constant or the loss is stuck, and prove the fix.

``model + data -> training loop -> probes -> rules -> trials -> report``; rules read only
probes and a plain-data context, so the same rules judge any source of numbers. The core knows
no framework: backends (:mod:`nndoctor.backends`) train and watch models through
:mod:`nndoctor.doctor.protocol`. The ways in (``nndoctor.diagnose``, ``nndoctor.watch``,
``nndoctor.Doctor``) live in :mod:`nndoctor.diagnosis` and :mod:`nndoctor.watching`.
"""

from nndoctor.doctor.codes import CODES
from nndoctor.doctor.finding import Finding
from nndoctor.doctor.report import Report

__all__ = ["CODES", "Finding", "Report"]
