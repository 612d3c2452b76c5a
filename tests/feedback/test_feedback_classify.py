"""The feedback classifier over a corpus of real-world formats (tests/data/feedback/README.md
says where each format comes from). Table-driven: one row per file, its expected kind, the
reported address, severity/status and the original Message-ID it refers to."""

from __future__ import annotations

import pytest
from support.projects import DATA

from newsletter.feedback.bounces import severity
from newsletter.feedback.classify import classify

CORPUS = DATA / "feedback"
OWN, MAILTO = "david@wmhtc.co.uk", "unsubscribe@wmhtc.co.uk"

# file, kind, address, status ("" if none), source of the failure, original Message-ID
CASES = [
    (
        "postfix-dsn-user-unknown.eml",
        "hard-bounce",
        "priya.shah@example.org",
        "5.1.1",
        "dsn",
        "<9c1f4e2ab07d3c5e8a6f0b12@wmhtc.co.uk>",
    ),
    (
        "postfix-dsn-delayed.eml",
        "delayed",
        "zoe.brennan@example.com",
        "4.4.1",
        "dsn",
        "<0b2e5d3bc18e4d6f9b7a1c23@wmhtc.co.uk>",
    ),
    (
        "exim-failed-user-unknown.eml",
        "hard-bounce",
        "sian.griffiths@example.net",
        "5.1.1",
        "flufl.bounce",
        "<1c3f6e4cd29f5e7a0c8b2d34@wmhtc.co.uk>",
    ),
    (
        "exchange-online-ndr-recipient-not-found.eml",
        "hard-bounce",
        "rachel.nguyen@example.net",
        "5.1.10",
        "dsn",
        "<2d4a7f5de3a06f8b1d9c3e45@wmhtc.co.uk>",
    ),
    (
        "gmail-dsn-over-quota.eml",
        "soft-bounce",
        "james.whitfield@example.org",
        "5.2.2",
        "dsn",
        "<3e5b8a6ef4b17a9c2e0d4f56@wmhtc.co.uk>",
    ),
    (
        "yahoo-failure-notice.eml",
        "hard-bounce",
        "info.pennine@yahoo.com",
        "",
        "flufl.bounce",
        "<4f6c9b7f05c28b0d3f1e5067@wmhtc.co.uk>",
    ),
    (
        "qmail-failure-notice.eml",
        "hard-bounce",
        "zoe.brennan@example.com",
        "5.1.1",
        "flufl.bounce",
        "<5a7d0c8a16d39c1e4a2f6178@wmhtc.co.uk>",
    ),
    (
        "arf-complaint.eml",
        "complaint",
        "james.whitfield@example.org",
        "",
        "",
        "<6b8e1d9b27e40d2f5b3a7289@wmhtc.co.uk>",
    ),
    ("out-of-office.eml", "auto-reply", "", "", "", "<7c9f2e0c38f51e3a6c4b8390@wmhtc.co.uk>"),
    ("mailto-unsubscribe.eml", "unsubscribe", "sian.griffiths@example.net", "", "", ""),
    (
        "reply-unsubscribe-first-line.eml",
        "unsubscribe",
        "tom.okafor@example.org",
        "",
        "",
        "<8d0a3f1d49062f4b7d5c9401@wmhtc.co.uk>",
    ),
    ("human-reply.eml", "reply", "", "", "", "<9e1b4a2e5a173a5c8e6d0512@wmhtc.co.uk>"),
    # Outlook encodes a subject with a dash in RFC 2047: only the decoded text says
    # "Automatic reply" / "Abwesenheitsnotiz" when the headers say nothing.
    (
        "outlook-automatic-reply-no-auto-submitted.eml",
        "auto-reply",
        "",
        "",
        "",
        "<ad1c5e7f0b2a4c6e8f1a3b5d@wmhtc.co.uk>",
    ),
    ("abwesenheitsnotiz.eml", "auto-reply", "", "", "", "<be2d6f8a1c3b5d7f9a2b4c6e@wmhtc.co.uk>"),
    ("reply-utf8-subject.eml", "reply", "", "", "", "<cf3e7a9b2d4c6e8a0b3c5d7f@wmhtc.co.uk>"),
    # The chair's own mail from the same mailbox bounced: a bounce, about another message.
    (
        "postfix-dsn-chairs-own-mail.eml",
        "soft-bounce",
        "dev.singh@example.org",
        "5.2.2",
        "dsn",
        "<5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b@wmhtc.co.uk>",
    ),
]


def test_every_corpus_file_is_in_the_table() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(c[0] for c in CASES)


@pytest.mark.parametrize(("name", "kind", "address", "status", "source", "message_id"), CASES)
def test_corpus(name, kind, address, status, source, message_id) -> None:
    fb = classify((CORPUS / name).read_bytes(), unsubscribe_mailto=MAILTO, own_address=OWN)
    assert fb.kind == kind
    if fb.failures:
        assert [f.address for f in fb.failures] == [address]
        assert fb.failures[0].status == status
        assert fb.failures[0].source == source
    elif address:
        assert fb.addresses == (address,)
    else:
        assert fb.addresses == () and fb.failures == ()
    assert fb.message_ids == ((message_id,) if message_id else ())


