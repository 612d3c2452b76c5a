"""Helpers shared by the tests: SMTP settings, a fake clock, the CLI run in-process."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from smtp_servers import PASSWORD, USERNAME, Server, free_port
from typer.testing import CliRunner

from newsletter.common.config import Settings


def settings_for(server: Server | None, **changes: object) -> Settings:
    """Plain SMTP to ``server`` on 127.0.0.1 (no server: a port nobody listens on)."""
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port if server else free_port(),
        "smtp_security": "none",
        "smtp_timeout": 5.0,
        "retry_base_delay": 0.01,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def tls_settings(server: Server, **changes: object) -> Settings:
    """STARTTLS (trusting the test CA) and AUTH with the test account."""
    base: dict[str, object] = {
        "smtp_security": "starttls",
        "smtp_cafile": server.cafile,
        "smtp_username": USERNAME,
        "smtp_password": PASSWORD,
    }
    base.update(changes)
    return settings_for(server, **base)


class FakeClock:
    """A monotonic clock that moves only when someone sleeps on it.

    Pass ``clock`` and ``clock.sleep`` to :func:`newsletter.sending.engine.deliver`: pacing, batch
    pauses and retry back-off then take no real time, and every time they produce is exact
    (no scheduler jitter), so tests can assert on it. Thread-safe: with several worker
    threads each sleep adds to the one shared time, so time only runs faster, never
    backwards, and a transaction can never start before its slot.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(seconds, 0.0)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
) -> CliResult:
    """``newsletter ARGS`` in this process, through the real entry point (:func:`main`, which
    maps errors to one line and an exit code), with Typer's CliRunner capturing the streams
    and applying ``env`` for the call. Run from the current folder (the ``project``
    fixture's). Use a real process only where that is the point (signals, ``python -m``)."""
    from newsletter.cli.commands import main

    runner = CliRunner()
    code = 0
    with runner.isolation(input=input, env=env) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return CliResult(code, stdout.decode("utf-8"), stderr.decode("utf-8"))


PREHEADER = "What is inside this month, in a sentence of a useful length."


def write_issue(project: Path, body: str, subject: str = "Cluster News – January") -> str:
    """issues/probe.md with a valid front matter and ``body``; returns its slug."""
    # A JSON string is a valid YAML scalar, whatever quotes the subject holds.
    front = f"---\ntitle: January\nsubject: {json.dumps(subject)}\npreheader: {PREHEADER}\n"
    (project / "issues" / "probe.md").write_text(
        front + "date: 2024-01-18\n---\n" + body, encoding="utf-8"
    )
    return "probe"
