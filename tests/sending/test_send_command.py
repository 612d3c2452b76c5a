"""`newsletter send` end to end, as the chair runs it: a real process talking to a real SMTP
server on 127.0.0.1 (STARTTLS with a test CA, AUTH), the journal on disk."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.helpers import (
    ARCHIVE_URL,
    THREE_MEMBERS,
    cli_env,
    newsletter,
    run_cli,
    write_dated_issue,
    write_members,
    write_three_members,
)
from support.smtp_servers import PASSWORD, RecordingHandler, start_server

MEMBERS = 40
SLUG = "december-2023"


class SlowHandler(RecordingHandler):
    """Takes a while per message (``delay``), so a run can be interrupted half-way."""

    delay = 0.05

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def test_full_send_then_rerun_sends_nothing(project: Path, smtp_server) -> None:
    addresses = write_members(project)
    env = cli_env(smtp_server)
    first = newsletter(project, env, "send", "december-2023", "--yes")
    assert first.returncode == 0, first.stderr
    assert f"Sent:      {MEMBERS}" in first.stdout
    assert smtp_server.handler.copies() == {a: 1 for a in addresses}
    again = newsletter(project, env, "send", "december-2023", "--yes")
    assert again.returncode == 0, again.stderr
    assert f"Already:   all {MEMBERS} member(s) have it: nothing to resume" in again.stdout
    assert smtp_server.handler.count() == MEMBERS
    message = email.message_from_bytes(
        smtp_server.handler.messages[0].data, policy=email.policy.default
    )
    assert message["Subject"].startswith("Cluster News – December 2023")
    assert "Dear Name0," in message.get_body(("plain",)).get_content()
    status = json.loads(newsletter(project, env, "status", "december-2023", "--json").stdout)
    assert status["counts"]["sent"] == MEMBERS and status["failures"] == []
    listed = newsletter(project, env, "list").stdout
    assert f"sent {MEMBERS} of {MEMBERS}" in listed
    for result in (first, again):
        assert PASSWORD not in result.stdout + result.stderr


def test_limit_then_resume(project: Path, smtp_server) -> None:
    addresses = write_members(project)
    env = cli_env(smtp_server)
    part = newsletter(project, env, "send", "december-2023", "--yes", "--limit", "7")
    assert part.returncode == 0, part.stderr
    assert smtp_server.handler.count() == 7
    rest = newsletter(project, env, "send", "december-2023", "--yes")
    assert "Resuming:  7 of 40 already sent" in rest.stdout
    assert smtp_server.handler.copies() == {a: 1 for a in addresses}


def test_test_send_never_touches_member_record(project: Path, smtp_server) -> None:
    write_members(project)
    env = cli_env(smtp_server)
    result = newsletter(
        project, env, "send", "december-2023", "--test", "--as", "member3@members.wmhtc.co.uk"
    )
    assert result.returncode == 0, result.stderr
    assert smtp_server.handler.count() == 1
    received = smtp_server.handler.messages[0]
    assert received.rcpts == ("chair@wmhtc.co.uk",)
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert message["Subject"].startswith("[TEST] Cluster News")
    assert message["To"] == "chair@wmhtc.co.uk"
    assert "Dear Name3," in message.get_body(("plain",)).get_content()
    status = json.loads(newsletter(project, env, "status", "december-2023", "--json").stdout)
    assert status["counts"]["sent"] == 0 and len(status["test_sends"]) == 1
    assert "test-sent" in newsletter(project, env, "list").stdout
    full = newsletter(project, env, "send", "december-2023", "--yes")
    assert full.returncode == 0 and smtp_server.handler.copies()["member3@members.wmhtc.co.uk"] == 1


def test_test_send_as_an_unsubscribed_member_in_any_case(project: Path, smtp_server) -> None:
    # The chair checks how an unsubscribed member's copy looks, typing the address as the
    # export has it (upper case): "is not a member in the list" was false (the preview
    # showed the same member); the copy goes to the chair, never to the member.
    write_members(project, 5)
    env = cli_env(smtp_server)
    assert newsletter(project, env, "unsubscribe", "member2@members.wmhtc.co.uk").returncode == 0
    result = newsletter(
        project, env, "send", "december-2023", "--test", "--as", "MEMBER2@Members.WMHTC.co.uk"
    )
    assert result.returncode == 0, result.stderr
    (received,) = smtp_server.handler.messages
    assert received.rcpts == ("chair@wmhtc.co.uk",)
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert "Dear Name2," in message.get_body(("plain",)).get_content()
    missing = newsletter(project, env, "send", "december-2023", "--test", "--as", "x@wmhtc.co.uk")
    assert missing.returncode == 2 and "x@wmhtc.co.uk is not a member in the list" in missing.stderr


def test_refusals_send_nothing(project: Path, smtp_server) -> None:
    write_members(project)
    no_tty = newsletter(project, cli_env(smtp_server), "send", "december-2023")
    assert no_tty.returncode == 2 and "add --yes" in no_tty.stderr
    no_unsub = newsletter(
        project,
        cli_env(smtp_server, NEWSLETTER_UNSUBSCRIBE_URL=""),
        "send",
        "december-2023",
        "--yes",
    )
    assert no_unsub.returncode == 2 and "no unsubscribe link" in no_unsub.stderr
    (project / "recipients.csv").write_text(
        "email,first_name\nok@nghealth.uk,A\nbroken-address,B\n", encoding="utf-8"
    )
    invalid = newsletter(project, cli_env(smtp_server), "send", "december-2023", "--yes")
    assert invalid.returncode == 2 and "invalid address" in invalid.stderr
    assert smtp_server.handler.count() == 0
    skipped = newsletter(
        project, cli_env(smtp_server), "send", "december-2023", "--yes", "--skip-invalid"
    )
    assert skipped.returncode == 0, skipped.stderr
    assert smtp_server.handler.copies() == {"ok@nghealth.uk": 1}


def test_bad_password_is_one_line_and_nothing_marked_sent(project: Path, smtp_server) -> None:
    write_members(project, 3)
    env = cli_env(smtp_server, NEWSLETTER_SMTP_PASSWORD="wrong-password-123")
    result = newsletter(project, env, "send", "december-2023", "--yes")
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"{smtp_server.host}:{smtp_server.port}" in error[0]
    assert "wrong-password-123" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    status = json.loads(newsletter(project, env, "status", "december-2023", "--json").stdout)
    assert status["counts"]["sent"] == 0


def test_ctrl_c_mid_send_then_resume_exactly_once(project: Path, tmp_path: Path) -> None:
    addresses = write_members(project, 60)
    with start_server(SlowHandler(), tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server)
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", "december-2023", "--yes"],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Woken by the 10th message (or by the sender ending early: then the checks fail).
        server.handler.wait_for(10, alive=lambda: proc.poll() is None)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Re-run 'newsletter send december-2023' to resume" in err
        assert "Traceback" not in err
        got = server.handler.count()
        assert 10 <= got < 60
        server.handler.delay = 0  # the resumed run need not be slow
        rerun = newsletter(project, env, "send", "december-2023", "--yes")
        assert rerun.returncode == 0, rerun.stderr
        copies = server.handler.copies()
        assert copies == {a: 1 for a in addresses}


class RefusesSenderAfter(RecordingHandler):
    """Accepts ``count`` messages, then refuses the sender for good (account suspended)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count_left = count

    async def handle_MAIL(self, server, session, envelope, address, options) -> str:
        if self.count_left <= 0:
            return "550 5.7.1 sender suspended"
        self.count_left -= 1
        envelope.mail_from = address
        return "250 OK"


