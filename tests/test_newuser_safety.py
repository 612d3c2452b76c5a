"""What a new user following the README ran into: a command run from the wrong folder, a test
copy that could unsubscribe a member, a test send left on .env.example's placeholders, a dry
run after the send, feedback without a mailbox, and two misleading report lines.

CLI tests run in-process (helpers.run_cli) against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ROOT
from helpers import run_cli
from smtp_servers import PASSWORD, USERNAME, RecordingHandler, start_server

from newsletter.members.unsubscribe import verify
from newsletter.records.journal import Journal

SECRET = "a-long-random-test-secret"
SLUG = "december-2023"


def env_for(server=None, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    if server is not None:
        base.update(
            NEWSLETTER_SMTP_HOST=server.host,
            NEWSLETTER_SMTP_PORT=str(server.port),
            NEWSLETTER_SMTP_SECURITY="starttls",
            NEWSLETTER_SMTP_CAFILE=server.cafile or "",
            NEWSLETTER_SMTP_USERNAME=USERNAME,
            NEWSLETTER_SMTP_PASSWORD=PASSWORD,
        )
    base.update(
        NEWSLETTER_FROM="Cluster News <news@wmhtc.co.uk>",
        NEWSLETTER_UNSUBSCRIBE_URL="https://wmhtc.co.uk/u?t={token}",
        NEWSLETTER_SECRET=SECRET,
        NEWSLETTER_TEST_TO="chair@wmhtc.co.uk",
    )
    base.update(extra)
    return base


@pytest.fixture
def server(tmp_path: Path):
    with start_server(RecordingHandler(), tls="starttls", auth=True, cafile_dir=tmp_path) as srv:
        yield srv


def first_member(project: Path) -> str:
    return (project / "recipients.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]


# ---- 1. the wrong folder ----------------------------------------------------------------------

NOT_A_PROJECT = "this folder is not a newsletter project"


@pytest.mark.parametrize(
    "args",
    [
        ["check", SLUG],
        ["send", SLUG, "--dry-run"],
        ["send", SLUG, "--test"],
        ["status", SLUG],
        ["preview", "--out", "x.html"],
        ["archive"],
        ["list"],
        ["feedback"],
        ["resubscribe", "a@wmhtc.co.uk"],
        ["render", SLUG],
    ],
    ids=lambda args: "-".join(args[:2]),
)
def test_a_command_run_inside_issues_says_it_is_not_the_project(project: Path, args) -> None:
    os.chdir(project / "issues")
    result = run_cli(args, env_for())
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (
        f"error: {NOT_A_PROJECT} (no issues/, recipients.csv or .env in {project / 'issues'}): "
        "run newsletter from the project folder"
    )


def test_unsubscribe_inside_issues_creates_no_suppression_list_there(project: Path) -> None:
    os.chdir(project / "issues")
    result = run_cli(["unsubscribe", "jane@nghealth.uk"], env_for())
    assert result.returncode == 2, result.stdout
    assert NOT_A_PROJECT in result.stderr and "suppressed" not in result.stdout
    assert not (project / "issues" / "suppressed.csv").exists()
    # A .env alone (say, copied into the wrong folder) does not make it a members' folder.
    (project / "issues" / ".env").write_text("NEWSLETTER_SECRET=x\n", encoding="utf-8")
    again = run_cli(["unsubscribe", "jane@nghealth.uk"], env_for())
    assert again.returncode == 2 and NOT_A_PROJECT in again.stderr
    assert "suppressed.csv was not created" in again.stderr
    assert not (project / "issues" / "suppressed.csv").exists()
    # From the project folder it works, and goes into the list the sends read.
    os.chdir(project)
    done = run_cli(["unsubscribe", "jane@nghealth.uk"], env_for())
    assert done.returncode == 0, done.stderr
    assert "jane@nghealth.uk" in (project / "suppressed.csv").read_text(encoding="utf-8")


def test_new_in_a_folder_with_only_the_templates_still_starts_the_first_issue(
    tmp_path: Path, monkeypatch
) -> None:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    monkeypatch.chdir(tmp_path)
    result = run_cli(["new", "january-2024"], env_for())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "issues" / "january-2024.md").is_file()
    # ...but not from a folder with nothing of the project at all.
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    refused = run_cli(["new", "january-2024"], env_for())
    assert refused.returncode == 2 and NOT_A_PROJECT in refused.stderr
    assert not (empty / "issues").exists()


def test_the_quick_start_folder_still_dry_runs_on_the_defaults(tmp_path: Path, monkeypatch):
    """The README's first command: the example issue and recipients.csv.example, no .env,
    works as before; from the wrong folder it is refused."""
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copy(ROOT / "recipients.csv.example", tmp_path)
    monkeypatch.chdir(tmp_path)
    result = run_cli(["send", SLUG, "--dry-run"], env_for())
    assert result.returncode == 0, result.stderr
    assert "will send: 6 message(s), written to outbox/december-2023/" in result.stdout
    # The same command from its issues/ folder: one line, no outbox written there.
    os.chdir(tmp_path / "issues")
    wrong = run_cli(["send", SLUG, "--dry-run"], env_for())
    assert wrong.returncode == 2 and NOT_A_PROJECT in wrong.stderr
    assert not (tmp_path / "issues" / "outbox").exists()


# ---- 2. a test copy unsubscribes the tester, never the member ---------------------------------


def test_a_test_copy_unsubscribes_its_recipient_not_the_member(project: Path, server) -> None:
    member = first_member(project)
    env = env_for(server, NEWSLETTER_UNSUBSCRIBE_MAILTO="unsubscribe@wmhtc.co.uk")
    result = run_cli(["send", SLUG, "--test"], env)
    assert result.returncode == 0, result.stderr
    [received] = server.handler.messages
    assert received.rcpts == ("chair@wmhtc.co.uk",)
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    header = str(msg["List-Unsubscribe"])
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header.split("<", 1)[1].split(">", 1)[0]
    token = parse_qs(urlsplit(url).query)["t"][0]
    assert verify(token, SECRET) == "chair@wmhtc.co.uk"
    assert member not in header and "mailto:unsubscribe@wmhtc.co.uk" in header
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert token in html and token in text  # the footer link: the tester's too
    for body in (html, text):
        for start in range(len(body)):
            start = body.find("?t=", start)
            if start < 0:
                break
            found = body[start + 3 :].split('"')[0].split()[0].rstrip(">)")
            assert verify(found, SECRET) == "chair@wmhtc.co.uk", found
            start += 3
    # Still personalised as the member (names and fields).
    assert "Dear " in text


# ---- 3. a test send on .env.example's placeholders ---------------------------------------------


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"NEWSLETTER_TEST_TO": "chair@example.org"}, "NEWSLETTER_TEST_TO"),
        ({"NEWSLETTER_FROM": "Cluster News <news@example.org>"}, "NEWSLETTER_FROM"),
    ],
)
def test_a_test_send_from_or_to_a_placeholder_says_so(
    project: Path, server, extra, setting
) -> None:
    # Sent (one copy is harmless, and test set-ups use example.org on purpose), but the
    # chair reads why it will not arrive, or why the real send's checks will refuse.
    result = run_cli(["send", SLUG, "--test"], env_for(server, **extra))
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.handler.count() == 1
    notes = [line for line in result.stderr.splitlines() if "placeholder" in line]
    assert len(notes) == 1 and notes[0].startswith(f"note: {setting}: "), result.stderr
    assert "example.org" in notes[0]


def test_a_test_send_to_a_placeholder_given_with_to_names_the_option(project, server) -> None:
    result = run_cli(["send", SLUG, "--test", "--to", "me@example.com"], env_for(server))
    assert result.returncode == 0
    assert "note: --to: 'me@example.com' is on example.com" in result.stderr
    assert server.handler.count() == 1


def test_a_test_send_to_the_placeholder_smtp_host_is_refused(project: Path) -> None:
    env = env_for(NEWSLETTER_SMTP_HOST="smtp.example.org")
    result = run_cli(["send", SLUG, "--test"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: NEWSLETTER_SMTP_HOST: 'smtp.example.org'"
    )


# ---- 4. a dry run after the send ------------------------------------------------------------


def test_a_dry_run_after_the_send_says_who_already_has_it(project: Path, server) -> None:
    env = env_for(server)
    sent = run_cli(["send", SLUG, "--yes"], env)
    assert sent.returncode == 0, sent.stderr
    dry = run_cli(["send", SLUG, "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    members = len(server.handler.messages)
    assert members >= 4
    assert f"will send: {members} message(s), written" not in dry.stdout
    assert f"written:   {members} message(s), every member's" in dry.stdout, dry.stdout
    assert f"will send: 0 message(s) now; {members} already have it (the journal)" in dry.stdout
    assert len(list((project / "outbox" / SLUG).glob("*.eml"))) == members  # the whole mailing


# ---- 5. feedback without a mailbox -----------------------------------------------------------


def test_feedback_without_imap_settings_suppresses_the_journals_rcpt_refusals(project) -> None:
    member = first_member(project)
    with Journal.for_state_dir(project / ".newsletter") as journal:
        from newsletter.mail.envelope import Envelope

        journal.mark_sending(SLUG, Envelope(to=member, row=2, message_id="<m1@x>", data=b""))
        journal.mark_failed(SLUG, member, "550 5.1.1 <x>: Recipient address rejected")
    env = env_for()
    result = run_cli(["feedback"], env)
    assert result.returncode == 0, result.stderr
    assert "Mailbox not read: no IMAP server configured" in result.stdout
    assert "NEWSLETTER_IMAP_HOST" in result.stdout
    assert member in (project / "suppressed.csv").read_text(encoding="utf-8")
    check = run_cli(["check", SLUG], env)
    assert "1 suppressed member(s) skipped" in check.stdout, check.stdout


# ---- 6. status and check wording -----------------------------------------------------------


def test_status_shows_no_feedback_line_before_feedback_ran(project: Path) -> None:
    env = env_for()
    assert run_cli(["unsubscribe", "jane@nghealth.uk"], env).returncode == 0
    assert run_cli(["resubscribe", "jane@nghealth.uk"], env).returncode == 0
    assert (project / ".newsletter" / "feedback.sqlite3").is_file()
    status = run_cli(["status", SLUG], env)
    assert status.returncode == 0, status.stderr
    assert "feedback:" not in status.stdout
    assert run_cli(["feedback"], env).returncode == 0  # no mailbox: the journal alone
    after = run_cli(["status", SLUG], env)
    assert "feedback: bounced 0 (hard 0, soft 0), complained 0, unsubscribed 0" in after.stdout


def test_check_with_r_example_list_does_not_tell_to_pass_r(project: Path) -> None:
    shutil.copy(ROOT / "recipients.csv.example", project)
    result = run_cli(["check", SLUG, "-r", "recipients.csv.example"], env_for())
    assert result.returncode == 1
    assert "or pass -r FILE" not in result.stdout
    assert "recipients.csv not found" not in result.stdout
    assert "recipients.csv.example is the example list" in result.stdout


def test_an_issue_file_given_by_path_with_the_templates_set_is_a_project(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering an issue file by its path, with NEWSLETTER_TEMPLATES_DIR pointing at the
    templates, from a folder that holds neither issues/ nor a members list, still works:
    the organisation's details mark the project (inside issues/ they do not)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    issue = project / "issues" / "december-2023.md"
    env = {"NEWSLETTER_TEMPLATES_DIR": str(project / "templates")}
    result = run_cli(["render", str(issue), "--out", "out"], env=env)
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "out" / "december-2023.html").is_file()
    monkeypatch.chdir(project / "issues")
    refused = run_cli(["render", "december-2023", "--out", "out"])
    assert refused.returncode == 2 and "not a newsletter project" in refused.stderr


def test_force_never_sends_without_an_unsubscribe_link_and_says_what_it_overrode(
    project: Path, server
) -> None:
    """The missing-unsubscribe refusal said 'or add --force'; with --force the progress bar
    started before delivery refused (exit 2). And a forced send's summary said 'Checks:
    passed' above the question although a check had failed."""
    bare = env_for(server, NEWSLETTER_UNSUBSCRIBE_URL="", NEWSLETTER_UNSUBSCRIBE_MAILTO="")
    for extra in ([], ["--force"]):
        refused = run_cli(["send", SLUG, "--yes", *extra], bare)
        assert refused.returncode == 2, refused.stdout
        assert "add --force" not in refused.stderr
        assert "never sent, even with --force" in refused.stderr
        assert "Sending" not in refused.stdout and server.handler.count() == 0
    # A forceable error (a template tag in the body) goes out with --force, and says so.
    issue = project / "issues" / f"{SLUG}.md"
    issue.write_text(
        issue.read_text(encoding="utf-8") + "\n{% if x %}hi{% endif %}\n", encoding="utf-8"
    )
    forced = run_cli(["send", SLUG, "--yes", "--force"], env_for(server))
    assert forced.returncode == 0, forced.stdout + forced.stderr
    checks = next(x for x in forced.stdout.splitlines() if x.startswith("Checks:"))
    assert "overridden with --force" in checks and "passed" not in checks


def test_a_limited_send_says_how_to_send_the_rest(project: Path, server) -> None:
    """README: every summary that leaves members to resume prints the command to run. A
    '--limit 1' send ended 'Pending: N' with no command (exit 0, as documented)."""
    done = run_cli(["send", SLUG, "--yes", "--limit", "1"], env_for(server))
    assert done.returncode == 0, done.stdout + done.stderr
    assert server.handler.count() == 1
    line = next(x for x in done.stdout.splitlines() if x.startswith("Next:"))
    assert f"run 'newsletter send {SLUG}' for the other" in line
    rest = run_cli(["send", SLUG, "--yes"], env_for(server))
    assert rest.returncode == 0 and "Next:" not in rest.stdout
    addresses = [rcpt for m in server.handler.messages for rcpt in m.rcpts]
    assert len(addresses) == len(set(addresses)) == server.handler.count() > 1
