"""What tripped a chair trying issue 10 end to end (real files, real renders).

A typo in a member field named the template, not the issue line; `check` said READY for
the bundled example list; Outlook's ANSI export and Excel's "Unicode Text" were refused;
the dry-run summary showed the subject's template code.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import write_issue

from newsletter.common.config import Settings
from newsletter.common.errors import TemplateError
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity

ROOT = Path(__file__).resolve().parent.parent


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
    assert said(report, Severity.ERROR) == [
        f"NEWSLETTER_RECIPIENTS: {ready.recipients} not found: this check used the example "
        "list recipients.csv.example, which a real send never uses"
    ]
    assert report.verdict().startswith("NOT READY")


# ---- the encodings Outlook and Excel save in -------------------------------------------------

OUTLOOK_HEADER = (
    '"Title","First Name","Middle Name","Last Name","Suffix","Company","Department",'
    '"Job Title","Business Street","Business City","E-mail Address","E-mail Type",'
    '"E-mail Display Name","E-mail 2 Address","E-mail 2 Type","E-mail 2 Display Name",'
    '"Notes","Priority","Private","Sensitivity"\r\n'
)


def test_outlook_ansi_export_is_read_as_windows_1252(project: Path, ready: Settings) -> None:
    # Outlook's "Export to a file > Comma Separated Values" writes the Windows ANSI code
    # page, not UTF-8: "Zoë" is the single byte 0xEB.
    rows = (
        '"Dr.","Zoë","","Brennan","","Mersey Medtech","","","1 Dock Rd\r\nUnit 2","Liverpool",'
        '"zoe@merseymedtech.com","SMTP","Zoë Brennan (zoe@merseymedtech.com)","","","","",'
        '"Normal","False","Normal"\r\n'
        '"","Søren","","Ødegård","","Nordic Care","","","","","soren@nordiccare.dk","SMTP",'
        '"","","","","","Normal","False","Normal"\r\n'
    )
    members = project / "outlook.csv"
    members.write_bytes((OUTLOOK_HEADER + rows).encode("cp1252"))
    slug = write_issue(project, "## Hello\n\nHello {{ recipient.first_name }}.\n")
    camp = campaign_mod.prepare(ready, slug, recipients=members)
    result = campaign_mod.dry_run(camp, ready.outbox / slug)
    assert result.written == 2
    assert result.report.encoding == "Windows-1252"
    texts = [path.read_bytes() for path in sorted(result.out_dir.glob("*.eml"))]
    import email
    import email.policy

    zoe, soren = (email.message_from_bytes(t, policy=email.policy.default) for t in texts)
    assert str(zoe["To"]) == "Zoë Brennan <zoe@merseymedtech.com>"
    assert "Hello Søren." in soren.get_body(("plain",)).get_content()
    report = run_checks(campaign_mod.prepare(ready, slug, recipients=members))
    assert report.errors == []
    assert (
        f"{members}: read as Windows-1252 (an ANSI export, not UTF-8): check that accented "
        "names look right in a dry run"
    ) in said(report, Severity.WARNING)


def test_excel_unicode_text_export_is_read(project: Path, ready: Settings) -> None:
    # Excel "Save as > Unicode Text (*.txt)": UTF-16 with a BOM, TAB-separated, CRLF.
    members = project / "members.txt"
    members.write_bytes(
        "E-mail\tName\tOrganisation\r\n"
        "ann.lee@wmhtc.co.uk\tDr. Ann Lee\tAston Medical\r\n"
        "jose@clyde.com\tJosé Núñez-García\tClyde Wearables\r\n".encode("utf-16")
    )
    slug = write_issue(project, "## Hello\n\nAt {{ recipient.organisation }}.\n")
    camp = campaign_mod.prepare(ready, slug, recipients=members)
    result = campaign_mod.dry_run(camp, ready.outbox / slug)
    assert result.written == 2
    # The greeting's column is named too: the full name, as no first-name column exists.
    assert result.report.columns_line() == (
        "address 'E-mail', full name 'Name', organisation 'Organisation'"
    )
    first = sorted(result.out_dir.glob("*.eml"))[0].read_bytes()
    import email
    import email.policy

    message = email.message_from_bytes(first, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    assert "Dear Dr. Ann Lee," in text and "At Aston Medical." in text
    report = run_checks(campaign_mod.prepare(ready, slug, recipients=members))
    assert report.errors == []


# ---- {{ recipient.organisation }} with every export ------------------------------------------

ORGANISATION_EXPORTS = {
    "outlook": ("First Name,Last Name,Company,E-mail Address\n", "Company"),
    "mailchimp": ("Email Address,First Name,Last Name,Company,MEMBER_RATING\n", "Company"),
    "google-new": ("First Name,Last Name,Organization Name,E-mail 1 - Value\n", "Organization Name"),
    "google-old": ("Name,Given Name,Family Name,E-mail 1 - Value,Organization 1 - Name\n",
                   "Organization 1 - Name"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(ORGANISATION_EXPORTS))
def test_organisation_field_works_with_each_export(
    project: Path, ready: Settings, kind: str
) -> None:
    import csv
    import io

    header, column = ORGANISATION_EXPORTS[kind]
    names = next(csv.reader([header]))
    values = {
        "First Name": "Ann", "Given Name": "Ann", "Name": "Ann Lee", "Last Name": "Lee",
        "Family Name": "Lee", column: "Aston Medical", "MEMBER_RATING": "2",
    }  # fmt: skip
    cells = [values.get(name, "ann@wmhtc.co.uk") for name in names]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    members = project / f"{kind}.csv"
    members.write_text(header + out.getvalue(), encoding="utf-8")
    slug = write_issue(project, "## Hello\n\nEveryone at {{ recipient.organisation }}.\n")
    camp = campaign_mod.prepare(ready, slug, recipients=members)
    result = campaign_mod.dry_run(camp, ready.outbox / slug)
    assert f"organisation {column!r}" in result.report.columns_line()
    import email
    import email.policy

    data = next(result.out_dir.glob("*.eml")).read_bytes()
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert "Everyone at Aston Medical." in message.get_body(("plain",)).get_content()


FOREIGN_OUTLOOK_EXPORTS = {
    "german": ("Vorname", "Nachname", "Firma", "E-Mail-Adresse"),
    "french": ("Prénom", "Nom", "Société", "Adresse de messagerie"),
    "dutch": ("Voornaam", "Achternaam", "Bedrijf", "E-mailadres"),
}


@pytest.mark.parametrize("language", sorted(FOREIGN_OUTLOOK_EXPORTS))
def test_outlook_exports_in_other_languages_are_read(
    project: Path, ready: Settings, language: str
) -> None:
    """A member organisation's assistant exports contacts from a German, French or Dutch
    Outlook: the list had no address column at all (exit 2) before."""
    first, last, company, address = FOREIGN_OUTLOOK_EXPORTS[language]
    members = project / f"{language}.csv"
    members.write_text(
        f"{first},{last},{company},{address}\nJürgen,Weiß,Charité,jw@charite.de\n",
        encoding="utf-8",
    )
    slug = write_issue(project, "## Hello\n\nEveryone at {{ recipient.organisation }}.\n")
    camp = campaign_mod.prepare(ready, slug, recipients=members)
    result = campaign_mod.dry_run(camp, ready.outbox / slug)
    assert result.written == 1
    assert result.report.columns_line() == (
        f"address {address!r}, first name {first!r}, last name {last!r}, organisation {company!r}"
    )
    import email
    import email.policy

    data = next(result.out_dir.glob("*.eml")).read_bytes()
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "jw@charite.de"
    text = message.get_body(("plain",)).get_content()
    assert "Jürgen" in text and "Everyone at Charité." in text


# ---- the summaries show the subject members will see -------------------------------------------


def test_dry_run_summary_shows_the_personalised_subject(project: Path) -> None:
    write_issue(
        project,
        "## Hello\n\nText.\n",
        subject='{{ recipient.first_name or "Member" }}, your January news',
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
    }
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "send", "probe", "--dry-run"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = lines.index('  subject:   {{ recipient.first_name or "Member" }}, your January news')
    assert lines[at + 1] == (
        '             e.g. "Priya, your January news" (priya.shah@nghealth.uk, row 2)'
    )


def test_subject_length_is_measured_as_members_read_it(project: Path, ready: Settings) -> None:
    # As typed, 74 characters; as Priya reads it, 41: no warning.
    subject = '{{ recipient.first_name or "Member" }}, your January news from the cluster'
    slug = write_issue(project, "## Hello\n\nText.\n", subject=subject)
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert not [w for w in said(report, Severity.WARNING) if "subject is" in w]
    # A long organisation name makes some members' subjects too long: the longest is named.
    subject = "January: {{ recipient.organisation }} in the cluster's news this month"
    slug = write_issue(project, "## Hello\n\nText.\n", subject=subject)
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert [w for w in said(report, Severity.WARNING) if "subject is" in w] == [
        f"{project / 'issues' / 'probe.md'}:3: subject is up to 71 characters as members "
        "read it (row 4); inboxes cut it at about 60"
    ]


def test_a_contact_without_an_address_is_skipped_not_an_error(
    project: Path, ready: Settings
) -> None:
    # Google Contacts exports everyone, including people known by phone only.
    members = project / "google.csv"
    members.write_text(
        "First Name,Last Name,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Value\n"
        "Ann,Lee,* Work,ann@wmhtc.co.uk,\n"
        "Rachel,Nguyen,,,+44 121 496 0000\n",
        encoding="utf-8",
    )
    slug = write_issue(project, "## Hello\n\nText.\n")
    report = run_checks(campaign_mod.prepare(ready, slug, recipients=members))
    assert report.errors == []
    assert f"{members}: 1 row has no address and is skipped (row 3)" in said(
        report, Severity.WARNING
    )
    assert report.members == 1


def test_preview_says_who_it_is_personalised_as(project: Path, ready: Settings) -> None:
    from newsletter.web.preview import preview_member
    from newsletter.web.server import Preview, page

    write_issue(project, "## Hello\n\nText.\n", subject='{{ recipient.first_name or "Member" }}!')
    path = project / "issues" / "probe.md"
    first = Preview(ready, path, print, preview_member(ready)).current()
    assert '<dt>To</dt><dd class="to">Priya Shah &lt;priya.shah@nghealth.uk&gt;</dd>' in page(first)
    nobody = preview_member(replace(ready, recipients=project / "none.csv"))
    anonymous = Preview(ready, path, print, nobody).current()
    assert (
        '<dd class="to">a member with no known name (no readable members&#x27; list: '
        "NEWSLETTER_RECIPIENTS)</dd>"
    ) in page(anonymous)


# ---- a fallback written with | inside a table cell ------------------------------------------


def test_default_filter_in_a_table_cell_is_one_cell(project: Path, ready: Settings) -> None:
    # The README's `| default("member")` has a pipe: in a table row it must not split the cell.
    slug = write_issue(
        project,
        "## Your membership\n\n"
        "| Member | Organisation |\n"
        "|---|---|\n"
        '| {{ recipient.first_name | default("member") }} | {{ recipient.organisation }} |\n\n'
        "Code stays as typed: `{{ a | b }}`.\n",
    )
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert report.errors == []
    camp = campaign_mod.prepare(ready, slug)
    result = campaign_mod.dry_run(camp, ready.outbox / slug)
    import email
    import email.policy

    priya, _, _, info, *_ = (
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(result.out_dir.glob("*.eml"))
    )
    text = info.get_body(("plain",)).get_content()
    html = priya.get_body(("html",)).get_content()
    assert "{{ recipient" not in text and "default(" not in text
    assert "member" in text and "Pennine Diagnostics, Leeds" in text
    assert "`{{ a | b }}`" not in text and "{{ a | b }}" in text
    assert ">Priya</td>" in html.replace("\n", "") or "Priya</td>" in html


def test_a_field_without_fallback_warns_that_the_web_archive_shows_a_gap(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(
        project, "## Hello\n\nWe hope everyone at {{ recipient.organisation }} is well.\n"
    )
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert (
        f"{project / 'issues' / 'probe.md'}:9: '{{{{ recipient.organisation }}}}' has no fallback: "
        "the web archive page shows nothing there"
    ) in said(report, Severity.WARNING)
    # With a fallback, or kept out of the archive, nothing to say.
    body = (
        '## Hello\n\nWe hope everyone at {{ recipient.organisation or "your company" }} is well.\n'
    )
    slug = write_issue(project, body)
    assert not [
        w
        for w in said(run_checks(campaign_mod.prepare(ready, slug)), Severity.WARNING)
        if "web archive" in w
    ]
