"""Issue 17, item 7: the summary after a provider's daily limit, and `status` afterwards.

The January trial: two "Next:" lines (resume in 24 hours; "run … for the other 14
member(s)", the --limit advice), "Deferred members are retried on the next run" beside
"deferred 0", and `status` then showed `deferred 1` without saying that Gmail's limit
stopped the run or when to resume. One next step now; `status` names the stop, its time
and the earliest resume, until a run gets past it."""

from __future__ import annotations

import json
from pathlib import Path

from support.helpers import run_cli
from support.smtp_servers import GMAIL_DAILY_LIMIT, QuotaHandler, start_server

SLUG = "december-2023"


def env(port: int) -> dict[str, str]:
    return {
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",
        "NEWSLETTER_SMTP_PORT": str(port),
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
    }


def members(project: Path, count: int) -> list[str]:
    addresses = [f"member{n}@members.wmhtc.co.uk" for n in range(count)]
    rows = "".join(f"{a},Name{n}\n" for n, a in enumerate(addresses))
    (project / "recipients.csv").write_text("email,first_name\n" + rows, encoding="utf-8")
    return addresses


def test_one_next_step_after_the_limit_and_status_names_the_stop(project: Path) -> None:
    addresses = members(project, 20)
    handler = QuotaHandler(6, GMAIL_DAILY_LIMIT, "RCPT")
    with start_server(handler) as server:
        first = run_cli(["send", SLUG, "--yes"], env(server.port))
        assert first.returncode == 1, first.stdout + first.stderr
        out = first.stdout
        assert "Stopped:   Gmail's daily sending limit was reached." in out
        nexts = [line for line in out.splitlines() if line.startswith("Next:")]
        assert len(nexts) == 1, out  # one next step: when, and the command
        assert nexts[0].startswith("Next:      run the same command again in 24 hours (after ")
        assert nexts[0].endswith(f": newsletter send {SLUG}")
        assert "It resumes with the 14 pending member(s); nobody gets a second copy." in out
        assert "Deferred members are retried" not in out  # this run deferred none
        assert f"Details: newsletter status {SLUG}." in out

        status = run_cli(["status", SLUG], env(server.port))
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        stopped = next(x for x in lines if x.startswith("stopped: "))
        assert stopped.startswith("stopped: Gmail's daily sending limit was reached, at ")
        assert "(the provider: 550 5.4.5 Daily user sending limit exceeded." in stopped
        resume = next(x for x in lines if x.startswith("resume:  "))
        assert resume.startswith("resume:  run the same command again in 24 hours (after ")
        assert resume.endswith(f": newsletter send {SLUG}")
        as_json = json.loads(run_cli(["status", SLUG, "--json"], env(server.port)).stdout)
        assert as_json["stopped"]["reason"] == "Gmail's daily sending limit was reached"
        assert as_json["stopped"]["why"] == "sender-refused"
        assert as_json["stopped"]["resume_after"] > as_json["stopped"]["stopped"]

        # The next day: the re-run sends the rest, and the stop is no longer shown.
        handler.recover()
        again = run_cli(["send", SLUG, "--yes"], env(server.port))
        assert again.returncode == 0, again.stdout + again.stderr
        after = run_cli(["status", SLUG], env(server.port)).stdout
        assert "stopped:" not in after and "resume:" not in after
    assert server.handler.copies() == {a: 1 for a in addresses}
