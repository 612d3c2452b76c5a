"""`newsletter feedback` against the mail a real chair's Microsoft 365 or Google mailbox holds
after a bulletin to 1,000 members: every kind of bounce (with and without an RFC 3464 report),
delay warnings, complaints, out-of-office replies in four languages with and without their
headers, unsubscribe requests from mail clients, people's replies quoting the whole bulletin,
odd MIME, and years of ordinary mail — in a real Dovecot (tests/dovecot.py), through a
connection that drops mid-run, and in folders with non-ASCII names.

Each message below is written for this project after the formats these systems send
(Exchange Online / Microsoft 365 NDRs, Gmail's "Address not found", Sendmail's "Returned
mail", Exim's delay warning, RFC 3464/3834/5965); names and domains are fictional."""

from __future__ import annotations

import base64
import datetime as dt
import imaplib
import socket
import threading
from dataclasses import replace
from pathlib import Path

import dovecot
import pytest
from smtp_servers import make_message

from newsletter.common.config import Settings
from newsletter.common.errors import MailboxError
from newsletter.feedback.classify import classify
from newsletter.feedback.run import run_feedback
from newsletter.members.suppression import load_suppressed
from newsletter.records.journal import Journal

OWN = "chair@wmhtc.co.uk"
MAILTO = "unsubscribe@wmhtc.co.uk"
SLUG = "december-2023"


def mid(n: int) -> str:
    """The Message-ID the journal recorded for member ``n``."""
    return f"<20231214091228.{n}.a1b2c3@wmhtc.co.uk>"


def member(n: int) -> str:
    return f"member{n}@nghealth.uk"


