"""The Lightning and Hugging Face callbacks judge a healthy and a sick tiny model correctly.

Every model is built from a config in code: nothing is downloaded. The extras are skipped only
when missing outside CI (``NNDOCTOR_REQUIRE_TORCH=1``, set by CI, makes a missing one fail).
"""

from __future__ import annotations

import importlib
import os

import pytest

from nndoctor.doctor.codes import CAUSE, ERROR


def _extra(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("NNDOCTOR_REQUIRE_TORCH") == "1":
            pytest.fail(f"{module} is required in CI: pip install 'nndoctor[{extra}]'")
        pytest.skip(f"{module} not installed: pip install 'nndoctor[{extra}]'")


@pytest.fixture(scope="module")
def pl(torch):
    return _extra("lightning.pytorch", "lightning")


@pytest.fixture(scope="module")
def transformers(torch):
    return _extra("transformers", "transformers")


def _error_causes(report) -> list[str]:
    return [f.code for f in report.findings if f.kind == CAUSE and f.severity == ERROR]


# --- Lightning ---


def _lightning_fit(
    pl, torch, *, zero_init: bool, tmp_path, fail_at: int | None = None, doctor=None
):
    from nndoctor.integrations.lightning import DoctorCallback

    nn = torch.nn

    class Regressor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 16), nn.Sigmoid(), nn.Linear(16, 1))
            if zero_init:  # the seed's fault: every weight 0, the hidden units identical
                for p in self.net.parameters():
                    nn.init.zeros_(p)
            self.loss = nn.MSELoss()

        def training_step(self, batch, batch_idx):
            if self.global_step == fail_at:
                raise RuntimeError("CUDA out of memory, say")
            x, y = batch
            return self.loss(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 4, generator=g)
    Y = torch.tanh(X[:, :1] * X[:, 1:2] + X[:, 2:3])
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=32)
    torch.manual_seed(0)
    model = Regressor()
    doctor = DoctorCallback(verbose=False) if doctor is None else doctor
    trainer = pl.Trainer(
        max_epochs=15,
        callbacks=[doctor],
        logger=pl.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    try:
        trainer.fit(model, data)
    except RuntimeError:
        if fail_at is None:
            raise
    return doctor, trainer


@pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning"
)
def test_lightning_callback_judges_healthy_and_zero_init(pl, torch, tmp_path):
    healthy, _ = _lightning_fit(pl, torch, zero_init=False, tmp_path=tmp_path / "a")
    sick, trainer = _lightning_fit(pl, torch, zero_init=True, tmp_path=tmp_path / "b")
    assert _error_causes(healthy.report()) == []
    assert sick.report().causes[0].code == "symmetric-units"
    assert sick._session.watcher is None  # every hook removed at the end
    # as watch(...).report(): a method; the old attribute still reads, with a warning
    assert sick.reports() == [("Sequential", sick.report())]
    with pytest.warns(DeprecationWarning, match=r"call doctor\.report\(\)"):
        assert sick.report.causes[0].code == "symmetric-units"
    # the report went to the logger: its directory holds the JSON, its metrics the counts
    saved = os.path.join(trainer.logger.log_dir, "nndoctor_report.json")
    assert os.path.isfile(saved)
    # a fit that fails halfway still gets the report of the steps it took
    failed, _ = _lightning_fit(pl, torch, zero_init=True, tmp_path=tmp_path / "c", fail_at=20)
    assert failed.report().summary["steps"] == 20
    assert failed.report().causes[0].code == "symmetric-units"


@pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning"
)
def test_lightning_skips_the_per_batch_hooks_the_callback_does_not_define(pl, torch, tmp_path):
    # Lightning skips a hook attribute that is not callable: the callback switches off the
    # per-batch hooks it has no use for, and keeps those a subclass defines
    from nndoctor.integrations.lightning import DoctorCallback

    class Counting(DoctorCallback):
        batches = 0

        def on_train_batch_end(self, *args, **kwargs):
            Counting.batches += 1

    plain = DoctorCallback(verbose=False)
    assert plain.on_train_batch_end is None and plain.on_before_backward is None
    assert callable(plain.on_before_optimizer_step) and callable(plain.on_fit_end)
    counting, _ = _lightning_fit(
        pl, torch, zero_init=False, tmp_path=tmp_path, doctor=Counting(verbose=False)
    )
    # 15 epochs of 256 rows in batches of 32
    assert Counting.batches == 120
    assert counting.report().summary["steps"] == 120


def test_the_old_report_attribute_still_reads_with_a_warning():
    from nndoctor.doctor import CODES, Report
    from nndoctor.integrations._session import DoctorSession, SessionReports

    class Callback(SessionReports):
        def __init__(self):
            self._session = DoctorSession(alerts=False, verbose=False)

    doctor = Callback()
    assert doctor.report() is None and doctor.reports() is None  # before training ended
    report = Report([CODES["dead-units"].finding("error", "title of dead-units")])
    doctor._session.reports = [("Net", report)]
    assert doctor.report() is report and doctor.reports() == [("Net", report)]
    with pytest.warns(DeprecationWarning, match=r"DoctorCallback\.report is a method"):
        assert doctor.report.codes == ["dead-units"]
    with pytest.warns(DeprecationWarning):
        assert str(doctor.report) == str(report)
    with pytest.warns(DeprecationWarning):
        assert "dead-units" in doctor.report
    with pytest.warns(DeprecationWarning, match=r"call doctor\.reports\(\)"):
        assert [name for name, _ in doctor.reports] == ["Net"]
    with pytest.warns(DeprecationWarning):
        assert len(doctor.reports) == 1 and doctor.reports[0][1] is report
    with pytest.warns(DeprecationWarning):
        assert doctor.report and doctor.reports


# --- Hugging Face ---


class _Tokens:
    """Sequences of 8 token ids; the label: is the first (the one the pooler reads) below 50?"""

    def __init__(self, torch, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 100, (n, 8), generator=g)
        self.labels = (self.ids[:, 0] < 50).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _hf_train(transformers, torch, tmp_path, *, lr: float, broken: bool = False):
    from nndoctor.integrations.transformers import DoctorCallback

    config = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    if broken:  # a frozen encoder under a classifier that starts at 0
        for p in model.bert.parameters():
            p.requires_grad_(False)
        torch.nn.init.zeros_(model.classifier.weight)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=32,
        max_steps=60,
        learning_rate=lr,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    doctor = DoctorCallback(verbose=False)
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=_Tokens(torch, 512, 0), callbacks=[doctor]
    )
    trainer.train()
    return doctor, model


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
def test_transformers_callback_judges_healthy_and_broken_setups(transformers, torch, tmp_path):
    healthy, model = _hf_train(transformers, torch, tmp_path / "a", lr=1e-3)
    data = _Tokens(torch, 512, 0)
    with torch.no_grad():  # it learned: the loss on the training data, far below log(2)
        loss = model.eval()(input_ids=data.ids, labels=data.labels).loss
    assert float(loss) < 0.5
    assert _error_causes(healthy.report()) == []
    assert os.path.isfile(tmp_path / "a" / "nndoctor_report.json")
    frozen, _ = _hf_train(transformers, torch, tmp_path / "b", lr=1e-3, broken=True)
    assert frozen.report().causes[0].code == "frozen-parameters"
    too_fast, _ = _hf_train(transformers, torch, tmp_path / "c", lr=10.0)
    assert too_fast.report().causes[0].code in ("lr-too-high", "diverged")
