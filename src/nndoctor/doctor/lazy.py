"""Which of ``diagnose``'s costly checks a recorded run still needs: ``diagnose`` must stay cheap.

Three checks cost more than a small training run, whatever the run: the best affine map (a
least-squares or softmax-regression fit), the predictability test (ridge and k-NN against a
permutation test) and the pre-flight tiny-batch fit (``TINY_STEPS`` Adam steps). They exist to
explain a run that does not learn. A backend with ``deferred_checks`` runs them after the
recorded run, only when that run did not clearly learn; otherwise the report says, in words,
that they were skipped and why (``summary["skipped"]``, the bounds' text).

A run has clearly learned when it did not diverge, its final loss is at most
``LEARNED_SHARE`` of the constant baseline and the loss fell by at least ``BARELY_MOVED`` of
its first epoch's value. Then, rule by rule, the skipped results cannot change a finding:

- insufficient-capacity fires only when a held-out skill (at most 1) beats the net's own
  skill ``1 - final / baseline`` by more than ``CAPACITY_GAP``; with ``final / baseline <=
  CAPACITY_GAP`` it cannot;
- loss-at-baseline (whose severity reads the predictability verdict) needs the loss at the
  baseline;
- lr-too-low reads the predictability verdict only when the loss barely moved or is stuck;
- missing-nonlinearity reads the best affine map for its severity: a net with consecutive
  Dense layers keeps every check;
- cannot-overfit says the model cannot memorise a handful of rows, which a run that fitted all
  of its rows this well refutes;
- no-signal is the one finding a skip can hide: unpredictable targets that a net nonetheless
  drove far below the baseline are memorised, and the doctor sees training loss only.
"""

from __future__ import annotations

import math

from nndoctor.doctor.rules.common import baseline, improvement
from nndoctor.doctor.rules.data import CAPACITY_GAP
from nndoctor.doctor.rules.gradients import BARELY_MOVED
from nndoctor.doctor.rules.setup import missing_nonlinearity
from nndoctor.doctor.schema import Context, Probes

# final loss at most this share of the constant baseline: learned. Not above CAPACITY_GAP,
# so that insufficient-capacity provably cannot fire on a run that skips its inputs.
LEARNED_SHARE = CAPACITY_GAP
# the checks a clearly learned run skips: report.summary["skipped"] keys, in words
SKIPPABLE = {
    "least_squares": "the best affine map",
    "predictability": "the predictability test",
    "tiny_batch": "the tiny-batch pre-flight check",
}


def skip_reason(probes: Probes, ctx: Context) -> str | None:
    """Why the costly checks can be skipped for this recorded run, or None when they must run.

    Parameters
    ----------
    probes : Probes
        The recorded run.
    ctx : Context
        Its context, with the constant baseline (the costly bounds may be absent).

    Returns
    -------
    str or None
        A sentence for the report, or None: the run did not clearly learn (or diverged, has no
        finite baseline, or is a net whose missing-nonlinearity finding reads the affine map).
    """
    L0, final = baseline(ctx), probes.final_loss
    if probes.diverged is not None or not (math.isfinite(L0) and L0 > 0):
        return None
    if not (math.isfinite(final) and final <= LEARNED_SHARE * L0):
        return None
    moved = improvement(probes)
    if not moved >= BARELY_MOVED or missing_nonlinearity(probes, ctx):
        return None
    return (
        f"the run learned (final loss {final:.4g}, {final / L0:.1%} of the constant baseline "
        f"{L0:.4g}, down {moved:.1%} from the first epoch) and these checks explain only a "
        "run that does not learn"
    )
