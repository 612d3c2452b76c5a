"""Ctrl-C pressed twice during `newsletter send`: a real process, SIGINT sent to it, a slow
aiosmtpd on 127.0.0.1. However the presses fall, the run ends with ExitStatus.INTERRUPTED
and the line that says how to resume, never by the signal itself (exit -2) nor with a
traceback, and a re-run gives nobody a second copy.

Before: a second press that landed once the orderly stop was over (the summary printing,
the journal closing, the interpreter shutting down) killed the process by SIGINT. No
wall clock here: the tests wait on the server's arrivals and on the process's lines.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.helpers import cli_env, newsletter, write_members
from support.smtp_servers import HANG_GUARD, RecordingHandler, Server, start_server

from newsletter.common.exitstatus import ExitStatus

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")

SLUG = "december-2023"
MEMBERS = 30
RESUME = f"Re-run 'newsletter send {SLUG}' to resume"


class SlowAndHolding(RecordingHandler):
    """Answers each message after ``delay``; keeps the ``hold``-th, then withholds its 250
    until ``release`` (it is then in flight for the client, already here for the server)."""

    def __init__(self, hold: int = 0, delay: float = 0.01) -> None:
        super().__init__()
        self.hold, self.delay = hold, delay
        self.data = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.data += 1
        self.record(server, envelope)
        if self.data == self.hold:
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, HANG_GUARD)
        else:
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Ok: queued"


@contextmanager
def sending(project: Path, server: Server, connections: int = 1) -> Iterator[subprocess.Popen[str]]:
    env = cli_env(server, NEWSLETTER_CONNECTIONS=str(connections))
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", SLUG, "--yes"],
        cwd=project, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:  # only a test that failed half-way leaves it running
            proc.kill()
            proc.communicate()


def line_with(proc: subprocess.Popen[str], text: str) -> str:
    """The next line on the process's stderr that holds ``text`` (read as it comes)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # ends when the process closes stderr: then the test fails
        if text in line:
            return line
        seen.append(line)
    raise AssertionError(f"no line with {text!r} in: {''.join(seen)}")


def ended(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """(exit status, the rest of stderr) once the process ends (the bound: a hang guard)."""
    _, err = proc.communicate(timeout=HANG_GUARD)
    return proc.returncode, err


def assert_resume_gives_nobody_two(project: Path, server: Server, addresses: list[str]) -> None:
    server.handler.release.set()
    server.handler.delay = 0
    again = newsletter(project, cli_env(server), "send", SLUG, "--yes")
    assert "Traceback" not in again.stderr
    copies = server.handler.copies()
    assert all(count == 1 for count in copies.values()), copies
    # Every member got it once; the one whose 250 never came stays unknown, not resent.
    assert set(copies) == set(addresses), again.stdout + again.stderr


def test_second_press_during_the_stop_abandons_the_wait_and_ends_interrupted(
    project: Path, tmp_path: Path
) -> None:
    addresses = write_members(project, MEMBERS)
    with start_server(
        SlowAndHolding(hold=3), cafile_dir=tmp_path, tls="starttls", auth=True
    ) as server:
        with sending(project, server) as proc:
            assert server.handler.holding.wait(HANG_GUARD)
            proc.send_signal(signal.SIGINT)
            assert "press Ctrl-C again to stop at once" in line_with(proc, "Stopping:")
            proc.send_signal(signal.SIGINT)  # the reply is still withheld: only this ends it
            status, err = ended(proc)
        assert status == ExitStatus.INTERRUPTED, err
        assert RESUME in err and "Traceback" not in err
        assert server.handler.count() == 3
        assert_resume_gives_nobody_two(project, server, addresses)


def test_second_press_once_the_stop_is_over_changes_nothing(project: Path, tmp_path: Path) -> None:
    addresses = write_members(project, MEMBERS)
    with start_server(
        SlowAndHolding(hold=3), cafile_dir=tmp_path, tls="starttls", auth=True
    ) as server:
        with sending(project, server) as proc:
            assert server.handler.holding.wait(HANG_GUARD)
            proc.send_signal(signal.SIGINT)
            line_with(proc, "Stopping:")
            server.handler.release.set()  # the message in flight is answered: the stop ends
            line_with(proc, RESUME)
            # The run is ending (summary out, journal closing, interpreter shutting down):
            # a press now used to kill the process by SIGINT.
            proc.send_signal(signal.SIGINT)
            status, err = ended(proc)
        assert status == ExitStatus.INTERRUPTED, err
        assert "Traceback" not in err
        assert "interrupted" not in err.lower()  # the press was not raised in the ending
        assert server.handler.count() == 3
        assert_resume_gives_nobody_two(project, server, addresses)


@pytest.mark.parametrize("connections", [1, 3])
def test_two_presses_at_once_end_interrupted(
    project: Path, tmp_path: Path, connections: int
) -> None:
    addresses = write_members(project, MEMBERS)
    with start_server(SlowAndHolding(), cafile_dir=tmp_path, tls="starttls", auth=True) as server:
        with sending(project, server, connections) as proc:
            server.handler.wait_for(5, alive=lambda: proc.poll() is None)
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGINT)
            status, err = ended(proc)
        assert status == ExitStatus.INTERRUPTED, err
        assert RESUME in err and "Traceback" not in err
        assert server.handler.count() < MEMBERS
        assert_resume_gives_nobody_two(project, server, addresses)
