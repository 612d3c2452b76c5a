"""Issue 10: `check` tells the truth, and the lists and Markdown chairs really have work.

No false READY (placeholder settings, skeleton text, drafts, template syntax, contrast), no
false NOT READY (a multi-line address), member fields with fallbacks in body and subject,
Outlook/Mailchimp/Google/Excel exports, GFM tables, several buttons, bare URLs.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import chromium, new_page
from helpers import write_issue

from newsletter.common.config import Settings, load_settings
from newsletter.common.errors import IssueError
from newsletter.content.issue import load_issue
from newsletter.content.render import render_issue
from newsletter.content.skeleton import create_issue
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity
from newsletter.sending.checks.settings import ENV_EXAMPLE_PLACEHOLDERS

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parent.parent


def check(settings: Settings, slug: str, recipients: Path | None = None):
    return run_checks(campaign_mod.prepare(settings, slug, recipients=recipients))


def said(report, severity: str) -> list[str]:
    return [f"{f.where}: {f.message}" for f in report.findings if f.severity == severity]


def dry_run(settings: Settings, slug: str, recipients: Path | None = None):
    camp = campaign_mod.prepare(settings, slug, recipients=recipients)
    result = campaign_mod.dry_run(camp, settings.outbox / slug)
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(result.out_dir.glob("*.eml"))
    ]
    return result, messages


def parts(message) -> tuple[str, str]:
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


# ---- no false READY: settings ----------------------------------------------------------------


def test_env_example_copied_as_is_is_not_ready(project: Path) -> None:
    shutil.copy(ROOT / ".env.example", project / ".env")
    settings = load_settings(environ={}, dotenv_path=project / ".env")
    report = check(settings, "december-2023")
    assert said(report, Severity.ERROR) == [
        "NEWSLETTER_FROM: 'Cluster News <news@example.org>' is still the placeholder from "
        ".env.example",
        "NEWSLETTER_TEST_TO: 'chair@example.org' is still the placeholder from .env.example",
        "NEWSLETTER_UNSUBSCRIBE_URL: 'https://example.org/unsubscribe?token={token}' is still "
        "the placeholder from .env.example",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO: 'unsubscribe@example.org' is still the placeholder "
        "from .env.example",
        "NEWSLETTER_SECRET: the secret is still the placeholder from .env.example",
        "NEWSLETTER_SMTP_HOST: 'smtp.example.org' is still the placeholder from .env.example",
    ]
    assert report.verdict().startswith("NOT READY: 6 errors")


def test_placeholder_list_matches_env_example() -> None:
    from dotenv import dotenv_values

    shipped = dotenv_values(ROOT / ".env.example")
    for name, value in ENV_EXAMPLE_PLACEHOLDERS.items():
        assert shipped[f"NEWSLETTER_{name.rstrip('_').upper()}"] == value


def test_placeholder_domains_and_weak_secrets(ready: Settings) -> None:
    report = check(
        replace(
            ready,
            from_="News <news@example.com>",
            reply_to="desk@mail.example.net",
            unsubscribe_mailto="list@example.org",
            secret="short-secret",
        ),
        "december-2023",
    )
    assert said(report, Severity.ERROR) == [
        "NEWSLETTER_FROM: 'News <news@example.com>' is on example.com, a placeholder domain",
        "NEWSLETTER_REPLY_TO: 'desk@mail.example.net' is on mail.example.net, a placeholder domain",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO: 'list@example.org' is on example.org, a placeholder domain",
        "NEWSLETTER_SECRET: the secret is only 12 characters (at least 16 needed): "
        "unsubscribe links could be forged",
    ]
    changeme = check(replace(ready, secret="change-me-please-0123456789"), "december-2023")
    assert said(changeme, Severity.ERROR) == [
        "NEWSLETTER_SECRET: the secret is a placeholder: unsubscribe links could be forged"
    ]
    assert said(check(ready, "december-2023"), Severity.ERROR) == []


# ---- no false READY: the issue -----------------------------------------------------------------


def test_draft_cannot_be_sent_but_previews(project: Path, ready: Settings) -> None:
    slug = write_issue(project, "Body text.\n")
    path = project / "issues" / "probe.md"
    path.write_text(path.read_text("utf-8").replace("date:", "draft: true\ndate:"), "utf-8")
    assert load_issue(slug, ready.issues_dir).draft is True
    report = check(ready, slug)
    assert [(f.where, f.message, f.fix, f.check) for f in report.errors] == [
        (
            f"{path}:5",
            "this issue is a draft (draft: true): it cannot be sent to members",
            "delete the 'draft: true' line when it is ready; previews and --test sends work "
            "meanwhile",
            "draft",
        )
    ]
    # The preview renders it like any other issue.
    assert (
        "Body text." in render_issue(load_issue(slug, ready.issues_dir), ready.templates_dir).text
    )


def test_template_syntax_in_the_body_is_an_error_naming_the_line(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(
        project,
        "Hello {{ recipient.first_name or 'member' }}.\n\n"
        "This is {{ issue.title }} for you.\n\n"
        "{% if recipient.organisation %}Hi{% endif %}\n\n"
        "## News for {{ recipient.organisation }}\n",
    )
    path = project / "issues" / "probe.md"
    assert said(check(ready, slug), Severity.ERROR) == [
        f"{path}:9: template syntax '{{{{ issue.title }}}}' would be sent as typed",
        f"{path}:11: template syntax '{{% if recipient.organisation %}}' would be sent as typed",
        f"{path}:13: member field '{{{{ recipient.organisation }}}}' cannot be filled in a "
        "heading, button or image text",
    ]


def test_raw_html_footnotes_and_strikethrough_are_warnings(project: Path, ready: Settings) -> None:
    slug = write_issue(
        project,
        "Some <b>bold</b> words.\n\n"
        "A claim.[^1]\n\n"
        "A ~~mistake~~ here.\n\n"
        "Code `<b>` or `{{ x }}` and an autolink <https://www.ons.gov.uk/report> are fine.\n",
    )
    path = project / "issues" / "probe.md"
    report = check(ready, slug)
    assert report.errors == []  # `{{ x }}` in inline code is shown as written, on purpose
    assert said(report, Severity.WARNING) == [
        f"{path}:7: raw HTML '<b>' is shown as text in the email",
        f"{path}:9: footnote '[^1]' is not supported: it is shown as typed",
        f"{path}:11: strikethrough '~~mistake~~' is not supported: it is shown as typed",
    ]


def test_misspelt_required_key_is_reported_at_its_line(project: Path, ready: Settings) -> None:
    (project / "issues" / "typo.md").write_text(
        "---\ntitle: T\nsubject: S\npreheder: A preheader\ndate: 2024-01-18\n---\nBody.\n",
        encoding="utf-8",
    )
    with pytest.raises(IssueError) as caught:
        load_issue("typo", ready.issues_dir)
    assert caught.value.message == "unknown key 'preheder': did you mean 'preheader'?"
    assert caught.value.line == 4
    # An optional key misspelt is a warning with the same suggestion.
    slug = write_issue(project, "Body.\n")
    path = project / "issues" / "probe.md"
    path.write_text(path.read_text("utf-8").replace("date:", "archve: false\ndate:"), "utf-8")
    assert said(check(ready, slug), Severity.WARNING) == [
        f"{path}:5: unknown front-matter key 'archve' is ignored: did you mean 'archive'?"
    ]


# ---- colours -------------------------------------------------------------------------------


def set_colour(project: Path, key: str, value: str) -> str:
    """Set colours.KEY; return "path:line" of the key, as findings name it."""
    path = project / "templates" / "organisation.toml"
    lines = path.read_text("utf-8").splitlines()
    number = next(n for n, line in enumerate(lines, start=1) if line.startswith(f"{key} ="))
    lines[number - 1] = f'{key} = "{value}"'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{path}:{number}"


def test_yellow_brand_colour_is_not_ready(project: Path, ready: Settings) -> None:
    path = set_colour(project, "brand", "#f5c400")
    report = check(ready, "december-2023")
    assert said(report, Severity.ERROR) == [
        f"{path}: white text on colours.brand #f5c400 (header and section bands): "
        "contrast 1.6:1, below WCAG AA 4.5:1",
        f"{path}: colours.brand #f5c400 text on white (article headings): contrast 1.6:1, "
        "below WCAG AA 3:1",
    ]
    assert report.verdict().startswith("NOT READY")


def test_colour_just_below_aa_is_a_warning(project: Path, ready: Settings) -> None:
    path = set_colour(project, "accent", "#e0601a")
    report = check(ready, "december-2023")
    assert said(report, Severity.ERROR) == []
    assert said(report, Severity.WARNING) == [
        f"{path}: white text on colours.accent #e0601a (buttons): contrast 3.6:1, "
        "below WCAG AA 4.5:1"
    ]


# ---- no false NOT READY ----------------------------------------------------------------------


def test_long_multi_line_address_is_ready(project: Path, ready: Settings) -> None:
    path = project / "templates" / "organisation.toml"
    address = (
        '"""West Midlands HealthTech Cluster, c/o Innovation Birmingham Campus,\n'
        "Faraday Wharf, Holt Street, Birmingham Science Park Aston,\n"
        'Birmingham B7 4BB, West Midlands, United Kingdom"""'
    )
    text = path.read_text("utf-8").splitlines()
    text = [f"address = {address}" if line.startswith("address =") else line for line in text]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    report = check(ready, "december-2023")
    assert report.errors == [], report.errors
    _, (message, *_) = dry_run(ready, "december-2023")
    plain, html = parts(message)
    assert (
        "c/o Innovation Birmingham Campus<br>Faraday Wharf, Holt Street, Birmingham Science Park "
        "Aston<br>Birmingham B7 4BB"
    ) in html
    flat = " ".join(plain.split())
    assert (
        "c/o Innovation Birmingham Campus, Faraday Wharf, Holt Street, Birmingham Science Park "
        "Aston, Birmingham B7 4BB, West Midlands"
    ) in flat


