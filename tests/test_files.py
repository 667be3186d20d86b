"""Atomic writes: content always old-or-new, no temporary left, fsync, the umask, clear errors.

The fault-injection test kills a saving process with SIGKILL at seeded random instants, many
times, and checks after every kill that the target is the old or the new complete file.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import nndoctor._files as files
from nndoctor._files import check_writable, stale_temporaries, write_atomic, write_text_atomic
from nndoctor.nn import Dense, Sequential, load, save

# the child saves two alternating contents forever: the engine model and a text report
_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from nndoctor._files import write_text_atomic
    from nndoctor.nn import Dense, Sequential, save

    folder = sys.argv[1]
    models = [Sequential(Dense(40, 40, init=float(k))) for k in (1, 2)]
    texts = [("A" * 200_000) + "\\n", ("B" * 300_000) + "\\n"]
    print("ready", flush=True)
    i = 0
    while True:
        save(models[i % 2], folder + "/model.npz")
        write_text_atomic(folder + "/report.txt", texts[i % 2])
        i += 1
    """
)


def _temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(files.TMP_SUFFIX))


def _check_complete(folder):
    model = load(folder / "model.npz")  # raises on a partial or mixed file
    W = model[0].params["W"]
    assert W.shape == (40, 40) and np.all(W[0, 0] == W) and W[0, 0] in (1.0, 2.0)
    text = (folder / "report.txt").read_text()
    assert text in (("A" * 200_000) + "\n", ("B" * 300_000) + "\n")


def test_a_killed_save_leaves_the_old_or_the_new_file_and_no_temporary(tmp_path):
    # both targets exist before the first kill, so "old" is always defined
    save(Sequential(Dense(40, 40, init=1.0)), tmp_path / "model.npz")
    write_text_atomic(tmp_path / "report.txt", ("A" * 200_000) + "\n")
    rng = np.random.default_rng(11)
    for _ in range(30):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.05)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        _check_complete(tmp_path)
        left = _temporaries(tmp_path)
        # a temporary can only survive a SIGKILL as the file of a dead writer, which the next
        # write into the folder removes (see the test below)
        stale = stale_temporaries(tmp_path / "model.npz") + stale_temporaries(
            tmp_path / "report.txt"
        )
        assert sorted(p.name for p in stale) == left
    save(Sequential(Dense(40, 40, init=2.0)), tmp_path / "model.npz")
    write_text_atomic(tmp_path / "report.txt", ("B" * 300_000) + "\n")
    _check_complete(tmp_path)
    assert _temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "report.txt"]


def test_a_new_file_respects_the_umask_and_an_existing_one_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "a.txt", "x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        path2 = write_text_atomic(tmp_path / "b.txt", "x")
        assert stat.S_IMODE(path2.stat().st_mode) == 0o600
        path.chmod(0o640)
        write_text_atomic(path, "y")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "y"
    finally:
        os.umask(old)


def test_the_file_is_synced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        files.os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b))
    )
    write_text_atomic(tmp_path / "a.txt", "hello")
    assert "fsync" in events and events.index("fsync") < events.index("rename")
    assert (tmp_path / "a.txt").read_text() == "hello"


def test_a_missing_folder_is_named_not_the_temporary(tmp_path):
    target = tmp_path / "absent" / "report.json"
    with pytest.raises(FileNotFoundError) as info:
        write_text_atomic(target, "{}")
    message = str(info.value)
    assert f"cannot write {target}" in message and "does not exist" in message
    assert files.TMP_SUFFIX not in message


def test_an_unwritable_folder_is_named_not_the_temporary(tmp_path, monkeypatch):
    # root ignores folder permissions, so the refusal is injected where the file is created
    def refuse(path, flags, mode=0o777, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "_open_unnamed", lambda folder: None)
    monkeypatch.setattr(files.os, "open", refuse)
    target = tmp_path / "report.json"
    with pytest.raises(PermissionError) as info:
        write_text_atomic(target, "{}")
    message = str(info.value)
    assert f"cannot write {target}" in message and "not writable" in message
    assert files.TMP_SUFFIX not in message


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "a.txt", "old")

    def half(f):
        f.write(b"ne")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_atomic(path, half)
    assert path.read_text() == "old" and _temporaries(tmp_path) == []


def test_stale_temporaries_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".a.txt.{pid}.deadbeef{files.TMP_SUFFIX}"
    stale.write_text("half")
    live = tmp_path / f".a.txt.{os.getpid()}.cafecafe{files.TMP_SUFFIX}"
    live.write_text("in progress")  # a write of this process still running: kept
    other = tmp_path / f".b.txt.{pid}.deadbeef{files.TMP_SUFFIX}"
    other.write_text("another target's")
    write_text_atomic(tmp_path / "a.txt", "new")
    assert not stale.exists() and live.exists() and other.exists()


def test_check_writable_refuses_before_any_work(tmp_path):
    assert check_writable(tmp_path / "run.png", (".png", ".svg")) == tmp_path / "run.png"
    with pytest.raises(ValueError, match=r"extension '\.pnx' is not one of \.png, \.svg"):
        check_writable(tmp_path / "run.pnx", (".png", ".svg"), what="plot")
    with pytest.raises(FileNotFoundError, match=r"the folder .*nowhere does not exist"):
        check_writable(tmp_path / "nowhere" / "run.png")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []
