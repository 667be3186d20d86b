"""The held-out sets of real reports (benchmarks/heldout_real*/cases.py) are well formed:
every script they name exists, and every code they expect is a finding code. The scripts
themselves are run by benchmarks/bench_heldout_real.py, not here."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from nndoctor.doctor.codes import CODES

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SETS = ("heldout_real", "heldout_real2", "heldout_real3", "heldout_real4")


def _manifest(folder: str):
    # the second set's manifest imports the first's Case: both from benchmarks/
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(f"{folder}.cases")


@pytest.mark.parametrize("folder", SETS)
def test_every_case_names_existing_scripts_and_known_codes(folder):
    cases = _manifest(folder).CASES
    known = set(CODES)
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    for case in cases:
        for script in case.scripts:
            assert (BENCHMARKS / folder / script).is_file(), f"{case.name}: missing {script}"
        assert case.expected is None or case.expected in known, f"{case.name}: {case.expected}"
        unknown = set(case.alternates) - known
        assert not unknown, f"{case.name}: unknown alternates {sorted(unknown)}"
        assert case.url.startswith("https://"), f"{case.name}: {case.url}"
        if case.expected is None:
            assert case.note, f"{case.name}: a case with no code says why in its note"


@pytest.mark.parametrize("folder", SETS)
def test_no_stray_scripts_and_at_least_24_cases(folder):
    cases = _manifest(folder).CASES
    named = {script for case in cases for script in case.scripts}
    here = BENCHMARKS / folder
    on_disk = {p.name for p in here.glob("*_sick.py")} | {p.name for p in here.glob("*_fixed.py")}
    assert on_disk == named, f"scripts not in the manifest: {sorted(on_disk - named)}"
    assert len(cases) >= 24


def test_no_two_sets_share_a_report():
    urls = [{case.url for case in _manifest(folder).CASES} for folder in SETS]
    for i, first in enumerate(urls):
        for later in urls[i + 1 :]:
            assert not first & later


def test_the_first_set_has_four_cases_per_code_issue_20_added():
    cases = _manifest("heldout_real").CASES
    for code in ("nan-source", "optimizer-model-mismatch", "batch-mixing"):
        assert sum(case.expected == code for case in cases) >= 4, code