def bulletin_headers(to: str, message_id: str) -> str:
    return (
        f"From: West Midlands HealthTech Cluster <{OWN}>\nTo: <{to}>\n"
        "Subject: Cluster News: December 2023\nDate: Thu, 14 Dec 2023 09:12:28 +0000\n"
        f"Message-ID: {message_id}\n"
        f"List-Unsubscribe: <https://wmhtc.co.uk/u/T0K3N>, <mailto:{MAILTO}?subject=unsubscribe>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    )


BULLETIN_TEXT = (
    "Dear member,\n\nWelcome to the December bulletin.\n\n"
    "Unsubscribe: https://wmhtc.co.uk/u/T0K3N\n"
    "West Midlands HealthTech Cluster, 1 Main Street, Birmingham B1 1AA\n"
)


# --- what comes back -----------------------------------------------------------------------


def exchange_ndr_html(to: str, message_id: str) -> str:
    """Exchange Online NDR as some tenants deliver it: HTML and the original attached, no
    message/delivery-status part, Auto-Submitted and In-Reply-To set, sender not postmaster."""
    local, domain = to.split("@")
    return f"""From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@wmhtc.onmicrosoft.com>
To: <{OWN}>
Date: Thu, 14 Dec 2023 09:12:40 +0000
Subject: Undeliverable: Cluster News: December 2023
Message-ID: <ndr-{local}@DB9PR07MB8712.eurprd07.prod.outlook.com>
In-Reply-To: {message_id}
References: {message_id}
Auto-Submitted: auto-replied
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-GB
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<html><body><p><b><font color=3D"#000066">Your message to {to} couldn't b=
e delivered.</font></b></p>
<p>{local} wasn't found at {domain}.</p>
<p><b>Diagnostic information for administrators:</b></p>
<p>Generating server: DB9PR07MB8712.eurprd07.prod.outlook.com<br>
{to}<br>Remote server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient =
not found by SMTP address lookup'</p></body></html>

--b1
Content-Type: message/rfc822

{bulletin_headers(to, message_id)}
{BULLETIN_TEXT}
--b1--
"""


def exchange_ndr_text(to: str, message_id: str) -> str:
    """Exchange on-premises: "Delivery has failed to these recipients or groups", plain
    text and the original, no report part."""
    return f"""From: postmaster@nghealth.uk
To: {OWN}
Date: Thu, 14 Dec 2023 09:12:40 +0000
Subject: Undeliverable: Cluster News: December 2023
In-Reply-To: {message_id}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

{to}
The e-mail address you entered couldn't be found. Please check the recipient's e-mail
address and try to resend the message.

Diagnostic information for administrators:

Generating server: mail.nghealth.uk

{to}
#550 5.1.1 RESOLVER.ADR.RecipientNotFound; not found ##

--b1
Content-Type: message/rfc822

{bulletin_headers(to, message_id)}
{BULLETIN_TEXT}
--b1--
"""


def sendmail_headers_only(to: str, message_id: str) -> str:
    """An old Sendmail: the recipient appears only in the returned headers."""
    return f"""Return-Path: <>
From: Mail Delivery Subsystem <MAILER-DAEMON@mail.oldhost.co.uk>
To: {OWN}
Subject: Returned mail: see transcript for details
Date: Thu, 14 Dec 2023 09:13:00 +0000
Content-Type: text/plain

The original message was received at Thu, 14 Dec 2023 09:12:59 GMT
from mail.wmhtc.co.uk [198.51.100.4]

   ----- The following addresses had permanent fatal errors -----
(reason: 550 5.1.1 User unknown)

   ----- Transcript of session follows -----
... while talking to mx.oldhost.co.uk.:
>>> RCPT To:<j.smith>
<<< 550 5.1.1 User unknown

   ----- Original message headers follow -----

{bulletin_headers(to, message_id)}"""


def gmail_address_not_found(to: str, message_id: str, *, encode_report: bool = False) -> str:
    report = (
        "Reporting-MTA: dns; googlemail.com\n\n"
        f"Final-Recipient: rfc822; {to}\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not\n"
        " exist. https://support.google.com/mail/?p=NoSuchUser a1-20020a.1 - gsmtp\n"
    )
    if encode_report:  # some MTAs base64 the report part
        report = (
            "Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(report.encode()).decode()
        )
    else:
        report = "\n" + report
    return f"""Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {OWN}
X-Failed-Recipients: {to}
Subject: Delivery Status Notification (Failure)
Date: Thu, 14 Dec 2023 01:12:40 -0800
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000abc"; report-type=delivery-status

--000abc
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to {to} because the address couldn't be found, or is unable
to receive mail.

--000abc
Content-Type: message/delivery-status
{report}
--000abc
Content-Type: message/rfc822

{bulletin_headers(to, message_id)}
{BULLETIN_TEXT}
--000abc--
"""


def exim_delay_warning(to: str) -> str:
    """Exim's "still trying" warning: no report part, no original, a 4xx reply inside."""
    return f"""Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mx1.cdhealth.uk>
To: {OWN}
Subject: Warning: message 1rDkqT-0003Xy-2m delayed 24 hours
Auto-Submitted: auto-replied
Date: Fri, 15 Dec 2023 09:13:00 +0000
Content-Type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mx1.cdhealth.uk.

The message identifier is:     1rDkqT-0003Xy-2m
The subject of the message is: Cluster News: December 2023

The address to which the message has not yet been delivered is:

  {to}
    host mail.cdhealth.uk [203.0.113.5]
    Delay reason: SMTP error from remote mail server after RCPT TO:<{to}>:
    451 4.7.1 Greylisted, please try again later

No action is required on your part. Delivery attempts will continue for
some time, and this warning may be repeated at intervals if the message
remains undelivered. Eventually the mail delivery software will give up,
and when that happens, the message will be returned to you.
"""


def exchange_delayed(to: str, message_id: str) -> str:
    return f"""From: postmaster@wmhtc.onmicrosoft.com
To: {OWN}
Date: Thu, 14 Dec 2023 21:12:40 +0000
Subject: Delivery delayed:Cluster News: December 2023
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r1"

--r1
Content-Type: text/plain; charset=us-ascii

Delivery is delayed to these recipients or groups:

{to}

--r1
Content-Type: message/delivery-status

Reporting-MTA: dns;AM9PR07MB7345.eurprd07.prod.outlook.com

Final-Recipient: rfc822;{to}
Action: delayed
Status: 4.4.7
Diagnostic-Code: smtp;400 4.4.7 Message delayed

--r1
Content-Type: text/rfc822-headers

{bulletin_headers(to, message_id)}
--r1--
"""


def arf(to: str, message_id: str) -> str:
    return f"""From: staff@hotmail.com
To: {OWN}
Subject: complaint about message from 198.51.100.4
Date: Fri, 15 Dec 2023 09:13:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message received from IP 198.51.100.4.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <{OWN}>
Arrival-Date: Thu, 14 Dec 2023 09:12:30 +0000

--arf
Content-Type: message/rfc822

{bulletin_headers("redacted@hotmail.com", message_id)}
{BULLETIN_TEXT}
--arf--
"""


def dmarc_failure_report(to: str, message_id: str) -> str:
    """An RFC 6591 DMARC failure report: ARF form, Feedback-Type auth-failure, about a
    bulletin a member's server forwarded. Sent to the domain's ruf= address — in a small
    organisation, often the chair's own mailbox."""
    return f"""From: noreply-dmarc-support@google.com
To: {OWN}
Subject: Report Domain: wmhtc.co.uk Submitter: google.com
Date: Fri, 15 Dec 2023 09:13:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ruf"

--ruf
Content-Type: text/plain; charset="US-ASCII"

This is an authentication failure report for an email message received from IP
203.0.113.77 on Thu, 14 Dec 2023 09:13:00 +0000.

--ruf
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: DMARC-Reporter/1.0
Version: 1
Original-Mail-From: <{OWN}>
Original-Rcpt-To: <{to}>
Arrival-Date: Thu, 14 Dec 2023 09:13:00 +0000
Source-IP: 203.0.113.77
Reported-Domain: wmhtc.co.uk
Auth-Failure: dmarc
Delivery-Result: reject

--ruf
Content-Type: text/rfc822-headers

{bulletin_headers(to, message_id)}
--ruf--
"""


def read_receipt(sender: str, message_id: str) -> str:
    """An RFC 8098 read receipt, as Outlook sends it."""
    return f"""From: A Member <{sender}>
To: {OWN}
Subject: Read: Cluster News: December 2023
Date: Fri, 15 Dec 2023 09:13:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="mdn"

--mdn
Content-Type: text/plain; charset="utf-8"

Your message was read on Friday, 15 December 2023 09:13:00 (UTC+00:00).

--mdn
Content-Type: message/disposition-notification

Final-Recipient: rfc822;{sender}
Original-Message-ID: {message_id}
Disposition: manual-action/MDN-sent-manually; displayed

--mdn--
"""


OOO_SUBJECTS = {
    "en": "Automatic reply: Cluster News: December 2023",
    "de": "=?iso-8859-1?Q?Automatische_Antwort:_Cluster_News?=",
    "de-abwesend": "Abwesend: Cluster News: December 2023",
    "fr": "=?utf-8?Q?R=C3=A9ponse_automatique=C2=A0:_Cluster_News?=",
    "fr-absent": "Absent du bureau : Cluster News",
    "nl": "Automatisch antwoord: Cluster News: December 2023",
    "nl-afwezig": "Afwezig: Cluster News: December 2023",
}


def out_of_office(sender: str, message_id: str, lang: str, headers: str = "") -> str:
    return f"""From: {sender}
To: {OWN}
Subject: {OOO_SUBJECTS[lang]}
Date: Thu, 14 Dec 2023 09:13:00 +0000
In-Reply-To: {message_id}
{headers}MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1

I am out of the office until 2 January. For urgent matters please remove me from
the thread and contact my colleague.
"""


def gmail_reply(sender: str, message_id: str, first_line: str, subject: str = "") -> str:
    """A reply from Gmail: multipart/alternative, quoting the whole bulletin (with the
    member's own unsubscribe link in it) under what was typed."""
    quoted = "".join(f"> {line}\n" for line in BULLETIN_TEXT.splitlines())
    return f"""From: A Member <{sender}>
To: {OWN}
Subject: {subject or "Re: Cluster News: December 2023"}
Date: Fri, 15 Dec 2023 09:13:00 +0000
Message-ID: <CAreply{abs(hash(sender + first_line))}@mail.gmail.com>
In-Reply-To: {message_id}
References: {message_id}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset="UTF-8"

{first_line}

On Thu, 14 Dec 2023 at 09:12, West Midlands HealthTech Cluster <{OWN}> wrote:
{quoted}
--alt
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">{first_line}</div><br><div class="gmail_quote"><blockquote>
<a href="https://wmhtc.co.uk/u/T0K3N">Unsubscribe</a></blockquote></div>
--alt--
"""


def outlook_html_reply(sender: str, message_id: str, first_line: str) -> str:
    """Outlook replying in HTML only, base64, the bulletin quoted below the line."""
    html = (
        '<html><head><style>p.MsoNormal{margin:0}</style></head><body><div class="WordSection1">'
        f'<p class="MsoNormal">{first_line}<o:p></o:p></p>'
        '<div style="border-top:solid #E1E1E1 1.0pt"><p><b>From:</b> West Midlands HealthTech '
        f"Cluster &lt;{OWN}&gt;</p></div><p>Dear member,</p>"
        '<p><a href="https://wmhtc.co.uk/u/T0K3N">Unsubscribe</a></p></div></body></html>'
    )
    return f"""From: A Member <{sender}>
To: {OWN}
Subject: RE: Cluster News: December 2023
Date: Fri, 15 Dec 2023 09:13:00 +0000
In-Reply-To: {message_id}
Thread-Topic: Cluster News: December 2023
MIME-Version: 1.0
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64

{base64.encodebytes(html.encode()).decode()}"""


def mailto_unsubscribe(
    sender: str, subject: str = "unsubscribe", headers: str = "", to: str = MAILTO
) -> str:
    """What a mail client's List-Unsubscribe button sends (Gmail's words)."""
    return f"""From: {sender}
To: {to}
Subject: {subject}
Date: Fri, 15 Dec 2023 09:13:00 +0000
{headers}MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

This message was automatically generated by Gmail.
"""


def ordinary(n: int) -> str:
    return f"""From: Colleague {n} <colleague{n}@wmhtc.co.uk>
To: {OWN}
Subject: Board papers {n}
Date: Mon, 12 Jun 2023 10:00:00 +0100
Message-ID: <board{n}@wmhtc.co.uk>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Papers attached.
"""


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


# --- the mailbox: Dovecot -----------------------------------------------------------------

needs_dovecot = pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd not installed")


@pytest.fixture(scope="module")
def imap_server():
    if not dovecot.available():
        pytest.skip("dovecot-imapd not installed")
    server = dovecot.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(imap_server):
    imap_server.clear()
    yield imap_server
    imap_server.clear()


def fill(server, messages: list[str | bytes], folder: str = "INBOX", *, when=None) -> None:
    """APPEND through one connection (the seeding helper opens one per message)."""
    imap = server.client()
    try:
        imap.create(_utf7(folder))
        for message in messages:
            data = message.encode("utf-8") if isinstance(message, str) else message
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            typ, detail = imap.append(_utf7(folder), None, when, data)
            assert typ == "OK", detail
    finally:
        imap.logout()


def _utf7(folder: str) -> str:
    from newsletter.mail.imap import _quote

    return _quote(folder)


def count_and_unseen(server, folder: str = "INBOX") -> tuple[int, int]:
    imap = server.client()
    try:
        imap.select(_utf7(folder), readonly=True)
        _, everything = imap.uid("SEARCH", "ALL")
        _, unseen = imap.uid("SEARCH", "UNSEEN")
        return len(everything[0].split()), len(unseen[0].split())
    finally:
        imap.logout()


def imap_settings(settings: Settings, server, **changes) -> Settings:
    return replace(
        settings,
        from_=f"West Midlands HealthTech Cluster <{OWN}>",
        unsubscribe_mailto=MAILTO,
        imap_host="127.0.0.1",
        imap_port=server.plain_port,
        imap_security="none",
        imap_username=dovecot.USERNAME,
        imap_password=dovecot.PASSWORD,
        **changes,
    )


def sent_to(settings: Settings, members: int) -> None:
    """The journal of a bulletin sent to ``members`` members, Message-IDs as mid(n)."""
    with Journal.for_state_dir(settings.state_dir) as journal:
        for n in range(members):
            message = replace(make_message(member(n), row=n + 2), message_id=mid(n))
            journal.mark_sending(SLUG, message)
            journal.mark_sent(SLUG, member(n), "250 2.0.0 OK")


def after_a_bulletin() -> tuple[list[str | bytes], dict[str, str]]:
    """What a chair's inbox gets after the send, and the suppressions it must lead to."""
    messages: list[str | bytes] = [
        exchange_ndr_html(member(10), mid(10)),
        exchange_ndr_text(member(11), mid(11)),
        sendmail_headers_only(member(12), mid(12)),
        gmail_address_not_found(member(13), mid(13)),
        gmail_address_not_found(member(14), mid(14), encode_report=True),
        exim_delay_warning(member(20)),
        exim_delay_warning(member(20)),
        exchange_delayed(member(21), mid(21)),
        arf(member(30), mid(30)),
        dmarc_failure_report(member(31), mid(31)),
        read_receipt(member(32), mid(32)),
        mailto_unsubscribe(member(40)),
        mailto_unsubscribe(member(41), headers="Auto-Submitted: auto-generated\n"),
        gmail_reply(member(42), mid(42), "Unsubscribe"),
        outlook_html_reply(member(43), mid(43), "Unsubscribe"),
        gmail_reply(member(50), mid(50), "Thanks, a great issue!"),
        outlook_html_reply(member(51), mid(51), "See you at the Expo"),
        gmail_reply(member(52), mid(52), "Please remove me from your list"),
        # a bounce for an address that is not a member (a colleague's forward, say)
        gmail_address_not_found("stranger@elsewhere.org", "<not-ours@elsewhere.org>"),
        # odd mail that must not stop the run
        b"Subject:\r\n\r\n",  # headers and nothing else
        bytes(range(256)) * 40,
        b"From: x@y.z\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
        b"From: =?x-unknown?Q?J=F6rg?= <j@y.de>\r\nSubject: \xfc\xfc\r\n\r\n\xff\xfe\r\n",
        # an unsubscribe request from a sender the suppression list cannot hold (raw 8-bit
        # From): it failed every run's one write, so nothing was ever suppressed again
        b"From: J\xf6rg <j\xf6rg@y.de>\r\nSubject: Re: News\r\n\r\nUnsubscribe\r\n",
        b"From: a@b.c\r\nSubject: " + b"very long " * 3000 + b"\r\n\r\nx\r\n",
    ]
    for n, lang in enumerate(OOO_SUBJECTS):
        messages.append(out_of_office(member(60 + n), mid(60 + n), lang))
        messages.append(
            out_of_office(member(70 + n), mid(70 + n), lang, "X-Auto-Response-Suppress: All\n")
        )
    expected = {
        **{member(n): "bounced" for n in (10, 11, 12, 13, 14)},
        member(30): "complained",
        **{member(n): "unsubscribed" for n in (40, 41, 42, 43)},
    }
    return messages, expected


@needs_dovecot
def test_the_chairs_mailbox_after_a_bulletin_to_1000_members(settings: Settings, mailbox) -> None:
    settings = imap_settings(settings, mailbox, soft_bounce_limit=1)
    sent_to(settings, 1000)
    # Years of ordinary mail before the send (not read at all) and the feedback after it.
    old = imaplib.Time2Internaldate(dt.datetime(2023, 6, 12, 10, tzinfo=dt.UTC))
    fill(mailbox, [ordinary(n) for n in range(1500)], when=old)
    feedback, expected = after_a_bulletin()
    fill(mailbox, feedback)
    total = 1500 + len(feedback)
    assert count_and_unseen(mailbox) == (total, total)

    report = run_feedback(settings)
    assert suppressed_rows(settings) == expected
    # Delay warnings never count, even with a soft-bounce limit of 1.
    assert all(row.action == "ignored" for row in report.rows if row.kind == "delayed")
    assert {row.address for row in report.rows if row.kind == "delayed"} == {
        member(20), member(21)
    }  # fmt: skip
    # Out-of-office replies: ignored, whatever the language and headers.
    assert {row.address for row in report.rows if row.kind == "auto-reply"} == {
        member(60 + n) for n in range(len(OOO_SUBJECTS))
    } | {member(70 + n) for n in range(len(OOO_SUBJECTS))} | {
        member(32),  # the read receipt
        "noreply-dmarc-support@google.com",  # the DMARC report: member 31 did not complain
    }
    # People's replies are listed, never acted on; the stranger's bounce is left alone.
    senders = {reply.sender for reply in report.replies}
    assert {member(50), member(51), member(52)} <= senders
    [stranger] = [row for row in report.rows if row.address == "stranger@elsewhere.org"]
    assert stranger.action.startswith("left: ")
    [invalid] = [row for row in report.rows if row.address.startswith("j")]
    assert invalid.kind == "unsubscribe" and invalid.action.startswith("left: not a valid address")
    assert max(len(reply.subject) for reply in report.replies) <= 200
    assert report.already_processed == 0
    # Nothing deleted, nothing even marked read; the ordinary mail was never fetched.
    assert count_and_unseen(mailbox) == (total, total)

    # A second run does nothing at all.
    before = settings.suppressed.read_bytes()
    again = run_feedback(settings)
    assert again.rows == [] and again.replies == [] and again.suppressed == []
    assert again.already_processed == len(feedback)
    assert settings.suppressed.read_bytes() == before


def suppressed_rows(settings: Settings) -> dict[str, str]:
    """address → reason, from suppressed.csv as written."""
    import csv

    with settings.suppressed.open(encoding="utf-8", newline="") as file:
        return {row["email"]: row["reason"] for row in csv.DictReader(file)}


class DroppingProxy:
    """A TCP proxy in front of Dovecot that cuts the connection after the server has sent
    ``limit`` bytes, or when the client sends a command containing ``on``: the server
    going away in the middle of a run (``once``: and no longer answering at all)."""

    def __init__(
        self, port: int, limit: int | None = None, on: bytes = b"", *, once: bool = False
    ) -> None:
        self.port, self.limit, self.on, self.once = port, limit, on, once
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.listen_port = self.sock.getsockname()[1]
        self.cut = threading.Event()
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.ends: list[socket.socket] = []
        self.threads[0].start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            self.ends += [client, upstream]
            for args in ((client, upstream, None, self.on), (upstream, client, self.limit, b"")):
                thread = threading.Thread(target=self._pipe, args=args, daemon=True)
                self.threads.append(thread)
                thread.start()

    def _pipe(
        self, source: socket.socket, sink: socket.socket, limit: int | None, on: bytes
    ) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if on and on in data:
                    self._cut()
                    break
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    self._cut()
                    break
                sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def _cut(self) -> None:
        self.cut.set()
        if self.once:  # the server is gone: reconnecting is refused
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def close(self) -> None:
        """Stop, and wait for every thread (later tests count the process's threads)."""
        for end in [self.sock, *self.ends]:
            try:
                end.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()/recv()
            except OSError:
                pass
        self.sock.close()
        for thread in list(self.threads):
            thread.join(timeout=10)
        assert not any(thread.is_alive() for thread in self.threads)


@needs_dovecot
def test_server_gone_mid_run_is_one_line_and_the_rerun_does_everything_once(
    project: Path, settings: Settings, mailbox
) -> None:
    from helpers import run_cli

    settings = imap_settings(settings, mailbox)
    sent_to(settings, 300)
    bounces = [gmail_address_not_found(member(n), mid(n)) for n in range(200)]
    fill(mailbox, bounces)
    env = {
        "NEWSLETTER_FROM": f"Cluster <{OWN}>",
        "NEWSLETTER_IMAP_HOST": "127.0.0.1",
        "NEWSLETTER_IMAP_SECURITY": "none",
        "NEWSLETTER_IMAP_USERNAME": dovecot.USERNAME,
        "NEWSLETTER_IMAP_PASSWORD": dovecot.PASSWORD,
    }

    def through(proxy: DroppingProxy):
        try:
            return run_cli(["feedback"], {**env, "NEWSLETTER_IMAP_PORT": str(proxy.listen_port)})
        finally:
            proxy.close()
            assert proxy.cut.is_set()

    # Gone at the first message: nothing was read, nothing changed.
    first = through(DroppingProxy(mailbox.plain_port, on=b"FETCH"))
    [line] = first.stderr.strip().splitlines()
    assert line.startswith("error: 127.0.0.1:") and "connection lost while reading" in line
    assert "'INBOX'" in line and "nothing was changed; run newsletter feedback again" in line
    assert first.returncode not in (0, 70) and "Traceback" not in first.stdout + first.stderr
    assert not settings.suppressed.exists()

    # Gone about a third of the way: what was read is processed and saved.
    cut = through(DroppingProxy(mailbox.plain_port, limit=120_000, once=True))
    [line] = cut.stderr.strip().splitlines()
    assert cut.returncode not in (0, 70), cut.stderr
    assert "connection lost while reading message UID" in line and "'INBOX'" in line
    assert "processed and saved; run newsletter feedback again for the rest" in line
    saved = load_suppressed(settings.suppressed)
    assert 0 < len(saved) < 200

    # The re-run does the rest, each message once; a third run nothing.
    env["NEWSLETTER_IMAP_PORT"] = str(mailbox.plain_port)
    done = run_cli(["feedback"], env)
    assert done.returncode == 0, done.stderr
    assert f"already processed before: {len(saved)}" in done.stdout
    assert f"Suppressed: {200 - len(saved)}" in done.stdout
    assert sorted(load_suppressed(settings.suppressed)) == sorted(member(n) for n in range(200))
    again = run_cli(["feedback"], env)
    assert again.returncode == 0 and "Suppressed: 0" in again.stdout
    assert "already processed before: 200" in again.stdout
    assert count_and_unseen(mailbox) == (200, 200)


@needs_dovecot
def test_folders_with_non_ascii_names_and_a_wrong_folder_name(settings: Settings, mailbox) -> None:
    folder = "Rückläufer & Co"  # modified UTF-7 on the wire: R&APw-ckl&AOQ-ufer &- Co
    fill(mailbox, [exchange_ndr_html(member(5), mid(5))], folder)
    fill(mailbox, [ordinary(1)], "Éléments envoyés")
    settings = imap_settings(settings, mailbox, imap_folder=folder)
    sent_to(settings, 10)
    # and an unsubscribe request from a sender the list cannot hold: shown, left in place
    fill(mailbox, [b"From: J\xf6rg <j\xf6rg@y.de>\r\nSubject: unsubscribe\r\n\r\nx\r\n"], folder)
    report = run_feedback(settings, move_to="Traités")
    assert report.suppressed == [(member(5), "bounced", SLUG)]
    assert count_and_unseen(mailbox, "Traités") == (1, 1)
    assert count_and_unseen(mailbox, folder) == (1, 1)

    with pytest.raises(MailboxError) as caught:
        run_feedback(replace(settings, imap_folder="Bounces"), dry_run=True)
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{mailbox.plain_port}: cannot open folder 'Bounces'")
    assert "NEWSLETTER_IMAP_FOLDER" in message and "\n" not in message
    # The folders as the chair's mail client shows them, not as IMAP spells them.
    assert "Rückläufer & Co" in message and "Éléments envoyés" in message
    assert "&APw-" not in message


@needs_dovecot
def test_server_gone_while_moving_keeps_the_suppressions_and_the_rerun_moves_the_rest(
    settings: Settings, mailbox
) -> None:
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 20)
    fill(mailbox, [exchange_ndr_html(member(n), mid(n)) for n in range(5)])
    fill(mailbox, [gmail_reply(member(9), mid(9), "Thanks!")])
    proxy = DroppingProxy(mailbox.plain_port, on=b"UID MOVE")
    try:
        with pytest.raises(MailboxError) as caught:
            run_feedback(replace(settings, imap_port=proxy.listen_port), move_to="Processed")
    finally:
        proxy.close()
    message = str(caught.value)
    assert proxy.cut.is_set() and "\n" not in message
    assert message.startswith(f"127.0.0.1:{proxy.listen_port}: connection lost while moving")
    assert "suppressions are saved" in message and "--move-to" in message
    assert sorted(load_suppressed(settings.suppressed)) == sorted(member(n) for n in range(5))
    assert count_and_unseen(mailbox) == (6, 6)  # nothing lost, nothing deleted

    report = run_feedback(settings, move_to="Processed")
    assert report.rows == [] and report.moved == 5
    assert count_and_unseen(mailbox) == (1, 1)  # the reply stays
    assert count_and_unseen(mailbox, "Processed") == (5, 5)


