"""Bounces: which recipients failed, how badly — standards first, heuristics second.

1. RFC 3464 delivery status notifications (``multipart/report;
   report-type=delivery-status``): each per-recipient block gives Final-Recipient, Action,
   Status and Diagnostic-Code. Postfix, Exchange Online / Microsoft 365, Gmail and current
   Exim send these.
2. Everything else (qmail's "failure notice", Yahoo's and older Exim's plain-text bounces):
   flufl.bounce, Mailman's bounce detector library (Apache-2.0, maintained since 2004, 17
   provider-specific detectors). Re-writing and maintaining those heuristics ourselves would
   be more code than this whole feature, and they encode two decades of real bounces.

Severity (what the list does about it):

* ``hard``: the address does not exist — status 5.1.x, or a permanent failure whose text
  says "user unknown", "no such mailbox" and the like. Suppressed at once.
* ``soft``: temporary (4.x.x) or mailbox-state / policy (5.2.x mailbox full or disabled,
  5.7.x policy, anything else permanent we cannot tie to the address). Counted; suppressed
  after NEWSLETTER_SOFT_BOUNCE_LIMIT different issues.
* ``delay``: a "still trying" warning (Action: delayed). Not a bounce: the message may yet
  arrive, so it is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.message import Message
from email.utils import parseaddr
from enum import StrEnum

from ..mail.refusals import is_recipient_refusal

__all__ = [
    "Failure",
    "Severity",
    "detect",
    "failures_from_dsn",
    "failures_from_returned",
    "has_status",
    "is_dsn",
    "own_text",
    "severity",
]


class Severity(StrEnum):
    """How badly a recipient failed (see the module docstring)."""

    HARD = "hard"  # the address does not exist: suppressed at once
    SOFT = "soft"  # temporary, mailbox state or policy: counted
    DELAY = "delay"  # still trying: ignored


HARD, SOFT, DELAY = Severity.HARD, Severity.SOFT, Severity.DELAY

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([245])\d\d\b")
# Texts that mean "this address does not exist", from Postfix, Exim, Exchange, Gmail, Yahoo,
# qmail and Sendmail bounces.
_ADDRESS_GONE = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address)|"
    r"does not exist|doesn't exist|doesn.t have an account|invalid (recipient|mailbox|address)|"
    r"recipient (address )?rejected|address rejected|mailbox (not found|unavailable)|"
    r"not a valid (mailbox|recipient)|unrouteable address|no mailbox here|"
    r"account (has been )?(disabled|deleted|closed)|resolver\.adr\.recipientnotfound|"
    r"this user doesn't have|mailbox is inactive",
    re.IGNORECASE,
)
_MAILBOX_STATE = re.compile(
    r"quota|mailbox (is )?full|over ?quota|insufficient (storage|system storage)|"
    r"try again later|temporar",
    re.IGNORECASE,
)


# A warning that the mail system is still trying (Exim's "Warning: message ... delayed 24
# hours", Sendmail's "Warning: could not send message for past 4 hours", Exchange's
# "Delivery is delayed"), told by its words when it is not an RFC 3464 report with
# "Action: delayed". Not a bounce: nothing is counted.
_STILL_TRYING = re.compile(
    r"has not yet been delivered|not been delivered yet|hasn't been delivered yet|"
    r"delivery attempts will continue|will (continue to )?(keep )?(try|trying|retry)|"
    r"still (being )?(retried|trying)|delivery (is |has been )?delayed|"
    r"no action is required on your part",
    re.IGNORECASE,
)
_GAVE_UP = re.compile(
    r"permanent(ly)? (error|fail)|could not be delivered|couldn't be delivered|"
    r"gave up|giving up|has been returned|retry time(out)? (not reached|exceeded)",
    re.IGNORECASE,
)


def still_trying(text: str) -> bool:
    """Whether a non-standard bounce's own words are a delay warning, not a failure."""
    return bool(_STILL_TRYING.search(text)) and not _GAVE_UP.search(text)


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports."""

    address: str
    severity: Severity
    status: str = ""  # enhanced status code, e.g. "5.1.1"
    diagnostic: str = ""  # the remote server's words, one line
    source: str = "dsn"  # "dsn", or the flufl.bounce fallback


def severity(status: str, diagnostic: str = "", *, action: str = "failed") -> Severity:
    """hard / soft / delay for a DSN action, status code and diagnostic text."""
    if action.lower() == "delayed":
        return DELAY
    match = _STATUS.search(status) or _STATUS.search(diagnostic)
    specific = _STATUS.search(diagnostic)
    if match and match.group(2) == "0" and specific and specific.group(2) != "0":
        # "Status: 5.0.0" with "550 5.7.1 Recipient address rejected: Access denied" (a
        # policy block): the server's own, more specific code decides, not the words.
        match = specific
    if match:
        klass, subject = match.group(1), match.group(2)
        if klass == "4":
            return SOFT
        if klass == "5" and subject == "1":
            # 5.1.7 / 5.1.8 are the *sender's* address (refusals.py): not the member's fault.
            return HARD if is_recipient_refusal(match.group(0)) else SOFT
        if klass == "5" and subject in ("2", "7"):
            return SOFT  # mailbox full or disabled, policy: the address exists
        if klass == "5" and subject in ("0", "5") and _ADDRESS_GONE.search(diagnostic):
            # "5.0.0 ... user unknown" (Exchange on-premises, older servers); Outlook.com and
            # Hotmail answer an address that does not exist with "550 5.5.0 Requested action
            # not taken: mailbox unavailable".
            return HARD
        return SOFT
    code = _SMTP_CODE.search(diagnostic)
    if code and code.group(1) == "4":
        return SOFT
    if _MAILBOX_STATE.search(diagnostic):
        return SOFT
    if _ADDRESS_GONE.search(diagnostic):
        return HARD
    return SOFT  # permanent, but not shown to be about the address: do not suppress at once


def is_dsn(msg: Message) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower()
        in ("delivery-status", "global-delivery-status")  # RFC 6533: SMTPUTF8 reports
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _address(field: str) -> str:
    """``rfc822; jane@example.org`` → ``jane@example.org``."""
    kind, _, value = field.partition(";")
    if not value:
        value = kind
    value = value.strip()
    return (parseaddr(value)[1] or value).strip("<>")


def _status_blocks(msg: Message) -> list[Message]:
    """The per-recipient field groups of the message/delivery-status part.

    Python's email package parses that part into a list of header blocks: the first is the
    per-message group (Reporting-MTA), the rest one per recipient.
    """
    for part in msg.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            payload = part.get_payload()
            encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
            if encoding in ("base64", "quoted-printable") and isinstance(payload, list):
                # Some MTAs encode the report; the parser split the encoded text into blocks.
                payload = "\n".join(block.as_string() for block in payload)
                raw = _decoded_transfer(payload, encoding)
                payload = raw.decode("utf-8", "replace")
            if (
                isinstance(payload, list)
                and part.get_content_type() == "message/global-delivery-status"
            ):
                # Parsed as one message (first group = headers, the rest = its body).
                payload = "\n".join(block.as_string() for block in payload)
            if isinstance(payload, list):
                return [block for block in payload if isinstance(block, Message)]
            # Some MTAs get the blank lines wrong: parse the text as one block per group.
            from email.parser import HeaderParser

            if isinstance(part.get_payload(), str) and part.get("Content-Transfer-Encoding"):
                raw = part.get_payload(decode=True) or b""
                payload = raw.decode("utf-8", "replace")
            text = payload if isinstance(payload, str) else ""
            return [HeaderParser().parsestr(chunk) for chunk in re.split(r"\n\s*\n", text)]
    return []


def _decoded_transfer(text: str, encoding: str) -> bytes:
    import base64
    import binascii
    import quopri

    if encoding == "quoted-printable":
        return quopri.decodestring(text.encode("ascii", "replace"))
    try:
        return base64.b64decode("".join(text.split()) + "==", validate=False)
    except (binascii.Error, ValueError):
        return b""


def has_status(msg: Message) -> bool:
    """Whether an RFC 3464 report has per-recipient fields we could read."""
    return any(
        block.get("Final-Recipient") or block.get("Original-Recipient")
        for block in _status_blocks(msg)
    )


def failures_from_dsn(msg: Message) -> list[Failure]:
    """Every recipient of an RFC 3464 report with its severity (delivered/relayed dropped)."""
    found: list[Failure] = []
    for block in _status_blocks(msg):
        recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
        action = str(block.get("Action", "")).strip().lower()
        if not recipient or action not in ("failed", "delayed"):
            continue
        status = str(block.get("Status", "")).strip()
        diagnostic = _one_line(str(block.get("Diagnostic-Code", "")))
        address = _address(str(recipient))
        if "@" in address:
            found.append(
                Failure(address, severity(status, diagnostic, action=action), status, diagnostic)
            )
    return found


def _context(text: str, address: str) -> str:
    """The bounce text around the address: where the server's reason usually is."""
    at = text.lower().find(address.lower())
    if at < 0:
        return ""
    return _one_line(text[at : at + 600])


