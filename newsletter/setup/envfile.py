"""Reading and updating ``.env`` as a chair's file: values changed in place, comments and
order kept, new settings added at the end, written atomically and readable by the owner only
(it may hold a password)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_PLAIN = re.compile(r"^[A-Za-z0-9_@.,:/+\-{}?=%~]*$")
HEADER = "# Written by newsletter setup (re-run it to change these; .env.example explains each)"


def read_env(path: Path) -> dict[str, str]:
    """The settings the file holds (not the environment's)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def quote(value: str) -> str:
    """As python-dotenv reads it back: bare when safe, else single-quoted (literal: no
    ``${VAR}`` expansion, which a password may look like), else double-quoted."""
    if _PLAIN.match(value):
        return value
    if "'" not in value and "\\" not in value and "\n" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def updated_text(text: str, changes: Mapping[str, str]) -> str:
    """``text`` with each NAME=... line in ``changes`` replaced (its first one; later
    duplicates removed, as python-dotenv would let the last win), new names appended."""
    pending = dict(changes)
    lines: list[str] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        name = match.group(1) if match else None
        if name in changes:
            if name in pending:
                lines.append(f"{name}={quote(pending.pop(name))}")
            continue  # a duplicate of a line already replaced
        lines.append(line)
    if pending:
        if lines and lines[-1].strip():
            lines.append("")
        if HEADER not in lines:
            lines.append(HEADER)
        lines.extend(f"{name}={quote(value)}" for name, value in pending.items())
    return "\n".join(lines) + "\n"


def write_env(path: Path, changes: Mapping[str, str]) -> None:
    """Apply ``changes`` to the file (created if need be) atomically, mode 0600."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    new = updated_text(text, changes)
    tmp = path.with_name(path.name + ".setup-tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # 0600: the file may hold the SMTP password (on Windows the mode bits are ignored and
    # the file inherits the user profile's ACL).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(new)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: the rename itself on disk too
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
