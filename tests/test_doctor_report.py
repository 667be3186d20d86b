"""Findings and reports: validation, ranking, terminal text, JSON round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nndoctor.doctor import CODES, Finding, Report
from nndoctor.doctor.ranking import rank, refuted


def _f(code: str, severity: str = "error", score: float = 1.0) -> Finding:
    return CODES[code].finding(
        severity, f"title of {code}", evidence={"x": 1.0}, why="why", fix="fix", score=score
    )


def test_unknown_codes_severities_and_kinds_are_refused():
    stray = Finding("not-a-code", "error", "t", kind="cause")
    with pytest.raises(ValueError, match="unknown finding code"):
        Report([stray])
    with pytest.raises(ValueError, match="unknown finding code"):
        Report.from_dict({"findings": [stray.to_dict()]})
    with pytest.raises(ValueError, match="severity"):
        CODES["dead-units"].finding("fatal", "t")
    with pytest.raises(ValueError, match="kind"):
        Finding("dead-units", "error", "t", kind="symptomatic")


def test_every_code_has_a_kind_and_is_documented():
    docs = (Path(__file__).parents[1] / "docs" / "findings.md").read_text(encoding="utf-8")
    for code, spec in CODES.items():
        assert spec.kind in ("cause", "symptom", "info")
        assert f"`{code}`" in docs, code


def test_rank_causes_then_symptoms_then_info_roots_first():
    findings = [
        _f("incompressible-data", "info"),
        _f("loss-plateau", "warning"),
        _f("dead-units", "error"),
        _f("loss-at-baseline", "error"),
        _f("lr-too-high", "warning"),
        _f("output-collapse", "error"),
    ]
    ranked = rank(findings)
    # lr-too-high explains dead-units: it comes first and is raised to its severity;
    # loss-at-baseline makes the vaguer loss-plateau redundant
    assert [f.code for f in ranked] == [
        "lr-too-high",
        "dead-units",
        "loss-at-baseline",
        "output-collapse",
        "incompressible-data",
    ]
    assert ranked[0].severity == "error" and ranked[0].explains == ["dead-units"]


def test_report_text_and_json_round_trip(tmp_path):
    f = _f("symmetric-units")
    f.evidence = {
        "groups": [[0, 1, 2]],
        "rank": np.int64(1),
        "ratio": np.float64(0.5),
        "nan": math.nan,
        "flag": np.bool_(True),
    }
    f.confirmed = True
    f.trial = {
        "change": "re-initialise with xavier_uniform",
        "metric": "loss",
        "loss_before": 2.28,
        "loss_after": 1.54,
        "noise": 0.0,
        "budget": "600 epochs",
    }
    report = Report(
        rank([f, _f("incompressible-data", "info")]),
        {"final_loss": 2.28},
        {"text": "best constant: 2.66"},
    )
    text = str(report)
    assert text.index("Causes:") < text.index("Information:")
    assert "[confirmed]" in text and "2.28 -> 1.54" in text
    # evidence in words: groups of units as tuples, booleans as yes/no, NaN as n/a
    assert "identical unit groups (0, 1, 2)" in text and "flag yes" in text and "nan n/a" in text
    assert "True" not in text
    path = tmp_path / "report.json"
    out = report.to_json(path)
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(out)
    assert loaded["findings"][0]["evidence"]["nan"] == "nan"
    assert loaded["findings"][0]["evidence"]["flag"] is True
    back = Report.from_dict(loaded)
    assert back.codes == report.codes == ["symmetric-units", "incompressible-data"]
    assert back.causes[0].trial["loss_after"] == 1.54
    assert "symmetric-units" in back and back["symmetric-units"].confirmed is True
    with pytest.raises(KeyError, match="dead-units"):
        back["dead-units"]


def test_empty_report_says_healthy():
    assert "healthy" in str(Report([]))


def test_a_few_constant_features_rated_info_explain_nothing():
    # four blank pixels of 64 (info) next to unpredictable targets: no-signal is the cause
    few = rank([_f("constant-inputs", "info"), _f("no-signal", "warning")])
    assert [f.code for f in few] == ["no-signal", "constant-inputs"]
    assert few[1].severity == "info" and few[1].explains == []
    # every feature constant (error): that is why nothing is predictable
    every = rank([_f("no-signal", "warning"), _f("constant-inputs", "error")])
    assert [f.code for f in every] == ["constant-inputs", "no-signal"]
    assert every[0].explains == ["no-signal"]
    # an info-level unscaled-inputs still explains the lr-too-high it causes
    scale = rank([_f("lr-too-high", "error"), _f("unscaled-inputs", "info")])
    assert scale[0].code == "unscaled-inputs" and scale[0].severity == "error"


def test_a_dynamic_cause_refuted_by_its_trial_goes_after_the_others():
    high = _f("lr-too-high", "error")
    high.confirmed = False
    high.trial = {"change": "learning rate 0.002", "loss_before": 0.679, "loss_after": 0.690}
    untried = _f("insufficient-capacity", "warning")
    assert refuted(high)
    assert [f.code for f in rank([high, untried])] == ["insufficient-capacity", "lr-too-high"]
    # a fix that blew up (inf) made nothing better either
    high.trial = {"change": "learning rate 0.002", "loss_before": 0.679, "loss_after": math.inf}
    assert refuted(high)
    # an unconfirmed trial that still helped is no refutation: the causal order stands
    high.trial = {"change": "learning rate 0.002", "loss_before": 0.679, "loss_after": 0.6}
    assert [f.code for f in rank([untried, high])] == ["lr-too-high", "insufficient-capacity"]


def test_a_setup_fault_is_not_refuted_by_a_trial():
    # a wrong loss is visible in the setup; a trial judged on an insensitive metric (error
    # rate unchanged) or on a short budget cannot argue it away
    static = _f("wrong-loss-for-targets", "warning")
    static.confirmed = False
    static.trial = {"change": "remove the Softmax", "loss_before": 0.0, "loss_after": 0.0}
    assert not refuted(static)
    assert rank([static, _f("insufficient-capacity", "warning")])[0].code == static.code


def _tried(code: str, severity: str, verdict: str) -> Finding:
    f = _f(code, severity)
    f.confirmed = verdict == "confirmed"
    f.trial = {"change": "c", "verdict": verdict, "loss_before": 1.0, "loss_after": 1.0}
    return f


def test_a_confirmed_trial_outranks_thresholds():
    # an error-level cause whose trial changed nothing, and a warning whose trial was
    # confirmed: the trial's evidence wins
    unchanged = _tried("symmetric-units", "error", "refuted")
    confirmed = _tried("unscaled-inputs", "warning", "confirmed")
    assert [f.code for f in rank([unchanged, confirmed])] == ["unscaled-inputs", "symmetric-units"]
    # ... and an untried error-level cause too
    untried = _f("no-signal", "error")
    assert rank([untried, unchanged, confirmed])[0].code == "unscaled-inputs"


def test_a_root_ranks_with_the_confirmed_consequence_it_explains():
    # the gradient is wrong (no trial possible): the lower learning rate that helped is a
    # workaround of it, so the root stays first, and both come before an unconfirmed cause
    root = _f("gradient-mismatch", "error")
    helped = _tried("lr-too-high", "warning", "confirmed")
    other = _tried("symmetric-units", "error", "inconclusive")
    order = [f.code for f in rank([other, helped, root])]
    assert order == ["gradient-mismatch", "lr-too-high", "symmetric-units"]
    # a root refuted by its own trial does not ride on its consequence
    lr = _tried("lr-too-high", "error", "refuted")
    dead = _tried("dead-units", "warning", "confirmed")
    assert [f.code for f in rank([lr, dead])] == ["dead-units", "lr-too-high"]


def test_refuted_reads_the_trial_verdict():
    f = _tried("lr-too-high", "error", "inconclusive")
    f.trial["loss_after"] = math.inf  # the old reading would call this refuted
    assert not refuted(f)
    f.trial["verdict"] = "refuted"
    assert refuted(f)
