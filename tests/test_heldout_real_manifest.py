"""The held-out set of real reports (benchmarks/heldout_real/cases.py) is well formed: every
script it names exists, and every code it expects is a finding code (or one of the three codes
issue 20 adds). The scripts themselves are run by benchmarks/bench_heldout_real.py, not here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from nndoctor.doctor.codes import CODES

FOLDER = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_real"


def _manifest():
    spec = importlib.util.spec_from_file_location("heldout_real_cases", FOLDER / "cases.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def test_every_case_names_existing_scripts_and_known_codes():
    manifest = _manifest()
    known = set(CODES) | set(manifest.NEW_CODES)
    names = [case.name for case in manifest.CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    for case in manifest.CASES:
        for script in case.scripts:
            assert (FOLDER / script).is_file(), f"{case.name}: missing {script}"
        assert case.expected is None or case.expected in known, f"{case.name}: {case.expected}"
        unknown = set(case.alternates) - known
        assert not unknown, f"{case.name}: unknown alternates {sorted(unknown)}"
        assert case.url.startswith("https://"), f"{case.name}: {case.url}"
        if case.expected is None:
            assert case.note, f"{case.name}: a case with no code says why in its note"


def test_no_stray_scripts_and_enough_cases_per_new_code():
    manifest = _manifest()
    named = {script for case in manifest.CASES for script in case.scripts}
    on_disk = {p.name for p in FOLDER.glob("*_sick.py")} | {
        p.name for p in FOLDER.glob("*_fixed.py")
    }
    assert on_disk == named, f"scripts not in the manifest: {sorted(on_disk - named)}"
    assert len(manifest.CASES) >= 24
    for code in manifest.NEW_CODES:
        assert sum(case.expected == code for case in manifest.CASES) >= 4, code
