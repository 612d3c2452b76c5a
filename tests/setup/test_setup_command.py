"""`newsletter setup` scripted (`--from ADDRESS --yes` and flags) against the local DNS
server: the right settings for a Microsoft 365, a Google and an other-provider domain;
re-running changes only what is asked; no secret is ever printed; passwords go to the
keyring (an in-memory one here) or .env as chosen."""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values
from support.helpers import run_cli

from newsletter.common.config import load_settings
from newsletter.common.passwords import read_password


def _env(project: Path) -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(project / ".env").items()}


def _setup(dns_server, *args: str, input: str | None = None):
    return run_cli(["setup", "--dns-server", dns_server.address, *args], input=input)


def test_a_microsoft_365_domain(project: Path, dns_server) -> None:
    done = _setup(dns_server, "--from", "news@good-zone.uk", "--name", "Good News", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Microsoft 365" in done.stdout
    env = _env(project)
    assert env["NEWSLETTER_FROM"] == "Good News <news@good-zone.uk>"
    assert env["NEWSLETTER_SMTP_HOST"] == "smtp.office365.com"
    assert env["NEWSLETTER_SMTP_PORT"] == "587" and env["NEWSLETTER_SMTP_SECURITY"] == "starttls"
    assert env["NEWSLETTER_SMTP_AUTH"] == "oauth2"
    assert env["NEWSLETTER_OAUTH_PROVIDER"] == "microsoft"
    assert env["NEWSLETTER_OAUTH_TENANT"] == "good-zone.uk"
    assert env["NEWSLETTER_IMAP_HOST"] == "outlook.office365.com"
    assert env["NEWSLETTER_TEST_TO"] == "news@good-zone.uk"
    assert env["NEWSLETTER_UNSUBSCRIBE_MAILTO"] == "news@good-zone.uk"
    assert env["NEWSLETTER_RECIPIENTS"] == "recipients.csv"
    assert len(env["NEWSLETTER_SECRET"]) >= 32
    assert env["NEWSLETTER_SECRET"] not in done.stdout + done.stderr
    # The next steps: the sign-in, then the doctor.
    assert "newsletter login, then newsletter doctor" in done.stdout
    # What it wrote loads, and is a Microsoft 365 OAuth set-up.
    settings = load_settings(None, project / ".env")
    assert settings.auth_mode == "oauth2" and settings.oauth_provider_name == "microsoft"


def test_a_google_domain(project: Path, dns_server) -> None:
    done = _setup(
        dns_server,
        "--from",
        "bulletin@google-good-zone.uk",
        "--oauth-client-id",
        "cid.apps",
        "--yes",
    )
    assert done.returncode == 0, done.stderr
    env = _env(project)
    assert env["NEWSLETTER_SMTP_HOST"] == "smtp.gmail.com"
    assert env["NEWSLETTER_SMTP_AUTH"] == "oauth2"
    assert env["NEWSLETTER_OAUTH_PROVIDER"] == "google"
    assert env["NEWSLETTER_OAUTH_CLIENT_ID"] == "cid.apps"
    assert env["NEWSLETTER_IMAP_HOST"] == "imap.gmail.com"
    assert "NEWSLETTER_OAUTH_TENANT" not in env
    assert "newsletter login" in done.stdout


def test_an_other_provider_domain_with_a_relay_and_a_password_in_the_keyring(
    project: Path, dns_server, memory_keyring
) -> None:
    done = _setup(
        dns_server,
        "--from", "news@other-zone.uk",
        "--smtp-host", "mail.other-zone.uk", "--smtp-port", "465", "--smtp-security", "ssl",
        "--username", "news", "--password-stdin", "--imap-host", "mail.other-zone.uk", "--yes",
        input="relay-Pa55word\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = _env(project)
    assert env["NEWSLETTER_SMTP_HOST"] == "mail.other-zone.uk"
    assert env["NEWSLETTER_SMTP_PORT"] == "465" and env["NEWSLETTER_SMTP_SECURITY"] == "ssl"
    assert env["NEWSLETTER_SMTP_AUTH"] == "password"
    assert env["NEWSLETTER_SMTP_USERNAME"] == "news"
    assert env["NEWSLETTER_PASSWORD_STORE"] == "keyring"
    assert "NEWSLETTER_SMTP_PASSWORD" not in env
    assert read_password("mail.other-zone.uk", "news") == "relay-Pa55word"
    assert "relay-Pa55word" not in done.stdout + done.stderr
    assert "keyring" in done.stdout
    # The send and feedback read it back from there.
    assert load_settings(None, project / ".env").smtp_password == "relay-Pa55word"
    assert "newsletter login" not in done.stdout and "newsletter doctor" in done.stdout


def test_a_known_relay_by_name(project: Path, dns_server) -> None:
    done = _setup(
        dns_server,
        "--from", "news@ses-unsigned-zone.uk", "--provider", "postmark",
        "--username", "server-token", "--password-stdin", "--password-store", "env", "--yes",
        input="server-token\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = _env(project)
    # A bulletin is a broadcast: Postmark's Broadcast stream host, and its own credentials.
    assert env["NEWSLETTER_SMTP_HOST"] == "smtp-broadcasts.postmarkapp.com"
    assert "Broadcast stream's SMTP token" in done.stdout
    assert env["NEWSLETTER_SMTP_AUTH"] == "password"
    assert env["NEWSLETTER_PASSWORD_STORE"] == "env"
    assert env["NEWSLETTER_SMTP_PASSWORD"] == "server-token"
    assert "server-token" not in done.stdout.replace("NEWSLETTER_SMTP_USERNAME=server-token", "")
    if hasattr(__import__("os"), "geteuid"):  # POSIX: the file holding it is private
        assert (project / ".env").stat().st_mode & 0o077 == 0


def test_postmark_transactional_host_given_by_hand_is_questioned(project: Path, dns_server) -> None:
    done = _setup(
        dns_server,
        "--from", "news@ses-unsigned-zone.uk", "--provider", "postmark",
        "--smtp-host", "smtp.postmarkapp.com", "--username", "tok", "--yes",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Written as asked (the chair may know better), but the next steps say what is wrong.
    assert _env(project)["NEWSLETTER_SMTP_HOST"] == "smtp.postmarkapp.com"
    assert "transactional stream" in done.stdout
    assert "--smtp-host smtp-broadcasts.postmarkapp.com" in done.stdout


def test_a_relay_with_a_microsoft_365_mailbox_sets_no_imap_server_and_says_why(
    project: Path, dns_server
) -> None:
    done = _setup(
        dns_server,
        "--from", "news@good-zone.uk", "--provider", "ses",
        "--username", "AKIAEXAMPLEACCESSKEY", "--yes",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = _env(project)
    # Microsoft 365 takes no password over IMAP: filled in, feedback could only fail.
    assert "NEWSLETTER_IMAP_HOST" not in env and "NEWSLETTER_IMAP_USERNAME" not in env
    assert "cannot read the Microsoft 365 mailbox" in done.stderr  # notes go to stderr


def test_a_relay_with_a_google_mailbox_signs_in_to_imap_as_the_from_address(
    project: Path, dns_server
) -> None:
    done = _setup(
        dns_server,
        "--from", "news@google-good-zone.uk", "--provider", "ses",
        "--username", "AKIAEXAMPLEACCESSKEY", "--yes",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = _env(project)
    assert env["NEWSLETTER_SMTP_USERNAME"] == "AKIAEXAMPLEACCESSKEY"
    assert env["NEWSLETTER_IMAP_HOST"] == "imap.gmail.com"
    # Not the SES access key: the mailbox bounces reach.
    assert env["NEWSLETTER_IMAP_USERNAME"] == "news@google-good-zone.uk"
    assert "NEWSLETTER_IMAP_PASSWORD" in done.stderr and "app password" in done.stderr


def test_re_running_changes_only_what_is_asked_and_asks_before_replacing(
    project: Path, dns_server
) -> None:
    first = _setup(dns_server, "--from", "news@good-zone.uk", "--yes")
    assert first.returncode == 0, first.stderr
    (project / ".env").write_text(
        "# my own note\nNEWSLETTER_RATE=12\n" + (project / ".env").read_text(), encoding="utf-8"
    )
    before = _env(project)
    # Nothing asked: nothing changes (the secret is kept: sent links are signed with it).
    again = _setup(dns_server)
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    assert _env(project) == before
    # A new value is added without a question; replacing one needs --yes.
    added = _setup(dns_server, "--oauth-client-id", "app-1")
    assert added.returncode == 0, added.stderr
    assert _env(project) == {**before, "NEWSLETTER_OAUTH_CLIENT_ID": "app-1"}
    refused = _setup(dns_server, "--test-to", "chair@good-zone.uk")
    assert refused.returncode == 2
    assert "NEWSLETTER_TEST_TO" in refused.stderr and "--yes" in refused.stderr
    assert _env(project)["NEWSLETTER_TEST_TO"] == "news@good-zone.uk"
    replaced = _setup(dns_server, "--test-to", "chair@good-zone.uk", "--yes")
    assert replaced.returncode == 0
    assert "news@good-zone.uk -> chair@good-zone.uk" in replaced.stdout
    after = _env(project)
    assert after == {
        **before,
        "NEWSLETTER_OAUTH_CLIENT_ID": "app-1",
        "NEWSLETTER_TEST_TO": "chair@good-zone.uk",
    }
    text = (project / ".env").read_text(encoding="utf-8")
    assert text.startswith("# my own note\nNEWSLETTER_RATE=12\n")  # the chair's lines kept


def test_a_placeholder_secret_is_replaced_and_never_shown(project: Path, dns_server) -> None:
    (project / ".env").write_text(
        "NEWSLETTER_SECRET=change-me-to-a-long-random-string\n", encoding="utf-8"
    )
    done = _setup(dns_server, "--from", "news@good-zone.uk", "--yes")
    secret = _env(project)["NEWSLETTER_SECRET"]
    assert secret != "change-me-to-a-long-random-string" and len(secret) >= 32
    assert "NEWSLETTER_SECRET: a new value (not shown)" in done.stdout
    assert secret not in done.stdout + done.stderr


def test_without_a_terminal_it_needs_the_from_address(project: Path, dns_server) -> None:
    (project / "templates" / "organisation.toml").unlink()  # no organisation email either
    done = _setup(dns_server)
    assert done.returncode == 2 and "--from ADDRESS" in done.stderr
    assert not (project / ".env").exists()


def test_the_organisation_email_is_the_default_from(project: Path, dns_server) -> None:
    from newsletter.content.organisation import load_organisation

    email = load_organisation(project / "templates").email
    done = _setup(dns_server, "--smtp-host", "smtp.relay-zone.uk", "--yes")
    assert done.returncode == 0, done.stderr
    assert email in _env(project)["NEWSLETTER_FROM"]


def test_a_password_dotenv_would_expand_is_refused_for_env(project: Path, dns_server) -> None:
    done = _setup(
        dns_server,
        "--from", "news@other-zone.uk", "--smtp-host", "mail.other-zone.uk",
        "--password-stdin", "--password-store", "env", "--yes",
        input="pa${HOME}ss\n",
    )  # fmt: skip
    assert done.returncode == 2 and "keyring" in done.stderr
    assert "pa${HOME}ss" not in done.stdout + done.stderr
    assert not (project / ".env").exists()


def test_from_setup_to_a_test_copy_without_editing_anything(project: Path, dns_server) -> None:
    # A chair's first send: setup (scripted), then doctor without sending, then --test,
    # against a loopback SMTP server; no hand-editing of .env.
    from support.smtp_servers import start_server

    with start_server() as server:
        done = _setup(
            dns_server,
            "--from", "news@other-zone.uk", "--name", "Cluster News",
            "--smtp-host", "127.0.0.1", "--smtp-port", str(server.port),
            "--smtp-security", "none", "--username", "", "--yes",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        doctor = run_cli(["doctor", "--no-send"])
        assert "pass  settings" in doctor.stdout, doctor.stdout
        sent = run_cli(["send", "december-2023", "--test"])
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("test copy of 'december-2023'")
        assert "sent to news@other-zone.uk" in sent.stdout
        (received,) = server.handler.messages
    assert received.rcpts == ("news@other-zone.uk",)
    assert b"From: Cluster News <news@other-zone.uk>" in received.data
    assert b"List-Unsubscribe: <mailto:news@other-zone.uk?subject=unsubscribe>" in received.data


def test_the_google_client_secret_is_read_from_standard_input(project: Path, dns_server) -> None:
    # Never a value on the command line, which shell history and the process list keep.
    done = _setup(
        dns_server,
        "--from", "news@google-good-zone.uk", "--oauth-client-id", "cid.apps",
        "--oauth-client-secret-stdin", "--yes",
        input="GOCSPX-the-secret\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _env(project)["NEWSLETTER_OAUTH_CLIENT_SECRET"] == "GOCSPX-the-secret"
    assert "GOCSPX-the-secret" not in done.stdout + done.stderr
    assert "NEWSLETTER_OAUTH_CLIENT_SECRET: a new value (not shown)" in done.stdout


def test_a_client_secret_no_sign_in_would_use_is_refused(project: Path, dns_server) -> None:
    done = _setup(
        dns_server,
        "--from", "news@good-zone.uk", "--oauth-client-secret-stdin", "--yes",
        input="the-secret\n",
    )  # fmt: skip
    assert done.returncode == 2 and "Google's OAuth sign-in only" in done.stderr
    assert "the-secret" not in done.stdout + done.stderr
    assert not (project / ".env").exists()
    both = _setup(
        dns_server,
        "--from", "news@google-good-zone.uk", "--password-stdin",
        "--oauth-client-secret-stdin", "--yes",
        input="a\nb\n",
    )  # fmt: skip
    assert both.returncode == 2 and "both read standard input" in both.stderr
    empty = _setup(
        dns_server, "--from", "news@google-good-zone.uk", "--oauth-client-secret-stdin", "--yes",
        input="\n",
    )  # fmt: skip
    assert empty.returncode == 2 and "read an empty line" in empty.stderr
    assert not (project / ".env").exists()


def test_the_imap_username_as_an_option(project: Path, dns_server) -> None:
    # With a relay the question's default is the From address; the option answers it.
    relay = _setup(
        dns_server,
        "--from", "news@google-good-zone.uk", "--provider", "ses",
        "--username", "AKIAEXAMPLEACCESSKEY", "--imap-username", "bounces@google-good-zone.uk",
        "--yes",
    )  # fmt: skip
    assert relay.returncode == 0, relay.stderr
    assert _env(project)["NEWSLETTER_IMAP_USERNAME"] == "bounces@google-good-zone.uk"
    (project / ".env").unlink()
    # Not asked otherwise (the SMTP account's mailbox), but written when given.
    own = _setup(
        dns_server,
        "--from", "news@other-zone.uk", "--smtp-host", "mail.other-zone.uk",
        "--username", "news", "--imap-host", "mail.other-zone.uk",
        "--imap-username", "replies@other-zone.uk", "--yes",
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert _env(project)["NEWSLETTER_IMAP_USERNAME"] == "replies@other-zone.uk"
    (project / ".env").unlink()
    nowhere = _setup(
        dns_server,
        "--from", "news@other-zone.uk", "--smtp-host", "mail.other-zone.uk",
        "--imap-username", "replies@other-zone.uk", "--yes",
    )  # fmt: skip
    assert nowhere.returncode == 2 and "--imap-username needs an IMAP server" in nowhere.stderr
    assert not (project / ".env").exists()
