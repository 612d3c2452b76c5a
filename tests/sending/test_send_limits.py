"""A send that stops cleanly at the provider's limits: real `newsletter send` processes
against real SMTP servers on 127.0.0.1 that start answering Gmail's and Microsoft 365's
quota replies after N messages, then recover; the daily cap; a server that goes away."""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pytest
from support.helpers import cli_env, newsletter, write_members
from support.smtp_servers import (
    GMAIL_DAILY_LIMIT,
    MICROSOFT_QUOTA,
    QuotaHandler,
    RecordingHandler,
    SameRefusalHandler,
    start_server,
)

SLUG = "december-2023"


def status_of(project: Path, env: dict[str, str], slug: str = SLUG) -> dict:
    result = newsletter(project, env, "status", slug, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("reply", "stage", "words"),
    [
        (GMAIL_DAILY_LIMIT, "RCPT", "Gmail's daily sending limit was reached"),
        (GMAIL_DAILY_LIMIT, "MAIL", "Gmail's daily sending limit was reached"),
        (MICROSOFT_QUOTA, "DATA", "Microsoft 365's daily recipient limit was reached"),
    ],
)
def test_quota_reply_stops_the_run_members_pending_then_rerun_sends_the_rest(
    project: Path, tmp_path: Path, reply: str, stage: str, words: str
) -> None:
    addresses = write_members(project, 12)
    bad = addresses[1]  # a real bounce before the quota: still that member's failure
    handler = QuotaHandler(5, reply, stage, unknown=[bad])
    with start_server(handler, tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server)
        first = newsletter(project, env, "send", SLUG, "--yes")
        assert first.returncode == 1, first.stderr
        assert f"Stopped:   {words}." in first.stdout
        assert f"Provider:  {reply[:40]}" in first.stdout
        assert "Next:      run the same command again in 24 hours (after " in first.stdout
        assert "Sent:      5   Failed: 1   Pending: 6   Unknown: 0" in first.stdout
        assert "error:" not in first.stderr and "Traceback" not in first.stderr
        assert handler.refused == 1  # stopped at once: no member after the first refusal
        record = status_of(project, env)
        assert record["counts"]["sent"] == 5 and record["counts"]["failed"] == 1
        assert [row["address"] for row in record["failures"]] == [bad]

        # The next day: the plain re-run sends exactly the rest, once each.
        handler.recover()
        again = newsletter(project, env, "send", SLUG, "--yes")
        assert again.returncode == 1, again.stderr  # the bad address is still failed
        assert "Sent:      11   Failed: 1   Pending: 0   Unknown: 0" in again.stdout
    copies = server.handler.copies()
    assert copies == {a: 1 for a in addresses if a != bad}


