"""The commands around sending as the chair uses them month after month (new, render, check,
send, list, archive), and issue-file inputs nobody here had tried: each test pins a fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import PREHEADER, run_cli
from smtp_servers import start_server

from newsletter.common.config import Settings
from newsletter.common.errors import IssueError
from newsletter.content.frontmatter import split_front_matter
from newsletter.content.issue import parse_issue
from newsletter.web.preview import render_files

MEMBERS = ["ann@nghealth.uk", "bob@mmedtech.uk", "cat@cdhealth.uk"]


def issue_file(folder: Path, front: str, body: str = "## News\n\nText.\n") -> Path:
    path = folder / "probe.md"
    path.write_text(
        f"---\ntitle: Probe\nsubject: Probe subject\npreheader: {PREHEADER}\n{front}---\n{body}",
        encoding="utf-8",
    )
    return path


# ---- dates written out -------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    ["1 December 2023", "December 1, 2023", "1st December 2023", "Dec 1 2023",
     "Friday 1 December 2023", "friday, december 1, 2023"],
)  # fmt: skip
def test_a_date_written_out_with_the_month_name_is_read(tmp_path: Path, written: str) -> None:
    """'date: 1 December 2023' was refused although nobody can misread it."""
    assert parse_issue(issue_file(tmp_path, f"date: {written}\n")).date == dt.date(2023, 12, 1)


def test_an_ambiguous_numeric_date_is_refused_naming_the_line_and_both_readings(
    tmp_path: Path,
) -> None:
    with pytest.raises(IssueError) as caught:
        parse_issue(issue_file(tmp_path, "date: 01/12/2023\n"))
    message = str(caught.value)
    assert "probe.md:5:" in message and "\n" not in message
    assert "2023-12-01" in message and "2023-01-12" in message


@pytest.mark.parametrize(
    ("written", "shown"),
    [("14/12/2023", "2023-12-14"), ("Monday 1 December 2023", "is a Friday"),
     ("31 February 2024", "February 2024 has no day 31")],
)  # fmt: skip
def test_a_wrong_or_one_way_numeric_date_says_what_to_write(
    tmp_path: Path, written: str, shown: str
) -> None:
    with pytest.raises(IssueError, match="YYYY-MM-DD") as caught:
        parse_issue(issue_file(tmp_path, f"date: {written}\n"))
    assert shown in str(caught.value)


def test_new_takes_a_written_out_date(project: Path) -> None:
    result = run_cli(["new", "winter-special", "--date", "3 December 2026"])
    assert result.returncode == 0, result.stderr
    assert "date: 2026-12-03" in (project / "issues" / "winter-special.md").read_text()
    refused = run_cli(["new", "other", "--date", "03/12/2026"])
    assert refused.returncode == 2
    assert "2026-12-03" in refused.stderr and "2026-03-12" in refused.stderr


# ---- ' #' on a continued front-matter line ------------------------------------------------


def test_a_hash_on_a_continued_line_is_kept_not_cut(tmp_path: Path) -> None:
    """YAML took ' #12 …' on the second line of a preheader for a comment: the preheader
    silently lost its end ('Funding calls, events and issue'). It is kept whole."""
    text = "---\npreheader: Funding calls, events\n  and issue #12 news\ntitle: x\n---\n"
    assert split_front_matter(text, tmp_path / "x.md")[0]["preheader"] == (
        "Funding calls, events and issue #12 news"
    )
    ok = "---\npreheader: Funding calls, events\n  and C# news\ntitle: x\n---\n"
    assert split_front_matter(ok, tmp_path / "x.md")[0]["preheader"] == (
        "Funding calls, events and C# news"
    )


def test_a_hash_line_that_breaks_the_yaml_is_named_not_the_next_line(tmp_path: Path) -> None:
    text = "---\npreheader:\n  Funding calls #3, events\n  and issue news\ntitle: x\n---\n"
    with pytest.raises(IssueError, match="' #'") as caught:
        split_front_matter(text, tmp_path / "x.md")
    assert ":3:" in str(caught.value)


# ---- a table inside a list item; a list numbered from 2023 --------------------------------

TABLE_IN_ITEM = """## Events

- Our events this year:

  | Event | Date |
  |---|---|
  | Expo | 9 May |
  | Summit | |

