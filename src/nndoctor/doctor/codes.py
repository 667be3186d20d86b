"""The stable finding codes: kind, causal tier and a one-line meaning for each.

A lower tier is closer to the root: a tier-0 cause (a broken setup that no training can fix)
explains tier-1 causes, which explain tier-2 ones (states of units and gradients that are
usually consequences). Symptoms are ranked the same way, most specific first.
``docs/findings.md`` documents every code: signal, threshold, why, false alarms.
"""

from __future__ import annotations

from dataclasses import dataclass

CAUSE = "cause"
SYMPTOM = "symptom"
INFO = "info"
KINDS = (CAUSE, SYMPTOM, INFO)

ERROR = "error"
WARNING = "warning"
NOTE = "info"
SEVERITIES = (ERROR, WARNING, NOTE)


@dataclass(frozen=True)
class Code:
    kind: str
    tier: int
    meaning: str


CODES: dict[str, Code] = {
    # causes, root-most first
    "gradient-mismatch": Code(CAUSE, 0, "layer gradients disagree with finite differences"),
    "wrong-loss-for-targets": Code(CAUSE, 0, "the loss does not fit the targets or the output"),
    "constant-inputs": Code(CAUSE, 0, "features or whole inputs have no variance"),
    "constant-targets": Code(CAUSE, 0, "every target (label) is the same value"),
    "targets-out-of-range": Code(CAUSE, 0, "targets the output activation cannot reach"),
    "missing-nonlinearity": Code(CAUSE, 0, "consecutive Dense layers: the whole net is affine"),
    # PyTorch training-loop faults: a broken setup that no amount of training fixes
    "detached-graph": Code(CAUSE, 0, "parameters get no gradient: the loss was cut from them"),
    "frozen-parameters": Code(CAUSE, 0, "parameters that never change (frozen or not optimised)"),
    "loss-shape-broadcast": Code(
        CAUSE, 0, "prediction and target shapes broadcast to (N, N) inside the loss"
    ),
    "double-activation": Code(CAUSE, 0, "an activation the loss applies itself, applied twice"),
    "stale-gradients": Code(CAUSE, 0, "gradients never zeroed: they pile up step after step"),
    "eval-mode-training": Code(CAUSE, 1, "trained in eval() mode (or evaluated in train() mode)"),
    "lr-schedule-collapse": Code(CAUSE, 1, "a scheduler drives the learning rate to about 0"),
    "symmetric-units": Code(CAUSE, 1, "units of one layer with identical incoming weights"),
    "lr-too-high": Code(CAUSE, 1, "the learning rate makes the loss spike, oscillate or blow up"),
    "unscaled-inputs": Code(CAUSE, 1, "inputs far from unit scale"),
    "unscaled-targets": Code(CAUSE, 1, "regression targets far from unit scale"),
    "no-signal": Code(CAUSE, 1, "targets are not predictable from the inputs"),
    "class-imbalance": Code(CAUSE, 1, "one class dominates and the net predicts only it"),
    "unshuffled-data": Code(
        CAUSE,
        1,
        "ordered data, not shuffled: each stretch of batches pulls the net towards its own targets",
    ),
    "lr-too-low": Code(CAUSE, 2, "updates too small to move the weights"),
    "exploding-gradients": Code(CAUSE, 2, "gradients grow layer by layer or step by step"),
    "vanishing-gradients": Code(CAUSE, 2, "first-layer gradients far below last-layer ones"),
    "saturated-units": Code(CAUSE, 2, "sigmoid/tanh pre-activations beyond +-5"),
    "dead-units": Code(CAUSE, 2, "ReLU units that are zero for every input"),
    "insufficient-capacity": Code(CAUSE, 3, "at the best the architecture allows"),
    # symptoms, most specific first
    "diverged": Code(SYMPTOM, 0, "the loss became NaN or inf"),
    "loss-at-lower-rank-bound": Code(SYMPTOM, 1, "at the bound of a narrower code than built"),
    "loss-at-baseline": Code(SYMPTOM, 1, "at (or above) the constant-prediction baseline"),
    "output-collapse": Code(SYMPTOM, 2, "outputs vary across inputs far less than targets"),
    "not-using-inputs": Code(SYMPTOM, 2, "training on zeroed inputs does as well"),
    "cannot-overfit": Code(SYMPTOM, 2, "cannot fit a tiny batch of samples"),
    "oscillating-loss": Code(SYMPTOM, 3, "the loss goes up and down instead of down"),
    "loss-plateau": Code(SYMPTOM, 3, "the loss stopped improving far from good"),
    # information
    "incompressible-data": Code(INFO, 0, "an autoencoder's bottleneck against a flat spectrum"),
}

