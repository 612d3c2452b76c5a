"""`check` on the settings: .env.example copied as is, placeholder domains and weak or
placeholder secrets are not READY, and a guessable secret is refused even with --force."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from support.helpers import run_check, said
from support.projects import ROOT

from newsletter.common.config import Settings, load_settings
from newsletter.sending.checks.findings import Severity
from newsletter.sending.checks.settings import ENV_EXAMPLE_PLACEHOLDERS

# ---- no false READY: settings ----------------------------------------------------------------


def test_env_example_copied_as_is_is_not_ready(project: Path) -> None:
    shutil.copy(ROOT / ".env.example", project / ".env")
    settings = load_settings(environ={}, dotenv_path=project / ".env")
    report = run_check(settings, "december-2023")
    assert said(report, Severity.ERROR) == [
        "NEWSLETTER_FROM: 'Cluster News <news@example.org>' is still the placeholder from "
        ".env.example",
        "NEWSLETTER_TEST_TO: 'chair@example.org' is still the placeholder from .env.example",
        "NEWSLETTER_UNSUBSCRIBE_URL: 'https://example.org/unsubscribe?token={token}' is still "
        "the placeholder from .env.example",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO: 'unsubscribe@example.org' is still the placeholder "
        "from .env.example",
        "NEWSLETTER_SECRET: the secret is still the placeholder from .env.example",
        "NEWSLETTER_SMTP_HOST: 'smtp.example.org' is still the placeholder from .env.example",
    ]
    assert report.verdict().startswith("NOT READY: 6 errors")


def test_placeholder_list_matches_env_example() -> None:
    from dotenv import dotenv_values

    shipped = dotenv_values(ROOT / ".env.example")
    for name, value in ENV_EXAMPLE_PLACEHOLDERS.items():
        assert shipped[f"NEWSLETTER_{name.rstrip('_').upper()}"] == value


def test_placeholder_domains_and_weak_secrets(ready: Settings) -> None:
    report = run_check(
        replace(
            ready,
            from_="News <news@example.com>",
            reply_to="desk@mail.example.net",
            unsubscribe_mailto="list@example.org",
            secret="short-secret",
        ),
        "december-2023",
    )
    assert said(report, Severity.ERROR) == [
        "NEWSLETTER_FROM: 'News <news@example.com>' is on example.com, a placeholder domain",
        "NEWSLETTER_REPLY_TO: 'desk@mail.example.net' is on mail.example.net, a placeholder domain",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO: 'list@example.org' is on example.org, a placeholder domain",
        "NEWSLETTER_SECRET: the secret is only 12 characters (at least 16 needed): "
        "unsubscribe links could be forged",
    ]
    changeme = run_check(replace(ready, secret="change-me-please-0123456789"), "december-2023")
    assert said(changeme, Severity.ERROR) == [
        "NEWSLETTER_SECRET: the secret is a placeholder: unsubscribe links could be forged"
    ]
    assert said(run_check(ready, "december-2023"), Severity.ERROR) == []


@pytest.mark.parametrize("secret", ["short-secret", "change-me-to-a-long-random-string"])
def test_a_guessable_secret_is_refused_even_with_force(project: Path, secret: str) -> None:
    """--force overrides pre-flight errors, but not one that makes every member's unsubscribe
    link forgeable: nothing is sent and the line says what to do."""
    from support.helpers import run_cli

    from newsletter.records.journal import Journal

    env = {
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",  # never reached: the checks refuse first
        "NEWSLETTER_SMTP_PORT": "9",
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
        "NEWSLETTER_SECRET": secret,
    }
    done = run_cli(["send", "december-2023", "--yes", "--force"], env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "NEWSLETTER_SECRET" in done.stderr
    assert "a guessable NEWSLETTER_SECRET is never used, even with --force" in done.stderr
    with Journal.for_state_dir(project / ".newsletter") as journal:
        assert journal.counts("december-2023")["sent"] == 0
