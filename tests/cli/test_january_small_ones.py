"""Issue 17, item 8, the small ones: `status` and `check` without a slug take the newest
issue (as `preview` does); the test-send line says whom the copy was personalised as and
"without TLS" rather than "(none)"; a dry run says the total size it wrote (3,000 members
with embedded photos wrote 1.4 GB unannounced). (A member field with a fallback and no
such column: tests/sending/test_check_sees_everything.py; the preview: tests/web/.)"""

from __future__ import annotations

from pathlib import Path

from support.helpers import run_cli
from support.smtp_servers import start_server

ENV = {
    "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk",
    "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
    "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
    "NEWSLETTER_SECRET": "a-long-random-test-secret",
    "NEWSLETTER_TEST_TO": "chair@wmhtc.co.uk",
}


def older_issue(project: Path) -> None:
    text = (project / "issues" / "december-2023.md").read_text(encoding="utf-8")
    older = text.replace("date: 2023-12-14", "date: 2023-11-09")
    (project / "issues" / "a-november-2023.md").write_text(older, encoding="utf-8")


def test_check_and_status_without_a_slug_take_the_newest_issue(project: Path) -> None:
    older_issue(project)  # first by name, older by date: the date decides
    checked = run_cli(["check"], ENV)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "note: no SLUG given: december-2023, the newest issue by date" in checked.stderr
    assert "READY to send to" in checked.stdout
    status = run_cli(["status"], ENV)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("december-2023: ")
    assert "december-2023, the newest issue by date" in status.stderr


def test_the_test_send_line_names_the_member_and_says_without_tls(project: Path) -> None:
    with start_server() as server:
        env = {
            **ENV,
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(server.port),
            "NEWSLETTER_SMTP_SECURITY": "none",
        }
        sent = run_cli(["send", "december-2023", "--test"], env)
        as_zoe = run_cli(
            ["send", "december-2023", "--test", "--as", "zoe.brennan@mmedtech.uk"], env
        )
    assert sent.returncode == 0 and as_zoe.returncode == 0, sent.stderr + as_zoe.stderr
    line = sent.stdout.splitlines()[0]
    assert line.startswith(
        "test copy of 'december-2023', personalised as Priya Shah <priya.shah@nghealth.uk>, "
        f"row 2, sent to chair@wmhtc.co.uk via 127.0.0.1:{server.port} without TLS: 250 "
    ), line
    assert "(none)" not in line
    assert "personalised as Zoë Brennan <zoe.brennan@mmedtech.uk>, row " in as_zoe.stdout


def test_the_dry_run_says_the_total_size_written(project: Path) -> None:
    dry = run_cli(["send", "december-2023", "--dry-run"], ENV)
    assert dry.returncode == 0, dry.stderr
    size = next(x for x in dry.stdout.splitlines() if x.startswith("  size:"))
    written = sum(p.stat().st_size for p in (project / "outbox" / "december-2023").glob("*.eml"))
    assert size.endswith(f"; {written / 1024:.1f} KB written in all"), size


def test_sizes_read_in_the_unit_that_fits() -> None:
    from newsletter.cli.views import size

    assert size(41_300) == "40.3 KB"
    assert size(12 * 1024 * 1024 + 512 * 1024) == "12.5 MB"
    assert size(int(1.4 * 1024**3)) == "1.4 GB"
