"""States of hidden units at the end of training: identical, dead, saturated."""

from __future__ import annotations

import numpy as np

from nndoctor.doctor.changes import Change, LearningRate, Standardize
from nndoctor.doctor.finding import CAUSE, ERROR, WARNING, Finding
from nndoctor.doctor.rule import Rule
from nndoctor.doctor.rules.common import nanmedian, reinit, units
from nndoctor.doctor.rules.setup import UNSCALED_MAX
from nndoctor.doctor.schema import Context, LayerTrace, Probes

# units are identical when their (weights, bias) rows differ by less than this, relative
SYMMETRY_TOL = 1e-9
# share of a ReLU layer's units dead on every probe sample: warning, error
DEAD_WARNING = 0.5
DEAD_ERROR = 0.9
# ReLU units alive at the first probe and dead within this share of the run's steps were
# killed by the first steps: the step size is the cause, smaller by this factor the fix
KILLED_EARLY = 0.1
KILLED_LR_CUT = 10.0
# share of hidden sigmoid/tanh pre-activations beyond +-5: warning, error
SATURATED_WARNING = 0.5
SATURATED_ERROR = 0.9
# the activation's slope at |z| = 5, where a unit counts as saturated
_SLOPE_AT_EDGE = {
    "sigmoid": float(np.exp(-5.0) / (1.0 + np.exp(-5.0)) ** 2),
    "tanh": float(1.0 - np.tanh(5.0) ** 2),
}


def symmetry_tolerance(eps: float) -> float:
    """Relative difference under which two units count as identical: round-off of float64
    (``SYMMETRY_TOL``), or about 100 ulps of a lower precision (float32: 1.2e-5)."""
    return max(SYMMETRY_TOL, min(100.0 * eps, 1e-3))


def identical_groups(W: np.ndarray, b: np.ndarray, tol: float = SYMMETRY_TOL) -> list[list[int]]:
    """Groups (size >= 2) of units whose incoming weights and bias are the same, within ``tol``
    relative to the rows' size."""
    rows = np.column_stack([W, b])  # (units, in + 1)
    # the usual layer (random weights): its units' first weights differ by more than the
    # tolerance of the largest row allows, which settles it without comparing rows (NaN or
    # inf anywhere makes the comparison False: the full check below)
    first = np.sort(rows[:, 0])
    if np.all(np.diff(first) > tol * np.max(np.abs(rows), initial=0.0)):
        return []
    # a row holding NaN or inf is never "identical" (inf == inf would say so): the
    # non-finite-values rule names it instead
    finite = np.all(np.isfinite(rows), axis=1)
    rows = np.where(finite[:, None], rows, 0.0)
    size = np.max(np.abs(rows), axis=1)  # (units,)
    # two rows within tol of each other have row sums within cols * tol * size (plus the
    # sums' own rounding): only rows whose sums are that close are compared in full, which
    # makes a layer of distinct units (the usual case) cost one sort instead of units^2 rows
    cols = rows.shape[1]
    total = rows.sum(axis=1)
    slack = cols * tol * size + 4 * cols * np.finfo(np.float64).eps * np.abs(rows).sum(axis=1)
    order = np.argsort(total)
    gaps = np.diff(total[order])
    near = np.zeros(len(rows), dtype=bool)
    close = gaps <= np.maximum(slack[order[:-1]], slack[order[1:]]) + slack.max()
    near[order[:-1][close]] = near[order[1:][close]] = True
    groups: list[list[int]] = []
    seen = ~finite | ~near
    for i in range(len(rows)):
        if seen[i]:
            continue
        cand = np.flatnonzero(np.abs(total - total[i]) <= slack + slack[i])
        diff = np.max(np.abs(rows[cand] - rows[i]), axis=1)
        same = cand[(diff <= tol * np.maximum(size[cand], size[i])) & finite[cand]]
        seen[same] = True
        if same.size > 1:
            groups.append(same.tolist())
    return groups


def symmetric_units(probes: Probes, ctx: Context) -> list[Finding]:
    findings = []
    tol = symmetry_tolerance(probes.eps)
    for t in probes.layers[:-1]:
        groups = identical_groups(t.W_final, t.b_final, tol)
        if not groups:
            findings.extend(_split_by_rounding(t))
            continue
        distinct = t.out_features - sum(len(g) - 1 for g in groups)
        # identical at init when each group lies inside a group of the initial weights (in
        # floating point a unit can split off a group during training, never join one)
        init_groups = [set(g) for g in identical_groups(t.W_init, t.b_init, tol)]
        at_init = all(any(set(g) <= h for h in init_groups) for g in groups)
        constant_init = bool(at_init and np.ptp(t.W_init) == 0)
        cause = (
            "every weight started at the same value (a constant init such as zeros gives "
            "every unit the same gradient forever)"
            if constant_init
            else "they started identical"
            if at_init
            else "they became identical during training"
        )
        names = "; ".join(units(g) for g in groups)
        findings.append(
            SYMMETRIC_UNITS.finding(
                ERROR,
                f"layer {t.name}: units {names} have identical incoming weights, so the "
                f"layer acts as {distinct} unit(s) instead of {t.out_features}",
                evidence={
                    "layer": t.name,
                    "units": t.out_features,
                    "effective_units": distinct,
                    "groups": groups,
                    "activation_rank": float(t.act_rank[-1]) if t.act_rank.size else np.nan,
                    "identical_at_init": at_init,
                    "constant_init": constant_init,
                    "initial_weight": float(t.W_init.flat[0]) if constant_init else np.nan,
                },
                why=f"the units are identical because {cause}: identical units compute "
                "identical activations and receive identical gradients, so nothing can ever "
                "make them differ",
                fix="initialise weights randomly (Xavier/Glorot for sigmoid/tanh, He for "
                "ReLU) to break the symmetry",
                score=1.0 - distinct / t.out_features,
            )
        )
    return findings


