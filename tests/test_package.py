"""The package's promises about imports and extras."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


ROOT = Path(__file__).parents[1]


def _torch_pins() -> tuple[str, str]:
    """The Makefile's torch versions: the oldest the extra claims (``make test-oldest-torch``,
    CI's second run) and the default (``TORCH_SPEC``), as make expands them (``-n``: nothing
    runs)."""
    from packaging.requirements import Requirement

    recipe = subprocess.run(
        ["make", "-s", "--no-print-directory", "-n", "-C", str(ROOT), "test-oldest-torch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    oldest = recipe.split("TORCH_SPEC=")[1].split()[0]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    default = next(line.split("?=")[1] for line in makefile if line.startswith("TORCH_SPEC"))
    pins = []
    for text in (oldest, default):
        (pin,) = Requirement(text.strip()).specifier
        assert pin.operator == "==", text
        pins.append(pin.version)
    return pins[0], pins[1]


def _torch_range():
    import tomllib

    from packaging.requirements import Requirement

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (torch_req,) = extras["optional-dependencies"]["torch"]
    assert "nndoctor[torch," in extras["optional-dependencies"]["all"][0]
    return Requirement(torch_req).specifier


def test_the_torch_extra_is_the_range_ci_tests():
    """The ``torch`` extra states a range (a pin would replace the user's torch) whose lower
    bound is the oldest torch CI installs and which holds the default."""
    from packaging.version import Version

    oldest, default = _torch_pins()
    spec = _torch_range()
    assert Version(oldest) < Version(default)  # a range, not a pin
    assert oldest in spec and default in spec
    assert [s.version for s in spec if s.operator == ">="] == [oldest]


def test_the_suite_runs_on_a_torch_of_the_range(torch):
    from packaging.version import Version

    assert Version(torch.__version__).base_version in _torch_range()
