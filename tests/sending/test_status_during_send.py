"""``newsletter status`` looks for a running send without taking the send's lock (issue 21,
item 5): during a send it never waits and still says a send is running; and its look never
makes a send that is starting at that instant fail with "another send is running" (it did:
the look took the send lock for an instant)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.crashpoints import environment, make_project
from support.helpers import run_cli
from support.smtp_servers import RecordingHandler, start_server

from newsletter.common.errors import NewsletterError
from newsletter.sending.plan import run_lock, running_send

SLUG = "march-2026"
MEMBERS = [f"member{n}@members.wmhtc.co.uk" for n in range(4)]
ISSUE = """---
title: March 2026
subject: Cluster News – March 2026
preheader: What our members did this month, and the events we are holding in the spring.
date: 2026-03-12
---
## What happened

Our members met in Birmingham to talk about skills, and we heard from three new companies.
"""


class GateHandler(RecordingHandler):
    """Holds the first message's DATA until the test opens the gate: a send in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.gate = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        self.arrived.set()
        while not self.gate.is_set():
            await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = make_project(tmp_path / "cluster", MEMBERS)
    (folder / "issues" / f"{SLUG}.md").write_text(ISSUE, encoding="utf-8")
    for name in [n for n in os.environ if n.startswith("NEWSLETTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(folder)
    return folder


def test_status_during_a_real_send_says_it_runs_and_the_send_goes_on(project: Path) -> None:
    handler = GateHandler()
    with start_server(handler) as server:
        env = environment(project) | {
            "NEWSLETTER_SMTP_HOST": server.host,
            "NEWSLETTER_SMTP_PORT": str(server.port),
            "NEWSLETTER_SMTP_SECURITY": "none",
            "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
            "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
            "NEWSLETTER_SECRET": "a-long-random-test-secret",
            "NEWSLETTER_CONNECTIONS": "1",
            # The server holds the reply while the test looks: longer than a busy machine
            # may take for five looks (the send would give up on the reply, "unknown").
            "NEWSLETTER_SMTP_TIMEOUT": "600",
        }
        send = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", SLUG, "--yes"], cwd=project, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert handler.arrived.wait(180), "the send never reached the server"  # hang guard
            looks = [run_cli(["status", SLUG]) for _ in range(5)]
        finally:
            handler.gate.set()
            out, err = send.communicate(timeout=180)
        assert send.returncode == 0, err
        assert handler.copies() == {a: 1 for a in MEMBERS}
    for look in looks:
        assert look.returncode == 0, look
        assert f"a send of {SLUG} is running now (pid {send.pid})" in look.stdout
    after = run_cli(["status", SLUG])
    assert "running now" not in after.stdout and "sent 4" in after.stdout.splitlines()[0]


def test_looking_never_makes_a_starting_send_fail(tmp_path: Path) -> None:
    stop = threading.Event()
    seen: list[str] = []

    def look() -> None:
        while not stop.is_set():
            seen.append(running_send(tmp_path, SLUG))

    looker = threading.Thread(target=look)
    refused: list[str] = []
    with run_lock(tmp_path, SLUG):  # the probe's file exists from here on
        pass
    looker.start()
    try:
        for _ in range(300):
            try:
                with run_lock(tmp_path, SLUG):
                    pass
            except NewsletterError as error:
                refused.append(str(error))
    finally:
        stop.set()
        looker.join(timeout=120)  # hang guard
    assert refused == []
    assert f"pid {os.getpid()}" in seen  # it did look while sends were running


def test_a_look_at_a_send_that_holds_its_lock_answers_at_once(tmp_path: Path) -> None:
    # Another process holds the send's locks: the look does not wait for it to end.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from newsletter.sending.plan import run_lock\n"
         f"with run_lock(Path({str(tmp_path)!r}), {SLUG!r}):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        env=environment(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert running_send(tmp_path, SLUG) == f"pid {holder.pid}"
        with pytest.raises(NewsletterError, match=rf"is running \(pid {holder.pid}\)"):
            with run_lock(tmp_path, SLUG):
                pass
    finally:
        holder.communicate("", timeout=60)
    assert running_send(tmp_path, SLUG) == ""
