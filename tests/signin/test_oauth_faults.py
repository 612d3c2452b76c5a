"""The chair's real month through a Microsoft 365 or Google mailbox, tried adversarially.

Real components only: the Authlib authorisation server of tests/support/oauth_server.py (https on
127.0.0.1, test CA) with faults queued at its token endpoint (an error JSON, a 503, a web
page, a stall), and the XOAUTH2 aiosmtpd of tests/support/smtp_servers.py, which accepts only tokens
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
from support import oauth_server
from support.helpers import FakeClock
from support.oauth_server import (
    GOOGLE_CLIENT,
    GOOGLE_SECRET,
    MS_CLIENT,
    USER,
    OAuthServer,
    ms_send_env,
)
from support.smtp_servers import XOAuth2Handler, make_message, start_server

from newsletter.common.config import Settings
from newsletter.common.errors import SignInError, SignInRequired
from newsletter.mail.smtp import transport_factory
from newsletter.records.journal import Journal
from newsletter.sending.engine import deliver
from newsletter.signin import oauth


def ms_settings(tmp_path: Path, server: OAuthServer, smtp=None, **extra) -> Settings:
    """Microsoft 365 sign-in settings (support.oauth_server) with a 3 s SMTP timeout."""
    return oauth_server.ms_settings(tmp_path, server, smtp, **{"smtp_timeout": 3, **extra})


def google_settings(tmp_path: Path, server: OAuthServer, smtp=None, **extra) -> Settings:
    """Google sign-in settings (support.oauth_server) with a 3 s SMTP timeout."""
    return oauth_server.google_settings(tmp_path, server, smtp, **{"smtp_timeout": 3, **extra})


SETTINGS = {"microsoft": ms_settings, "google": google_settings}


def login(settings: Settings, server: OAuthServer, cafile: str) -> oauth.SignIn:
    return oauth.login(
        settings,
        open_browser=server.browser(cafile),
        echo=lambda line: None,
        http=server.http(cafile),
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
    threading = __import__("threading")
    release, answered = threading.Event(), threading.Event()

    def stall():
        release.wait(60)
        answered.set()
        return Response("{}", status=200, mimetype="application/json")

    auth_server.token_faults[:] = [stall] * 3
    try:
        with pytest.raises(SignInError, match="did not answer in time") as caught:
            refresh_now(settings, auth_server, cafile, http=None)
        # It gave up while the service was still stalling: by event, not by stopwatch.
        assert not answered.is_set()
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
        "multi-factor authentication: newsletter login lets you complete it",
    ),
    "Conditional Access": (
        "invalid_grant",
        "AADSTS53003: Access has been blocked by Conditional Access policies.",
        "Conditional Access policy blocks this sign-in",
    ),
    "another tenant's sign-in": (
        "invalid_grant",
        "AADSTS50020: User account 'chair@other.example' from identity provider "
        "'https://sts.windows.net/x/' does not exist in tenant 'Cluster'.",
        "another organisation than NEWSLETTER_OAUTH_TENANT",
    ),
    "account disabled": (
        "invalid_grant",
        "AADSTS50057: The user account is disabled.",
        "ask your IT person",
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


# -- `check` tells the truth about the sign-in ---------------------------------------------


def _expire_stored_access_token(path: Path, provider: str) -> None:
    """The laptop slept through the access token's hour: the stored one is stale."""
    saved = json.loads(path.read_text())
    if provider == "microsoft":  # MSAL's cache, judged by the real time
        for entry in saved["AccessToken"].values():
            entry["expires_on"] = entry["extended_expires_on"] = str(int(time.time()) - 60)
    else:
        saved["expires_at"] = time.time() - 60
    path.write_text(json.dumps(saved))


