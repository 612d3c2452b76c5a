"""The mail a chair's Microsoft 365 or Google mailbox holds after a bulletin to its members:
every kind of bounce (with and without an RFC 3464 report), delay warnings, complaints,
out-of-office replies in four languages with and without their headers, unsubscribe
requests from mail clients, people's replies quoting the whole bulletin, and ordinary mail.

Each message is written for this project after the formats these systems send (Exchange
Online / Microsoft 365 NDRs, Gmail's "Address not found", Sendmail's "Returned mail", Exim's
delay warning, RFC 3464/3834/5965); names and domains are fictional. Member ``n`` is
``member(n)``, and the journal recorded ``mid(n)`` as the Message-ID of their copy."""

from __future__ import annotations

import base64

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
