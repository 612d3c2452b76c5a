"""A file another program holds open on Windows (Excel showing suppressed.csv, a sync client
on the token cache): ``os.replace`` raises PermissionError there. Before the fix that was an
"internal error" (exit 70); now it is one line naming the file, and nothing is changed.

Windows' sharing violation cannot happen on this Linux machine, so ``os.replace`` is made to
raise what Windows raises; everything else (the files, the CSV, the JSON) is real.
"""

from __future__ import annotations

import datetime
import os

import pytest

from newsletter.common.errors import RecipientsError, SignInError
from newsletter.members.suppression import add_suppressed, load_suppressed
from newsletter.signin.store import write_private


def _locked(monkeypatch) -> None:
    def refuse(src, dst):
        raise PermissionError(13, "The process cannot access the file because it is being "
                              "used by another process")  # fmt: skip

    monkeypatch.setattr(os, "replace", refuse)


def test_suppression_list_open_elsewhere_is_one_line_and_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "suppressed.csv"
    path.write_text("email,reason,date\na@example.org,bounced,2026-01-01\n", encoding="utf-8")
    _locked(monkeypatch)
    with pytest.raises(RecipientsError) as caught:
        add_suppressed(path, ["b@example.org"], reason="asked", today=datetime.date(2026, 2, 1))
    message = str(caught.value)
    assert message.startswith(str(path)) and "close it" in message and "\n" not in message
    assert load_suppressed(path) == frozenset({"a@example.org"})
    # No temporary left (the list's lock file stays, as locks do).
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == ["suppressed.csv"]


def test_token_cache_open_elsewhere_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "oauth-google.json"
    path.write_text('{"refresh_token": "old"}', encoding="utf-8")
    _locked(monkeypatch)
    with pytest.raises(SignInError) as caught:
        write_private(path, '{"refresh_token": "new-secret-value"}')
    message = str(caught.value)
    assert str(path) in message and "new-secret-value" not in message
    assert path.read_text(encoding="utf-8") == '{"refresh_token": "old"}'
    assert [p.name for p in tmp_path.iterdir()] == ["oauth-google.json"]
