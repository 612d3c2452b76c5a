"""`newsletter check`: each check fails on a bad fixture and passes on a good one."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.common.config import Settings
from newsletter.common.errors import IssueError
from newsletter.content.skeleton import create_issue
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity

FRONT = '---\ntitle: T\nsubject: "{subject}"\npreheader: "{preheader}"\ndate: 2024-02-01\n---\n'
GOOD_PREHEADER = "What is inside this month, in a sentence of a useful length."


def issue(
    project: Path, body: str, subject: str = "Short subject", preheader: str = GOOD_PREHEADER
) -> str:
    path = project / "issues" / "probe.md"
    path.write_text(FRONT.format(subject=subject, preheader=preheader) + body, encoding="utf-8")
    return "probe"


def findings(settings: Settings, slug: str, **kwargs):
    camp = campaign_mod.prepare(settings, slug)
    return run_checks(camp, **kwargs)


def messages(report, severity: str) -> list[str]:
    return [f"{f.where}: {f.message}" for f in report.findings if f.severity == severity]


def test_new_issue_is_not_ready_until_written(project: Path, ready: Settings) -> None:
    path = create_issue(
        ready.issues_dir, ready.templates_dir, "january-2024", date=dt.date(2024, 1, 18)
    )
    text = path.read_text(encoding="utf-8")
    assert text.startswith('---\ntitle: "Cluster News – January 2024"')
    report = findings(ready, "january-2024")
    assert report.verdict().startswith("NOT READY")
    errors = messages(report, Severity.ERROR)
    where = f"{path}"
    assert f"{where}:4: the preheader is still the skeleton's placeholder" in errors
    assert f"{where}:6: this issue is a draft (draft: true): it cannot be sent to members" in errors
    lines = text.splitlines()
    opening = lines.index("## Headline of the opening piece") + 1
    signed = lines.index("Your name, your role") + 1
    assert (
        f"{where}:{opening}: skeleton text left in the issue: '## Headline of the opening piece'"
        in errors
    )
    assert f"{where}:{signed}: skeleton text left in the issue: 'Your name, your role'" in errors
    assert len(errors) == 16, errors
    # Written: every placeholder replaced, the draft line gone → READY, nothing to warn about.
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.startswith(("## ", "Write ", "Your name")):
            lines[number] = (
                line.replace("headline", f"news {number}")
                .replace("Write", f"We wrote {number}:")
                .replace("Your name", "Ann Lee")
            )
    written = (
        "\n".join(lines)
        .replace("draft: true\n", "")
        .replace("One sentence on what", "A sentence about what really")
    )
    written = written.replace("Headline of the opening piece", "A word from the chair")
    path.write_text(written + "\n", encoding="utf-8")
    report = findings(ready, "january-2024")
    assert report.errors == [] and report.warnings == [], report.findings
    assert report.verdict().startswith("READY to send to 6 member(s)")
    with pytest.raises(IssueError, match="already exists"):
        create_issue(
            ready.issues_dir, ready.templates_dir, "january-2024", date=dt.date(2024, 1, 18)
        )


def test_december_is_ready_when_unsubscribe_is_configured(
    ready: Settings, settings: Settings
) -> None:
    assert findings(ready, "december-2023").errors == []
    # No unsubscribe configured (a server is: its absence is an error of its own).
    report = findings(replace(settings, smtp_host=ready.smtp_host), "december-2023")
    assert [f.where for f in report.errors] == ["NEWSLETTER_UNSUBSCRIBE_URL"]
    assert report.verdict().startswith("NOT READY")


def test_subject_and_preheader(project: Path, ready: Settings) -> None:
    slug = issue(project, "Body text.\n", subject="S" * 70, preheader="Short")
    warned = messages(findings(ready, slug), Severity.WARNING)
    assert any("probe.md:3: subject is 70 characters" in m for m in warned)
    assert any("probe.md:4: preheader is very short" in m for m in warned)
    slug = issue(project, "Body text.\n")
    assert messages(findings(ready, slug), Severity.WARNING) == []


def test_links_and_images(project: Path, ready: Settings) -> None:
    body = (
        "Intro.\n\n"
        "Read the report [here](https://www.ons.gov.uk/report). Then more.\n\n"
        "An [old site](http://insecure.org.uk/) and a [draft](TODO) and [nothing](#).\n\n"
        "See [the example](https://www.example.com/page). And [](https://www.ons.gov.uk/x).\n\n"
        "![](https://cdn.wmhtc.co.uk/chart.png)\n"
    )
    slug = issue(project, body)
    warned = messages(findings(ready, slug), Severity.WARNING)
    assert (
        ':9: link text "here" does not say where it goes (in: "Read the report here.")'
        in " ".join(warned)
    )
    assert any(':11: link "old site"' in m and "http://" in m for m in warned)
    assert any('"draft"' in m and "placeholder" in m for m in warned)
    assert any('"nothing"' in m and "no target" in m for m in warned)
    assert any(':13: link "the example"' in m and "placeholder" in m for m in warned)
    assert any(
        ":15: image https://cdn.wmhtc.co.uk/chart.png has no alt text" in m
        for m in messages(findings(ready, slug), Severity.ERROR)
    )
    good = issue(
        project,
        "Read [the ONS report on life sciences](https://www.ons.gov.uk/r).\n\n![A chart](https://cdn.wmhtc.co.uk/c.png)\n",
    )
    assert messages(findings(ready, good), Severity.WARNING) == []


def test_size_limits(project: Path, ready: Settings) -> None:
    paragraph = "Words that fill the bulletin beyond any sensible length for one email. " * 10
    slug = issue(project, "".join(f"## Article {n}\n\n{paragraph}\n\n" for n in range(120)))
    errors = messages(findings(ready, slug), Severity.ERROR)
    assert any("Gmail clips messages above 102 KB" in m for m in errors)


def test_footer_identity_and_unsubscribe_presence(project: Path, ready: Settings) -> None:
    footer = project / "templates" / "partials" / "footer.mjml.j2"
    footer.write_text(
        footer.read_text(encoding="utf-8")
        .replace("{% for line in org.address_lines %}{{ line }}<br />{% endfor %}", "")
        .replace("{{ unsubscribe_url }}", "#"),
        encoding="utf-8",
    )
    errors = messages(findings(ready, "december-2023"), Severity.ERROR)
    assert any("postal address is missing from the footer" in m for m in errors)
    assert any("unsubscribe link is missing" in m for m in errors)


def test_sender_domain_alignment(ready: Settings) -> None:
    warned = messages(
        findings(ready, "december-2023", smtp_username="mailer@outlook.com"), Severity.WARNING
    )
    assert any("SMTP account is on outlook.com" in m for m in warned)
    assert (
        messages(
            findings(ready, "december-2023", smtp_username="news@wmhtc.co.uk"), Severity.WARNING
        )
        == []
    )


def test_member_rows(project: Path, ready: Settings) -> None:
    (project / "recipients.csv").write_text(
        "email,first_name,organisation\na@example.org,A,Acme\nbroken,B,X\nA@example.org,A2,Y\nc@example.org,C,\n",
        encoding="utf-8",
    )
    template = project / "templates" / "email.mjml.j2"
    template.write_text(
        template.read_text(encoding="utf-8").replace(
            "<p>{{ greeting }}</p>", "<p>{{ greeting }} ({{ recipient.organisation }})</p>"
        ),
        encoding="utf-8",
    )
    report = findings(ready, "december-2023")
    assert (
        f"{project / 'recipients.csv'}: 1 invalid address(es): row 3 'broken': "
        "An email address must have an @-sign."
    ) in messages(report, Severity.ERROR)
    assert (
        f"{project / 'recipients.csv'}: organisation is empty for 1 member (row 5): add a fallback"
    ) in messages(report, Severity.WARNING)
    assert report.members == 2


def test_unsubscribe_url_with_the_address_in_clear_is_warned(
    project: Path, ready: Settings
) -> None:
    create_issue(ready.issues_dir, ready.templates_dir, "january-2024", date=dt.date(2024, 1, 18))
    old_form = replace(ready, unsubscribe_url="https://wmhtc.co.uk/u?e={email}&t={token}")
    warned = [f for f in findings(old_form, "january-2024").warnings if "{email}" in f.message]
    assert len(warned) == 1 and warned[0].where == "NEWSLETTER_UNSUBSCRIBE_URL"
    assert "{token}" in warned[0].fix
    assert not [f for f in findings(ready, "january-2024").warnings if "{email}" in f.message]