def _check_env(provider: str, server: OAuthServer, cafile: str) -> dict[str, str]:
    env = {
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
        "NEWSLETTER_SECRET": "a-long-enough-secret-for-tests",
        "REQUESTS_CA_BUNDLE": cafile,
    }
    if provider == "microsoft":
        env |= {
            "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
            "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
            "NEWSLETTER_OAUTH_AUTHORITY": server.ms_authority,
        }
    else:
        env |= {
            "NEWSLETTER_SMTP_HOST": "smtp.gmail.com",
            "NEWSLETTER_OAUTH_CLIENT_ID": GOOGLE_CLIENT,
            "NEWSLETTER_OAUTH_CLIENT_SECRET": GOOGLE_SECRET,
            "NEWSLETTER_OAUTH_AUTHORITY": server.base,
        }
    return env


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_check_is_not_ready_when_the_sign_in_was_revoked_and_ready_when_a_refresh_works(
    auth_server, cafile, project, monkeypatch, provider
):
    # `check` read only the token store: with a refresh token revoked (password changed,
    # an admin's "revoke sessions", Google's 7-day testing tokens) it said READY and the
    # send then stopped at its first connection.
    from support.helpers import run_cli

    from newsletter.common.config import load_settings

    for name, value in _check_env(provider, auth_server, cafile).items():
        monkeypatch.setenv(name, value)
    info = login(load_settings(), auth_server, cafile)
    _expire_stored_access_token(info.path, provider)
    issued = len(auth_server.issued_access_tokens())
    fine = run_cli(["check", "december-2023"])
    assert fine.returncode == 0 and "READY to send" in fine.stdout, fine.stdout + fine.stderr
    assert len(auth_server.issued_access_tokens()) == issued + 1  # a refresh that worked

    _expire_stored_access_token(info.path, provider)
    auth_server.revoke_all()
    asked = auth_server.token_requests
    dead = run_cli(["check", "december-2023"])
    assert dead.returncode == 1 and "NOT READY" in dead.stdout, dead.stdout + dead.stderr
    assert auth_server.token_requests == asked + 1  # the provider was asked, and refused
    line = next(x for x in dead.stdout.splitlines() if "NEWSLETTER_SMTP_AUTH" in x)
    assert f"the sign-in of {USER}" in line and "expired or was revoked" in line
    assert "newsletter login" in line
    for secret in auth_server.issued_secrets():
        assert secret not in dead.stdout + dead.stderr
    # …and `login --status` agrees with it now.
    status = run_cli(["login", "--status"])
    assert status.returncode == 1 and "not signed in" in status.stdout + status.stderr


def test_check_names_a_sign_in_service_in_trouble_without_blaming_the_sign_in(
    auth_server, cafile, project, monkeypatch
):
    from support.helpers import run_cli

    from newsletter.common.config import load_settings

    for name, value in _check_env("microsoft", auth_server, cafile).items():
        monkeypatch.setenv(name, value)
    info = login(load_settings(), auth_server, cafile)
    _expire_stored_access_token(info.path, "microsoft")
    auth_server.token_faults[:] = [TROUBLE["503 web page"]] * 3
    report = run_cli(["check", "december-2023"])
    assert report.returncode == 1 and "NOT READY" in report.stdout
    line = next(x for x in report.stdout.splitlines() if "NEWSLETTER_SMTP_AUTH" in x)
    assert "answered HTTP 503" in line and "try again in a few minutes" in line
    assert "newsletter login" not in line  # the sign-in is fine: do not send them there
    assert oauth.sign_in_status(load_settings()) is not None


# -- the chair's real month: 1,000 members at 30 a minute over one sign-in -----------------

MEMBERS = [f"member{n:04d}@members.wmhtc.co.uk" for n in range(1000)]


