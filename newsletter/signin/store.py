"""Token files in the state folder: written atomically, readable by the owner only.

A refresh token is as good as the mailbox password for as long as it lives, so the file is
created with mode 0600 (on Windows the mode bits are ignored; the file then inherits the
user profile's ACL, which only the user can read) and replaced atomically, so a crash never
leaves half a token file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ..common.errors import SignInError


def token_path(state_dir: Path, provider: str) -> Path:
    return Path(state_dir) / f"oauth-{provider}.json"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically."""
    try:
        _write_private(path, text)
    except PermissionError as error:
        # Windows refuses to replace a file another process holds open (a backup or
        # sync client, a virus scanner): one line, never an internal error.
        raise SignInError(
            f"{path}: cannot save the sign-in ({error.strerror or error})",
            hint="close any program that has it open, then run newsletter login again",
        ) from None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            # On disk before the rename: else a power cut can leave an empty token file in
            # place of the old one (MSAL rotates refresh tokens: the old one is gone too).
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    # os.open honours the umask, which can only remove bits: 0600 stays 0600 or less.


def read_json(path: Path) -> dict[str, Any] | None:
    """The stored JSON object, or None if there is none; a damaged file is a sign-in error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except ValueError:  # not UTF-8: not a file we wrote
        raise damaged(path) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise damaged(path) from None
    return data if isinstance(data, dict) else None


def damaged(path: Path) -> SignInError:
    """A token file that is not what we wrote (cut short, edited, another program's or
    another version's): `newsletter logout` removes it, `login` writes a new one."""
    return SignInError(
        f"{path}: the saved sign-in is damaged", hint="run newsletter logout, then login"
    )


def remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