# An SMTP reply inside a bounce's text ("550 5.1.1 …", "554: …"); not a number inside an
# IP address or a host name ("[203.0.113.9]").
_REPLY = re.compile(r"(?<![\w.\[])[245]\d\d(?=[ -]|:\s)")


def _reason(text: str, address: str) -> str:
    """What the server said about ``address``, its reply first: the words after the address
    (which the member column shows already) up to the end of that paragraph, so neither
    the address nor the returned copy of the message below it fills a narrow table. Exim
    puts the host and the SMTP stage first; they go after the reply, in parentheses."""
    at = text.lower().find(address.lower())
    if at < 0:
        return ""
    after = text[at + len(address) : at + 600].lstrip(">:) \t")
    paragraph = _one_line(re.split(r"\n\s*\n", after.lstrip("\r\n"), maxsplit=1)[0])
    reply = _REPLY.search(paragraph)
    if reply is None or reply.start() == 0:
        return paragraph
    before = paragraph[: reply.start()].rstrip(" :")
    return f"{paragraph[reply.start() :]} ({before})"


def _body_text(msg: Message) -> str:
    parts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text" and not part.is_multipart():
            try:
                payload = part.get_payload(decode=True) or b""
                parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
            except (LookupError, ValueError):
                continue
    return "\n".join(parts)


