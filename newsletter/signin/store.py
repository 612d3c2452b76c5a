"""Token files in the state folder: written atomically, readable by the owner only.

A refresh token is as good as the mailbox password for as long as it lives, so the file is
created with mode 0600 (on Windows the mode bits are ignored; the file then inherits the
user profile's ACL, which only the user can read) and replaced atomically, so a crash never
leaves half a token file behind. Every change (a refresh, a sign-in, a sign-out) is made
under the file's lock (:func:`newsletter.common.files.locked`, re-exported here as
``locked``) to what the file holds at that moment: a send refreshing its token while
another command signs out or in must not write back what that command just changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..common.errors import SignInError
from ..common.files import atomic_write, locked

__all__ = ["damaged", "locked", "read_json", "remove", "token_path", "write_private"]


def token_path(state_dir: Path, provider: str) -> Path:
    return Path(state_dir) / f"oauth-{provider}.json"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (the caller holds the lock)."""
    try:
        atomic_write(path, text.encode("utf-8"), private=True)
    except PermissionError as error:
        # Windows refuses to replace a file another process holds open (a backup or
        # sync client, a virus scanner): one line, never an internal error.
        raise SignInError(
            f"{path}: cannot save the sign-in ({error.strerror or error})",
            hint="close any program that has it open, then run newsletter login again",
        ) from None


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