def _paced_run(settings, server, cafile, journal, fake, wall, to, *, after_each=None):
    """deliver() as a real send does, pacing on ``fake``, tokens judged by ``wall`` (the
    same time, in epoch seconds), one token source for every connection."""
    source = oauth.token_source(settings, http=server.http(cafile), clock=wall)
    make = transport_factory(settings, token_source=source)

    class Counting:
        def __init__(self) -> None:
            self.inner = make()

        def connect(self) -> None:
            self.inner.connect()

        def send(self, msg, sender, following=None):
            reply = self.inner.send(msg, sender)
            if after_each:
                after_each()
            return reply

        def close(self) -> None:
            self.inner.close()

    messages = (make_message(a, row) for row, a in enumerate(to, start=2))
    return deliver(
        messages, slug="january-2027", sender=USER, journal=journal,
        transport_factory=Counting, settings=settings, clock=fake, sleep=fake.sleep,
    )  # fmt: skip


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_1000_member_paced_send_outlives_tokens_and_a_revocation_exactly_once(
    tmp_path, cafile, provider
):
    """Access tokens of 10 minutes (Entra's are 60-90; shorter makes more renewals in the
    same run) over a 33-minute send at 30 a minute: each renewed before it expires, no
    member refused or sent twice. Then an admin revokes the sessions mid-send: the run
    stops once the held token runs out, nobody unknown, the rest pending; after a new
    `login` the same run resumes and every member has exactly one copy at the server."""
    with OAuthServer(access_lifetime=600) as server:
        handler = XOAuth2Handler(server.user_for_token)
        with start_server(handler, tls="starttls", cafile_dir=tmp_path) as smtp:
            settings = SETTINGS[provider](tmp_path, server, smtp, rate=30.0)
            login(settings, server, cafile)
            fake = FakeClock()
            t0 = time.time()

            def wall() -> float:
                return t0 + fake() - fake.start

            server.now = wall  # the provider's clock moves with the send's
            with Journal.for_state_dir(settings.state_dir) as journal:
                first = _paced_run(settings, server, cafile, journal, fake, wall, MEMBERS[:500])
                assert first.sent == 500 and first.stopped is None
                minutes = (fake() - fake.start) / 60
                assert 16 <= minutes <= 17.5  # 500 at 30 a minute: pacing kept
                # Renewed ahead of expiry: the server never had to refuse a token.
                assert handler.attempts == handler.accepted
                renewals = len(server.issued_access_tokens()) - 1
                assert renewals >= 3

                sent_so_far = {"n": 0}

                def revoke_after_100() -> None:
                    sent_so_far["n"] += 1
                    if sent_so_far["n"] == 100:
                        server.revoke_all()  # "Revoke sessions" in Entra, mid-send

                second = _paced_run(
                    settings, server, cafile, journal, fake, wall, MEMBERS,
                    after_each=revoke_after_100,
                )  # fmt: skip
                assert second.stopped is not None
                assert "sign-in expired or was revoked" in second.stopped.reason
                assert "newsletter login" in second.stopped.advice
                assert not second.unknown and not second.failures
                counts = journal.counts("january-2027")
                assert counts.get("sending", 0) == 0 and counts.get("failed", 0) == 0
                assert 600 <= counts["sent"] < 1000  # the held token carried it a while

                login(settings, server, cafile)  # the chair signs in again
                third = _paced_run(settings, server, cafile, journal, fake, wall, MEMBERS)
                assert third.stopped is None
                assert third.sent == 1000 - counts["sent"]
                assert journal.counts("january-2027")["sent"] == 1000
            copies = handler.copies()
            assert len(copies) == 1000 and set(copies.values()) == {1}


# -- Microsoft's SMTP AUTH switched off: passwords and tokens alike -------------------------

AUTH_OFF = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
)


class SmtpAuthOffXOAuth2(XOAuth2Handler):
    """Microsoft 365 with SMTP AUTH off for the mailbox: a good token is refused too."""

    async def auth_XOAUTH2(self, server, args):  # noqa: N802
        from aiosmtpd.smtp import AuthResult

        self.attempts += 1
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False, message=AUTH_OFF)


