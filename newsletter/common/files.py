"""Safe files: a lock between processes, and writes a crash can never leave half done.

Every file that more than one ``newsletter`` process may change (the suppression list, the
sign-in tokens, an output folder) is changed the same way: under :func:`locked`, read what
is there *now*, then :func:`atomic_write` the result. A reader without the lock sees the
old file or the new one, whole, never a mixture; ``kill -9`` or a power cut at any point
leaves one of the two.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import NewsletterError

# How long a command waits for another one holding the same file. Holders keep it for a
# read and a write (milliseconds); a minute covers a slow disk and a busy machine.
LOCK_WAIT = 60.0
WINDOWS = os.name == "nt"
# Windows refuses to replace a file while another process has it open (a running send
# re-reading the suppression list, a virus scanner): tried again for about this long.
_REPLACE_TRIES = 40
_REPLACE_PAUSE = 0.05


class FileBusy(NewsletterError):
    """Another process held a file's lock for longer than :data:`LOCK_WAIT`."""


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``: hidden, beside it (``.suppressed.csv.lock``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextmanager
def locked(path: Path, *, timeout: float = LOCK_WAIT) -> Iterator[None]:
    """Hold ``path``'s cross-process lock for the block (waiting up to ``timeout`` seconds).

    flock on Linux and macOS, LockFileEx on Windows (through ``filelock``): the operating
    system drops it when its process dies, even by ``kill -9``, so a crash never leaves the
    file locked. Not re-entrant: take it once per change. Temporary files a killed writer
    left behind are swept while it is held (nobody else is writing one then)."""
    from filelock import FileLock, Timeout  # ~50 ms: only commands that write pay for it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(path)), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise FileBusy(
            f"{path} is in use: another newsletter command has been changing it "
            f"for over {timeout:g} seconds",
            hint="wait for it to finish, then run this again; nothing was changed",
        ) from None
    try:
        _sweep_temporaries(path)
        yield
    finally:
        lock.release()


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _sweep_temporaries(path: Path) -> None:
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        with suppress(OSError):
            leftover.unlink()


def atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    """``path`` holds ``data``, all at once: a temporary file in the same folder is written
    and flushed to disk, renamed over ``path``, then the folder itself is flushed (the
    rename is on disk too). ``private``: readable by the owner only (0600; on Windows the
    file inherits the user profile's ACL). Otherwise an existing file keeps its mode and a
    new one gets the usual (umask) mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temporary(path)
    # os.open honours the umask, which can only remove bits: 0600 stays 0600 or less.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o600 if private else 0o666)  # fmt: skip
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            # On disk before the rename: else a power cut can leave an empty file in place
            # of the old one (ext4, APFS and NTFS may order the rename first).
            out.flush()
            os.fsync(out.fileno())
        if not private and path.exists():
            shutil.copymode(path, temp)
        _replace(temp, path)
    except BaseException:
        with suppress(OSError):
            temp.unlink()
        raise
    fsync_folder(path.parent)


def _replace(source: Path, target: Path) -> None:
    for attempt in range(_REPLACE_TRIES):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if not WINDOWS or attempt == _REPLACE_TRIES - 1:
                raise
            time.sleep(_REPLACE_PAUSE)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new file) to disk. Windows cannot open a
    folder for this (NTFS journals renames itself): there it does nothing."""
    if WINDOWS:
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (a network share) refuse fsync on folders: best effort
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` to disk (before it is renamed in)."""
    for root, _, names in os.walk(folder):
        for name in names:
            # Windows flushes only a handle opened for writing.
            fd = os.open(Path(root) / name, (os.O_RDWR | os.O_BINARY) if WINDOWS else os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_folder(Path(root))
