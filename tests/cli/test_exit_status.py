"""One exit status: the enum's values, errors whose status their class decides, and
`newsletter` ending with the enum's value on each kind of ending, through the real entry
point (in-process where that is enough, a real process for signals and crashes)."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import cli_env, run_cli, write_members
from support.projects import ROOT
from support.smtp_servers import MisbehavingHandler, start_server
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.common.errors import (
    CheckFailed,
    DailyCapReached,
    DeliveryError,
    DeliveryIncomplete,
    Interrupted,
    NewsletterError,
    SignInRequired,
    UsageError,
)
from newsletter.common.exitstatus import ExitStatus

SLUG = "december-2023"
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and terminals")


def test_the_statuses_a_script_relies_on() -> None:
    assert {status.name: int(status) for status in ExitStatus} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "INTERNAL": 70,
        "INTERRUPTED": 130,
    }
    for status in ExitStatus:  # one line each: it is a row of the README's table
        assert status.meaning.strip() and "\n" not in status.meaning and "|" not in status.meaning


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NewsletterError("bad"), ExitStatus.USAGE),
        (UsageError("--out needs --dry-run"), ExitStatus.USAGE),
        (CheckFailed("2 pre-flight error(s); nothing was sent"), ExitStatus.USAGE),
        (DeliveryError("connection refused", host="127.0.0.1", port=25), ExitStatus.USAGE),
        (SignInRequired("revoked"), ExitStatus.USAGE),
        (DeliveryIncomplete("the test copy was not accepted"), ExitStatus.FAILED),
        (DailyCapReached("daily cap reached"), ExitStatus.FAILED),
        (Interrupted("nobody was signed in"), ExitStatus.INTERRUPTED),
    ],
)
def test_an_errors_status_is_its_class_and_cannot_be_changed(
    error: NewsletterError, status: ExitStatus
) -> None:
    assert error.status is status
    with pytest.raises(AttributeError):
        error.status = ExitStatus.OK  # type: ignore[misc]
    assert error.status is status


def test_interrupted_says_where() -> None:
    assert str(Interrupted()) == "interrupted"
    assert str(Interrupted("nobody was signed in")) == "interrupted: nobody was signed in"
    assert (
        str(Interrupted("nothing was sent", where="at the question"))
        == "interrupted at the question: nothing was sent"
    )


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name):
                found.append((f"{owner.id}.{node.func.attr}", node))
    return found


def test_no_exit_is_decided_outside_the_one_place() -> None:
    """sys.exit only in cli/exits.py; typer.Exit with a status only where a command's result
    becomes one (cli/commands.py); no `exit_code` attribute read or set in the package but
    click's own, read in cli/exits.py."""
    package = ROOT / "newsletter"
    misplaced = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, call in _calls(tree):
            if name == "sys.exit" and where != "cli/exits.py":
                misplaced.append(f"{where}:{call.lineno} sys.exit")
            if name == "typer.Exit" and call.args and where != "cli/commands.py":
                misplaced.append(f"{where}:{call.lineno} typer.Exit(...)")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "exit_code":
                if where != "cli/exits.py":
                    misplaced.append(f"{where}:{node.lineno} .exit_code")
            if isinstance(node, ast.Name) and node.id.startswith("EXIT_"):
                misplaced.append(f"{where}:{node.lineno} {node.id}")
    assert not misplaced, misplaced


# -- `newsletter` on representative endings ------------------------------------------------


def _env(server=None, **extra: str) -> dict[str, str]:
    """Ready settings (support.helpers.cli_env), plain SMTP to ``server``, quick retries."""
    quick = {
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_SMTP_TIMEOUT": "5",
        "NEWSLETTER_RETRY_BASE_DELAY": "0.01",
    }
    return cli_env(server, **{**quick, **extra})


def test_done_is_0(project: Path) -> None:
    result = run_cli(["send", SLUG, "--dry-run"])
    assert result.returncode == ExitStatus.OK, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["send", "no-such-issue", "--dry-run"],  # bad input: our error
        ["send", SLUG, "--bogus"],  # bad usage: click's error
        ["send", SLUG, "--to", "x@wmhtc.co.uk"],  # options that contradict each other
        [],  # no command at all: the help, as a usage error
    ],
)
def test_bad_input_is_2(project: Path, args: list[str]) -> None:
    result = run_cli(args)
    assert result.returncode == ExitStatus.USAGE, result.stdout + result.stderr


def test_a_send_refused_by_its_checks_is_2_and_check_itself_is_1(project: Path) -> None:
    write_members(project, 3)
    # No unsubscribe link: an error. A server nobody listens on: nothing may reach it.
    env = _env(
        NEWSLETTER_UNSUBSCRIBE_URL="", NEWSLETTER_SMTP_HOST="127.0.0.1", NEWSLETTER_SMTP_PORT="9"
    )
    checked = run_cli(["check", SLUG], env)
    assert checked.returncode == ExitStatus.FAILED, checked.stdout
    assert "NOT READY" in checked.stdout
    refused = run_cli(["send", SLUG, "--yes"], env)
    assert refused.returncode == ExitStatus.USAGE, refused.stderr
    assert "nothing was sent" in refused.stderr


