"""`newsletter check`: each check fails on a bad fixture and passes on a good one."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter import campaign as campaign_mod
from newsletter.config import Settings
from newsletter.errors import IssueError
from newsletter.preflight import ERROR, WARNING, run_checks
from newsletter.skeleton import create_issue

FRONT = '---\ntitle: T\nsubject: "{subject}"\npreheader: "{preheader}"\ndate: 2024-02-01\n---\n'
GOOD_PREHEADER = "What is inside this month, in a sentence of a useful length."


@pytest.fixture
def ready(settings: Settings) -> Settings:
    return replace(
        settings,
        unsubscribe_url="https://wmhtc.example.org/u?e={email}&t={token}",
        secret="k",
    )


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


def test_new_issue_round_trips_cleanly(project: Path, ready: Settings) -> None:
    path = create_issue(
        ready.issues_dir, ready.templates_dir, "january-2024", date=dt.date(2024, 1, 18)
    )
    assert path.read_text(encoding="utf-8").startswith('---\ntitle: "Cluster News – January 2024"')
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
    report = findings(settings, "december-2023")  # no unsubscribe configured
    assert [f.where for f in report.errors] == ["NEWSLETTER_UNSUBSCRIBE_URL"]
    assert report.verdict().startswith("NOT READY")


def test_subject_and_preheader(project: Path, ready: Settings) -> None:
    slug = issue(project, "Body text.\n", subject="S" * 70, preheader="Short")
    warned = messages(findings(ready, slug), WARNING)
    assert any("probe.md:3: subject is 70 characters" in m for m in warned)
    assert any("probe.md:4: preheader is very short" in m for m in warned)
    slug = issue(project, "Body text.\n")
    assert messages(findings(ready, slug), WARNING) == []


def test_links_and_images(project: Path, ready: Settings) -> None:
    body = (
        "Intro.\n\n"
        "Read the report [here](https://www.ons.gov.uk/report). Then more.\n\n"
        "An [old site](http://insecure.org.uk/) and a [draft](TODO) and [nothing](#).\n\n"
        "See [the example](https://www.example.com/page). And [](https://www.ons.gov.uk/x).\n\n"
        "![](https://cdn.wmhtc.co.uk/chart.png)\n"
    )
    slug = issue(project, body)
    warned = messages(findings(ready, slug), WARNING)
    assert (
        ':9: link text "here" does not say where it goes (in: "Read the report here.")'
        in " ".join(warned)
    )
    assert any(':11: link "old site"' in m and "http://" in m for m in warned)
    assert any('"draft"' in m and "placeholder" in m for m in warned)
    assert any('"nothing"' in m and "no target" in m for m in warned)
    assert any(':13: link "the example"' in m and "placeholder" in m for m in warned)
    assert any(":15: image https://cdn.wmhtc.co.uk/chart.png has no alt text" in m for m in warned)
    good = issue(
        project,
        "Read [the ONS report on life sciences](https://www.ons.gov.uk/r).\n\n![A chart](https://cdn.wmhtc.co.uk/c.png)\n",
    )
    assert messages(findings(ready, good), WARNING) == []


def test_size_limits(project: Path, ready: Settings) -> None:
    paragraph = "Words that fill the bulletin beyond any sensible length for one email. " * 10
    slug = issue(project, "".join(f"## Article {n}\n\n{paragraph}\n\n" for n in range(120)))
    errors = messages(findings(ready, slug), ERROR)
    assert any("Gmail clips messages above 102 KB" in m for m in errors)


def test_footer_identity_and_unsubscribe_presence(project: Path, ready: Settings) -> None:
    footer = project / "templates" / "partials" / "footer.mjml.j2"
    footer.write_text(
        footer.read_text(encoding="utf-8")
        .replace("{{ org.address }}", "")
        .replace("{{ unsubscribe_url }}", "#"),
        encoding="utf-8",
    )
    errors = messages(findings(ready, "december-2023"), ERROR)
    assert any("postal address is missing from the footer" in m for m in errors)
    assert any("unsubscribe link is missing" in m for m in errors)


def test_sender_domain_alignment(ready: Settings) -> None:
    warned = messages(findings(ready, "december-2023", smtp_username="mailer@outlook.com"), WARNING)
    assert any("SMTP account is on outlook.com" in m for m in warned)
    assert (
        messages(findings(ready, "december-2023", smtp_username="news@wmhtc.co.uk"), WARNING) == []
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
    assert any(
        "row" in m and "1 invalid address(es) (rows 3)" in m for m in messages(report, ERROR)
    )
    assert any("1 member(s) have no organisation (rows 5)" in m for m in messages(report, WARNING))
    assert report.members == 2
