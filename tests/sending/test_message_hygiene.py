"""Message hygiene over arbitrary member data (property-based, hypothesis): whatever a CSV
cell holds — line breaks of every kind, control characters, RFC 2047 look-alikes, very
long words, any Unicode — every message parses without defects in two independent parsers
(Python's email package and the Rust mailparse behind fast-mail-parser), has only CRLF line
ends, no line over 998 octets, and exactly the headers it should."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from types import MappingProxyType

import fast_mail_parser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.common.config import Settings
from newsletter.common.errors import ConfigError
from newsletter.members.recipients import Recipient
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.message import MessageBuilder, make_sender

EXPECTED_HEADERS = {
    "from": 1, "reply-to": 1, "list-id": 1, "mime-version": 1, "to": 1, "subject": 1,
    "date": 1, "message-id": 1, "list-unsubscribe": 1, "list-unsubscribe-post": 1,
    "content-type": 1,
}  # fmt: skip


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory, make_project) -> MessageBuilder:
    folder = make_project(tmp_path_factory.mktemp("hygiene"), members=None)
    issue = folder / "issues" / "december-2023.md"
    text = issue.read_text(encoding="utf-8")
    # A subject made of member fields: the header path gets the arbitrary values too.
    text = text.replace(
        'subject: "Cluster News – December 2023: skills, statistics, events"',
        'subject: "{{ recipient.organisation }}: news for {{ recipient.first_name }} '
        '{{ recipient.last_name }}"',
    )
    issue.write_text(text, encoding="utf-8")
    (folder / "members.csv").write_text(
        "email,first_name,last_name,organisation\n", encoding="utf-8"
    )
    configured = Settings(
        issues_dir=folder / "issues",
        templates_dir=folder / "templates",
        suppressed=folder / "suppressed.csv",
        from_="Cluster News <news@wmhtc.co.uk>",
        reply_to="Office <office@wmhtc.co.uk>",
        unsubscribe_url="https://wmhtc.example.org/u?email={email}&token={token}",
        unsubscribe_mailto="unsubscribe@wmhtc.co.uk",
        secret="s3cret",
    )
    camp = campaign_mod.prepare(configured, "december-2023", recipients=folder / "members.csv")
    return camp.builder()


BREAKS = st.sampled_from(["\r\n", "\r", "\n", "\r\r\n", "\n\r", "\x0b", "\x0c", "\x85", "\u2028"])
TRICKY = st.sampled_from(
    ["=?utf-8?q?x?=", "Bcc: evil@example.org", ".", "..", "From ", "=", " ", "\t", "\x00"]
)
VALUE = st.lists(
    st.one_of(st.text(max_size=40), BREAKS, TRICKY, st.text(alphabet="x", min_size=900)),
    max_size=8,
).map("".join)
ADDRESSES = st.sampled_from(
    ["jane@example.org", "o'brien+news@example.co.uk", "a.b-c_d@sub.example.net"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(email_address=ADDRESSES, first=VALUE, last=VALUE, organisation=VALUE)
def test_any_member_data_makes_a_clean_message(
    builder: MessageBuilder, email_address: str, first: str, last: str, organisation: str
) -> None:
    fields = {
        "email": email_address,
        "first_name": first,
        "last_name": last,
        "organisation": organisation,
    }
    member = Recipient(email=email_address, row=2, fields=MappingProxyType(fields))
    data = builder.build(member).data

    # Only CRLF line ends: no bare CR, no bare LF.
    assert data.count(b"\r") == data.count(b"\r\n") == data.count(b"\n")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998

    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert not msg.defects and all(not part.defects for part in msg.walk())
    assert Counter(key.lower() for key in msg.keys()) == EXPECTED_HEADERS
    assert msg["To"].addresses[0].addr_spec == email_address
    assert "\n" not in str(msg["Subject"]) and "\r" not in str(msg["Subject"])
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for part in msg.iter_parts():
        assert not part.defects
        part.get_content()  # decodes (quoted-printable, utf-8) without error

    parsed = fast_mail_parser.parse_email(data)
    assert parsed.subject == str(msg["Subject"])
    assert parsed.text_plain and parsed.text_html


def test_a_line_break_in_a_cell_becomes_a_crlf_in_the_text_part(builder: MessageBuilder) -> None:
    fields = {
        "email": "jane@example.org",
        "first_name": "Jane",
        "last_name": "Doe",
        "organisation": "Smith, Jones\r\nand Partners\rLtd",
    }
    member = Recipient(email="jane@example.org", row=2, fields=MappingProxyType(fields))
    data = builder.build(member).data
    assert b"\r" not in data.replace(b"\r\n", b"")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "Smith, Jones and Partners Ltd: news for Jane Doe"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("from_", "@example.org"),
        ("from_", '"News <a b@example.org>"'),
        ("from_", "News <news@example>"),
        ("reply_to", "@example.org"),
        ("reply_to", "a b@example.org"),
        ("reply_to", "Office <office@>"),
    ],
)
def test_from_and_reply_to_are_validated(setting: str, value: str) -> None:
    values = {
        "from_": "Cluster News <news@example.org>",
        "org_name": "Cluster",
        "org_email": "news@example.org",
        "bulletin": "Cluster News",
        "reply_to": "",
    }
    values[setting] = value
    name = "NEWSLETTER_FROM" if setting == "from_" else "NEWSLETTER_REPLY_TO"
    with pytest.raises(ConfigError, match=name):
        make_sender(**values)


def test_good_from_and_reply_to_pass() -> None:
    sender = make_sender(
        from_="Cluster News <news@example.org>",
        org_name="Cluster",
        org_email="x@example.org",
        bulletin="Cluster News",
        reply_to="Office <office@example.org>",
    )
    assert sender.address == "news@example.org" and sender.reply_to