def test_a_partial_send_is_1_and_its_rerun_too_until_done(project: Path) -> None:
    addresses = write_members(project, 3)
    handler = MisbehavingHandler(unknown=[addresses[1]])
    with start_server(handler) as server:
        first = run_cli(["send", SLUG, "--yes"], _env(server))
        assert first.returncode == ExitStatus.FAILED, first.stdout + first.stderr
        assert "Sent:      2   Failed: 1" in first.stdout
        # The failed member stays failed (not retried): the send is still not all done.
        again = run_cli(["send", SLUG, "--yes"], _env(server))
        assert again.returncode == ExitStatus.FAILED, again.stdout + again.stderr
    assert handler.copies() == {addresses[0]: 1, addresses[2]: 1}


def test_a_test_copy_the_server_refuses_is_1(project: Path) -> None:
    write_members(project, 3)
    with start_server(MisbehavingHandler(unknown=["chair@wmhtc.co.uk"])) as server:
        result = run_cli(["send", SLUG, "--test"], _env(server))
    assert result.returncode == ExitStatus.FAILED, result.stderr
    assert result.stderr.startswith(f"error: 127.0.0.1:{server.port}: the test copy to")


def test_login_status_with_nobody_signed_in_is_1(project: Path) -> None:
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
        "NEWSLETTER_SMTP_AUTH": "oauth2",
        "NEWSLETTER_OAUTH_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
        "NEWSLETTER_STATE_DIR": str(project / "state"),
    }
    result = run_cli(["login", "--status"], env)
    assert result.returncode == ExitStatus.FAILED, result.stderr
    assert result.stdout == "not signed in (run: newsletter login)\n"
    # A password set-up has no sign-in at all: the same status, and it says why.
    password = run_cli(["login", "--status"], {"NEWSLETTER_STATE_DIR": str(project / "state")})
    assert password.returncode == ExitStatus.FAILED
    assert password.stdout.startswith("not signed in: this set-up uses NEWSLETTER_SMTP_AUTH=")


def test_typers_own_runner_ends_with_the_same_statuses(project: Path) -> None:
    # Standalone click (Typer's CliRunner, a plugin calling `app`) ignores what a command
    # returns: the status must come out as an exit there too.
    runner = CliRunner()
    assert runner.invoke(app, ["login", "--status"]).exit_code == ExitStatus.FAILED
    assert runner.invoke(app, ["check", SLUG]).exit_code == ExitStatus.FAILED
    assert runner.invoke(app, ["send", SLUG, "--dry-run"]).exit_code == ExitStatus.OK


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    base.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=base, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_a_bug_of_ours_is_70_one_line_and_no_secret(project: Path) -> None:
    # A real process with a command that fails as a bug would: main() must still end with
    # one line and 70, and a secret setting the message quotes is blanked.
    code = (
        "from newsletter.cli import app, main\n"
        "@app.command('crash')\n"
        "def crash() -> None:\n"
        "    '''Example: newsletter crash'''\n"
        "    raise RuntimeError('cannot use s3cret-pass-2026 here')\n"
        "main(['crash'])\n"
    )
    result = _python(code, project, NEWSLETTER_SMTP_PASSWORD="s3cret-pass-2026")
    assert result.returncode == ExitStatus.INTERNAL, result.stderr
    assert result.stderr.splitlines() == [
        "internal error: RuntimeError: cannot use *** here (please report it; "
        "NEWSLETTER_DEBUG=1 shows the traceback)"
    ]


@POSIX_ONLY
def test_ctrl_c_during_a_send_is_130_with_one_line(project: Path) -> None:
    import signal

    write_members(project, 3)
    # A server that accepts the connection and never greets: the send waits there.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(_env(NEWSLETTER_SMTP_HOST="127.0.0.1", NEWSLETTER_SMTP_TIMEOUT="60"))
        env.update(NEWSLETTER_SMTP_PORT=str(listener.getsockname()[1]), PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", SLUG, "--test"],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        listener.settimeout(60)
        connection, _ = listener.accept()
        with connection:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.INTERRUPTED, out + err
    assert err.strip().splitlines() == ["interrupted"]


@POSIX_ONLY
def test_end_of_input_at_the_send_question_is_130(project: Path) -> None:
    # At "Send to N member(s) now? [y/N]" on a terminal, Ctrl-D (or Ctrl-C) ends the run
    # through Interrupted like every other interruption (it used to bypass it).
    import pty

    write_members(project, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(_env(NEWSLETTER_SMTP_HOST="127.0.0.1", NEWSLETTER_SMTP_PORT="9"))
    env["PYTHONPATH"] = str(ROOT)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", SLUG],
            cwd=project, env=env, stdin=terminal, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        os.write(controller, b"\x04")  # end of input, read when the question asks
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == ExitStatus.INTERRUPTED, out + err
    assert "Send to 3 member(s) now?" in out
    assert err.strip().splitlines() == ["interrupted at the question: nothing was sent"]
