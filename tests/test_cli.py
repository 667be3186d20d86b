"""The ``nndoctor`` command line, called as a function (``main([...])``) and once as a module."""

from __future__ import annotations

import argparse
import errno
import inspect
import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import nndoctor
import nndoctor.cli
import nndoctor.outputs
from nndoctor.cli import build_parser, main
from nndoctor.doctor import CODES, Report

SMALL = ["seed", "--samples", "3", "--epochs", "2", "--no-diagnose", "--no-progress"]


def test_seed_json(capsys):
    assert main([*SMALL, "--seed", "7", "--lr", "0.1", "--json", "-"]) == 0
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
    argv = [*SMALL, "--epochs", "1", "--init", "zeros,he_normal", "--init", "normal", "--json", "-"]
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
    assert main(["scenarios", "--json", "-", "--no-progress"]) == 0
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
    from nndoctor.doctor import CODES, Report

    module = types.ModuleType("nndoctor.scenarios")
    results = []
    for name, code in (("first-case", "dead-units"), ("second-case", None)):
        result = _Result(name)
        result.scenario = types.SimpleNamespace(description=f"what {name} is")
        findings = [CODES[code].finding("error", f"title of {code}")] if code else []
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
    ("option", "name", "words"),
    [
        ("--plot", "missing-folder/run.png", "does not exist"),
        ("--plot", "run.txt", "extension"),
        ("--html", "missing-folder/page.html", "does not exist"),
        ("--json", "missing-folder/seed.json", "does not exist"),
        ("--json", "seed.txt", "extension"),
        ("--html", "folder.html", "is a folder"),
    ],
)
def test_output_paths_are_checked_before_any_training(
    tmp_path, monkeypatch, capsys, option, name, words
):
    import nndoctor.seedcase

    def never(*args, **kwargs):
        raise AssertionError("training started before the output path was checked")

    monkeypatch.setattr(nndoctor.seedcase, "run_seed_case", never)
    (tmp_path / "folder.html").mkdir()
    path = tmp_path / name
    assert main(["seed", "--samples", "3", "--epochs", "2", option, str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and option in err and err.count("\n") == 1


# --- one grammar: the table of docs/cli.md, the shared flags on every command, exit statuses ---

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
COMMANDS = ("seed", "scenarios", "show", "run")


def _table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``heading`` in docs/cli.md, header and rule left out."""
    text = DOCS.read_text(encoding="utf-8").split(f"\n## {heading}\n", 1)[1]
    lines = [line for line in text.split("\n## ")[0].splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _flag_rows() -> dict[str, set[str]]:
    """Each documented flag spelling -> the commands it is marked for ("nndoctor": none)."""
    rows = {}
    for flag, *marks, _meaning in _table("Flags"):
        commands = {c for c, mark in zip(COMMANDS, marks, strict=True) if mark == "✓"}
        for spelling in re.findall(r"`(--?[\w-]+)", flag):
            rows[spelling] = commands or {"nndoctor"}
    return rows


def _parser_flags() -> dict[str, set[str]]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: dict[str, set[str]] = {}
    for name, command in [("nndoctor", parser), *commands.choices.items()]:
        for action in command._actions:
            for spelling in action.option_strings:
                if name == "nndoctor" and spelling in ("-h", "--help"):
                    continue  # the commands' own -h is the documented one
                found.setdefault(spelling, set()).add(name)
    return found


def test_the_flag_table_is_the_parser():
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS)
    assert _flag_rows() == _parser_flags()


def test_every_documented_flag_is_used_by_a_test():
    """Each row of the flag table is exercised by a test of this module that passes it."""
    me = sys.modules[__name__]
    sources = [
        inspect.getsource(test)
        for name, test in vars(me).items()
        if name.startswith("test_") and callable(test) and "documented" not in name
    ]
    unused = [flag for flag in _flag_rows() if not any(f'"{flag}"' in source for source in sources)]
    assert unused == []


def test_help_exits_0_with_the_usage(capsys):
    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: nndoctor {command}")
    assert main(["show", "-h"]) == 0
    assert "--json PATH" in capsys.readouterr().out


@pytest.fixture(scope="module")
def seed_result():
    from nndoctor.seedcase import run_seed_case

    return run_seed_case(n_samples=3, epochs=4, progress=False)


@pytest.fixture
def seed_case(monkeypatch, seed_result):
    """``nndoctor seed`` on a seed case computed once (the wiring is tested here, the case in
    tests/test_seedcase.py)."""
    import nndoctor.seedcase

    monkeypatch.setattr(nndoctor.seedcase, "run_seed_case", lambda **kwargs: seed_result)
    return seed_result


@pytest.fixture
def catalog(monkeypatch, seed_result):
    """A stand-in catalog of two scenarios with real reports."""
    from nndoctor.doctor import Report

    results = []
    for name, report in (("sick-one", seed_result.report), ("healthy-one", Report([]))):
        result = _Result(name)
        result.scenario = types.SimpleNamespace(description=f"what {name} is")
        result.report = report
        results.append(result)
    module = types.ModuleType("nndoctor.scenarios")
    module.run_catalog = lambda seed=0, names=None, progress=None: results
    module.format_table = lambda rs: "TABLE " + " ".join(r.name for r in rs) + "\n\nSCORE\n\nCODES"
    monkeypatch.setitem(sys.modules, "nndoctor.scenarios", module)
    monkeypatch.setattr(nndoctor, "scenarios", module, raising=False)
    return results


TWO_MODELS = """
import sys
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(32, 4, dtype=torch.float64)
Y = torch.tanh(X[:, :1] * X[:, 1:2])
sick = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1)).double()
for p in sick.parameters():  # constant weights: the hidden units stay identical
    nn.init.constant_(p, 0.5 if p is sick[2].weight else 0.0)
