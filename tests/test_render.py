"""Renderings of a report: plain sentences, the terminal (coloured and plain), HTML, the JSON
schema, and ``nndoctor show``."""

from __future__ import annotations

import ast
import io
import json
import math
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from nndoctor import diagnose
from nndoctor.cli import main
from nndoctor.doctor import CODES, Finding, Report
from nndoctor.doctor import report as report_module
from nndoctor.doctor.ranking import rank
from nndoctor.nn import SGD, SSE, Dense, Sequential, Sigmoid
from nndoctor.render import plain
from nndoctor.render.terminal import plain_text, render, to_ansi

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _seed_data(n: int = 10) -> np.ndarray:
    return np.random.default_rng(42).random((n, 8, 8)).transpose(0, 2, 1).reshape(-1, 8)


@pytest.fixture(scope="module")
def report() -> Report:
    model = Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())
    sgd = SGD(lr=0.05)
    return diagnose(model, _seed_data(), loss=SSE(), optimizer=sgd, epochs=30, batch_size=8)


TRIAL = {"change": "re-initialise with xavier_uniform", "metric": "loss", "loss_before": 2.28,
         "loss_after": 1.55, "noise": 0.0, "budget": "600 epochs"}  # fmt: skip


def _confirmed() -> Report:
    f = CODES["symmetric-units"].finding(
        "error",
        "layer 0: units 0, 1, 2 have identical incoming weights",
        evidence={"layer": "0", "units": 3, "effective_units": 1, "groups": [[0, 1, 2]]},
        why="identical units get identical gradients",
        fix="initialise weights randomly (Xavier)",
    )
    f.confirmed, f.trial = True, TRIAL
    info = CODES["incompressible-data"].finding(
        "info", "flat spectrum", evidence={"rank_3_bound": 1.539}
    )
    summary = {"final_loss": 2.282, "epochs_run": 1000, "steps": 100000, "loss": "sse"}
    summary["optimizer"] = {"name": "SGD", "lr": 0.05}
    return Report(rank([f, info]), summary)


# --- plain words -----------------------------------------------------------------------------


def test_every_code_has_a_plain_sentence_and_it_fills_in():
    for code, rule in CODES.items():
        # with no evidence at all the fallback is still a sentence, no "{" left
        text = plain.sentence(rule.sentence, {})
        assert text[0].isupper() and text.endswith(".") and "{" not in text, code
        # a finding of the code says it, through its record
        assert plain.finding_sentence(rule.finding("warning", "t")) == text


def test_a_finding_without_a_record_falls_back_to_its_title():
    stray = Finding("dead-units", "warning", "gradients are stale", kind="cause")
    assert plain.finding_sentence(stray) == "gradients are stale"
    assert plain.sentence(None, {}, "gradients are stale") == "gradients are stale"


def test_the_symmetric_units_sentence_uses_the_numbers():
    words = CODES["symmetric-units"].sentence
    text = plain.sentence(words, {"units": 3, "layer": "0", "effective_units": 1})
    assert text == (
        "Your 3 hidden units in layer 0 all compute the same thing, so the network acts as if "
        "it had one unit."
    )
    two = plain.sentence(words, {"units": 4, "layer": "1", "effective_units": 2})
    assert "4 hidden units in layer 1" in two and "had 2 units" in two


def test_values_never_print_python_literals():
    assert plain.fmt(True) == "yes" and plain.fmt(np.bool_(False)) == "no"
    assert plain.fmt(None) == "-" and plain.fmt(float("nan")) == "n/a"
    assert (
        plain.fmt(2.2711783) == "2.271" and plain.fmt(3.0) == "3" and plain.fmt(4e-7) == "4.00e-07"
    )
    assert plain.fmt([[0, 1, 2]]) == "(0, 1, 2)" and plain.fmt("inf") == "infinite"
    assert plain.fmt_evidence("dead_share", 0.25) == "25%"
    assert plain.label("rank_3_bound") == "best loss of a 3-unit code (rank-3 bound)"


def test_verdict_names_the_root_cause_and_its_trial():
    v = plain.verdict(_confirmed())
    assert v.startswith("Your 3 hidden units in layer 0 all compute the same thing")
    assert "confirmed: re-initialise with xavier_uniform takes the loss from 2.28 to 1.55" in v
    assert plain.verdict(Report([])) == "No problem found: training looks healthy."
    # information alone is no verdict (issue 20: it replaced "no problem found")
    note = CODES["incompressible-data"].finding("info", "flat spectrum")
    assert plain.verdict(Report([note])) == (
        "No problem found: training looks healthy. (1 note below.)"
    )
    # what caused the root cause, when the evidence says: all weights started at 0
    r = _confirmed()
    r.findings[0].evidence.update(constant_init=np.True_, initial_weight=0.0)
    assert (
        "the same thing, so the network acts as if it had one unit: all their weights started at 0"
        in (plain.verdict(r))
    )


