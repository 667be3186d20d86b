"""What ``nndoctor run`` and the Lightning and Hugging Face callbacks cost next to the plain run.

Issue 8 asks that ``run`` and the callbacks add no more than ``watch`` does: within 1.05x of
the plain run at default settings. Each variant is timed in this process, interleaved with its
plain run after a warm-up of each (plain, watched, watched, plain, ...), and the median of the
rounds' ratios is kept, so the ratios do not depend on the machine or its load; the quartiles
of the rounds' ratios show how far one round strays (on a shared 2-core machine a sub-second
run moves by a few percent from round to round). Timed: the training only (the report, built
once at the end, is timed apart).

- ``watch``: ``run_plain_loop`` of a catalog scenario with and without ``nndoctor.watch``;
- ``run``: the scenario's example script run as ``nndoctor run`` runs it (global hooks, one
  watch, live alerts on) against ``python script`` (``runpy`` alone);
- ``lightning``, ``transformers``: a tiny model's ``fit`` / ``train`` with and without
  ``DoctorCallback`` (skipped when the extra is missing); for Lightning also an empty
  ``Callback``, what any callback costs there (every hook of every callback runs each step).

Run: ``python benchmarks/bench_overhead_integrations.py [--rounds N]`` (N pairs for the
Lightning and Hugging Face models, 3N for the sub-second ``watch`` and ``run`` variants).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from nndoctor.runner import GlobalWatcher, run_script, torch_watch
from nndoctor.scenarios import TORCH_CATALOG, run_plain_loop

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCENARIOS = ("torch-seed-xavier", "torch-cnn-batchnorm")
LIMIT = 1.05


# CPU seconds spent building and writing the reports at the end of a fit / train (the
# callbacks' end hooks run inside the framework's call): taken out of the training time
_END = [0.0]


def _timed_end(hook: Callable[..., object]) -> Callable[..., object]:
    def timed(*args: object, **kwargs: object) -> object:
        start = time.process_time()
        try:
            return hook(*args, **kwargs)
        finally:
            _END[0] += time.process_time() - start

    return timed


def _quiet(fn: Callable[[], object]) -> float:
    """CPU seconds of ``fn`` (one torch thread: other jobs do not count), less its reports."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        _END[0] = 0.0
        start = time.process_time()
        fn()
        return time.process_time() - start - _END[0]


def interleaved(plain: Callable[[], object], doctor: Callable[[], object], rounds: int):
    """Median seconds of ``plain`` and of ``doctor``, and the median and quartiles of the
    rounds' ratios: after one warm-up of each, run in pairs, ``doctor`` first in every other
    pair (the position in a pair costs a few percent on these sub-second runs)."""
    _quiet(plain), _quiet(doctor)
    a, b = [], []
    for r in range(rounds):
        if r % 2:
            b.append(_quiet(doctor))
            a.append(_quiet(plain))
        else:
            a.append(_quiet(plain))
            b.append(_quiet(doctor))
    ratios = [y / x for x, y in zip(a, b, strict=True)]
    q1, ratio, q3 = statistics.quantiles(ratios, n=4)
    return statistics.median(a), statistics.median(b), ratio, q1, q3


def _scenario(name: str):
    return next(s for s in TORCH_CATALOG if s.name == name)


def bench_watch(name: str, rounds: int):
    scenario = _scenario(name)

    def watched() -> None:
        run = run_plain_loop(scenario.build(0), watch=True)
        run.watch.close()

    return interleaved(lambda: run_plain_loop(scenario.build(0)), watched, rounds)


def bench_run(name: str, rounds: int):
    script = str(EXAMPLES / (name.replace("-", "_") + ".py"))

    def watched() -> None:
        watcher = GlobalWatcher(torch_watch)  # as `nndoctor run` starts it: alerts on
        watcher.install()
        try:
            run_script(script, [])
        finally:
            watcher.uninstall()
            for pair in watcher.pairs:
                pair.watch.close()

    return interleaved(lambda: run_script(script, []), watched, rounds)


def _lightning(rounds: int):
    import lightning.pytorch as pl

    from nndoctor.integrations.lightning import DoctorCallback

    DoctorCallback.on_fit_end = _timed_end(DoctorCallback.on_fit_end)

    nn = torch.nn

    class Regressor(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    g = torch.Generator().manual_seed(0)
    X = torch.randn(2048, 16, generator=g)
    Y = X[:, :1] * X[:, 1:2]
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=32)

    def fit(callbacks: list) -> None:
        torch.manual_seed(0)
        trainer = pl.Trainer(
            max_epochs=3,
            callbacks=callbacks,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(Regressor(), data)

    # what any callback costs: Lightning calls every hook of every callback on every step
    return [
        ("lightning tiny model", *interleaved(
            lambda: fit([]), lambda: fit([DoctorCallback(verbose=False)]), rounds
        )),
        ("lightning, an empty Callback", *interleaved(
            lambda: fit([]), lambda: fit([pl.Callback()]), rounds
        )),
    ]  # fmt: skip


def _transformers(rounds: int):
    import transformers

    from nndoctor.integrations.transformers import DoctorCallback

    DoctorCallback.on_train_end = _timed_end(DoctorCallback.on_train_end)

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 100, (1024, 8), generator=g)
    rows = [{"input_ids": i, "labels": int(i[0] < 50)} for i in ids]
    config = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=16,
    )

    def train(callbacks: list) -> None:
        torch.manual_seed(0)
        model = transformers.BertForSequenceClassification(config)
        with tempfile.TemporaryDirectory() as out:
            args = transformers.TrainingArguments(
                output_dir=out,
                per_device_train_batch_size=32,
                max_steps=100,
                learning_rate=1e-3,
                report_to=[],
                save_strategy="no",
                logging_strategy="no",
                use_cpu=True,
                disable_tqdm=True,
            )
            trainer = transformers.Trainer(
                model=model, args=args, train_dataset=rows, callbacks=callbacks
            )
            trainer.train()

    return [
        ("transformers tiny model", *interleaved(
            lambda: train([]), lambda: train([DoctorCallback(verbose=False)]), rounds
        )),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the 2-core machines are shared
    rows = []
    # a pair of these runs lasts 0.1-0.5 s and one round strays more than a longer run's:
    # three times the rounds, about the time of the Lightning model's
    short = 3 * args.rounds
    for name in SCENARIOS:
        rows.append((f"watch  {name}", *bench_watch(name, short)))
        rows.append((f"run    {name}", *bench_run(name, short)))
    for label, bench in (("lightning", _lightning), ("transformers", _transformers)):
        try:
            rows.extend(bench(args.rounds))
        except ImportError as exc:
            print(f"{label}: skipped ({exc})", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    print(f"{'variant'.ljust(width)}  plain s  doctor s  ratio   quartiles")
    for label, plain, doctor, ratio, q1, q3 in rows:
        print(
            f"{label.ljust(width)}  {plain:7.3f}  {doctor:8.3f}  {ratio:5.3f}x  {q1:5.3f}-{q3:5.3f}"
        )
    watch = {r[0].split()[-1]: r[3] for r in rows if r[0].startswith("watch")}
    run = {r[0].split()[-1]: r[3] for r in rows if r[0].startswith("run")}
    for name in SCENARIOS:
        print(f"{name}: run / watch ratio {run[name] / watch[name]:.3f}")
    print(f"limit: {LIMIT:.2f}x of the plain run (issue 8); see benchmarks/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