def test_smtp_auth_switched_off_names_the_it_step_not_only_a_new_sign_in(
    tmp_path, auth_server, cafile
):
    # With a password, the hint said only "switch to OAuth"; with a token, "or sign in
    # again". Neither helps while SMTP AUTH is off: the IT person must enable it (docs/it/microsoft-365.md).
    from support.smtp_servers import PasswordOffHandler

    from newsletter.common.errors import DeliveryError
    from newsletter.mail.smtp import SmtpTransport

    with start_server(PasswordOffHandler(AUTH_OFF), tls="starttls", cafile_dir=tmp_path) as s:
        password = Settings(
            smtp_host=s.host, smtp_port=s.port, smtp_cafile=s.cafile,
            smtp_username="chair@example.org", smtp_password="old-password",
        )  # fmt: skip
        with pytest.raises(DeliveryError) as caught:
            SmtpTransport(password).connect()
    message = str(caught.value)
    assert "enable Authenticated SMTP" in message and "docs/it/microsoft-365.md" in message
    assert "NEWSLETTER_SMTP_AUTH=oauth2" in message and "newsletter login" in message
    assert "old-password" not in message and "\n" not in message

    handler = SmtpAuthOffXOAuth2(auth_server.user_for_token)
    with start_server(handler, tls="starttls", cafile_dir=tmp_path) as s:
        settings = ms_settings(tmp_path, auth_server, s)
        login(settings, auth_server, cafile)
        source = oauth.token_source(settings, http=auth_server.http(cafile))
        with pytest.raises(DeliveryError) as caught:
            SmtpTransport(settings, token_source=source).connect()
    message = str(caught.value)
    assert "5.7.139" in message and "enable Authenticated SMTP" in message
    assert "sign in again" not in message  # a new sign-in would be refused the same way
    for secret in auth_server.issued_secrets():
        assert secret not in message


# -- token files that are not what we wrote ------------------------------------------------

DAMAGED = {
    "cut short": b'{"Account": {"x": {"username": "chair@exa',
    "not UTF-8": b"\xff\xfe\x00binary",
    "a JSON list": b"[]",
    "another version's account": b'{"Account": {"a": {"username": 5}}}',
    "another version's expiry": b'{"AccessToken": {"a": {"expires_on": "soon"}}}',
    "Google's without a refresh token": b'{"username": "chair@example.org"}',
}


@pytest.mark.parametrize("provider", ["microsoft", "google"])
@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_token_file_is_one_line_and_logout_or_login_clears_it(
    tmp_path, auth_server, cafile, provider, case
):
    # `login --status`, `check` and `send` ended in "internal error: AttributeError" or
    # "KeyError: 'username'" (exit 70); and for a file they did call damaged, the advice
    # "run newsletter logout" failed the same way, so nothing could clear it.
    from support.helpers import run_cli

    settings = SETTINGS[provider](tmp_path, auth_server)
    path = tmp_path / "state" / f"oauth-{provider}.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(DAMAGED[case])
    env = {
        "NEWSLETTER_STATE_DIR": str(settings.state_dir),
        "NEWSLETTER_SMTP_HOST": settings.smtp_host,
        "NEWSLETTER_OAUTH_CLIENT_ID": settings.oauth_client_id,
        "NEWSLETTER_OAUTH_CLIENT_SECRET": settings.oauth_client_secret,
        "NEWSLETTER_OAUTH_AUTHORITY": settings.oauth_authority,
        "REQUESTS_CA_BUNDLE": cafile,
    }
    shown = run_cli(["login", "--status"], env=env)
    if shown.returncode == 1 and "not signed in" in shown.stdout + shown.stderr:
        return  # nothing usable in it, rightly read as nobody signed in
    assert shown.returncode == 2, shown.stdout + shown.stderr
    assert shown.stderr.strip().splitlines() == [
        f"error: {path}: the saved sign-in is damaged (run newsletter logout, then login)"
    ]
    gone = run_cli(["logout"], env=env)
    assert gone.returncode == 0 and not path.exists(), gone.stdout + gone.stderr
    # A new sign-in over a damaged file just replaces it.
    path.write_bytes(DAMAGED[case])
    assert login(settings, auth_server, cafile).username == USER
    assert oauth.sign_in_status(settings).username == USER