def _rule_evidence_keys() -> set[str]:
    """Every evidence key the doctor writes as a literal (``evidence={"key": ...}``, or a dict
    assigned to ``evidence``), read from its source."""
    keys: set[str] = set()
    for path in (Path(plain.__file__).parents[1] / "doctor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = None
            named = isinstance(node, ast.keyword) and node.arg == "evidence"
            assigned = isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") == "evidence" for t in node.targets
            )
            if named or assigned:
                value = node.value
            if isinstance(value, ast.Dict):
                keys |= {k.value for k in value.keys if isinstance(k, ast.Constant)}
    return keys


def test_evidence_is_in_plain_words_first_the_technical_name_after():
    keys = _rule_evidence_keys()
    assert len(keys) > 80, "the rules' evidence was not found"
    # shared keys in plain.LABELS, a rule's own keys in its record
    own = {k: text for rule in CODES.values() for k, text in rule.labels.items()}
    unlabelled = sorted(k for k in keys - set(plain.LABELS) - set(own) if k not in plain.JOINED)
    assert unlabelled == [], "evidence keys without plain words in plain.LABELS or a record"
    for key, text in {**plain.LABELS, **own}.items():
        assert "_" not in text.replace("requires_grad", ""), key  # no variable names
        if text.endswith(")"):  # words first, the doctor's name for it last
            words, _, name = text.rpartition(" (")
            assert words and name[:-1], key
    # the three of the issue, in words before the name
    issue = {"held_out_skill": "held-out skill", "shuffled_quantile": "shuffled quantile",
             "sign_flip_share": "sign flips"}  # fmt: skip
    for key, name in issue.items():
        text = plain.label(key)
        assert text.endswith(f"({name})") and not text.startswith(name), text


def test_evidence_says_each_point_once():
    rows = dict(plain.evidence_rows({"held_out_skill": 0.0123, "skill_std": 0.05,
                                     "p_value": 0.6, "best_model": "ridge"}))  # fmt: skip
    assert rows == {
        plain.label("held_out_skill"): "0.0123 ± 0.05",
        plain.label("p_value"): "0.6",
        plain.label("best_model"): "ridge",
    }
    # all weights started at 0: one row says it (not three)
    zeros = {"identical_at_init": True, "constant_init": True, "initial_weight": 0.0}
    assert plain.evidence_rows(zeros) == [(plain.label("initial_weight"), "0")]
    # a random init has no initial weight to show
    xavier = {"identical_at_init": False, "constant_init": False, "initial_weight": math.nan}
    assert [v for _, v in plain.evidence_rows(xavier)] == ["no", "no"]
    # the best of two skills is one of them
    skills = {"knn_skill": 0.8, "ridge_skill": 0.3, "best_heldout_skill": 0.8}
    assert len(plain.evidence_rows(skills)) == 2


def test_a_finding_opens_with_its_sentence_and_says_its_title_only_when_asked():
    r = _confirmed()
    info = r.findings[1]
    normal, verbose = plain_text(r, 1), plain_text(r, 2)
    assert info.title not in normal and info.title in verbose
    assert plain.finding_sentence(info) in " ".join(normal.split())
    # the verdict's finding: the verdict says its sentence, the finding its title
    assert r.findings[0].title in normal


# --- terminal --------------------------------------------------------------------------------


def test_plain_text_has_no_ansi_and_no_python_literals(report):
    text = str(report)
    assert not ANSI.search(text)
    assert "True" not in text and "None" not in text and "False" not in text
    assert text.splitlines()[0] == "nndoctor report"
    assert "Verdict:" in text and "Causes:" in text
    assert "with SGD (lr 0.05)" in text  # the optimiser the user chose


