"""The chair's real month through a Microsoft 365 or Google mailbox, tried adversarially.

Real components only: the Authlib authorisation server of tests/oauth_server.py (https on
127.0.0.1, test CA) with faults queued at its token endpoint (an error JSON, a 503, a web
page, a stall), and the XOAUTH2 aiosmtpd of tests/smtp_servers.py, which accepts only tokens
that server issued. What is checked is what the servers saw (token requests, messages
received per member), not only the words on the terminal.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Response
from helpers import FakeClock
from oauth_server import GOOGLE_CLIENT, GOOGLE_SECRET, MS_CLIENT, USER, OAuthServer, write_ca
from smtp_servers import XOAuth2Handler, make_message, start_server

from newsletter import oauth
from newsletter.config import Settings
from newsletter.delivery import deliver
from newsletter.errors import NewsletterError, SignInError, SignInRequired
from newsletter.journal import Journal
from newsletter.smtp import transport_factory


@pytest.fixture
def auth_server():
    with OAuthServer() as server:
        yield server


@pytest.fixture
def cafile(tmp_path: Path) -> str:
    return write_ca(tmp_path)


def ms_settings(tmp_path: Path, server: OAuthServer, smtp=None, **extra) -> Settings:
    base = Settings(
        state_dir=tmp_path / "state",
        smtp_host="smtp.office365.com",
        oauth_client_id=MS_CLIENT,
        oauth_authority=server.ms_authority,
        smtp_timeout=3,
    )
    if smtp is not None:
        base = replace(
            base,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_cafile=smtp.cafile,
            smtp_auth="oauth2",
            oauth_provider="microsoft",
        )
    return replace(base, **extra)


def google_settings(tmp_path: Path, server: OAuthServer, smtp=None, **extra) -> Settings:
    base = Settings(
        state_dir=tmp_path / "state",
        smtp_host="smtp.gmail.com",
        oauth_client_id=GOOGLE_CLIENT,
        oauth_client_secret=GOOGLE_SECRET,
        oauth_authority=server.base,
        smtp_timeout=3,
    )
    if smtp is not None:
        base = replace(
            base,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_cafile=smtp.cafile,
            smtp_auth="oauth2",
            oauth_provider="google",
        )
    return replace(base, **extra)


SETTINGS = {"microsoft": ms_settings, "google": google_settings}


def login(settings: Settings, server: OAuthServer, cafile: str) -> oauth.SignIn:
    return oauth.login(
        settings, open_browser=server.browser(cafile), echo=lambda line: None, http=server.http(cafile)
    )


def json_answer(status: int, body: dict) -> object:
    return lambda: Response(json.dumps(body), status=status, mimetype="application/json")


def page_answer(status: int, body: str) -> object:
    return lambda: Response(body, status=status, mimetype="text/html")


def refresh_now(settings: Settings, server: OAuthServer, cafile: str, http=...) -> str:
    """A token refresh as a send's reconnection does it (the held token is near expiry)."""
    source = oauth.token_source(
        settings, http=server.http(cafile) if http is ... else http, clock=time.time
    )
    source()  # the stored token
    source.invalidate()  # as when the SMTP server refused it: the next call must refresh
    return source()


# -- the token endpoint misbehaving: one line each, saying what to do ----------------------

TROUBLE = {
    "503 with JSON": json_answer(
        503,
        {
            "error": "temporarily_unavailable",
            "error_description": "AADSTS90033: A transient error has occurred.",
        },
    ),
    "500 web page": page_answer(500, "<html><body>Internal Server Error</body></html>"),
    "503 web page": page_answer(503, "<html><h1>Service Unavailable</h1></html>"),
}