- Another item
"""


def test_a_table_inside_a_list_item_reads_as_one_line_per_row(
    settings: Settings, tmp_path: Path
) -> None:
    """The cells ran together: 'Our events this year: Event Date Expo 9 May Summit'."""
    issue_file(settings.issues_dir, "date: 2024-01-18\n", TABLE_IN_ITEM)
    html_path, text_path, _ = render_files(settings, "probe", tmp_path / "out")
    text = text_path.read_text(encoding="utf-8")
    assert "Our events this year:\n   Event: Expo; Date: 9 May\n   Event: Summit\n" in text
    html = html_path.read_text(encoding="utf-8")
    assert "Our events this year:<br>Event: Expo; Date: 9 May<br>Event: Summit</li>" in html


def test_a_list_numbered_from_2023_has_room_for_its_numbers(
    settings: Settings, tmp_path: Path
) -> None:
    body = "## Years\n\n2023. a good year\n2024. a better one\n\n## Steps\n\n1. one\n2. two\n"
    issue_file(settings.issues_dir, "date: 2024-01-18\n", body)
    html = render_files(settings, "probe", tmp_path / "out")[0].read_text(encoding="utf-8")
    assert '<ol start="2023" style="margin:0 0 16px; padding:0 0 0 22px; padding-left:50px">' in (
        html
    )
    assert '<ol style="margin:0 0 16px; padding:0 0 0 22px">' in html  # 1. 2. as before


# ---- a year of sends: a renamed issue, list -----------------------------------------------


def _env(port: int) -> dict[str, str]:
    return {
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",
        "NEWSLETTER_SMTP_PORT": str(port),
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
        "NEWSLETTER_TEST_TO": "chair@wmhtc.co.uk",
        "NEWSLETTER_ARCHIVE_URL": "https://wmhtc.co.uk/news",
    }


def _members(project: Path) -> None:
    rows = "".join(f"{a},{a[0].upper()}\n" for a in MEMBERS)
    (project / "recipients.csv").write_text("email,first_name\n" + rows, encoding="utf-8")


def _issue(project: Path, slug: str, day: str, extra: str = "") -> None:
    (project / "issues" / f"{slug}.md").write_text(
        f"---\ntitle: Cluster News {slug}\nsubject: Cluster News {slug}\n"
        f"preheader: {PREHEADER}\ndate: {day}\n{extra}---\n\n## News\n\nWelcome to "
        f"[our news](https://wmhtc.co.uk/news).\n",
        encoding="utf-8",
    )


def test_an_issue_renamed_after_its_send_is_not_sent_to_everyone_again(project: Path) -> None:
    """Members are journalled by slug: 'january.md' sent, then renamed 'january-2026.md',
    passed `check` as READY and a send mailed every member a second copy."""
    _members(project)
    _issue(project, "january", "2026-01-10")
    with start_server() as server:
        env = _env(server.port)
        assert run_cli(["send", "january", "--yes"], env=env).returncode == 0
        assert server.handler.count() == len(MEMBERS)
        issues = project / "issues"
        (issues / "january.md").rename(issues / "january-2026.md")
        check = run_cli(["check", "january-2026"], env=env)
        assert check.returncode == 1
        assert "already sent to 3 member(s) as 'january'" in check.stdout + check.stderr
        assert "issues/january.md" in check.stdout + check.stderr
        refused = run_cli(["send", "january-2026", "--yes"], env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert server.handler.count() == len(MEMBERS)  # nobody got a second copy
        # An issue of its own (another text) is not taken for the renamed one.
        _issue(project, "february", "2026-02-10")
        assert run_cli(["check", "february"], env=env).returncode == 0
        # Nor is the one renamed back: that is a resume, with nothing left to send.
        (issues / "january-2026.md").rename(issues / "january.md")
        again = run_cli(["send", "january", "--yes"], env=env)
        assert again.returncode == 0, again.stderr
        assert server.handler.count() == len(MEMBERS)


def test_list_keeps_sends_whose_file_is_gone_and_says_draft(project: Path) -> None:
    """`list` is "from the journal alone": an issue sent and then deleted or renamed
    vanished from it; a draft read 'never sent' like any other."""
    _members(project)
    _issue(project, "march", "2026-03-10")
    _issue(project, "a-rather-long-special-edition-slug", "2026-04-10", "draft: true\n")
    with start_server() as server:
        assert run_cli(["send", "march", "--yes"], env=_env(server.port)).returncode == 0
    (project / "issues" / "march.md").unlink()
    listed = run_cli(["list"]).stdout
    assert "march" in listed and "sent 3 of 3" in listed
    assert "no issue file march.md any more" in listed
    assert "a-rather-long-special-edition-slug never sent (draft)" in listed


def test_a_member_field_in_the_title_is_not_ready_and_in_the_preheader_is_filled(
    project: Path, ready: Settings
) -> None:
    """A preheader '{{ recipient.first_name }}, …' reached every inbox as typed and `check`
    said READY: the preheader is now filled per member like the subject (the web edition
    with the fallback). The title, shown in the archive and feed too, stays an error."""
    import email
    import email.policy

    from newsletter.sending.campaign import dry_run, prepare
    from newsletter.sending.checks import run_checks

    _members(project)
    (project / "issues" / "fields.md").write_text(
        "---\ntitle: \"News for {{ recipient.organisation or 'members' }}\"\n"
        "subject: \"{{ recipient.first_name or 'Member' }}, your news\"\n"
        "preheader: \"{{ recipient.first_name or 'Dear member' }}, here is what is inside.\"\n"
        "date: 2026-11-25\n---\n\n## Hello\n\nDear {{ recipient.first_name or 'member' }}.\n",
        encoding="utf-8",
    )
    report = run_checks(prepare(ready, "fields"), http_head=lambda url: None)
    errors = {f.where: f.message for f in report.errors}
    assert any(w.endswith("fields.md:2") and "title holds" in m for w, m in errors.items())
    assert not any(w.endswith(("fields.md:3", "fields.md:4")) for w in errors)
    camp = prepare(ready, "fields")
    result = dry_run(camp, ready.outbox / "fields", head=None)
    for path in sorted(result.out_dir.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = msg.get_body(("html",)).get_content()
        hidden = html.split('mso-hide:all;">', 1)[1].split("\u034f", 1)[0]
        assert "{{" not in hidden and "recipient" not in hidden
        first = msg["Subject"].split(",")[0]  # the same member's name, as the subject has it
        expected = first if first != "Member" else "Dear member"
        assert hidden.startswith(f"{expected}, here is what is inside."), hidden


# ---- the suppression list after Excel ------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_unsubscribe_into_a_list_excel_saved_as_utf16_or_ansi_keeps_it_readable(
    project: Path, encoding: str
) -> None:
    """UTF-8 rows were appended to a UTF-16 ('Unicode Text') or Windows-1252 list: a file
    no program reads right, and the next send refused it."""
    _members(project)
    _issue(project, "march", "2026-03-10")
    suppressed = project / "suppressed.csv"
    suppressed.write_bytes(
        "Email\tReason\tDate\r\nann@nghealth.uk\tdésabonnée\t29/11/2026\r\n".encode(encoding)
    )
    assert run_cli(["unsubscribe", " BOB@mmedtech.uk "]).returncode == 0
    text = suppressed.read_bytes().decode("utf-8-sig")  # one encoding all through
    lines = text.splitlines()
    assert lines[:2] == ["Email\tReason\tDate", "ann@nghealth.uk\tdésabonnée\t29/11/2026"]
    assert len(lines) == 3 and lines[2].startswith("BOB@mmedtech.uk\tunsubscribed\t")
    dry = run_cli(["send", "march", "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert "will send: 1 message(s)" in dry.stdout  # cat only
    assert run_cli(["resubscribe", "bob@mmedtech.uk"]).returncode == 0
    assert "BOB@" not in suppressed.read_bytes().decode("utf-8-sig")
    assert suppressed.read_bytes().startswith(b"\xef\xbb\xbfEmail\tReason")


def test_a_suppression_list_headed_email_address_is_read(project: Path) -> None:
    """Pasted from an export, the list's column was 'Email Address': every send, dry run
    and unsubscribe stopped at 'no email column' (the member list reads that header)."""
    _members(project)
    _issue(project, "march", "2026-03-10")
    suppressed = project / "suppressed.csv"
    suppressed.write_text("Email Address,Reason\r\nann@nghealth.uk,asked\r\n", encoding="utf-8")
    dry = run_cli(["send", "march", "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert "will send: 2 message(s)" in dry.stdout
    assert run_cli(["unsubscribe", "bob@mmedtech.uk"]).returncode == 0
    assert suppressed.read_text(encoding="utf-8").splitlines()[-1].startswith("bob@mmedtech.uk,")
    assert run_cli(["resubscribe", "ann@nghealth.uk"]).returncode == 0
    assert "ann@" not in suppressed.read_text(encoding="utf-8")


# ---- a year of issues: archive, feed, status --json ---------------------------------------

MONTHS = "january february march april may june july august september october november december"


def test_a_year_of_issues_every_page_and_report_tells_the_truth(project: Path) -> None:
    """Twelve issues: sent, test-sent, dry-run only, a draft, one 'archive: false', one
    future-dated, one titled with <&"; then list, status --json, archive and its feed."""
    import json
    from xml.etree import ElementTree as ET

    for path in (project / "issues").glob("*.md"):
        path.unlink()
    _members(project)
    for number, month in enumerate(MONTHS.split(), start=1):
        extra = {"april": "archive: false\n", "november": "draft: true\n"}.get(month, "")
        _issue(project, month, f"2026-{number:02d}-10", extra)
    december = project / "issues" / "december.md"
    december.write_text(  # dated after every other, never sent: in the archive all the same
        december.read_text().replace("title: Cluster News december", 'title: R&D <Week> "Q4"'),
        encoding="utf-8",
    )
    with start_server() as server:
        env = _env(server.port)
        for month in ("january", "february", "march", "april"):
            assert run_cli(["send", month, "--yes"], env=env).returncode == 0
        assert run_cli(["send", "may", "--test"], env=env).returncode == 0
        assert run_cli(["send", "june", "--dry-run"], env=env).returncode == 0
        assert run_cli(["send", "july", "--yes", "--limit", "1"], env=env).returncode == 0
        assert server.handler.count() == 4 * 3 + 1 + 1

    listed = run_cli(["list"], env=env).stdout.splitlines()[::2]
    assert [line.split()[1] for line in listed] == list(reversed(MONTHS.split()))
    states = {line.split()[1]: line.split(None, 2)[2] for line in listed}
    assert states["january"] == "sent 3 of 3" and states["april"] == "sent 3 of 3"
    assert states["may"] == "test-sent" and states["june"] == "never sent"
    assert states["july"] == "sent 1 of 3; 2 pending"
    assert states["november"] == "never sent (draft)"

    keys = None
    for month in ("january", "may", "june", "july"):
        report = json.loads(run_cli(["status", month, "--json"], env=env).stdout)
        keys = keys or set(report)
        assert set(report) == keys  # the same keys whatever happened
        assert set(report["feedback"]) == {"hard", "soft", "complaint", "unsubscribe"}
        assert report["members"] == 3
    assert report["pending"] == 2 and report["counts"]["sent"] == 1

    assert run_cli(["archive", "--out", "site"], env=env).returncode == 0
    site = project / "site"
    published = [m for m in MONTHS.split() if m not in ("april", "november")]
    assert sorted(p.stem for p in site.glob("*.html")) == sorted([*published, "index"])
    index = (site / "index.html").read_text(encoding="utf-8")
    assert (
        index.index('"december.html"')
        < index.index('"october.html"')
        < index.index('"january.html"')
    )
    assert "R&amp;D &lt;Week&gt; &#34;Q4&#34;" in index or 'R&amp;D &lt;Week&gt; "Q4"' in index
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(site / "feed.xml").getroot()
    entries = feed.findall(f"{atom}entry")
    assert [e.findtext(f"{atom}title") for e in entries][0] == 'R&D <Week> "Q4"'
    ids = [e.findtext(f"{atom}id") for e in entries]
    assert len(set(ids)) == len(ids) == len(published)
    for entry in entries:
        link = entry.find(f"{atom}link").get("href")
        assert link.startswith("https://wmhtc.co.uk/news/")
        assert (site / link.rsplit("/", 1)[1]).is_file()
        assert entry.findtext(f"{atom}updated") == entry.findtext(f"{atom}published")
        dt.datetime.fromisoformat(entry.findtext(f"{atom}updated"))
    assert feed.findtext(f"{atom}updated") == entries[0].findtext(f"{atom}updated")


