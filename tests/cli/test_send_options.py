"""Options that cannot be misread: every combination in which an option would be ignored
(or, like --to without --test, turn a test into a mass mailing) is a usage error, exit 2,
with nothing sent — checked against a real SMTP server on 127.0.0.1 that would accept all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.helpers import cli_env, newsletter, write_members

from newsletter.cli.commands import main
from newsletter.common.config import load_settings
from newsletter.common.errors import ConfigError

SLUG = "december-2023"

REFUSED = [
    (["--to", "me@example.org", "--yes"], "--to needs --test"),
    (["--to", "me@example.org"], "--to needs --test"),
    (["--as", "member1@example.org", "--yes"], "--as needs --test"),
    (["--dry-run", "--test"], "--dry-run and --test do not go together"),
    (["--out", "x", "--yes"], "--out needs --dry-run"),
    (["--test", "--out", "x"], "--out needs --dry-run"),
    (["--dry-run", "--limit", "3"], "--limit does nothing with --dry-run"),
    (["--dry-run", "--retry-failed"], "--retry-failed does nothing with --dry-run"),
    (["--dry-run", "--resend-unknown"], "--resend-unknown does nothing with --dry-run"),
    (["--dry-run", "--yes"], "--yes does nothing with --dry-run"),
    (["--dry-run", "--connections", "2"], "--connections does nothing with --dry-run"),
    (["--dry-run", "--rate", "10"], "--rate does nothing with --dry-run"),
    (["--dry-run", "--batch-size", "5"], "--batch-size does nothing with --dry-run"),
    (["--dry-run", "--batch-pause", "5"], "--batch-pause does nothing with --dry-run"),
    (["--dry-run", "--skip-invalid"], "--skip-invalid does nothing with --dry-run"),
    (["--dry-run", "--force"], "--force does nothing with --dry-run"),
    (["--dry-run", "--changed-ok"], "--changed-ok does nothing with --dry-run"),
    (["--test", "--yes"], "--yes does nothing with --test"),
    (["--test", "--limit", "1"], "--limit does nothing with --test"),
    (["--test", "--retry-failed"], "--retry-failed does nothing with --test"),
    (["--test", "--resend-unknown"], "--resend-unknown does nothing with --test"),
    (["--test", "--connections", "2"], "--connections does nothing with --test"),
    (["--test", "--rate", "5"], "--rate does nothing with --test"),
    (["--test", "--batch-size", "5"], "--batch-size does nothing with --test"),
    (["--test", "--batch-pause", "1"], "--batch-pause does nothing with --test"),
    (["--test", "--skip-invalid"], "--skip-invalid does nothing with --test"),
    (["--test", "--force"], "--force does nothing with --test"),
    (["--test", "--changed-ok"], "--changed-ok does nothing with --test"),
]


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    captured = capsys.readouterr()
    return int(stopped.value.code or 0), captured.out + captured.err


@pytest.mark.parametrize(("extra", "message"), REFUSED)
def test_misleading_send_options_are_refused_and_nothing_is_sent(
    project: Path,
    smtp_server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    write_members(project, 3)
    for name, value in cli_env(smtp_server).items():
        if name.startswith("NEWSLETTER_"):
            monkeypatch.setenv(name, value)
    before = smtp_server.handler.count()
    code, output = run_main(["send", SLUG, *extra], capsys)
    assert code == 2, output
    assert message in output
    assert smtp_server.handler.count() == before
    assert not (project / "outbox").exists() and not (project / "x").exists()
    assert not (project / ".newsletter").exists()  # no journal, no lock: nothing started


@pytest.mark.parametrize(
    "extra", [["--out", "page.html", "--port", "8000"], ["--out", "page.html", "--no-open"]]
)
def test_preview_server_options_with_out_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    code, output = run_main(["preview", SLUG, *extra], capsys)
    assert code == 2 and "does nothing with --out" in output
    assert not (project / "page.html").exists()


def test_login_status_with_device_code_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_main(["login", "--status", "--device-code"], capsys)
    assert code == 2 and "--device-code does nothing with --status" in output


def test_the_forgotten_test_flag_as_a_new_user_types_it(project: Path, smtp_server) -> None:
    """The issue's own example, end to end in a real process: nothing reaches anyone."""
    write_members(project, 3)
    before = smtp_server.handler.count()
    result = newsletter(
        project, cli_env(smtp_server), "send", SLUG, "--to", "me@example.org", "--yes"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --to needs --test (without --test the issue goes to every member; nothing was sent)"
    ]
    assert smtp_server.handler.count() == before