# ---- personalisation --------------------------------------------------------------------------


def test_member_fields_with_fallbacks_in_body_and_subject(project: Path, ready: Settings) -> None:
    slug = write_issue(
        project,
        'Dear {{ recipient.first_name or "member" }}, of '
        "{{ recipient.organisation | default('your organisation') }}.\n\n"
        "## News\n\n"
        "Your **{{ recipient.organisation }}** news.\n",
        subject='{{ recipient.first_name or "Member" }}, your January news',
    )
    members = project / "members.csv"
    members.write_text(
        "email,first_name,organisation\nann@wmhtc.co.uk,Ann,Acme & Sons <Ltd>\nbob@wmhtc.co.uk,,\n",
        encoding="utf-8",
    )
    _, (ann, bob) = dry_run(ready, slug, members)
    assert ann["Subject"] == "Ann, your January news"
    assert bob["Subject"] == "Member, your January news"
    ann_text, ann_html = parts(ann)
    bob_text, bob_html = parts(bob)
    assert "Dear Ann, of Acme & Sons <Ltd>." in ann_text
    assert "Dear Ann, of Acme &amp; Sons &lt;Ltd&gt;." in ann_html
    assert "Your *Acme & Sons <Ltd>* news." in ann_text
    assert "Dear member, of your organisation." in bob_text
    assert "Dear member, of your organisation." in bob_html
    assert "{{" not in ann_text + ann_html + bob_text + bob_html
    # The field used without a fallback is a warning for the members who have it empty.
    report = check(ready, slug, members)
    assert said(report, Severity.WARNING) == [
        f"{project / 'issues' / 'probe.md'}:11: '{{{{ recipient.organisation }}}}' has no "
        "fallback: the web archive page shows nothing there",
        f"{members}: organisation is empty for 1 member (row 3): add a fallback",
    ]
    assert report.errors == []


