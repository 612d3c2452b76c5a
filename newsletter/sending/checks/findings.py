"""What a pre-flight check finds: a severity, a stable check id, where, what and how to fix it.

The id (:class:`Check`) is what code decides on (``send`` refuses some errors even with
``--force``; ``--skip-invalid`` waives invalid rows); the message is for the chair only and
may be reworded freely. Ids and severities are strings (``"template-syntax"``, ``"error"``),
so a machine-readable output or a documentation page can list them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ...members.recipients import RecipientReport


class Severity(StrEnum):
    """An error refuses a send (unless ``--force``); a warning and a note only inform."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Check(StrEnum):
    """One id per kind of finding. Never renamed once released: scripts may key on them."""

    # The settings
    PLACEHOLDER_SETTING = "placeholder-setting"  # a value as .env.example ships it
    WEAK_SECRET = "weak-secret"  # unsubscribe links could be forged
    SIGN_IN = "sign-in"  # the OAuth sign-in a send needs is missing
    SENDER_DOMAIN = "sender-domain"  # From on another domain than the SMTP account
    SEND_AS = "send-as"  # From another mailbox of the account's domain
    SETTINGS_MISSING = "settings-missing"  # a setting a real send needs is not set (or unusable)
    # The front matter and file
    SUBJECT_LONG = "subject-long"
    PREHEADER_SHORT = "preheader-short"
    PREHEADER_REPEATS_SUBJECT = "preheader-repeats-subject"
    UNKNOWN_KEY = "unknown-key"
    MISSPELT_KEY = "misspelt-key"  # a near miss of a known key (it would be ignored)
    FRONT_MATTER = "front-matter"  # a key missing, empty or of the wrong kind; bad YAML
    DRAFT = "draft"
    RENAMED = "renamed"  # sent before under another file name
    SENT_BEFORE = "sent-before"  # a copy of an issue members already got (another file)
    UNKNOWN_FIELD = "unknown-field"  # recipient.<field> that is not a column of the list
    SKELETON = "skeleton"  # text `newsletter new` wrote, left unchanged
    # What members would see as typed
    TEMPLATE_SYNTAX = "template-syntax"  # {{ }} / {% %} not filled in where it stands
    FIELD_NO_FALLBACK = "field-no-fallback"  # empty on the web archive page
    RAW_HTML = "raw-html"
    FOOTNOTE = "footnote"
    STRIKETHROUGH = "strikethrough"
    BROKEN_LINK = "broken-link"  # link syntax Markdown could not read
    UNCLOSED_COMMENT = "unclosed-comment"
    UNPAIRED_BOLD = "unpaired-bold"
    INDENTED_CODE = "indented-code"
    HEADING_LINK = "heading-link"  # a link among words in a heading is dropped
    # Links and pictures in the issue
    IMAGE_ALT = "image-alt"
    IMAGE_NOT_HTTPS = "image-not-https"
    LINK_NO_TARGET = "link-no-target"
    LINK_PLACEHOLDER = "link-placeholder"
    LINK_HTTP = "link-http"
    LINK_UNUSUAL = "link-unusual"
    LINK_NO_TEXT = "link-no-text"
    LINK_VAGUE = "link-vague"  # "click here"
    # How it looks
    CONTRAST = "contrast"
    LOGO_CONTRAST = "logo-contrast"
    PICTURE = "picture"  # a local picture that cannot be used (missing, unreadable, ...)
    ANIMATION = "animation"
    EMBED_SIZE = "embed-size"
    IMAGES_OFFLINE = "images-offline"
    # The rendered message
    HTML_SIZE = "html-size"  # Gmail clips it (error) or nearly (warning)
    NO_UNSUBSCRIBE = "no-unsubscribe"
    UNSUBSCRIBE_ADDRESS = "unsubscribe-address"  # the address in clear in the URL
    UNSUBSCRIBE_NOT_SHOWN = "unsubscribe-not-shown"  # missing from the footer
    IDENTITY = "identity"  # organisation name or postal address missing from the footer
    # The members list
    EXAMPLE_LIST = "example-list"
    PLACEHOLDER_MEMBERS = "placeholder-members"
    COLUMNS = "columns"  # which columns were used (a note)
    LIST_NOTE = "list-note"  # how the CSV was read (a note)
    ENCODING = "encoding"
    LOST_LETTERS = "lost-letters"  # '?' where the export's code page dropped a letter
    EMPTY_FIELD = "empty-field"
    NAME_IS_ADDRESS = "name-is-address"
    INVALID_ROWS = "invalid-rows"
    NO_ADDRESS = "no-address"
    DUPLICATES = "duplicates"
    SUPPRESSED = "suppressed"
    UNSUBSCRIBED = "unsubscribed"
    NO_MEMBERS = "no-members"
    # The set-up, as `doctor` judges it (newsletter.domain): the same ids as its problems
    NO_MEMBERS_LIST = "no-members-list"
    BASIC_AUTH_ENDING = "basic-auth-ending"  # Microsoft 365 passwords, before the cut-off
    BASIC_AUTH_ENDED = "basic-auth-ended"  # ... on and after it: never sent, even --force
    APP_PASSWORD = "app-password"  # Google takes only an app password
    TRANSACTIONAL_STREAM = "transactional-stream"  # Postmark's host for one-to-one mail
    # How `feedback` signs in to the mailbox (doctor's; `check` leaves them out)
    FEEDBACK_PASSWORD_REFUSED = "feedback-password-refused"
    FEEDBACK_APP_PASSWORD = "feedback-app-password"
    FEEDBACK_RELAY_ACCOUNT = "feedback-relay-account"
    # The From domain's DNS (`check --dns`)
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


@dataclass(frozen=True)
class Finding:
    check: Check
    severity: Severity
    where: str
    message: str
    fix: str = ""

    def line(self) -> str:
        fix = f" — {self.fix}" if self.fix else ""
        return f"{self.severity}: {self.where}: {self.message}{fix}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    members: int = 0
    recipients: RecipientReport | None = None
    already_sent: int = 0  # of ``members``, those the journal says already have the issue
    mails_now: int = 0  # of ``members``, those a send now would mail (when already_sent)

    def add(
        self, check: Check, severity: Severity, where: str, message: str, fix: str = ""
    ) -> None:
        self.findings.append(Finding(check, severity, where, message, fix))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def verdict(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        if errors:
            return f"NOT READY: {counts}. Fix the errors before sending."
        ready = f"READY to send to {self.members} member(s): {counts}."
        if self.already_sent:  # as the dry run says after a send began
            have, left = self.already_sent, self.mails_now
            ready += f" {have} of them already have it: a send now mails {left}."
        return ready
