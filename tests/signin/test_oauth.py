"""OAuth 2.0 sign-in end to end, against real local servers (no mocks):

* a real authorisation server built with Authlib (tests/support/oauth_server.py) over https with the
  test CA: MSAL and Authlib, pointed at it with NEWSLETTER_OAUTH_AUTHORITY, run their real
  flows (authorisation code + PKCE with the loopback redirect, device code, refresh);
* a real aiosmtpd server that accepts AUTH XOAUTH2 only, with tokens that server issued.

The user's browser is played by an HTTP client (``OAuthServer.browser``) that consents on the
sign-in page and follows the redirect to our loopback listener: what is under test is our side
of the protocol, not a sign-in page. Time is a clock the tests move (client and server alike).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import threading
import time
from dataclasses import replace

import pytest
from support.oauth_server import (
    GOOGLE_CLIENT,
    GOOGLE_SECRET,
    MS_CLIENT,
    USER,
    OAuthServer,
    google_settings,
    ms_send_env,
    ms_settings,
)
from support.smtp_servers import PasswordOffHandler, XOAuth2Handler, make_message, start_server
from typer.testing import CliRunner

from newsletter.cli.commands import app, main
from newsletter.common.config import Settings, load_settings
from newsletter.common.errors import ConfigError, DeliveryError, SignInError, SignInRequired
from newsletter.mail.smtp import SmtpTransport
from newsletter.records.journal import Journal
from newsletter.signin import oauth

SENDER = USER


class Clock:
    """The client's clock, moved together with the authorisation server's."""

    def __init__(self, server: OAuthServer) -> None:
        self.now = time.time()
        self.server = server

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float, *, server_too: bool = True) -> None:
        self.now += seconds
        if server_too:
            self.server.advance(seconds)


def browser_login(settings: Settings, auth_server: OAuthServer, cafile: str) -> oauth.SignIn:
    lines: list[str] = []
    info = oauth.login(
        settings,
        open_browser=auth_server.browser(cafile),
        echo=lines.append,
        http=auth_server.http(cafile),
    )
    assert any(line.startswith(auth_server.base) for line in lines)  # if no browser opens
    return info


def transport(settings: Settings, auth_server, cafile, clock=time.time) -> SmtpTransport:
    source = oauth.token_source(settings, http=auth_server.http(cafile), clock=clock)
    return SmtpTransport(settings, token_source=source)


# -- settings -----------------------------------------------------------------------------


def test_auth_mode_defaults_and_provider_inference() -> None:
    ms = load_settings({"NEWSLETTER_SMTP_HOST": "smtp.office365.com"}, None)
    assert ms.auth_mode == "oauth2" and ms.oauth_provider_name == "microsoft"
    assert ms.oauth_tenant == "organizations"
    google = load_settings({"NEWSLETTER_SMTP_HOST": "smtp.gmail.com"}, None)
    assert google.auth_mode == "oauth2" and google.oauth_provider_name == "google"
    with_password = load_settings(
        {"NEWSLETTER_SMTP_HOST": "smtp.office365.com", "NEWSLETTER_SMTP_PASSWORD": "pw"}, None
    )
    assert with_password.auth_mode == "password"
    other = load_settings({"NEWSLETTER_SMTP_HOST": "mail.example.org"}, None)
    assert other.auth_mode == "password" and other.oauth_provider_name == ""
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_AUTH"):
        load_settings({"NEWSLETTER_SMTP_AUTH": "kerberos"}, None)
    with pytest.raises(ConfigError, match="NEWSLETTER_OAUTH_PROVIDER"):
        load_settings({"NEWSLETTER_OAUTH_PROVIDER": "yahoo"}, None)


def test_oauth2_needs_tls_a_client_id_and_never_shows_secrets() -> None:
    plain = Settings(smtp_host="127.0.0.1", smtp_security="none", smtp_auth="oauth2")
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_SECURITY.*unencrypted"):
        plain.require_smtp()
    with pytest.raises(ConfigError, match="NEWSLETTER_OAUTH_CLIENT_ID"):
        Settings(smtp_host="smtp.office365.com").require_smtp()
    with pytest.raises(ConfigError, match="NEWSLETTER_OAUTH_PROVIDER"):
        Settings(smtp_host="mail.example.org", smtp_auth="oauth2").require_smtp()
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_USERNAME"):
        Settings(smtp_host="x.example", smtp_oauth_token_command="get-token").require_smtp()
    shown = repr(Settings(oauth_client_secret="hush-1", smtp_oauth_token_command="vault hush-2"))
    assert "hush-1" not in shown and "hush-2" not in shown


# -- Microsoft (MSAL) ---------------------------------------------------------------------


def test_microsoft_browser_login_then_send_over_xoauth2(
    tmp_path, auth_server, cafile, xoauth2_smtp_server
):
    settings = ms_settings(tmp_path, auth_server, xoauth2_smtp_server)
    before = time.time()  # an expiry after the login began, however long the login took
    info = browser_login(settings, auth_server, cafile)
    assert (info.provider, info.username) == ("microsoft", USER)
    assert info.expires_at is not None and info.expires_at > before
    if os.name == "posix":
        assert (info.path.stat().st_mode & 0o777) == 0o600
    saved = info.path.read_text()
    assert auth_server.issued_access_tokens()[0] in saved  # MSAL's cache, on disk
    t = transport(settings, auth_server, cafile)
    reply = t.send(make_message("member@example.org"), SENDER)
    t.close()
    assert reply.startswith("250")
    assert xoauth2_smtp_server.handler.accepted == 1 and xoauth2_smtp_server.handler.count() == 1


def test_microsoft_device_code_login_via_cli(tmp_path, auth_server, cafile, project, monkeypatch):
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
        "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        "NEWSLETTER_OAUTH_AUTHORITY": auth_server.ms_authority,
        # How a user behind a company TLS proxy points requests (MSAL's HTTP) at a CA.
        "REQUESTS_CA_BUNDLE": cafile,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def user_on_another_device() -> None:
        # Waits for the code the CLI printed, then enters it on the verification page.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pending = list(auth_server.devices.values())
            if pending:
                auth_server.approve_device(cafile, pending[0]["user_code"])
                return
            time.sleep(0.05)

    helper = threading.Thread(target=user_on_another_device)
    helper.start()
    result = CliRunner().invoke(app, ["login", "--device-code"])
    helper.join()
    assert result.exit_code == 0, result.output
    code = next(iter(auth_server.devices.values()))["user_code"]
    assert f"enter the code {code}" in result.output
    assert f"signed in as {USER} (microsoft)" in result.output
    status = CliRunner().invoke(app, ["login", "--status"])
    assert status.exit_code == 0 and f"signed in as {USER}" in status.output
    assert "expires" in status.output
    for secret in auth_server.issued_secrets():
        assert secret not in result.output + status.output
    out = CliRunner().invoke(app, ["logout"])
    assert out.exit_code == 0 and f"signed out {USER}" in out.output
    assert not (project / ".newsletter" / "oauth-microsoft.json").exists()
    after = CliRunner().invoke(app, ["login", "--status"])
    assert after.exit_code == 1 and "not signed in" in after.output


def test_xoauth2_over_implicit_tls(tmp_path, auth_server, cafile):
    handler = XOAuth2Handler(auth_server.user_for_token)
    with start_server(handler, tls="ssl", cafile_dir=tmp_path) as server:
        settings = ms_settings(tmp_path, auth_server, server, smtp_security="ssl")
        browser_login(settings, auth_server, cafile)
        t = transport(settings, auth_server, cafile)
        assert t.send(make_message("a@example.org"), SENDER).startswith("250")
        t.close()
    assert handler.accepted == 1


def test_expired_access_token_is_refreshed_before_sending(
    tmp_path, auth_server, cafile, xoauth2_smtp_server
):
    settings = ms_settings(tmp_path, auth_server, xoauth2_smtp_server)
    browser_login(settings, auth_server, cafile)
    clock = Clock(auth_server)
    clock.advance(2 * 3600)  # the stored access token has expired on both sides
    t = transport(settings, auth_server, cafile, clock)
    assert t.send(make_message("a@example.org"), SENDER).startswith("250")
    t.close()
    assert len(auth_server.issued_access_tokens()) == 2  # one at login, one refreshed
    # MSAL judges its cached token by the real time, not by our clock, so it may offer the
    # old one first; then the server's refusal triggers the refresh (at most 2 AUTHs).
    assert xoauth2_smtp_server.handler.accepted == 1 and xoauth2_smtp_server.handler.attempts <= 2


def test_long_paced_send_reconnects_with_a_fresh_token_before_expiry(
    tmp_path, auth_server, cafile, xoauth2_smtp_server
):
    settings = ms_settings(tmp_path, auth_server, xoauth2_smtp_server)
    browser_login(settings, auth_server, cafile)
    clock = Clock(auth_server)
    t = transport(settings, auth_server, cafile, clock)
    for n in range(4):  # four messages 20 minutes apart: the token lasts an hour
        t.send(make_message(f"m{n}@example.org", row=n), SENDER)
        clock.advance(20 * 60)
    t.close()
    assert xoauth2_smtp_server.handler.count() == 4
    # At 60 minutes the token is within REFRESH_MARGIN of expiry: renewed, and the
    # connection reopened with it, before the server could refuse anything.
    assert xoauth2_smtp_server.connections == 2
    assert xoauth2_smtp_server.handler.attempts == xoauth2_smtp_server.handler.accepted == 2


def test_token_refused_by_the_server_is_refreshed_once(
    tmp_path, auth_server, cafile, xoauth2_smtp_server
):
    settings = ms_settings(tmp_path, auth_server, xoauth2_smtp_server)
    browser_login(settings, auth_server, cafile)
    clock = Clock(auth_server)
    auth_server.advance(2 * 3600)  # the server says the token expired; our clock disagrees
    t = transport(settings, auth_server, cafile, clock)
    assert t.send(make_message("a@example.org"), SENDER).startswith("250")
    t.close()
    # 334 + JSON, empty line, 535; then a refreshed token is accepted.
    assert xoauth2_smtp_server.handler.attempts == 2 and xoauth2_smtp_server.handler.accepted == 1


def test_revoked_sign_in_says_sign_in_again(tmp_path, auth_server, cafile, xoauth2_smtp_server):
    settings = ms_settings(tmp_path, auth_server, xoauth2_smtp_server)
    browser_login(settings, auth_server, cafile)
    auth_server.revoke_all()
    clock = Clock(auth_server)
    clock.advance(2 * 3600)
    t = transport(settings, auth_server, cafile, clock)
    with pytest.raises(SignInRequired) as caught:
        t.send(make_message("a@example.org"), SENDER)
    assert str(caught.value).startswith("sign in again: newsletter login")
    assert isinstance(caught.value, DeliveryError)  # a send stops at once
    assert xoauth2_smtp_server.handler.count() == 0


def test_never_signed_in_says_sign_in(tmp_path, auth_server):
    with pytest.raises(SignInRequired, match="sign in again: newsletter login"):
        oauth.token_source(ms_settings(tmp_path, auth_server))


def test_refused_browser_consent_is_one_line(tmp_path, auth_server, cafile):
    settings = ms_settings(tmp_path, auth_server)
    with pytest.raises(SignInError, match="sign-in refused: .*denied"):
        oauth.login(
            settings,
            open_browser=auth_server.browser(cafile, approve=False),
            echo=lambda line: None,
            http=auth_server.http(cafile),
        )


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_stray_answer_without_the_sign_ins_state_is_ignored(
    tmp_path, auth_server, cafile, provider
):
    """Any local program (or a web page probing ports) could end the sign-in by sending
    '?error=access_denied' to the loopback listener first: only the answer carrying the
    sign-in's own state counts now."""
    from urllib.parse import parse_qs, urlsplit

    import requests

    settings = (ms_settings if provider == "microsoft" else google_settings)(tmp_path, auth_server)
    real_browser = auth_server.browser(cafile)
    strays: list[int] = []

    def browser(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        for query in ("error=access_denied", "error=access_denied&state=not-this-one",
                      "code=stolen&state=not-this-one"):  # fmt: skip
            strays.append(requests.get(f"{redirect}/?{query}", timeout=10).status_code)
        return real_browser(url)

    info = oauth.login(settings, open_browser=browser, echo=lambda line: None,
                       http=auth_server.http(cafile))  # fmt: skip
    assert strays == [400, 400, 400]
    assert info.username == USER


def test_unreachable_sign_in_service_is_one_line(tmp_path, cafile):
    settings = Settings(
        state_dir=tmp_path,
        smtp_host="smtp.office365.com",
        oauth_client_id=MS_CLIENT,
        oauth_authority="https://127.0.0.1:9/organizations",
    )
    with pytest.raises(SignInError, match="cannot reach the sign-in service"):
        oauth.login(settings, open_browser=lambda url: None, echo=lambda line: None)


# -- Google (Authlib) ---------------------------------------------------------------------


def test_google_login_send_and_logout_revokes(tmp_path, auth_server, cafile, xoauth2_smtp_server):
    settings = google_settings(tmp_path, auth_server, xoauth2_smtp_server)
    info = browser_login(settings, auth_server, cafile)
    assert (info.provider, info.username) == ("google", USER)
    if os.name == "posix":
        assert (info.path.stat().st_mode & 0o777) == 0o600
    assert GOOGLE_SECRET not in info.path.read_text()  # the client secret stays in .env
    clock = Clock(auth_server)
    clock.advance(2 * 3600)
    t = transport(settings, auth_server, cafile, clock)
    assert t.send(make_message("a@example.org"), SENDER).startswith("250")
    t.close()
    assert len(auth_server.issued_access_tokens()) == 2
    # Our clock said the stored token had expired: refreshed before AUTH, never refused.
    assert xoauth2_smtp_server.handler.attempts == xoauth2_smtp_server.handler.accepted == 1
    with pytest.raises(SignInError, match="device sign-in"):
        oauth.login(
            settings,
            device_code=True,
            open_browser=print,
            echo=print,
            http=auth_server.http(cafile),
        )
    assert oauth.logout(settings, http=auth_server.http(cafile)).username == USER
    assert auth_server.revocations == 1 and not info.path.exists()


# -- the token command --------------------------------------------------------------------


def test_token_command_runs_at_each_connection(tmp_path, auth_server, cafile, xoauth2_smtp_server):
    login_settings = ms_settings(tmp_path, auth_server)
    browser_login(login_settings, auth_server, cafile)
    token = auth_server.issued_access_tokens()[0]  # e.g. what a company helper hands out
    (tmp_path / "token.txt").write_text(token + "\n")
    script = tmp_path / "get_token.py"
    script.write_text(
        "import pathlib, sys\n"
        f"here = pathlib.Path({str(tmp_path)!r})\n"
        "with open(here / 'runs.txt', 'a') as f: f.write('x')\n"
        "print((here / 'token.txt').read_text().strip())\n"
    )
    argv = [sys.executable, str(script)]
    command = (
        " ".join(shlex.quote(a) for a in argv)
        if os.name != "nt"
        else " ".join(f'"{a}"' for a in argv)
    )
    settings = Settings(
        state_dir=tmp_path / "other",
        smtp_host=xoauth2_smtp_server.host,
        smtp_port=xoauth2_smtp_server.port,
        smtp_cafile=xoauth2_smtp_server.cafile,
        smtp_username=USER,
        smtp_oauth_token_command=command,
        smtp_max_per_connection=1,
    )
    assert settings.auth_mode == "oauth2"
    t = SmtpTransport(settings)
    for n in range(2):
        t.send(make_message(f"m{n}@example.org", row=n), SENDER)
    t.close()
    assert xoauth2_smtp_server.handler.accepted == 2 and xoauth2_smtp_server.connections == 2
    assert (tmp_path / "runs.txt").read_text() == "xx"


def test_failing_token_command_and_a_refused_token_are_one_line(tmp_path, xoauth2_smtp_server):
    failing = Settings(
        smtp_host=xoauth2_smtp_server.host,
        smtp_port=xoauth2_smtp_server.port,
        smtp_cafile=xoauth2_smtp_server.cafile,
        smtp_username=USER,
        smtp_oauth_token_command=f"{shlex.quote(sys.executable)} -c \"import sys; sys.exit('vault is locked')\"",
    )
    with pytest.raises(DeliveryError, match="exit status 1: vault is locked"):
        SmtpTransport(failing).connect()
    bogus = replace(
        failing,
        smtp_oauth_token_command=f"{shlex.quote(sys.executable)} -c \"print('not-a-token')\"",
    )
    with pytest.raises(DeliveryError) as caught:
        SmtpTransport(bogus).connect()
    message = str(caught.value)
    assert "XOAUTH2 sign-in refused: 535 5.7.3" in message and "(status 401)" in message
    assert "SMTP AUTH is enabled" in message and "not-a-token" not in message
    assert xoauth2_smtp_server.handler.attempts == 2  # retried once with a fresh token


# -- password AUTH switched off (Microsoft 365, end of 2026) -------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
        "535 5.7.30 Basic authentication is not supported for Client Submission.",
        "535 5.7.3 Authentication unsuccessful",
    ],
)
def test_basic_auth_disabled_says_what_to_do(tmp_path, reply):
    with start_server(PasswordOffHandler(reply), tls="starttls", cafile_dir=tmp_path) as server:
        settings = Settings(
            smtp_host=server.host,
            smtp_port=server.port,
            smtp_cafile=server.cafile,
            smtp_username="chair@example.org",
            smtp_password="old-password",
        )
        with pytest.raises(DeliveryError) as caught:
            SmtpTransport(settings).connect()
    message = str(caught.value)
    assert reply.split()[1] in message
    assert "set NEWSLETTER_SMTP_AUTH=oauth2" in message and "newsletter login" in message
    assert "old-password" not in message
    # 5.7.3 is also Microsoft's answer to a wrong password: both causes are named.
    assert ("NEWSLETTER_SMTP_PASSWORD" in message) == (" 5.7.3 " in f" {reply} ")