def test_full_name_only_greets_with_the_name_as_written(project: Path, ready: Settings) -> None:
    members = project / "members.csv"
    members.write_text("Email,Name\nann@wmhtc.co.uk,Dr. Ann Lee\n", encoding="utf-8")
    _, (message,) = dry_run(ready, "december-2023", members)
    text, html = parts(message)
    assert "Dear Dr. Ann Lee," in text and "Dear Dr. Ann Lee," in html
    assert "Dr.," not in text


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
    result, (ann, bo) = dry_run(ready, slug, members)
    assert result.written == 2
    assert result.report.columns_line() == columns
    assert str(ann["To"]) == "Ann Lee <ann@wmhtc.co.uk>"
    assert ann["Subject"] == "Ann, your January news"
    assert bo["Subject"] == "Member, your January news"
    text, html = parts(ann)
    assert "Dear Ann," in text and "Hello Ann." in text and "Hello Ann." in html
    report = check(ready, slug, members)
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


# ---- Markdown chairs write --------------------------------------------------------------------

TABLE = (
    "## Dates\n\n"
    "| Event | Date | Places |\n"
    "|:--|:--|--:|\n"
    "| Topical Tuesday | 9 January | 40 |\n"
    "| [Skills workshop](https://www.wmhtc.co.uk/skills) | 27 February | 120 |\n"
)
WIDE = (
    "| Programme | Who can apply | Funding | Closes |\n"
    "|---|---|---|---|\n"
    "| Innovate UK Biomedical Catalyst 2024 late-stage award | UK SMEs with a medical "
    "technology ready for clinical validation | Up to £4 million per project | 17 April 2024 |\n"
)


