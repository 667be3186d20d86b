"""The loss curve and the outputs: divergence, oscillation, plateau, collapse, pre-flight."""

from __future__ import annotations

import math

import numpy as np

from nndoctor.doctor.finding import ERROR, SYMPTOM, WARNING, Finding
from nndoctor.doctor.rule import TARGETS, Rule
from nndoctor.doctor.rules.common import baseline, curve_noise, curve_points
from nndoctor.doctor.rules.values import nonfinite_during_training
from nndoctor.doctor.schema import Context, Probes

# prediction std across inputs below this share of the target std: collapsed
COLLAPSE_RATIO = 0.1
# share of epoch-to-epoch loss changes that flip sign, and their mean size relative to the loss
OSC_SIGN_SHARE = 0.4
OSC_AMPLITUDE = 0.05
# ... measured against at least this share of the constant baseline
OSC_FLOOR = 0.1
# an epoch loss above this multiple of the best so far (after the first tenth) is a spike
SPIKE_FACTOR = 2.0
# ... and changes (or a spike) count only when larger than this many standard errors of the
# minibatch noise of the points (a point is the mean of noisy steps)
NOISE_FACTOR = 3.0
# plateau: relative change over the last half of training below this ...
PLATEAU_CHANGE = 0.01
# ... while the loss is still above this share of the constant baseline
PLATEAU_HIGH = 0.5
# fewest epochs for curve-shape rules
MIN_EPOCHS = 10
# tiny-batch overfit must bring the loss below this share of its constant baseline
OVERFIT_RATIO = 0.1
# the zeroed-input run counts as "as good" when the real run is not below it by this share
ZERO_INPUT_MARGIN = 0.02
# the loss at initialisation above this multiple of the constant baseline: the net starts far
# from any sensible output (the healthy runs of the catalogs and held-out sets: at most 10.6x)
INIT_LOSS_FACTOR = 100.0


def diverged(probes: Probes, ctx: Context) -> list[Finding]:
    d = probes.diverged
    if d is None:
        return _nonfinite_weights(probes)
    where = d.get("layer") or "the loss"
    return [
        DIVERGED.finding(
            ERROR,
            f"the loss became NaN/inf at step {d['step']} (epoch {d['epoch']}); first "
            f"non-finite: {where}",
            evidence={
                "step": d["step"],
                "epoch": d["epoch"],
                "first_nonfinite": where,
                "last_finite_loss": probes.final_loss,
            },
            why="once a value overflows, NaN spreads to every weight and every output",
            fix="see the causes above; usually a lower learning rate or scaled inputs",
            score=1.0,
        )
    ]


def _nonfinite_weights(probes: Probes) -> list[Finding]:
    """Weights or gradients that became NaN/inf while every step's loss stayed finite (a dead
    ReLU or a saturated tanh hides them from the loss): the same symptom, named by layer."""
    if not np.all(np.isfinite(probes.step_loss)):
        return []
    found = nonfinite_during_training(probes)
    if found is None:
        return []
    layer, what, step = found
    when = f"at step {step}" if step is not None else "by the end of training"
    return [
        DIVERGED.finding(
            ERROR,
            f"layer {layer}'s {what} became NaN/inf {when} while the loss stayed finite",
            evidence={"step": step, "first_nonfinite": f"layer {layer} ({what})", "layer": layer},
            why="a unit whose weights overflowed is pinned (a dead ReLU, a saturated tanh) and "
            "hides the overflow from the loss; it can never learn again",
            fix="see the causes above; usually a lower learning rate, scaled inputs, or "
            "gradient clipping",
            score=0.8,
        )
    ]