def test_the_archive_keeps_the_page_of_a_sent_issue_whose_file_was_renamed(
    project: Path,
) -> None:
    """Emails already sent link to ARCHIVE_URL/SLUG.html: renaming the issue file (or
    deleting it) and rebuilding the archive took that page away, and the link 404ed."""
    _members(project)
    _issue(project, "jan", "2026-01-10")
    _issue(project, "feb", "2026-02-10")
    with start_server() as server:
        env = _env(server.port)
        assert run_cli(["send", "jan", "--yes"], env=env).returncode == 0
    assert run_cli(["archive", "--out", "site"], env=env).returncode == 0
    issues = project / "issues"
    (issues / "jan.md").rename(issues / "january-2026.md")
    (issues / "feb.md").unlink()  # never sent: its page goes
    built = run_cli(["archive", "--out", "site"], env=env)
    assert built.returncode == 0
    assert "kept site/jan.html" in built.stdout
    site = project / "site"
    assert (site / "jan.html").is_file() and (site / "january-2026.html").is_file()
    assert not (site / "feb.html").exists()
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "january-2026.html" in index and '"jan.html"' not in index
    # Taken off on purpose (the file is there, saying archive: false): not kept.
    (issues / "january-2026.md").rename(issues / "jan.md")
    text = (issues / "jan.md").read_text(encoding="utf-8")
    (issues / "jan.md").write_text(text.replace("---\n\n", "archive: false\n---\n\n", 1))
    assert run_cli(["archive", "--out", "site"], env=env).returncode == 0
    assert not (site / "jan.html").exists()


