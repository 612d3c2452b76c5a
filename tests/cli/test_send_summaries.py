"""What `send` prints: the subject members will see, the pacing given on the command line,
the progress rate once it means something, this run and the whole after a resume, who
already has it after the send, and the command that sends the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.helpers import FakeClock, cli_env, run_cli, write_issue, write_members
from support.projects import ROOT

from newsletter.sending.engine import DeliveryEvent

SLUG = "december-2023"

# ---- the summaries show the subject members will see -------------------------------------------


def test_dry_run_summary_shows_the_personalised_subject(project: Path) -> None:
    write_issue(
        project,
        "## Hello\n\nText.\n",
        subject='{{ recipient.first_name or "Member" }}, your January news',
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
    }
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "send", "probe", "--dry-run"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = lines.index('  subject:   {{ recipient.first_name or "Member" }}, your January news')
    assert lines[at + 1] == (
        '             e.g. "Priya, your January news" (priya.shah@nghealth.uk, row 2)'
    )


# ---- The summary before [y/N] shows the pacing the run will use ------------------------------


def test_send_summary_shows_the_pacing_given_on_the_command_line(
    project: Path, smtp_server
) -> None:
    write_members(project, 30)
    args = ["send", SLUG, "--rate", "20", "--connections", "2", "--batch-size", "10"]
    result = run_cli([*args, "--batch-pause", "5"], cli_env(smtp_server))
    # No terminal to answer [y/N] here: the summary is printed, then nothing is sent.
    assert result.returncode == 2 and "no terminal" in result.stderr
    assert "Pacing:    20 messages/minute, 2 connection(s), pause 5 s every 10" in result.stdout
    assert "about 2 minutes at 20 a minute" in result.stdout
    assert smtp_server.handler.count() == 0


# ---- Progress rate, and the words after a resume ---------------------------------------------


def _event(sent: int) -> DeliveryEvent:
    return DeliveryEvent("sent", f"m{sent}@x.org", sent, "250 OK", 1, sent, 0, 0, 0)


def test_progress_shows_no_rate_after_the_first_message(capsys) -> None:
    from newsletter.cli.views import deliver_with_progress

    clock = FakeClock()

    def run(on_event):
        clock.sleep(0.008)
        on_event(_event(1))
        return "result"

    assert deliver_with_progress(1, run, clock=clock) == "result"
    out = capsys.readouterr().out
    assert "sent 1" in out and "/min" not in out


def test_progress_shows_the_rate_once_it_means_something(capsys) -> None:
    from newsletter.cli.views import deliver_with_progress

    clock = FakeClock()

    def run(on_event):
        for n in range(1, 11):
            clock.sleep(6)
            on_event(_event(n))

    deliver_with_progress(10, run, clock=clock)
    assert "10/min" in capsys.readouterr().out


def test_a_resumed_send_says_this_run_and_the_whole(project: Path, smtp_server) -> None:
    write_members(project, 10)
    env = cli_env(smtp_server)
    first = run_cli(["send", SLUG, "--yes", "--limit", "3"], env)
    assert first.returncode == 0, first.stderr
    assert f"Done: '{SLUG}' sent to 3 member(s) in this run; 3 of 10 have it." in first.stdout
    rest = run_cli(["send", SLUG, "--yes"], env)
    assert rest.returncode == 0, rest.stderr
    assert f"Done: '{SLUG}' sent to 7 member(s) in this run; 10 of 10 have it." in rest.stdout
    again = run_cli(["send", SLUG, "--yes"], env)
    assert again.returncode == 0, again.stderr
    assert "Already:   all 10 member(s) have it: nothing to resume" in again.stdout
    assert "Resuming:" not in again.stdout
    assert smtp_server.handler.count() == 10


# ---- a dry run after the send ------------------------------------------------------------


def test_a_dry_run_after_the_send_says_who_already_has_it(project: Path, smtp_server) -> None:
    env = cli_env(smtp_server)
    sent = run_cli(["send", SLUG, "--yes"], env)
    assert sent.returncode == 0, sent.stderr
    dry = run_cli(["send", SLUG, "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    members = len(smtp_server.handler.messages)
    assert members >= 4
    assert f"will send: {members} message(s), written" not in dry.stdout
    assert f"written:   {members} message(s), every member's" in dry.stdout, dry.stdout
    assert f"will send: 0 message(s) now; {members} already have it (the journal)" in dry.stdout
    assert len(list((project / "outbox" / SLUG).glob("*.eml"))) == members  # the whole mailing


def test_a_limited_send_says_how_to_send_the_rest(project: Path, smtp_server) -> None:
    """README: every summary that leaves members to resume prints the command to run. A
    '--limit 1' send ended 'Pending: N' with no command (exit 0, as documented)."""
    done = run_cli(["send", SLUG, "--yes", "--limit", "1"], cli_env(smtp_server))
    assert done.returncode == 0, done.stdout + done.stderr
    assert smtp_server.handler.count() == 1
    line = next(x for x in done.stdout.splitlines() if x.startswith("Next:"))
    assert f"run 'newsletter send {SLUG}' for the other" in line
    rest = run_cli(["send", SLUG, "--yes"], cli_env(smtp_server))
    assert rest.returncode == 0 and "Next:" not in rest.stdout
    addresses = [rcpt for m in smtp_server.handler.messages for rcpt in m.rcpts]
    assert len(addresses) == len(set(addresses)) == smtp_server.handler.count() > 1
