"""Progress bars: drawn by tqdm when asked or on a terminal, silent on a pipe, never ANSI junk
in a log."""

from __future__ import annotations

import io

from nndoctor._progress import ProgressBar, in_notebook


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_forced_bar_counts_and_shows_the_fields():
    out = io.StringIO()
    bar = ProgressBar(4, "epoch", enabled=True, stream=out, interval=0.0)
    for done in range(1, 5):
        bar.update(done, loss=0.5 / done)
    bar.close()
    text = out.getvalue()
    assert "epoch 4/4" in text and "loss 0.125" in text and text.endswith("\n")


def test_silent_on_a_pipe_and_when_disabled():
    for enabled, stream in ((None, io.StringIO()), (False, _Terminal())):
        bar = ProgressBar(3, "scenario", enabled=enabled, stream=stream, interval=0.0)
        for done in range(1, 4):
            bar.update(done)
        bar.close()
        assert stream.getvalue() == ""


def test_on_a_terminal_a_short_run_draws_nothing_a_long_one_draws():
    quick = _Terminal()
    bar = ProgressBar(3, "epoch", stream=quick, min_seconds=60.0, interval=0.0)
    for done in range(1, 4):
        bar.update(done)
    bar.close()
    assert quick.getvalue() == ""  # tqdm's delay: nothing before a minute has passed
    slow = _Terminal()
    bar = ProgressBar(3, "epoch", stream=slow, min_seconds=0.0, interval=0.0)
    for done in range(1, 4):
        bar.update(done)
    bar.close()
    assert "epoch 3/3" in slow.getvalue()
    assert not in_notebook()  # pytest is no Jupyter kernel


def test_diagnose_shows_training_and_trial_progress_when_asked(capsys):
    import numpy as np

    from nndoctor import diagnose
    from nndoctor.nn import SGD, SSE, Dense, Sequential, Sigmoid

    X = np.random.default_rng(42).random((5, 8, 8)).transpose(0, 2, 1).reshape(-1, 8)
    model = Sequential(Dense(8, 3, init="zeros"), Sigmoid(), Dense(3, 8, init="zeros"), Sigmoid())
    opt = SGD(lr=0.05)
    diagnose(model, X, loss=SSE(), optimizer=opt, epochs=10, batch_size=8, progress=True)
    err = capsys.readouterr().err
    assert "epoch 10/10" in err  # the watched run
    assert "trial runs" in err  # the trials' re-training
    diagnose(model, X, loss=SSE(), optimizer=opt, epochs=10, batch_size=8, progress=False)
    assert capsys.readouterr().err == ""