@needs_dovecot
def test_starttls_on_the_implicit_tls_port_names_the_security_setting(
    settings: Settings, mailbox
) -> None:
    # The commonest mistake: port 993 with starttls. The server waits for a TLS hello that
    # never comes; the error must say which setting to change, not only "the port".
    settings = replace(
        imap_settings(settings, mailbox),
        imap_port=mailbox.tls_port,
        imap_security="starttls",
        imap_cafile=str(mailbox.cafile),
        smtp_timeout=1.0,
    )
    with pytest.raises(MailboxError) as caught:
        run_feedback(settings, dry_run=True)
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{mailbox.tls_port}: no answer in time")
    assert "NEWSLETTER_IMAP_SECURITY" in message and "993 is ssl" in message


def outlook_com_ndr(to: str, message_id: str) -> str:
    """Outlook.com / Hotmail refusing an address that does not exist: 550 5.5.0."""
    return f"""From: postmaster@outlook.com
To: {OWN}
Date: Thu, 14 Dec 2023 09:12:41 +0000
Subject: Undeliverable: Cluster News: December 2023
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="o1"

--o1
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

{to}
The email address you entered couldn't be found.

--o1
Content-Type: message/delivery-status

Reporting-MTA: dns;AM6PR02MB4567.eurprd02.prod.outlook.com

Final-Recipient: rfc822;{to}
Action: failed
Status: 5.5.0
Diagnostic-Code: smtp;550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)
 [AM7EUR03FT123.eop-EUR03.prod.protection.outlook.com]

--o1
Content-Type: text/rfc822-headers

{bulletin_headers(to, message_id)}
--o1--
"""


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


