"""Reading and updating ``.env`` as a chair's file: values changed in place, comments and
order kept, new settings added at the end, written atomically under its lock
(common.files) and readable by the owner only (it may hold a password)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..common.files import atomic_write, locked

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
    """Apply ``changes`` to the file (created if need be) as every shared file is changed
    (common.files): under its lock, read as it is now, written atomically, mode 0600 (it
    may hold the SMTP password; on Windows it inherits the user profile's ACL)."""
    with locked(path):
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        atomic_write(path, updated_text(text, changes).encode("utf-8"), private=True)