def test_render_to_a_file_or_pipe_is_plain_and_to_a_terminal_is_coloured(report, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    buffer = io.StringIO()
    render(report, buffer)
    assert not ANSI.search(buffer.getvalue())
    assert buffer.getvalue() == plain_text(report) + "\n"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    render(report, tty)
    coloured = tty.getvalue()
    assert ANSI.search(coloured)
    assert report.causes[0].title.split(":")[0] in ANSI.sub("", coloured)
    monkeypatch.setenv("NO_COLOR", "1")
    tty = Terminal()
    render(report, tty)
    assert not ANSI.search(tty.getvalue())


def test_quiet_normal_verbose():
    r = _confirmed()
    quiet, normal, verbose = (plain_text(r, v) for v in (0, 1, 2))
    assert len(quiet.splitlines()) < len(normal.splitlines()) < len(verbose.splitlines())
    assert "fix:" not in quiet and "fix:" in normal and "why:" in verbose
    assert "[confirmed]" in quiet
    assert "2.28 -> 1.55" in normal
    assert "symmetric units:" in verbose  # the glossary term, explained
    coloured = ANSI.sub("", to_ansi(r, 2))
    assert "✓ confirmed" in coloured and "identical units get identical gradients" in coloured


def test_no_line_repeats_another(report):
    for r in (report, _confirmed()):
        lines = [line.strip() for line in str(r).splitlines() if line.strip()]
        assert len(lines) == len(set(lines))


# --- HTML ------------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a["src"])
        if tag == "a":
            self.links.append(a["href"])
        if tag in ("script", "link", "iframe"):
            self.scripts += 1


def test_html_is_self_contained_with_findings_first(report, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra")
    path = report.save_html(tmp_path / "r.html")
    html = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    assert page.scripts == 0
    # no address to fetch: the only ones are the SVG plots' XML namespaces
    text = re.sub(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"', "", unquote(html))
    assert "http://" not in text and "https://" not in text
    assert len(page.images) == len(report.plots) and page.images
    assert all(src.startswith("data:image/svg+xml,") for src in page.images)
    # every in-page link lands on an element of the page (glossary terms, plots above)
    assert all(href[1:] in page.ids for href in page.links if href.startswith("#"))
    first = report.findings[0]
    assert html.index(first.code) < html.index("<img")
    assert "True" not in re.sub(r"<[^>]+>", "", html.split("</style>")[1])


def test_repr_html_is_the_page_inline(report):
    fragment = report._repr_html_()
    assert fragment.lstrip().startswith('<div class="nndoctor">')
    assert "<html" not in fragment and report.findings[0].code in fragment


def test_two_reports_in_one_notebook_never_share_an_id(report):
    """Each notebook view has ids of its own, and its links land in it: the issue's
    "Plots: (above)" link that jumped into the other report."""
    views = []
    for _ in range(2):
        page = _Page()
        page.feed(report._repr_html_())
        views.append(page)
    first, second = views
    assert first.ids and not first.ids & second.ids
    for page in views:
        inner = [href[1:] for href in page.links if href.startswith("#")]
        assert inner and all(target in page.ids for target in inner)
    # a page of its own keeps plain, repeatable ids
    assert report.to_html() == report.to_html() and 'id="report-0"' in report.to_html()


def test_repr_is_one_short_line(report):
    text = repr(report)
    assert "\n" not in text and len(text) < 200
    assert text.startswith(f"<nndoctor Report: {report.codes[0]}")
    assert f"final loss {report.summary['final_loss']:.4g}" in text
    assert repr(Report([])) == "<nndoctor Report: no problem found>"


# --- JSON ------------------------------------------------------------------------------------


def _schema() -> dict:
    return json.loads(resources.files("nndoctor.render").joinpath("report.schema.json").read_text())


def test_reports_validate_against_the_schema(report):
    jsonschema = pytest.importorskip("jsonschema", reason="the dev extra")
    validator = jsonschema.Draft202012Validator(_schema())
    for r in (report, _confirmed(), Report([])):
        validator.validate(json.loads(r.to_json()))
    bad = json.loads(report.to_json())
    bad["findings"][0]["severity"] = "fatal"
    assert not validator.is_valid(bad)


def test_schema_doc_names_every_field():
    doc = (Path(__file__).parents[1] / "docs" / "report-schema.md").read_text(encoding="utf-8")
    schema = _schema()
    for key in [*schema["properties"], *schema["$defs"]["finding"]["properties"]]:
        assert f"`{key}`" in doc, key


def test_json_round_trip_keeps_the_plots(report):
    back = Report.from_dict(json.loads(report.to_json()))
    assert back.codes == report.codes
    np.testing.assert_array_equal(back.probes["epoch_loss"], report.probes["epoch_loss"])
    assert back.plots == report.plots
    assert str(back) == str(report)


def test_json_keeps_a_bounded_size_with_exact_values():
    """A long run, a wide layer: the JSON keeps at most SAVED_EPOCHS epochs and SAVED_PROBES
    probes of each series, each value exact, and leaves out the big matrices."""
    rng = np.random.default_rng(0)
    epochs, probes_run = 20_000, 3_000
    loss = 2.0 + rng.normal(size=epochs).cumsum() * 1e-3
    loss[12_345] = 50.0  # one spike: kept
    steps = np.arange(probes_run) * 7
    probes = {
        "steps": steps,
        "step_loss": rng.normal(size=epochs * 7),
        "epoch_loss": loss,
        "output_std": rng.random(probes_run),
        "0.grad_norm": rng.random(probes_run),
        "0.W_final": rng.normal(size=(128, 128)),  # 16 384 numbers: left out
        "1.W_final": rng.normal(size=(4, 128)),
    }
    r = Report([], {"epochs_run": epochs, "steps": epochs * 7}, {}, {}, probes,
               curves={"other run": loss + 1.0})  # fmt: skip
    text = r.to_json()
    assert len(text) < 120_000
    # a list of numbers on one line, not a number a line
    assert not [line for line in text.splitlines() if re.fullmatch(r"\s*-?[\d.e-]+,?", line)]
    d = json.loads(text)["probes"]
    assert "step_loss" not in d and "0.W_final" not in d and len(d["1.W_final"]) == 4
    at = np.asarray(d["epoch_at"])
    assert len(at) <= report_module.SAVED_EPOCHS + 3 and at[0] == 1 and at[-1] == epochs
    np.testing.assert_array_equal(d["epoch_loss"], loss[at - 1])  # exact, not rounded
    assert 12_346 in at  # the spike
    np.testing.assert_array_equal(json.loads(text)["curves"]["other run"], loss[at - 1] + 1.0)
    kept = np.searchsorted(steps, d["steps"])
    assert len(kept) <= report_module.SAVED_PROBES and d["steps"][-1] == steps[-1]
    np.testing.assert_array_equal(d["output_std"], probes["output_std"][kept])
    np.testing.assert_array_equal(d["0.grad_norm"], probes["0.grad_norm"][kept])
    # read back, the loss is drawn at the epochs it was kept at
    pytest.importorskip("matplotlib", reason="the plot extra")
    from nndoctor.plot import thin_indices

    back = Report.from_dict(json.loads(text))
    line = back.plot("loss").axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), at[thin_indices(d["epoch_loss"])])


def test_show_renders_a_saved_report(report, tmp_path, capsys):
    saved = tmp_path / "report.json"
    report.to_json(saved)
    assert main(["show", str(saved)]) == 0
    assert capsys.readouterr().out == str(report) + "\n"
    assert main(["show", str(saved), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(report.to_json())
    out_html = tmp_path / "again.html"
    assert main(["show", str(saved), "--quiet", "--html", str(out_html)]) == 0
    assert report.findings[0].code in out_html.read_text(encoding="utf-8")


def test_show_refuses_what_is_not_a_report(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    assert main(["show", str(path)]) == 2
    assert "no report" in capsys.readouterr().err
    path.write_text("{")
    assert main(["show", str(path)]) == 2
    assert "not JSON" in capsys.readouterr().err


def test_a_pytorch_report_renders_the_same_way(torch, tmp_path):
    """diagnose() on a torch.nn.Module: the same terminal text, plots, page and schema, with
    the layers named as torch names them."""
    pytest.importorskip("matplotlib", reason="the plot extra")
    nn = torch.nn
    model = nn.Sequential(nn.Linear(8, 3), nn.Sigmoid(), nn.Linear(3, 8), nn.Sigmoid())
    for p in model.parameters():
        nn.init.zeros_(p)

    def sse(out, target):
        return 0.5 * ((out - target) ** 2).sum()

    def sgd(params):
        return torch.optim.SGD(params, lr=0.05)

    report = diagnose(model, _seed_data(5), loss=sse, optimizer=sgd, epochs=5, batch_size=8,
                      trials=False)  # fmt: skip
    assert report.causes[0].code == "symmetric-units"
    assert not ANSI.search(str(report)) and "Verdict:" in str(report)
    # torch's module names: the Linear layers are "0" and "2"
    assert {"0.W_final", "2.W_final"} <= set(report.probes)
    fig = report.plot("gradients")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["layer 0", "layer 2"]
    assert report.plot("unit-similarity").axes[0].get_title() == "layer 0: 3 units, 1 distinct"
    html = report.save_html(tmp_path / "torch.html").read_text(encoding="utf-8")
    assert "symmetric-units" in html and html.count("<img") == len(report.plots)
    jsonschema = pytest.importorskip("jsonschema", reason="the dev extra")
    jsonschema.Draft202012Validator(_schema()).validate(json.loads(report.to_json()))
