"""One finding of ``newsletter doctor`` (and of ``check``'s set-up part): which check, how it
stands, what is wrong and the record or setting that fixes it; typed, so that no caller
decides anything from the words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class CheckId(StrEnum):
    """What ``doctor`` checks, each with a line saying what (Markdown, for the checks
    reference page, docs/reference/checks.md, generated from this class)."""

    description: str

    def __new__(cls, value: str, description: str) -> CheckId:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    SETTINGS = (
        "settings",
        "The settings a send needs are set, none is a placeholder, the secret is strong, "
        "the members list is there.",
    )
    SMTP_AUTH = (
        "smtp-auth",
        "How the SMTP account signs in suits the provider (Microsoft 365 passwords end; "
        "Google takes app passwords).",
    )
    MX = ("mx", "The From domain has MX records (and DNS answers at all).")
    SPF = ("spf", "The From domain's SPF record is valid and authorises the provider.")
    DKIM = ("dkim", "A usable DKIM key is published for the provider's selectors.")
    DMARC = ("dmarc", "The From domain has one valid DMARC record that asks for reports.")
    ALIGNMENT = ("alignment", "SPF or DKIM aligns with the From domain, so DMARC passes.")
    ROUND_TRIP = (
        "round-trip",
        "A real test message to `NEWSLETTER_TEST_TO` is found again through IMAP, not in junk.",
    )
    RECEIVED_SPF = ("received-spf", "The receiving server's SPF verdict on that message.")
    RECEIVED_DKIM = ("received-dkim", "The receiving server's DKIM verdict on that message.")
    RECEIVED_DMARC = ("received-dmarc", "The receiving server's DMARC verdict on that message.")
    SIZE = ("size", "The message is under Gmail's 102 KB clip.")
    LIST_UNSUBSCRIBE = (
        "list-unsubscribe",
        "The message has `List-Unsubscribe` headers, with one-click unsubscribe.",
    )


class Problem(StrEnum):
    """What exactly is wrong (or right), for callers and tests; never shown as such."""

    NONE = "none"
    MISSING_SETTING = "missing-setting"
    PLACEHOLDER_SETTING = "placeholder-setting"
    WEAK_SECRET = "weak-secret"
    NO_MEMBERS_LIST = "no-members-list"
    BASIC_AUTH_ENDING = "basic-auth-ending"
    BASIC_AUTH_ENDED = "basic-auth-ended"
    APP_PASSWORD = "app-password"
    FEEDBACK_PASSWORD_REFUSED = "feedback-password-refused"  # M365 mailbox, password sign-in
    FEEDBACK_APP_PASSWORD = "feedback-app-password"  # Google mailbox, not an app password
    FEEDBACK_RELAY_ACCOUNT = "feedback-relay-account"  # IMAP would use the relay's SMTP login
    TRANSACTIONAL_STREAM = "transactional-stream"  # bulk mail on Postmark's transactional host
    DNS_UNAVAILABLE = "dns-unavailable"
    NO_MX = "no-mx"
    NO_SPF = "no-spf"
    MULTIPLE_SPF = "multiple-spf"
    SPF_SYNTAX = "spf-syntax"
    SPF_TOO_MANY_LOOKUPS = "spf-too-many-lookups"
    SPF_WITHOUT_PROVIDER = "spf-without-provider"
    SPF_PASS_ALL = "spf-pass-all"
    SPF_SOFT = "spf-soft"
    SPF_PROVIDER_UNKNOWN = "spf-provider-unknown"
    NO_DKIM = "no-dkim"
    DKIM_MALFORMED = "dkim-malformed"
    DKIM_REVOKED = "dkim-revoked"
    DKIM_WEAK = "dkim-weak"
    DKIM_SELECTOR_UNKNOWN = "dkim-selector-unknown"
    NO_DMARC = "no-dmarc"
    MULTIPLE_DMARC = "multiple-dmarc"
    DMARC_MALFORMED = "dmarc-malformed"
    DMARC_NO_RUA = "dmarc-no-rua"
    ONLY_SPF_ALIGNS = "only-spf-aligns"
    NOTHING_ALIGNS = "nothing-aligns"
    NOT_FOUND = "not-found"
    IN_JUNK = "in-junk"
    NO_AUTH_RESULTS = "no-auth-results"
    VERDICT = "verdict"  # the receiving server's result, in the message
    UNALIGNED_SIGNATURE = "unaligned-signature"
    CLIPPED = "clipped"
    NEAR_CLIP = "near-clip"
    NO_LIST_UNSUBSCRIBE = "no-list-unsubscribe"
    NO_ONE_CLICK = "no-one-click"
    SEND_FAILED = "send-failed"
    NO_ISSUE = "no-issue"
    NOT_ASKED = "not-asked"  # skipped on request (--no-send, no --dns)


@dataclass(frozen=True)
class Finding:
    check: CheckId
    status: Status
    message: str
    fix: str = ""
    problem: Problem = Problem.NONE
    where: str = ""  # the setting (or DNS name) the fix is about, for `check`'s report

    def as_json(self) -> dict[str, str]:
        """The documented shape of ``doctor --json``: check, status, message, fix."""
        return {
            "check": str(self.check),
            "status": str(self.status),
            "message": self.message,
            "fix": self.fix,
        }


def passed(check: CheckId, message: str) -> Finding:
    return Finding(check, Status.PASS, message)


def failed(check: CheckId, problem: Problem, message: str, fix: str, where: str = "") -> Finding:
    return Finding(check, Status.FAIL, message, fix, problem, where)


def warned(check: CheckId, problem: Problem, message: str, fix: str, where: str = "") -> Finding:
    return Finding(check, Status.WARN, message, fix, problem, where)


def skipped(check: CheckId, message: str, problem: Problem = Problem.NOT_ASKED) -> Finding:
    return Finding(check, Status.SKIP, message, "", problem)


def any_failed(findings: list[Finding]) -> bool:
    return any(f.status == Status.FAIL for f in findings)
