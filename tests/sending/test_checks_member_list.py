"""`check` on the members' list: the shipped example list (found alone, or passed with -r)
and members left on placeholder domains are not READY; --skip-invalid asks what the send
with it would do."""

from __future__ import annotations

import shutil
from pathlib import Path

from support.helpers import cli_env, run_check, run_cli, said, write_issue
from support.projects import ROOT

from newsletter.common.config import Settings
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity

SLUG = "december-2023"

# ---- the example list is never READY -------------------------------------------------------


def test_check_with_only_the_example_list_is_not_ready(project: Path, ready: Settings) -> None:
    (project / "recipients.csv").rename(project / "recipients.csv.example")
    slug = write_issue(project, "## Hello\n\nDear members, this is January.\n")
    camp = campaign_mod.prepare(ready, slug, allow_example=True)
    report = run_checks(camp)
    assert said(report, Severity.ERROR) == [
        f"NEWSLETTER_RECIPIENTS: {ready.recipients} not found: this check used the example "
        "list recipients.csv.example, which a real send never uses"
    ]
    assert report.verdict().startswith("NOT READY")


def test_check_with_r_example_list_does_not_tell_to_pass_r(project: Path) -> None:
    shutil.copy(ROOT / "recipients.csv.example", project)
    result = run_cli(["check", SLUG, "-r", "recipients.csv.example"], cli_env())
    assert result.returncode == 1
    assert "or pass -r FILE" not in result.stdout
    assert "recipients.csv not found" not in result.stdout
    assert "recipients.csv.example is the example list" in result.stdout


def test_check_with_skip_invalid_agrees_with_the_send_that_leaves_them_out(
    project: Path,
) -> None:
    """A chair who always sends with --skip-invalid saw NOT READY (exit 1) from every
    month's check: check could not be asked the question the send would answer."""
    from support.helpers import run_cli

    members = project / "recipients.csv"
    members.write_text(
        members.read_text(encoding="utf-8") + "not-an-address,Broken,Row,Nowhere\n",
        encoding="utf-8",
    )
    env = {
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
        "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk",  # READY needs a server to send through
    }
    plain = run_cli(["check", "december-2023"], env=env)
    assert plain.returncode == 1 and "invalid address(es)" in plain.stdout
    assert "error: " in next(x for x in plain.stdout.splitlines() if "invalid address" in x)
    waived = run_cli(["check", "december-2023", "--skip-invalid"], env=env)
    assert waived.returncode == 0, waived.stdout
    line = next(x for x in waived.stdout.splitlines() if "invalid address" in x)
    assert line.startswith("warning: ") and line.endswith("left out (--skip-invalid)")
    assert "READY to send to" in waived.stdout


def test_members_left_on_placeholder_domains_are_named_by_row(
    project: Path, ready: Settings
) -> None:
    """recipients.csv copied from recipients.csv.example, partly filled in: `check` said
    READY although those rows reach nobody (example.org/.com/.net take no mail)."""
    example = (ROOT / "recipients.csv.example").read_text("utf-8").splitlines()
    # Rows 2-4 are the chair's own members now; rows 5-8 are still the example's.
    real = ["ann.lee@wmhtc.co.uk,Ann,Lee,WMHTC,yes", "raj.patel@aston.ac.uk,Raj,Patel,,yes"]
    mixed = [example[0], real[0], real[1], "bo.wu@uhb.nhs.uk,Bo,Wu,,yes", *example[1:4]]
    (project / "recipients.csv").write_text("\n".join(mixed) + "\n", encoding="utf-8")
    where = str(project / "recipients.csv")
    report = run_check(ready, "december-2023")
    assert report.errors == [], report.errors
    assert (
        f"{where}: 3 members on example.com, example.net, example.org, placeholder "
        "domains (rows 5, 6, 7)"
    ) in said(report, Severity.WARNING)
    assert report.verdict().startswith("READY to send to 6 member(s)")
    # Nothing but the example's members: no members' list at all.
    shutil.copy(ROOT / "recipients.csv.example", project / "recipients.csv")
    report = run_check(ready, "december-2023")
    assert said(report, Severity.ERROR) == [
        f"{where}: all 6 members are on example.com, example.net, example.org, "
        "placeholder domains (rows 2, 3, 4, 5, 7, 8)"
    ]
    assert report.verdict().startswith("NOT READY")
    one = "email\nnews@mail.example.org\n"  # a subdomain is a placeholder too
    (project / "recipients.csv").write_text(one, encoding="utf-8")
    assert said(run_check(ready, "december-2023"), Severity.ERROR) == [
        f"{where}: the only member is on mail.example.org, a placeholder domain (row 2)"
    ]
