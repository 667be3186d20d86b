"""The ``nndoctor`` command line, called as a function (``main([...])``) and once as a module."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

import nndoctor
from nndoctor.cli import main

SMALL = ["seed", "--samples", "3", "--epochs", "2", "--no-diagnose", "--no-progress"]


def test_seed_json(capsys):
    assert main([*SMALL, "--seed", "7", "--lr", "0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_samples"] == 3 and out["epochs"] == 2 and out["lr"] == 0.1
    assert out["data"]["mean"] == pytest.approx(
        np.random.default_rng(7).random((3, 8, 8)).mean(), rel=1e-14
    )
    assert [r["init"] for r in out["runs"]] == ["zeros", "xavier_uniform"]
    assert all(len(r["loss"]) == 2 for r in out["runs"])
    assert out["runs"][0]["w1_rows_identical"] is True
    assert out["gradient_checks"]["asker"]["failed"] == ["W1", "b1"]


def test_seed_init_options_repeat_and_split(capsys):
    argv = [*SMALL, "--epochs", "1", "--init", "zeros,he_normal", "--init", "normal", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["init"] for r in out["runs"]] == ["zeros", "he_normal", "normal"]
    assert out["epochs"] == 1  # the last --epochs wins, as argparse does


def test_seed_text(capsys):
    assert main(SMALL) == 0
    out = capsys.readouterr().out
    assert out.startswith("The seed case")
    assert "WRONG for W1, b1" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["seed", "--samples", "0"], "'0'"),
        (["seed", "--samples", "abc"], "'abc'"),
        (["seed", "--epochs", "-3"], "'-3'"),
        (["seed", "--lr", "-1"], "'-1'"),
        (["seed", "--lr", "inf"], "'inf'"),
        (["seed", "--init", "zeros,bogus"], "'bogus'"),
        (["seed", "--seed", "1.5"], "1.5"),
        (["seed", "--unknown"], "--unknown"),
        (["bogus"], "bogus"),
        ([], "choose a command"),
    ],
)
def test_bad_options_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert needle in captured.err
    assert "error" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nndoctor {nndoctor.__version__}"


def test_python_dash_m():
    done = subprocess.run(
        [sys.executable, "-m", "nndoctor", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"nndoctor {nndoctor.__version__}"


class _Report:
    def __init__(self, codes):
        self.codes = codes

    def to_dict(self):
        return {"codes": self.codes}


class _Result:
    """The public attributes of ``nndoctor.scenarios.ScenarioResult`` the CLI reads."""

    def __init__(self, name):
        self.name = name
        self.expected = "zero_init" if name == "a" else None
        self.cause_codes = ["zero_init"] if name == "a" else []
        self.first_cause = self.cause_codes[0] if self.cause_codes else None
        self.ok = True
        self.seconds = 0.5
        self.report = _Report(self.cause_codes)


@pytest.fixture
def fake_scenarios(monkeypatch):
    """A stand-in catalog: this checks the CLI's wiring, not the scenarios themselves."""
    calls = []
    module = types.ModuleType("nndoctor.scenarios")

    def run_catalog(seed=0, names=None, progress=None):
        calls.append({"seed": seed, "names": names, "progress": progress})
        if names and "missing" in names:
            raise ValueError("unknown scenario 'missing'")
        return [_Result(n) for n in names or ["a", "b"]]

    module.run_catalog = run_catalog
    module.format_table = lambda results: "TABLE " + " ".join(r.name for r in results)
    monkeypatch.setitem(sys.modules, "nndoctor.scenarios", module)
    monkeypatch.setattr(nndoctor, "scenarios", module, raising=False)
    return calls


def test_scenarios_table(capsys, fake_scenarios):
    assert main(["scenarios", "--seed", "3", "--only", "x", "y"]) == 0
    assert capsys.readouterr().out.strip() == "TABLE x y"
    assert fake_scenarios == [{"seed": 3, "names": ["x", "y"], "progress": None}]


