"""The feedback classifier on the mail that comes back after a bulletin (support/feedback_mail.py):
each message classified as what it is — bounce (hard or delayed), complaint, auto-reply,
unsubscribe request or a person's reply — and the address it is about, even when the words
mislead (a forward titled 'Returned mail', a bounce about a group, conditional comments)."""

from __future__ import annotations

import base64

import pytest
from support.feedback_mail import (
    BULLETIN_TEXT,
    MAILTO,
    OOO_SUBJECTS,
    OWN,
    bulletin_headers,
    dmarc_failure_report,
    exchange_delayed,
    exchange_ndr_html,
    exchange_ndr_text,
    exim_delay_warning,
    gmail_address_not_found,
    gmail_reply,
    mailto_unsubscribe,
    member,
    mid,
    out_of_office,
    outlook_com_ndr,
    outlook_html_reply,
    read_receipt,
    sendmail_headers_only,
)

from newsletter.feedback.classify import classify

# --- classification, message by message -----------------------------------------------------

M = member(1)

CLASSIFIED = [
    # (name, message, kind, failed address or "", severity or "")
    ("exchange NDR as HTML, no report part", exchange_ndr_html(M, mid(1)), "hard-bounce", M, "hard"),
    ("exchange NDR plain text, no report part", exchange_ndr_text(M, mid(1)), "hard-bounce", M, "hard"),
    ("recipient only in the returned headers", sendmail_headers_only(M, mid(1)), "hard-bounce", M, "hard"),
    ("Gmail address not found", gmail_address_not_found(M, mid(1)), "hard-bounce", M, "hard"),
    ("report part base64-encoded", gmail_address_not_found(M, mid(1), encode_report=True),
     "hard-bounce", M, "hard"),
    ("Exim delay warning", exim_delay_warning(M), "delayed", M, "delay"),
    ("Exchange delivery delayed", exchange_delayed(M, mid(1)), "delayed", M, "delay"),
    ("multipart reply, first line Unsubscribe", gmail_reply(M, mid(1), "Unsubscribe"),
     "unsubscribe", "", ""),
    ("Outlook HTML-only reply, first line Unsubscribe", outlook_html_reply(M, mid(1), "Unsubscribe"),
     "unsubscribe", "", ""),
    ("German reply prefix", mailto_unsubscribe(M, "AW: Unsubscribe", to=OWN), "unsubscribe", "", ""),
    ("mail client unsubscribe marked auto-generated",
     mailto_unsubscribe(M, headers="Auto-Submitted: auto-generated\n"), "unsubscribe", "", ""),
    ("DMARC failure report (ARF, auth-failure)", dmarc_failure_report(M, mid(1)),
     "auto-reply", "", ""),
    ("read receipt", read_receipt(M, mid(1)), "auto-reply", "", ""),
    ("reply quoting the bulletin", gmail_reply(M, mid(1), "Thanks, a great issue!"), "reply", "", ""),
    ("HTML reply quoting the bulletin", outlook_html_reply(M, mid(1), "See you in March"),
     "reply", "", ""),
    ("free-text removal request (README: a reply)",
     gmail_reply(M, mid(1), "Please remove me from your list"), "reply", "", ""),
] + [
    (f"out of office ({lang}{', Exchange header' if hdr else ''})",
     out_of_office(M, mid(1), lang, hdr), "auto-reply", "", "")
    for lang in OOO_SUBJECTS
    for hdr in ("", "X-Auto-Response-Suppress: All\n")
]  # fmt: skip


@pytest.mark.parametrize(
    ("message", "kind", "address", "level"),
    [case[1:] for case in CLASSIFIED],
    ids=[case[0] for case in CLASSIFIED],
)
def test_real_world_mail_is_classified_as_what_it_is(
    message: str, kind: str, address: str, level: str
) -> None:
    data = message.replace("\n", "\r\n").encode("utf-8")
    fb = classify(data, unsubscribe_mailto=MAILTO, own_address=OWN)
    assert fb.kind == kind, (fb.kind, fb.detail)
    if address:
        assert [(f.address, f.severity) for f in fb.failures] == [(address, level)]
    if kind == "unsubscribe":
        assert fb.addresses == (M,)