def oscillating_loss(probes: Probes, ctx: Context) -> list[Finding]:
    curve = probes.finite_epoch_loss
    if curve.size < MIN_EPOCHS:
        return []
    half = curve.size // 2
    late = curve[half:]
    diff = np.diff(late)
    signs = np.sign(diff[diff != 0])
    flips = float(np.mean(signs[1:] != signs[:-1])) if signs.size > 1 else 0.0
    # wiggles of a loss already near 0 are harmless: measure against a floor of the baseline
    L0 = baseline(ctx)
    floor = OSC_FLOOR * L0 if math.isfinite(L0) else 0.0
    amplitude = float(np.mean(np.abs(diff)) / max(np.mean(np.abs(late)), floor, 1e-300))
    # minibatch noise: each point is a mean of noisy steps; changes no larger than that noise
    # are not oscillation (0 for full-batch training)
    noise = curve_noise(probes)
    diff_noise = float(np.mean(np.hypot(noise[half:-1], noise[half + 1 :]))) if diff.size else 0.0
    beyond_noise = float(np.mean(np.abs(diff))) > NOISE_FACTOR * diff_noise if diff.size else False
    # a loop without epochs: its points are means of a few steps, whose lowest is a low draw of
    # the noise (and one stretch of easy batches sets it for good); its spikes are judged step
    # by step, with their recovery, by loss-spike and spike-divergence
    spikes = _epoch_spikes(curve, noise) if probes.epochs_known else 0
    if not ((flips > OSC_SIGN_SHARE and amplitude > OSC_AMPLITUDE and beyond_noise) or spikes):
        return []
    point = curve_points(probes)
    return [
        OSCILLATING_LOSS.finding(
            WARNING,
            f"the loss changes direction from {point} to {point} {flips:.0%} of the time by "
            f"{amplitude:.0%} on average, with {spikes} spike(s)",
            evidence={
                "sign_flip_share": flips,
                "relative_amplitude": amplitude,
                "spikes": spikes,
                "minibatch_noise": diff_noise / max(np.mean(np.abs(late)), floor, 1e-300),
            },
            why="the steps overshoot the minimum back and forth instead of descending",
            fix="lower the learning rate or use larger batches",
            score=min(1.0, amplitude * 5),
        )
    ]