# -- signed in as one mailbox, sending From another ----------------------------------------


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_check_warns_when_signed_in_as_another_mailbox_of_the_same_domain(
    auth_server, cafile, project, monkeypatch, provider
):
    # The chair signs in as herself, From is the cluster's news@ mailbox: same domain, so
    # the domain warning stayed silent and `check` said READY. Microsoft 365 then refuses
    # every message (554 5.2.252 SendAsDenied) and Gmail rewrites From to her own address.
    from support.helpers import run_cli

    from newsletter.common.config import load_settings

    monkeypatch.setattr(oauth_server, "USER", "chair@wmhtc.co.uk")
    for name, value in _check_env(provider, auth_server, cafile).items():
        monkeypatch.setenv(name, value)  # From: news@wmhtc.co.uk
    assert login(load_settings(), auth_server, cafile).username == "chair@wmhtc.co.uk"
    report = run_cli(["check", "december-2023"])
    line = next(x for x in report.stdout.splitlines() if "goes out as" in x)
    assert line.startswith("warning: NEWSLETTER_FROM: From is news@wmhtc.co.uk")
    assert "chair@wmhtc.co.uk" in line and "Send As" in line
    assert report.returncode == 0  # a warning: Send As rights may well be granted
    # Signed in as the From mailbox itself: nothing to warn about.
    monkeypatch.setenv("NEWSLETTER_FROM", "Cluster News <Chair@wmhtc.co.uk>")
    same = run_cli(["check", "december-2023"])
    assert "goes out as" not in same.stdout and same.returncode == 0, same.stdout


def test_sign_in_service_down_mid_send_stops_cleanly_and_the_rerun_finishes(tmp_path, cafile):
    # A 503 from Entra at the token renewal of a paced send: the summary said "the server
    # refused the sign-in", which it had not. Nobody may be unknown or failed for it.
    with OAuthServer(access_lifetime=600) as server:
        handler = XOAuth2Handler(server.user_for_token)
        with start_server(handler, tls="starttls", cafile_dir=tmp_path) as smtp:
            settings = ms_settings(tmp_path, server, smtp, rate=30.0)
            login(settings, server, cafile)
            fake = FakeClock()
            t0 = time.time()

            def wall() -> float:
                return t0 + fake() - fake.start

            server.now = wall
            sent = {"n": 0}

            def outage_after_50() -> None:
                sent["n"] += 1
                if sent["n"] == 50:
                    server.token_faults[:] = [TROUBLE["503 web page"]] * 50

            to = MEMBERS[:300]
            with Journal.for_state_dir(settings.state_dir) as journal:
                run = _paced_run(
                    settings, server, cafile, journal, fake, wall, to, after_each=outage_after_50
                )
                assert run.stopped is not None and not run.unknown and not run.failures
                assert "sign-in service gave no token" in run.stopped.reason
                assert "answered HTTP 503" in run.stopped.reply
                assert "try again in a few minutes" in run.stopped.advice
                server.token_faults.clear()  # the outage is over: the same run again
                again = _paced_run(settings, server, cafile, journal, fake, wall, to)
                assert again.stopped is None
                assert journal.counts("january-2027")["sent"] == 300
            copies = handler.copies()
            assert len(copies) == 300 and set(copies.values()) == {1}