def test_server_unusable_mid_run_reports_progress_and_exits_1(
    project: Path, tmp_path: Path
) -> None:
    write_members(project, 8)
    with start_server(
        RefusesSenderAfter(3), tls="starttls", auth=True, cafile_dir=tmp_path
    ) as server:
        result = newsletter(project, cli_env(server), "send", "december-2023", "--yes")
    # Refused at MAIL FROM after messages went out: a stop with the final summary, the
    # member being tried back to pending, not an error line about settings.
    assert result.returncode == 1, result.stderr
    assert "the server stopped accepting the sender after 3 message(s)" in result.stdout
    assert "Provider:  550 5.7.1 sender suspended" in result.stdout
    assert "Sent:      3   Failed: 0   Pending: 5   Unknown: 0" in result.stdout
    assert "error:" not in result.stderr


def test_refused_test_copy_is_one_line(project: Path, tmp_path: Path) -> None:
    write_members(project, 2)
    with start_server(_RefuseRcpt(), tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server, NEWSLETTER_TEST_TO="bad-mailbox@wmhtc.co.uk")
        result = newsletter(project, env, "send", "december-2023", "--test")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "was not accepted: 550" in lines[0]


class _RefuseRcpt(RecordingHandler):
    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        return "550 5.1.1 no such user"


def test_second_send_of_the_same_issue_waits_its_turn(project: Path, smtp_server) -> None:
    import fcntl

    write_members(project, 2)
    state = project / ".newsletter"
    state.mkdir()
    with (state / "send-december-2023.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242\n")
        held.flush()
        result = newsletter(project, cli_env(smtp_server), "send", "december-2023", "--yes")
    assert result.returncode == 2 and "another send of 'december-2023' is running" in result.stderr
    assert smtp_server.handler.count() == 0
    assert (
        newsletter(project, cli_env(smtp_server), "send", "december-2023", "--yes").returncode == 0
    )


