"""Replace an output folder all at once, so a failed run never leaves it half-written."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """Yield a sibling ``.partial`` folder to write into; it replaces ``out_dir`` when the
    block succeeds and is removed when it fails (or is interrupted)."""
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
