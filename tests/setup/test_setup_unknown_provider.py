"""`newsletter setup` scripted when the From domain's MX look-up fails (offline, DNS down):
the one-line error says so and how to name the provider; named, setup goes on and notes
the failure."""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values
from support.dns_server import UNANSWERED
from support.helpers import run_cli

from newsletter.common.exitstatus import ExitStatus


def _setup(dns_server, *args: str):
    return run_cli(["setup", "--dns-server", dns_server.address, *args])


def test_a_failed_look_up_without_a_provider_names_the_options(project: Path, dns_server) -> None:
    done = _setup(dns_server, "--from", f"news@{UNANSWERED}", "--name", "Network News", "--yes")
    assert done.returncode == ExitStatus.USAGE
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith(f"error: could not look up where {UNANSWERED}'s mail goes (")
    assert "did not answer" in line  # the resolver's reason, not a guess
    assert "--provider microsoft365|google|ses|postmark|mailgun" in line
    assert "--smtp-host HOST" in line
    assert not (project / ".env").exists()


def test_a_failed_look_up_with_the_provider_named_sets_it_up_and_notes_the_failure(
    project: Path, dns_server
) -> None:
    done = _setup(dns_server, "--from", f"news@{UNANSWERED}", "--provider", "microsoft365", "--yes")
    assert done.returncode == 0, done.stderr
    env = {k: v or "" for k, v in dotenv_values(project / ".env").items()}
    assert env["NEWSLETTER_SMTP_HOST"] == "smtp.office365.com"
    assert env["NEWSLETTER_SMTP_AUTH"] == "oauth2"
    assert f"could not read the MX records of {UNANSWERED}" in done.stderr


def test_a_failed_look_up_with_the_server_named_sets_up_that_relay(
    project: Path, dns_server
) -> None:
    done = _setup(
        dns_server, "--from", f"news@{UNANSWERED}", "--smtp-host", "mail.relay.example", "--yes"
    )
    assert done.returncode == 0, done.stderr
    env = {k: v or "" for k, v in dotenv_values(project / ".env").items()}
    assert env["NEWSLETTER_SMTP_HOST"] == "mail.relay.example"
    assert env["NEWSLETTER_SMTP_AUTH"] == "password"


def test_an_answered_other_domain_still_needs_its_smtp_host(project: Path, dns_server) -> None:
    done = _setup(dns_server, "--from", "news@other-zone.uk", "--yes")
    assert done.returncode == ExitStatus.USAGE
    assert "--smtp-host is needed" in done.stderr and "could not look up" not in done.stderr