healthy = nn.Linear(4, 1).double()
loss_fn = nn.MSELoss()
optimizers = [(m, torch.optim.SGD(m.parameters(), lr=0.1)) for m in (sick, healthy)]
for step in range(30):
    for model, optimizer in optimizers:
        optimizer.zero_grad()
        loss_fn(model(X), Y).backward()
        optimizer.step()
print("trained")
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(TWO_MODELS)
    return path


@pytest.fixture
def saved(tmp_path, seed_result):
    path = tmp_path / "saved.json"
    seed_result.report.to_json(path)
    return path


def _argv(command: str, flags: list[str], request) -> tuple[list[str], str]:
    """``nndoctor COMMAND FLAGS ...`` on this module's small inputs, and the stream its report
    goes to (``run``: stderr, the script's stdout is its own)."""
    if command == "seed":
        request.getfixturevalue("seed_case")
        return ["seed", *flags, "--no-progress"], "out"
    if command == "scenarios":
        request.getfixturevalue("catalog")
        return ["scenarios", *flags, "--no-progress"], "out"
    if command == "show":
        return ["show", str(request.getfixturevalue("saved")), *flags], "out"
    request.getfixturevalue("torch")
    return ["run", *flags, "--no-alerts", str(request.getfixturevalue("script"))], "err"