def test_bad_unsubscribe_url_and_preview_port(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_UNSUBSCRIBE_URL"] = "https://x.org/?e={email}\r\nBcc: v@example.org"
    bad = newsletter(project, env, "send", "december-2023", "--dry-run")
    assert bad.returncode == 2 and "NEWSLETTER_UNSUBSCRIBE_URL" in bad.stderr
    port = newsletter(project, env, "preview", "--port", "99999", "--no-open")
    assert port.returncode == 2 and "internal error" not in port.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal (POSIX)")
def test_ctrl_c_at_the_question_says_nothing_was_sent(project: Path, smtp_server) -> None:
    import pty
    import select

    write_members(project, 3)
    env = cli_env(smtp_server)
    pid, fd = pty.fork()
    if pid == 0:  # the child: newsletter on a terminal, as the chair runs it
        os.chdir(project)
        os.execvpe(sys.executable, [sys.executable, "-m", "newsletter", "send", SLUG], env)
    output, asked, quiet = b"", False, 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            # A SIGINT that lands after the prompt is printed but before input() blocks
            # in read() only sets Python's flag: the read then waits for a key, as it would
            # for a chair (who presses Ctrl-C again). Press it again after 2 quiet seconds
            # instead of waiting for ever (this hung the suite on a fresh machine).
            quiet += 1
            if asked and quiet % 10 == 0:
                os.write(fd, b"\x03")
            continue
        quiet = 0
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if b"[y/N]" in output and not asked:
            os.write(fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT
            asked = True
    finished, status = os.waitpid(pid, os.WNOHANG)
    stop_by = time.monotonic() + 15  # the terminal closes a moment before the exit status
    while not finished and time.monotonic() < stop_by:
        time.sleep(0.05)
        finished, status = os.waitpid(pid, os.WNOHANG)
    if not finished:  # never block the suite on a child that did not stop
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail(f"newsletter did not stop on Ctrl-C: {output.decode('utf-8', 'replace')}")
    text = output.decode("utf-8", "replace")
    assert asked, text
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert "nothing was sent" in text.split("[y/N]", 1)[1], text
    assert "Traceback" not in text
    assert smtp_server.handler.count() == 0


def test_an_issue_renamed_after_its_send_is_not_sent_to_everyone_again(
    project: Path, plain_smtp_server
) -> None:
    """Members are journalled by slug: 'january.md' sent, then renamed 'january-2026.md',
    passed `check` as READY and a send mailed every member a second copy."""
    write_three_members(project)
    write_dated_issue(project, "january", "2026-01-10")
    env = cli_env(plain_smtp_server, NEWSLETTER_ARCHIVE_URL=ARCHIVE_URL)
    assert run_cli(["send", "january", "--yes"], env=env).returncode == 0
    assert plain_smtp_server.handler.count() == len(THREE_MEMBERS)
    issues = project / "issues"
    (issues / "january.md").rename(issues / "january-2026.md")
    check = run_cli(["check", "january-2026"], env=env)
    assert check.returncode == 1
    assert "already sent to 3 member(s) as 'january'" in check.stdout + check.stderr
    assert "issues/january.md" in check.stdout + check.stderr
    refused = run_cli(["send", "january-2026", "--yes"], env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert plain_smtp_server.handler.count() == len(THREE_MEMBERS)  # nobody got a second copy
    # An issue of its own (another text) is not taken for the renamed one.
    write_dated_issue(project, "february", "2026-02-10")
    assert run_cli(["check", "february"], env=env).returncode == 0
    # Nor is the one renamed back: that is a resume, with nothing left to send.
    (issues / "january-2026.md").rename(issues / "january.md")
    again = run_cli(["send", "january", "--yes"], env=env)
    assert again.returncode == 0, again.stderr
    assert plain_smtp_server.handler.count() == len(THREE_MEMBERS)


def test_force_never_sends_without_an_unsubscribe_link_and_says_what_it_overrode(
    project: Path, smtp_server
) -> None:
    """The missing-unsubscribe refusal said 'or add --force'; with --force the progress bar
    started before delivery refused (exit 2). And a forced send's summary said 'Checks:
    passed' above the question although a check had failed."""
    bare = cli_env(smtp_server, NEWSLETTER_UNSUBSCRIBE_URL="", NEWSLETTER_UNSUBSCRIBE_MAILTO="")
    for extra in ([], ["--force"]):
        refused = run_cli(["send", SLUG, "--yes", *extra], bare)
        assert refused.returncode == 2, refused.stdout
        assert "add --force" not in refused.stderr
        assert "never sent, even with --force" in refused.stderr
        assert "Sending" not in refused.stdout and smtp_server.handler.count() == 0
    # A forceable error (a template tag in the body) goes out with --force, and says so.
    issue = project / "issues" / f"{SLUG}.md"
    issue.write_text(
        issue.read_text(encoding="utf-8") + "\n{% if x %}hi{% endif %}\n", encoding="utf-8"
    )
    forced = run_cli(["send", SLUG, "--yes", "--force"], cli_env(smtp_server))
    assert forced.returncode == 0, forced.stdout + forced.stderr
    checks = next(x for x in forced.stdout.splitlines() if x.startswith("Checks:"))
    assert "overridden with --force" in checks and "passed" not in checks
