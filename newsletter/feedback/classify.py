"""What a message in the sending mailbox is: pure functions from bytes to a classification.

Order matters, standards first: an ARF complaint (RFC 5965) and a delivery status
notification (RFC 3464) say exactly what they are; a non-standard bounce is recognised by
its sender or subject and read by flufl.bounce (see bounces.py); then auto-replies
(RFC 3834 Auto-Submitted and the common vendor headers), then unsubscribe requests, and what
is left is a person's reply — listed for the chair, never acted on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import Header, decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum

from .bounces import DELAY, HARD, SOFT, Failure, detect, has_status, is_dsn, own_text

__all__ = ["Feedback", "FeedbackKind", "classify", "KINDS"]


class FeedbackKind(StrEnum):
    """What a message in the mailbox is (the report's rows add two kinds of their own)."""

    COMPLAINT = "complaint"
    HARD_BOUNCE = "hard-bounce"
    SOFT_BOUNCE = "soft-bounce"
    DELAYED = "delayed"  # a "still trying" DSN: ignored
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto-reply"  # ignored
    REPLY = "reply"  # listed for the chair, never acted on
    # Report rows only, never a classification:
    RCPT_REFUSED = "rcpt-refused"  # refused at RCPT during a send (from the journal)
    UNREADABLE = "unreadable"  # the server would not return the message


# Kinds, in the order they are tested.
COMPLAINT = FeedbackKind.COMPLAINT
HARD_BOUNCE = FeedbackKind.HARD_BOUNCE
SOFT_BOUNCE = FeedbackKind.SOFT_BOUNCE
DELAYED = FeedbackKind.DELAYED
UNSUBSCRIBE = FeedbackKind.UNSUBSCRIBE
AUTO_REPLY = FeedbackKind.AUTO_REPLY
REPLY = FeedbackKind.REPLY
KINDS = (COMPLAINT, HARD_BOUNCE, SOFT_BOUNCE, DELAYED, UNSUBSCRIBE, AUTO_REPLY, REPLY)

_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery (status notification|has failed|failure|failed)|"
    r"mail delivery (failed|failure|subsystem|system)|failure notice|returned mail|"
    r"could not be delivered|delivery notification|non.?delivery|message not delivered",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|automatische antwort|out of (the )?office|"
    r"abwesenheit|absence|r[ée]ponse automatique|risposta automatica|respuesta autom[áa]tica|"
    r"automatisch antwoord|vacation|away from (the )?office|on (annual )?leave|"
    # Outlook's and Exchange's own words in other languages (set by the person, often
    # without any Auto-Submitted header): "Abwesend:", "Afwezig:", "Absent du bureau",
    # "Niet aanwezig", "Fuera de la oficina", "Fora do escritório", "Fuori sede".
    r"abwesend|afwezig|niet aanwezig|absent du bureau|fuera de la oficina|fora do escrit|"
    r"fuori sede)",
    re.I,
)
# A reply's subject keeps the mail client's prefix in the sender's language: "Re:",
# Outlook's German "AW:" and "WG:", Dutch "Antw:", Nordic "SV:"/"VS:", Italian "R:", "Fwd:".
_UNSUBSCRIBE_WORDS = re.compile(
    r"^\s*((re|aw|antw|sv|vs|r|fw|fwd|wg|tr|ref|réf|rif)\s?:\s*)*"
    r"(unsubscribe|remove me|stop)\s*[.!]?\s*$",
    re.I,
)


# ARF (RFC 5965) Feedback-Types that are not a member's complaint.
_NOT_COMPLAINTS = ("auth-failure", "not-spam", "virus", "dmarc")


@dataclass(frozen=True)
class Feedback:
    """One classified message."""

    kind: FeedbackKind
    sender: str = ""  # From address
    subject: str = ""
    date: str = ""
    failures: tuple[Failure, ...] = ()  # bounces: each failed recipient
    addresses: tuple[str, ...] = ()  # complaint / unsubscribe: who (before matching)
    message_ids: tuple[str, ...] = field(default=())  # our Message-IDs it refers to
    detail: str = ""  # status and diagnostic, feedback type, why it is an auto-reply


def _text(value: object) -> str:
    return " ".join(str(value or "").split())


