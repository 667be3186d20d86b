"""``nndoctor run``: the script runs as ``python script args`` would, and every model an optimizer
steps gets a watch and a report section."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nndoctor.cli import main as cli_main
from nndoctor.doctor.report import Report
from nndoctor.runner import GlobalWatcher, execute, run_script
from nndoctor.scenarios import TORCH_CATALOG

ROOT = Path(__file__).resolve().parents[1]


def _script(tmp_path: Path, body: str, name: str = "train.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_script_sees_its_argv_main_name_cwd_and_folder(tmp_path, monkeypatch):
    out = tmp_path / "seen.json"
    script = _script(
        tmp_path,
        f"""
        import json, os, sys
        seen = {{"argv": sys.argv, "name": __name__, "cwd": os.getcwd(), "path0": sys.path[0]}}
        with open({str(out)!r}, "w") as f:
            json.dump(seen, f)
        """,
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv_before = list(sys.argv)
    result = run_script(str(script), ["--lr", "0.1", "x"])
    seen = json.loads(out.read_text())
    assert result.status == 0 and result.error is None
    assert seen == {
        "argv": [str(script), "--lr", "0.1", "x"],
        "name": "__main__",
        "cwd": str(work),
        "path0": str(tmp_path),
    }
    assert sys.argv == argv_before  # restored for the caller


@pytest.mark.parametrize(
    ("body", "status"),
    [("import sys; sys.exit(3)", 3), ("import sys; sys.exit()", 0), ("x = 1", 0)],
)
def test_exit_status_is_the_scripts(tmp_path, body, status):
    assert run_script(str(_script(tmp_path, body)), []).status == status


def test_a_failing_script_keeps_its_own_traceback(tmp_path, capsys):
    script = _script(
        tmp_path,
        """
        def train():
            raise RuntimeError("shapes do not match")

        train()
        """,
    )
    result = run_script(str(script), [])
    err = capsys.readouterr().err
    assert result.status == 1 and isinstance(result.error, RuntimeError)
    assert "RuntimeError: shapes do not match" in err
    assert f'File "{script}", line 5, in <module>' in err
    assert "runpy" not in err and "runner.py" not in err  # our frames are not the user's


def test_missing_script_is_a_usage_error(tmp_path, capsys):
    assert cli_main(["run", str(tmp_path / "nope.py")]) == 2
    assert "no such script" in capsys.readouterr().err


class _FakeWatch:
    def __init__(self, model, optimizer, loss, every, alerts):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.closed = False
        self.logged = []

    def log(self, loss, output=None, target=None):
        self.logged.append(float(loss.detach()))

    def close(self):
        self.closed = True

    def report(self):
        return f"report of {type(self.model).__name__}"


def test_each_stepped_model_gets_one_watch_with_its_optimizer_and_loss(torch):
    nn = torch.nn
    watcher = GlobalWatcher(_FakeWatch)
    watcher.install()
    try:
        a = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        b = nn.Linear(3, 2)
        frozen = nn.Linear(3, 3)  # called, never optimised: no section
        opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
        opt_b = torch.optim.Adam(b.parameters())
        mse = nn.MSELoss()
        x = torch.randn(5, 3)
        first = []
        for step in range(3):
            for model, opt in ((a, opt_a), (b, opt_b)):
                opt.zero_grad()
                loss = mse(model(frozen(x))[:, :1], torch.zeros(5, 1))
                loss.backward()
                if step == 0:
                    first.append(float(loss.detach()))
                opt.step()
        # a model built after the forward hooks went quiet: found at its optimizer's 2nd step
        c = nn.Linear(3, 1)
        opt_c = torch.optim.SGD(c.parameters(), lr=0.1)
        for _ in range(3):
            opt_c.zero_grad()
            mse(c(x), torch.zeros(5, 1)).backward()
            opt_c.step()
    finally:
        sections = watcher.close()
    assert [name for name, _ in sections] == ["Sequential", "Linear", "Linear #2"]
    assert [p.optimizer for p in watcher.pairs] == [opt_a, opt_b, opt_c]
    assert [p.model for p in watcher.pairs] == [a, b, c]
    assert all(p.watch.loss is mse and p.watch.closed for p in watcher.pairs)
    # each watch was handed the loss of the step it started at, computed before it existed
    assert [p.watch.logged for p in watcher.pairs[:2]] == [[first[0]], [first[1]]]
    # the global hooks are gone: a later step starts nothing
    opt_c = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    opt_c.step()
    assert len(watcher.pairs) == 3


# --- the catalog's PyTorch scenarios as plain scripts ---

EXAMPLES = ROOT / "examples"


def _generator():
    spec = importlib.util.spec_from_file_location("examples_generate", EXAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_torch_scenario_has_its_up_to_date_example_script():
    generate = _generator()
    for scenario in TORCH_CATALOG:
        path = EXAMPLES / generate.filename(scenario)
        assert path.read_text() == generate.script(scenario), (
            f"{path.name} is stale: run python examples/generate.py"
        )


@pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")
@pytest.mark.parametrize("name", [s.name for s in TORCH_CATALOG], ids=str)
def test_run_names_the_root_cause_diagnose_names(torch, tmp_path, capsys, name):
    """``nndoctor run`` on the unmodified script ranks first the cause that ``diagnose`` ranks
    first on the same setup (tests/test_torch_scenarios.py checks diagnose against the
    scenario's expected cause); on a healthy script it raises no error."""
    scenario = next(s for s in TORCH_CATALOG if s.name == name)
    out = tmp_path / "report.json"
    script = EXAMPLES / _generator().filename(scenario)
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    sections = json.loads(out.read_text())
    # named as the script names it, its class beside (examples/generate.py calls it `model`)
    assert [s["model"] for s in sections] == [f"model ({type(scenario.build(0).model).__name__})"]
    report = Report.from_dict(sections[0]["report"])
    if scenario.healthy:
        assert [f.code for f in report.findings if f.severity == "error"] == [], report.codes
    else:
        assert report.causes and report.causes[0].code == scenario.expected, report.codes


ZERO_INIT_LOOP = """
import os, signal, sys
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(64, 4, dtype=torch.float64)
Y = torch.tanh(X[:, :1] * X[:, 1:2])
model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
for p in model.parameters():  # constant weights: the hidden units stay identical
    nn.init.constant_(p, 0.5 if p is model[2].weight else 0.0)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.MSELoss()
for step in range(10_000):
    optimizer.zero_grad()
    loss_fn(model(X), Y).backward()
    optimizer.step()
    if step == 40:
        {end}
"""


@pytest.mark.parametrize(
    ("end", "status", "last_line"),
    [
        ('raise RuntimeError("out of memory, say")', 1, "RuntimeError: out of memory, say"),
        ("os.kill(os.getpid(), signal.SIGINT)", 130, "KeyboardInterrupt"),
    ],
    ids=["raises", "sigint"],
)
def test_a_script_that_fails_or_is_interrupted_still_gets_a_report(
    torch, tmp_path, capsys, caplog, end, status, last_line
):
    script = _script(tmp_path, ZERO_INIT_LOOP.format(end=end))
    out = tmp_path / "report.json"
    assert execute(str(script), [], json_path=str(out)) == status
    err = capsys.readouterr().err
    traceback_end = err.index(last_line)
    assert "line 19, in <module>" in err[:traceback_end]  # the script's own traceback
    # the live alert went through logging (pytest configured it), the report of the 41
    # steps seen came after the traceback
    alerts = [r.getMessage() for r in caplog.records if r.name == "nndoctor"]
    assert alerts == [
        "nndoctor: symmetric-units: layer 0 has 8 identical units (all weights start at 0)"
    ]
    (section,) = json.loads(out.read_text())
    report = Report.from_dict(section["report"])
    assert report.causes[0].code == "symmetric-units"
    assert "trained 41 steps" in err[traceback_end:]  # steps 0 to 40: every step seen
    assert "symmetric-units" in err[traceback_end:]


def test_the_run_command_returns_the_scripts_status(torch, tmp_path, capsys):
    script = _script(tmp_path, "import sys\nprint('trained')\nsys.exit(3)\n")
    assert cli_main(["run", "--no-alerts", str(script), "--flag"]) == 3
    out, err = capsys.readouterr()
    assert out == "trained\n"  # the script's stdout is its own
    assert "no optimizer stepped on a module's parameters" in err


def test_a_session_steps_each_watch_once_per_step_of_its_own_optimizer(torch):
    # the callbacks' session calls the watches of the optimizer that stepped; with two
    # optimizers taking turns (a GAN) each watch must count exactly its own optimizer's steps
    from nndoctor.integrations._session import DoctorSession

    nn = torch.nn
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    x, mse = torch.randn(8, 3), nn.MSELoss()
    session = DoctorSession(alerts=False, verbose=False, step_pre_hook=False)
    session.start()
    try:
        turns = [opt_a] * 5 + [opt_a, opt_b] * 7 + [opt_b] * 3
        for opt in turns:
            model = a if opt is opt_a else b
            opt.zero_grad()
            mse(model(x), torch.zeros(8, 1)).backward()
            session.before_optimizer_step(opt)
            opt.step()
        pairs = list(session.watcher.pairs)
    finally:
        session.finish()
    assert [p.optimizer for p in pairs] == [opt_a, opt_b]
    # a's watch starts at its optimizer's first step; b's model was first called after the
    # global forward hooks went quiet (a's second step), so its watch starts at its
    # optimizer's second step, however often a steps in between
    assert [p.watch.step for p in pairs] == [turns.count(opt_a), turns.count(opt_b) - 1]


def test_the_output_paths_are_the_ones_checked_when_the_script_moves(torch, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = _script(tmp_path, f"import os\nos.chdir({str(elsewhere)!r})\n")
    monkeypatch.chdir(tmp_path)
    assert execute(str(script), [], alerts=False, json_path="report.json") == 0
    assert json.loads((tmp_path / "report.json").read_text()) == []  # it trained nothing
    assert not (elsewhere / "report.json").exists()


MODEL_BUILT_TWICE = """
import torch
from torch import nn


class Cell(nn.Module):
    # a recurrent cell called with its hidden state: model(x) alone fails
    def __init__(self):
        super().__init__()
        self.step = nn.Linear(6 + 8, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x, hidden):
        hidden = torch.tanh(self.step(torch.cat([x, hidden], 1)))
        return self.out(hidden), hidden


torch.manual_seed(0)
X = torch.randn(64, 5, 6)
Y = (X[:, :, 0].sum(1) > 0).long() + (X[:, :, 1].sum(1) > 1).long()
model = Cell()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
{rebuild}
for epoch in range(4):
    for lo in range(0, 64, 16):
        opt.zero_grad()
        hidden = torch.zeros(16, 8)
        for t in range(5):
            out, hidden = model(X[lo : lo + 16, t], hidden)
        nn.functional.cross_entropy(out, Y[lo : lo + 16]).backward()
        opt.step()
"""


@pytest.mark.parametrize("rebuild", ["model = Cell()  # the model built again", ""])
def test_a_model_built_again_after_its_optimizer_gets_a_report_naming_it(
    torch, tmp_path, capsys, rebuild
):
    # the optimizer steps the first copy, which never runs: no module it holds is called, so
    # the model that got the gradients is watched with it (its forward takes a hidden state,
    # so the end-of-run pass on one input fails and the report stands on the last probe)
    script = _script(tmp_path, MODEL_BUILT_TWICE.format(rebuild=rebuild))
    out = tmp_path / "report.json"
    assert execute(str(script), [], json_path=str(out), alerts=False) == 0
    (section,) = json.loads(out.read_text())
    assert section["model"] == "model (Cell)"
    report = Report.from_dict(section["report"])
    if rebuild:
        assert report.causes[0].code == "optimizer-model-mismatch", report.codes
        evidence = report["optimizer-model-mismatch"].evidence
        # the first copy's four tensors, and the model's four parameters: 8*14+8 + 3*8+3
        assert len(evidence["optimizer_only"]) == 4
        assert evidence["not_in_optimizer"] == [
            "out.bias",
            "out.weight",
            "step.bias",
            "step.weight",
        ]
        assert evidence["elements_not_stepped"] == 8 * 14 + 8 + 3 * 8 + 3
    else:
        assert "optimizer-model-mismatch" not in report.codes
        assert not [f for f in report.findings if f.severity in ("error", "warning")], report.codes


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_a_script_whose_optimizer_never_steps_is_told_so(torch, tmp_path, capsys):
    # scheduler.step() where optimizer.step() was meant: gradients, and weights that never move
    script = _script(
        tmp_path,
        """
        import torch
        from torch import nn

        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 10)
        x, y = torch.randn(32, 4), torch.randn(32, 1)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            sched.step()
        """,
    )
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    assert "no optimizer ever stepped" in " ".join(capsys.readouterr().err.split())
    [section] = json.loads(out.read_text())
    [finding] = section["report"]["findings"]
    assert finding["title"].startswith(
        "backward passes gave gradients to 4 parameter tensor(s) of net (Sequential)"
    )
    assert section["model"] == "net (Sequential)"  # the script's name for it
    assert (finding["code"], finding["severity"], finding["kind"]) == (
        "frozen-parameters",
        "error",
        "cause",
    )
    assert finding["evidence"]["frozen"] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_a_loss_module_of_reduction_none_reduced_by_the_loop_is_read_as_the_loop_reduces_it(
    torch, tmp_path
):
    # CrossEntropyLoss(reduction="none") summed (or averaged) before backward: the step's
    # loss is the loop's scalar, which the script writes down, not the module's vector
    baselines = {}
    for reduce in ("sum", "mean"):
        seen = tmp_path / f"losses_{reduce}.json"
        script = _script(
            tmp_path,
            f"""
            import json
            import torch
            from torch import nn

            torch.manual_seed(0)
            net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
            opt = torch.optim.SGD(net.parameters(), lr=0.01)
            loss = nn.CrossEntropyLoss(reduction="none")
            x, y = torch.randn(96, 4), torch.randint(0, 3, (96,))
            values = []
            for _ in range(5):
                for lo in range(0, 96, 16):
                    opt.zero_grad()
                    total = loss(net(x[lo : lo + 16]), y[lo : lo + 16]).{reduce}()
                    total.backward()
                    opt.step()
                    values.append(total.item())
            with open({str(seen)!r}, "w") as f:
                json.dump(values, f)
            """,
            name=f"train_{reduce}.py",
        )
        out = tmp_path / f"report_{reduce}.json"
        assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
        [section] = json.loads(out.read_text())
        report = section["report"]
        codes = [f["code"] for f in report["findings"]]
        assert "diverged" not in codes and "non-finite-values" not in codes
        values = json.loads(seen.read_text())
        assert report["summary"]["steps"] == len(values) == 30
        # the recorded curve is the loop's own scalars, in windows: its last is their mean
        windows = np.array_split(np.asarray(values), len(report["probes"]["epoch_loss"]))
        assert report["summary"]["final_loss"] == pytest.approx(float(np.mean(windows[-1])))
        baselines[reduce] = report["bounds"]["baseline"]
    # the constant baseline in the loop's units: per label at most ln 3, times 16 when summed
    assert 0 < baselines["mean"] <= np.log(3)
    assert baselines["sum"] == pytest.approx(16 * baselines["mean"], rel=1e-9)


def test_a_model_whose_own_optimizer_never_steps_beside_one_that_does_is_told_so(
    torch, tmp_path, capsys
):
    # a GAN's discriminator step forgotten: opt_d is built, its model gets gradients and never
    # moves while opt_g steps; a feature net no optimizer holds gets gradients too, by design
    script = _script(
        tmp_path,
        """
        import torch
        from torch import nn

        def train():
            torch.manual_seed(0)
            features = nn.Linear(4, 4)  # frozen by design: in no optimizer
            generator = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4))
            discriminator = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
            opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
            opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
            bce = nn.BCEWithLogitsLoss()
            real = torch.randn(32, 4)
            for _ in range(20):
                fake = generator(torch.randn(32, 2))
                opt_d.zero_grad()
                d_loss = bce(discriminator(features(real)), torch.ones(32, 1)) + bce(
                    discriminator(features(fake.detach())), torch.zeros(32, 1)
                )
                d_loss.backward()  # and no opt_d.step()
                opt_g.zero_grad()
                bce(discriminator(features(fake)), torch.ones(32, 1)).backward()
                opt_g.step()

        train()  # the optimizers are gone when the script ends
        """,
    )
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    sections = {s["model"]: s["report"] for s in json.loads(out.read_text())}
    assert set(sections) == {"Sequential", "Sequential #2"}  # no section for the feature net
    [finding] = sections["Sequential #2"]["findings"]
    assert (finding["code"], finding["severity"]) == ("frozen-parameters", "error")
    assert "the Adam optimizer built over them never stepped" in finding["title"]
    assert finding["evidence"]["frozen"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert "frozen-parameters" not in {f["code"] for f in sections["Sequential"]["findings"]}
    capsys.readouterr()


def test_a_nan_at_the_first_step_outside_the_model_is_located_from_the_graph(
    torch, tmp_path, capsys
):
    # the watch starts at the first step, after its forward and backward passes: where that
    # step's NaN came from is read off the loss's graph before its backward pass
    script = _script(
        tmp_path,
        """
        import torch
        from torch import nn

        torch.manual_seed(0)
        learner = nn.Linear(4, 4, bias=False)  # builds the model's input (a graph learner)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = torch.optim.Adam([*model.parameters(), *learner.parameters()], lr=1e-2)
        x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
        x[3] = 0.0  # a node with no features: degree 0
        for _ in range(5):
            h = learner(x)
            adj = h.abs().sum(1).pow(-0.5)[:, None] * h  # 0 * inf on row 3
            loss = nn.functional.cross_entropy(model(adj), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        """,
    )
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    [section] = [s for s in json.loads(out.read_text()) if s["model"].startswith("model")]
    found = {f["code"]: f for f in section["report"]["findings"]}["nan-source"]
    assert (found["evidence"]["kind"], found["evidence"]["operation"]) == (
        "division-by-zero",
        "pow",
    )
    assert found["evidence"]["zero_divisors"] == 1  # the one row of zeros
    assert "outside the model" in found["evidence"]["where"]
    capsys.readouterr()


def test_a_never_stepped_model_that_is_a_global_of_the_script_is_named_by_it(
    torch, tmp_path, capsys
):
    # its section is made after the script ended, when runpy has put the old __main__ back:
    # the name comes from the globals the script ended with
    script = _script(
        tmp_path,
        """
        import torch
        from torch import nn

        torch.manual_seed(0)
        g_model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4))
        d_model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        g_optimizer = torch.optim.Adam(g_model.parameters(), lr=1e-3)
        d_optimizer = torch.optim.Adam(d_model.parameters(), lr=1e-3)
        optimizer_g, optimizer_d = g_optimizer, g_optimizer  # the typo: d_optimizer unused
        bce = nn.BCEWithLogitsLoss()
        real = torch.randn(32, 4)
        for _ in range(20):
            fake = g_model(torch.randn(32, 2))
            optimizer_g.zero_grad()
            bce(d_model(fake), torch.ones(32, 1)).backward()
            optimizer_g.step()
            d_model.zero_grad()
            d_loss = bce(d_model(real), torch.ones(32, 1)) + bce(
                d_model(fake.detach()), torch.zeros(32, 1)
            )
            d_loss.backward()
            optimizer_d.step()
        """,
    )
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    sections = {s["model"]: s["report"] for s in json.loads(out.read_text())}
    assert set(sections) == {"g_model (Sequential)", "d_model (Sequential)"}
    [finding] = sections["d_model (Sequential)"]["findings"]
    assert finding["code"] == "frozen-parameters"
    capsys.readouterr()


@pytest.mark.parametrize("fixed", [False, True])
def test_a_generator_loss_left_in_the_discriminator_gradients_is_named(
    torch, tmp_path, capsys, fixed
):
    # each zero_grad() after its own step(): the generator's backward pass, run through the
    # discriminator, stays in the discriminator's .grad and joins its next update
    zero = "discriminator.zero_grad()" if fixed else "pass"
    script = _script(
        tmp_path,
        f"""
        import torch
        from torch import nn

        torch.manual_seed(0)
        generator = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))
        discriminator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
        opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
        bce = nn.BCEWithLogitsLoss()
        ones, zeros = torch.ones(32, 1), torch.zeros(32, 1)
        for _ in range(60):
            real = torch.randn(32, 4) + 2
            fake = generator(torch.randn(32, 2))
            bce(discriminator(fake), ones).backward()
            opt_g.step()
            opt_g.zero_grad()
            d_loss = (bce(discriminator(real), ones) + bce(discriminator(fake.detach()), zeros)) / 2
            {zero}
            d_loss.backward()
            opt_d.step()
            opt_d.zero_grad()
        """,
    )
    out = tmp_path / "report.json"
    assert execute(str(script), [], every=5, alerts=False, json_path=str(out)) == 0
    sections = {s["model"]: s["report"] for s in json.loads(out.read_text())}
    found = [f for f in sections["discriminator (Sequential)"]["findings"]
             if f["code"] == "stale-gradients"]  # fmt: skip
    if fixed:
        assert found == []
    else:
        [finding] = found
        assert finding["evidence"]["leaked_checks"] == finding["evidence"]["checks"] >= 2
        assert "another model's loss leaks" in finding["title"]
    generator_codes = {f["code"] for f in sections["generator (Sequential)"]["findings"]}
    assert "stale-gradients" not in generator_codes
    capsys.readouterr()


@pytest.mark.parametrize("fixed", [False, True])
def test_a_generator_term_on_a_detached_fake_is_named_as_cut_from_the_generator(
    torch, tmp_path, capsys, fixed
):
    # an image-to-image GAN's generator loss adds an adversarial term and an L1 term; with the
    # fake detached in the generator's own step, the adversarial term reaches the
    # discriminator alone and only the L1 term trains the generator
    fake_in_g_step = "fake" if fixed else "fake.detach()"
    script = _script(
        tmp_path,
        f"""
        import torch
        from torch import nn

        torch.manual_seed(0)
        generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 4))
        discriminator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
        opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
        mse = nn.functional.mse_loss
        for _ in range(60):
            x = torch.randn(32, 4)
            y = 2 * x
            fake = generator(x)
            opt_g.zero_grad()
            d_fake = discriminator({fake_in_g_step})
            (mse(d_fake, torch.ones_like(d_fake)) + 10 * (fake - y).abs().mean()).backward()
            opt_g.step()
            opt_d.zero_grad()
            d_real, d_fake = discriminator(y), discriminator(fake.detach())
            loss_d = mse(d_real, torch.ones_like(d_real)) + mse(d_fake, torch.zeros_like(d_fake))
            loss_d.backward()
            opt_d.step()
        """,
    )
    out = tmp_path / "report.json"
    assert execute(str(script), [], every=5, alerts=False, json_path=str(out)) == 0
    sections = {s["model"]: s["report"] for s in json.loads(out.read_text())}
    cut = [f for f in sections["generator (Sequential)"]["findings"]
           if f["code"] == "detached-graph"]  # fmt: skip
    if fixed:
        assert cut == []
    else:
        [finding] = cut
        evidence = finding["evidence"]
        assert evidence["cut_term_steps"] == evidence["steps_with_terms"] >= 2
        assert evidence["tensors_reached"] == 4  # the discriminator's weights and biases
    d_codes = {f["code"] for f in sections["discriminator (Sequential)"]["findings"]}
    assert "detached-graph" not in d_codes
    capsys.readouterr()


def _hand_loop(tmp_path: Path, lr: float, steps: int, update: str, seen: Path) -> Path:
    # the char-RNN tutorial's loop: no optimizer, the update written by hand after backward
    return _script(
        tmp_path,
        f"""
        import json
        import torch
        from torch import nn

        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        x, y = torch.randn(32, 4), torch.randn(32, 1)
        losses = []
        for _ in range({steps}):
            net.zero_grad()
            loss = nn.functional.mse_loss(net(x), y)
            loss.backward()
            losses.append(loss.item())
            for p in net.parameters():
                {update}
        with open({str(seen)!r}, "w") as f:
            json.dump(losses, f)
        """,
    )


def test_a_loop_that_updates_the_weights_by_hand_is_watched_at_the_rate_it_applies(
    torch, tmp_path, capsys
):
    seen = tmp_path / "losses.json"
    script = _hand_loop(tmp_path, 0.1, 40, "p.data.add_(p.grad.data, alpha=-0.1)", seen)
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    [section] = json.loads(out.read_text())
    report = section["report"]
    optimizer = report["summary"]["optimizer"]
    assert (optimizer["name"], optimizer["by_hand"]) == ("SGD", True)
    # the rate is read off the first update: w_1 - w_0 = -0.1 g_0 (float32 weights)
    assert optimizer["lr"] == pytest.approx(0.1, rel=1e-4)
    # the update is found at the second backward pass: every later step is watched
    losses = json.loads(seen.read_text())
    assert report["summary"]["steps"] == len(losses) - 1
    assert report["summary"]["final_loss"] == pytest.approx(
        np.mean(np.array_split(losses[1:], len(report["probes"]["epoch_loss"]))[-1]), rel=1e-6
    )
    assert "with SGD by hand (lr 0.1)" in capsys.readouterr().err
    assert not [f for f in report["findings"] if f["severity"] == "error"]


def test_a_loop_blown_up_by_its_hand_written_update_is_told_it_diverged(torch, tmp_path, capsys):
    seen = tmp_path / "losses.json"
    script = _hand_loop(tmp_path, 50.0, 80, "p.data.add_(p.grad.data, alpha=-50.0)", seen)
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    [section] = json.loads(out.read_text())
    losses = json.loads(seen.read_text())
    assert not np.isfinite(losses[-1])  # (the run did blow up)
    codes = {f["code"] for f in section["report"]["findings"]}
    assert "diverged" in codes and "lr-too-high" in codes
    capsys.readouterr()


def test_the_rate_of_an_update_by_hand_is_read_along_the_gradient(torch):
    from nndoctor.backends.torch.hand import UpdateTrace

    net = torch.nn.Linear(4, 2)
    net(torch.randn(8, 4)).square().sum().backward()
    trace = UpdateTrace(net)
    assert trace.moved() is None  # nothing moved yet
    grads = [p.grad.clone() for p in net.parameters()]
    with torch.no_grad():
        for p, g in zip(net.parameters(), grads, strict=True):
            p -= 0.03 * g
    assert trace.moved() == pytest.approx(0.03, rel=1e-12)
    trace.mark()
    with torch.no_grad():
        for p, g in zip(net.parameters(), grads, strict=True):
            p += 0.03 * g  # up the gradient: no rate of descent
    assert np.isnan(trace.moved())


def test_an_optimizer_built_before_the_hooks_is_not_taken_for_updates_by_hand(torch):
    # a framework builds its optimizer before the callback installs the hooks: the weights
    # move between backward passes, and its steps say by what
    nn = torch.nn
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    watcher = GlobalWatcher(_FakeWatch)
    watcher.install()
    try:
        x = torch.randn(5, 3)
        for _ in range(4):
            opt.zero_grad()
            nn.functional.mse_loss(net(x), torch.zeros(5, 1)).backward()
            opt.step()
    finally:
        watcher.close()
    assert [p.optimizer for p in watcher.pairs] == [opt]


def test_backward_passes_with_no_update_are_not_read_as_updates_by_hand(torch, tmp_path, capsys):
    # gradients and no update at all: the weights never changed, which is what is said
    seen = tmp_path / "losses.json"
    script = _hand_loop(tmp_path, 0.0, 5, "pass", seen)
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    [section] = json.loads(out.read_text())
    [finding] = section["report"]["findings"]
    assert finding["code"] == "frozen-parameters"
    assert "no optimizer ever stepped" in finding["title"]
    capsys.readouterr()


def test_a_model_called_through_its_forward_method_is_one_section(torch, tmp_path, capsys):
    # model.forward(x) skips the module call hooks: the parts it calls are the top-level calls
    script = _script(
        tmp_path,
        """
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
                self.head = nn.Linear(8, 1)

            def forward(self, x):
                return self.head(self.body(x))

        torch.manual_seed(0)
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(32, 4), torch.randn(32, 1)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.mse_loss(model.forward(x), y).backward()
            opt.step()
        """,
    )
    out = tmp_path / "report.json"
    assert execute(str(script), [], alerts=False, json_path=str(out)) == 0
    assert [s["model"] for s in json.loads(out.read_text())] == ["model (Net)"]
    capsys.readouterr()


def test_the_module_enclosing_the_parts_a_script_called_is_found(torch):
    from nndoctor.runner import _enclosing

    nn = torch.nn
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    assert _enclosing([net[0], net[1][1]]) == [net]
    assert _enclosing([net[1][1]]) == [net[1][1]]  # one part: nothing to join
    apart = [nn.Linear(2, 2), nn.Linear(2, 2)]  # two models one optimizer steps: kept apart
    assert _enclosing(apart) == apart
