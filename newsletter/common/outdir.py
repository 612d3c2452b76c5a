"""Replace an output folder all at once, so a failed or killed run never leaves it half-written.

Only folders this tool made are ever replaced: each carries a marker file, and a folder
without it (your Documents, the project itself, ``..``) is refused, never deleted.

The new folder is written beside the old one (``NAME.partial``), then swapped in: the old
one is renamed aside (``NAME.previous``), the new one renamed in, and only then is the old
one deleted. Killed at any point (``kill -9``, a power cut), the run leaves one complete
folder: the old or the new one under its name, or, between the two renames, the old one
aside, which the next run (or :func:`recover`) puts back before doing anything else. One
run at a time writes a folder (a lock beside it, ``.NAME.lock``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import NewsletterError
from .files import fsync_folder, fsync_tree, locked

MARKER = ".newsletter-output"


def _check_replaceable(out_dir: Path, example: str) -> None:
    _check_not_here(out_dir, example)
    if out_dir.exists() and not (out_dir.is_dir() and _ours_or_empty(out_dir)):
        raise NewsletterError(
            f"refusing to replace {out_dir}: it exists and was not written by newsletter",
            hint="choose a new or empty folder",
        )


def _check_not_here(out_dir: Path, example: str) -> None:
    target = out_dir.resolve()
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise NewsletterError(
            f"refusing to replace {out_dir}: it holds the folder you are working in",
            hint=f"choose a new folder, e.g. {example}",
        )


def _ours_or_empty(folder: Path) -> bool:
    return (folder / MARKER).is_file() or not any(folder.iterdir())


def partial_path(out_dir: Path) -> Path:
    """Where the next version of ``out_dir`` is written."""
    return out_dir.with_name(out_dir.name + ".partial")


def previous_path(out_dir: Path) -> Path:
    """Where the old ``out_dir`` waits, between the two renames of a swap."""
    return out_dir.with_name(out_dir.name + ".previous")


def recover(out_dir: Path) -> None:
    """Undo what a killed run left: the old folder put back under its name if the run died
    between the two renames, and its leftovers (``.partial``, ``.previous``) removed.
    Only folders this tool wrote are touched. The caller holds the folder's lock."""
    for leftover in (previous_path(out_dir), partial_path(out_dir)):
        if leftover.exists() and not (leftover.is_dir() and _ours_or_empty(leftover)):
            raise NewsletterError(
                f"refusing to replace {leftover}: it exists and was not written by newsletter",
                hint="move or rename it, then run this again",
            )
    previous = previous_path(out_dir)
    if previous.exists():
        if not out_dir.exists():
            previous.rename(out_dir)  # the new one never made it in: the old one is whole
            fsync_folder(out_dir.parent)
        else:
            shutil.rmtree(previous)  # the new one is in: the old one was being deleted
    partial = partial_path(out_dir)
    if partial.exists():
        shutil.rmtree(partial)


@contextmanager
def staged(out_dir: Path, example: str = "outbox/SLUG", *, durable: bool = False) -> Iterator[Path]:
    """Yield a sibling ``.partial`` folder to write into; it replaces ``out_dir`` when the
    block succeeds and is removed when it fails (or is interrupted). ``example``: a folder
    to suggest instead of one that must not be replaced (the archive's is ``site/``).
    ``durable``: every file is flushed to disk before the swap, so that even a power cut
    leaves the old folder or the whole new one (the archive's published pictures)."""
    _check_not_here(out_dir, example)
    with locked(out_dir):
        recover(out_dir)
        _check_replaceable(out_dir, example)
        partial = partial_path(out_dir)
        partial.mkdir(parents=True)
        (partial / MARKER).write_text("written by newsletter; replaced on each run\n")
        try:
            yield partial
            if durable:
                fsync_tree(partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        _swap(partial, out_dir)


def _swap(partial: Path, out_dir: Path) -> None:
    """``partial`` becomes ``out_dir``; the old ``out_dir`` is deleted only once it has."""
    previous = previous_path(out_dir)
    if out_dir.exists():
        os.rename(out_dir, previous)
    os.rename(partial, out_dir)
    fsync_folder(out_dir.parent)  # both renames on disk before the old folder goes
    if previous.exists():
        shutil.rmtree(previous)