def _decoded(value: object) -> str:
    """A header as people read it: RFC 2047 words decoded ("=?utf-8?B?QXV0b21h...?=" is
    "Automatic reply: ..." — Outlook encodes every subject with a non-ASCII character, so
    the out-of-office and unsubscribe tests must see the decoded text), and raw 8-bit UTF-8
    (or Windows-1252) from clients that send it unencoded. Never raises."""
    if value is None:
        return ""
    try:
        chunks = decode_header(value if isinstance(value, Header) else str(value))
    except (ValueError, LookupError, TypeError):
        return _text(value)
    if all(charset is None or _known(charset) for _, charset in chunks):
        try:
            return _text(make_header(chunks))
        except (ValueError, LookupError, UnicodeError):
            pass
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        for name in (charset, "utf-8", "cp1252"):
            if _known(name):
                try:
                    out.append(chunk.decode(name))
                    break
                except UnicodeDecodeError:
                    continue
        else:
            out.append(chunk.decode("utf-8", "replace"))
    return _text("".join(out))


def _known(charset: str | None) -> bool:
    import codecs

    if not charset or charset == "unknown-8bit":
        return False
    try:
        codecs.lookup(charset)
    except LookupError:
        return False
    return True


def _ids(value: object) -> list[str]:
    return _MESSAGE_ID.findall(str(value or ""))


def _attached_headers(msg: Message) -> list[Message]:
    """The original message (or its headers) a report or bounce carries."""
    found: list[Message] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                found.append(payload[0])
        elif kind in ("text/rfc822-headers", "message/rfc822-headers"):
            text = part.get_payload(decode=True) or b""
            found.append(message_from_bytes(text, policy=policy.compat32))
    return found


def _referenced_ids(msg: Message) -> tuple[str, ...]:
    """Message-IDs this message points back at: attached original, In-Reply-To, References,
    and any quoted in a plain-text bounce (qmail and Yahoo quote the original's headers)."""
    ids: list[str] = []
    for original in _attached_headers(msg):
        ids += _ids(original.get("Message-ID"))
    ids += _ids(msg.get("In-Reply-To")) + _ids(msg.get("References"))
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            try:
                text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
            except (LookupError, ValueError):
                continue
            ids += [m for m in re.findall(r"(?im)^message-id:\s*(<[^>]+>)", text)]
    own = set(_ids(msg.get("Message-ID")))
    seen: dict[str, None] = {}
    for mid in ids:
        if mid not in own:
            seen.setdefault(mid, None)
    return tuple(seen)


def _complaint(msg: Message) -> tuple[list[str], str]:
    """(complained-about addresses, feedback type) of an RFC 5965 report."""
    addresses: list[str] = []
    kind = "abuse"
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else []
            if not blocks and isinstance(payload, str):
                from email.parser import HeaderParser

                blocks = [HeaderParser().parsestr(payload)]
            for block in blocks:
                kind = _text(block.get("Feedback-Type")) or kind
                for value in block.get_all("Original-Rcpt-To", []):
                    address = parseaddr(str(value))[1]
                    if address:
                        addresses.append(address)
    if not addresses:
        for original in _attached_headers(msg):
            addresses += [a for _, a in getaddresses(original.get_all("To", [])) if a]
    return addresses, kind


def _looks_like_bounce(msg: Message) -> bool:
    """Worth running the bounce heuristics on: flufl.bounce's generic detectors would find
    "failed addresses" in ordinary mail, so they only see what a mail system sent."""
    if msg.get("X-Failed-Recipients"):
        return True
    if "X-MS-Exchange-Message-Is-Ndr" in msg:  # Exchange's NDR mark (its value is empty)
        return True
    if _BOUNCE_SENDER.match(parseaddr(str(msg.get("From", "")))[1]):
        return True
    bounce_subject = bool(_BOUNCE_SUBJECT.search(_decoded(msg.get("Subject"))))
    null_sender = str(msg.get("Return-Path", "")).strip() == "<>"
    # A person's reply quoting "Undeliverable: ..." has In-Reply-To and a real sender.
    return bounce_subject and (null_sender or not msg.get("In-Reply-To"))


def _auto_reply(msg: Message) -> str:
    """Why this is an automatic reply ("" if it is not)."""
    auto = _text(msg.get("Auto-Submitted")).lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if msg.get(name):
            return name
    precedence = _text(msg.get("Precedence")).lower()
    if precedence in ("auto_reply", "junk"):
        return f"Precedence: {precedence}"
    subject = _decoded(msg.get("Subject"))
    if _text(msg.get("X-Auto-Response-Suppress")) and _AUTO_SUBJECT.search(subject):
        return "Exchange automatic reply"
    if _AUTO_SUBJECT.search(subject):
        return "out-of-office subject"
    return ""


