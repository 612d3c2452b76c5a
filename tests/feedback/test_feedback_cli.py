"""`feedback` and `resubscribe` usage errors: one line, exit 2, nothing touched."""

from __future__ import annotations

from pathlib import Path

from support.helpers import newsletter


def env(**extra: str) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    base.update(extra)
    return base


def test_no_imap_server_configured(project: Path) -> None:
    """No mailbox to read: the journal's RCPT refusals are still acted on (see
    test_feedback_without_mailbox), and one line says the mailbox was not read and what would add it."""
    result = newsletter(project, env(NEWSLETTER_SMTP_HOST="mail.example.org"), "feedback")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "IMAP" in line]
    assert len(lines) == 1 and lines[0].startswith("Mailbox not read: no IMAP server configured")
    assert "NEWSLETTER_IMAP_HOST" in lines[0]
    # --move-to needs the mailbox: still the one-line setting error.
    moved = newsletter(
        project, env(NEWSLETTER_SMTP_HOST="mail.example.org"), "feedback", "--move-to", "Done"
    )
    assert moved.returncode == 2
    assert moved.stderr.startswith("error: NEWSLETTER_IMAP_HOST: no IMAP server configured")


def test_plain_imap_to_a_remote_host_is_refused(project: Path) -> None:
    result = newsletter(
        project,
        env(NEWSLETTER_IMAP_HOST="imap.example.org", NEWSLETTER_IMAP_SECURITY="none"),
        "feedback",
    )
    assert result.returncode == 2 and "NEWSLETTER_IMAP_SECURITY" in result.stderr


def test_bad_since_date(project: Path) -> None:
    result = newsletter(project, env(), "feedback", "--since", "01/12/2023")
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr


def test_resubscribe_someone_not_suppressed(project: Path) -> None:
    (project / "suppressed.csv").write_text("email,reason,date\na@example.org,bounced,\n")
    result = newsletter(project, env(), "resubscribe", "b@example.org")
    assert result.returncode == 2 and "not on the suppression list" in result.stderr
    done = newsletter(project, env(), "resubscribe", "A@example.org", "--reason", "fixed")
    assert done.returncode == 0, done.stderr
    assert (project / "suppressed.csv").read_text() == "email,reason,date\n"