@needs_dovecot
def test_inbox_spelt_inbox_is_the_same_folder_to_the_memory(settings: Settings, mailbox) -> None:
    # A chair on Microsoft 365 writes NEWSLETTER_IMAP_FOLDER=Inbox, as Outlook shows it,
    # after a first run on the default INBOX: the same folder (RFC 3501), nothing redone.
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 5)
    fill(mailbox, [gmail_reply(member(1), mid(1), "Thanks!")])
    assert len(run_feedback(settings).replies) == 1
    again = run_feedback(replace(settings, imap_folder="Inbox"))
    assert again.replies == [] and again.already_processed == 1 and again.folder == "INBOX"


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


@needs_dovecot
def test_a_dropped_link_is_reconnected_within_the_run(settings: Settings, mailbox) -> None:
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 100)
    fill(mailbox, [gmail_address_not_found(member(n), mid(n)) for n in range(100)])
    # Every connection drops after ~60 kB: three or four of them for the whole folder.
    proxy = DroppingProxy(mailbox.plain_port, limit=60_000)
    try:
        report = run_feedback(replace(settings, imap_port=proxy.listen_port))
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    assert sorted(load_suppressed(settings.suppressed)) == sorted(member(n) for n in range(100))
    assert [row.kind for row in report.rows] == ["hard-bounce"] * 100  # each once
    assert run_feedback(settings).already_processed == 100


