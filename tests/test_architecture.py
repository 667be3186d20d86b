"""The shape of the code, checked: what import-linter's contracts (``make lint``) do not see.

- no module imports a private name (``_x``) from another module;
- no class is longer than ``MAX_CLASS_LINES``;
- the contract that keeps backends on the core's seam names every other module of the core;
- the README's table of findings is the one the rules' records give;
- the one global patch (``torch.Tensor.backward``) is undone by its handles.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "nndoctor"
MAX_CLASS_LINES = 400
# the modules of the core that backends may import
SEAM = {"schema", "protocol", "changes", "recorder"}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def _private_imports(name: str, path: Path) -> list[str]:
    """``from m import _x`` of another module's private name (a private module is a module,
    not a name: importing one is the contract's business)."""
    bad = []
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or (node.module is None and not node.level):
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            if not alias.name.startswith("_") or alias.name.startswith("__"):
                continue
            try:
                importlib.import_module(f"{base}.{alias.name}")  # a module: fine
            except ImportError:
                bad.append(f"{name}: from {base} import {alias.name}")
    return bad


def test_no_module_imports_a_private_name_of_another():
    found = [line for name, path in _modules() for line in _private_imports(name, path)]
    assert found == []


def test_the_private_name_check_can_fail(tmp_path):
    fake = tmp_path / "m.py"
    fake.write_text("from nndoctor.doctor.ranking import _strength\nfrom nndoctor import _extras\n")
    assert _private_imports("nndoctor.m", fake) == [
        "nndoctor.m: from nndoctor.doctor.ranking import _strength"
    ]


def test_no_class_is_longer_than_the_limit():
    long = []
    for name, path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []


def test_the_seam_contract_names_every_other_module_of_the_core():
    import nndoctor.doctor

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}
    forbidden = set(contracts["seam"]["forbidden_modules"])
    core = {m.name for m in pkgutil.iter_modules(nndoctor.doctor.__path__)}
    assert core >= SEAM
    missing = {f"nndoctor.doctor.{m}" for m in core - SEAM} - forbidden
    assert missing == set()
    assert not any(f"nndoctor.doctor.{m}" in forbidden for m in SEAM)


def test_the_readme_table_of_findings_is_the_records_table():
    from findings_table import markdown_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "README's findings table is stale: run make docs"


def test_listen_backward_handles_restore_tensor_backward(torch):
    from nndoctor.backends.torch import listen_backward

    original = torch.Tensor.backward
    seen: list[float] = []
    a = listen_backward(lambda t: seen.append(float(t.detach())))
    b = listen_backward(lambda t: seen.append(-float(t.detach())))
    assert torch.Tensor.backward is not original
    x = torch.tensor(2.0, requires_grad=True)
    (x * 3).backward()
    assert seen == [6.0, -6.0]
    a.remove()
    assert torch.Tensor.backward is not original  # b still listens
    b.remove()
    b.remove()  # twice: nothing more to undo
    assert torch.Tensor.backward is original


def test_what_a_backward_listener_returns_runs_once_the_gradients_are_ready(torch):
    from nndoctor.backends.torch import listen_backward

    x = torch.tensor(2.0, requires_grad=True)
    grads: list[object] = []
    handle = listen_backward(
        lambda t: lambda: grads.append(None if x.grad is None else x.grad.item())
    )
    try:
        (x**3).backward()  # before the pass x has no gradient; after it 3 x^2 = 12
    finally:
        handle.remove()
    assert grads == [12.0]


@pytest.fixture(autouse=True)
def _tools_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))


def _members(protocol: type) -> set[str]:
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if not n.startswith("_") and callable(v)}
    names |= {n for n, v in vars(protocol).items() if isinstance(v, property)}
    return names


def test_both_backends_and_the_watch_offer_the_whole_protocol(torch, nn):
    from nndoctor.backends.engine import ENGINE
    from nndoctor.backends.torch import TORCH, Watch
    from nndoctor.doctor.protocol import Backend, WatchedRun

    wanted = _members(Backend)
    assert {"prepare", "loss_value", "fork_safe", "apply", "record"} <= wanted
    for backend in (ENGINE, TORCH):
        assert sorted(n for n in wanted if not hasattr(backend, n)) == [], backend.name
    model = nn.Linear(2, 1)
    watch = Watch(model, torch.optim.SGD(model.parameters(), lr=0.1))
    try:
        missing = sorted(n for n in _members(WatchedRun) if not hasattr(watch, n))
    finally:
        watch.close()
    assert missing == []