def test_login_as_another_account_than_the_smtp_username_says_so(
    tmp_path, auth_server, cafile, xoauth2_smtp_server, monkeypatch
):
    # NEWSLETTER_SMTP_USERNAME=news@…, and the chair answers the sign-in page with her own
    # account: "signed in as chair@…" and nothing else, then every send was refused with
    # chair's token presented for news@ (verified at the SMTP server below).
    from support.helpers import run_cli

    env = {
        "NEWSLETTER_STATE_DIR": str(tmp_path / "state"),
        "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
        "NEWSLETTER_SMTP_USERNAME": "news@example.org",
        "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        "NEWSLETTER_OAUTH_AUTHORITY": auth_server.ms_authority,
        "REQUESTS_CA_BUNDLE": cafile,
    }
    monkeypatch.setattr("webbrowser.open", auth_server.browser(cafile))
    done = run_cli(["login"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"signed in as {USER}" in done.stdout
    note = next(line for line in done.stdout.splitlines() if line.startswith("note:"))
    assert "NEWSLETTER_SMTP_USERNAME is news@example.org" in note and f"as {USER}" in note
    assert "newsletter login again" in note
    status = run_cli(["login", "--status"], env=env)
    assert "note: NEWSLETTER_SMTP_USERNAME is news@example.org" in status.stdout
    # What the note warns of, at the server: the token is refused for news@.
    from newsletter.common.errors import DeliveryError
    from newsletter.mail.smtp import SmtpTransport

    smtp = xoauth2_smtp_server
    settings = ms_settings(tmp_path, auth_server, smtp, smtp_username="news@example.org")
    source = oauth.token_source(settings, http=auth_server.http(cafile))
    with pytest.raises(DeliveryError, match="XOAUTH2 sign-in refused"):
        SmtpTransport(settings, token_source=source).connect()
    assert smtp.handler.accepted == 0 and smtp.handler.attempts == 2


def test_a_sign_in_saved_for_another_app_registration_is_no_sign_in(tmp_path, auth_server, cafile):
    # IT registered the app anew and gave a new client ID (or the token file was copied
    # from another project): `login --status` said "signed in" and `check` READY, and
    # every send then stopped with "sign in again (no saved sign-in)".
    settings = ms_settings(tmp_path, auth_server)
    login(settings, auth_server, cafile)
    auth_server.clients["22222222-0000-0000-0000-000000000000"] = type(
        auth_server.clients[MS_CLIENT]
    )("22222222-0000-0000-0000-000000000000")
    renamed = replace(settings, oauth_client_id="22222222-0000-0000-0000-000000000000")
    assert oauth.sign_in_status(renamed) is None
    why, fix = oauth.sign_in_problem(renamed, http=auth_server.http(cafile))
    assert "nobody is signed in yet" in why and "newsletter login" in fix
    assert login(renamed, auth_server, cafile).username == USER  # a new sign-in works
    assert oauth.sign_in_status(renamed).username == USER
    assert refresh_now(renamed, auth_server, cafile) in auth_server.issued_access_tokens()


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_an_idle_browser_connection_does_not_block_the_sign_in_redirect(
    tmp_path, auth_server, cafile, provider
):
    # Browsers open spare connections to a page's origin and leave them idle. The one-shot
    # listener served one connection at a time, so the real redirect waited behind the
    # idle one (until the browser gave it up, minutes later, or the login timed out).
    import socket
    from urllib.parse import parse_qs, urlsplit

    settings = SETTINGS[provider](tmp_path, auth_server)
    browser = auth_server.browser(cafile)
    idle: list[socket.socket] = []

    def open_browser(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        idle.append(socket.create_connection(("127.0.0.1", urlsplit(redirect).port)))
        return browser(url)

    guard_fired: list[bool] = []

    def hang_up(by_guard: bool = False) -> None:
        guard_fired.extend([True] if by_guard else [])
        for sock in idle:
            sock.close()

    # A hang guard, not a timing assertion: without the fix the idle connection would hold
    # the listener (and its shutdown) for ever; the browser gives it up after a while.
    guard = __import__("threading").Timer(20, hang_up, kwargs={"by_guard": True})
    guard.start()
    try:
        info = oauth.login(
            settings, open_browser=open_browser, echo=lambda line: None,
            http=auth_server.http(cafile), timeout=10,
        )  # fmt: skip
    finally:
        guard.cancel()
        hang_up()
    assert info.username == USER and idle
    assert not guard_fired  # signed in while the idle connection was still open


def test_check_runs_the_token_command_once_and_reports_its_failure(project, monkeypatch):
    # IT-managed set-up: the vault is locked. `check` said READY without running the
    # command; the send then stopped at its first connection.
    import shlex
    import sys

    from support.helpers import run_cli

    script = project / "get_token.py"
    script.write_text("import sys\nsys.exit('vault is locked: run vault login')\n")
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
        "NEWSLETTER_SMTP_USERNAME": "news@wmhtc.co.uk",
        "NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND": f"{shlex.quote(sys.executable)} {script.name}",
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
    }
    locked = run_cli(["check", "december-2023"], env=env)
    assert locked.returncode == 1 and "NOT READY" in locked.stdout, locked.stdout
    line = next(x for x in locked.stdout.splitlines() if "NEWSLETTER_SMTP_AUTH" in x)
    assert "exit status 1: vault is locked: run vault login" in line
    script.write_text("print('at-from-the-vault')\n")
    fine = run_cli(["check", "december-2023"], env=env)
    assert fine.returncode == 0 and "READY to send" in fine.stdout, fine.stdout
    assert "at-from-the-vault" not in fine.stdout + fine.stderr


def test_google_sign_in_without_the_mail_permission_is_refused_at_login(
    tmp_path, auth_server, cafile
):
    # Google's consent page has a box per permission; with the Gmail one unticked the
    # login said "signed in as …" and every send was refused later (535 5.7.8).
    import base64

    claims = base64.urlsafe_b64encode(json.dumps({"email": USER}).encode()).decode()
    partial = {
        "access_token": "at-partial",
        "refresh_token": "rt-partial",
        "expires_in": 3600,
        "token_type": "Bearer",
        "scope": "openid https://www.googleapis.com/auth/userinfo.email",
        "id_token": f"e30.{claims.rstrip('=')}.sig",
    }
    auth_server.token_faults[:] = [json_answer(200, partial)]
    settings = google_settings(tmp_path, auth_server)
    with pytest.raises(SignInError) as caught:
        login(settings, auth_server, cafile)
    message = str(caught.value)
    assert "did not allow access to Gmail" in message and "newsletter login again" in message
    assert oauth.sign_in_status(settings) is None  # nothing stored: not "signed in"
    assert login(settings, auth_server, cafile).username == USER  # ticked this time


class BusyXOAuth2(XOAuth2Handler):
    """Gmail when a mailbox signs in too often: 454 4.7.0 for the first ``busy`` tries."""

    def __init__(self, validate, busy: int) -> None:
        super().__init__(validate)
        self.busy = busy

    async def auth_XOAUTH2(self, server, args):  # noqa: N802
        if self.busy > 0:
            from aiosmtpd.smtp import AuthResult

            self.busy -= 1
            self.attempts += 1
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Too many login attempts, please try again later.",
            )
        return await super().auth_XOAUTH2(server, args)


def test_a_temporary_xoauth2_refusal_is_retried_later_not_sign_in_again(
    tmp_path, auth_server, cafile
):
    # A 4xx answer to AUTH XOAUTH2 stopped the whole run with "the mailbox refused the
    # sign-in token ... sign in again", after burning a token refresh on it.
    handler = BusyXOAuth2(auth_server.user_for_token, busy=2)
    with start_server(handler, tls="starttls", cafile_dir=tmp_path) as smtp:
        settings = google_settings(tmp_path, auth_server, smtp, retry_base_delay=1.0)
        login(settings, auth_server, cafile)
        fake = FakeClock()
        with Journal.for_state_dir(settings.state_dir) as journal:
            result = _paced_run(
                settings, server=auth_server, cafile=cafile, journal=journal, fake=fake,
                wall=time.time, to=MEMBERS[:3],
            )  # fmt: skip
    assert result.stopped is None and result.sent == 3, result
    assert handler.count() == 3 and handler.accepted >= 1
    assert len(auth_server.issued_access_tokens()) == 1  # no refresh wasted on it


def test_the_send_summary_names_the_signed_in_mailbox(
    tmp_path, auth_server, cafile, xoauth2_smtp_server, project, monkeypatch
):
    # The summary before [y/N] showed only host:port: a send signed in as the chair's own
    # mailbox (and refused as SendAsDenied, or sent From her address by Gmail) looked the
    # same as one signed in as the bulletin's. Verified at the server: nothing was sent.
    from support.helpers import run_cli

    for name, value in ms_send_env(xoauth2_smtp_server, auth_server, cafile).items():
        monkeypatch.setenv(name, value)
    from newsletter.common.config import load_settings

    login(load_settings(), auth_server, cafile)
    declined = run_cli(["send", "december-2023"], input="n\n")
    line = next(x for x in declined.stdout.splitlines() if x.startswith("Server:"))
    assert line.endswith(f", signed in as {USER} (OAuth 2.0)"), line
    assert xoauth2_smtp_server.handler.count() == 0