def test_test_to_setting_takes_several_addresses_and_errors_name_it(
    project: Path, smtp_server
) -> None:
    write_members(project, 2)
    env = cli_env(smtp_server, NEWSLETTER_TEST_TO="chair@wmhtc.co.uk, editor@wmhtc.co.uk")
    before = smtp_server.handler.count()
    sent = newsletter(project, env, "send", SLUG, "--test")
    assert sent.returncode == 0, sent.stderr
    assert [m.rcpts for m in smtp_server.handler.messages[before:]] == [
        ("chair@wmhtc.co.uk",),
        ("editor@wmhtc.co.uk",),
    ]
    bad = newsletter(
        project, cli_env(smtp_server, NEWSLETTER_TEST_TO="chair@wmhtc.co.uk,not-an-address"),
        "send", SLUG, "--test",
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: NEWSLETTER_TEST_TO: 'not-an-address'")
    assert "--to" not in bad.stderr
    worse = newsletter(project, env, "send", SLUG, "--test", "--to", "nope")
    assert worse.returncode == 2 and worse.stderr.startswith("error: --to: 'nope'")
    assert smtp_server.handler.count() == before + 2
    # Outlook separates addresses with semicolons; a chair copies the habit.
    outlook = cli_env(smtp_server, NEWSLETTER_TEST_TO="chair@wmhtc.co.uk; editor@wmhtc.co.uk;")
    semis = newsletter(project, outlook, "send", SLUG, "--test")
    assert semis.returncode == 0, semis.stderr
    assert [m.rcpts for m in smtp_server.handler.messages[before + 2 :]] == [
        ("chair@wmhtc.co.uk",),
        ("editor@wmhtc.co.uk",),
    ]


def test_security_mode_is_case_insensitive(tmp_path: Path) -> None:
    environ = {"NEWSLETTER_SMTP_HOST": "localhost", "NEWSLETTER_SMTP_SECURITY": "None"}
    assert load_settings(environ, dotenv_path=None).smtp_security == "none"
    environ["NEWSLETTER_SMTP_SECURITY"] = "STARTTLS"
    assert load_settings(environ, dotenv_path=None).port == 587
    environ["NEWSLETTER_SMTP_SECURITY"] = "tls"
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_SECURITY"):
        load_settings(environ, dotenv_path=None)


@pytest.mark.parametrize(
    ("host", "limit"),
    [("smtp.office365.com", 10_000), ("smtp.gmail.com", 2_000), ("mail.example.org", 0)],
)
def test_daily_limit_defaults_by_provider(host: str, limit: int) -> None:
    environ = {"NEWSLETTER_SMTP_HOST": host}
    assert load_settings(environ, dotenv_path=None).daily_limit == limit
    environ["NEWSLETTER_DAILY_LIMIT"] = "300"
    assert load_settings(environ, dotenv_path=None).daily_limit == 300
    environ["NEWSLETTER_DAILY_LIMIT"] = "-1"
    with pytest.raises(ConfigError, match="NEWSLETTER_DAILY_LIMIT"):
        load_settings(environ, dotenv_path=None)


def test_status_of_an_unknown_issue_names_the_issues(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    result = newsletter(project, env, "status", "nosuch")
    assert result.returncode == 2
    assert "no issue called 'nosuch'" in result.stderr and "december-2023" in result.stderr


def test_status_counts_pending_members_and_list_counts_from_the_journal(
    project: Path, smtp_server
) -> None:
    write_members(project, 10)
    env = cli_env(smtp_server)
    sent = newsletter(project, env, "send", SLUG, "--yes", "--limit", "4")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    record = json.loads(newsletter(project, env, "status", SLUG, "--json").stdout)
    assert record["members"] == 10 and record["pending"] == 6
    assert "pending: 6 of the 10 member(s)" in newsletter(project, env, "status", SLUG).stdout
    # Today's CSV shrinks: the list still says what the send reached.
    write_members(project, 2)
    listed = newsletter(project, env, "list").stdout
    assert "sent 4 of 10; 6 pending" in listed


def test_a_changed_issue_asks_again_even_with_yes(project: Path, smtp_server) -> None:
    write_members(project, 6)
    env = cli_env(smtp_server)
    assert newsletter(project, env, "send", SLUG, "--yes", "--limit", "2").returncode == 0
    issue = project / "issues" / f"{SLUG}.md"
    issue.write_text(
        issue.read_text(encoding="utf-8").replace("December", "Dezember", 1), encoding="utf-8"
    )
    before = smtp_server.handler.count()
    changed = newsletter(project, env, "send", SLUG, "--yes")
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "Changed:   the issue changed since members got it" in changed.stdout
    assert "add --changed-ok" in changed.stderr
    assert smtp_server.handler.count() == before
    ok = newsletter(project, env, "send", SLUG, "--yes", "--changed-ok")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert smtp_server.handler.count() == before + 4


def test_status_calls_a_member_cut_off_mid_send_unknown(project: Path) -> None:
    # kill -9 (or a closed terminal) mid-transaction leaves the member claimed, no reply:
    # after the run, "sending 1" reads as if something were still going out.
    from newsletter.mail.envelope import Envelope
    from newsletter.records.journal import Journal

    addresses = write_members(project, 2)
    with Journal.for_state_dir(project / ".newsletter") as journal:
        journal.mark_sending(SLUG, Envelope(addresses[0], 2, "<1@x.org>", b""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    result = newsletter(project, env, "status", SLUG)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "unknown 1" in first and "sending" not in first, first
    assert f"{addresses[0]}: no reply (the run ended mid-transaction)" in result.stdout
    record = json.loads(newsletter(project, env, "status", SLUG, "--json").stdout)
    assert record["counts"]["sending"] == 1  # the journal's own word stays in the JSON


def test_status_while_a_send_runs_says_so(project: Path) -> None:
    # The chair looks at status from a second window while the send runs: the member
    # being sent is in flight, not "cut off".
    import fcntl

    from newsletter.mail.envelope import Envelope
    from newsletter.records.journal import Journal

    addresses = write_members(project, 2)
    state = project / ".newsletter"
    with Journal.for_state_dir(state) as journal:
        journal.mark_sending(SLUG, Envelope(addresses[0], 2, "<1@x.org>", b""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    (state / f"send-{SLUG}.owner").write_text("pid 4242\n")
    # A send holds the send lock and, for status to probe, send-SLUG.running.
    with (
        (state / f"send-{SLUG}.lock").open("a+") as held,
        (state / f"send-{SLUG}.running").open("a+") as running,
    ):
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        during = newsletter(project, env, "status", SLUG)
    assert during.returncode == 0, during.stderr
    assert "sending 1" in during.stdout.splitlines()[0]
    assert f"a send of {SLUG} is running now (pid 4242)" in during.stdout
    assert "cut off" not in during.stdout and "in flight" in during.stdout
    after = newsletter(project, env, "status", SLUG)
    assert "unknown 1" in after.stdout.splitlines()[0] and "running now" not in after.stdout


def test_a_run_leaving_members_unknown_ends_with_the_command_for_them(
    project: Path, smtp_server
) -> None:
    from newsletter.mail.envelope import Envelope
    from newsletter.records.journal import Journal

    addresses = write_members(project, 3)
    with Journal.for_state_dir(project / ".newsletter") as journal:  # as kill -9 leaves it
        journal.mark_sending(SLUG, Envelope(addresses[0], 2, "<1@x.org>", b""))
    env = cli_env(smtp_server)
    before = smtp_server.handler.count()  # the smtp_server is shared by this module's tests
    result = newsletter(project, env, "send", SLUG, "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Sent:      2   Failed: 0   Pending: 0   Unknown: 1" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("Unknown:   1 member"))
    assert "check with them" in line
    command = line.split("'")[1]
    assert command == f"newsletter send {SLUG} --resend-unknown"
    again = newsletter(project, env, *command.split()[1:], "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    got = [m.rcpts for m in smtp_server.handler.messages[before:]]
    assert sorted(got) == sorted((a,) for a in addresses)  # one copy each
