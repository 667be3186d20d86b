"""``pip install 'nndoctor[torch]'`` keeps the torch a user already has, when it is in the range
the ``torch`` extra claims (a CUDA build, the one their torchvision needs), and only then.

The wheel is built from this tree and installed into a fresh virtualenv. Nothing is downloaded:
pip runs with ``--no-index`` and without this machine's configuration, so a pip that wanted
another torch fails here instead of fetching one (and nothing under the suite's own
environment can change: the fresh environment sees it through a read-only path).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(sysconfig.get_paths()["purelib"])  # the suite's own environment


def _pip_env() -> dict[str, str]:
    """pip without this machine's configuration (its find-links, indexes and constraints)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=_pip_env(), check=False
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this tree, built offline from a copy (the tree itself is not written)."""
    tmp = tmp_path_factory.mktemp("wheel")
    project = tmp / "project"
    shutil.copytree(
        ROOT / "src",
        project / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, project / name)
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist"]
    _run(sys.executable, "-m", "pip", *build, project)
    (built,) = (tmp / "dist").glob("nndoctor-*.whl")
    return built


def _torch_range(wheel: Path) -> SpecifierSet:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(z.read(name).decode("utf-8"))
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    (torch,) = [r for r in requirements if r.name == "torch"]
    assert torch.marker is not None and torch.marker.evaluate({"extra": "torch"})
    assert not torch.marker.evaluate({"extra": "plot"})  # never a core dependency
    (everything,) = [r for r in requirements if r.marker and r.marker.evaluate({"extra": "all"})]
    assert everything.name == "nndoctor" and "torch" in everything.extras
    return torch.specifier


def _fresh_env(tmp_path: Path, *, hide_torch: bool) -> tuple[Path, Path]:
    """A new virtualenv (its python and its site-packages) that sees the suite's packages but
    nndoctor through a folder of links outside it: pip never uninstalls what lies outside the
    environment it installs into, and what nndoctor needs is there without a download."""
    env = tmp_path / "env"
    _run(sys.executable, "-m", "venv", "--without-pip", env)
    python = env / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run(python, "-c", where).stdout.strip())
    view = tmp_path / "suite-packages"
    view.mkdir()
    for entry in SITE.iterdir():
        name = entry.name.lower()
        own = name.startswith(("nndoctor", "__editable__.nndoctor"))
        torch = name == "torch" or name.startswith("torch-")
        if not own and not (hide_torch and torch) and not name.endswith(".pth"):
            (view / entry.name).symlink_to(entry)
    (site / "suite-packages.pth").write_text(f"{view}\n")
    return python, site


def _pip_install(python: Path, *what: str | Path, check: bool = True) -> Any:
    """``pip install --no-index`` into the environment of ``python``."""
    return _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-index", *what,
                check=check)  # fmt: skip


def _install(python: Path, wheel: Path, check: bool = True) -> Any:
    return _pip_install(python, f"nndoctor[torch] @ {wheel.as_uri()}", check=check)


def _torch_in(python: Path) -> list[str]:
    """The version of the torch ``python`` imports and its file, links resolved."""
    code = "import os, torch; print(torch.__version__); print(os.path.realpath(torch.__file__))"
    return _run(python, "-c", code).stdout.split()


def test_the_wheel_keeps_the_torch_it_finds(wheel, tmp_path, torch):
    """The torch this suite runs on (the default, or the oldest the range claims in CI's
    second run) stays the torch of an environment the wheel is installed into."""
    assert torch.__version__.split("+")[0] in _torch_range(wheel)
    python, site = _fresh_env(tmp_path, hide_torch=False)
    before = _torch_in(python)
    assert before == [torch.__version__, os.path.realpath(torch.__file__)]
    record = next(SITE.glob("torch-*.dist-info")) / "RECORD"
    record_before = record.read_bytes()
    done = _install(python, wheel)
    assert "Successfully installed nndoctor-" in done.stdout
    assert _torch_in(python) == before  # the same torch, from the same files
    assert record.read_bytes() == record_before
    assert not [p.name for p in site.iterdir() if p.name.lower().startswith("torch")]
    # the wheel's nndoctor, not this tree's, with its command
    where = _run(python, "-c", "import nndoctor; print(nndoctor.__file__)").stdout
    assert Path(where.strip()).is_relative_to(site)
    version = _run(python.parent / "nndoctor", "--version").stdout.strip()
    assert version.startswith("nndoctor ")


def _standin_torch(folder: Path, version: str) -> Path:
    """A wheel named torch ``version`` holding only its metadata and a module that says its
    version: what pip reads to decide whether a torch must change (it cannot compute)."""
    files = {
        "torch/__init__.py": f'__version__ = "{version}"  # a stand-in for pip, no tensors\n',
        f"torch-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n"
        ),
        f"torch-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: nndoctor-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{name},sha256={b64},{len(text.encode())}")
    record.append(f"torch-{version}.dist-info/RECORD,,")
    files[f"torch-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def _oldest_claimed() -> str:
    """The lower bound of the ``torch`` extra's range (a pin's version, for a pin)."""
    (floor,) = [s.version for s in SpecifierSet(_pyproject_torch()) if s.operator in (">=", "==")]
    return floor


def _pyproject_torch() -> str:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (torch,) = extras["optional-dependencies"]["torch"]
    return str(Requirement(torch).specifier)


@pytest.mark.parametrize("version", [_oldest_claimed(), "2.5.1", "3.0.0"])
def test_pip_keeps_a_torch_in_the_range_and_only_there(wheel, tmp_path, version):
    """A torch of each version sits in the environment itself (installed by pip): one in the
    range stays as it was; one outside it would be replaced, which ``--no-index`` turns into
    a failure naming torch, before anything is uninstalled."""
    kept = version in _torch_range(wheel)
    assert kept == (version == _oldest_claimed())  # the cases span both answers
    python, site = _fresh_env(tmp_path, hide_torch=True)
    standin = _standin_torch(tmp_path, version)
    _pip_install(python, "--no-deps", standin)
    record = site / f"torch-{version}.dist-info" / "RECORD"
    record_before = record.read_bytes()
    done = _install(python, wheel, check=False)
    assert (done.returncode == 0) == kept, done.stdout + done.stderr
    if not kept:
        assert "torch" in done.stderr and "Successfully installed" not in done.stdout
        assert not list(site.glob("nndoctor*"))
    assert record.read_bytes() == record_before  # still there, untouched, either way
    code = "import torch; print(torch.__version__)"
    assert _run(python, "-c", code).stdout.strip() == version
