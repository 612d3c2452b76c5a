"""`newsletter setup` at a real terminal (a pty): the questions, their defaults, a hidden
secret prompt, and the answers written; the question when the MX look-up failed; Ctrl-C
(SIGINT) and end of input (Ctrl-D) at a question. POSIX only (pty, signals)."""

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

    def interrupt_at(self, question: str, timeout: float = 60) -> None:
        """Ctrl-C (SIGINT) once the child waits for the answer to ``question``. A SIGINT
        that comes between the prompt's last character and the read() after it is lost
        (CPython looks for signals only when the read is interrupted), so wait for the
        prompt's end (": ") and, on Linux, until the child sleeps in that read; a person
        is never that quick."""
        import signal

        self.expect(question)
        self.seen = self.seen[self.seen.index(question) :]
        self.expect(": ")
        stat = Path(f"/proc/{self.process.pid}/stat")  # Linux; elsewhere: at once
        deadline = time.monotonic() + timeout
        while stat.exists() and self.process.poll() is None:
            try:
                if stat.read_text().rpartition(")")[2].split()[0] == "S":  # sleeping
                    break
            except OSError:  # gone meanwhile
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"never waited for the answer to {question!r}")
            self.seen += self._read()
        self.process.send_signal(signal.SIGINT)

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


def _terminal(project: Path, dns_server) -> Terminal:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSLETTER_DNS_SERVER": dns_server.address}
    return Terminal([sys.executable, "-m", "newsletter", "setup"], project, env)


def test_a_failed_look_up_says_so_first_and_offers_microsoft_365_and_google(
    project: Path, dns_server
) -> None:
    from support.dns_server import UNANSWERED

    term = _terminal(project, dns_server)
    term.answer("Send the bulletin from which address?", f"news@{UNANSWERED}")
    term.answer("Name shown as the sender", "Network News")
    term.expect("Service (")
    # The failure comes before the question, and every provider is offered, with no
    # default steering an offline Microsoft 365 chair to a relay.
    failed = term.seen.index(f"Could not look up where {UNANSWERED}'s mail goes (")
    asked = term.seen.index("Which service sends your mail?")
    assert failed < asked
    assert "not Microsoft 365 or Google" not in term.seen
    offered = term.seen[asked:]
    assert "microsoft365: Microsoft 365" in offered and "google: Google Workspace" in offered
    assert "ses: Amazon SES" in offered and "other: your mail server" in offered
    term.answer("Service (microsoft365/google/ses/postmark/mailgun/other):", "")  # no default
    term.answer("Please answer one of", "microsoft365")
    term.answer("Application (client) ID", "")
    term.answer("Directory (tenant) ID or domain", "")
    term.answer("IMAP server of the sending mailbox", "")
    term.answer("Send test copies to", "")
    term.answer("Members unsubscribe by writing to", "")
    term.answer("Members list", "")
    term.answer("Write these to .env?", "y")
    assert term.finish() == 0, term.seen
    env_file = {k: v or "" for k, v in dotenv_values(project / ".env").items()}
    assert env_file["NEWSLETTER_SMTP_HOST"] == "smtp.office365.com"
    assert env_file["NEWSLETTER_SMTP_AUTH"] == "oauth2"
    assert env_file["NEWSLETTER_OAUTH_TENANT"] == UNANSWERED
    assert "could not read the MX records" not in term.seen  # said once, at the question


def test_an_answered_other_domain_is_asked_for_its_relay_and_ctrl_c_stops_there(
    project: Path, dns_server
) -> None:

    term = _terminal(project, dns_server)
    term.answer("Send the bulletin from which address?", "news@other-zone.uk")
    term.answer("Name shown as the sender", "")
    term.expect("Service (ses/postmark/mailgun/other) [other]:")
    assert "(your domain's mail is not Microsoft 365 or Google)" in term.seen
    assert "microsoft365:" not in term.seen and "Could not look up" not in term.seen
    term.interrupt_at("Service (ses/postmark/mailgun/other) [other]")
    assert term.finish() == 130, term.seen
    assert "interrupted at the question: setup stopped, nothing was written" in term.seen
    assert not (project / ".env").exists()


def test_ctrl_c_at_the_first_question_stops_with_the_interrupted_status(
    project: Path, dns_server
) -> None:

    from newsletter.common.exitstatus import ExitStatus

    term = _terminal(project, dns_server)
    term.interrupt_at("Send the bulletin from which address?")  # what Ctrl-C sends
    assert term.finish() == ExitStatus.INTERRUPTED, term.seen
    assert "interrupted at the question: setup stopped, nothing was written" in term.seen
    assert "end of input" not in term.seen and "--yes" not in term.seen
    assert "Traceback" not in term.seen
    assert not (project / ".env").exists()


def test_end_of_input_at_the_first_question_says_how_to_answer_without_questions(
    project: Path, dns_server
) -> None:
    from newsletter.common.exitstatus import ExitStatus

    term = _terminal(project, dns_server)
    term.expect("Send the bulletin from which address?")
    os.write(term.master, b"\x04")  # Ctrl-D: the terminal's end of input
    assert term.finish() == ExitStatus.USAGE, term.seen
    assert "error: no answer to the question (end of input): nothing was written" in term.seen
    assert "pass the answers as options with --yes" in term.seen
    assert "interrupted" not in term.seen
    assert not (project / ".env").exists()