def killed_early(probes: Probes) -> tuple[str, float, int] | None:
    """(layer, dead share at the end, step at which half its units were dead) of a ReLU
    layer alive at the first probe (under ``DEAD_WARNING`` dead) whose units died within the
    first ``KILLED_EARLY`` of the steps and stayed dead; None when no layer did."""
    total = max(len(probes.step_loss), 1)
    out = None
    for t in probes.layers:
        if t.activation != "relu" or not t.frac_dead.size or t.frac_dead[0] >= DEAD_WARNING:
            continue
        share = float(np.mean(t.dead_units))
        over = np.flatnonzero(t.frac_dead >= DEAD_WARNING)
        if share < DEAD_WARNING or not over.size:
            continue
        step = int(probes.steps[over[0]])
        if step <= KILLED_EARLY * total and (out is None or share > out[1]):
            out = (t.name, share, step)
    return out


def _split_by_rounding(t: LayerTrace) -> list[Finding]:
    """Units that started as copies of each other (a constant init) and ended distinct: in
    floating point, rounding differences between identical units grow until one splits off,
    hundreds of steps later, so the layer spent much of the run as fewer units."""
    if not (np.all(np.isfinite(t.W_init)) and np.ptp(t.W_init) == 0 and t.out_features > 1):
        return []
    start = len(identical_groups(t.W_init, t.b_init)[0]) if t.W_init.size else 0
    if start < 2:
        return []
    return [
        SYMMETRIC_UNITS.finding(
            ERROR,
            f"layer {t.name}: all {t.out_features} units started identical (every weight "
            f"{float(t.W_init.flat[0]):g}); only rounding noise split them apart, late",
            evidence={
                "layer": t.name,
                "units": t.out_features,
                "effective_units": t.out_features,
                "groups": [],
                "identical_at_init": True,
                "constant_init": True,
                "initial_weight": float(t.W_init.flat[0]),
            },
            why="identical units compute identical activations and receive identical "
            "gradients: in exact arithmetic they never differ; in floating point rounding "
            "differences grow for hundreds of steps before a unit splits off, so the net "
            "trains as a narrower one for much of the run and ends far from what its width "
            "allows",
            fix="initialise weights randomly (Xavier/Glorot for sigmoid/tanh, He for "
            "ReLU) to break the symmetry",
            score=0.5,
        )
    ]


def dead_units(probes: Probes, ctx: Context) -> list[Finding]:
    findings = []
    for t in probes.layers:
        if t.activation != "relu" or not t.dead_units.any():
            continue
        share = float(np.mean(t.dead_units))
        if share < DEAD_WARNING:
            continue
        dead = np.flatnonzero(t.dead_units)
        # dead from the first probe with biases that started negative: the init killed them
        bias0 = float(np.mean(t.b_init[dead]))
        born = bool(t.frac_dead.size and t.frac_dead[0] >= DEAD_WARNING and bias0 < 0)
        killed = killed_early(probes) if not born else None
        if killed is not None and killed[0] != t.name:
            killed = None
        if born:
            why = (
                f"their biases started at {bias0:.3g} on average, below every input's weighted "
                "sum: a ReLU whose input is negative for every sample outputs 0 and has zero "
                "gradient, so it never recovers; with every unit dead the output is a constant"
            )
            fix = "initialise the biases at 0 (or a small positive value) with He weights"
        elif killed is not None:
            why = (
                f"the units were alive at the start and died by step {killed[2]}: the first "
                "steps pushed their inputs below zero for every sample, and a ReLU whose input "
                "is negative everywhere has zero gradient, so it never recovers"
            )
            fix = f"lower the learning rate (try {ctx.lr / KILLED_LR_CUT:g})"
        else:
            why = (
                "a ReLU whose input is negative for every sample has zero gradient, so it "
                "never recovers; with every unit dead the output is a constant"
            )
            fix = (
                "lower the learning rate, use He initialisation with a zero or small positive "
                "bias, or LeakyReLU"
            )
        findings.append(
            DEAD_UNITS.finding(
                ERROR if share >= DEAD_ERROR else WARNING,
                f"layer {t.name}: {dead.size} of {t.out_features} ReLU units output 0 for "
                "every probe input" + (" from the start" if born else ""),
                evidence={
                    "layer": t.name,
                    "dead_share": share,
                    "dead_units": dead[:16].tolist(),
                    "mean_bias_dead": float(np.mean(t.b_final[dead])),
                    "mean_bias_alive": float(np.mean(t.b_final[~t.dead_units]))
                    if (~t.dead_units).any()
                    else np.nan,
                    "mean_initial_bias_dead": bias0,
                    "dead_from_start": born,
                    **(
                        {"killed_by_step": killed[2], "suggested_lr": ctx.lr / KILLED_LR_CUT}
                        if killed is not None
                        else {}
                    ),
                },
                why=why,
                fix=fix,
                score=share,
            )
        )
    return findings


