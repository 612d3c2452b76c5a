"""`feedback` with no mailbox set up reads the journal alone: members the server refused at
RCPT are suppressed, and `status` shows its feedback line only once feedback ran."""

from __future__ import annotations

from pathlib import Path

from support.helpers import cli_env, first_member, run_cli

from newsletter.records.journal import Journal

SLUG = "december-2023"

# ---- feedback without a mailbox -----------------------------------------------------------


def test_feedback_without_imap_settings_suppresses_the_journals_rcpt_refusals(project) -> None:
    member = first_member(project)
    with Journal.for_state_dir(project / ".newsletter") as journal:
        from newsletter.mail.envelope import Envelope

        journal.mark_sending(SLUG, Envelope(to=member, row=2, message_id="<m1@x>", data=b""))
        journal.mark_failed(SLUG, member, "550 5.1.1 <x>: Recipient address rejected")
    env = cli_env()
    result = run_cli(["feedback"], env)
    assert result.returncode == 0, result.stderr
    assert "Mailbox not read: no IMAP server configured" in result.stdout
    assert "NEWSLETTER_IMAP_HOST" in result.stdout
    assert member in (project / "suppressed.csv").read_text(encoding="utf-8")
    check = run_cli(["check", SLUG], env)
    assert "1 suppressed member(s) skipped" in check.stdout, check.stdout


# ---- the status line of feedback --------------------------------------------------------------


def test_status_shows_no_feedback_line_before_feedback_ran(project: Path) -> None:
    env = cli_env()
    assert run_cli(["unsubscribe", "jane@nghealth.uk"], env).returncode == 0
    assert run_cli(["resubscribe", "jane@nghealth.uk"], env).returncode == 0
    assert (project / ".newsletter" / "feedback.sqlite3").is_file()
    status = run_cli(["status", SLUG], env)
    assert status.returncode == 0, status.stderr
    assert "feedback:" not in status.stdout
    assert run_cli(["feedback"], env).returncode == 0  # no mailbox: the journal alone
    after = run_cli(["status", SLUG], env)
    assert "feedback: bounced 0 (hard 0, soft 0), complained 0, unsubscribed 0" in after.stdout
