"""The small language model's catalog (``nndoctor.scenarios.torch_lm``, issue 23) through every
way in: ``diagnose`` (trials on unless ``--no-trials``), ``nndoctor.watch`` around the plain loop
of ``run_lm_loop``, ``nndoctor run`` on the case's script (``torch_lm.script``) in a subprocess,
and the Hugging Face ``Trainer`` with ``DoctorCallback`` on a randomly initialised GPT-2 of the
same size (its three settings: healthy, no warmup, no qk-layernorm at a high rate; nothing is
downloaded). Per case and way: the first cause (``-``: none), the counts of error and warning
findings, and a verdict: ``ok`` (sick: the expected cause first; healthy: no error or warning),
``MISS``, ``ALARM`` or ``CRASH``; for ``diagnose`` the first cause's trial verdict too.
Measures, never fails; needs torch and transformers.
Run: ``python benchmarks/bench_lm_catalog.py [--no-trials] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import nndoctor
from nndoctor.doctor import Report
from nndoctor.scenarios.torch_lm import LM_CATALOG, bigram_sequences, run_lm_loop, script


def verdict(expected: str | None, reports: list[Report]) -> str:
    if expected is None:
        severe = [f for r in reports for f in r.findings if f.severity in ("error", "warning")]
        return "ALARM" if severe else "ok"
    firsts = [r.causes[0].code for r in reports if r.causes]
    return "ok" if expected in firsts else "MISS"


def describe(report: Report, trial: bool = False) -> str:
    first = report.causes[0] if report.causes else None
    errors = sum(f.severity == "error" for f in report.findings)
    warns = sum(f.severity == "warning" for f in report.findings)
    text = f"{first.code if first else '-'} ({errors}E/{warns}W)"
    if trial and first is not None and first.trial:
        text += f" [{first.trial.get('verdict')}]"
    return text


def by_diagnose(name: str, trials: bool) -> list[Report]:
    setup = next(s for s in LM_CATALOG if s.name == name).build(0)
    return [nndoctor.diagnose(setup.model, setup.X, setup.Y, trials=trials, **setup.training)]


def by_watch(name: str) -> list[Report]:
    setup = next(s for s in LM_CATALOG if s.name == name).build(0)
    return [run_lm_loop(setup, watch=True).watch.report()]


def by_run(name: str) -> list[Report]:
    with tempfile.TemporaryDirectory() as folder:
        path, out = Path(folder) / "lm.py", Path(folder) / "report.json"
        path.write_text(script(name, file="lm.py"), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "nndoctor", "run", "--json", str(out), "-q", str(path)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if not out.exists():
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "no JSON")
        sections = json.loads(out.read_text(encoding="utf-8"))
    return [Report.from_dict(s["report"]) for s in sections]


# the Hugging Face runs: (name, expected, learning rate, warmup steps)
HF_CASES = [
    ("hf-gpt2", None, 1e-2, 20),
    ("hf-gpt2-no-warmup", "update-ratio-jump", 0.1, 0),
    ("hf-gpt2-no-qk-norm", "attention-logit-growth", 0.3, 50),
]


def by_trainer(lr: float, warmup: int) -> list[Report]:
    """A randomly initialised GPT-2 (2 layers, width 32) trained by the Trainer on the
    catalog's bigram language for 200 steps, AdamW without clipping (clipping is a fix)."""
    import transformers

    from nndoctor.integrations.transformers import DoctorCallback

    X, _ = bigram_sequences(np.random.default_rng(0), 3200, length=17)

    class Data:
        def __len__(self) -> int:
            return len(X)

        def __getitem__(self, i: int) -> dict:
            ids = torch.as_tensor(X[i])
            return {"input_ids": ids, "labels": ids}

    config = transformers.GPT2Config(
        vocab_size=32, n_positions=17, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    with tempfile.TemporaryDirectory() as folder:
        args = transformers.TrainingArguments(
            output_dir=folder, per_device_train_batch_size=16, max_steps=200, learning_rate=lr,
            warmup_steps=warmup, lr_scheduler_type="constant_with_warmup", max_grad_norm=0.0,
            adam_beta2=0.999, weight_decay=0.0, report_to=[], save_strategy="no",
            logging_strategy="no", use_cpu=True, disable_tqdm=True, seed=0,
        )  # fmt: skip
        doctor = DoctorCallback(verbose=False, alerts=False)
        transformers.Trainer(
            model=model, args=args, train_dataset=Data(), callbacks=[doctor]
        ).train()
    return [doctor.report()]


# the Lightning runs: the catalog's cases trained by a LightningModule (warmup as a per-step
# LambdaLR, clipping as the Trainer's gradient_clip_val)
LIGHTNING_CASES = ["lm", "lm-no-warmup", "lm-no-qk-norm"]


def by_lightning(name: str) -> list[Report]:
    import lightning.pytorch as pl

    from nndoctor.integrations.lightning import DoctorCallback

    setup = next(s for s in LM_CATALOG if s.name == name).build(0)
    warmup = setup.options.get("warmup", 0)

    class LM(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = setup.model

        def training_step(self, batch: tuple, index: int) -> torch.Tensor:
            x, y = batch
            return setup.loss(self.model(x), y)

        def configure_optimizers(self) -> dict:
            opt = setup.optimizer(self.model.parameters())
            rate = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": rate, "interval": "step"}}

    data = torch.utils.data.TensorDataset(torch.as_tensor(setup.X), torch.as_tensor(setup.Y))
    doctor = DoctorCallback(verbose=False, alerts=False)
    pl.Trainer(
        max_epochs=setup.epochs, accelerator="cpu", callbacks=[doctor], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        gradient_clip_val=setup.options.get("clip"),
    ).fit(LM(), torch.utils.data.DataLoader(data, batch_size=setup.batch_size))  # fmt: skip
    return [doctor.report()]


def timed(work) -> tuple[str, str, float]:
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reports = work()
    except Exception as exc:  # a crash is a result: note it and go on
        line = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return "CRASH", line, time.perf_counter() - start
    return "", reports, time.perf_counter() - start  # type: ignore[return-value]


def cell(counts: dict[str, list[int]], way: str, expected: str | None, work) -> str:
    """One table cell: ``work``'s reports with their verdict and time (a crash as such),
    counted under ``way``."""
    crash, reports, seconds = timed(work)
    ok = counts.setdefault(way, [0, 0])
    ok[1] += 1
    if crash:
        return f"CRASH: {reports}"
    v = verdict(expected, reports)
    ok[0] += v == "ok"
    text = "; ".join(describe(r, way == "diagnose") for r in reports)
    return f"{text} {v} ({seconds:.0f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-trials", action="store_true")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    counts: dict[str, list[int]] = {}
    print("| case | expected | diagnose | watch | nndoctor run |")
    print("|---|---|---|---|---|")
    for case in LM_CATALOG:
        if args.only and case.name not in args.only:
            continue
        cells = [
            cell(counts, way, case.expected, work)
            for way, work in (
                ("diagnose", lambda n=case.name: by_diagnose(n, not args.no_trials)),
                ("watch", lambda n=case.name: by_watch(n)),
                ("run", lambda n=case.name: by_run(n)),
            )
        ]
        print(f"| {case.name} | {case.expected or 'healthy'} | " + " | ".join(cells) + " |")
    print()
    print("| Hugging Face Trainer (GPT-2, random init) | expected | DoctorCallback |")
    print("|---|---|---|")
    for name, expected, lr, warmup in HF_CASES:
        if args.only and name not in args.only:
            continue
        text = cell(counts, "trainer", expected, lambda lr=lr, w=warmup: by_trainer(lr, w))
        print(f"| {name} | {expected or 'healthy'} | {text} |")
    print()
    print("| Lightning Trainer | expected | DoctorCallback |")
    print("|---|---|---|")
    for name in LIGHTNING_CASES:
        if args.only and name not in args.only:
            continue
        expected = next(s for s in LM_CATALOG if s.name == name).expected
        text = cell(counts, "lightning", expected, lambda name=name: by_lightning(name))
        print(f"| {name} | {expected or 'healthy'} | {text} |")
    print()
    for way, (good, total) in counts.items():
        print(f"{way}: {good}/{total} ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
