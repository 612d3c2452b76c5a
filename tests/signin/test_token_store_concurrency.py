"""The sign-in token file, shared by commands that run at once (a send, ``feedback``,
``login``, ``logout``): each change is made under the file's lock to what it holds *now*
(issue 21, item 5). Against the real local authorisation server of the OAuth tests, which
rotates refresh tokens and revokes the old one, as Entra does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flask import Response
from support.oauth_server import (
    GOOGLE_CLIENT,
    GOOGLE_SECRET,
    MS_CLIENT,
    USER,
    OAuthServer,
    write_ca,
)

from newsletter.common.config import Settings
from newsletter.signin import oauth


@pytest.fixture
def auth_server():
    with OAuthServer() as server:
        yield server


@pytest.fixture
def cafile(tmp_path: Path) -> str:
    return write_ca(tmp_path)


def _login(settings: Settings, server: OAuthServer, cafile: str) -> None:
    oauth.login(
        settings, open_browser=server.browser(cafile), echo=lambda line: None,
        http=server.http(cafile),
    )  # fmt: skip


def test_two_commands_refreshing_one_after_the_other_both_keep_the_sign_in(
    tmp_path: Path, auth_server: OAuthServer, cafile: str
) -> None:
    # A send and a feedback run each loaded the Microsoft token cache. The feedback run
    # refreshes first: the refresh token rotates, the old one is revoked. When the send
    # refreshes, it must use the new one; with the copy it loaded, the server refused it,
    # and the send forgot the account and saved that: the chair was signed out.
    settings = Settings(
        state_dir=tmp_path / "state", smtp_host="smtp.office365.com",
        oauth_client_id=MS_CLIENT, oauth_authority=auth_server.ms_authority,
    )  # fmt: skip
    _login(settings, auth_server, cafile)
    send = oauth.backend_for(settings, http=auth_server.http(cafile))
    feedback = oauth.backend_for(settings, http=auth_server.http(cafile))
    assert send.account() == feedback.account() == USER  # both have read the file
    first = feedback.token(force_refresh=True)
    second = send.token(force_refresh=True)
    assert second.username == USER and second.access_token != first.access_token
    assert oauth.sign_in_status(settings) is not None  # still signed in, for everyone
    later = oauth.backend_for(settings, http=auth_server.http(cafile))
    assert later.token(force_refresh=True).username == USER  # the saved token is the live one
    if os.name == "posix":
        assert (later.path.stat().st_mode & 0o777) == 0o600


def test_a_refresh_never_brings_back_a_sign_in_that_was_signed_out_meanwhile(
    tmp_path: Path, auth_server: OAuthServer, cafile: str
) -> None:
    settings = Settings(
        state_dir=tmp_path / "state", smtp_host="smtp.gmail.com", oauth_client_id=GOOGLE_CLIENT,
        oauth_client_secret=GOOGLE_SECRET, oauth_authority=auth_server.base,
    )  # fmt: skip
    _login(settings, auth_server, cafile)
    path = oauth.backend_for(settings, http=auth_server.http(cafile)).path
    signed_out: list[object] = []

    def logout_while_the_send_refreshes() -> Response:
        # `newsletter logout` in another window, while the send's refresh is on the way:
        # the server still answers the refresh (it had not seen the revocation yet).
        signed_out.append(oauth.logout(settings, http=auth_server.http(cafile)))
        answer = {"access_token": "at-late", "expires_in": 3600, "token_type": "Bearer"}
        return Response(json.dumps(answer), status=200, mimetype="application/json")

    auth_server.token_faults.append(logout_while_the_send_refreshes)
    send = oauth.backend_for(settings, http=auth_server.http(cafile))
    grant = send.token(force_refresh=True)
    assert signed_out and grant.access_token == "at-late"  # this run still has its token
    assert not path.exists()  # but the chair's sign-out stands
    assert oauth.sign_in_status(settings) is None
