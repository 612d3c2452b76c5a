"""Issue files, member lists and pictures as real people produce them (adversarial trial).

Each test pins a fix: the input that broke or lied, read back from what the tool wrote (the
dry run's .eml files, the rendered HTML and text), not from what it said.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from browser import chromium, new_page
from helpers import run_cli, write_issue

ENV = {
    "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
    "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
    "NEWSLETTER_SECRET": "a-long-random-test-secret",
    "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk",  # READY needs a server to send through
}


def dry_run(project: Path, slug: str, *extra: str) -> list[email.message.EmailMessage]:
    """``newsletter send SLUG --dry-run``: every .eml it wrote, parsed, in member order."""
    done = run_cli(["send", slug, "--dry-run", *extra], env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((project / "outbox" / slug).glob("*.eml"))
    ]


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    """(HTML, plain text) of one member's message."""
    html = text = ""
    for part in message.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content().replace("\r\n", "\n")
        elif part.get_content_type() == "text/plain":
            text = part.get_content().replace("\r\n", "\n")
    return html, text


# ---- content is never lost -------------------------------------------------------------------


def test_code_blocks_inside_list_items_and_quotes_reach_both_parts(project: Path) -> None:
    """A code block indented under a bullet, or inside a quote, vanished from both parts
    (only the items' and quotes' paragraphs were read); a list in a quote lost its numbers
    and bullets ('3. Apply by Friday' read 'Apply by Friday')."""
    slug = write_issue(
        project,
        "## Setting up\n\n"
        "- Install the reader:\n\n"
        "  ```\n  pip install cluster-reader\n  ```\n\n"
        "  Then sign in.\n\n"
        "- Done.\n\n"
        "> The board's note:\n>\n>     quarterly-report-2024.pdf\n>\n"
        "> 3. Apply by Friday\n> 4. Pay by Monday\n>\n> - Bring a badge\n",
    )
    html, text = parts(dry_run(project, slug)[0])
    for words in ("pip install cluster-reader", "quarterly-report-2024.pdf", "Then sign in."):
        assert words in html
        assert words in text
    # A list in a quote keeps its numbers and bullets.
    for words in ("3. Apply by Friday", "4. Pay by Monday", "• Bring a badge"):
        assert words in html
        assert words in text
    # The paragraph after the code block starts on a line of its own, in both parts.
    assert re.search(r"<code\b[^>]*>pip install cluster-reader</code><br>Then sign in\.", html)
    assert "   pip install cluster-reader\n   Then sign in." in text


# ---- member lists ----------------------------------------------------------------------------


def test_an_unclosed_quote_that_swallows_members_is_refused_at_its_row(project: Path) -> None:
    """A stray double quote in a name ran on to the end of the file: every later member was
    read as part of that cell, and check said READY for one member of four."""
    (project / "members.csv").write_text(
        "email,first_name\n"
        'anna@hospital.de,"Anna\n'
        "bob@hospital.de,Bob\n"
        "carol@hospital.de,Carol\n"
        "dan@hospital.de,Dan\n",
        encoding="utf-8",
    )
    for command in (["check", "december-2023"], ["send", "december-2023", "--dry-run"]):
        done = run_cli([*command, "-r", "members.csv"], env=ENV)
        assert done.returncode == 2, done.stdout
        assert "READY" not in done.stdout
        assert done.stderr.startswith(
            'error: members.csv, row 2: a double quote (") in this row is not closed where the '
            "row ends: the rows after it (bob@hospital.de among them) were read as part of one"
        ), done.stderr
    # A cell that runs over lines without swallowing a member (an address, a note) is fine.
    (project / "members.csv").write_text(
        "email,first_name,organisation,notes\n"
        'anna@hospital.de,Anna,"Klinik\nBerlin, Mitte","call me\nor mail b@x.org, thanks"\n'
        "bob@hospital.de,Bob,Trust,\n",
        encoding="utf-8",
    )
    assert len(dry_run(project, "december-2023", "-r", "members.csv")) == 2


