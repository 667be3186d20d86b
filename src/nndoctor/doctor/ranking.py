"""Ranking findings: roots before what they explain, trial verdicts before thresholds."""

from __future__ import annotations

from nndoctor.doctor.codes import (
    CODES,
    EXPLAINS,
    EXPLAINS_IF_SEVERE,
    KINDS,
    NOTE,
    REFUTABLE,
    SEVERITIES,
    SUBSUMES,
)
from nndoctor.doctor.finding import Finding


def refuted(f: Finding) -> bool:
    """A cause whose trial ran and clearly did not help: its verdict is ``"refuted"`` (paired
    gains below the least gain worth reporting, or a changed run that diverged). Any cause
    whose fix was judged on the loss itself; a fault visible in the setup (its rule not
    ``refutable``) judged on another metric is not: the error rate under a double softmax
    does not move while the loss does. A trial without a verdict (an older report) is refuted
    when the loss after the fix is no lower (or not finite)."""
    if f.confirmed is not False or not f.trial:
        return False
    if f.code not in REFUTABLE and f.trial.get("metric", "loss") != "loss":
        return False
    if "verdict" in f.trial:
        return bool(f.trial["verdict"] == "refuted")
    return f.code in REFUTABLE and not f.trial["loss_after"] < f.trial["loss_before"]


_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}


def rank(findings: list[Finding]) -> list[Finding]:
    """Causes first, then symptoms, then information; roots before what they explain.

    A root cause found together with a consequence it explains (``codes.EXPLAINS``) is raised
    to the consequence's severity and lists it in ``explains``; a vague symptom subsumed by a
    more specific one (``codes.SUBSUMES``) is dropped. Links in ``codes.EXPLAINS_IF_SEVERE``
    hold only for a root rated above info.

    Trial verdicts outweigh thresholds: causes whose trial was confirmed come first, then
    those not tried or whose trial was inconclusive, then those refuted by their trial
    (:func:`refuted`). A root that explains a confirmed consequence ranks with the
    confirmed ones (unless its own trial refuted it): the consequence's fix works, the root
    is why it was needed. A code found several times (one finding per layer) keeps every
    finding. Within a verdict group the order is explanation depth, severity, causal tier,
    then score.
    """
    found = {f.code for f in findings}
    kept = [f for f in findings if not any(s in found and v == f.code for s, v in SUBSUMES)]
    # a code found more than once (dead units in two layers) keeps every finding; its
    # strongest one stands for the code in the causal links
    top: dict[str, Finding] = {}
    for f in kept:
        if f.code not in top or _strength(f) < _strength(top[f.code]):
            top[f.code] = f

    def linked(root: str, consequence: str) -> bool:
        if root not in top or consequence not in top:
            return False
        # some roots at info level are harmless by nature (4 blank corner pixels of 64)
        return top[root].severity != NOTE or (root, consequence) not in EXPLAINS_IF_SEVERE

    # until nothing changes: a root raised by its consequence raises its own root in turn,
    # whatever the order of the links
    raised = True
    while raised:
        raised = False
        for root, consequence in EXPLAINS:
            if linked(root, consequence):
                r, c = top[root], top[consequence]
                if _SEVERITY_ORDER[c.severity] < _SEVERITY_ORDER[r.severity]:
                    r.severity = c.severity
                    raised = True
                if consequence not in r.explains:
                    r.explains.append(consequence)
    # a root must come before what it explains even across severities: sort by the
    # explanation depth first (roots have depth 0), then severity, tier, score
    depth = {code: 0 for code in top}
    for _ in range(len(EXPLAINS)):
        for root, consequence in EXPLAINS:
            if linked(root, consequence):
                depth[consequence] = max(depth[consequence], depth[root] + 1)

    # 0: confirmed, 1: not tried or inconclusive, 2: refuted; a root whose own fix was not
    # tried takes the best group of what it explains, through chains of links (one whose own
    # trial did not confirm it never outranks a confirmed cause: issue 20)
    group = {code: 2 if refuted(f) else 0 if f.confirmed else 1 for code, f in top.items()}
    for _ in range(len(EXPLAINS)):
        for root, consequence in EXPLAINS:
            if linked(root, consequence) and top[root].confirmed is not False:
                group[root] = min(group[root], group[consequence])

    def key(f: Finding) -> tuple:
        sev = _SEVERITY_ORDER[f.severity]
        verdict = 2 if refuted(f) else min(group[f.code], 0 if f.confirmed else 1)
        return (_KIND_ORDER[f.kind], verdict, depth[f.code], sev, CODES[f.code].tier, -f.score)

    return sorted(kept, key=key)


def _strength(f: Finding) -> tuple[int, float]:
    return _SEVERITY_ORDER[f.severity], -f.score
