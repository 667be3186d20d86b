"""Atomic file writes: the new content goes to a file that has no name yet (or a hidden one),
is flushed to disk, and only then takes the target's name in one rename.

Guarantees (``docs/guarantees.md`` has the full list):

- A reader sees the old complete file or the new complete file, never a mix, even when the
  writing process is killed (SIGKILL) at any instant.
- No temporary file is left behind. On Linux the content is written to an unnamed file
  (``O_TMPFILE``) and gets a name only for the instant between ``link`` and ``rename``; elsewhere
  the temporary file is named ``.{target}.{pid}.{random}.nndoctor-tmp``. Either way a
  temporary left by a killed writer (its pid no longer running) is removed by the next write
  into that folder.
- The file and the rename are ``fsync``-ed before the call returns.
- A new file gets mode ``0o666 & ~umask``, as ``open(path, "w")`` would give it; an existing
  file keeps its mode.
- Errors name the path the caller gave (and its folder), never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".nndoctor-tmp"
# O_TMPFILE needs Linux >= 3.11 and a file system that supports it (ext4, xfs, btrfs, tmpfs)
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
# cleared for the rest of the process when linking an unnamed file fails (some sandboxes and
# file systems refuse ``linkat`` through /proc)
_UNNAMED = {"works": True}


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def _tmp_name(path: Path) -> Path:
    return path.with_name(f"{_tmp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files of writes to ``path`` whose writer is no longer running."""
    path = Path(path)
    out = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    prefix = _tmp_prefix(path)
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(TMP_SUFFIX)):
            continue
        middle = name[len(prefix) : -len(TMP_SUFFIX)].split(".")
        if len(middle) == 2 and middle[0].isdigit() and not _alive(int(middle[0])):
            out.append(entry)
    return out


def _remove_stale(path: Path) -> None:
    for stale in stale_temporaries(path):
        with contextlib.suppress(OSError):
            stale.unlink()


def _describe(exc: OSError, path: Path) -> OSError:
    """The same kind of error, naming the caller's path and folder instead of a temporary."""
    folder = path.parent
    if exc.errno == errno.ENOENT and not folder.is_dir():
        reason = f"the folder {folder} does not exist"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"the folder {folder} is not writable ({os.strerror(exc.errno)})"
    elif exc.errno == errno.ENOTDIR:
        reason = f"{folder} is not a folder"
    elif exc.errno == errno.EISDIR:
        reason = f"{path} is a folder"
    else:
        reason = exc.strerror or str(exc)
    new = type(exc)(exc.errno, f"cannot write {path}: {reason}")
    new.filename = str(path)
    return new


def _open_unnamed(folder: Path) -> int | None:
    """A file descriptor of a new unnamed file in ``folder``, or None where unsupported."""
    if not (_O_TMPFILE and _UNNAMED["works"]) or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(folder, _O_TMPFILE | os.O_RDWR, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            if exc.errno == errno.ENOENT and not folder.is_dir():
                raise
            return None
        raise


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the file itself was synced
    finally:
        os.close(fd)


def _link_unnamed(f: BinaryIO, path: Path) -> Path:
    """Give the unnamed file ``f`` a temporary name beside ``path``; where linking is refused,
    copy its content to a named temporary instead (and stop trying unnamed files)."""
    tmp = _tmp_name(path)
    try:
        os.link(f"/proc/self/fd/{f.fileno()}", tmp, follow_symlinks=True)
        return tmp
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOENT):
            raise
        _UNNAMED["works"] = False
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.fchmod(fd, os.fstat(f.fileno()).st_mode & 0o7777)
        f.seek(0)
        with os.fdopen(os.dup(f.fileno()), "rb", closefd=True) as src:
            while chunk := src.read(1 << 20):
                os.write(fd, chunk)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a new binary file, sync it, then give it the name ``path``.

    If ``write`` raises, or the process dies, an existing ``path`` is left as it was.
    """
    path = Path(path)
    folder = path.parent
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = None
    _remove_stale(path)
    tmp: Path | None = None
    try:
        fd = _open_unnamed(folder)
        if fd is None:
            tmp = _tmp_name(path)
            # the kernel applies the umask to 0o666, as open(path, "w") does
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if tmp is None:
                tmp = _link_unnamed(f, path)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        if exc.filename is not None and str(exc.filename) != str(path):
            raise _describe(exc, path) from exc
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    _fsync_folder(folder)
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def check_writable(
    path: str | os.PathLike[str], suffixes: Iterable[str] | None = None, what: str = "output"
) -> Path:
    """Check, before any work, that ``path`` can be written: a known suffix, an existing and
    writable folder, not a folder itself. Raises ``ValueError`` (suffix) or ``OSError`` naming
    ``path``; returns it as a Path. Writes nothing."""
    path = Path(path)
    if suffixes is not None:
        allowed = [s.lower() for s in suffixes]
        if path.suffix.lower() not in allowed:
            raise ValueError(
                f"cannot write {what} {path}: the extension {path.suffix or '(none)'!r} is not "
                f"one of {', '.join(allowed)}"
            )
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, f"cannot write {what} {path}: the folder {folder} does not exist"
        )
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {what} {path}: it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES, f"cannot write {what} {path}: the folder {folder} is not writable"
        )
    return path