def test_scenarios_json(capsys, fake_scenarios):
    assert main(["scenarios", "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out] == ["a", "b"]
    assert out[0] == {
        "name": "a",
        "expected": "zero_init",
        "first_cause": "zero_init",
        "cause_codes": ["zero_init"],
        "ok": True,
        "seconds": 0.5,
        "report": {"codes": ["zero_init"]},
    }
    assert out[1]["first_cause"] is None
    assert fake_scenarios == [{"seed": 0, "names": None, "progress": False}]


def test_scenarios_unknown_name_exits_2(capsys, fake_scenarios):
    assert main(["scenarios", "--only", "missing"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'missing'" in err and "Traceback" not in err


def test_scenarios_unknown_name_in_the_real_catalog_exits_2(capsys):
    assert main(["scenarios", "--only", "no-such-scenario"]) == 2
    err = capsys.readouterr().err
    assert "no-such-scenario" in err and "Traceback" not in err


def test_seed_plot_writes_the_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot extra")
    path = tmp_path / "seed.png"
    argv = ["seed", "--samples", "4", "--epochs", "5", "--no-progress", "--plot", str(path)]
    assert main(argv) == 0
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert str(path) in capsys.readouterr().out


def test_seed_plot_without_the_doctor_is_refused_before_training(capsys):
    assert main(["seed", "--no-diagnose", "--plot", "x.png"]) == 2
    assert "drop --no-diagnose" in capsys.readouterr().err


def test_missing_extra_is_one_line_exit_1(monkeypatch, capsys):
    import nndoctor._extras as extras

    def require(module):
        raise ImportError(f"{module} is needed for this feature: pip install 'nndoctor[plot]'")

    monkeypatch.setattr(extras, "require", require)
    monkeypatch.delitem(sys.modules, "nndoctor.plot", raising=False)
    argv = ["seed", "--samples", "2", "--epochs", "1", "--no-progress", "--plot", "x.png"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'nndoctor[plot]'" in err


def test_seed_html_quiet_and_verbose(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="the plot extra draws the page's plots")
    monkeypatch.delenv("NO_COLOR", raising=False)
    page = tmp_path / "seed.html"
    argv = ["seed", "--samples", "3", "--epochs", "4", "--no-progress"]
    assert main([*argv, "--quiet", "--html", str(page)]) == 0
    quiet = capsys.readouterr().out
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "symmetric-units" in html
    assert "data:image/svg+xml," in html and "<script" not in html
    assert f"HTML report: {page}" in quiet
    assert "\x1b[" not in quiet  # captured stdout is not a terminal: plain text
    assert main([*argv, "--verbose"]) == 0
    verbose = capsys.readouterr().out
    assert "why:" in verbose and "why:" not in quiet
    assert "fix:" not in quiet.split("6. The doctor")[1]
    # the story in the asker's terms: the mean, the bug, the zero init, the bound
    for needle in ("Why the outputs sat at 0.5", "WRONG for W1, b1", "The zero init", "2.33"):
        assert needle in verbose


def test_seed_html_without_the_doctor_is_refused(capsys):
    assert main(["seed", "--no-diagnose", "--html", "x.html"]) == 2
    assert "--html draws the doctor's run" in capsys.readouterr().err


def test_quiet_and_verbose_exclude_each_other(capsys):
    assert main(["seed", "--quiet", "--verbose"]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_scenarios_html_has_the_table_and_a_section_each(tmp_path, capsys, monkeypatch):
    from nndoctor.doctor import Finding, Report

    module = types.ModuleType("nndoctor.scenarios")
    results = []
    for name, code in (("first-case", "dead-units"), ("second-case", None)):
        result = _Result(name)
        result.scenario = types.SimpleNamespace(description=f"what {name} is")
        findings = [Finding(code, "error", f"title of {code}")] if code else []
        result.report = Report(findings)
        results.append(result)
    module.run_catalog = lambda seed=0, names=None, progress=None: results
    module.format_table = lambda rs: "TABLE\n\nsick: 1/1 ok\n\nSCORES"
    monkeypatch.setitem(sys.modules, "nndoctor.scenarios", module)
    monkeypatch.setattr(nndoctor, "scenarios", module, raising=False)
    page = tmp_path / "catalog.html"
    assert main(["scenarios", "--no-progress", "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert html.index('<table class="catalog">') < html.index('id="report-0"')
    # each row of the table links to its own section, in catalog order
    assert '<a href="#report-0">first-case</a>' in html
    assert '<a href="#report-1">second-case</a>' in html
    assert html.index("title of dead-units") < html.index('id="report-1"')
    assert "No problem found" in html.split('id="report-1"')[1]
    assert "what second-case is" in html and "sick: 1/1 ok" in html
    assert str(page) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "name", "code", "words"),
    [
        ("--plot", "missing-folder/run.png", 1, "does not exist"),
        ("--plot", "run.txt", 2, "extension"),
        ("--html", "missing-folder/page.html", 1, "does not exist"),
    ],
)
def test_output_paths_are_checked_before_any_training(
    tmp_path, monkeypatch, capsys, option, name, code, words
):
    import nndoctor.seedcase

    def never(*args, **kwargs):
        raise AssertionError("training started before the output path was checked")

    monkeypatch.setattr(nndoctor.seedcase, "run_seed_case", never)
    path = tmp_path / name
    assert main(["seed", "--samples", "3", "--epochs", "2", option, str(path)]) == code
    err = capsys.readouterr().err
    assert words in err and str(path) in err
