"""Found by trying the integrated product end to end, as the chair would (two monthly
routines against a real STARTTLS + AUTH server): what the merges broke between features."""

from __future__ import annotations

import datetime
import email
import os
from email.policy import default
from pathlib import Path

from helpers import run_cli
from smtp_servers import PASSWORD, USERNAME, RecordingHandler, start_server

from newsletter.members.suppression import add_suppressed


def test_new_reads_the_issues_path_as_tab_completion_writes_it(project: Path) -> None:
    # Every command takes `issues/SLUG.md` for SLUG (README, Writing an issue); `new` refused
    # it as "not a usable slug" while accepting `SLUG.md`.
    result = run_cli(["new", "issues/february-2027.md"])
    assert result.returncode == 0, result.stderr
    assert (project / "issues" / "february-2027.md").is_file()
    assert "2027-02-01" in result.stdout
    assert not (project / "issues" / "issues").exists()


def test_new_still_refuses_a_path_into_another_folder(project: Path) -> None:
    result = run_cli(["new", "drafts/february-2027.md"])
    assert result.returncode == 2
    assert "not a usable slug" in result.stderr
    assert not list(project.rglob("february-2027.md"))


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
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(
            NEWSLETTER_SMTP_HOST=server.host,
            NEWSLETTER_SMTP_PORT=str(server.port),
            NEWSLETTER_SMTP_CAFILE=str(server.cafile),
            NEWSLETTER_SMTP_USERNAME=USERNAME,
            NEWSLETTER_SMTP_PASSWORD=PASSWORD,
            NEWSLETTER_FROM="Cluster News <news@wmhtc.co.uk>",
            NEWSLETTER_UNSUBSCRIBE_URL="https://wmhtc.co.uk/u?t={token}",
            NEWSLETTER_SECRET="test-secret-long-enough",
        )
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


def test_test_copy_addresses_may_be_pasted_as_outlook_copies_them(
    project: Path, tmp_path: Path
) -> None:
    # NEWSLETTER_TEST_TO takes semicolons "as Outlook writes them", and Outlook's To line is
    # "Deputy Chair <deputy@…>; …"; `unsubscribe` reads that form, --to refused it.
    with start_server(tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(
            NEWSLETTER_SMTP_HOST=server.host,
            NEWSLETTER_SMTP_PORT=str(server.port),
            NEWSLETTER_SMTP_CAFILE=str(server.cafile),
            NEWSLETTER_SMTP_USERNAME=USERNAME,
            NEWSLETTER_SMTP_PASSWORD=PASSWORD,
            NEWSLETTER_FROM="Cluster News <news@wmhtc.co.uk>",
            NEWSLETTER_TEST_TO="chair@wmhtc.co.uk; Deputy Chair <deputy@wmhtc.co.uk>",
        )
        by_setting = run_cli(["send", "december-2023", "--test"], env)
        assert by_setting.returncode == 0, by_setting.stderr
        as_zoe = ["--as", "Zoë Brennan <zoe.brennan@mmedtech.uk>"]  # --as pasted too
        by_flag = run_cli(
            ["send", "december-2023", "--test", "--to", "Ann Lee <ann@wmhtc.co.uk>", *as_zoe],
            env,
        )
        assert by_flag.returncode == 0, by_flag.stderr
        copies = server.handler.copies()
        last = email.message_from_bytes(server.handler.messages[-1].data, policy=default)
    assert copies == {"chair@wmhtc.co.uk": 1, "deputy@wmhtc.co.uk": 1, "ann@wmhtc.co.uk": 1}
    assert "Dear Zoë," in last.get_body(("plain",)).get_content()


def test_as_takes_a_member_pasted_with_their_name(project: Path) -> None:
    # --as for `preview` and `send --test` refused "Zoë Brennan <zoe@…>" as "not a member"
    # although it names one, while --to, unsubscribe and the list all read that form.
    member = "Zoë Brennan <zoe.brennan@mmedtech.uk>"
    assert "zoe.brennan@mmedtech.uk" in (project / "recipients.csv").read_text("utf-8")
    result = run_cli(["preview", "december-2023", "--as", member, "--out", "p.html"])
    assert result.returncode == 0, result.stderr
    assert "Dear Zoë," in (project / "p.html").read_text("utf-8")


def test_check_with_skip_invalid_agrees_with_the_send_that_leaves_them_out(
    project: Path,
) -> None:
    """A chair who always sends with --skip-invalid saw NOT READY (exit 1) from every
    month's check: check could not be asked the question the send would answer."""
    from helpers import run_cli

    members = project / "recipients.csv"
    members.write_text(
        members.read_text(encoding="utf-8") + "not-an-address,Broken,Row,Nowhere\n",
        encoding="utf-8",
    )
    env = {
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
        "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk",  # READY needs a server to send through
    }
    plain = run_cli(["check", "december-2023"], env=env)
    assert plain.returncode == 1 and "invalid address(es)" in plain.stdout
    assert "error: " in next(x for x in plain.stdout.splitlines() if "invalid address" in x)
    waived = run_cli(["check", "december-2023", "--skip-invalid"], env=env)
    assert waived.returncode == 0, waived.stdout
    line = next(x for x in waived.stdout.splitlines() if "invalid address" in x)
    assert line.startswith("warning: ") and line.endswith("left out (--skip-invalid)")
    assert "READY to send to" in waived.stdout