def test_same_refusal_of_different_members_trips_the_breaker(project: Path, tmp_path: Path) -> None:
    addresses = write_members(project, 14)
    handler = SameRefusalHandler(3)
    with start_server(handler, tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server)
        first = newsletter(project, env, "send", SLUG, "--yes")
        assert first.returncode == 1, first.stderr
        assert "refused 5 different members in a row with the same reply" in first.stdout
        assert "Provider:  554 5.7.1 Message rejected: policy" in first.stdout
        # The five refused members are pending, not failed: the sender was the problem.
        assert "Sent:      3   Failed: 0   Pending: 11   Unknown: 0" in first.stdout
        record = status_of(project, env)
        assert record["counts"]["failed"] == 0
        # Each returned member keeps the server's reply about *them* (status shows it).
        replies = {row["address"]: row["reply"] for row in record["deferred"]}
        assert len(replies) == 5
        assert all(f"<{address}>" in reply for address, reply in replies.items()), replies
        handler.left = 10**6
        again = newsletter(project, env, "send", SLUG, "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
    assert server.handler.copies() == {a: 1 for a in addresses}


class _Slow(RecordingHandler):
    async def handle_DATA(self, server, session, envelope) -> str:
        import asyncio

        await asyncio.sleep(0.03)
        return await super().handle_DATA(server, session, envelope)


def test_server_gone_mid_run_is_reported_as_such(project: Path, tmp_path: Path) -> None:
    write_members(project, 200)
    server = start_server(_Slow(), tls="starttls", auth=True, cafile_dir=tmp_path)
    env = cli_env(server, NEWSLETTER_RETRY_BASE_DELAY="0.01", NEWSLETTER_MAX_ATTEMPTS="2")

    finished = threading.Event()

    def stop_after_some() -> None:
        # Woken by the 5th message; a send that ended before it stops waiting at once.
        server.handler.wait_for(5, alive=lambda: not finished.is_set())
        server.stop()

    stopper = threading.Thread(target=stop_after_some)
    stopper.start()
    try:
        result = newsletter(project, env, "send", SLUG, "--yes")
    finally:
        finished.set()
        stopper.join()
    assert result.returncode == 1, result.stderr
    sent = server.handler.count()
    assert f"the server stopped answering after {sent} message(s)" in result.stdout
    assert "run the same command to resume" in result.stdout
    assert "NEWSLETTER_SMTP_HOST" not in result.stdout + result.stderr  # not a settings issue
    assert f"Sent:      {sent}   Failed: 0   Pending: {200 - sent}" in result.stdout


def test_daily_cap_holds_across_two_issues_sent_the_same_day(project: Path, tmp_path: Path) -> None:
    addresses = write_members(project, 5)
    issue = project / "issues" / f"{SLUG}.md"
    shutil.copy(issue, project / "issues" / "january-2024.md")
    with start_server(tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        # Unpaced (no NEWSLETTER_RATE; 127.0.0.1 is no known provider): the cap is counted
        # from the journal, not from time, so pacing would only make the test slow.
        env = cli_env(server, NEWSLETTER_DAILY_LIMIT="8")
        first = newsletter(project, env, "send", SLUG, "--yes")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "Today:     0 of 8 sent in the last 24 hours" in first.stdout
        assert "To send:   5\n" in first.stdout  # all of them: 5 fit the 8 left
        # A copy of the issue just sent: sent again on purpose (issue 17 refuses it unasked).
        second = newsletter(project, env, "send", "january-2024", "--yes", "--resend-of", SLUG)
        assert second.returncode == 1, second.stderr
        assert "Today:     5 of 8 sent in the last 24 hours (NEWSLETTER_DAILY_LIMIT); 3 left" in (
            second.stdout
        )
        assert "To send:   3" in second.stdout
        assert "Held back: 2 by the daily limit" in second.stdout
        assert "Daily limit: 2 member(s) stay pending; run 'newsletter send january-2024'" in (
            second.stdout
        )
        third = newsletter(project, env, "send", "january-2024", "--yes")
        assert third.returncode == 1 and "Nothing to send." in third.stdout
        assert server.handler.count() == 8
        # Raising the cap lets the plain re-run finish the issue.
        env["NEWSLETTER_DAILY_LIMIT"] = "10"
        last = newsletter(project, env, "send", "january-2024", "--yes")
        assert last.returncode == 0, last.stdout
    assert server.handler.copies() == {a: 2 for a in addresses}


def test_pre_send_summary_estimates_the_duration(project: Path, tmp_path: Path) -> None:
    write_members(project, 3)
    with start_server(tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server, NEWSLETTER_RATE="30")
        result = newsletter(project, env, "send", SLUG, "--limit", "1")  # no tty: refuses
    assert result.returncode == 2 and "add --yes" in result.stderr
    assert "To send:   1 (--limit 1 of 3 pending), under a minute at 30 a minute" in result.stdout
    assert server.handler.count() == 0


class _PasswordChangedAfter:
    """An authenticator that accepts the right password ``logins`` times, then refuses it
    (IT changed the mailbox's password, or switched SMTP AUTH off, mid-send)."""

    def __init__(self, logins: int) -> None:
        self.left = logins

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        from support.smtp_servers import authenticator

        ok = authenticator(server, session, envelope, mechanism, auth_data).success
        if ok and self.left > 0:
            self.left -= 1
            return AuthResult(success=True)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )


def test_sign_in_refused_mid_run_ends_with_the_final_summary(project: Path, tmp_path: Path) -> None:
    addresses = write_members(project, 12)
    auth = _PasswordChangedAfter(1)
    server = start_server(
        RecordingHandler(), tls="starttls", cafile_dir=tmp_path,
        authenticator=auth, auth_required=True,
    )  # fmt: skip
    with server:
        env = cli_env(server, NEWSLETTER_SMTP_MAX_PER_CONNECTION="5")
        first = newsletter(project, env, "send", SLUG, "--yes")
        # 5 went out on the first connection; the second sign-in was refused.
        assert first.returncode == 1, first.stdout + first.stderr
        assert "Sent:      5   Failed: 0   Pending: 7   Unknown: 0" in first.stdout
        assert "Stopped:   the server refused the sign-in after 5 message(s)." in first.stdout
        assert "535 5.7.8 Username and Password not accepted" in first.stdout
        assert "Next:      check NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD" in (
            first.stdout
        )
        assert f"newsletter send {SLUG}" in first.stdout
        assert "It resumes with the 7 pending member(s)" in first.stdout
        assert "Traceback" not in first.stderr and PASSWORD_TEXT not in first.stdout
        assert status_of(project, env)["counts"]["sent"] == 5
        auth.left = 10  # fixed: the password works again
        again = newsletter(project, env, "send", SLUG, "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
    assert server.handler.copies() == {a: 1 for a in addresses}


PASSWORD_TEXT = "s3cret-Pa55word"


def test_the_printed_resume_command_is_the_one_that_was_run(project: Path, tmp_path: Path) -> None:
    # The chair sent to another list than recipients.csv, past an invalid row; the quota
    # stopped the run. The command the summary prints must resume *that* send: the plain
    # 'newsletter send SLUG' would mail recipients.csv's members (or refuse the bad row).
    write_members(project, 3)  # recipients.csv: a different, older list
    members = [f"current{n}@members.wmhtc.co.uk" for n in range(8)]
    rows = "".join(f"{a},Name,Surname\n" for a in members) + "not-an-address,Bad,Row\n"
    (project / "members 2024.csv").write_text("email,first_name,last_name\n" + rows)
    handler = QuotaHandler(3, GMAIL_DAILY_LIMIT, "RCPT")
    with start_server(handler, tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server)
        args = ("send", SLUG, "-r", "members 2024.csv", "--skip-invalid", "--yes")
        first = newsletter(project, env, *args)
        assert first.returncode == 1, first.stdout + first.stderr
        next_line = next(line for line in first.stdout.splitlines() if line.startswith("Next:"))
        printed = next_line.split(": newsletter ", 1)[1]
        assert printed == f"send {SLUG} --recipients 'members 2024.csv' --skip-invalid"
        assert f"newsletter status {SLUG} --recipients 'members 2024.csv'" in first.stdout
        handler.recover()
        import shlex

        again = newsletter(project, env, *shlex.split(printed), "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
    assert server.handler.copies() == {a: 1 for a in members}


def test_deferred_members_end_with_the_command_that_retries_them(
    project: Path, tmp_path: Path
) -> None:
    from support.smtp_servers import MisbehavingHandler

    addresses = write_members(project, 6)
    handler = MisbehavingHandler(greylist=addresses[:2])  # 451 on the first try
    with start_server(handler, tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server, NEWSLETTER_MAX_ATTEMPTS="1")
        first = newsletter(project, env, "send", SLUG, "--yes")
        assert first.returncode == 1, first.stdout + first.stderr
        assert "Sent:      4   Failed: 0   Pending: 2   Unknown: 0" in first.stdout
        assert (
            f"Next:      run 'newsletter send {SLUG}' again later: it retries the 2 pending "
            "member(s); nobody gets a second copy." in first.stdout
        )
        again = newsletter(project, env, "send", SLUG, "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Next:" not in again.stdout
    assert server.handler.copies() == {a: 1 for a in addresses}


def test_test_copy_is_refused_once_the_daily_cap_is_reached(project: Path, tmp_path: Path) -> None:
    write_members(project, 3)
    with start_server(tls="starttls", auth=True, cafile_dir=tmp_path) as server:
        env = cli_env(server, NEWSLETTER_DAILY_LIMIT="4")
        first = newsletter(project, env, "send", SLUG, "--yes")
        assert first.returncode == 0, first.stdout + first.stderr
        copy = newsletter(project, env, "send", SLUG, "--test")  # the 4th of 4: it fits
        assert copy.returncode == 0, copy.stderr
        assert server.handler.count() == 4
        refused = newsletter(project, env, "send", SLUG, "--test")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert "daily cap reached: 4 of 4 sent in the last 24 hours" in lines[0]
        assert "NEWSLETTER_DAILY_LIMIT" in lines[0] and "the test copy was not sent" in lines[0]
        assert re.search(r"it can go after \d\d:\d\d", lines[0]), lines[0]
        assert server.handler.count() == 4  # nothing went out
        env["NEWSLETTER_DAILY_LIMIT"] = "5"  # a higher cap lets it go
        assert newsletter(project, env, "send", SLUG, "--test").returncode == 0
        assert server.handler.count() == 5
