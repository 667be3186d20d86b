"""The doctor: watch training, name why the output is constant or the loss is stuck, and
prove the fix by re-running training with it.

``model + data -> training loop -> probes -> rules -> trials -> report``; rules read only
probes and a plain-data context, so the same rules judge any source of numbers.
"""

from nndoctor.doctor.codes import CODES
from nndoctor.doctor.diagnose import Doctor, diagnose
from nndoctor.doctor.report import Finding, Report
from nndoctor.doctor.watching import watch

__all__ = ["CODES", "Doctor", "Finding", "Report", "diagnose", "watch"]
