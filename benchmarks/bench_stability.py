"""The doctor's stability findings against the detectors the field uses, on the same runs.

Every case of the small language model's catalog (``nndoctor.scenarios.torch_lm``) is trained
once, watched (``run_lm_loop(..., watch=True)``), with every step's loss and total gradient norm
kept; the detectors of ``stability_baselines.py`` (OLMo-core, llm-foundry, Lightning, NeMo,
Megatron-LM, torchtitan) read those series. Per run: the step each flags first (``-``: never)
and, for nndoctor, the cause it names first and the step its evidence says that cause began.
The healthy runs (seeds 0-2 of ``lm`` and of ``lm-padded-batch``, whose one padded batch makes a
spike that recovers) count false alarms: any flag of a baseline, any warning or error of the
doctor (its information findings are not alarms). Measures, never fails.

Note on time: the baselines flag online, at the step shown; the doctor's verdict comes with the
report (end of run; a few causes as live alerts), and the step shown is where the evidence it
names began, read from the recorded run.
Run: ``python benchmarks/bench_stability.py [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nndoctor.scenarios.torch_lm import CORRUPT_AT, LM_CATALOG, run_lm_loop
from stability_baselines import BASELINES

# where each sick case's fault begins: a setting from the start (0), the corrupted batch, or the
# first step whose loss overflowed float16
CAUSE_AT = {
    "lm-no-warmup": 0,
    "lm-no-qk-norm": 0,
    "lm-corrupted-batch": CORRUPT_AT,
    "lm-fp16-half": 0,
    "lm-fp16-scaler-collapse": None,  # the first non-finite loss
}


def doctor_flag(report) -> tuple[str, int | None]:
    """The first cause's code and the step its evidence says it began (else the earliest
    step any warning or error names); ("-", None) when nothing above information."""
    severe = [f for f in report.findings if f.severity in ("error", "warning")]
    if not severe:
        return "-", None
    first = report.causes[0] if report.causes else severe[0]
    steps = [f.evidence.get("step") for f in [first, *severe]]
    step = next((int(s) for s in steps if isinstance(s, int | np.integer)), None)
    return first.code, step


def iteration_of(step: int | None, grad: list[float], skipped: bool) -> int | None:
    """The loop's iteration of the doctor's ``step``: it counts optimizer steps, and an
    iteration a loss scaler skipped (its gradients not finite) is not one. ``skipped``: the
    step is a skipped one, taken after ``step`` optimizer steps (a loss scaler's collapse)."""
    if step is None:
        return None
    stepped = [i for i, g in enumerate(grad) if math.isfinite(g)]
    if not skipped:
        return stepped[step] if step < len(stepped) else None
    after = stepped[step - 1] + 1 if 0 < step <= len(stepped) else 0
    return next((i for i in range(after, len(grad)) if not math.isfinite(grad[i])), after)


def run_case(name: str, seed: int) -> dict:
    case = next(s for s in LM_CATALOG if s.name == name)
    torch.set_num_threads(1)
    start = time.perf_counter()
    setup = case.build(seed)
    run = run_lm_loop(setup, watch=True, grad_norms=True)
    report = run.watch.report()
    loss, grad = run.losses, run.grad_norms
    code, step = doctor_flag(report)
    if setup.options.get("grad_scaler"):
        step = iteration_of(step, grad, skipped=code == "loss-scaler-collapse")
    cause = CAUSE_AT.get(name, 0)
    if cause is None:
        cause = next(i for i, v in enumerate(loss) if not math.isfinite(v))
    return {
        "name": name,
        "seed": seed,
        "expected": case.expected,
        "cause_at": cause,
        "doctor": (code, step),
        "baselines": {b: detect(loss, grad) for b, detect in BASELINES.items()},
        "seconds": time.perf_counter() - start,
    }


def cell(flags: list[int], cause: int = 0) -> str:
    """The first flag at or after the fault, and any flag before it (a false alarm)."""
    early = [f for f in flags if f < cause]
    late = [f for f in flags if f >= cause]
    text = f"step {late[0]}" if late else "-"
    return f"{text} (false alarm at step {early[0]})" if early else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds of each healthy case")
    args = parser.parse_args(argv)
    rows = [run_case(s.name, 0) for s in LM_CATALOG if s.expected is not None]
    healthy = [
        run_case(s.name, seed) for s in LM_CATALOG if s.expected is None
        for seed in range(args.seeds)
    ]  # fmt: skip
    names = list(BASELINES)
    print("| run | fault begins | nndoctor: first cause, begins | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for r in rows:
        code, step = r["doctor"]
        ok = "" if code == r["expected"] else f" (expected {r['expected']})"
        cause = r["cause_at"]
        doctor = cell([] if step is None else [step], cause)
        cells = [cell(r["baselines"][b], cause) for b in names]
        print(
            f"| {r['name']} | step {cause} | `{code}`{ok}, {doctor} | " + " | ".join(cells) + " |"
        )
    for r in healthy:
        code, step = r["doctor"]
        doctor = "-" if code == "-" else f"ALARM `{code}` step {step}"
        cells = [f"ALARM step {r['baselines'][b][0]}" if r["baselines"][b] else "-" for b in names]
        label = f"{r['name']} (seed {r['seed']}, healthy)"
        print(f"| {label} | - | {doctor} | " + " | ".join(cells) + " |")
    print()
    sick = len(rows)
    named = sum(r["doctor"][0] == r["expected"] for r in rows)
    alarms = sum(r["doctor"][0] != "-" for r in healthy)
    print(
        f"nndoctor: {named}/{sick} sick runs named first with the expected code; "
        f"false alarms on {alarms}/{len(healthy)} healthy runs"
    )
    for b in names:
        flagged = sum(any(f >= r["cause_at"] for f in r["baselines"][b]) for r in rows)
        early = sum(any(f < r["cause_at"] for f in r["baselines"][b]) for r in rows)
        alarms = sum(bool(r["baselines"][b]) for r in healthy)
        print(
            f"{b}: flagged {flagged}/{sick} sick runs at or after the fault; false alarms on "
            f"{alarms}/{len(healthy)} healthy runs and {early} before the fault"
        )
    print(f"({sum(r['seconds'] for r in rows + healthy):.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
