"""Reports of every catalog and held-out case at fixed seeds, to check a refactoring keeps them.

``python tools/snapshot_reports.py write DIR`` writes one JSON per case: ``diagnose`` without
trials (deterministic: trial budgets follow the clock) for the engine catalog, the engine's
held-out sets, the PyTorch catalog and the PyTorch held-out set, and ``watch`` around a plain
loop on a fixed probe schedule (``budget=None``) for the PyTorch catalog. Timings are left out.
``python tools/snapshot_reports.py compare OLD NEW`` lists every case whose report differs, with
the first differing keys, and exits 1 when any does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _clean(value: Any) -> Any:
    """The report's dict without what depends on the clock."""
    if isinstance(value, dict):
        return {
            k: _clean(v)
            for k, v in value.items()
            if "seconds" not in k and k not in ("wall_time", "budget")
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _jobs() -> list[tuple[str, str, int, int]]:
    """``(kind, name, index, seed)`` of every case."""
    from heldout import SETS
    from nndoctor.scenarios import CATALOG, TORCH_CATALOG

    jobs = [("engine", s.name, i, 0) for i, s in enumerate(CATALOG)]
    for k, case_set in enumerate(SETS):
        for i, case in enumerate(case_set.cases):
            jobs += [("heldout", f"set{k + 1}-{case.name}", k * 1000 + i, s) for s in case.seeds]
    jobs += [("torch", s.name, i, 0) for i, s in enumerate(TORCH_CATALOG)]
    jobs += [("torch-watch", s.name, i, 0) for i, s in enumerate(TORCH_CATALOG)]
    from heldout import torch_set

    for i, case in enumerate(torch_set.SET.cases):
        jobs += [("torch-heldout", case.name, i, s) for s in case.seeds]
    return jobs


def _diagnose(setup: Any, seed: int) -> dict[str, Any]:
    from nndoctor import diagnose

    kwargs = dict(setup.training) if hasattr(setup, "training") else {}
    if not kwargs:
        kwargs = {
            "loss": setup.loss,
            "optimizer": setup.optimizer,
            "epochs": setup.epochs,
            "batch_size": setup.batch_size,
            "shuffle": setup.shuffle,
        }
    report = diagnose(
        setup.model, setup.X, setup.Y, seed=seed, trials=False, progress=False, **kwargs
    )
    return report.to_dict()


def _watch(setup: Any) -> dict[str, Any]:
    import torch

    import nndoctor
    from nndoctor.scenarios.torch_cases import _as_tensors

    X, Y = _as_tensors(setup)
    model, optimizer = setup.model, setup.optimizer(setup.model.parameters())
    make = setup.options.get("scheduler")
    scheduler = make(optimizer) if make is not None else None
    functional = not isinstance(setup.loss, torch.nn.Module)
    n, batch = X.shape[0], setup.batch_size or X.shape[0]
    gen = torch.Generator().manual_seed(0)
    w = nndoctor.watch(
        model, optimizer, loss=None if functional else setup.loss, budget=None, alerts=False
    )
    with w:
        for _ in range(setup.epochs):
            order = torch.randperm(n, generator=gen) if setup.shuffle else torch.arange(n)
            for lo in range(0, n, batch):
                rows = order[lo : lo + batch]
                if setup.options.get("zero_grad", True):
                    optimizer.zero_grad()
                out = model(X[rows])
                loss = setup.loss(out, Y[rows])
                if functional:
                    w.log(loss, out, Y[rows])
                loss.backward()
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
    return w.report().to_dict()


def _one(job: tuple[str, str, int, int]) -> tuple[str, dict[str, Any]]:
    kind, name, index, seed = job
    key = f"{kind}--{name}--{seed}"
    try:
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            if kind == "engine":
                from nndoctor.scenarios import CATALOG

                out = _diagnose(CATALOG[index].build(seed), seed)
            elif kind == "heldout":
                from heldout import SETS

                case = SETS[index // 1000].cases[index % 1000]
                out = _diagnose(case.build(seed), seed)
            elif kind in ("torch", "torch-watch"):
                from nndoctor.scenarios import TORCH_CATALOG

                setup = TORCH_CATALOG[index].build(seed)
                out = _diagnose(setup, seed) if kind == "torch" else _watch(setup)
            else:
                from heldout import torch_set

                out = _diagnose(torch_set.SET.cases[index].build(seed), seed)
    except Exception as exc:  # a crash is part of the behaviour to keep
        out = {"crash": f"{type(exc).__name__}: {exc}"}
    return key, _clean(json.loads(json.dumps(out, default=str)))


def write(folder: Path, workers: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for key, out in pool.imap_unordered(_one, _jobs()):
            (folder / f"{key}.json").write_text(json.dumps(out, indent=1, sort_keys=True))
            print(key, out["findings"][0]["code"] if out.get("findings") else out.get("crash"))


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'new' if k in b else 'old'}")
            else:
                out += _diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {str(a)[:80]} -> {str(b)[:80]}"]


def compare(old: Path, new: Path) -> int:
    bad = 0
    for f in sorted(old.glob("*.json")):
        g = new / f.name
        if not g.exists():
            print(f"{f.stem}: missing in {new}")
            bad += 1
            continue
        d = _diff(json.loads(f.read_text()), json.loads(g.read_text()))
        if d:
            bad += 1
            print(f"{f.stem}: {len(d)} difference(s)")
            for line in d[:6]:
                print(f"    {line}")
    print(f"{bad} of {len(list(old.glob('*.json')))} reports differ")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("folder", type=Path)
    w.add_argument("--workers", type=int, default=2)
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "write":
        write(args.folder, args.workers)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    raise SystemExit(main())
