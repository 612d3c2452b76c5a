"""Which SMTP refusals are about the *sender* (quota, blocked account), not one member.

A refusal of the sender looks, reply by reply, like a member's failure (550/554), but it is
the same for every member that follows: recording each as ``failed`` would turn the rest of
the list into "failed" and a re-run into "Nothing to send". Two ways to tell:

* the provider's known words and enhanced status codes (Gmail's daily limits, Microsoft
  365's submission quota and outbound-spam blocks): :func:`classify`;
* generally, a :class:`CircuitBreaker`: several *consecutive* permanent refusals of
  *different* members with the same reply that is not a recipient code (5.1.x bad address,
  5.2.1/5.2.2 mailbox) cannot be about those members; nor can ten members at three
  organisations refused as unknown before the server accepted anyone (a server that only
  receives mail).

What a refusal means is returned typed (:class:`RefusalKind` on a :class:`SenderRefusal`),
its words made from it; :func:`is_permanent` and :func:`is_unknown_address` read a recorded
reply's code, so that no caller looks at its characters.

Pure functions and one small class: no I/O, no clock, no threads (callers lock).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

DAY = timedelta(hours=24)
BREAKER_THRESHOLD = 5  # consecutive identical non-recipient refusals of different members
# Members refused as unknown (5.1.x) before the server accepted anyone in this run, at this
# many organisations at least: a server that only receives mail (an inbound MX set as the
# SMTP host) refuses every outside address so. One old address in ten is normal; ten of ten
# at three organisations, with not one accepted, is not.
UNKNOWN_THRESHOLD = 10
UNKNOWN_DOMAINS = 3
_UNKNOWN = "\0unknown-recipients"  # the breaker's shape for that trip (no reply has a NUL)

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# A permanent refusal as the transport records a reply: its 5xx code first ("550-" or "550 ").
_PERMANENT = re.compile(r"^\s*5\d\d(?:[ -]|$)")
# Enhanced codes that are about the recipient (RFC 3463): bad destination address, mailbox
# disabled or full. 5.1.7 and 5.1.8 are the *sender's* address, so they are not in here.
_RECIPIENT_CODES = re.compile(r"^5\.1\.(?:[0-6]|9|10)$|^5\.2\.[12]$")


class RefusalKind(StrEnum):
    """Why the provider refuses the sender: a known refusal by its words, or the breaker's
    conclusion from the pattern of refusals."""

    GMAIL_DAILY = "gmail-daily"
    SES_DAILY = "ses-daily"  # Amazon SES: the account's sending quota (per 24 hours)
    RELAY_DAILY = "relay-daily"
    M365_DAILY = "m365-daily"
    M365_TENANT_BLOCKED = "m365-tenant-blocked"
    M365_IP_BLOCKED = "m365-ip-blocked"
    UNREGISTERED_DOMAIN = "unregistered-domain"
    BLOCKED_SENDER = "blocked-sender"
    TOO_LARGE = "too-large"
    SEND_AS_DENIED = "send-as-denied"
    SAME_REFUSAL = "same-refusal"  # different members in a row, the same non-address reply
    ALL_UNKNOWN = "all-unknown"  # the first members, at several organisations, all unknown


_DAILY = "run the same command again in 24 hours"
_ADMIN_RELEASE = (
    "ask your Microsoft 365 administrator to release the account or tenant "
    "(Defender portal, Restricted entities), then run the same command again"
)
# What each known refusal means, what to do, and when a plain re-run can work.
_MEANINGS: dict[RefusalKind, tuple[str, str, timedelta | None]] = {
    RefusalKind.GMAIL_DAILY: ("Gmail's daily sending limit was reached", _DAILY, DAY),
    RefusalKind.SES_DAILY: (
        "Amazon SES's daily sending quota for the account was reached",
        # A rolling 24 hours, like the others; a larger quota is asked for in the console.
        f"{_DAILY} (or ask AWS for a larger sending quota: SES console, Account dashboard)",
        DAY,
    ),
    RefusalKind.RELAY_DAILY: ("Google Workspace's daily SMTP relay limit was reached", _DAILY, DAY),
    RefusalKind.M365_DAILY: ("Microsoft 365's daily recipient limit was reached", _DAILY, DAY),
    RefusalKind.M365_TENANT_BLOCKED: (
        "Microsoft 365 blocked the tenant for sending too much (outbound spam threshold)",
        _ADMIN_RELEASE,
        None,
    ),
    RefusalKind.M365_IP_BLOCKED: (
        "Microsoft 365 does not accept mail from this tenant's sending IP now",
        _ADMIN_RELEASE,
        None,
    ),
    RefusalKind.UNREGISTERED_DOMAIN: (
        "Microsoft 365 blocks this account from sending from an unregistered domain",
        _ADMIN_RELEASE,
        None,
    ),
    RefusalKind.BLOCKED_SENDER: (
        "the provider blocked the account from sending (bad outbound sender)",
        _ADMIN_RELEASE,
        None,
    ),
    RefusalKind.TOO_LARGE: (
        "the server refuses messages this large",
        "make the issue smaller (fewer or smaller pictures, or NEWSLETTER_IMAGES=hosted; a dry "
        "run shows the message size), then run the same command again",
        None,
    ),
    RefusalKind.SEND_AS_DENIED: (
        "the account is not allowed to send as NEWSLETTER_FROM",
        "check NEWSLETTER_FROM and that the account may send as it, then run the same "
        "command again",
        None,
    ),
}


@dataclass(frozen=True, slots=True)
class SenderRefusal:
    """The provider refuses the account, so no further member can be sent to now.

    ``kind`` says why; :attr:`reason` and :attr:`advice` are the words for the user, made
    from it. ``members``, ``domains``, ``domain``: what the breaker saw (its kinds only)."""

    reply: str  # the provider's words, as one line
    kind: RefusalKind
    members: int = 0  # members refused that way
    domains: int = 0  # at this many organisations
    domain: str = ""  # the one organisation they are all at, if one

    @property
    def reason(self) -> str:
        """What it means, e.g. "Gmail's daily sending limit was reached"."""
        if self.kind is RefusalKind.SAME_REFUSAL:
            return (
                f"the server refused {self.members} different members in a row with the "
                "same reply, which is not about their addresses"
            )
        if self.kind is RefusalKind.ALL_UNKNOWN:
            return (
                f"the server refused the first {self.members} members, at {self.domains} "
                "different organisations, as unknown addresses and accepted none: it is most "
                "likely not a server that sends mail out"
            )
        return _MEANINGS[self.kind][0]

    @property
    def advice(self) -> str:
        """What to do, e.g. "run the same command again in 24 hours"."""
        if self.kind is RefusalKind.SAME_REFUSAL:
            advice = "check the account with your provider, then run the same command again"
            if self.domain:
                # Colleagues at one organisation may all be refused by *its* policy: the next
                # run tries everyone else first, and records them failed if they are refused
                # again with the same words while the others get through.
                advice += (
                    f" (all {self.members} are at {self.domain}: if that organisation "
                    "refuses them, the next run tries everyone else first and then records "
                    "them failed)"
                )
            return advice
        if self.kind is RefusalKind.ALL_UNKNOWN:
            return (
                "check NEWSLETTER_SMTP_HOST and NEWSLETTER_SMTP_PORT are your organisation's "
                "sending server (smtp.office365.com or smtp.gmail.com, port 587), not one that "
                "only receives mail, then run the same command again"
            )
        return _MEANINGS[self.kind][1]

    @property
    def retry_after(self) -> timedelta | None:
        """When a plain re-run can work, if known."""
        meaning = _MEANINGS.get(self.kind)
        return meaning[2] if meaning else None


# Amazon SES answers both of its limits with 454 and these words (its SMTP interface's
# documented replies; an enhanced code, should one come, is allowed before them).
_SES = r"^\s*454[ -](?:4\.\d{1,3}\.\d{1,3}\s+)?Throttling failure:?\s*"

# The provider's known words and enhanced codes for each refusal (first match wins).
_KNOWN: tuple[tuple[re.Pattern[str], RefusalKind], ...] = (
    (re.compile(_SES + r"Daily message quota exceeded", re.I), RefusalKind.SES_DAILY),
    (
        re.compile(r"daily (?:user )?sending (?:limit|quota) exceeded|\b5\.4\.5\b", re.I),
        RefusalKind.GMAIL_DAILY,
    ),
    (re.compile(r"daily smtp relay sending limit exceeded", re.I), RefusalKind.RELAY_DAILY),
    (
        re.compile(
            r"SubmissionQuotaExceeded|submission quota|recipient rate limit|\b5\.2\.0\b.*quota",
            re.I,
        ),
        RefusalKind.M365_DAILY,
    ),
    (
        re.compile(r"\b5\.7\.705\b|tenant has exceeded threshold", re.I),
        RefusalKind.M365_TENANT_BLOCKED,
    ),
    (
        re.compile(r"\b5\.7\.708\b|traffic not accepted from this IP", re.I),
        RefusalKind.M365_IP_BLOCKED,
    ),
    (re.compile(r"\b5\.7\.750\b|unregistered domains", re.I), RefusalKind.UNREGISTERED_DOMAIN),
    (re.compile(r"\b5\.1\.8\b|bad outbound sender", re.I), RefusalKind.BLOCKED_SENDER),
    # The same message goes to everyone: too large for one is too large for all.
    (
        re.compile(r"\b5\.3\.4\b|message size exceeds|message (?:is )?too (?:big|large)", re.I),
        RefusalKind.TOO_LARGE,
    ),
    (re.compile(r"\b5\.7\.60\b|SendAsDenied", re.I), RefusalKind.SEND_AS_DENIED),
)


def enhanced_code(reply: str) -> str | None:
    """The RFC 3463 enhanced status code in a reply (``"5.1.1"``), if it has one."""
    found = _ENHANCED.search(reply)
    return ".".join(found.groups()) if found else None


def is_recipient_refusal(reply: str) -> bool:
    """True if the reply's enhanced code says the *recipient* is the problem."""
    code = enhanced_code(reply)
    return code is not None and bool(_RECIPIENT_CODES.match(code))