def test_unsubscribing_a_mistyped_address_says_it_is_no_member(project: Path) -> None:
    """'newsletter unsubscribe priya.sha@…' said 'suppressed priya.sha@…' and nothing else:
    the chair believed Priya unsubscribed, and priya.shah@… kept getting the bulletin."""
    _members(project)
    result = run_cli(["unsubscribe", "ann@nghealth.co", " CAT@cdhealth.uk", "x@elsewhere.org"])
    assert result.returncode == 0
    notes = result.stderr.splitlines()
    assert len(notes) == 2  # CAT@… is a member (any case, any space): no note
    assert "ann@nghealth.co is not one of the members" in notes[0]
    assert "did you mean ann@nghealth.uk?" in notes[0]
    assert "x@elsewhere.org is not one of the members" in notes[1]
    assert "did you mean" not in notes[1]
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "ann@nghealth.co," in suppressed and "x@elsewhere.org," in suppressed


@pytest.mark.parametrize("written", ["2023-12-1", "2023/12/01", "2023.12.01"])
def test_a_year_first_date_with_other_separators_is_read(tmp_path: Path, written: str) -> None:
    assert parse_issue(issue_file(tmp_path, f"date: {written}\n")).date == dt.date(2023, 12, 1)


def test_status_shows_the_record_when_the_members_list_cannot_be_read(project: Path) -> None:
    """A members CSV being edited (or re-exported without its address column) made
    `status` fail outright: the journal's record of who got the issue was not shown."""
    import json

    _members(project)
    _issue(project, "march", "2026-03-10")
    with start_server() as server:
        env = _env(server.port)
        assert run_cli(["send", "march", "--yes"], env=env).returncode == 0
    (project / "recipients.csv").write_text("name,phone\nAnn,0121\n", encoding="utf-8")
    shown = run_cli(["status", "march"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert "sent 3" in shown.stdout
    assert "pending: not counted" in shown.stdout and "no 'email' column" in shown.stdout
    report = json.loads(run_cli(["status", "march", "--json"], env=env).stdout)
    assert report["counts"]["sent"] == 3 and report["pending"] is None
    assert "no 'email' column" in report["members_error"]
    missing = run_cli(["status", "march", "-r", "nope.csv"], env=env)
    assert "nope.csv: no such file" in missing.stdout


def test_a_list_typed_from_1_again_is_not_numbered_on_from_the_one_above(
    settings: Settings, tmp_path: Path
) -> None:
    """CommonMark runs '1. one' on from a list just above it: the chair typed 1. and 2.,
    members read 2025. and 2026. An item typed '1.' after other numbers starts a new list;
    '1. 1. 1.' (numbering left to Markdown) stays one list."""
    body = (
        "## Years\n\n2023. a good year\n2024. a better one\n\n1. one\n2. two\n\n"
        "## Lazy\n\n1. a\n1. b\n1. c\n"
    )
    issue_file(settings.issues_dir, "date: 2024-01-18\n", body)
    html_path, text_path, _ = render_files(settings, "probe", tmp_path / "out")
    text = text_path.read_text(encoding="utf-8")
    assert "2024. a better one\n\n1. one\n2. two\n" in text
    assert "2025." not in text
    assert "\n1. a\n2. b\n3. c\n" in text
    html = html_path.read_text(encoding="utf-8")
    assert html.count("<ol") == 3


def test_an_address_copied_from_a_mail_program_is_unsubscribed_and_resubscribed(
    project: Path,
) -> None:
    """'newsletter unsubscribe "Cat Doe <cat@cdhealth.uk>"' (copied from Outlook's From line)
    was refused, though the members list reads that form; resubscribe repeated the address
    with its stray spaces."""
    _members(project)
    result = run_cli(["unsubscribe", "Cat Doe <CAT@cdhealth.uk>", "mailto:ann@nghealth.uk"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "suppressed CAT@cdhealth.uk",
        "suppressed ann@nghealth.uk",
    ]
    assert result.stderr == ""  # both are members: no "not one of the members" note
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "CAT@cdhealth.uk," in suppressed and "<" not in suppressed
    result = run_cli(["resubscribe", " <cat@cdhealth.uk> ", "--reason", "asked again"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "resubscribed cat@cdhealth.uk: asked again"
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "cdhealth" not in suppressed and "ann@nghealth.uk," in suppressed
