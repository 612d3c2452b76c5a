"""Issue 17, items 4, 5 and a small one of 8: `check` says READY only when a real send would
start, and reports every problem at once.

The January trial: with no SMTP host `check` said READY and the send stopped at once; a
misspelt front-matter key stopped `check` at the first line, hiding the draft flag, a
broken picture path and the missing unsubscribe link until it was fixed; a member field
with a fallback but no such column refused everything although every member would simply
read the fallback."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from support.helpers import run_cli

GOOD = {
    "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk",
    "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
    "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
    "NEWSLETTER_SECRET": "a-long-random-test-secret",
}


def issue(project: Path, front: str, body: str) -> str:
    (project / "issues" / "january-2027.md").write_text(
        f"---\n{front}---\n{body}", encoding="utf-8"
    )
    return "january-2027"


FRONT = (
    "title: Cluster News – January 2027\nsubject: January 2027 news\n"
    "preheader: The skills fund, the January meeting and three new wearables.\n"
    "date: 2027-01-14\n"
)
BODY = "\n## The January meeting\n\nForty members met in Birmingham.\n"


def test_no_smtp_server_is_not_ready(project: Path) -> None:
    slug = issue(project, FRONT, BODY)
    without = {**GOOD, "NEWSLETTER_SMTP_HOST": ""}
    checked = run_cli(["check", slug], without)
    assert checked.returncode == 1, checked.stdout
    assert (
        "error: NEWSLETTER_SMTP_HOST: no SMTP server is set: a real send would stop at once"
        in checked.stdout
    )
    assert run_cli(["check", slug], GOOD).returncode == 0


def test_every_setting_the_send_needs_is_checked(project: Path) -> None:
    slug = issue(project, FRONT, BODY)
    no_password = {**GOOD, "NEWSLETTER_SMTP_USERNAME": "news@wmhtc.co.uk"}
    checked = run_cli(["check", slug], no_password)
    assert checked.returncode == 1
    assert "error: NEWSLETTER_SMTP_PASSWORD: a username is set but no password" in checked.stdout
    insecure = {**GOOD, "NEWSLETTER_SMTP_SECURITY": "none"}
    checked = run_cli(["check", slug], insecure)
    assert checked.returncode == 1
    assert "error: NEWSLETTER_SMTP_SECURITY: refusing an unencrypted connection" in checked.stdout
    # What check calls READY, a send gets past: the same rule (Settings.require_smtp).
    sent = run_cli(["send", slug, "--yes"], no_password)
    assert sent.returncode == 2 and "a username is set but no password" in sent.stderr


def test_front_matter_problems_are_findings_with_everything_else(project: Path) -> None:
    # The trial's issue: a misspelt subject key, still a draft, a picture path that does
    # not exist, and no unsubscribe link configured.
    front = FRONT.replace("subject:", "subjet:") + "draft: true\n"
    slug = issue(project, front, BODY + "\n![The meeting](photos/meeting.jpg)\n")
    no_unsubscribe = {k: v for k, v in GOOD.items() if "UNSUBSCRIBE" not in k}
    checked = run_cli(["check", slug], no_unsubscribe)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    errors = [line for line in checked.stdout.splitlines() if line.startswith("error: ")]
    path = Path("issues", "january-2027.md")
    assert (
        f"error: {path}:3: unknown key 'subjet': did you mean 'subject'? — rename it to 'subject:'"
        in errors
    )
    assert any(f"{path}:6: this issue is a draft" in line for line in errors), errors
    assert any("meeting.jpg" in line for line in errors), errors
    assert any(line.startswith("error: NEWSLETTER_UNSUBSCRIBE_URL: ") for line in errors), errors
    assert "NOT READY" in checked.stdout
    # A send still stops at the first problem, before anything else.
    sent = run_cli(["send", slug, "--yes"], GOOD)
    assert sent.returncode == 2 and "unknown key 'subjet'" in sent.stderr


def test_a_misspelt_draft_flag_is_not_ready(project: Path) -> None:
    slug = issue(project, FRONT + "Draft: true\n", BODY)
    checked = run_cli(["check", slug], GOOD)
    assert checked.returncode == 1, checked.stdout
    assert "unknown key 'Draft': did you mean 'draft'?" in checked.stdout
    # As the chair meant it, named as written at its own line (not 'draft: true' at line 1).
    path = project / "issues" / f"{slug}.md"
    line = path.read_text("utf-8").splitlines().index("Draft: true") + 1
    assert f"issues/{slug}.md:{line}: this issue is a draft (Draft: true)" in checked.stdout
    published = issue(project, FRONT + "archve: false\n", BODY)
    assert run_cli(["check", published], GOOD).returncode == 1


def test_a_member_field_with_a_fallback_and_no_column_is_a_warning(project: Path) -> None:
    body = BODY + '\nNews for {{ recipient.organisation or "your organisation" }}.\n'
    slug = issue(project, FRONT, body)
    members = project / "members.csv"
    members.write_text("email,first_name\nanna@nghealth.uk,Anna\n", encoding="utf-8")
    checked = run_cli(["check", slug, "-r", str(members)], GOOD)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    line = next(x for x in checked.stdout.splitlines() if "recipient.organisation" in x)
    assert line.startswith(f"warning: {Path('issues', 'january-2027.md')}:12: ")
    assert "every member reads the fallback 'your organisation'" in line
    dry = run_cli(["send", slug, "--dry-run", "-r", str(members)], GOOD)
    assert dry.returncode == 0, dry.stderr
    eml = next((project / "outbox" / slug).glob("*.eml")).read_bytes()
    message = email.message_from_bytes(eml, policy=email.policy.default)
    assert "News for your organisation." in message.get_body(("plain",)).get_content()
    # Without a fallback it is a gap in every message: an error, in the report too.
    slug = issue(project, FRONT, BODY + "\nNews for {{ recipient.organisation }}.\n")
    checked = run_cli(["check", slug, "-r", str(members)], GOOD)
    assert checked.returncode == 1
    assert "error: " in next(x for x in checked.stdout.splitlines() if "organisation" in x)