def test_a_workbook_saved_under_a_csv_name_is_named_as_one(project: Path) -> None:
    """An .xlsx renamed to .csv (a zip whose bytes all happened to decode) was read as text:
    "no 'email' column (columns found: 'PK\\x03\\x04…')"; an old .xls likewise."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as workbook:
        workbook.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        workbook.writestr("xl/worksheets/sheet1.xml", "<worksheet>email anna@h.de</worksheet>")
    (project / "members.csv").write_bytes(buffer.getvalue())
    (project / "old.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    for name, kind in (("members.csv", "(.xlsx)"), ("old.csv", "Excel 97-2003 workbook (.xls)")):
        for command in (["check", "december-2023"], ["send", "december-2023", "--dry-run"]):
            done = run_cli([*command, "-r", name], env=ENV)
            assert done.returncode == 2
            assert done.stderr.startswith(f"error: {name}: is ")
            assert f"{kind}, not a CSV file (in Excel use File > Save As > " in done.stderr
            assert "PK" not in done.stderr


# ---- front matter as chairs type it ----------------------------------------------------------


def front(subject_line: str) -> str:
    return (
        "---\ntitle: Cluster News – January\n" + subject_line + "\n"
        "preheader: Events, funding and a word from the chair for the year ahead.\n"
        "date: 2024-01-11\n---\n\n## Hello\n\nText.\n"
    )


def test_a_hash_in_an_unquoted_subject_is_kept_whole(project: Path) -> None:
    """YAML reads ' #' as a comment: 'subject: Cluster News #12: …' became the subject
    "Cluster News", and check said READY. The chair writes no YAML comments: the subject is
    taken whole, as written, quoted or not."""
    for line in (
        "subject: Cluster News #12 – skills and events",
        'subject: "Cluster News #12 – skills and events"',
    ):
        (project / "issues" / "probe.md").write_text(front(line), encoding="utf-8")
        assert dry_run(project, "probe")[0]["Subject"] == "Cluster News #12 – skills and events"
        done = run_cli(["check", "probe"], env=ENV)
        assert "comment" not in done.stdout + done.stderr


def test_yaml_quoting_mistakes_name_their_own_line_and_the_fix(project: Path) -> None:
    """An unclosed quote was reported at the closing '---' line; every YAML mistake got the
    same hint about ': ', whatever it was (an apostrophe inside '…', a leading '*' or '[')."""
    cases = {
        'subject: "Cluster News – January': 'close the quote, and write a " inside the value',
        "subject: 'The chair's January news'": "an apostrophe ends a value in '…': use double "
        'quotes instead — subject: "The chair\'s January news"',
        "subject: *New* events in January": 'put the value in double quotes — subject: "*New*',
        "subject: {{ recipient.first_name }}, your news": "put the value in double quotes — "
        'subject: "{{ recipient.first_name }}, your news"',
    }
    for line, hint in cases.items():
        (project / "issues" / "probe.md").write_text(front(line), encoding="utf-8")
        done = run_cli(["check", "probe"], env=ENV)
        assert done.returncode == 2
        assert done.stderr.startswith("error: issues/probe.md:3: front matter: "), done.stderr
        assert hint in done.stderr, done.stderr


def test_an_address_copied_with_its_name_or_as_a_mailto_link_is_used(project: Path) -> None:
    """'Jane Doe <jane@hospital.de>' (copied from a mail program's To line) made the row
    invalid, and check NOT READY, although the address is plain to see."""
    (project / "members.csv").write_text(
        "email,first_name\n"
        "Jane Doe <jane@hospital.de>,Jane\n"
        '"Lee, Ann" <ann.lee@hospital.de>,Ann\n'
        "mailto:bob@hospital.de,Bob\n"
        "JANE@hospital.de,Jane again\n"
        "Eve <>,Eve\n",
        encoding="utf-8",
    )
    done = run_cli(["check", "december-2023", "-r", "members.csv"], env=ENV)
    assert (
        "info: members.csv: 3 rows held a name or 'mailto:' around the address: used the "
        "address (rows 2, 3, 4)"
    ) in done.stdout
    assert "row 6 'Eve <>': An email address must have an @-sign." in done.stdout
    messages = dry_run(project, "december-2023", "-r", "members.csv")
    got = [message["To"].addresses[0].addr_spec for message in messages]
    assert got == ["jane@hospital.de", "ann.lee@hospital.de", "bob@hospital.de"]
    assert [message["To"].addresses[0].display_name for message in messages] == [
        "Jane",
        "Ann",
        "Bob",
    ]


def test_every_invalid_row_is_named_and_the_dry_run_says_a_send_would_stop(
    project: Path,
) -> None:
    """Past five invalid rows check said 'and 3 more' without the rows; the dry run listed
    them as 'skipped' while a real send refuses the list; a semicolon file's extra cell was
    blamed on 'an unquoted comma'."""
    rows = "".join(f"member{n}@,M{n}\n" for n in range(2, 10))  # rows 2-9 invalid
    (project / "members.csv").write_text(
        f"email;first_name\n{rows.replace(',', ';')}anna@hospital.de;Anna;Klinik; Berlin\n"
        "bob@hospital.de;Bob\nBOB@hospital.de;Bob\n",
        encoding="utf-8",
    )
    done = run_cli(["check", "december-2023", "-r", "members.csv"], env=ENV)
    assert done.returncode == 1
    assert "; and 4 more (rows 7, 8, 9, 10) — fix them, or send with --skip-invalid" in (
        done.stdout
    )
    assert "1 duplicate address(es) will be sent once (row 12 left out)" in done.stdout
    dry = run_cli(["send", "december-2023", "--dry-run", "-r", "members.csv"], env=ENV)
    assert "  skipped:   9 invalid (rows 2, 3, 4, 5, 6, 7, 8, 9, 10)\n" in dry.stdout
    assert (
        "  refused:   a real send stops at invalid rows: fix them, or add --skip-invalid\n"
    ) in dry.stdout
    # Row 10's reason names the semicolon (shown by check when it is among the first five).
    (project / "members.csv").write_text(
        "email;first_name\nanna@hospital.de;Anna;Klinik; Berlin\nbob@hospital.de;Bob\n",
        encoding="utf-8",
    )
    done = run_cli(["check", "december-2023", "-r", "members.csv"], env=ENV)
    assert "2 values more than the header has columns (an unquoted semicolon?)" in done.stdout


# ---- check tells the truth about Markdown that is shown as typed -----------------------------


def test_links_markdown_could_not_read_are_not_ready(project: Path) -> None:
    """A space in a link's address, a space before '(', an undefined [reference], a missing
    ')', a member field in the address, an unclosed '<!--': every member saw the Markdown as
    typed (or a link to '%7B%7B…'), and check said READY."""
    slug = write_issue(
        project,
        "## Reports\n\n"
        "Read [the land report](https://www.wmhtc.co.uk/land report.pdf) now.\n\n"  # line 9
        "See [the statistics] (https://www.ons.gov.uk/stats) too.\n\n"  # 11
        "As [the BBC says][bbc], AI rules are coming.\n\n"  # 13
        "Book at [the portal](https://www.ukri.org/book here.\n\n"  # 15
        "Your page: [profile](https://www.wmhtc.co.uk/m?e={{recipient.email}}).\n\n"  # 17
        "**Deadline: 12 January.\n\n"  # 19
        "<!-- draft note\n\n"  # 21
        "Regards.\n",
    )
    done = run_cli(["check", slug], env=ENV)
    assert done.returncode == 1
    assert "NOT READY" in done.stdout
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    expected = {
        9: "a web address cannot hold spaces: write each as %20, or put it in <…>",
        11: "remove the space between ] and (",
        13: "([text][name] needs a line '[name]: https://…')",
        15: "close the ( … ) after the address",
        17: "would be sent as typed",
        21: "a comment '<!--' is never closed, so what follows shows as text",
    }
    for line, words in expected.items():
        assert any(
            e.startswith(f"error: issues/probe.md:{line}: ") and words in e for e in errors
        ), (line, errors)
    assert (
        "warning: issues/probe.md:19: '**' without its pair is shown as typed — close the "
        "bold text with '**', or delete the '**'"
    ) in done.stdout
    # What a chair means by the same words is READY, and a code span may show markup.
    slug = write_issue(
        project,
        "## Reports\n\n"
        "Read [the land report](<https://www.wmhtc.co.uk/land report.pdf>) now, and "
        "[the statistics][ons]. Type `[text](https://…)` for a link, **in bold**.\n\n"
        "Two studies agree [1][2], as numbered references typed as text.\n\n"
        "[ons]: https://www.ons.gov.uk/stats\n",
    )
    done = run_cli(["check", slug], env=ENV)
    assert done.returncode == 0, done.stdout
    assert "READY to send to 6 member(s): 0 errors, 0 warnings." in done.stdout


def test_an_issue_saved_by_notepad_in_ansi_or_unicode_says_how_to_resave(project: Path) -> None:
    """'not UTF-8 text (save it as UTF-8)' did not say which character, nor how; a UTF-16
    file ('Unicode' in Notepad) was blamed on line 1 as not UTF-8 alike."""
    text = front("subject: Cluster News – January").replace("Text.", "Café at £5 — “free”.")
    (project / "issues" / "ansi.md").write_bytes(text.encode("cp1252"))
    (project / "issues" / "wide.md").write_bytes(text.encode("utf-16"))
    resave = "(in Notepad: File > Save as, Encoding: UTF-8; in other editors, save as UTF-8)"
    done = run_cli(["check", "ansi"], env=ENV)
    assert done.returncode == 2
    assert done.stderr == (
        "error: issues/ansi.md:2: not UTF-8 text: byte 0x96 ('–' in Windows-1252) cannot be "
        f"read {resave}\n"
    )
    done = run_cli(["render", "wide"], env=ENV)
    assert done.returncode == 2
    assert (
        done.stderr == f"error: issues/wide.md:1: is UTF-16 text ('Unicode'), not UTF-8 {resave}\n"
    )


def test_a_picture_in_a_list_or_table_is_told_where_it_may_go(project: Path) -> None:
    """'- ![Team](images/team.jpg)' stands on a line of its own, yet the error said 'an image
    must stand on a line of its own (put a blank line before and after it)'."""
    for body, line in (
        ("## Team\n\n- ![Our team](images/team.jpg)\n", 9),
        ("## Team\n\n| Who | Photo |\n|---|---|\n| Ann | ![Ann](images/ann.jpg) |\n", 11),
    ):
        slug = write_issue(project, body)
        done = run_cli(["check", slug], env=ENV)
        assert done.returncode == 2
        assert done.stderr == (
            f"error: issues/probe.md:{line}: a picture cannot be inside a heading, list, quote, "
            "table or facts block (put it on a line of its own, with a blank line before and "
            "after)\n"
        )


def test_a_subscribed_column_holding_status_words_is_read(project: Path) -> None:
    """A CRM's 'Subscribed' column holding Subscribed/Unsubscribed made every row invalid."""
    (project / "members.csv").write_text(
        "Email,First Name,Subscribed\n"
        "ann@hospital.de,Ann,Subscribed\n"
        "bob@hospital.de,Bob,Unsubscribed\n"
        "cat@hospital.de,Cat,Opted out\n"
        "dan@hospital.de,Dan,maybe\n",
        encoding="utf-8",
    )
    done = run_cli(["send", "december-2023", "--dry-run", "-r", "members.csv"], env=ENV)
    assert "  skipped:   1 invalid (row 5)\n" in done.stdout
    assert "  skipped:   2 unsubscribed (rows 3, 4)\n" in done.stdout
    messages = dry_run(project, "december-2023", "-r", "members.csv")
    assert [m["To"].addresses[0].addr_spec for m in messages] == ["ann@hospital.de"]


def test_excels_sep_line_names_the_delimiter(project: Path) -> None:
    """A CSV starting 'sep=;' (written for Excel, which hides the line) was refused with
    "no 'email' column (columns found: 'sep=')"."""
    (project / "members.csv").write_bytes(
        b"sep=;\r\nEmail Address;First Name;Company\r\n"
        b"ann@hospital.de;Ann;Klinik, Berlin\r\nbob@hospital.de;Bob;Trust\r\n"
    )
    messages = dry_run(project, "december-2023", "-r", "members.csv")
    assert [str(m["To"]) for m in messages] == ["Ann <ann@hospital.de>", "Bob <bob@hospital.de>"]
    done = run_cli(["check", "december-2023", "-r", "members.csv"], env=ENV)
    assert "READY to send to 2 member(s)" in done.stdout


def test_a_heading_that_is_one_link_keeps_it_and_a_link_among_words_is_not_ready(
    project: Path,
) -> None:
    """'## [Register for the Expo](https://…)' kept the words and silently dropped the link
    from both parts, and check said READY. A heading that is one link now is a link (HTML
    and the text part's references); a link among other words in a heading is an error."""
    slug = write_issue(
        project,
        "## [Register for the Expo](https://www.ukri.org/expo)\n\nSix hundred exhibitors.\n\n"
        "### [Speakers](https://www.ukri.org/speakers)\n\nTwelve of them.\n",
    )
    html, text = parts(dry_run(project, slug)[0])
    assert re.search(
        r'<h3[^>]*><a href="https://www.ukri.org/expo"[^>]*>Register for the Expo</a>', html
    )
    assert re.search(r'<h4[^>]*><a href="https://www.ukri.org/speakers"[^>]*>Speakers</a>', html)
    assert "Register for the Expo\n---------------------\nhttps://www.ukri.org/expo\n" in text
    assert "Speakers:\nhttps://www.ukri.org/speakers\n" in text
    done = run_cli(["check", slug], env=ENV)
    assert "a heading shows text only" not in done.stdout, done.stdout
    slug = write_issue(
        project, "## Register [for the Expo](https://www.ukri.org/expo) today\n\nSix hundred.\n"
    )
    done = run_cli(["check", slug], env=ENV)
    assert done.returncode == 1
    assert (
        "error: issues/probe.md:7: a heading shows text only: the link in it is left out of the "
        "email — put the link in a sentence or a button under the heading"
    ) in done.stdout


def test_a_name_cell_holding_an_address_is_warned_before_it_greets(project: Path) -> None:
    """Outlook fills a contact's name with the address when it knows no name: check said
    READY and the member was greeted 'Dear anna@hospital.de,'. Line breaks in a name never
    reach a header (the To line stays one address)."""
    (project / "members.csv").write_text(
        "email,name\n"
        "anna@hospital.de,anna@hospital.de\n"
        'bob@hospital.de,"Bob\r\nBcc: victim@elsewhere.org"\n'
        "carol@hospital.de,Carol Lee\n",
        encoding="utf-8",
    )
    done = run_cli(["check", "december-2023", "-r", "members.csv"], env=ENV)
    assert (
        "warning: members.csv: the name used in the greeting holds an address for 2 members "
        "(rows 2, 3): row 2 would read 'Dear anna@hospital.de,' — put the member's name in the "
        "name column, or leave it empty to greet 'Dear member,'"
    ) in done.stdout
    messages = dry_run(project, "december-2023", "-r", "members.csv")
    assert [len(m.get_all("To")) for m in messages] == [1, 1, 1]
    assert all(m["Bcc"] is None for m in messages)
    assert messages[1]["To"].addresses[0].addr_spec == "bob@hospital.de"


# ---- other scripts -----------------------------------------------------------------------------


@pytest.mark.browser
def test_right_to_left_paragraphs_read_right_to_left(project: Path) -> None:
    """An Arabic paragraph in an English bulletin inherited the email's left-to-right
    direction: its full stop showed at the wrong end. Each block now takes its direction
    from its own first letters (dir="auto"), so English ones are unchanged."""
    slug = write_issue(
        project,
        "## مرحبا بالأعضاء\n\nمرحبا بكم في النشرة الإخبارية.\n\n"
        "- عنصر القائمة.\n\n## Welcome\n\nWelcome to the bulletin.\n",
        subject="أخبار — Cluster News – January",
    )
    message = dry_run(project, slug)[0]
    assert message["Subject"] == "أخبار — Cluster News – January"
    html, text = parts(message)
    assert "مرحبا بكم في النشرة الإخبارية." in text
    with chromium() as browser, new_page(browser, 600) as page:
        page.set_content(html)
        direction = page.evaluate(
            """words => [...document.querySelectorAll('p, li, h3')]
                .filter(e => words.some(w => e.textContent.includes(w)))
                .map(e => [e.textContent.trim(), getComputedStyle(e).direction])""",
            ["مرحبا", "عنصر", "Welcome"],
        )
    assert dict(direction) == {
        "مرحبا بالأعضاء": "rtl",
        "مرحبا بكم في النشرة الإخبارية.": "rtl",
        "عنصر القائمة.": "rtl",
        "Welcome": "ltr",
        "Welcome to the bulletin.": "ltr",
    }


def test_a_numbered_list_keeps_its_first_number(project: Path) -> None:
    """'3. Attend' continuing a list after a paragraph was renumbered '1.' in both parts,
    and '2023. A good year.' lost its year."""
    slug = write_issue(
        project,
        "## Steps\n\n1. Register\n2. Pay\n\nThen, once paid:\n\n3. Attend\n4. Give feedback\n\n"
        "Looking back:\n\n2023. A good year for the cluster.\n",
    )
    html, text = parts(dry_run(project, slug)[0])
    assert "1. Register\n2. Pay\n" in text
    assert "3. Attend\n4. Give feedback\n" in text
    assert "2023. A good year for the cluster.\n" in text
    assert [ol.split(" style")[0] for ol in html.split("<ol")[1:]] == [
        "",
        ' start="3"',
        ' start="2023"',
    ]


def test_prose_indented_like_in_a_word_processor_is_warned_as_code(project: Path) -> None:
    """A paragraph indented with a tab (or 4 spaces) is a Markdown code block: every member
    saw it in a typewriter font, and check said nothing."""
    slug = write_issue(
        project,
        "## Skills\n\nFirst paragraph.\n\n\tSecond paragraph, indented as in Word.\n\n"
        "```\nnewsletter send --test\n```\n",
    )
    done = run_cli(["check", slug], env=ENV)
    assert (
        "warning: issues/probe.md:11: this text is indented by 4 spaces or a tab, so it shows "
        "as code, in a typewriter font — remove the indentation; for code on purpose, put ``` "
        "lines around it"
    ) in done.stdout
    assert done.stdout.count("typewriter") == 1  # the fenced block is meant


def test_mailchimps_unsubscribed_export_mails_nobody(project: Path) -> None:
    """Mailchimp exports unsubscribed and cleaned contacts as CSVs shaped like the members'
    one; passed by mistake, check said READY to mail every person who had opted out."""
    (project / "members.csv").write_text(
        '"Email Address","First Name","Last Name",MEMBER_RATING,OPTIN_TIME,UNSUB_TIME,'
        "UNSUB_CAMPAIGN_TITLE,UNSUB_REASON\n"
        'ann@hospital.de,Ann,Lee,2,"2023-01-01 10:00:00","2023-06-01 09:00:00",June,"No longer '
        'interested"\n'
        'bob@hospital.de,Bob,Ray,2,"2023-01-01 10:00:00","2023-07-01 09:00:00",July,Other\n',
        encoding="utf-8",
    )
    done = run_cli(["check", "december-2023", "-r", "members.csv"], env=ENV)
    assert done.returncode == 1
    assert "error: members.csv: no members to send to" in done.stdout
    assert "2 unsubscribed member(s) skipped" in done.stdout
    assert dry_run(project, "december-2023", "-r", "members.csv") == []
    # A members' list that merely has the column, empty, mails everyone in it.
    (project / "members.csv").write_text(
        "Email Address,First Name,CLEAN_TIME\nann@hospital.de,Ann,\nbob@hospital.de,Bob,"
        "2023-07-01 09:00:00\n",
        encoding="utf-8",
    )
    messages = dry_run(project, "december-2023", "-r", "members.csv")
    assert [m["To"].addresses[0].addr_spec for m in messages] == ["ann@hospital.de"]


def test_a_typed_br_is_a_line_break_not_text(project: Path) -> None:
    """'<br>' typed out of habit reached every member as the characters '<br>' (check only
    warned about raw HTML)."""
    slug = write_issue(
        project,
        "## Where\n\nThe Exchange<br>Birmingham<BR/>B1 1AA, and <b>this</b> as typed.\n\n"
        "Type `<br>` for nothing.\n",
    )
    html, text = parts(dry_run(project, slug)[0])
    assert "The Exchange<br>Birmingham<br>B1 1AA, and &lt;b&gt;this&lt;/b&gt; as typed." in html
    assert "The Exchange\nBirmingham\nB1 1AA, and <b>this</b> as typed.\n" in text
    assert re.search(r"<code\b[^>]*>&lt;br&gt;</code>", html)
    done = run_cli(["check", slug], env=ENV)
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning")]
    assert warnings == [
        "warning: issues/probe.md:9: raw HTML '<b>' is shown as text in the email — use "
        "Markdown instead: **bold**, _italic_, [text](https://…), a blank line"
    ]


def test_an_issue_file_named_with_spaces_links_to_its_web_page(project: Path) -> None:
    """'issues/Jan News 2024.md': the text part's 'View in your browser' link read
    'https://…/Jan News 2024.html' (a link that stops at 'Jan'), and the archive's feed
    and index held the same unencoded address."""
    write_issue(project, "## Hello\n\nThe new year.\n")
    (project / "issues" / "probe.md").rename(project / "issues" / "Jan News 2024.md")
    env = {**ENV, "NEWSLETTER_ARCHIVE_URL": "https://news.wmhtc.co.uk"}
    done = run_cli(["send", "Jan News 2024", "--dry-run"], env=env)
    assert done.returncode == 0, done.stderr
    message = next((project / "outbox" / "Jan News 2024").glob("*.eml"))
    html, text = parts(email.message_from_bytes(message.read_bytes(), policy=email.policy.default))
    page = "https://news.wmhtc.co.uk/Jan%20News%202024.html"
    assert f"View in your browser: {page}\n" in text
    assert f'href="{page}"' in html
    done = run_cli(["archive", "--out", "site"], env=env)
    assert done.returncode == 0, done.stderr
    assert (project / "site" / "Jan News 2024.html").is_file()
    assert 'href="Jan%20News%202024.html"' in (project / "site" / "index.html").read_text()
    feed = (project / "site" / "feed.xml").read_text()
    assert f"<id>{page}</id>" in feed and "Jan News 2024.html" not in feed


def test_invisible_characters_copied_with_an_address_are_dropped(project: Path) -> None:
    """An address pasted from a web page or Teams carried a zero-width space (or a BOM where
    two exports were joined): the row was invalid for a character the chair cannot see."""
    (project / "members.csv").write_text(
        "email,first_name\n"
        "anna@hospital.de\u200b,Anna\n"
        "\ufeffbob@hospital.de,Bob\n"
        "carol@hos\u00adpital.de\u00a0,Carol\n",
        encoding="utf-8",
    )
    done = run_cli(["check", "december-2023", "-r", "members.csv"], env=ENV)
    assert "READY to send to 3 member(s)" in done.stdout, done.stdout
    messages = dry_run(project, "december-2023", "-r", "members.csv")
    assert [m["To"].addresses[0].addr_spec for m in messages] == [
        "anna@hospital.de",
        "bob@hospital.de",
        "carol@hospital.de",
    ]
