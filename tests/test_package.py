"""The package's promises about imports and extras."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nndoctor import _extras


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_import_loads_numpy_only():
    code = (
        "import sys, nndoctor, nndoctor.nn, nndoctor.torch, nndoctor.bounds\n"
        "nndoctor.diagnose; nndoctor.check_gradients; nndoctor.Report\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'sklearn', 'numba') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_public_names_resolve():
    import nndoctor

    for name in nndoctor.__all__:
        assert getattr(nndoctor, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nndoctor.nope


def test_missing_extra_gives_one_line_install_hint():
    with pytest.raises(ImportError) as info:
        _extras.require("torch_that_does_not_exist_xyz")
    message = str(info.value)
    assert "\n" not in message
    assert "pip install 'nndoctor[torch_that_does_not_exist_xyz]'" in message


def test_known_extra_is_named(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"pip install 'nndoctor\[plot\]'"):
        _extras.require("matplotlib.pyplot")


def test_readme_names_every_finding_code_and_both_commands():
    from pathlib import Path

    from nndoctor.doctor.codes import CODES

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    missing = [code for code in CODES if f"| `{code}` |" not in readme]
    assert missing == []