@needs_dovecot
def test_a_message_the_server_fails_on_does_not_stop_every_run(settings: Settings, mailbox) -> None:
    # Dovecot ends the connection ("FETCH failed: Internal error") on a message file it
    # cannot read. Without skipping it, every run stopped there and never read the mail
    # after it.
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 10)
    fill(mailbox, [gmail_address_not_found(member(n), mid(n)) for n in range(5)])
    maildir = mailbox.root / "mail" / dovecot.USERNAME
    damaged = next(
        path
        for path in sorted(maildir.glob("cur/*")) + sorted(maildir.glob("new/*"))
        if member(2).encode() in path.read_bytes()
    )
    damaged.chmod(0)
    try:
        report = run_feedback(settings)
        again = run_feedback(settings)
    finally:
        damaged.chmod(0o600)
    assert sorted(load_suppressed(settings.suppressed)) == sorted(
        member(n) for n in (0, 1, 3, 4)
    )  # fmt: skip
    [row] = [row for row in report.rows if row.kind == "unreadable"]
    assert row.action == "left: the server fails on it"
    assert again.rows == [] and again.already_processed == 5
    assert count_and_unseen(mailbox) == (5, 5)  # never deleted


@pytest.fixture(scope="module")
def no_move_server():
    """A Dovecot announcing UIDPLUS but not MOVE (as some older servers do): --move-to must
    copy, then remove exactly the copied UIDs — never a plain EXPUNGE."""
    if not dovecot.available():
        pytest.skip("dovecot-imapd not installed")
    server = dovecot.start(
        extra_config="protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ UIDPLUS IDLE\n}"
    )
    try:
        yield server
    finally:
        server.stop()