def failures_from_heuristics(msg: Message) -> list[Failure]:
    """Non-standard bounces, through flufl.bounce; severity from the text near each address."""
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(msg)
    text = _body_text(msg)
    found: list[Failure] = []
    for raw, is_permanent in [(a, False) for a in temporary] + [(a, True) for a in permanent]:
        address = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        address = address.strip().strip("<>")
        if "@" not in address:
            continue
        context = _context(text, address)
        match = _STATUS.search(context)
        status = match.group(0) if match else ""
        # flufl.bounce's "temporary" failures are its warning detectors' finds ("message
        # delayed 24 hours, delivery attempts will continue"): still trying, not a bounce.
        level = severity(status, context) if is_permanent else DELAY
        reason = _reason(text, address) or context
        found.append(Failure(address, level, status, reason[:300], source="flufl.bounce"))
    return found


def _html_text(html: str) -> str:
    """Readable text of an HTML part: blocks become lines, tags go, entities are decoded."""
    import html as html_lib

    html = re.sub(r"(?s)<!--.*?-->", " ", html)  # Outlook's conditional comments too
    html = re.sub(r"(?is)<(head|style|script)\b.*?</\1\s*>", " ", html)
    html = re.sub(r"(?i)<(br|/?p|/?div|/?tr|/?li|/?h\d|/?table)\b[^>]*>", "\n", html)
    return html_lib.unescape(re.sub(r"<[^>]*>", "", html))


def _own_parts(part: Message) -> list[Message]:
    """The leaf parts of a message, not descending into an attached message: a bounce's
    own words, without the returned bulletin (whose footer and text are not the server's)."""
    kind = part.get_content_type()
    if kind.startswith("message/") or kind == "text/rfc822-headers":
        return []
    if part.is_multipart():
        payload = part.get_payload()
        return [leaf for sub in payload if isinstance(sub, Message) for leaf in _own_parts(sub)]
    return [part]


def own_text(msg: Message) -> str:
    """The text a message itself says (plain parts, and HTML parts read as text), without
    any message or headers it carries. Never raises on odd charsets or encodings."""
    texts = []
    for part in _own_parts(msg):
        if part.get_content_maintype() != "text":
            continue
        try:
            raw = part.get_payload(decode=True) or b""
        except (ValueError, TypeError, AssertionError):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = raw.decode(charset, "replace")
        except LookupError:
            text = raw.decode("utf-8", "replace")
        texts.append(_html_text(text) if part.get_content_subtype() == "html" else text)
    return "\n".join(texts)


def _returned_headers(msg: Message) -> list[Message]:
    """The headers of the returned original: an attached message/rfc822 or
    text/rfc822-headers part, else a header block quoted in the bounce's own text (older
    Sendmail and Exchange on-premises "Original message headers follow")."""
    from email import message_from_bytes, message_from_string, policy

    found: list[Message] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found.append(payload[0])
        elif kind in ("text/rfc822-headers", "message/rfc822-headers"):
            raw = part.get_payload(decode=True) or b""
            found.append(message_from_bytes(raw, policy=policy.compat32))
    if not found:
        text = own_text(msg)
        block = re.search(
            r"(?ims)^(?:from|return-path|received|message-id|subject|to|date):.*", text
        )
        if block:
            found.append(message_from_string(block.group(0), policy=policy.compat32))
    return found