def is_permanent(reply: str) -> bool:
    """True if the reply (as the transport records it: code first) is a 5xx refusal.

    Only a reply code counts: our own words in the journal ("host:port: connection
    refused", where the host may be an IP address starting with 5) never do."""
    return bool(_PERMANENT.match(reply))


def is_unknown_address(reply: str) -> bool:
    """True if the reply refuses the recipient's *address* for good (``550 5.1.1``): a 5xx
    whose enhanced code is 5.1.x about the recipient (not 5.1.7/5.1.8, the sender's)."""
    code = enhanced_code(reply)
    return (
        is_permanent(reply)
        and code is not None
        and code.split(".")[1] == "1"
        and is_recipient_refusal(reply)
    )


def classify(reply: str) -> SenderRefusal | None:
    """A known refusal of the sender (quota, blocked account), else None."""
    for pattern, kind in _KNOWN:
        if pattern.search(reply):
            return SenderRefusal(reply, kind)
    return None


class Throttle(StrEnum):
    """A temporary refusal that says the run sends too *fast* (not too much): slow down and
    retry the message; the run goes on."""

    SES_RATE = "ses-rate"  # Amazon SES: over the account's maximum send rate (per second)


_THROTTLES: tuple[tuple[re.Pattern[str], Throttle], ...] = (
    (re.compile(_SES + r"Maximum sending rate exceeded", re.I), Throttle.SES_RATE),
)