def test_a_bounce_with_a_huge_attachment_is_read_without_scanning_it() -> None:
    # flufl.bounce's generic detectors scan every body line: 20 MB of base64 took ~10 s.
    # Counted in regex calls, not seconds (no wall-clock assertions): the attachment is
    # emptied before any detector sees it.
    big = base64.encodebytes(b"\x00" * 6_000_000).decode()
    message = exchange_ndr_html(M, mid(1)).replace(
        "--b1--",
        f"--b1\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{big}\n--b1--",
    )
    from email import message_from_bytes, policy

    from newsletter.feedback import classify as feedback

    parsed = message_from_bytes(message.encode(), policy=policy.compat32)
    feedback._drop_attachments(parsed)
    assert all(
        len(part.get_payload()) == 0
        for part in parsed.walk()
        if part.get_content_type() == "application/pdf"
    )
    fb = classify(message.encode())
    assert fb.kind == "hard-bounce" and fb.failures[0].address == M


def test_outlook_com_mailbox_unavailable_is_a_hard_bounce() -> None:
    fb = classify(outlook_com_ndr("gone@hotmail.co.uk", mid(3)).encode())
    assert fb.kind == "hard-bounce"
    assert [(f.address, f.severity, f.status) for f in fb.failures] == [
        ("gone@hotmail.co.uk", "hard", "5.5.0")
    ]
    # A 5.5.0 that does not say the address is gone stays soft (counted, not suppressed).
    other = outlook_com_ndr("x@hotmail.co.uk", mid(3)).replace(
        "Requested action not taken: mailbox unavailable", "Syntax error in parameters"
    )
    assert classify(other.encode()).kind == "soft-bounce"


def test_outlook_conditional_comments_are_not_the_first_line() -> None:
    html = (
        "<html><body><!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96"
        "</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->"
        "<p class=MsoNormal>Unsubscribe<o:p></o:p></p></body></html>"
    )
    message = (
        f"From: A Member <{M}>\nTo: {OWN}\nSubject: RE: Cluster News\n"
        f"Content-Type: text/html; charset=utf-8\n\n{html}\n"
    )
    assert classify(message.encode(), own_address=OWN).kind == "unsubscribe"


def test_a_forward_titled_returned_mail_is_not_a_bounce() -> None:
    # A member forwards the bulletin as an attachment under a bounce-like subject: no word
    # of a failure in it, so nobody's address is counted as bouncing.
    message = f"""From: A Member <{M}>
To: {OWN}
Subject: Returned mail
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="f"

--f
Content-Type: text/plain; charset=utf-8

Sending this back to you with my comments on the events, {M}.

--f
Content-Type: message/rfc822

{bulletin_headers(M, mid(1))}
{BULLETIN_TEXT}
--f--
"""
    fb = classify(message.encode(), own_address=OWN)
    assert fb.kind == "reply" and fb.failures == ()


def test_a_bounce_about_the_group_a_member_address_expands_to_is_not_the_member() -> None:
    # The bulletin went to info@ (a member organisation's group); Exchange reports that
    # one of the group's people is gone. info@ itself still works: not a hard bounce for it.
    group = "info@cdhealth.uk"
    message = (
        exchange_ndr_text(group, mid(4))
        .replace(f"\n{group}\nThe e-mail", "\nleft.last.year@cdhealth.uk\nThe e-mail")
        .replace(f"\n{group}\n#550", "\nleft.last.year@cdhealth.uk\n#550")
    )
    assert "left.last.year@cdhealth.uk" in message
    fb = classify(message.encode(), own_address=OWN)
    assert fb.kind == "reply" and fb.failures == ()  # listed for the chair, nobody suppressed
    # The same bounce naming the member's own address is the member's hard bounce.
    assert classify(exchange_ndr_text(group, mid(4)).encode()).kind == "hard-bounce"


def test_a_bounce_quoting_the_message_id_in_its_words_still_names_its_sole_recipient() -> None:
    message = f"""From: postmaster@mail.nghealth.uk
To: {OWN}
Subject: Undeliverable: Cluster News: December 2023
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.
Original message ID: {mid(6)}
Remote server said: 550 5.1.1 User unknown

--b
Content-Type: message/rfc822

{bulletin_headers(member(6), mid(6))}
{BULLETIN_TEXT}
--b--
"""
    fb = classify(message.encode(), own_address=OWN)
    assert [(f.address, f.severity) for f in fb.failures] == [(member(6), "hard")]


def test_a_generic_status_defers_to_the_servers_specific_code() -> None:
    from newsletter.feedback.bounces import severity

    # Policy (5.7.1) though the words say "recipient address rejected": not a gone address.
    policy_block = "smtp; 550 5.7.1 <a@b.uk>: Recipient address rejected: Access denied"
    assert severity("5.0.0", policy_block) == "soft"
    assert (
        severity("5.0.0", "smtp; 550 5.1.1 <a@b.uk>: Recipient address rejected: User unknown")
        == "hard"
    )
    assert severity("5.0.0", "smtp; 550 User unknown") == "hard"