def test_tables_render_as_email_tables_and_text(project: Path, ready: Settings) -> None:
    slug = write_issue(project, TABLE + "\n" + WIDE)
    _, (message, *_) = dry_run(ready, slug)
    text, html = parts(message)
    assert '<table class="data" role="table"' in html
    assert (
        '<th scope="col" style="border:1px solid #c5ced6; padding:6px 8px; text-align:left' in html
    )
    assert ">Topical Tuesday</td>" in html
    assert "border:1px solid #c5ced6" in html.replace(": ", ":")
    assert (
        "Event                Date         Places\n"
        "-------------------  -----------  ------\n"
        "Topical Tuesday      9 January        40\n"
        "Skills workshop [1]  27 February     120\n"
    ) in text.replace("\r\n", "\n")
    # Too wide for aligned columns: "Label: value" lines.
    assert (
        "Programme: Innovate UK Biomedical Catalyst 2024 late-stage award\n"
        "Who can apply: UK SMEs with a medical technology ready for clinical validation\n"
        "Funding: Up to £4 million per project\n"
        "Closes: 17 April 2024\n"
    ) in text.replace("\r\n", "\n")
    assert check(ready, slug).errors == []


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.mark.browser
def test_tables_and_buttons_fit_a_320px_phone(
    project: Path, ready: Settings, browser: Browser
) -> None:
    slug = write_issue(
        project,
        TABLE
        + "\n"
        + WIDE
        + "\n[Register for the workshop](https://www.wmhtc.co.uk/r){.button}\n"
        + "[Read the programme](https://www.wmhtc.co.uk/p){.button}\n",
    )
    _, (message, *_) = dry_run(ready, slug)
    _, html = parts(message)
    with new_page(browser, 320) as page:
        page.set_content(html, wait_until="load")
        sizes = page.evaluate(
            """() => ({
                page: document.documentElement.scrollWidth,
                tables: [...document.querySelectorAll('table.data')].map(t => {
                    const box = t.getBoundingClientRect();
                    return [box.left, box.right, t.scrollWidth, t.clientWidth];
                }),
                buttons: [...document.querySelectorAll('a')].filter(
                    a => /Register for|Read the programme/.test(a.textContent)
                ).map(a => { const b = a.getBoundingClientRect(); return [b.left, b.top, b.bottom]; }),
            })"""
        )
    assert sizes["page"] <= 320, sizes
    assert len(sizes["tables"]) == 2
    for left, right, scroll, client in sizes["tables"]:
        assert left >= 0 and right <= 320 and scroll <= client, sizes
    (left1, top1, bottom1), (left2, top2, _) = sizes["buttons"]
    assert top2 >= bottom1 and abs(left1 - left2) < 1, sizes  # stacked, one under the other