# (root, consequence): when both are found, the root explains the consequence, so it ranks
# first and is at least as severe.
EXPLAINS: tuple[tuple[str, str], ...] = (
    ("lr-too-high", "dead-units"),
    ("lr-too-high", "exploding-gradients"),
    ("unscaled-inputs", "saturated-units"),
    ("unscaled-inputs", "vanishing-gradients"),
    ("unscaled-inputs", "exploding-gradients"),
    ("unscaled-inputs", "lr-too-high"),
    ("saturated-units", "vanishing-gradients"),
    ("symmetric-units", "dead-units"),
    ("symmetric-units", "vanishing-gradients"),
    ("constant-inputs", "no-signal"),
    ("missing-nonlinearity", "insufficient-capacity"),
    ("symmetric-units", "insufficient-capacity"),
    ("dead-units", "insufficient-capacity"),
    # a net too small for the function drives its few units into saturation to carve sharp
    # boundaries (the capacity rule requires that the net learned something, which a net
    # saturated from the start does not)
    ("insufficient-capacity", "saturated-units"),
    ("constant-inputs", "dead-units"),
    ("exploding-gradients", "dead-units"),
    ("wrong-loss-for-targets", "targets-out-of-range"),
    ("dead-units", "vanishing-gradients"),
    # errors in the thousands give gradients in the thousands: steps overshoot or, kept small,
    # never reach the targets
    ("unscaled-targets", "exploding-gradients"),
    ("unscaled-targets", "lr-too-high"),
    ("unscaled-targets", "lr-too-low"),
    ("unscaled-targets", "dead-units"),
    ("unscaled-targets", "saturated-units"),
    # a loss with a floor above 0 (double softmax) or an output that cannot reach half the
    # targets looks like a net too small for the function
    ("wrong-loss-for-targets", "insufficient-capacity"),
    ("targets-out-of-range", "insufficient-capacity"),
    # training follows the wrong gradient: the state it leaves the units and weights in, and
    # the loss it stops at, say nothing about the setup
    ("gradient-mismatch", "saturated-units"),
    ("gradient-mismatch", "dead-units"),
    ("gradient-mismatch", "exploding-gradients"),
    ("gradient-mismatch", "vanishing-gradients"),
    ("gradient-mismatch", "lr-too-high"),
    ("gradient-mismatch", "lr-too-low"),
    ("gradient-mismatch", "insufficient-capacity"),
    # PyTorch loop faults and the states they leave
    ("stale-gradients", "lr-too-high"),
    ("stale-gradients", "exploding-gradients"),
    ("stale-gradients", "dead-units"),
    ("lr-schedule-collapse", "lr-too-low"),
    ("lr-schedule-collapse", "insufficient-capacity"),
    ("frozen-parameters", "lr-too-low"),
    ("frozen-parameters", "insufficient-capacity"),
    ("detached-graph", "lr-too-low"),
    ("detached-graph", "insufficient-capacity"),
    ("loss-shape-broadcast", "insufficient-capacity"),
    ("double-activation", "insufficient-capacity"),
    ("eval-mode-training", "insufficient-capacity"),
)

# Links that hold only when the root's own rule rates it a warning or an error: a few
# constant features among many (info) are harmless by nature and account for nothing, while
# an info-level unscaled-inputs still explains the lr-too-high it causes.
EXPLAINS_IF_SEVERE: frozenset[tuple[str, str]] = frozenset(
    {("constant-inputs", "no-signal"), ("constant-inputs", "dead-units")}
)

# Causes read off the dynamics of training (sizes of steps, gradients, unit states), as
# opposed to faults visible in the setup itself (a wrong loss, identical weights): a trial
# whose fix made the loss no better at all is evidence against them, so they rank after the
# causes that were confirmed or not tried (``Finding.refuted``).
REFUTABLE: frozenset[str] = frozenset(
    {
        "lr-too-high",
        "lr-too-low",
        "exploding-gradients",
        "vanishing-gradients",
        "saturated-units",
        "dead-units",
    }
)

# A more specific symptom makes a vaguer one redundant.
SUBSUMES: tuple[tuple[str, str], ...] = (
    ("loss-at-baseline", "loss-plateau"),
    ("loss-at-lower-rank-bound", "loss-plateau"),
    ("diverged", "oscillating-loss"),
    ("diverged", "loss-plateau"),
    ("loss-at-baseline", "not-using-inputs"),
)
