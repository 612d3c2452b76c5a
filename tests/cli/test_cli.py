"""The command line as a user meets it: help, the quick start, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import CliResult, run_cli
from support.projects import ROOT
from support.smtp_servers import start_server

from newsletter.cli.commands import app


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> CliResult:
    """In-process (fast); the ``project`` fixture has made ``cwd`` the current folder."""
    assert cwd == Path.cwd()
    return run_cli(args, env)


def run_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A real ``python -m newsletter``: only where the process itself is what is tested."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd, env=base, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def command_names() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)


def test_python_m_help_lists_commands(project: Path) -> None:
    result = run_process(["--help"], project)
    assert result.returncode == 0
    for name in command_names():
        assert name in result.stdout


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_help_with_an_example(project: Path, name: str) -> None:
    import typer.main

    command = typer.main.get_command(app).commands[name]
    assert command.help and "Example: newsletter " + name in command.help
    result = run([name, "--help"], project)
    assert result.returncode == 0 and "Example:" in result.stdout


def test_quick_start_dry_run_on_the_example(project: Path) -> None:
    (project / "recipients.csv").unlink()  # a fresh checkout has only the example
    shutil_copy = (ROOT / "recipients.csv.example").read_text()
    (project / "recipients.csv.example").write_text(shutil_copy, encoding="utf-8")
    result = run(["send", "december-2023", "--dry-run"], project)
    assert result.returncode == 0, result.stderr
    assert "using the example list recipients.csv.example" in result.stderr
    written = sorted((project / "outbox" / "december-2023").glob("*.eml"))
    assert len(written) >= 5
    assert f"will send: {len(written)} message(s)" in result.stdout
    assert "unsubscribed (row" in result.stdout
    assert "No mail was sent." in result.stdout


@pytest.mark.parametrize(
    ("args", "setup", "expected"),
    [
        (["send", "nope", "--dry-run"], None, "issues/nope.md: no issue called 'nope'"),
        (["send", "december-2023", "--dry-run", "-r", "missing.csv"], None, "missing.csv"),
        (
            ["render", "broken"],
            "---\ntitle: x\n---\nbody\n",
            "issues/broken.md:1: front matter has no 'subject'",
        ),
        (
            ["send", "december-2023", "--dry-run"],
            "env:NEWSLETTER_SMTP_SECURITY=tls",
            "NEWSLETTER_SMTP_SECURITY",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(project: Path, args, setup, expected) -> None:
    env = None
    if setup and setup.startswith("env:"):
        key, _, value = setup[4:].partition("=")
        env = {key: value}
    elif setup:
        (project / "issues" / "broken.md").write_text(setup, encoding="utf-8")
    result = run(args, project, env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_template_exit_code_2(project: Path) -> None:
    template = project / "templates" / "email.mjml.j2"
    template.write_text(
        template.read_text(encoding="utf-8").replace("{{ issue.title }}", "{{ issue.nope }}"),
        encoding="utf-8",
    )
    result = run(["render", "december-2023", "--out", "build"], project)
    assert result.returncode == 2
    assert (
        result.stderr.startswith(f"error: {template.relative_to(project)}:")
        or "email.mjml.j2:" in result.stderr
    )
    assert "nope" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_render_and_preview_out(project: Path) -> None:
    result = run(["render", "december-2023", "--out", "build"], project)
    assert result.returncode == 0, result.stderr
    html = (project / "build" / "december-2023.html").read_text(encoding="utf-8")
    text = (project / "build" / "december-2023.txt").read_text(encoding="utf-8")
    assert "Ahmar, our lead on Events and Projects" in html and "Ahmar, our lead on Events" in text
    result = run(["preview", "--out", "email.html"], project)  # newest issue by date
    assert result.returncode == 0, result.stderr
    # preview is personalised as the first member, as a test send is; render is anonymous.
    assert (project / "email.html").read_text(encoding="utf-8") == html.replace(
        "Dear member,", "Dear Priya,"
    )


def test_unsubscribe_command(project: Path) -> None:
    result = run(
        ["unsubscribe", "Jane@Example.org", "bob@example.org", "--reason", "asked by phone"],
        project,
    )
    assert result.returncode == 0, result.stderr
    assert "suppressed Jane@example.org" in result.stdout
    again = run(["unsubscribe", "jane@example.org"], project)
    assert "already suppressed" in again.stdout
    content = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "asked by phone" in content and content.count("example.org") == 2
    bad = run(["unsubscribe", "not-an-address"], project)
    assert bad.returncode == 2 and "not-an-address" in bad.stderr


def test_new_check_list_archive(project: Path) -> None:
    created = run(["new", "january-2024", "--date", "2024-01-18"], project)
    assert created.returncode == 0, created.stderr
    assert (project / "issues" / "january-2024.md").is_file()
    again = run(["new", "january-2024"], project)
    assert again.returncode == 2 and "already exists" in again.stderr
    bad_date = run(["new", "feb", "--date", "18/02/2024"], project)
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
    env = {
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
        "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk",  # READY needs a server to send through
    }
    untouched = run(["check", "january-2024"], project, env)
    assert untouched.returncode == 1, untouched.stdout + untouched.stderr
    assert "skeleton text left in the issue" in untouched.stdout
    assert "NOT READY: 16 errors, 0 warnings" in untouched.stdout
    ok = run(["check", "december-2023"], project, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "READY to send to" in ok.stdout
    # Without --date, the month comes from the slug.
    assert run(["new", "february-2031"], project).returncode == 0
    assert "date: 2031-02-01\n" in (project / "issues" / "february-2031.md").read_text("utf-8")
    failing = run(["check", "december-2023"], project)  # no unsubscribe configured
    assert failing.returncode == 1
    assert "error: NEWSLETTER_UNSUBSCRIBE_URL: no unsubscribe link" in failing.stdout
    assert "NOT READY" in failing.stdout
    listed = run(["list"], project).stdout.splitlines()
    assert listed[0].startswith("2031-02-01  february-2031") and "never sent" in listed[0]
    assert listed[2].startswith("2024-01-18  january-2024") and "never sent" in listed[2]
    assert any(line.startswith("2023-12-14  december-2023") for line in listed)
    built = run(["archive", "--out", "site"], project)
    assert built.returncode == 0, built.stderr
    assert (project / "site" / "feed.xml").is_file()
    # Drafts stay out of the public archive.
    assert not (project / "site" / "january-2024.html").exists()
    assert (project / "site" / "december-2023.html").is_file()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["send"],
        ["send", "december-2023", "--bogus"],
        ["frobnicate"],
        ["send", "december-2023", "--rate", "-1"],
        ["unsubscribe"],
    ],
)
def test_usage_errors_exit_2_without_traceback(project: Path, args: list[str]) -> None:
    result = run(args, project)
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_one_broken_draft_does_not_block_list_archive_preview(project: Path) -> None:
    (project / "issues" / "zz-draft.md").write_text('---\ntitle: "unclosed\n', encoding="utf-8")
    listed = run(["list"], project)
    assert listed.returncode == 0 and "december-2023" in listed.stdout
    # Listed, with why (it used to vanish from the list with a note on stderr only).
    assert "cannot be read: issues/zz-draft.md:1:" in listed.stdout
    assert run(["archive", "--out", "site"], project).returncode == 0
    assert run(["preview", "--out", "x.html"], project).returncode == 0
    assert run(["render", "zz-draft"], project).returncode == 2


def test_output_folders_that_are_not_ours_are_never_replaced(project: Path) -> None:
    keep = project / "documents"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep me")
    for args in (
        ["send", "december-2023", "--dry-run", "--out", "documents"],
        ["send", "december-2023", "--dry-run", "--out", ".."],
        ["send", "december-2023", "--dry-run", "--out", "."],
        ["archive", "--out", "documents"],
    ):
        result = run(args, project)
        assert result.returncode == 2, (args, result.stderr)
        assert "refusing to replace" in result.stderr
    assert (keep / "precious.txt").read_text() == "keep me"
    assert (project / "issues" / "december-2023.md").is_file()
    # Our own output folder is replaced on every run, as documented.
    assert run(["send", "december-2023", "--dry-run"], project).returncode == 0
    assert run(["send", "december-2023", "--dry-run"], project).returncode == 0


def test_ctrl_c_in_any_command_ends_with_one_line_and_130(project: Path) -> None:
    """A real process and a real SIGINT while `feedback` waits for an IMAP server that
    accepted the connection but never greets: Typer alone would exit 130 silently."""
    import signal
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listener:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(
            NEWSLETTER_IMAP_HOST="127.0.0.1",
            NEWSLETTER_IMAP_PORT=str(listener.getsockname()[1]),
            NEWSLETTER_IMAP_SECURITY="none",
            NEWSLETTER_IMAP_USERNAME="chair",
            NEWSLETTER_IMAP_PASSWORD="secret-password",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "feedback"],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        listener.settimeout(30)
        connection, _ = listener.accept()  # the command is now waiting for the greeting
        with connection:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert err.strip().splitlines() == ["interrupted"]


def test_an_internal_error_line_never_shows_a_secret_setting(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug's one-line report quotes the exception's message, which may quote what it
    choked on: the values of secret settings (environment or .env) are blanked in it."""
    from newsletter.cli import exits

    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "Grüße-2026-pw")
    (project / ".env").write_text("NEWSLETTER_SECRET=k3y-from-dotenv-0123456789\n", "utf-8")
    line = exits.redacted(
        "cannot encode 'Grüße-2026-pw' nor k3y-from-dotenv-0123456789 in position 9"
    )
    assert "Grüße-2026-pw" not in line and "k3y-from-dotenv" not in line
    assert line == "cannot encode '***' nor *** in position 9"


# -- the terminal: escape sequences in a server's words -------------------------------------

ESCAPES = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\ \x1b[2J\x9b31m"


def test_escape_sequences_in_a_servers_refusal_never_reach_the_terminal(project, tmp_path):
    # Error lines quote what servers say (SMTP and IMAP replies, OAuth error bodies, the
    # loopback redirect's ?error=, which any web page the browser opens can set). Printed
    # as they came, an OSC 8 sequence drew a link of the sender's choosing and CSI 2J
    # cleared the screen. `feedback` cleaned its table; the one-line errors did not.
    from support.helpers import cli_env, newsletter
    from support.smtp_servers import PasswordOffHandler

    handler = PasswordOffHandler(reply=f"535 5.7.8 refused {ESCAPES}")
    with start_server(handler, tls="starttls", cafile_dir=tmp_path) as smtp:
        result = newsletter(project, cli_env(smtp), "send", "december-2023", "--test")
    assert result.returncode != 0 and "535 5.7.8 refused" in result.stderr, result.stderr
    assert "click here" in result.stderr  # the words stay; the sequences go
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr, repr(result.stderr)