def _epoch_spikes(curve: np.ndarray, noise: np.ndarray) -> int:
    """Epochs (after the first tenth) above ``SPIKE_FACTOR`` times the best so far, by more
    than ``NOISE_FACTOR`` standard errors of their noise."""
    start = max(1, curve.size // 10)
    # a multiple of the best so far means "far above" only for a positive loss (a negative
    # BCE, from targets outside [0, 1], would make every epoch a spike)
    prev = np.minimum.accumulate(curve)[start - 1 : -1]
    above = curve[start:] - prev > NOISE_FACTOR * np.hypot(noise[start:], noise[start:])
    return int(np.sum((prev > 0) & (curve[start:] > SPIKE_FACTOR * prev) & above))


def loss_plateau(probes: Probes, ctx: Context) -> list[Finding]:
    curve = probes.finite_epoch_loss
    L0 = baseline(ctx)
    if curve.size < MIN_EPOCHS or not math.isfinite(L0) or L0 <= 0:
        return []
    mid, end = curve[curve.size // 2], curve[-1]
    change = abs(mid - end) / max(abs(mid), 1e-300)
    if change >= PLATEAU_CHANGE or end < PLATEAU_HIGH * L0:
        return []
    return [
        LOSS_PLATEAU.finding(
            WARNING,
            f"the loss has stayed at {end:.4g} for the last half of training "
            f"({end / L0:.0%} of the constant baseline {L0:.4g})",
            evidence={
                "final_loss": end,
                "relative_change_last_half": change,
                "baseline": L0,
            },
            why="the gradient no longer points anywhere that lowers the loss much: see the "
            "causes above",
            fix="address the causes above",
            score=0.5,
        )
    ]


def output_collapse(probes: Probes, ctx: Context) -> list[Finding]:
    P, T = probes.probe_output, probes.probe_target
    if len(T) < 2 or len(P) < 2:
        return []  # no end state to judge (targets the watch never saw)
    t_std = float(np.mean(T.std(axis=0)))
    if t_std <= 0 or not np.all(np.isfinite(P)):
        return []
    p_std = float(np.mean(P.std(axis=0)))
    ratio = p_std / t_std
    if ratio >= COLLAPSE_RATIO:
        return []
    L0 = baseline(ctx)
    return [
        OUTPUT_COLLAPSE.finding(
            ERROR if probes.final_loss >= 0.95 * L0 else WARNING,
            f"outputs vary across inputs {ratio:.1%} as much as the targets do",
            evidence={
                "output_std": p_std,
                "target_std": t_std,
                "ratio": ratio,
                "mean_output": np.round(P.mean(axis=0)[:8], 4).tolist(),
            },
            why="the net gives (nearly) the same output for every input: the best constant "
            "prediction, reached without using the inputs",
            fix="see the causes above",
            score=1.0 - ratio / COLLAPSE_RATIO,
        )
    ]


def loss_at_baseline(probes: Probes, ctx: Context) -> list[Finding]:
    L0 = baseline(ctx)
    final = probes.final_loss
    tol = BASELINE_TOL * abs(L0)
    if not (math.isfinite(L0) and math.isfinite(final)) or L0 <= 0 or final < L0 - tol:
        return []
    above = final > L0 + tol
    pred = ctx.bounds.get("predictability") or {}
    signal = pred.get("has_signal", True)
    return [
        LOSS_AT_BASELINE.finding(
            ERROR if signal else WARNING,
            f"the loss {final:.4g} is {'above' if above else 'at'} the constant-prediction "
            f"baseline {L0:.4g}",
            evidence={"final_loss": final, "baseline": L0, "ratio": final / L0},
            why="a net that predicts the same value for every input reaches exactly this "
            "loss: it has learned nothing from the inputs",
            fix="see the causes above",
            score=1.0,
        )
    ]


# the final loss counts as at the baseline within this share of it
BASELINE_TOL = 0.02


def not_using_inputs(probes: Probes, ctx: Context) -> list[Finding]:
    z = ctx.preflight.get("zeroed_inputs")
    if not z:
        return []
    # the zeroed run can only learn a constant, which it reaches early: compare the end of
    # the real run with it
    real = probes.final_loss
    if not (math.isfinite(real) and math.isfinite(z["loss"])):
        return []
    if real < z["loss"] * (1 - ZERO_INPUT_MARGIN):
        return []
    return [
        NOT_USING_INPUTS.finding(
            WARNING,
            f"the net ends at {real:.4g} on the real inputs; trained on all-zero inputs for "
            f"{z['epochs']} epochs it reaches {z['loss']:.4g}",
            evidence={"loss_real": real, "loss_zeroed": z["loss"], "epochs": z["epochs"]},
            why="a net that does as well without its inputs is not using them",
            fix="see the causes above",
            score=0.6,
        )
    ]


def cannot_overfit(probes: Probes, ctx: Context) -> list[Finding]:
    tiny = ctx.preflight.get("tiny_batch")
    if not tiny or not tiny["baseline"] > 0:
        return []
    ratio = tiny["loss"] / tiny["baseline"]
    if not ratio > OVERFIT_RATIO:
        return []
    return [
        CANNOT_OVERFIT.finding(
            WARNING,
            f"the net cannot fit {tiny['rows']} samples: loss {tiny['loss']:.3g} after "
            f"{tiny['steps']} steps of the doctor's own check (Adam, whatever your optimiser) "
            f"({ratio:.0%} of their constant baseline)",
            evidence={
                "rows": tiny["rows"],
                "loss": tiny["loss"],
                "baseline": tiny["baseline"],
                "ratio": ratio,
                "steps": tiny["steps"],
            },
            why="any working net memorises a handful of samples; failing that, the fault is "
            "in the model, its gradients or its initialisation, not in the data",
            fix="see the causes above",
            score=min(1.0, ratio),
        )
    ]


def loss_at_init_high(probes: Probes, ctx: Context) -> list[Finding]:
    init = ctx.preflight.get("init") or {}
    loss, L0 = float(init.get("loss", math.nan)), baseline(ctx)
    # an infinite loss at init is the extreme case (outputs that overflow); NaN says nothing
    if not (math.isfinite(L0) and L0 > 0) or not loss > INIT_LOSS_FACTOR * L0:
        return []
    ratio = loss / L0
    return [
        LOSS_AT_INIT_HIGH.finding(
            WARNING,
            f"the loss at initialisation, {loss:.4g}, is {ratio:.3g} times the constant "
            f"baseline {L0:.4g}",
            evidence={"initial_loss": loss, "baseline": L0, "ratio": ratio},
            why="a net initialised for unit-scale inputs and outputs starts near the constant "
            "baseline (about ln c for c classes); a loss this far above it means outputs that "
            "start huge and confidently wrong: weights or inputs far from unit scale, so the "
            "first gradients are huge too and the first steps throw the net around",
            fix="see the causes above; scale the inputs and use a fan-in initialisation (He, "
            "Xavier), so the initial outputs are of the targets' size",
            score=min(1.0, math.log10(ratio) / 6),
        )
    ]


# --- the records ---

DIVERGED = Rule(
    code="diverged",
    kind=SYMPTOM,
    tier=0,
    meaning="the loss became NaN or inf",
    sentence=(
        "the loss became infinite or not-a-number at epoch {epoch}, so training stopped there|the "
        "loss became infinite or not-a-number, so training stopped"
    ),
    detect=diverged,
    subsumes=("oscillating-loss", "loss-plateau"),
    plots=("loss", "gradients"),
)

OSCILLATING_LOSS = Rule(
    code="oscillating-loss",
    kind=SYMPTOM,
    tier=3,
    meaning="the loss goes up and down instead of down",
    sentence="your loss goes up and down from epoch to epoch instead of going down",
    detect=oscillating_loss,
    plots=("loss",),
    labels={
        "minibatch_noise": "how far the loss moves from one point to the next by chance alone "
        "(minibatch noise, relative)"
    },
)

LOSS_PLATEAU = Rule(
    code="loss-plateau",
    kind=SYMPTOM,
    tier=3,
    meaning="the loss stopped improving far from good",
    sentence=(
        "your loss stopped going down ({final_loss}) while still far from good|your loss stopped "
        "going down while still far from good"
    ),
    detect=loss_plateau,
    plots=("loss",),
)

OUTPUT_COLLAPSE = Rule(
    code="output-collapse",
    kind=SYMPTOM,
    tier=2,
    meaning="outputs vary across inputs far less than targets",
    sentence=(
        "your network gives almost the same output (about {mean_output}) for every input: its "
        "outputs vary {ratio_pct} as much as your targets do|your network gives almost the same "
        "output for every input"
    ),
    detect=output_collapse,
    needs=frozenset({TARGETS}),
    plots=("output-spread",),
    terms=("baseline",),
)

LOSS_AT_BASELINE = Rule(
    code="loss-at-baseline",
    kind=SYMPTOM,
    tier=1,
    meaning="at (or above) the constant-prediction baseline",
    sentence=(
        "your network does no better ({final_loss}) than always predicting the average of your "
        "targets ({baseline}): it is not using its input|your network does no better than always "
        "predicting the average of your targets: it is not using its input"
    ),
    detect=loss_at_baseline,
    needs=frozenset({TARGETS}),
    subsumes=("loss-plateau", "not-using-inputs"),
    plots=("loss", "output-spread"),
    terms=("baseline",),
)

NOT_USING_INPUTS = Rule(
    code="not-using-inputs",
    kind=SYMPTOM,
    tier=2,
    meaning="training on zeroed inputs does as well",
    sentence=(
        "the network trained on inputs set to zero does as well ({loss_zeroed}) as on your real "
        "inputs ({loss_real}), so it does not use them|the network trained on inputs set to zero "
        "does as well as on your real inputs, so it does not use them"
    ),
    detect=not_using_inputs,
    needs=frozenset({TARGETS}),
    plots=("output-spread",),
)

CANNOT_OVERFIT = Rule(
    code="cannot-overfit",
    kind=SYMPTOM,
    tier=2,
    meaning="cannot fit a tiny batch of samples",
    sentence=(
        "the network cannot even memorise {rows} of your samples, which any working network can: "
        "something in the setup blocks learning|the network cannot even memorise a handful of your "
        "samples, which any working network can: something in the setup blocks learning"
    ),
    detect=cannot_overfit,
    needs=frozenset({TARGETS}),
    plots=("loss",),
)

LOSS_AT_INIT_HIGH = Rule(
    code="loss-at-init-high",
    kind=SYMPTOM,
    tier=1,
    meaning="the loss at initialisation is far above the constant baseline",
    sentence=(
        "before any training your loss is {ratio} times that of always predicting the average "
        "of your targets: the first outputs are huge and confidently wrong|before any training "
        "your loss is far above that of always predicting the average of your targets: the "
        "first outputs are huge and confidently wrong"
    ),
    detect=loss_at_init_high,
    needs=frozenset({TARGETS}),
    plots=("loss",),
    labels={"initial_loss": "loss before any training (loss at initialisation)"},
)

RULES = (
    DIVERGED,
    OSCILLATING_LOSS,
    LOSS_PLATEAU,
    OUTPUT_COLLAPSE,
    LOSS_AT_BASELINE,
    NOT_USING_INPUTS,
    CANNOT_OVERFIT,
    LOSS_AT_INIT_HIGH,
)