def _first_line(msg: Message) -> str:
    """The first line the sender wrote: of the plain-text part (a reply from Gmail or
    Outlook is multipart/alternative), else of the HTML part read as text (Outlook can send
    HTML alone) — never of a message it carries."""
    for line in own_text(msg).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _asks_to_unsubscribe(msg: Message, unsubscribe_mailto: str, own_address: str) -> bool:
    """An explicit request: the subject is just "unsubscribe" (what a mail client's
    List-Unsubscribe mailto sends), or the mail went to the unsubscribe address."""
    if _UNSUBSCRIBE_WORDS.match(_decoded(msg.get("Subject"))):
        return True
    mailto = unsubscribe_mailto.strip().casefold()
    # Mail to the unsubscribe address counts only when it is not also the address members
    # reply to: otherwise every reply would unsubscribe its sender.
    if mailto and mailto != own_address.strip().casefold():
        recipients = getaddresses(
            msg.get_all("To", []) + msg.get_all("Cc", []) + msg.get_all("Delivered-To", [])
        )
        return any(address.casefold() == mailto for _, address in recipients)
    return False


def _drop_attachments(msg: Message) -> None:
    """Empty the pictures, PDFs and other binary parts of a message we parsed ourselves:
    nothing here reads them, and flufl.bounce's generic detectors would scan every line of
    their base64 (seconds for a bounce returning a bulletin with a 20 MB attachment)."""
    for part in msg.walk():
        if not part.is_multipart() and part.get_content_maintype() in (
            "application", "image", "audio", "video", "font", "model",
        ):  # fmt: skip
            part.set_payload("")


def classify(
    data: bytes | Message, *, unsubscribe_mailto: str = "", own_address: str = ""
) -> Feedback:
    """Classify one message from the sending mailbox (bytes as fetched, or a parsed one).

    ``unsubscribe_mailto`` is NEWSLETTER_UNSUBSCRIBE_MAILTO; ``own_address`` the From
    address of the bulletin (mail to it is not an unsubscribe request by itself).
    """
    if isinstance(data, Message):
        msg = data
    else:
        msg = message_from_bytes(data, policy=policy.compat32)
        _drop_attachments(msg)
    sender = parseaddr(str(msg.get("From", "")))[1]
    base = {
        "sender": sender,
        "subject": _decoded(msg.get("Subject")),
        "date": _text(msg.get("Date")),
        "message_ids": _referenced_ids(msg),
    }
    if (
        msg.get_content_type() == "multipart/report"
        and msg.get_param("report-type", "").lower() == "feedback-report"
    ):
        addresses, kind = _complaint(msg)
        if kind.lower() in _NOT_COMPLAINTS:
            # A DMARC failure report (RFC 6591 auth-failure, sent to a domain's ruf= address,
            # often the chair's own), a virus report or a "not spam" vote: reports in ARF
            # form, but no member asked to stop.
            return Feedback(AUTO_REPLY, detail=f"feedback report: {kind}, not a complaint", **base)
        return Feedback(COMPLAINT, addresses=tuple(addresses), detail=kind, **base)
    if (
        msg.get_content_type() == "multipart/report"
        and msg.get_param("report-type", "").lower() == "disposition-notification"
    ):
        # A read receipt (RFC 8098 "Read:" / "Not read:"): nobody wrote anything.
        return Feedback(AUTO_REPLY, detail="read receipt", **base)
    if is_dsn(msg) or _looks_like_bounce(msg):
        failures = tuple(detect(msg))
        if failures:
            levels = {f.severity for f in failures}
            kind = HARD_BOUNCE if HARD in levels else SOFT_BOUNCE if SOFT in levels else DELAYED
            worst = next(f for f in failures if f.severity == {HARD_BOUNCE: HARD,
                         SOFT_BOUNCE: SOFT, DELAYED: DELAY}[kind])  # fmt: skip
            detail = " ".join(x for x in (worst.status, worst.diagnostic) if x)
            return Feedback(kind, failures=failures, detail=detail[:200], **base)
        if is_dsn(msg) and has_status(msg):
            return Feedback(AUTO_REPLY, detail="delivery report without a failure", **base)
        # A bounce whose recipient could not be read: listed for the chair to read, not
        # dropped as an auto-reply (Exchange marks its NDRs Auto-Submitted).
        return Feedback(REPLY, detail="a bounce naming no recipient we could read", **base)
    unsubscribe = Feedback(UNSUBSCRIBE, addresses=(sender,) if sender else (), **base)
    # Before the auto-reply test: a mail client's or provider's unsubscribe mail is machine
    # made and may say so (Auto-Submitted: auto-generated); an out-of-office never has
    # "unsubscribe" for its whole subject, nor goes to the unsubscribe address.
    if _asks_to_unsubscribe(msg, unsubscribe_mailto, own_address) and not _AUTO_SUBJECT.search(
        base["subject"]
    ):
        return unsubscribe
    why = _auto_reply(msg)
    if why:
        return Feedback(AUTO_REPLY, detail=why, **base)
    if _UNSUBSCRIBE_WORDS.match(_first_line(msg)):
        return unsubscribe
    return Feedback(REPLY, **base)
