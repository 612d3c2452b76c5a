"""Issue 17, item 1: a copy of a sent issue under another file name went to everyone again.

The January trial: `cp issues/january-2027.md issues/january-2027-final.md`, then `check
january-2027-final` said READY and the dry run "will send: 3". Now `check` errs and `send`
refuses, naming the earlier issue and how many members it reached; `--resend-of` sends it
anyway; `--force` does not. Real sends to an SMTP server on 127.0.0.1, the CLI in-process.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from support.helpers import run_cli
from support.smtp_servers import start_server

from newsletter.common.config import Settings
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks.copies import check_sent_before
from newsletter.sending.checks.findings import Check, Report, Severity

MEMBERS = ["anna@nghealth.uk", "ben@mmedtech.uk", "chen@cdhealth.uk"]
SENT = "january-2027"
COPY = "january-2027-final"
ARTICLE = (
    "The cluster met at the Birmingham innovation centre on the ninth of January. Forty "
    "members heard how the new regional skills fund will pay for training places in "
    "medical device manufacturing, and three start-ups showed their wearable monitors."
)


def env(port: int) -> dict[str, str]:
    return {
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",
        "NEWSLETTER_SMTP_PORT": str(port),
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
        "NEWSLETTER_TEST_TO": "chair@wmhtc.co.uk",
    }


def write_issue(project: Path, slug: str, article: str = ARTICLE, subject: str = "") -> Path:
    path = project / "issues" / f"{slug}.md"
    path.write_text(
        f"---\ntitle: Cluster News – January 2027\nsubject: {subject or 'January 2027 news'}\n"
        "preheader: The skills fund, the January meeting and three new wearables.\n"
        f"date: 2027-01-14\n---\n\n## The January meeting\n\n{article}\n",
        encoding="utf-8",
    )
    return path


def send_january(project: Path, port: int) -> None:
    rows = "".join(f"{address},{address[0].upper()}\n" for address in MEMBERS)
    (project / "recipients.csv").write_text("email,first_name\n" + rows, encoding="utf-8")
    write_issue(project, SENT)
    sent = run_cli(["send", SENT, "--yes"], env(port))
    assert sent.returncode == 0, sent.stdout + sent.stderr


def received(project: Path, slug: str = SENT) -> str:
    """When the journal says members got ``slug``, as the copy check words it."""
    with sqlite3.connect(project / ".newsletter" / "journal.sqlite3") as db:
        first, last = db.execute(
            "SELECT MIN(updated), MAX(updated) FROM deliveries WHERE slug = ? AND status = 'sent'",
            (slug,),
        ).fetchone()
    return f"on {first[:10]}" if first[:10] == last[:10] else f"{first[:10]} to {last[:10]}"


def test_a_copy_of_a_sent_issue_is_not_ready_and_not_sent(project: Path) -> None:
    with start_server() as server:
        send_january(project, server.port)
        shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
        checked = run_cli(["check", COPY], env(server.port))
        assert checked.returncode == 1, checked.stdout
        line = next(x for x in checked.stdout.splitlines() if "copy of" in x)
        assert line.startswith(f"error: {Path('issues', COPY + '.md')}:1: ")
        assert (
            f"this issue is a copy of '{SENT}' (100% of its text is the same): all 3 "
            f"member(s) on this list already received it {received(project)}; sent under "
            "this name, those 3 would get it again"
        ) in line
        assert f"--resend-of {SENT}" in line
        assert "NOT READY" in checked.stdout

        refused = run_cli(["send", COPY, "--yes"], env(server.port))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"a copy of '{SENT}'" in refused.stderr
        forced = run_cli(["send", COPY, "--yes", "--force"], env(server.port))
        assert forced.returncode == 2, forced.stdout + forced.stderr
        assert "--resend-of" in forced.stderr  # --force is not the way to send it again
        assert server.handler.copies() == {a: 1 for a in MEMBERS}  # nobody got it twice

        again = run_cli(["send", COPY, "--yes", "--resend-of", SENT], env(server.port))
        assert again.returncode == 0, again.stdout + again.stderr
        assert server.handler.copies() == {a: 2 for a in MEMBERS}  # as explicitly asked


def test_a_corrected_typo_is_still_the_same_issue_and_a_new_month_is_not(
    project: Path,
) -> None:
    with start_server() as server:
        send_january(project, server.port)
        # The copy corrects a word and the subject: still what the members got.
        fixed = ARTICLE.replace("three start-ups", "three young companies")
        write_issue(project, COPY, fixed, "January 2027 news (corrected)")
        typo = run_cli(["check", COPY], env(server.port))
        assert typo.returncode == 1 and f"a copy of '{SENT}'" in typo.stdout, typo.stdout

        february = (
            "The February meeting was held online. Twelve members discussed the new NHS "
            "procurement rules for digital tools, and the cluster opened applications for "
            "its spring mentoring programme, which pairs founders with experienced engineers."
        )
        write_issue(project, "february-2027", february, "February 2027 news")
        new = run_cli(["check", "february-2027"], env(server.port))
        assert new.returncode == 0, new.stdout
        assert "copy of" not in new.stdout and "READY to send to 3" in new.stdout


def test_the_dry_run_says_a_real_send_would_refuse_the_copy(project: Path) -> None:
    with start_server() as server:
        send_january(project, server.port)
    shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
    dry = run_cli(["send", COPY, "--dry-run"], env(1))
    assert dry.returncode == 0, dry.stderr
    assert "refused:   a real send would refuse this issue" in dry.stdout
    assert f"this issue is a copy of '{SENT}' (100% of" in dry.stdout
    assert f"all 3 member(s) on this list already received it {received(project)}" in dry.stdout


def test_a_send_recorded_before_the_journal_kept_texts_is_compared_by_its_file(
    project: Path,
) -> None:
    # Sent with the version before this one: the journal has no text for it. Its file is
    # still there, and is what the copy is compared with.
    with start_server() as server:
        send_january(project, server.port)
        with sqlite3.connect(project / ".newsletter" / "journal.sqlite3") as db:
            db.execute("DELETE FROM issue_texts")
        shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
        checked = run_cli(["check", COPY], env(server.port))
    assert checked.returncode == 1 and f"a copy of '{SENT}'" in checked.stdout, checked.stdout


def test_the_recorded_text_finds_a_copy_whose_original_file_was_edited_or_removed(
    project: Path,
) -> None:
    with start_server() as server:
        send_january(project, server.port)
        shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
        (project / "issues" / f"{SENT}.md").unlink()
        # An edit too, so that the rendered issue no longer hashes as the one sent: the
        # rename check cannot tell; the text can.
        path = project / "issues" / f"{COPY}.md"
        path.write_text(path.read_text("utf-8").replace("Forty", "Forty-one"), "utf-8")
        checked = run_cli(["check", COPY], env(server.port))
    assert checked.returncode == 1, checked.stdout
    assert f"a copy of '{SENT}' (" in checked.stdout
    assert "; its file is gone since): all 3 member(s) on this list" in checked.stdout


def test_resuming_the_copy_sent_on_purpose_and_the_original_is_no_copy(project: Path) -> None:
    with start_server() as server:
        send_january(project, server.port)
        shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
        sent = run_cli(["send", COPY, "--yes", "--resend-of", SENT], env(server.port))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        for slug in (COPY, SENT):  # each has its own record now: a re-run resumes it
            checked = run_cli(["check", slug], env(server.port))
            assert checked.returncode == 0, checked.stdout
            assert "copy of" not in checked.stdout


def test_resend_of_an_issue_it_does_not_copy_is_said_and_nothing_else(project: Path) -> None:
    with start_server() as server:
        send_january(project, server.port)
        february = (
            "Twelve members met online in February to discuss procurement rules for digital "
            "tools, and the cluster opened its spring mentoring programme for founders."
        )
        write_issue(project, "february-2027", february)
        checked = run_cli(["check", "february-2027", "--resend-of", SENT], env(server.port))
    assert checked.returncode == 0, checked.stdout
    assert f"warning: --resend-of: --resend-of {SENT} does nothing" in checked.stdout


def write_list(project: Path, name: str, addresses: list[str]) -> str:
    rows = "".join(f"{address},{address[0].upper()}\n" for address in addresses)
    (project / name).write_text("email,first_name\n" + rows, encoding="utf-8")
    return name


NEW_MEMBERS = ["dana@bcuhealth.uk", "eli@wmsurgical.uk"]


@pytest.mark.parametrize(
    ("members", "said", "again"),
    [
        pytest.param(MEMBERS[:1] + NEW_MEMBERS, "1 of the 3 member(s)", "that member", id="one"),
        pytest.param(MEMBERS[:2] + NEW_MEMBERS, "2 of the 4 member(s)", "those 2", id="partly"),
        # Another file with the same members (other case, other order): all of them.
        pytest.param(
            [a.upper() for a in reversed(MEMBERS)], "all 3 member(s)", "those 3", id="fully"
        ),
    ],
)
def test_another_list_is_told_how_many_of_its_members_got_the_copy(
    project: Path, members: list[str], said: str, again: str
) -> None:
    with start_server() as server:
        send_january(project, server.port)
        shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
        other = write_list(project, "other.csv", members)
        checked = run_cli(["check", COPY, "-r", other], env(server.port))
        assert checked.returncode == 1, checked.stdout
        line = next(x for x in checked.stdout.splitlines() if "copy of" in x)
        assert f": {said} on this list already received it {received(project)}; " in line
        assert f"sent under this name, {again} would get it again" in line
        assert "every one of them" not in line

        refused = run_cli(["send", COPY, "--yes", "-r", other], env(server.port))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"{said} on this list already received it" in refused.stderr
        assert server.handler.copies() == {a: 1 for a in MEMBERS}  # nobody got it twice


def test_another_list_that_shares_no_member_gets_the_copy_without_a_finding(
    project: Path,
) -> None:
    with start_server() as server:
        send_january(project, server.port)
        shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
        other = write_list(project, "other.csv", NEW_MEMBERS)
        checked = run_cli(["check", COPY, "-r", other], env(server.port))
        assert checked.returncode == 0, checked.stdout
        assert "copy of" not in checked.stdout and "READY to send to 2" in checked.stdout
        # --resend-of has nothing to allow then, and says so.
        resend = run_cli(["check", COPY, "-r", other, "--resend-of", SENT], env(server.port))
        assert resend.returncode == 0, resend.stdout
        assert (
            f"warning: --resend-of: --resend-of {SENT} does nothing: none of the members on "
            f"this list received '{SENT}'"
        ) in resend.stdout

        sent = run_cli(["send", COPY, "--yes", "-r", other], env(server.port))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert server.handler.copies() == dict.fromkeys(MEMBERS + NEW_MEMBERS, 1)


def test_when_the_list_cannot_be_read_the_copy_is_counted_by_the_journal(
    project: Path, settings: Settings
) -> None:
    # The list went missing after the campaign was prepared (its own check says so): the
    # copy is still an error, counted as the journal knows it.
    with start_server() as server:
        send_january(project, server.port)
    shutil.copy(project / "issues" / f"{SENT}.md", project / "issues" / f"{COPY}.md")
    campaign = campaign_mod.prepare(settings, COPY)
    (project / "recipients.csv").unlink()
    report = Report()
    check_sent_before(campaign, report)
    [finding] = report.findings
    assert (finding.check, finding.severity) == (Check.SENT_BEFORE, Severity.ERROR)
    assert f"a copy of '{SENT}' (100% of its text is the same), which 3 member(s)" in (
        finding.message
    )
    assert finding.message.endswith("those of them on the list would get it again")