def _canonical(payload) -> str:
    """Equal for two JSON payloads of the same values: NaN-safe, and an int equal to its float
    (``Report.from_dict`` reads the probes' series as float arrays)."""
    return json.dumps(json.loads(json.dumps(payload), parse_int=float), sort_keys=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_writes_json_that_show_reads(command, request, tmp_path, capsys):
    out = tmp_path / f"{command}.json"
    argv, stream = _argv(command, ["--json", str(out)], request)
    assert main(argv) == 0
    said = getattr(capsys.readouterr(), stream)
    assert said.index(f"JSON: {out}") > 0  # after the text, as with no --json
    written = json.loads(out.read_text(encoding="utf-8"))
    # what show renders from it, as show --json gives it back
    expected = {
        "seed": lambda: written["report"],
        "scenarios": lambda: [{"model": w["name"], "report": w["report"]} for w in written],
        "show": lambda: written,
        "run": lambda: written,
    }[command]()
    assert main(["show", str(out), "--json", "-"]) == 0
    assert _canonical(json.loads(capsys.readouterr().out)) == _canonical(expected)
    if command == "run":  # several models: one section each, in the order they first stepped
        assert [w["model"] for w in written] == ["sick (Sequential)", "healthy (Linear)"]
        assert written[0]["report"]["findings"][0]["code"] == "symmetric-units"
        assert main(["show", str(out)]) == 0
        text = capsys.readouterr().out
        assert text.index("=== nndoctor: sick (Sequential) ===") < text.index(
            "=== nndoctor: healthy (Linear)"
        )


@pytest.mark.parametrize("command", ["seed", "scenarios", "show"])
def test_json_dash_prints_only_the_json_on_stdout(command, request, tmp_path, capsys):
    page = tmp_path / "page.html"
    argv, _ = _argv(command, ["--json", "-", "--html", str(page)], request)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # stdout is one JSON document, nothing else
    assert f"HTML report: {page}" in err and page.is_file()


def test_run_refuses_json_on_stdout_before_the_script_starts(torch, tmp_path, capsys):
    marker = tmp_path / "ran"
    script = tmp_path / "train.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    assert main(["run", "--json", "-", str(script)]) == 2
    assert "stdout is the script's own" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_writes_one_html_page(command, request, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot extra draws the page's plots")
    page = tmp_path / "page.html"
    argv, stream = _argv(command, ["--html", str(page)], request)
    assert main(argv) == 0
    assert f"HTML report: {page}" in getattr(capsys.readouterr(), stream)
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert html.count("<!DOCTYPE html>") == 1
    if command == "run":  # both models, as sections of the one page
        assert "Sequential" in html and "Linear" in html and "symmetric-units" in html


@pytest.mark.parametrize("command", COMMANDS)
def test_quiet_and_verbose_mean_the_same_on_every_command(command, request, capsys):
    said = {}
    for flag in ("-q", "", "--verbose", "--quiet", "-v"):
        argv, stream = _argv(command, [flag] if flag else [], request)
        assert main(argv) == 0
        said[flag] = getattr(capsys.readouterr(), stream)
    assert said["-q"] == said["--quiet"] and said["-v"] == said["--verbose"]
    assert len(said["-q"]) < len(said[""]) < len(said["-v"])
    if command != "scenarios":  # (its default is the table alone)
        assert "why:" in said["-v"] and "why:" not in said[""]
    assert main([*_argv(command, ["-q", "-v"], request)[0]]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_seed_init_seed_draws_the_initial_weights(capsys):
    def losses(init_seed: str) -> list[float]:
        argv = [*SMALL, "--init", "xavier_uniform", "--init-seed", init_seed, "--json", "-"]
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["init_seed"] == int(init_seed)
        return out["runs"][0]["loss"]

    assert losses("5") == losses("5") != losses("6")


def test_run_every_and_no_alerts_reach_the_watch(monkeypatch, torch, tmp_path, caplog):
    import nndoctor.runner

    seen = {}
    real = nndoctor.runner.torch_watch

    def make_watch(model, optimizer, loss, every, alerts):
        seen.update(every=every, alerts=alerts)
        return real(model, optimizer, loss, every, alerts)

    monkeypatch.setattr(nndoctor.runner, "torch_watch", make_watch)
    script = tmp_path / "train.py"
    script.write_text(TWO_MODELS)
    assert main(["run", "--every", "5", "--no-alerts", str(script)]) == 0
    assert seen == {"every": 5, "alerts": False}
    # live alerts go through logging (pytest set it up): none, then one from the second run
    assert [r for r in caplog.records if r.name == "nndoctor"] == []
    assert main(["run", str(script)]) == 0
    assert seen == {"every": None, "alerts": True}
    (alert,) = [r.getMessage() for r in caplog.records if r.name == "nndoctor"]
    assert alert.startswith("nndoctor: symmetric-units: layer 0 has 6 identical units")


def test_show_reads_stdin_and_refuses_to_overwrite_its_input(saved, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(saved.read_text(encoding="utf-8")))
    assert main(["show", "-", "-q"]) == 0
    assert capsys.readouterr().out.startswith("nndoctor report")
    assert main(["show", str(saved), "--json", str(saved)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err


def test_show_names_what_is_not_a_report(tmp_path, capsys):
    seed_without_doctor = tmp_path / "seed.json"
    assert main([*SMALL, "--json", str(seed_without_doctor)]) == 0
    capsys.readouterr()
    assert main(["show", str(seed_without_doctor)]) == 2
    assert "--no-diagnose" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('[{"model": "m", "report": {"findings": [{"code": 1}]}}]')
    assert main(["show", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "the report of m" in err and err.count("\n") == 1


def test_show_of_a_run_that_trained_nothing(tmp_path, capsys):
    empty = tmp_path / "run.json"
    empty.write_text("[]")
    assert main(["show", str(empty)]) == 0
    assert "nothing to report" in capsys.readouterr().out


# --- exit statuses: a case per row of the table in docs/cli.md ---


def _ok(ctx):
    ctx.request.getfixturevalue("torch")
    return [["show", str(ctx.saved)], ["run", "--no-alerts", str(ctx.script)]]


def _missing_extra(ctx):
    import nndoctor._extras as extras

    def require(module):
        raise ImportError(f"{module} is needed for this feature: pip install 'nndoctor[plot]'")

    ctx.monkeypatch.setattr(extras, "require", require)
    ctx.monkeypatch.delitem(sys.modules, "nndoctor.plot", raising=False)
    return [["seed", "--samples", "2", "--epochs", "1", "--no-progress", "--plot", "x.png"]]


def _full_disk(path, text):
    raise OSError(errno.ENOSPC, f"cannot write {path}: No space left on device")


def _write_fails(ctx):
    for module in (nndoctor.cli, nndoctor.outputs):
        ctx.monkeypatch.setattr(module, "write_text_atomic", _full_disk)
    return [["show", str(ctx.saved), "--json", str(ctx.tmp / "out.json")]]


def _run_fails(ctx):
    ctx.request.getfixturevalue("torch")
    raising = ctx.tmp / "raises.py"
    raising.write_text("raise RuntimeError('out of memory, say')\n")
    for module in (nndoctor.cli, nndoctor.outputs):  # its report fails
        ctx.monkeypatch.setattr(module, "write_text_atomic", _full_disk)
    return [["run", str(raising)], ["run", "--json", str(ctx.tmp / "r.json"), str(ctx.script)]]


def _usage(ctx):
    return [["seed", "--bogus"], ["bogus"], ["seed", "--samples", "0"], ["show", "-q", "-v"]]


def _bad_output(ctx):
    ctx.request.getfixturevalue("torch")
    marker = ctx.tmp / "ran"
    ctx.script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    ctx.after.append(lambda: not marker.exists())  # the script never started
    return [
        ["seed", "--json", "seed.txt"],
        ["show", str(ctx.saved), "--html", str(ctx.tmp / "missing" / "x.html")],
        ["run", "--json", str(ctx.tmp / "missing" / "x.json"), str(ctx.script)],
        ["run", "--json", "-", str(ctx.script)],
    ]


def _bad_input(ctx):
    (ctx.tmp / "text.json").write_text("not json")
    (ctx.tmp / "other.json").write_text('{"a": 1}')
    names = ["missing.json", ".", "text.json", "other.json"]
    return [["show", str(ctx.tmp / name)] for name in names]


def _no_script(ctx):
    ctx.request.getfixturevalue("torch")
    return [["run", str(ctx.tmp / "nope.py")]]


def _script_exits(ctx):
    ctx.request.getfixturevalue("torch")
    for module in (nndoctor.cli, nndoctor.outputs):  # its report fails
        ctx.monkeypatch.setattr(module, "write_text_atomic", _full_disk)
    json_path = str(ctx.tmp / "r.json")
    return [["run", str(ctx.script), "3"], ["run", "--json", json_path, str(ctx.script), "3"]]


def _interrupted(ctx):
    import nndoctor.seedcase

    ctx.request.getfixturevalue("torch")

    def interrupt(**kwargs):
        raise KeyboardInterrupt

    ctx.monkeypatch.setattr(nndoctor.seedcase, "run_seed_case", interrupt)
    stopped = ctx.tmp / "stopped.py"
    stopped.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n")
    return [["seed", "--no-progress"], ["run", str(stopped)]]


EXIT_CASES = {
    ("0", "done (`run`: the script exited 0 and every report was written)"): _ok,
    ("1", "nndoctor failed: a missing extra (one line names the `pip install` that fixes it)"): (
        _missing_extra
    ),
    (
        "1",
        "nndoctor failed: a file could not be written after the work (a full disk, a folder "
        "removed meanwhile)",
    ): _write_fails,
    (
        "1",
        "`run`: the script raised (its own traceback is printed), or it exited 0 and nndoctor "
        "could not build or write a report",
    ): _run_fails,
    (
        "2",
        "a usage error: an unknown command or option, a bad option value, `-q` with `-v`",
    ): _usage,
    (
        "2",
        "an output path that cannot be written (checked before any work), or `run --json -`",
    ): _bad_output,
    ("2", "`show`: the input is missing, a folder, not JSON or holds no report"): _bad_input,
    ("2", "`run`: the script does not exist"): _no_script,
    (
        "N",
        "`run`: the script called `sys.exit(N)` (nndoctor keeps it, even when its own report "
        "failed)",
    ): _script_exits,
    ("130", "interrupted with Ctrl-C (`run`: the script was)"): _interrupted,
}


def test_the_exit_status_table_has_a_case_per_row():
    assert [tuple(row) for row in _table("Exit status")] == list(EXIT_CASES)


@pytest.mark.parametrize(("status", "when"), list(EXIT_CASES), ids=lambda x: x[:40])
def test_each_exit_status_of_the_table(status, when, request, tmp_path, monkeypatch, capsys):
    script = tmp_path / "train.py"
    script.write_text(TWO_MODELS)
    saved = tmp_path / "saved.json"
    Report([CODES["dead-units"].finding("error", "title of dead-units")]).to_json(saved)
    ctx = types.SimpleNamespace(
        request=request,
        monkeypatch=monkeypatch,
        tmp=tmp_path,
        script=script,
        saved=saved,
        after=[],
    )
    monkeypatch.chdir(tmp_path)
    for argv in EXIT_CASES[(status, when)](ctx):
        expected = 3 if status == "N" else int(status)
        assert main(argv) == expected, (argv, capsys.readouterr().err)
        err = capsys.readouterr().err
        if expected in (1, 2) and argv[0] != "run":
            assert err.startswith(f"nndoctor {argv[0]}: error: ") or "usage:" in err, err
            assert "Traceback" not in err
    assert all(check() for check in ctx.after)