def test_mail_to_the_unsubscribe_address_counts_only_when_it_is_not_the_reply_address() -> None:
    data = (
        (CORPUS / "mailto-unsubscribe.eml")
        .read_bytes()
        .replace(b"Subject: unsubscribe", b"Subject: please take me off")
    )
    assert classify(data, unsubscribe_mailto=MAILTO, own_address=OWN).kind == "unsubscribe"
    # The same address as the bulletin's own: every reply would otherwise unsubscribe.
    assert classify(data, unsubscribe_mailto=OWN, own_address=OWN).kind == "reply"
    assert classify(data).kind == "reply"


def test_a_report_without_failures_is_not_a_bounce() -> None:
    data = (
        (CORPUS / "postfix-dsn-user-unknown.eml")
        .read_bytes()
        .replace(b"Action: failed", b"Action: delivered")
    )
    fb = classify(data)
    assert fb.kind == "auto-reply" and fb.failures == ()


@pytest.mark.parametrize(
    ("status", "diagnostic", "action", "expected"),
    [
        ("5.1.1", "", "failed", "hard"),
        ("5.1.10", "", "failed", "hard"),
        ("5.2.2", "mailbox full", "failed", "soft"),
        ("5.1.8", "sender domain does not exist", "failed", "soft"),
        ("5.7.1", "message rejected as spam", "failed", "soft"),
        ("4.4.1", "", "failed", "soft"),
        ("4.4.1", "", "delayed", "delay"),
        ("5.0.0", "550 5.0.0 User unknown", "failed", "hard"),
        ("", "550 sorry, no such user", "failed", "hard"),
        ("", "552 quota exceeded", "failed", "soft"),
        ("", "550 rejected for policy reasons", "failed", "soft"),
    ],
)
def test_severity(status, diagnostic, action, expected) -> None:
    assert severity(status, diagnostic, action=action) == expected


def test_an_smtputf8_report_is_read_like_a_dsn() -> None:
    # RFC 6533: message/global-delivery-status, same fields (Python parses it differently).
    data = (
        (CORPUS / "postfix-dsn-user-unknown.eml")
        .read_bytes()
        .replace(b"report-type=delivery-status", b"report-type=global-delivery-status")
        .replace(b"Type: message/delivery-status", b"Type: message/global-delivery-status")
    )
    fb = classify(data)
    assert fb.kind == "hard-bounce"
    assert [(f.address, f.status, f.source) for f in fb.failures] == [
        ("priya.shah@example.org", "5.1.1", "dsn")
    ]


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        (
            "outlook-automatic-reply-no-auto-submitted.eml",
            "Automatic reply: Cluster News \u2013 December 2023: skills, statistics, events",
        ),
        (
            "abwesenheitsnotiz.eml",
            "Abwesenheitsnotiz: Cluster News \u2013 December 2023: skills, statistics, events",
        ),
        # Raw UTF-8 in the header (clients that send SMTPUTF8), not mojibake.
        ("reply-utf8-subject.eml", "Odp: Pytanie o wydarzenie \u2013 zg\u0142oszenie uczestnictwa"),
    ],
)
def test_subjects_are_shown_decoded(name: str, subject: str) -> None:
    assert classify((CORPUS / name).read_bytes()).subject == subject


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?B?QXV0b21hdGlzY2hlIEFudHdvcnQ6IENsdXN0ZXIgTmV3cyDigJMgRGV6ZW1iZXI=?=",  # de
        "=?iso-8859-1?Q?R=E9ponse_automatique_:_Cluster_News_=96_December?=",  # fr
        "=?utf-8?Q?Risposta_automatica:_Cluster_News_=E2=80=93_December?=",  # it
        "=?utf-8?Q?Automatisch_antwoord:_Cluster_News_=E2=80=93_December?=",  # nl
    ],
)
def test_encoded_out_of_office_subjects_in_other_languages(subject: str) -> None:
    data = (CORPUS / "outlook-automatic-reply-no-auto-submitted.eml").read_bytes()
    start = data.index(b"Subject: ")
    end = data.index(b"\n", start)
    data = data[:start] + b"Subject: " + subject.encode() + data[end:]
    fb = classify(data)
    assert fb.kind == "auto-reply", fb.subject


def test_an_encoded_unsubscribe_subject_is_an_unsubscribe_request() -> None:
    data = (
        (CORPUS / "mailto-unsubscribe.eml")
        .read_bytes()
        .replace(b"Subject: unsubscribe", b"Subject: =?UTF-8?Q?unsubscribe?=")
    )
    assert classify(data, unsubscribe_mailto=OWN, own_address=OWN).kind == "unsubscribe"


@pytest.mark.parametrize(
    ("name", "starts", "reason"),
    [
        # Exim puts the host and the SMTP stage between the address and the reply.
        ("exim-failed-user-unknown.eml", "550 5.1.1 ", "No such user here"),
        ("qmail-failure-notice.eml", "Sorry, no mailbox here", "(#5.1.1)"),
        ("yahoo-failure-notice.eml", "554: delivery error", "doesn't have a yahoo.com account"),
    ],
)
def test_plain_text_bounce_gives_the_servers_reason_first(name, starts, reason) -> None:
    """The detail column is cut on a narrow terminal: it must not start with the address
    the member column already shows, nor run on into the returned copy of the message."""
    fb = classify((CORPUS / name).read_bytes(), unsubscribe_mailto=MAILTO, own_address=OWN)
    diagnostic = fb.failures[0].diagnostic
    assert diagnostic.startswith(starts), diagnostic
    assert reason in diagnostic[:80], diagnostic
    assert "copy of the message" not in diagnostic and "Return-Path" not in diagnostic
    assert fb.detail.startswith(f"{fb.failures[0].status} {starts}".lstrip()), fb.detail
