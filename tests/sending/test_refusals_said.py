"""Issue 17, item 6: the dry run and `--test` were silent about a draft and skeleton text.

A brand-new issue, still `draft: true` and full of the skeleton's example text: the dry
run said "will send: 3 message(s)" and the test copy went out without a word. Both still
do their job (a draft is previewed that way) and now say what a real send would refuse."""

from __future__ import annotations

from pathlib import Path

from support.helpers import run_cli
from support.smtp_servers import start_server

ENV = {
    "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
    "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
    "NEWSLETTER_SECRET": "a-long-random-test-secret",
    "NEWSLETTER_TEST_TO": "chair@wmhtc.co.uk",
}


def test_the_dry_run_says_a_draft_full_of_skeleton_text_would_be_refused(
    project: Path,
) -> None:
    assert run_cli(["new", "january-2027"], ENV).returncode == 0
    dry = run_cli(["send", "january-2027", "--dry-run"], ENV)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    at = next(n for n, x in enumerate(lines) if x.startswith("  refused:   a real send would"))
    assert "'newsletter check january-2027' has them all" in lines[at]
    said = lines[at + 1 :]
    path = Path("issues", "january-2027.md")
    assert said[0].startswith(f"             {path}:6: this issue is a draft (draft: true)")
    assert any("the preheader is still the skeleton's placeholder" in x for x in said)
    assert any("skeleton text left in the issue" in x for x in said)
    assert "No mail was sent." in dry.stdout


def test_the_test_copy_goes_out_and_says_what_a_real_send_would_refuse(
    project: Path,
) -> None:
    assert run_cli(["new", "january-2027"], ENV).returncode == 0
    with start_server() as server:
        env = {
            **ENV,
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(server.port),
            "NEWSLETTER_SMTP_SECURITY": "none",
        }
        sent = run_cli(["send", "january-2027", "--test"], env)
        assert sent.returncode == 0, sent.stderr
        assert server.handler.count() == 1  # sent all the same: it is how a draft is seen
    notes = [x for x in sent.stderr.splitlines() if "a real send would refuse" in x]
    path = Path("issues", "january-2027.md")
    assert notes[0] == (
        f"note: a real send would refuse this issue: {path}:6: this issue is a draft "
        "(draft: true): it cannot be sent to members"
    )
    assert any("skeleton" in note for note in notes[1:])


def test_a_finished_issue_gets_no_such_lines(project: Path) -> None:
    dry = run_cli(["send", "december-2023", "--dry-run"], ENV)
    assert dry.returncode == 0, dry.stderr
    assert "would refuse" not in dry.stdout + dry.stderr
