"""Held-out cases for ``nndoctor.diagnose``; ``benchmarks/bench_doctor_heldout.py`` runs them.

``SETS`` are the engine's sets; the PyTorch set ``heldout.torch_set`` imports torch, so it is
imported only by ``bench_doctor_heldout.py --torch``.
"""

from heldout import set1, set2, set3, set4, set5
from heldout._common import Case, CaseSet, Setup

SETS: list[CaseSet] = [set1.SET, set2.SET, set3.SET, set4.SET, set5.SET]

__all__ = ["SETS", "Case", "CaseSet", "Setup"]
