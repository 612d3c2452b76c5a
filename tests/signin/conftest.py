"""The sign-in tests' servers, each defined once: the OAuth authorisation server (Authlib,
https on 127.0.0.1 with the test CA; support/oauth_server.py), the CA file a client trusts
for it, and an SMTP server that accepts XOAUTH2 only, with the tokens that server issued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.oauth_server import OAuthServer, write_ca
from support.smtp_servers import Server, XOAuth2Handler, start_server


@pytest.fixture
def auth_server() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture
def cafile(tmp_path: Path) -> str:
    """The test CA's certificate, for REQUESTS_CA_BUNDLE and the sign-in's HTTP."""
    return write_ca(tmp_path)


@pytest.fixture
def xoauth2_smtp_server(auth_server: OAuthServer, tmp_path: Path) -> Iterator[Server]:
    """STARTTLS (its CA in tmp_path) and AUTH XOAUTH2 only, for the tokens ``auth_server``
    issued; its handler counts the sign-in attempts and the messages accepted."""
    handler = XOAuth2Handler(auth_server.user_for_token)
    with start_server(handler, tls="starttls", cafile_dir=tmp_path) as server:
        yield server
