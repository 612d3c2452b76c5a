"""Contacts exported from Outlook (ANSI, other languages), Excel ('Unicode Text'), Google
Contacts and Mailchimp are read as members' lists, and their columns fill the greeting and
{{ recipient.organisation }}."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import (
    dry_run_in_process,
    run_check,
    said,
    text_and_html,
    write_issue,
)
from support.projects import ROOT

from newsletter.common.config import Settings
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity

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


# ---- the lists chairs export --------------------------------------------------------------------

OUTLOOK = (
    '"Title","First Name","Middle Name","Last Name","Suffix","Company","Department",'
    '"Job Title","Business Street","Business Street 2","Business Street 3","Business City",'
    '"Business State","Business Postal Code","Business Country/Region","Home Street",'
    '"Home City","Home Postal Code","Home Country/Region","Assistant\'s Phone",'
    '"Business Fax","Business Phone","Home Phone","Mobile Phone","Other Phone",'
    '"Primary Phone","Account","Anniversary","Birthday","Categories","Children",'
    '"E-mail Address","E-mail Type","E-mail Display Name","E-mail 2 Address","E-mail 2 Type",'
    '"E-mail 2 Display Name","E-mail 3 Address","E-mail 3 Type","E-mail 3 Display Name",'
    '"Gender","Initials","Keywords","Language","Location","Manager\'s Name","Notes",'
    '"Office Location","Priority","Private","Profession","Sensitivity","Web Page"\n'
)

MAILCHIMP = (
    "Email Address,First Name,Last Name,Address,Phone Number,Birthday,Company,MEMBER_RATING,"
    "OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,"
    "CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS\n"
)

GOOGLE = (
    "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,"
    "Additional Name Yomi,Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,"
    "Short Name,Maiden Name,Birthday,Gender,Location,Billing Information,Directory Server,"
    "Mileage,Occupation,Hobby,Sensitivity,Priority,Subject,Notes,Language,Photo,"
    "Group Membership,E-mail 1 - Type,E-mail 1 - Value,E-mail 2 - Type,E-mail 2 - Value,"
    "Phone 1 - Type,Phone 1 - Value,Organization 1 - Type,Organization 1 - Name,"
    "Organization 1 - Title\n"
)

GOOGLE_NEW = (
    "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,"
    "Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,"
    "Organization Title,Organization Department,Birthday,Notes,Photo,Labels,"
    "E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value\n"
)


def row(header: str, **cells: str) -> str:
    """One CSV row for ``header`` with the named cells filled, every other cell empty."""
    import csv
    import io

    names = next(csv.reader([header]))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([cells.get(name, "") for name in names])
    return out.getvalue()


EXPORTS = {
    "outlook": (
        OUTLOOK,
        {"First Name": "Ann", "Last Name": "Lee", "E-mail Address": "ann@wmhtc.co.uk",
         "E-mail Type": "SMTP", "E-mail Display Name": "Ann Lee (ann@wmhtc.co.uk)",
         "Company": "Acme"},
        "address 'E-mail Address', first name 'First Name', last name 'Last Name', "
        "organisation 'Company'",
    ),
    "mailchimp": (
        MAILCHIMP,
        {"Email Address": "ann@wmhtc.co.uk", "First Name": "Ann", "Last Name": "Lee",
         "MEMBER_RATING": "2", "OPTIN_TIME": "2023-01-05 10:00:00", "TAGS": '"Members"'},
        "address 'Email Address', first name 'First Name', last name 'Last Name', "
        "organisation 'Company'",
    ),
    "google": (
        GOOGLE,
        {"Name": "Ann Lee", "Given Name": "Ann", "Family Name": "Lee",
         "Group Membership": "* myContacts", "E-mail 1 - Type": "* Work",
         "E-mail 1 - Value": "ann@wmhtc.co.uk ::: ann.lee@example.net"},
        "address 'E-mail 1 - Value', first name 'Given Name', last name 'Family Name', "
        "organisation 'Organization 1 - Name'",
    ),
    "google-new": (
        GOOGLE_NEW,
        {"First Name": "Ann", "Last Name": "Lee", "Labels": "* myContacts",
         "E-mail 1 - Label": "* Work", "E-mail 1 - Value": "ann@wmhtc.co.uk"},
        "address 'E-mail 1 - Value', first name 'First Name', last name 'Last Name', "
        "organisation 'Organization Name'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(EXPORTS))
def test_exports_produce_personalised_messages(project: Path, ready: Settings, kind: str) -> None:
    header, cells, columns = EXPORTS[kind]
    members = project / f"{kind}.csv"
    second = {key: "" for key in cells} | {
        key: "bo@wmhtc.co.uk" for key in cells if "E-mail" in key and "Value" in key
    }
    second |= {k: "bo@wmhtc.co.uk" for k in ("E-mail Address", "Email Address") if k in cells}
    members.write_text(header + row(header, **cells) + row(header, **second), encoding="utf-8")
    slug = write_issue(
        project,
        'Hello {{ recipient.first_name or "member" }}.\n',
        subject='{{ recipient.first_name or "Member" }}, your January news',
    )
    result, (ann, bo) = dry_run_in_process(ready, slug, members)
    assert result.written == 2
    assert result.report.columns_line() == columns
    assert str(ann["To"]) == "Ann Lee <ann@wmhtc.co.uk>"
    assert ann["Subject"] == "Ann, your January news"
    assert bo["Subject"] == "Member, your January news"
    text, html = text_and_html(ann)
    assert "Dear Ann," in text and "Hello Ann." in text and "Hello Ann." in html
    report = run_check(ready, slug, members)
    assert report.errors == []
    infos = said(report, Severity.INFO)
    assert f"{members}: columns used: {columns}" in infos
    if kind == "google":
        assert f"{members}: 1 row held several addresses: used the first (row 2)" in infos


def test_exports_in_the_cli_dry_run(project: Path) -> None:
    import subprocess
    import sys

    header, cells, columns = EXPORTS["google"]
    (project / "google.csv").write_text(header + row(header, **cells), encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
    }
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "send", "december-2023", "--dry-run",
         "--recipients", "google.csv"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"  columns:   {columns}" in done.stdout
    assert "  note:      1 row held several addresses: used the first (row 2)" in done.stdout
    assert "will send: 1 message(s)" in done.stdout