@needs_dovecot
def test_move_without_move_removes_only_the_copied_messages(
    settings: Settings, no_move_server
) -> None:
    server = no_move_server
    server.clear()
    settings = imap_settings(settings, server)
    sent_to(settings, 10)
    fill(server, [exchange_ndr_html(member(n), mid(n)) for n in range(3)])
    fill(server, [gmail_reply(member(8), mid(8), "Thanks!"), ordinary(1)])
    # Another mail client marked the ordinary message \Deleted without expunging it: a plain
    # EXPUNGE from us would destroy it.
    other = server.client()
    try:
        other.select("INBOX")
        _, found = other.uid("SEARCH", "SUBJECT", '"Board papers 1"')
        [marked] = found[0].split()
        other.uid("STORE", marked, "+FLAGS.SILENT", r"(\Deleted)")
        _, capabilities = other.capability()
        assert b" MOVE" not in capabilities[0] and b"UIDPLUS" in capabilities[0]
    finally:
        other.logout()

    report = run_feedback(settings, move_to="Processed")
    assert report.moved == 3
    assert count_and_unseen(server, "Processed") == (3, 3)
    assert count_and_unseen(server) == (2, 2)  # the reply, and the \Deleted one kept
    server.clear()


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


@needs_dovecot
def test_connection_lost_while_signing_in_is_not_called_a_wrong_password(
    settings: Settings, mailbox
) -> None:
    settings = imap_settings(settings, mailbox)
    proxy = DroppingProxy(mailbox.plain_port, on=b"LOGIN")
    try:
        with pytest.raises(MailboxError) as caught:
            run_feedback(replace(settings, imap_port=proxy.listen_port), dry_run=True)
    finally:
        proxy.close()
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{proxy.listen_port}: connection lost while signing in")
    assert "refused" not in message and "run newsletter feedback again" in message


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