@pytest.mark.parametrize("provider", ["microsoft", "google"])
@pytest.mark.parametrize("fault", list(TROUBLE))
def test_sign_in_service_in_trouble_is_one_line_and_keeps_the_sign_in(
    tmp_path, auth_server, cafile, capsys, provider, fault
):
    # MSAL raised MsalServiceError("HTTP Error: 503") straight through (a traceback, exit
    # 70); Authlib's answer was called "cannot reach the sign-in service", which it had.
    settings = SETTINGS[provider](tmp_path, auth_server)
    login(settings, auth_server, cafile)
    auth_server.token_faults[:] = [TROUBLE[fault]] * 3
    with pytest.raises(SignInError) as caught:
        refresh_now(settings, auth_server, cafile)
    message = str(caught.value)
    assert "answered HTTP 5" in message and "try again in a few minutes" in message
    assert "\n" not in message and "Traceback" not in capsys.readouterr().err
    # A passing outage must not cost the sign-in: the tokens are kept, and work afterwards.
    assert oauth.sign_in_status(settings) is not None
    auth_server.token_faults.clear()
    before = len(auth_server.issued_access_tokens())
    # (MSAL holds a 5xx answer for a minute in its app; a new token source is a new app.)
    assert refresh_now(settings, auth_server, cafile) in auth_server.issued_access_tokens()
    assert len(auth_server.issued_access_tokens()) == before + 1


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_web_page_instead_of_a_token_answer_is_one_line_and_no_traceback(
    tmp_path, auth_server, cafile, capsys, provider
):
    # A hotel Wi-Fi's sign-in page answers 200 with HTML. MSAL logged the JSON error with
    # logger.exception, which Python's last-resort handler printed as a traceback, and the
    # error then blamed NEWSLETTER_OAUTH_TENANT.
    settings = SETTINGS[provider](tmp_path, auth_server)
    login(settings, auth_server, cafile)
    capsys.readouterr()
    auth_server.token_faults[:] = [page_answer(200, "<html><body>Sign in to Wi-Fi</body></html>")]
    with pytest.raises(SignInError) as caught:
        refresh_now(settings, auth_server, cafile)
    message = str(caught.value)
    assert "answered with a web page" in message and "TENANT" not in message
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Sign in to Wi-Fi" not in err
    assert oauth.sign_in_status(settings) is not None  # still signed in


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_sign_in_service_that_never_answers_times_out(
    tmp_path, auth_server, cafile, monkeypatch, provider
):
    # MSAL and requests wait forever by default: a send hung at its first connection.
    # No test session here: the production HTTP clients, trusting the CA as a user would.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cafile)
    settings = SETTINGS[provider](tmp_path, auth_server, smtp_timeout=1)
    login(settings, auth_server, cafile)
    release = __import__("threading").Event()

    def stall():
        release.wait(20)
        return Response("{}", status=200, mimetype="application/json")

    auth_server.token_faults[:] = [stall] * 3
    started = time.monotonic()
    try:
        with pytest.raises(SignInError, match="did not answer in time") as caught:
            refresh_now(settings, auth_server, cafile, http=None)
        # Not a timing assertion on the tool: only that it did not wait for the stall.
        assert time.monotonic() - started < 15
    finally:
        release.set()
    assert "try again" in str(caught.value)


MS_SIGN_IN_AGAIN = {
    # Entra's answers to a refresh (error, AADSTS text) and what the chair must read.
    "expired (90 days)": (
        "invalid_grant",
        "AADSTS700082: The refresh token has expired due to inactivity.",
        "newsletter login",
    ),
    "password changed": (
        "invalid_grant",
        "AADSTS50173: The provided grant has expired due to it being revoked.",
        "newsletter login",
    ),
    "MFA required": (
        "interaction_required",
        "AADSTS50076: Due to a configuration change made by your administrator, you must "
        "use multi-factor authentication.",
        "newsletter login",
    ),
    "consent required": (
        "invalid_grant",
        "AADSTS65001: The user or administrator has not consented to use the application "
        "with ID 'x' named 'Newsletter'.",
        "ask your IT person to grant admin consent",
    ),
}


@pytest.mark.parametrize("case", list(MS_SIGN_IN_AGAIN))
def test_microsoft_refresh_refusals_say_what_to_do(tmp_path, auth_server, cafile, case):
    error, description, wanted = MS_SIGN_IN_AGAIN[case]
    settings = ms_settings(tmp_path, auth_server)
    login(settings, auth_server, cafile)
    auth_server.token_faults[:] = [
        json_answer(400, {"error": error, "error_description": description + "\r\nTrace ID: 1"})
    ]
    with pytest.raises(SignInRequired) as caught:
        refresh_now(settings, auth_server, cafile)
    message = str(caught.value)
    assert message.startswith("sign in again: newsletter login")
    assert wanted in message and "Trace ID" not in message and "\n" not in message