COMPANIES = (
    "| Company | Sector | Employees (FTE) | Date |\n"
    "|---|---|--:|---|\n"
    "| Acme Diagnostics Ltd | Medical device manufacturing | 240 (approx.) | 3 March |\n"
    "| BioNova | Digital health (software) | | 12 April |\n"
)

# Every word of every cell of the GFM tables: its text Range's line boxes. A word the browser
# broke across lines ("manufactu|ring", "Dat|e") has one client rect per line it spans, so
# more than one rect is exactly "split mid-word", whatever the font or the column widths.
# Words split at spaces and after hyphens ("late-|stage" may break at its hyphen).
WORDS_IN_CELLS = """() => [...document.querySelectorAll('table.data td, table.data th')]
    .filter(cell => cell.getClientRects().length)  // displayed
    .map(cell => {
        const split = [];
        const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
            if (!node.parentElement.getClientRects().length) continue;  // hidden label
            for (const m of node.data.matchAll(/[^\\s-]+-?/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (lines.size > 1) split.push(m[0]);
            }
        }
        return {text: cell.innerText.trim(), split,
                fits: cell.scrollWidth <= cell.clientWidth,
                right: cell.getBoundingClientRect().right};
    })"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [320, 375])
def test_table_rows_stack_as_label_value_lines_on_a_phone(
    project: Path, ready: Settings, browser: Browser, width: int
) -> None:
    slug = write_issue(project, TABLE + "\n" + WIDE + "\n" + COMPANIES)
    _, (message, *_) = dry_run(ready, slug)
    text, html = parts(message)
    with new_page(browser, width) as page:
        page.set_content(html, wait_until="load")
        cells = page.evaluate(WORDS_IN_CELLS)
        page_width = page.evaluate("document.documentElement.scrollWidth")
        heads = page.eval_on_selector_all(
            "table.data th", "ths => ths.filter(th => th.getClientRects().length).length"
        )
    assert page_width <= width
    assert heads == 0, "the header row shows on a phone: its labels are in the cells"
    assert [c["split"] for c in cells if c["split"]] == [], cells
    assert all(c["fits"] and c["right"] <= width for c in cells), cells
    shown = [" ".join(c["text"].split()) for c in cells]
    assert shown[:3] == ["Event: Topical Tuesday", "Date: 9 January", "Places: 40"]
    assert "Sector: Medical device manufacturing" in shown
    assert "Employees (FTE):" not in shown  # BioNova's empty cell is not a bare label
    assert len(shown) == 3 + 3 + 4 + 7
    # The plain-text part never sees the labels: still the aligned table.
    assert "Event:" not in text and "Topical Tuesday      9 January        40" in text


@pytest.mark.browser
def test_tables_keep_the_desktop_grid_and_hide_labels_from_outlook(
    project: Path, ready: Settings, browser: Browser
) -> None:
    slug = write_issue(project, TABLE + "\n" + COMPANIES)
    _, (message, *_) = dry_run(ready, slug)
    _, html = parts(message)
    # Outlook (Word engine, no media queries) and clients without <style> keep the plain
    # table: each label is hidden inline, in the form premailer leaves untouched.
    labels = re.findall(r'<span class="data-label" style="([^"]*)">([^<]*)</span>', html)
    assert len(labels) == 3 * 2 + 4 * 2
    assert all("display:none" in style and "mso-hide:all" in style for style, _ in labels)
    with new_page(browser, 600) as page:
        page.set_content(html, wait_until="load")
        rows = page.eval_on_selector_all(
            "table.data tr",
            """trs => trs.map(tr => [...tr.children].map(c => [
                getComputedStyle(c).display, Math.round(c.getBoundingClientRect().top),
                c.innerText.trim()]))""",
        )
    assert [cell[2] for cell in rows[0]] == ["Event", "Date", "Places"]
    assert [cell[2] for cell in rows[1]] == ["Topical Tuesday", "9 January", "40"]
    for row in rows:
        assert {cell[0] for cell in row} == {"table-cell"}
        assert len({cell[1] for cell in row}) == 1, row  # side by side


def test_several_buttons_each_become_a_button(project: Path, ready: Settings) -> None:
    slug = write_issue(
        project,
        "[Register](https://www.wmhtc.co.uk/r){.button}\n"
        "[Programme](https://www.wmhtc.co.uk/p){.button}\n\n"
        "[Apply now](https://www.wmhtc.co.uk/a){.button} [Read more about it](https://www.wmhtc.co.uk/m){.button}\n",
    )
    issue = load_issue(slug, ready.issues_dir)
    buttons = [(b.text, b.line) for b in issue.all_blocks()]
    assert buttons == [
        ("Register", 7),
        ("Programme", 8),
        ("Apply now", 10),
        ("Read more about it", 10),
    ]
    _, (message, *_) = dry_run(ready, slug)
    text, html = parts(message)
    assert html.count("background:#b4420f") >= 4 or html.count('bgcolor="#b4420f"') >= 4
    assert ">> Register:" in text and ">> Read more about it:" in text


def test_bare_urls_become_links_and_repeat_urls_share_a_number(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(
        project,
        "The report is at https://www.ons.gov.uk/report and www.wmhtc.co.uk has more.\n\n"
        "Read [the ONS report](https://www.ons.gov.uk/full) and "
        "[its summary](https://www.ons.gov.uk/summary); again: "
        "[the full ONS report](https://www.ons.gov.uk/full).\n",
    )
    _, (message, *_) = dry_run(ready, slug)
    text, html = parts(message)
    assert '<a href="https://www.ons.gov.uk/report"' in html
    assert '<a href="https://www.wmhtc.co.uk"' in html
    flat = " ".join(text.split())
    assert "The report is at <https://www.ons.gov.uk/report> and www.wmhtc.co.uk has" in flat
    assert "the ONS report [1] and its summary [2]; again: the full ONS report [1]." in flat
    assert text.count("[1] https://www.ons.gov.uk/full") == 1
    assert check(ready, slug).warnings == []


def test_new_takes_the_month_from_the_slug_and_sections_from_the_organisation(
    project: Path, ready: Settings
) -> None:
    path = create_issue(
        ready.issues_dir, ready.templates_dir, "march-2024", today=dt.date(2023, 12, 20)
    )
    text = path.read_text("utf-8")
    assert 'title: "Cluster News – March 2024"' in text and "date: 2024-03-01\n" in text
    assert "draft: true\n" in text
    assert "\n# Cluster’s events\n" in text and "\n# Spotlight on…\n" in text
    # The same month as today: today's date.
    same = create_issue(
        ready.issues_dir, ready.templates_dir, "december-2023-b", today=dt.date(2023, 12, 20)
    )
    assert "date: 2023-12-20\n" in same.read_text("utf-8")
    # Without a `sections` list: a neutral default, not one organisation's bulletin.
    toml = ready.templates_dir / "organisation.toml"
    content = toml.read_text("utf-8")
    start = content.index("sections = [")
    toml.write_text(content[:start] + content[content.index("]", start) + 2 :], "utf-8")
    neutral = create_issue(ready.issues_dir, ready.templates_dir, "april-2024").read_text("utf-8")
    headings = [line for line in neutral.splitlines() if line.startswith("# ")]
    assert headings == ["# News", "# Events", "# Opportunities"]


def test_preview_is_personalised_as_the_first_member_or_as(project: Path, ready: Settings) -> None:
    from newsletter.common.errors import RecipientsError
    from newsletter.web.preview import preview_member, write_email_html
    from newsletter.web.server import Preview, page

    slug = write_issue(
        project,
        "News for {{ recipient.organisation | default('your organisation') }}.\n",
        subject='{{ recipient.first_name or "Member" }}, your January news',
    )
    path = project / "issues" / "probe.md"
    first = Preview(ready, path, print, preview_member(ready)).current()
    assert first.subject == "Priya, your January news"
    assert "Dear Priya," in first.html and "News for Northgate Digital Health." in first.text
    assert '<dd class="subject">Priya, your January news</dd>' in page(first)
    chosen = Preview(ready, path, print, preview_member(ready, "INFO@mmedtech.uk")).current()
    assert chosen.subject == "Member, your January news"
    assert "Dear member," in chosen.text and "News for Pennine Diagnostics, Leeds." in chosen.text
    out, _ = write_email_html(ready, slug, project / "p.html", as_address="zoe.brennan@mmedtech.uk")
    assert "Dear Zoë," in out.read_text("utf-8")
    with pytest.raises(RecipientsError, match="nobody@example.org is not a member in the list"):
        preview_member(ready, "nobody@example.org")
    # No list yet: the anonymous sample, as before.
    assert preview_member(replace(ready, recipients=project / "none.csv")) is None


def test_a_draft_is_never_sent_even_with_force(project: Path) -> None:
    import subprocess
    import sys

    slug = write_issue(project, "Body text.\n")
    path = project / "issues" / "probe.md"
    path.write_text(path.read_text("utf-8").replace("date:", "draft: true\ndate:"), "utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",  # never reached: the checks refuse first
        "NEWSLETTER_SMTP_PORT": "9",
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
    }
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "send", slug, "--yes", "--force"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"error: {path.relative_to(project)}:5: this issue is a draft" in done.stderr
    assert "a draft is never sent, even with --force: delete its 'draft: true' line" in (
        done.stderr
    )


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
    report = check(ready, "december-2023")
    assert report.errors == [], report.errors
    assert (
        f"{where}: 3 members on example.com, example.net, example.org, placeholder "
        "domains (rows 5, 6, 7)"
    ) in said(report, Severity.WARNING)
    assert report.verdict().startswith("READY to send to 6 member(s)")
    # Nothing but the example's members: no members' list at all.
    shutil.copy(ROOT / "recipients.csv.example", project / "recipients.csv")
    report = check(ready, "december-2023")
    assert said(report, Severity.ERROR) == [
        f"{where}: all 6 members are on example.com, example.net, example.org, "
        "placeholder domains (rows 2, 3, 4, 5, 7, 8)"
    ]
    assert report.verdict().startswith("NOT READY")
    one = "email\nnews@mail.example.org\n"  # a subdomain is a placeholder too
    (project / "recipients.csv").write_text(one, encoding="utf-8")
    assert said(check(ready, "december-2023"), Severity.ERROR) == [
        f"{where}: the only member is on mail.example.org, a placeholder domain (row 2)"
    ]


@pytest.mark.parametrize("secret", ["short-secret", "change-me-to-a-long-random-string"])
def test_a_guessable_secret_is_refused_even_with_force(project: Path, secret: str) -> None:
    """--force overrides pre-flight errors, but not one that makes every member's unsubscribe
    link forgeable: nothing is sent and the line says what to do."""
    from helpers import run_cli

    from newsletter.records.journal import Journal

    env = {
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",  # never reached: the checks refuse first
        "NEWSLETTER_SMTP_PORT": "9",
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
        "NEWSLETTER_SECRET": secret,
    }
    done = run_cli(["send", "december-2023", "--yes", "--force"], env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "NEWSLETTER_SECRET" in done.stderr
    assert "a guessable NEWSLETTER_SECRET is never used, even with --force" in done.stderr
    with Journal.for_state_dir(project / ".newsletter") as journal:
        assert journal.counts("december-2023")["sent"] == 0
