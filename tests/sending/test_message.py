"""Each member's message: standards-complete, parseable by two independent parsers, personal,
and immune to header injection from recipient data."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import fast_mail_parser
import pytest

from newsletter.common.config import Settings
from newsletter.common.errors import ConfigError, TemplateError
from newsletter.members.suppression import verify_token
from newsletter.sending import campaign as campaign_mod

CSV_HEADER = "email,first_name,last_name,organisation\n"


def write_members(project: Path, rows: str) -> Path:
    path = project / "members.csv"
    path.write_text(CSV_HEADER + rows, encoding="utf-8")
    return path


def run_dry(settings: Settings, members: Path, slug: str = "december-2023"):
    camp = campaign_mod.prepare(settings, slug, recipients=members)
    result = campaign_mod.dry_run(camp, settings.outbox / slug)
    files = sorted(result.out_dir.glob("*.eml"))
    return camp, result, files


@pytest.fixture
def configured(settings: Settings) -> Settings:
    return replace(
        settings,
        from_="Cluster News <news@wmhtc.co.uk>",
        reply_to="david@wmhtc.co.uk",
        unsubscribe_url="https://wmhtc.example.org/unsubscribe?email={email}&token={token}",
        unsubscribe_mailto="unsubscribe@wmhtc.co.uk",
        secret="s3cret-for-tests",
    )


def test_messages_parse_and_carry_every_header(project: Path, configured: Settings) -> None:
    members = write_members(
        project,
        "jane@example.org,Jane,Doe,Acme\n"
        '"o\'brien@example.com","Zoë ""Z"", Jr.",O’Brien,"Widgets, Ltd"\n'
        "nofirst@example.net,,,\n",
    )
    _, result, files = run_dry(configured, members)
    assert result.written == 3 and len(files) == 3
    ids = set()
    for path in files:
        data = path.read_bytes()
        assert b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n")
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert not msg.defects and all(not p.defects for p in msg.walk())
        assert msg.get_content_type() == "multipart/alternative"
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        assert str(msg["From"]) == "Cluster News <news@wmhtc.co.uk>"
        assert str(msg["Reply-To"]) == "david@wmhtc.co.uk"
        assert msg["Subject"] == "Cluster News – December 2023: skills, statistics, events"
        assert msg["Date"].datetime is not None
        assert re.fullmatch(r"<[0-9a-f]+@wmhtc\.co\.uk>", msg["Message-ID"])
        ids.add(msg["Message-ID"])
        assert msg["List-Id"] == "Cluster News <cluster-news.wmhtc.co.uk>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # Second, independent parser (Rust mailparse).
        parsed = fast_mail_parser.parse_email(data)
        assert parsed.subject == msg["Subject"]
        assert parsed.text_plain and parsed.text_html
        assert parsed.text_plain[0].replace("\r\n", "\n") == parts[0].get_content().replace(
            "\r\n", "\n"
        )
        assert parsed.text_html[0].replace("\r\n", "\n") == parts[1].get_content().replace(
            "\r\n", "\n"
        )
    assert len(ids) == 3
    assert b"Subject: =?utf-8?" in files[0].read_bytes()  # RFC 2047 for the en dash


def test_personalisation_and_unsubscribe_target(project: Path, configured: Settings) -> None:
    members = write_members(
        project,
        'jane@example.org,Jane,Doe,Acme\n"o\'brien@example.com","Zoë ""Z"", Jr.",O’Brien,x\n,\n',
    )
    _, _, files = run_dry(configured, members)
    first, second = (
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files
    )
    text = first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    assert "Dear Jane," in text and "Dear Jane," in html
    assert first["To"].addresses[0].display_name == "Jane Doe"
    header_links = re.findall(r"<([^>]+)>", first["List-Unsubscribe"])
    assert header_links[1] == "mailto:unsubscribe@wmhtc.co.uk?subject=unsubscribe"
    url = header_links[0]
    assert url in text and url.replace("&", "&amp;") in html
    query = parse_qs(urlsplit(url).query)
    assert query["email"] == ["jane@example.org"]
    assert verify_token("jane@example.org", query["token"][0], "s3cret-for-tests")
    assert not verify_token("jane@example.org", query["token"][0], "another-secret")
    # A name with quotes, a comma and non-ASCII is encoded, not able to split the header.
    to = second["To"].addresses[0]
    assert to.addr_spec == "o'brien@example.com"
    assert to.display_name == 'Zoë "Z", Jr. O’Brien'
    assert "Dear Zoë &quot;Z&quot;, Jr.," in second.get_body(("html",)).get_content()


def test_recipient_data_cannot_inject_headers(project: Path, configured: Settings) -> None:
    members = write_members(
        project,
        '"evil@example.org","Eve\r\nBcc: victim@example.com","X\nSubject: spam",o\n'
        '"bad@example.org\r\nBcc: v@example.com",Bob,,\n',
    )
    camp, result, files = run_dry(configured, members)
    assert result.written == 1
    assert [row for row, _, _ in result.report.invalid] == [3]
    data = files[0].read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Bcc"] is None and msg.get_all("Subject") and len(msg.get_all("Subject")) == 1
    assert b"\r\nBcc:" not in data
    assert msg["To"].addresses[0].addr_spec == "evil@example.org"


def test_https_only_gets_one_click_header(project: Path, configured: Settings) -> None:
    members = write_members(project, "jane@example.org,Jane,Doe,Acme\n")
    plain = replace(configured, unsubscribe_url="")
    _, _, files = run_dry(plain, members)
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["List-Unsubscribe"] == "<mailto:unsubscribe@wmhtc.co.uk?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None


def test_subject_can_use_member_fields(project: Path, configured: Settings) -> None:
    issue = project / "issues" / "december-2023.md"
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            'subject: "Cluster News', 'subject: "{{ recipient.first_name }}, Cluster News', 1
        ),
        encoding="utf-8",
    )
    members = write_members(project, "jane@example.org,Jane,Doe,Acme\n")
    _, _, files = run_dry(configured, members)
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"].startswith("Jane, Cluster News – December 2023")


def test_unknown_member_field_is_caught_before_any_message(
    project: Path, configured: Settings
) -> None:
    template = project / "templates" / "email.mjml.j2"
    source = template.read_text(encoding="utf-8")
    template.write_text(
        source.replace(
            "<p>{{ greeting }}</p>", "<p>{{ greeting }} {{ recipient.membership_level }}</p>"
        ),
        encoding="utf-8",
    )
    line = (
        source.splitlines().index(
            next(ln for ln in source.splitlines() if "<p>{{ greeting }}</p>" in ln)
        )
        + 1
    )
    members = write_members(project, "jane@example.org,Jane,Doe,Acme\n")
    with pytest.raises(TemplateError) as caught:
        run_dry(configured, members)
    assert str(caught.value).startswith(
        f"{template}:{line}: recipient.membership_level is not a column"
    )
    assert not (configured.outbox / "december-2023").exists()


def test_bad_from_and_token_without_secret(project: Path, configured: Settings) -> None:
    members = write_members(project, "jane@example.org,Jane,Doe,Acme\n")
    with pytest.raises(ConfigError, match="NEWSLETTER_FROM"):
        run_dry(replace(configured, from_="not an address"), members)
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET"):
        run_dry(replace(configured, secret=""), members)


def test_dry_run_replaces_folder_and_skips(project: Path, configured: Settings) -> None:
    (project / "suppressed.csv").write_text(
        "email,reason,date\nJANE@example.org,bounced,2023-11-01\n", encoding="utf-8"
    )
    members = write_members(
        project,
        "jane@example.org,Jane,,\nann@example.org,Ann,,\nANN@Example.org,Ann2,,\nnot-an-address,X,,\n",
    )
    out = configured.outbox / "december-2023"
    run_dry(configured, members)  # a first run: the folder is ours from now on
    (out / "stale.eml").write_text("old")
    _, result, files = run_dry(configured, members)
    assert [p.name for p in files] == ["00001-ann@example.org.eml"]
    assert not (out / "stale.eml").exists()
    assert result.report.suppressed == [(2, "jane@example.org")]
    assert [(row, first) for row, _, first in result.report.duplicates] == [(4, 3)]
    assert [row for row, _, _ in result.report.invalid] == [5]


def test_personal_subject_fills_title_and_issue_text_cannot_fake_a_slot(
    project: Path, configured: Settings
) -> None:
    issue = project / "issues" / "december-2023.md"
    source = issue.read_text(encoding="utf-8")
    source = source.replace(
        'subject: "Cluster News', 'subject: "{{ recipient.first_name }}: Cluster News', 1
    )
    source = source.replace(
        "Thank you for all your hard work, Ahmar.", "Literal zzslot0zz and zz000000000000s0zz stay."
    )
    issue.write_text(source, encoding="utf-8")
    members = write_members(project, "jane@example.org,Jane,Doe,Acme\n")
    camp, _, files = run_dry(configured, members)
    assert camp.rendered.subject_display.startswith("{{ recipient.first_name }}: Cluster News")
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()
    assert "<title>Jane: Cluster News" in html
    assert "Literal zzslot0zz and zz000000000000s0zz stay." in html
    assert (
        "Literal zzslot0zz and zz000000000000s0zz stay." in msg.get_body(("plain",)).get_content()
    )


def test_long_and_tricky_names_stay_within_header_limits(
    project: Path, configured: Settings
) -> None:
    members = write_members(
        project, f"a@example.org,{'N' * 1200},,\nb@example.org,=?utf-8?q?Boss?=,,\n"
    )
    _, _, files = run_dry(configured, members)
    for path in files:
        data = path.read_bytes()
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
    first = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert first["To"].addresses[0].display_name.endswith("…")
    second = email.message_from_bytes(files[1].read_bytes(), policy=email.policy.default)
    assert second["To"].addresses[0].display_name == "=?utf-8?q?Boss?="


def test_unknown_unsubscribe_placeholder(project: Path, configured: Settings) -> None:
    members = write_members(project, "jane@example.org,Jane,Doe,Acme\n")
    with pytest.raises(ConfigError, match=r"unknown placeholder \{bogus\}"):
        run_dry(replace(configured, unsubscribe_url="https://x.org/{bogus}"), members)


def test_no_line_starts_with_a_dot(project: Path, configured: Settings) -> None:
    # Lines starting with "." would make SMTP dot-stuff every message (and some relays
    # mishandle them); quoted-printable can always say =2E instead.
    members = write_members(
        project, "dotty@example.org,.Dot,.Name,.Org\njane@example.org,Jane,Doe,Acme\n"
    )
    _, _, files = run_dry(configured, members)
    for path in files:
        data = path.read_bytes()
        assert b"\r\n." not in data
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert ".facts" in msg.get_body(("html",)).get_content()  # the CSS rule, decoded
    first = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert "Dear .Dot," in first.get_body(("plain",)).get_content()


def test_every_foldable_line_of_the_december_messages_fits_78_characters(
    project: Path, configured: Settings
) -> None:
    # RFC 5322 2.1.1: lines SHOULD be at most 78 characters (a header is folded at its
    # spaces). The multipart Content-Type with its boundary was 82 on one line.
    members = write_members(project, "jane@example.org,Jane,Doe,Acme\n")
    _, _, files = run_dry(configured, members)
    for path in files:
        data = path.read_bytes()
        for line in data.split(b"\r\n"):
            # Longer only where nothing can be folded: one unbreakable word (a long URL).
            assert len(line) <= 78 or b" " not in line.strip(), line
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/alternative" and msg.get_boundary()
        assert not msg.defects