def failures_from_returned(msg: Message) -> list[Failure]:
    """A bounce neither the DSN nor flufl.bounce could read (an Exchange NDR sent as HTML
    with the original attached, no delivery-status part; a "Returned mail" quoting only the
    original's headers): the failed recipients are the original's To/Cc that the bounce's
    own text names — or its single recipient (a bulletin has one) when the text names
    none. Severity from the bounce's words, as for any bounce."""
    from email.utils import getaddresses

    recipients: dict[str, str] = {}
    for headers in _returned_headers(msg):
        for _, address in getaddresses(headers.get_all("To", []) + headers.get_all("Cc", [])):
            if "@" in address:
                recipients.setdefault(address.casefold(), address)
    text = own_text(msg)
    if not (_STATUS.search(text) or _ADDRESS_GONE.search(text) or _FAILED.search(text)):
        return []  # no word of a failure: not a bounce (a forward titled "Returned mail")
    folded = text.casefold()
    named = [a for key, a in recipients.items() if _names(folded, key)]
    if not named and _others_named(msg, text, recipients):
        # The bounce is about another address (a group or alias the member's address
        # expands to): the member's own address is not shown to be gone. Listed instead.
        return []
    chosen = named or (list(recipients.values()) if len(recipients) == 1 else [])
    found: list[Failure] = []
    for address in chosen:
        context = _context(text, address)
        words = context if _STATUS.search(context) or _ADDRESS_GONE.search(context) else text
        match = _STATUS.search(words)
        status = match.group(0) if match else ""
        at = max(text.casefold().find(address.casefold()), 0)
        reason = _REASON_LINE.search(text, at) or _REASON_LINE.search(text)
        diagnostic = _one_line(reason.group(0) if reason else words)[:300]
        found.append(Failure(address, severity(status, words), status, diagnostic,
                             source="returned message"))  # fmt: skip
    return found


_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_SYSTEM_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|microsoftexchange)", re.I)


def _names(text: str, address: str) -> bool:
    """Whether ``text`` names ``address`` as a whole address: "ann@x.org" is not named by
    "joann@x.org" nor by "ann@x.org.uk" (a substring test took a bounce for joann as one
    for ann, and suppressed a member who never bounced)."""
    pattern = rf"(?<![\w.+'=/-]){re.escape(address)}(?![\w-]|\.[\w-])"
    return re.search(pattern, text) is not None


def _others_named(msg: Message, text: str, recipients: dict[str, str]) -> bool:
    """Whether the bounce's words name an address that is neither a recipient of the
    original nor one of the mail system's or the bounce's own addresses."""
    from email.utils import getaddresses

    own = {a.casefold() for _, a in getaddresses(msg.get_all("From", []) + msg.get_all("To", []))}
    text = re.sub(r"(?im)^.*\bid\b.*$", "", text)  # Message-IDs look like addresses
    for found in _EMAIL.findall(text):
        key = found.casefold().rstrip(".")
        if key in recipients or key in own or _SYSTEM_SENDERS.match(key):
            continue
        return True
    return False


_FAILED = re.compile(
    r"could ?n[o']t be delivered|not (been )?delivered|undeliverable|delivery (has )?failed|"
    r"permanent(ly)? (error|fail)|fatal error|delivery to the following recipient",
    re.IGNORECASE,
)

# The line of a bounce that carries the server's reply ("Remote server returned '550 ...'",
# "#550 5.1.1 RESOLVER...", "(reason: 550 5.1.1 User unknown)").
_REASON_LINE = re.compile(r"[^\n]*\b[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b[^\n]*")


def detect(msg: Message) -> list[Failure]:
    """The failed recipients of a bounce: the DSN if it is one, else the heuristics, else
    the returned original's recipient that the bounce names."""
    if is_dsn(msg) and _status_blocks(msg):
        return failures_from_dsn(msg)  # a report with no failure (delivered, relayed): none
    found = failures_from_heuristics(msg) or failures_from_returned(msg)
    if found and still_trying(own_text(msg)):
        return [replace(f, severity=DELAY) for f in found]
    return found
