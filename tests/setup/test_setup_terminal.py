"""`newsletter setup` at a real terminal (a pty): the questions, their defaults, a hidden
secret prompt, and the answers written. POSIX only (pty)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dotenv import dotenv_values

pty = pytest.importorskip("pty")
ROOT = Path(__file__).resolve().parents[2]


class Terminal:
    """A child process on a pseudo-terminal, answered prompt by prompt."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.seen = ""

    def _read(self) -> str:
        import select

        ready, _, _ = select.select([self.master], [], [], 0.2)
        if not ready:
            return ""
        try:
            return os.read(self.master, 4096).decode("utf-8", "replace")
        except OSError:  # the child closed the terminal
            return ""

    def expect(self, text: str, timeout: float = 60) -> None:
        # A hang guard, not a timing assertion: the prompt either comes or the test fails.
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r} in:\n{self.seen}")
            chunk = self._read()
            if not chunk and self.process.poll() is not None:
                raise AssertionError(f"exited before {text!r}:\n{self.seen}")
            self.seen += chunk

    def answer(self, prompt: str, text: str) -> None:
        self.expect(prompt)
        self.seen = self.seen[self.seen.index(prompt) + len(prompt) :]
        os.write(self.master, text.encode() + b"\r")

    def answer_hidden(self, prompt: str, text: str, timeout: float = 60) -> None:
        """A password prompt: typed once the terminal stopped echoing, as a person would
        (typed before, it would be echoed, then flushed away by getpass)."""
        import termios

        self.expect(prompt)
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.master)[3] & termios.ECHO:
            if time.monotonic() > deadline:
                raise AssertionError("the terminal kept echoing")
            self.seen += self._read()
        self.seen = self.seen[self.seen.index(prompt) + len(prompt) :]
        os.write(self.master, text.encode() + b"\r")

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.seen += self._read()
        os.close(self.master)
        return self.process.wait(timeout=5)


def test_setup_asks_at_a_terminal(project: Path, dns_server) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSLETTER_DNS_SERVER": dns_server.address}
    term = Terminal([sys.executable, "-m", "newsletter", "setup"], project, env)
    term.answer("Send the bulletin from which address?", "news@google-good-zone.uk")
    term.answer("Name shown as the sender", "Good Bulletin")
    term.expect("Mail for google-good-zone.uk is handled by Google Workspace")
    term.answer("Application (client) ID", "client-1.apps")
    term.answer_hidden("OAuth client secret", "the-client-secret")  # hidden: never echoed
    term.answer("IMAP server of the sending mailbox", "")
    term.answer("Send test copies to [news@google-good-zone.uk]", "chair@google-good-zone.uk")
    term.answer("Members unsubscribe by writing to [news@google-good-zone.uk]", "")
    term.answer("Members list", "")
    term.answer("Write these to .env?", "y")
    assert term.finish() == 0, term.seen
    assert "the-client-secret" not in term.seen
    assert "newsletter login, then newsletter doctor" in term.seen
    env_file = {k: v or "" for k, v in dotenv_values(project / ".env").items()}
    assert env_file["NEWSLETTER_FROM"] == "Good Bulletin <news@google-good-zone.uk>"
    assert env_file["NEWSLETTER_SMTP_HOST"] == "smtp.gmail.com"
    assert env_file["NEWSLETTER_OAUTH_CLIENT_ID"] == "client-1.apps"
    assert env_file["NEWSLETTER_OAUTH_CLIENT_SECRET"] == "the-client-secret"
    assert env_file["NEWSLETTER_IMAP_HOST"] == "imap.gmail.com"
    assert env_file["NEWSLETTER_TEST_TO"] == "chair@google-good-zone.uk"
    assert env_file["NEWSLETTER_UNSUBSCRIBE_MAILTO"] == "news@google-good-zone.uk"
