"""`status` and `list` say what the journal knows: sends whose issue file is gone, members
who unsubscribed during a send, a members' list that cannot be read, an issue file that
cannot be read, a typo of a sent issue's slug."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from support.helpers import (
    ARCHIVE_URL,
    cli_env,
    run_cli,
    write_dated_issue,
    write_three_members,
)
from support.smtp_servers import RecordingHandler, start_server

from newsletter.members.suppression import add_suppressed

SLUG = "december-2023"


def test_list_keeps_sends_whose_file_is_gone_and_says_draft(
    project: Path, plain_smtp_server
) -> None:
    """`list` is "from the journal alone": an issue sent and then deleted or renamed
    vanished from it; a draft read 'never sent' like any other."""
    write_three_members(project)
    write_dated_issue(project, "march", "2026-03-10")
    write_dated_issue(project, "a-rather-long-special-edition-slug", "2026-04-10", "draft: true\n")
    assert (
        run_cli(
            ["send", "march", "--yes"],
            env=cli_env(plain_smtp_server, NEWSLETTER_ARCHIVE_URL=ARCHIVE_URL),
        ).returncode
        == 0
    )
    (project / "issues" / "march.md").unlink()
    listed = run_cli(["list"]).stdout
    assert "march" in listed and "sent 3 of 3" in listed
    assert "no issue file march.md any more" in listed
    assert "a-rather-long-special-edition-slug never sent (draft)" in listed


def test_status_shows_the_record_when_the_members_list_cannot_be_read(
    project: Path, plain_smtp_server
) -> None:
    """A members CSV being edited (or re-exported without its address column) made
    `status` fail outright: the journal's record of who got the issue was not shown."""
    import json

    write_three_members(project)
    write_dated_issue(project, "march", "2026-03-10")
    env = cli_env(plain_smtp_server, NEWSLETTER_ARCHIVE_URL=ARCHIVE_URL)
    assert run_cli(["send", "march", "--yes"], env=env).returncode == 0
    (project / "recipients.csv").write_text("name,phone\nAnn,0121\n", encoding="utf-8")
    shown = run_cli(["status", "march"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert "sent 3" in shown.stdout
    assert "pending: not counted" in shown.stdout and "no 'email' column" in shown.stdout
    report = json.loads(run_cli(["status", "march", "--json"], env=env).stdout)
    assert report["counts"]["sent"] == 3 and report["pending"] is None
    assert "no 'email' column" in report["members_error"]
    missing = run_cli(["status", "march", "-r", "nope.csv"], env=env)
    assert "nope.csv: no such file" in missing.stdout


class SuppressesDuringTheSend(RecordingHandler):
    """Accepts everything; while the second message arrives, ``leavers`` are suppressed
    (the unsubscribe page running `newsletter unsubscribe`, a `feedback` run)."""

    def __init__(self, suppressed: Path, leavers: list[str]) -> None:
        super().__init__()
        self.suppressed, self.leavers = suppressed, leavers

    def record(self, server, envelope) -> None:
        super().record(server, envelope)
        if self.count() == 2:
            day = datetime.date(2026, 11, 29)
            add_suppressed(self.suppressed, self.leavers, reason="unsubscribed", today=day)


def test_list_after_a_send_done_calls_no_member_suppressed_during_it_pending(
    project: Path, tmp_path: Path
) -> None:
    # Before: `list` counted against the list's size when the send started, so two members
    # who unsubscribed while it went on read "sent 6 of 8; 2 pending" for ever, while the
    # send said Done and `status` "pending: 0".
    addresses = [f"member{n}@members.wmhtc.co.uk" for n in range(8)]
    rows = "".join(f"{a},Name{n},Surname\n" for n, a in enumerate(addresses))
    (project / "recipients.csv").write_text("email,first_name,last_name\n" + rows, "utf-8")
    leavers = addresses[5:7]
    handler = SuppressesDuringTheSend(project / "suppressed.csv", leavers)
    with start_server(handler, tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server)
        sent = run_cli(["send", "december-2023", "--yes"], env)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert handler.copies() == {a: 1 for a in addresses if a not in leavers}
        listed = run_cli(["list"], env)
        checked = run_cli(["check", "december-2023"], env)
    assert listed.returncode == 0, listed.stderr
    # `check` after the send: "READY to send to 6" read as if a send would mail them again.
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "READY to send to 6 member(s)" in checked.stdout
    assert "6 of them already have it: a send now mails 0." in checked.stdout
    line = next(x for x in listed.stdout.splitlines() if "december-2023" in x)
    assert "sent 6 of 6" in line and "pending" not in line, line


def test_status_of_a_typo_suggests_the_sent_issue_whose_file_is_gone(project: Path) -> None:
    # `status december-2023` still works once the file was renamed (the journal knows it),
    # but a typo of it suggested only the files: "did you mean dec-2023?", the unsent copy.
    from newsletter.records.journal import Journal

    with Journal.for_state_dir(project / ".newsletter") as journal:
        journal.record_test_send("december-2023", "chair@wmhtc.co.uk", "<a@wmhtc.co.uk>")
    (project / "issues" / "december-2023.md").rename(project / "issues" / "dec-2023.md")
    assert run_cli(["status", "december-2023"]).returncode == 0
    typo = run_cli(["status", "decmber-2023"])
    assert typo.returncode == 2
    assert "did you mean december-2023 (sent; its file is gone)?" in typo.stderr, typo.stderr


# ---- list ------------------------------------------------------------------------------------


def test_list_shows_an_unreadable_issue_and_the_subject_a_member_sees(project: Path) -> None:
    (project / "issues" / "zz-draft.md").write_text('---\ntitle: "unclosed\n', encoding="utf-8")
    issue = project / "issues" / f"{SLUG}.md"
    text = issue.read_text(encoding="utf-8")
    issue.write_text(
        re.sub(
            r"^subject: .*$",
            "subject: \"News for {{ recipient.first_name or 'Members' }}\"",
            text,
            count=1,
            flags=re.M,
        ),
        encoding="utf-8",
    )
    listed = run_cli(["list"])
    assert listed.returncode == 0, listed.stderr
    assert "zz-draft" in listed.stdout
    assert "cannot be read: issues/zz-draft.md:1:" in listed.stdout
    assert "subject: News for Members" in listed.stdout
    assert "recipient.first_name" not in listed.stdout
