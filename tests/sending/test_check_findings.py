"""Pre-flight findings are typed: each carries a stable check id and a Severity enum, and
what the send decides (refuse even with --force, waive invalid rows) keys on the id, never
on the words. The printed line is what it was before the ids existed."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from support.helpers import write_issue

from newsletter.common.config import Settings
from newsletter.domain.findings import Problem
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Check, Finding, Report, Severity
from newsletter.sending.policy import UNFORCEABLE

CHECKS_PACKAGE = Path(__file__).resolve().parents[2] / "newsletter" / "sending" / "checks"


def ids(report: Report) -> set[tuple[Check, Severity]]:
    return {(f.check, f.severity) for f in report.findings}


def test_ids_are_unique_kebab_case_strings_a_document_can_list() -> None:
    # An Enum silently makes a repeated value an alias: two checks would share one id.
    assert len(Check.__members__) == len(Check)
    for check in Check:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", check.value), check
    assert [s.value for s in Severity] == ["error", "warning", "info"]


def test_every_id_is_produced_by_some_check() -> None:
    # No id advertised that no check emits (each is named where its finding is made).
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for path in CHECKS_PACKAGE.glob("*.py")
        if path.name != "findings.py"
    )
    # The set-up ids come from doctor's problems by their words (checks.settings.setup_id;
    # tests/sending/test_check_setup_ids.py proves each is reached).
    from_setup = {problem.value for problem in Problem}
    unused = [
        check.name
        for check in Check
        if f"Check.{check.name}" not in source and check.value not in from_setup
    ]
    assert not unused, unused


def test_the_printed_line_is_unchanged_by_the_types() -> None:
    finding = Finding(Check.DRAFT, Severity.ERROR, "issues/x.md:5", "a draft", "delete it")
    assert finding.line() == "error: issues/x.md:5: a draft — delete it"
    note = Finding(Check.SUPPRESSED, Severity.INFO, "members.csv", "2 suppressed member(s)")
    assert note.line() == "info: members.csv: 2 suppressed member(s)"


def test_settings_findings_carry_their_ids(project: Path, ready: Settings) -> None:
    slug = write_issue(project, "## News\n\nBody text for the members.\n")
    settings = replace(ready, from_="News <news@example.org>", secret="too-short")
    report = run_checks(campaign_mod.prepare(settings, slug))
    assert (Check.PLACEHOLDER_SETTING, Severity.ERROR) in ids(report)
    assert (Check.WEAK_SECRET, Severity.ERROR) in ids(report)
    settings = replace(ready, secret="change-me-to-a-long-random-string")
    report = run_checks(campaign_mod.prepare(settings, slug))
    # .env.example's own secret: one finding, the weak-secret one (not also a placeholder).
    assert [f.check for f in report.errors if f.where == "NEWSLETTER_SECRET"] == [Check.WEAK_SECRET]


def test_issue_findings_carry_their_ids(project: Path, ready: Settings) -> None:
    slug = write_issue(
        project,
        "## News\n\n"
        "Register [here](https://example.org/register) or see [the old site](http://old.nhs.uk).\n\n"
        "This is {{ issue.title }} with <b>bold</b> words.\n\n"
        "## [Register](https://ti.uk) now for [the day](https://ti.uk/day)\n",
    )
    report = run_checks(campaign_mod.prepare(ready, slug))
    found = ids(report)
    assert {
        (Check.LINK_VAGUE, Severity.WARNING),
        (Check.LINK_PLACEHOLDER, Severity.WARNING),
        (Check.LINK_HTTP, Severity.WARNING),
        (Check.TEMPLATE_SYNTAX, Severity.ERROR),
        (Check.RAW_HTML, Severity.WARNING),
        (Check.HEADING_LINK, Severity.ERROR),
    } <= found
    template = next(f for f in report.findings if f.check is Check.TEMPLATE_SYNTAX)
    assert template.where == f"{project / 'issues' / 'probe.md'}:11"


def test_a_draft_is_refused_by_its_id_even_with_force(project: Path, ready: Settings) -> None:
    slug = write_issue(project, "## News\n\nBody text for the members.\n")
    path = project / "issues" / "probe.md"
    path.write_text(path.read_text("utf-8").replace("date:", "draft: true\ndate:"), "utf-8")
    report = run_checks(campaign_mod.prepare(ready, slug))
    (draft,) = [f for f in report.errors if f.check is Check.DRAFT]
    assert draft.where == f"{path}:5"
    # What --force cannot override is keyed by id: a reworded message changes nothing.
    assert Check.DRAFT in UNFORCEABLE
    assert all(isinstance(key, Check) for key in UNFORCEABLE)


def test_member_findings_and_skip_invalid_keep_the_id(project: Path, ready: Settings) -> None:
    slug = write_issue(project, "## News\n\nBody text for the members.\n")
    members = project / "members.csv"
    members.write_text(
        "email,first_name\nanna@nhs.uk,Anna\nbroken,Bob\nANNA@nhs.uk,Anna\n,Nobody\n",
        encoding="utf-8",
    )
    report = run_checks(campaign_mod.prepare(ready, slug, recipients=members))
    assert {
        (Check.INVALID_ROWS, Severity.ERROR),
        (Check.DUPLICATES, Severity.INFO),
        (Check.NO_ADDRESS, Severity.WARNING),
    } <= ids(report)
    waived = run_checks(campaign_mod.prepare(ready, slug, recipients=members), skip_invalid=True)
    (invalid,) = [f for f in waived.findings if f.check is Check.INVALID_ROWS]
    assert invalid.severity is Severity.WARNING
    assert invalid.fix == "left out (--skip-invalid)"
    assert not waived.errors
