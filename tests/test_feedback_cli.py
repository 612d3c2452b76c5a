"""`feedback` and `resubscribe` usage errors: one line, exit 2, nothing touched."""

from __future__ import annotations

from pathlib import Path

from test_send_cli import newsletter


def env(**extra: str) -> dict[str, str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    base.update(extra)
    return base


def test_no_imap_server_configured(project: Path) -> None:
    result = newsletter(project, env(NEWSLETTER_SMTP_HOST="mail.example.org"), "feedback")
    assert result.returncode == 2
    assert result.stderr.startswith("error: NEWSLETTER_IMAP_HOST: no IMAP server configured")
    assert len(result.stderr.strip().splitlines()) == 1


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
