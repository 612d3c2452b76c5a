"""What tripped a chair trying issue 10 end to end (real files, real renders).

A typo in a member field named the template, not the issue line; `check` said READY for
the bundled example list; Outlook's ANSI export and Excel's "Unicode Text" were refused;
the dry-run summary showed the subject's template code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter import campaign as campaign_mod
from newsletter.config import Settings
from newsletter.errors import TemplateError
from newsletter.preflight import ERROR, WARNING, run_checks

ROOT = Path(__file__).resolve().parent.parent
PREHEADER = "What is inside this month, in a sentence of a useful length."


@pytest.fixture
def ready(settings: Settings) -> Settings:
    return replace(
        settings,
        from_="Cluster News <news@wmhtc.co.uk>",
        unsubscribe_url="https://wmhtc.co.uk/u?e={email}&t={token}",
        secret="a-long-random-test-secret",
    )


def write_issue(project: Path, body: str, subject: str = "Cluster News – January") -> str:
    front = f"---\ntitle: January\nsubject: {json.dumps(subject)}\npreheader: {PREHEADER}\n"
    (project / "issues" / "probe.md").write_text(
        front + "date: 2024-01-18\n---\n" + body, encoding="utf-8"
    )
    return "probe"


def said(report, severity: str) -> list[str]:
    return [f"{f.where}: {f.message}" for f in report.findings if f.severity == severity]


# ---- a misspelt member field is reported where the chair typed it ------------------------


def test_misspelt_member_field_in_the_body_names_the_issue_line(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(project, "## Hello\n\nWelcome, {{ recipient.frist_name }}!\n")
    with pytest.raises(TemplateError) as caught:
        campaign_mod.prepare(ready, slug)
    error = caught.value
    assert (error.path, error.line) == (project / "issues" / "probe.md", 9)
    assert "recipient.frist_name is not a column of" in error.message
    assert error.hint.startswith("did you mean 'first_name'?")


def test_unknown_member_field_in_the_subject_names_the_subject_line(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(project, "## Hello\n\nText.\n", subject="{{ recipient.company }} news")
    with pytest.raises(TemplateError) as caught:
        campaign_mod.prepare(ready, slug)
    assert (caught.value.path, caught.value.line) == (project / "issues" / "probe.md", 3)


# ---- the example list is never READY -------------------------------------------------------


def test_check_with_only_the_example_list_is_not_ready(project: Path, ready: Settings) -> None:
    (project / "recipients.csv").rename(project / "recipients.csv.example")
    slug = write_issue(project, "## Hello\n\nDear members, this is January.\n")
    camp = campaign_mod.prepare(ready, slug, allow_example=True)
    report = run_checks(camp)
    assert said(report, ERROR) == [
        f"NEWSLETTER_RECIPIENTS: {ready.recipients} not found: this check used the example "
        "list recipients.csv.example, which a real send never uses"
    ]
    assert report.verdict().startswith("NOT READY")