def throttle(reply: str) -> Throttle | None:
    """Whether a (temporary) reply asks the sender to slow down, and whose words say so."""
    return next((kind for words, kind in _THROTTLES if words.search(reply)), None)


_ADDRESS = re.compile(r"<[^<>]*>|\S+@\S+|\[[^\[\]]*\]|\([^()]*\)")
_VARIABLE = re.compile(r"\b(?=\w*\d)\w{6,}\b")  # queue ids, host names with numbers


def reply_shape(reply: str) -> str:
    """The reply without what differs per member (addresses, queue ids, bracketed host
    names), so that the same refusal of different members compares equal."""
    text = _ADDRESS.sub(" ", reply)
    text = _VARIABLE.sub("#", text)
    return " ".join(text.casefold().split())


@dataclass
class CircuitBreaker:
    """Counts consecutive permanent refusals of different members with the same reply.

    Feed it every outcome in the order they arrive: :meth:`success` for an accepted
    message, :meth:`refused` for a permanent refusal. ``refused`` returns a
    :class:`SenderRefusal` once ``threshold`` different members in a row were refused with
    the same non-recipient reply; :attr:`members` are then the addresses that should go
    back to pending (they were refused because of the sender, not themselves).
    """

    threshold: int = BREAKER_THRESHOLD
    members: list[str] = field(default_factory=list)
    _shape: str = ""
    # Every such refusal of the run by reply shape, whatever came between: with several
    # connections a slower one's success can restart the count mid-way.
    _seen: dict[str, list[str]] = field(default_factory=dict)

    # Members an earlier run put back to pending after a refusal: key -> that reply's shape.
    earlier: dict[str, str] = field(default_factory=dict)
    _accepted: bool = False  # the server accepted a message in this run
    _unknown: list[str] = field(default_factory=list)  # refused as unknown before that

    def success(self) -> None:
        self._accepted = True
        self._unknown.clear()
        self._streak_ends()

    def _streak_ends(self) -> None:
        self.members.clear()
        self._shape = ""

    def refused(self, address: str, reply: str) -> SenderRefusal | None:
        if is_recipient_refusal(reply):
            if not self._accepted:
                return self._unknown_recipient(address, reply)
            self._streak_ends()  # a bad address: the sender evidently still gets through
            return None
        shape = reply_shape(reply)
        if self._accepted and self.earlier.get(address.strip().casefold()) == shape:
            # Refused again with the words that put it back last time, while this run's
            # other members get through: the refusal is about this member (its
            # organisation's policy), not the sender. Failed, or it stays pending for ever.
            self._streak_ends()
            return None
        seen = self._seen.setdefault(shape, [])
        if address.casefold() not in (m.casefold() for m in seen):
            seen.append(address)
        if shape != self._shape:
            self.members.clear()
            self._shape = shape
        if address.casefold() not in (m.casefold() for m in self.members):
            self.members.append(address)
        if len(self.members) < self.threshold:
            return None
        domains = {m.rpartition("@")[2].casefold() for m in self.members}
        return SenderRefusal(
            reply,
            RefusalKind.SAME_REFUSAL,
            members=len(self.members),
            domains=len(domains),
            domain=domains.pop() if len(domains) == 1 else "",
        )

    def _unknown_recipient(self, address: str, reply: str) -> SenderRefusal | None:
        self._streak_ends()
        if address.casefold() not in (m.casefold() for m in self._unknown):
            self._unknown.append(address)
        domains = {m.rpartition("@")[2].casefold() for m in self._unknown}
        if len(self._unknown) < UNKNOWN_THRESHOLD or len(domains) < UNKNOWN_DOMAINS:
            return None
        self._shape = _UNKNOWN
        self._seen[_UNKNOWN] = list(self._unknown)
        self.members[:] = self._unknown
        return SenderRefusal(
            reply, RefusalKind.ALL_UNKNOWN, members=len(self._unknown), domains=len(domains)
        )

    def returned(self) -> list[str]:
        """After a trip: every member of the run refused with the tripping reply — all of
        them go back to pending, not only the last ``threshold`` in a row."""
        return list(self._seen.get(self._shape, []))
