"""Replace an output folder all at once, so a failed run never leaves it half-written.

Only folders this tool made are ever replaced: each carries a marker file, and a folder
without it (your Documents, the project itself, ``..``) is refused, never deleted.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import NewsletterError

MARKER = ".newsletter-output"


def _check_replaceable(out_dir: Path, example: str) -> None:
    target = out_dir.resolve()
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise NewsletterError(
            f"refusing to replace {out_dir}: it holds the folder you are working in",
            hint=f"choose a new folder, e.g. {example}",
        )
    if target.exists() and not (target.is_dir() and _ours_or_empty(target)):
        raise NewsletterError(
            f"refusing to replace {out_dir}: it exists and was not written by newsletter",
            hint="choose a new or empty folder",
        )


def _ours_or_empty(folder: Path) -> bool:
    return (folder / MARKER).is_file() or not any(folder.iterdir())


@contextmanager
def staged(out_dir: Path, example: str = "outbox/SLUG") -> Iterator[Path]:
    """Yield a sibling ``.partial`` folder to write into; it replaces ``out_dir`` when the
    block succeeds and is removed when it fails (or is interrupted). ``example``: a folder
    to suggest instead of one that must not be replaced (the archive's is ``site/``)."""
    _check_replaceable(out_dir, example)
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        if not _ours_or_empty(partial):
            raise NewsletterError(f"refusing to replace {partial}: not written by newsletter")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / MARKER).write_text("written by newsletter; replaced on each run\n")
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
