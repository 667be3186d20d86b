"""From a run to its report: the doctor's pipeline, through the backend protocol alone.

- :func:`examine`: what ``diagnose`` does with a prepared :class:`~nndoctor.doctor.schema.Run`:
  the bounds, the gradient check and the pre-flight checks, the recorded run, the costly checks
  it still needs (:mod:`nndoctor.doctor.lazy`), the rules, the trials;
- :func:`make_report`: the rules on what was recorded, wrapped in a :class:`Report`;
- :func:`watched_report`: the report of a watch around the user's own loop
  (:class:`~nndoctor.doctor.protocol.WatchedRun`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from nndoctor.doctor import lazy, preflight
from nndoctor.doctor.context import build_context, fitted_bounds, full_bounds, make_context
from nndoctor.doctor.protocol import WatchedRun
from nndoctor.doctor.ranking import rank
from nndoctor.doctor.report import Report
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.rules import RULES, available, run_rules, select
from nndoctor.doctor.schema import AUTOENCODER, Context, Probes, Run
from nndoctor.doctor.trials import FIXES, run_trials

# rows a watched loop's sample needs before the fitted bounds are computed on it
WATCH_FIT_ROWS = 256


def make_report(
    probes: Probes,
    ctx: Context,
    train_seconds: float | None,
    rules: tuple[Rule, ...] = RULES,
) -> Report:
    """Run ``rules`` (those whose needs the run has) on what was recorded and wrap the
    ranked findings in a :class:`Report`."""
    findings = rank(run_rules(probes, ctx, select(available(probes), rules)))
    summary = {
        "epochs_run": len(probes.epoch_loss),
        "steps": len(probes.step_loss),
        "final_loss": probes.final_loss,
        "loss": ctx.loss.words,
        "optimizer": ctx.optimizer,
        "task": ctx.task,
        "probes": len(probes.steps),
        "probe_every": probes.probe_every,
    }
    if probes.diverged is not None:
        # the loss became NaN or inf: final_loss is then the mean of the last finite steps;
        # what the run ended on, None where the backend stopped before recording it
        recorded = not np.all(np.isfinite(probes.step_loss))
        end = float(probes.step_loss[-1]) if recorded else None
        if end is None or not np.isfinite(end):  # (not a run that recovered)
            summary["nonfinite_final_loss"] = end
    if train_seconds is not None:
        summary["train_seconds"] = train_seconds
    return Report(findings, summary, dict(ctx.bounds), dict(ctx.preflight), probes.as_dict())


def deferred_checks(
    run: Run, probes: Probes, ctx: Context, lap: Callable[[str], None]
) -> dict[str, str]:
    """Run the costly checks a recorded run still needs (:mod:`nndoctor.doctor.lazy`) into
    ``ctx``, or skip them: ``{check: why}`` for those skipped, the reason added to the bounds'
    text too. Run, they give what they would have given up front (bit-identical bounds)."""
    reason = lazy.skip_reason(probes, ctx)
    if reason is None:
        ctx.bounds = full_bounds(run, ctx)
        lap("bounds")
        # the same place in the dict as when run up front: after zeroed_inputs
        ctx.preflight = {**ctx.preflight, "tiny_batch": preflight.tiny_batch(run, ctx)}
        lap("preflight")
        return {}
    fitted = fitted_bounds(len(run.X), int(np.prod(run.X.shape[1:])), ctx.task, ctx.structure)
    # a loss without a baseline gets no fitted bound either way: nothing was skipped there
    skipped = {
        k: reason
        for k in lazy.SKIPPABLE
        if k == "tiny_batch" or (k in fitted and "baseline" in ctx.bounds)
    }
    names = [lazy.SKIPPABLE[k] for k in skipped]
    words = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    sentence = f"skipped {words} because {reason}"
    ctx.bounds["text"] = "; ".join(t for t in (ctx.bounds.get("text"), sentence) if t)
    return skipped


def examine(run: Run, *, trials: bool = True, progress: bool | None = None) -> Report:
    """The report of ``run``: what ``diagnose`` does once its backend prepared the run.

    Parameters
    ----------
    run : Run
        The user's setup, copied and validated by its backend (``backend.prepare``).
    trials : bool
        Re-run training with the fix of each top cause to confirm it.
    progress : bool or None
        Progress bars of the recorded run and the trials.
    """
    start = time.perf_counter()
    backend = run.backend
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[part], clock = seconds.get(part, 0.0) + now - clock, now

    # a backend that defers the costly checks runs them after the recorded run, when needed
    defer = backend.deferred_checks
    ctx = build_context(run, fits=not defer)  # the bounds (and the data statistics)
    lap("bounds")
    ctx.gradcheck = backend.gradient_check(run)
    lap("gradcheck")
    ctx.preflight = preflight.run_all(run, ctx, tiny=not defer)
    lap("preflight")

    probes, fit = backend.record(run, progress)
    lap("train")
    skipped = deferred_checks(run, probes, ctx, lap) if defer else {}
    report = make_report(probes, ctx, fit.wall_time)
    if skipped:
        report.summary["skipped"] = skipped
    lap("rules")
    if trials:
        run_trials(
            report.findings,
            run,
            probes.epoch_loss,
            ctx,
            run_seconds=fit.wall_time,
            progress=progress,
        )
        report.findings = rank(report.findings)  # trial verdicts outweigh thresholds
        lap("trials")
    report.summary["autoencoder"] = ctx.task == AUTOENCODER
    report.summary["seconds"] = seconds
    report.summary["diagnose_seconds"] = time.perf_counter() - start
    return report


def watched_report(watch: WatchedRun, seed: int = 0, probes: Probes | None = None) -> Report:
    """The report of a watched loop: the rules on what the hooks saw, with the data
    statistics and bounds of the rows seen on probe steps (the loop's data is not ours to
    read). Without targets, the rules that need them stay silent. No trials ran; the summary
    names the causes :func:`nndoctor.diagnose` could confirm by re-training.

    ``probes``: what to judge instead of ``watch.probes()`` (the merged probes of several
    ranks)."""
    probes = watch.probes() if probes is None else probes
    samples = None if watch.adversarial else watch.samples()
    have_targets = samples is not None
    if samples is not None:
        X, Y = samples  # Y: one row per unit of the loss (a sample, a token, a pixel)
        if Y.size == X.size and np.array_equal(Y.reshape(X.shape), X):
            Y = X
    else:
        X = Y = np.zeros((2, 1))
    # the fitted bounds (the best affine map, the predictability test) on the rows the probe
    # steps kept: on a few dozen their verdicts are noise (a true signal missed for want of
    # power reads as "no signal"), so only from WATCH_FIT_ROWS rows
    fits = have_targets and len(X) >= WATCH_FIT_ROWS
    ctx = make_context(
        watch.layer_specs(),
        watch.loss_spec(),
        watch.optimizer_spec(),
        X,
        Y,
        probes.batch_size,
        seed,
        None,
        fits,
        structure=watch.task_spec(),
    )
    if not have_targets:
        # no targets seen: no baseline either (a constant fitted to zeros would read 0)
        ctx.bounds = {"text": "no bounds: the watch saw no targets"}
    elif not fits:
        note = (
            f"skipped the best affine map and the predictability test: the probe steps kept "
            f"{len(X)} rows, fewer than the {WATCH_FIT_ROWS} they need to mean something"
        )
        ctx.bounds["text"] = "; ".join(t for t in (ctx.bounds.get("text"), note) if t)
    rules = select(available(probes, have_targets))
    report = make_report(probes, ctx, None, rules)
    confirmable = [f.code for f in report.causes if f.code in FIXES]
    report.summary["trials"] = (
        "not run: watch() sees one run; diagnose() can confirm by re-training: "
        + (", ".join(confirmable) if confirmable else "none of these causes")
    )
    # a user's loop shows no epochs: epoch_loss holds equal stretches of steps, not epochs
    report.summary["epochs_known"] = watch.epochs_known
    if watch.adversarial:
        report.summary["targets"] = (
            "made up by the loop (its loss runs through another model trained beside it, as "
            "in a GAN): the rules that read the targets were skipped"
        )
    elif not have_targets:
        report.summary["targets"] = "not seen: the rules that need the targets were skipped"
    if watch.failed:
        report.summary["hook_failure"] = watch.failed
    return report
