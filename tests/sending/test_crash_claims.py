"""kill -9 of a real sending process at many points, with claims made several at a time and
pipelining across messages: nobody gets a second copy, the members left unknown are at most
a claim per connection, only one of them per connection can have reached the server, and
`status` tells the others (claimed, not begun) apart. Skipped where there is no SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.pipelining_servers import Script, ScriptedHandler, start_pipelining_server
from support.smtp_servers import addresses

from newsletter.common.config import Settings
from newsletter.records.journal import Journal, address_key
from newsletter.sending.engine import CLAIM_AHEAD
from newsletter.sending.status import send_status

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")

ROOT = Path(__file__).resolve().parents[2]
SLUG = "crash"
COUNT = 60

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{repo!r}, {tests!r}]
    from newsletter.common.config import Settings
    from newsletter.mail.smtp import transport_factory
    from newsletter.records.journal import Journal
    from newsletter.sending.engine import deliver
    from support.smtp_servers import addresses, make_message

    port, connections, state = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                        connections=connections, retry_base_delay=0.01)
    with Journal.for_state_dir(state) as journal:
        result = deliver(
            (make_message(a, i) for i, a in enumerate(addresses({count}), start=2)),
            slug={slug!r}, sender="news@example.org", journal=journal,
            transport_factory=transport_factory(settings), settings=settings,
        )
    print(result.sent, result.skipped, len(result.unknown))
    """
)


class SlowToAnswer(ScriptedHandler):
    """Keeps each message, then takes a moment to say 250: kills land between the two."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.record(server, envelope)
        await asyncio.sleep(0.003)
        return "250 2.0.0 Ok: queued"


def kill_after(args: list[str], server, received: int) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Progress, not time: woken when `received` messages arrived or the sender ended.
        try:
            server.handler.wait_for(received, alive=lambda: proc.poll() is None)
        finally:
            proc.kill()  # SIGKILL (a no-op if it ended); also a hung sender, before wait()
    finally:
        proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("connections", [1, 2])
@pytest.mark.parametrize("received", [1, 4, 9, 17, 33])
def test_kill_minus_9_with_claims_ahead_then_resume(
    tmp_path: Path, connections: int, received: int
) -> None:
    script = tmp_path / "send.py"
    script.write_text(
        SCRIPT.format(repo=str(ROOT), tests=str(ROOT / "tests"), count=COUNT, slug=SLUG)
    )
    state = tmp_path / "state"
    server = start_pipelining_server(handler=SlowToAnswer(Script()))
    try:
        args = [sys.executable, str(script), str(server.port), str(connections), str(state)]
        kill_after(args, server, received)
        # What the killed sender wrote before it died may still be in the server's socket
        # buffer: count the copies once the server has read and closed every connection.
        server.wait_until_idle()
        at_kill = server.handler.copies()
        with Journal.for_state_dir(state) as journal:
            unknown = {address_key(r.address) for r in journal.unknown(SLUG)}
            waiting = journal.not_begun(SLUG)
            sent = journal.addresses(SLUG, "sent")
        # What a kill can leave unknown: each connection's claim, at most.
        assert len(unknown) <= connections * CLAIM_AHEAD
        assert waiting <= unknown
        assert len(unknown - waiting) <= connections  # in flight, one per connection
        assert not any(at_kill.get(a, 0) for a in waiting)  # never reached the server
        assert all(at_kill.get(a) == 1 for a in sent)

        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        copies = server.handler.copies()
    finally:
        server.stop()
    for address in addresses(COUNT):
        key = address_key(address)
        if key in unknown:
            assert copies.get(key, 0) == at_kill.get(key, 0) <= 1  # never resent by itself
        else:
            assert copies.get(key, 0) == 1, address
    with Journal.for_state_dir(state) as journal:
        assert {address_key(r.address) for r in journal.unknown(SLUG)} == unknown
        assert journal.not_begun(SLUG) == waiting

    # status shows which unknown members were only claimed, never begun.
    report = send_status(Settings(state_dir=state, recipients=tmp_path / "none.csv"), SLUG)
    shown = {address_key(str(r["address"])): r["begun"] for r in report.unknown}
    assert shown == {key: key not in waiting for key in unknown}


def test_status_says_which_unknown_members_were_claimed_but_not_begun(project: Path) -> None:
    # The journal as a kill leaves it: a claim of four, the first sent, the second in
    # flight, the last two not begun.
    from support.helpers import run_cli
    from support.smtp_servers import make_message

    msgs = [make_message(f"m{n}@wmhtc.co.uk", n + 2) for n in range(4)]
    with Journal.for_state_dir(project / ".newsletter") as journal:
        journal.claim("december-2023", [(m, False) for m in msgs])
        journal.mark_sent("december-2023", msgs[0].to, "250 OK")
    shown = run_cli(["status", "december-2023"])
    assert shown.returncode == 0, shown.stderr
    lines = {line.split(":")[1].strip(): line for line in shown.stdout.splitlines() if "@" in line}
    assert "no reply (the run ended mid-transaction)" in lines[msgs[1].to]
    for msg in msgs[2:]:
        assert "claimed but not begun when the run ended: not sent" in lines[msg.to]
    as_json = run_cli(["status", "december-2023", "--json"])
    begun = {r["address"]: r["begun"] for r in json.loads(as_json.stdout)["unknown"]}
    assert begun == {msgs[1].to: True, msgs[2].to: False, msgs[3].to: False}