# -- no token anywhere --------------------------------------------------------------------


def test_no_token_in_output_journal_logs_or_help(
    tmp_path, auth_server, cafile, xoauth2_smtp_server, project, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    env = {
        "NEWSLETTER_SMTP_HOST": xoauth2_smtp_server.host,
        "NEWSLETTER_SMTP_PORT": str(xoauth2_smtp_server.port),
        "NEWSLETTER_SMTP_CAFILE": xoauth2_smtp_server.cafile,
        "NEWSLETTER_SMTP_AUTH": "oauth2",
        "NEWSLETTER_OAUTH_PROVIDER": "microsoft",
        "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        "NEWSLETTER_OAUTH_AUTHORITY": auth_server.ms_authority,
        # Not USER's example.org: a test copy from a placeholder domain is refused.
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_TEST_TO": "chair@wmhtc.co.uk",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@example.org",
        "REQUESTS_CA_BUNDLE": cafile,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    browser_login(settings, auth_server, cafile)
    auth_server.advance(2 * 3600)  # the server refuses the first token: a refresh happens too
    runner = CliRunner()
    outputs = [
        runner.invoke(app, ["send", "december-2023", "--test"]),
        runner.invoke(app, ["login", "--status"]),
        runner.invoke(app, ["login", "--help"]),
        runner.invoke(app, ["--help"]),
    ]
    assert outputs[0].exit_code == 0, outputs[0].output
    assert xoauth2_smtp_server.handler.accepted == 1 and xoauth2_smtp_server.handler.count() == 1
    # Our logs and the libraries' we use (MSAL, requests, urllib3, aiosmtpd's client side).
    # The test authorisation server's own loggers (Authlib's server, Werkzeug) are left out:
    # they are the provider's logs, not ours.
    ours = [
        caplog.handler.format(r)
        for r in caplog.records
        if not r.name.startswith(("authlib.oauth2", "werkzeug"))
    ]
    text = "".join(r.output for r in outputs) + "\n".join(ours)
    journal = b"".join(p.read_bytes() for p in (project / ".newsletter").glob("*journal*"))
    assert journal  # the send was journalled
    secrets = auth_server.issued_secrets()
    assert len(secrets) >= 5  # 2 access + 2 refresh tokens, and the client secret
    for secret in secrets:
        assert secret not in text
        assert secret.encode() not in journal


def test_send_with_a_revoked_sign_in_stops_with_one_line_and_nobody_unknown(
    tmp_path, auth_server, cafile, xoauth2_smtp_server, project, monkeypatch, capsys
):
    rows = "".join(f"member{n}@members.wmhtc.co.uk,Name{n},Surname\n" for n in range(3))
    (project / "recipients.csv").write_text("email,first_name,last_name\n" + rows)
    env = ms_send_env(xoauth2_smtp_server, auth_server, cafile)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    browser_login(load_settings(), auth_server, cafile)
    auth_server.revoke_all()  # e.g. the password was changed, or an admin revoked sessions
    auth_server.advance(2 * 3600)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["send", "december-2023", "--yes"])
    assert stopped.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: sign in again: newsletter login")
    assert xoauth2_smtp_server.handler.count() == 0
    with Journal.for_state_dir(project / ".newsletter") as journal:
        assert journal.counts("december-2023").get("sending", 0) == 0  # nobody unknown


# -- what tripped a chair trying it end to end -------------------------------------------


def test_google_without_its_client_secret_is_refused_before_the_browser(tmp_path, auth_server):
    settings = replace(google_settings(tmp_path, auth_server), oauth_client_secret="")
    opened: list[str] = []
    with pytest.raises(ConfigError) as caught:
        oauth.login(settings, open_browser=opened.append, echo=lambda line: None)
    assert caught.value.setting == "NEWSLETTER_OAUTH_CLIENT_SECRET"
    assert opened == [] and auth_server.codes == {}  # no consent given for nothing
    with pytest.raises(ConfigError, match="NEWSLETTER_OAUTH_CLIENT_SECRET"):
        replace(settings, smtp_host="smtp.gmail.com").require_smtp()


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_untrusted_sign_in_certificate_says_requests_ca_bundle(
    tmp_path, auth_server, monkeypatch, provider
):
    # A company proxy re-signing TLS looks like this: the sign-in service's certificate is
    # signed by a CA this machine does not trust (here: the test CA, not given to requests).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    make = ms_settings if provider == "microsoft" else google_settings
    with pytest.raises(SignInError) as caught:
        oauth.login(make(tmp_path, auth_server), open_browser=print, echo=lambda line: None)
    message = str(caught.value)
    assert "certificate" in message and "REQUESTS_CA_BUNDLE" in message
    assert "not in .env" in message and "\n" not in message


def test_wrong_client_id_with_device_code_names_the_client_id(tmp_path, auth_server, cafile):
    settings = ms_settings(tmp_path, auth_server, oauth_client_id="99999999-0000-0000-0000-0")
    with pytest.raises(SignInError) as caught:
        oauth.login(
            settings,
            device_code=True,
            open_browser=print,
            echo=lambda line: None,
            http=auth_server.http(cafile),
        )
    message = str(caught.value)
    assert "NEWSLETTER_OAUTH_CLIENT_ID" in message
    assert "public client flows" not in message  # not the cause: don't send IT astray


@pytest.mark.parametrize(
    ("description", "wanted"),
    [
        # Entra's own texts (first line), as MSAL hands them over.
        (
            "AADSTS7000218: The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'.",
            "Allow public client flows: Yes",
        ),
        (
            "AADSTS50194: Application 'x'(Newsletter) is not configured as a multi-tenant "
            "application. Usage of the /common endpoint is not supported",
            "NEWSLETTER_OAUTH_TENANT to your Directory (tenant) ID",
        ),
        (
            "AADSTS700016: Application with identifier 'x' was not found in the directory",
            "NEWSLETTER_OAUTH_CLIENT_ID",
        ),
    ],
)
def test_entra_errors_say_which_setting_or_registration_step(description, wanted):
    from newsletter.signin.microsoft import entra_hint

    hint = entra_hint({"error": "invalid_client", "error_description": description})
    assert hint is not None and wanted in hint


def test_client_id_on_a_microsoft_host_means_oauth2_even_with_an_old_password() -> None:
    migrating = load_settings(
        {
            "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
            "NEWSLETTER_SMTP_USERNAME": "chair@example.org",
            "NEWSLETTER_SMTP_PASSWORD": "the-old-password",
            "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        },
        None,
    )
    assert migrating.auth_mode == "oauth2"
    relay = load_settings(
        {
            "NEWSLETTER_SMTP_HOST": "mail.example.org",
            "NEWSLETTER_SMTP_PASSWORD": "pw",
            "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        },
        None,
    )
    assert relay.auth_mode == "password"  # an unknown host keeps its password


def test_status_with_an_expired_access_token_or_a_token_command(
    tmp_path, auth_server, cafile, project, monkeypatch
):
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
        "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        "NEWSLETTER_OAUTH_AUTHORITY": auth_server.ms_authority,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    info = browser_login(load_settings(), auth_server, cafile)
    # The laptop slept through the access token's hour: MSAL drops it from the cache.
    cache = json.loads(info.path.read_text())
    for entry in cache["AccessToken"].values():
        entry["expires_on"] = entry["extended_expires_on"] = str(int(time.time()) - 60)
    info.path.write_text(json.dumps(cache))
    status = CliRunner().invoke(app, ["login", "--status"])
    assert status.exit_code == 0 and f"signed in as {USER}" in status.output
    assert "a new one is fetched at the next send" in status.output
    assert "yet" not in status.output
    monkeypatch.setenv("NEWSLETTER_SMTP_USERNAME", USER)
    monkeypatch.setenv("NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND", "get-token")
    command = CliRunner().invoke(app, ["login", "--status"])
    assert command.exit_code == 0
    assert "tokens come from NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND" in command.output


def test_device_code_nobody_enters_in_time_is_one_plain_line(tmp_path, auth_server, cafile):
    lines: list[str] = []
    with pytest.raises(SignInError) as caught:
        oauth.login(
            ms_settings(tmp_path, auth_server),
            device_code=True,
            open_browser=print,
            echo=lines.append,
            http=auth_server.http(cafile),
            timeout=1.5,  # nobody approves: MSAL polls (every INTERVAL = 1 s), then gives up
        )
    message = str(caught.value)
    assert message.startswith("no sign-in within") and "--device-code again" in message
    assert "authorization_pending" not in message
    assert any(line.startswith("Waiting for the sign-in") for line in lines)


def test_check_compares_from_with_the_signed_in_account(
    tmp_path, auth_server, cafile, project, monkeypatch
):
    # With OAuth nobody sets NEWSLETTER_SMTP_USERNAME: the account is the signed-in one.
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
        "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        "NEWSLETTER_OAUTH_AUTHORITY": auth_server.ms_authority,
        "NEWSLETTER_FROM": "Cluster News <news@cluster-news.example>",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@cluster-news.example",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    browser_login(load_settings(), auth_server, cafile)  # as chair@example.org
    report = CliRunner().invoke(app, ["check", "december-2023"])
    assert "the SMTP account is on example.org" in report.output, report.output


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_revoked_sign_in_is_forgotten_so_status_agrees_with_the_send(
    tmp_path, auth_server, cafile, xoauth2_smtp_server, provider
):
    make = ms_settings if provider == "microsoft" else google_settings
    settings = make(tmp_path, auth_server, xoauth2_smtp_server)
    browser_login(settings, auth_server, cafile)
    auth_server.revoke_all()
    clock = Clock(auth_server)
    clock.advance(2 * 3600)
    t = transport(settings, auth_server, cafile, clock)
    with pytest.raises(SignInRequired):
        t.send(make_message("a@example.org"), SENDER)
    # The send said "sign in again"; --status must not go on saying "signed in as …".
    assert oauth.sign_in_status(settings) is None
    with pytest.raises(SignInRequired, match="sign in again"):
        oauth.token_source(settings, http=auth_server.http(cafile))


def test_check_is_not_ready_while_nobody_is_signed_in(
    tmp_path, auth_server, cafile, project, monkeypatch
):
    # A Google Workspace chair: smtp.gmail.com, an app registration, no password, no login
    # yet. `check` said READY and the send then stopped at its first connection.
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.gmail.com",
        "NEWSLETTER_OAUTH_CLIENT_ID": GOOGLE_CLIENT,
        "NEWSLETTER_OAUTH_CLIENT_SECRET": GOOGLE_SECRET,
        "NEWSLETTER_OAUTH_AUTHORITY": auth_server.base,
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
        "NEWSLETTER_SECRET": "a-long-enough-secret-for-tests",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = CliRunner().invoke(app, ["check", "december-2023"])
    assert before.exit_code == 1, before.output
    wanted = (
        "error: NEWSLETTER_SMTP_AUTH: the send signs in with Google (OAuth 2.0), but nobody "
        "is signed in yet — run 'newsletter login'"
    )
    assert wanted in before.output and "NOT READY" in before.output, before.output
    browser_login(load_settings(), auth_server, cafile)
    after = CliRunner().invoke(app, ["check", "december-2023"])
    assert "NEWSLETTER_SMTP_AUTH" not in after.output, after.output
    assert after.exit_code == 0 and "READY to send" in after.output, after.output
    # An app password beside the OAuth client ID is ignored: say how to use it instead.
    monkeypatch.setenv("NEWSLETTER_SMTP_USERNAME", "chair@example.org")
    # (Google's app passwords are 16 letters; `check` warns about any other password.)
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "abcdefghijklmnop")
    monkeypatch.setenv("NEWSLETTER_STATE_DIR", str(tmp_path / "fresh-state"))
    both = CliRunner().invoke(app, ["check", "december-2023"])
    assert "set NEWSLETTER_SMTP_AUTH=password" in both.output, both.output
    # With the app password alone (no OAuth client), there is nothing to sign in.
    monkeypatch.delenv("NEWSLETTER_OAUTH_CLIENT_ID")
    password = CliRunner().invoke(app, ["check", "december-2023"])
    assert "NEWSLETTER_SMTP_AUTH" not in password.output, password.output
    assert password.exit_code == 0, password.output


@pytest.mark.parametrize("args", [["--device-code"], []], ids=["device-code", "browser"])
def test_ctrl_c_while_login_waits_says_nobody_was_signed_in(tmp_path, auth_server, cafile, args):
    """A real process and a real SIGINT (the point is the signal): whether polling for the
    device code or waiting for the browser's redirect, Ctrl-C ends with one line and 130."""
    import signal
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_SMTP_HOST="smtp.office365.com",
        NEWSLETTER_OAUTH_CLIENT_ID=MS_CLIENT,
        NEWSLETTER_OAUTH_AUTHORITY=auth_server.ms_authority,
        REQUESTS_CA_BUNDLE=cafile,
        BROWSER="true",  # webbrowser "opens" the page with a command that does nothing
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "login", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = []
    for line in proc.stdout:  # nobody signs in: the process waits after this line
        seen.append(line)
        if line.startswith("Waiting for the sign-in"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert err.strip().splitlines() == ["interrupted: nobody was signed in"]
    assert not (tmp_path / ".newsletter" / "oauth-microsoft.json").exists()


def test_status_and_logout_on_a_password_set_up_say_there_is_no_sign_in(tmp_path) -> None:
    """A chair on a password server tried `login --status` and `logout`: both said "cannot
    tell the sign-in provider from the host" (exit 2), as if something were misconfigured."""
    from support.helpers import run_cli

    env = {
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",
        "NEWSLETTER_SMTP_USERNAME": "news@wmhtc.co.uk",
        "NEWSLETTER_SMTP_PASSWORD": "not-shown-1234",
        "NEWSLETTER_STATE_DIR": str(tmp_path / "state"),
    }
    status = run_cli(["login", "--status"], env=env)
    assert status.returncode == 1 and status.stderr == ""
    assert "NEWSLETTER_SMTP_AUTH=password" in status.stdout and "no Microsoft 365" in status.stdout
    out = run_cli(["logout"], env=env)
    assert out.returncode == 0 and out.stdout.strip() == "nobody was signed in"
    assert "not-shown-1234" not in status.stdout + out.stdout