def saturated_units(probes: Probes, ctx: Context) -> list[Finding]:
    findings = []
    for t in probes.layers[:-1]:
        if t.activation not in ("sigmoid", "tanh") or not t.frac_saturated.size:
            continue
        late = t.frac_saturated[len(t.frac_saturated) // 2 :]
        share = max(float(t.frac_saturated[-1]), nanmedian(late))
        if share < SATURATED_WARNING:
            continue
        worst = np.argsort(-t.unit_saturation)[: max(1, int(np.sum(t.unit_saturation > 0.5)))]
        findings.append(
            SATURATED_UNITS.finding(
                ERROR if share >= SATURATED_ERROR else WARNING,
                f"layer {t.name}: {share:.0%} of {t.activation} pre-activations lie beyond +-5",
                evidence={
                    "layer": t.name,
                    "saturated_share": share,
                    "saturated_units": worst[:16].tolist(),
                },
                why=f"a saturated {t.activation} has a derivative near 0 (below "
                f"{_SLOPE_AT_EDGE[t.activation]:.1e} beyond +-5), so almost no gradient flows "
                "through it and the layer's output hardly changes with the input",
                fix="standardise the inputs and use Xavier initialisation; or ReLU units",
                score=share,
            )
        )
    return findings


# --- the changes the trials make ---


def _dead_change(f: Finding, ctx: Context) -> Change | None:
    # units alive at the start and dead at the end were killed by the steps: smaller steps
    # keep them alive, new weights would die the same way
    lr = f.evidence.get("suggested_lr")
    if lr is not None and lr > 0 and not f.evidence.get("dead_from_start", True):
        return LearningRate(lr)
    return reinit(f, ctx)


def _saturated_change(f: Finding, ctx: Context) -> Change | None:
    # inputs the unscaled-inputs rule calls unscaled (pixels 0-255 too, whose max is only a
    # few stds) saturate any init: scale them; unit-scale inputs saturate a too-large init
    if ctx.data.x_absmax > UNSCALED_MAX:
        return Standardize("inputs")
    return reinit(f, ctx)


# --- the records ---

SYMMETRIC_UNITS = Rule(
    code="symmetric-units",
    kind=CAUSE,
    tier=1,
    meaning="units of one layer with identical incoming weights",
    sentence=(
        "your {units} hidden units in layer {layer} all compute the same thing, so the network acts"
        " as if it had {effective_units}|hidden units of one layer all compute the same thing, so "
        "the network acts as if it had fewer units"
    ),
    detect=symmetric_units,
    change=reinit,
    fix="re-initialise (Xavier or He)",
    explains=("dead-units", "vanishing-gradients", "insufficient-capacity"),
    plots=("unit-similarity", "loss"),
    terms=("symmetric units", "rank"),
)

DEAD_UNITS = Rule(
    code="dead-units",
    kind=CAUSE,
    tier=2,
    meaning="ReLU units that are zero for every input",
    sentence=(
        "{dead_share} of the ReLU units in layer {layer} output 0 for every input, so they never "
        "learn again|some ReLU units output 0 for every input, so they never learn again"
    ),
    detect=dead_units,
    change=_dead_change,
    fix="re-initialise",
    refutable=True,
    explains=("insufficient-capacity", "vanishing-gradients"),
    plots=("activations",),
    terms=("dead unit",),
)

SATURATED_UNITS = Rule(
    code="saturated-units",
    kind=CAUSE,
    tier=2,
    meaning="sigmoid/tanh pre-activations beyond +-5",
    sentence=(
        "{saturated_share} of the inputs to the activations in layer {layer} are pushed to the flat"
        " ends of the curve, where they pass almost no gradient back|many units are pushed to the "
        "flat ends of their activation, where they pass almost no gradient back"
    ),
    detect=saturated_units,
    change=_saturated_change,
    fix="standardise inputs, or re-initialise",
    refutable=True,
    explains=("vanishing-gradients",),
    plots=("activations",),
    terms=("saturation",),
)

RULES = (SYMMETRIC_UNITS, DEAD_UNITS, SATURATED_UNITS)
