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


# The severities a check is reported at (some depend on how bad it is, e.g. a contrast).
_ERROR = (Severity.ERROR,)
_WARNING = (Severity.WARNING,)
_INFO = (Severity.INFO,)
_WARNING_OR_ERROR = (Severity.WARNING, Severity.ERROR)
_INFO_OR_WARNING = (Severity.INFO, Severity.WARNING)


class Check(StrEnum):
    """One id per kind of finding. Never renamed once released: scripts may key on them.

    Each member declares its id, the severities it is reported at and what it means (Markdown,
    for the checks reference page, docs/reference/checks.md, generated from this class)."""

    severities: tuple[Severity, ...]
    description: str

    def __new__(cls, value: str, severities: tuple[Severity, ...], description: str) -> Check:
        member = str.__new__(cls, value)
        member._value_ = value
        member.severities = severities
        member.description = description
        return member

    # The settings
    PLACEHOLDER_SETTING = (
        "placeholder-setting",
        _ERROR,
        "A setting still holds the value `.env.example` ships (or an address on example.org, "
        ".com, .net): set your own in `.env`.",
    )
    WEAK_SECRET = (
        "weak-secret",
        _ERROR,
        "`NEWSLETTER_SECRET` is the placeholder, short or guessable: unsubscribe links could "
        "be forged. Never sent, even with `--force`; `newsletter setup` makes a random one.",
    )
    SIGN_IN = (
        "sign-in",
        _ERROR,
        "The OAuth 2.0 sign-in a send needs is missing or expired: run `newsletter login`.",
    )
    SENDER_DOMAIN = (
        "sender-domain",
        _WARNING,
        "`NEWSLETTER_FROM` is on another domain than the SMTP account: SPF/DKIM alignment may "
        "fail and mail land in spam. Send from the account's domain or authorise the server.",
    )
    SEND_AS = (
        "send-as",
        _WARNING,
        "`NEWSLETTER_FROM` is another mailbox of the account's domain: Microsoft 365 needs "
        "Send As rights, Gmail a verified 'Send mail as' address. Send a `--test` copy first.",
    )
    SETTINGS_MISSING = (
        "settings-missing",
        _ERROR,
        "A setting a real send needs is not set or unusable (e.g. no `NEWSLETTER_SMTP_HOST`): "
        "the send would stop at once. The message names the setting.",
    )
    # The front matter and file
    SUBJECT_LONG = (
        "subject-long",
        _WARNING,
        "The subject (as members read it) is longer than inboxes show: put the words that "
        "matter first.",
    )
    PREHEADER_SHORT = (
        "preheader-short",
        _WARNING,
        "The preheader is very short; inboxes fill the rest with the body's first words. "
        "Write a sentence of 40–100 characters.",
    )
    PREHEADER_REPEATS_SUBJECT = (
        "preheader-repeats-subject",
        _WARNING,
        "The preheader repeats the subject: use it to say what else is inside.",
    )
    UNKNOWN_KEY = (
        "unknown-key",
        _WARNING,
        "A front-matter key unlike any known one is ignored ([front matter](front-matter.md)).",
    )
    MISSPELT_KEY = (
        "misspelt-key",
        _ERROR,
        "A front-matter key is a near miss of a known one (`Draft:`, `archve:`): it would be "
        "ignored, so rename it.",
    )
    FRONT_MATTER = (
        "front-matter",
        _ERROR,
        "A required key is missing or empty, a value is of the wrong kind, or the front "
        "matter is not valid YAML. The message names the line.",
    )
    DRAFT = (
        "draft",
        _ERROR,
        "The issue says `draft: true`: previews and `--test` sends work, a real send is "
        "refused even with `--force`. Delete the line when it is ready.",
    )
    RENAMED = (
        "renamed",
        _WARNING_OR_ERROR,
        "The issue was sent before under another file name: members would get it again. "
        "Rename it back, or add `--resend-of OLD` (then a warning).",
    )
    SENT_BEFORE = (
        "sent-before",
        _WARNING_OR_ERROR,
        "The issue is a copy of one members already got (another file): write its own text, "
        "or add `--resend-of SLUG` (then a warning; also when `--resend-of` does nothing).",
    )
    UNKNOWN_FIELD = (
        "unknown-field",
        _WARNING_OR_ERROR,
        "`recipient.FIELD` names no column of the members list: an error, or a warning when "
        "it has a fallback every member would read.",
    )
    SKELETON = (
        "skeleton",
        _ERROR,
        "Text `newsletter new` wrote is left unchanged (the placeholder preheader, guidance "
        "lines): write your own, or delete it.",
    )
    # What members would see as typed
    TEMPLATE_SYNTAX = (
        "template-syntax",
        _ERROR,
        "`{{ }}` or `{% %}` that is not filled in where it stands (title, a heading, a "
        "button, a link's address, or not a member field): members would see it as typed.",
    )
    FIELD_NO_FALLBACK = (
        "field-no-fallback",
        _WARNING,
        "A member field without a fallback shows nothing on the web archive page: add one, "
        '`{{ recipient.first_name or "…" }}`, or `archive: false`.',
    )
    RAW_HTML = (
        "raw-html",
        _WARNING,
        "Raw HTML is shown as text in the email: use Markdown instead.",
    )
    FOOTNOTE = ("footnote", _WARNING, "Footnotes are not supported: they are shown as typed.")
    STRIKETHROUGH = (
        "strikethrough",
        _WARNING,
        "Strikethrough is not supported: it is shown as typed.",
    )
    BROKEN_LINK = (
        "broken-link",
        _ERROR,
        "Link syntax Markdown could not read: members would see it as typed. The fix says "
        "what is wrong with it.",
    )
    UNCLOSED_COMMENT = (
        "unclosed-comment",
        _ERROR,
        "A comment `<!--` is never closed, so what follows shows as text: end it with `-->`.",
    )
    UNPAIRED_BOLD = ("unpaired-bold", _WARNING, "`**` without its pair is shown as typed.")
    INDENTED_CODE = (
        "indented-code",
        _WARNING,
        "Text indented by 4 spaces or a tab shows as code, in a typewriter font.",
    )
    HEADING_LINK = (
        "heading-link",
        _ERROR,
        "A heading shows text only: a link in it is left out of the email. Put it in a "
        "sentence or a button.",
    )
    # Links and pictures in the issue
    IMAGE_ALT = (
        "image-alt",
        _ERROR,
        "A picture has no alt text (many mail clients block pictures): "
        "`![what the picture shows](…)`.",
    )
    IMAGE_NOT_HTTPS = ("image-not-https", _WARNING, "A picture's address is not an https URL.")
    LINK_NO_TARGET = ("link-no-target", _WARNING, "A link has no address.")
    LINK_PLACEHOLDER = ("link-placeholder", _WARNING, "A link points at a placeholder address.")
    LINK_HTTP = ("link-http", _WARNING, "A link uses `http://`: use `https://` if the site has it.")
    LINK_UNUSUAL = (
        "link-unusual",
        _WARNING,
        "A link has an unusual target: links in email must be absolute (`https://…`).",
    )
    LINK_NO_TEXT = ("link-no-text", _WARNING, "A link has no words to click.")
    LINK_VAGUE = (
        "link-vague",
        _WARNING,
        'A link\'s text does not say where it goes ("click here").',
    )
    # How it looks
    CONTRAST = (
        "contrast",
        _WARNING_OR_ERROR,
        "A colour of `organisation.toml` is below WCAG AA contrast (an error below 3:1).",
    )
    LOGO_CONTRAST = (
        "logo-contrast",
        _WARNING,
        "The logo is almost the colour of the header band it sits on: it will hardly show.",
    )
    PICTURE = (
        "picture",
        _ERROR,
        "A local picture cannot be used (missing, unreadable, too large, ...): the message "
        "says why.",
    )
    ANIMATION = (
        "animation",
        _WARNING,
        "An animated picture: the email shows its first frame only.",
    )
    EMBED_SIZE = (
        "embed-size",
        _WARNING,
        "Embedded pictures make every message large: use fewer or smaller ones, or publish "
        "them with the web archive (`NEWSLETTER_IMAGES=hosted`).",
    )
    IMAGES_OFFLINE = (
        "images-offline",
        _ERROR,
        "Hosted pictures are not online at `NEWSLETTER_ARCHIVE_URL` yet: publish the archive "
        "first.",
    )
    # The rendered message
    HTML_SIZE = (
        "html-size",
        _WARNING_OR_ERROR,
        "The HTML is above Gmail's 102 KB clip (error) or close to it (warning).",
    )
    NO_UNSUBSCRIBE = (
        "no-unsubscribe",
        _ERROR,
        "No unsubscribe link is configured: never sent, even with `--force`. Set "
        "`NEWSLETTER_UNSUBSCRIBE_URL` (and `NEWSLETTER_SECRET`) or "
        "`NEWSLETTER_UNSUBSCRIBE_MAILTO`.",
    )
    UNSUBSCRIBE_ADDRESS = (
        "unsubscribe-address",
        _WARNING,
        "The unsubscribe URL carries the address in clear (`{email}`): use `{token}` alone.",
    )
    UNSUBSCRIBE_NOT_SHOWN = (
        "unsubscribe-not-shown",
        _ERROR,
        "The unsubscribe link is missing from the footer of the HTML or text part (a changed "
        "template).",
    )
    IDENTITY = (
        "identity",
        _ERROR,
        "The organisation's name or postal address is missing from the footer (UK PECR / "
        "GDPR expect them).",
    )
    # The members list
    EXAMPLE_LIST = (
        "example-list",
        _ERROR,
        "The example members list (`recipients.csv.example`) would be used: pass `-r` with "
        "your list, or save it as `recipients.csv`.",
    )
    PLACEHOLDER_MEMBERS = (
        "placeholder-members",
        _WARNING_OR_ERROR,
        "Members on placeholder domains (example.org, ...): an error when all are, a warning "
        "when some are.",
    )
    COLUMNS = ("columns", _INFO, "Which columns were used for the address and the names.")
    LIST_NOTE = ("list-note", _INFO, "How the CSV was read (delimiter, header row, ...).")
    ENCODING = (
        "encoding",
        _INFO_OR_WARNING,
        "The list's encoding; a warning for a Windows code page (a few names as read are shown).",
    )
    LOST_LETTERS = (
        "lost-letters",
        _ERROR,
        "`?` where the export's code page dropped a letter: export the list again as UTF-8.",
    )
    EMPTY_FIELD = (
        "empty-field",
        _WARNING,
        "A member field the issue uses is empty for some members: add a fallback or fill "
        "the column in.",
    )
    NAME_IS_ADDRESS = (
        "name-is-address",
        _WARNING,
        "The name the greeting uses holds an email address for some members.",
    )
    INVALID_ROWS = (
        "invalid-rows",
        _ERROR,
        "Invalid addresses in the list: fix them, or send with `--skip-invalid`.",
    )
    NO_ADDRESS = ("no-address", _WARNING, "Rows without an address are skipped.")
    DUPLICATES = ("duplicates", _INFO, "Duplicate addresses are sent once.")
    SUPPRESSED = ("suppressed", _INFO, "Members on the suppression list are skipped.")
    UNSUBSCRIBED = ("unsubscribed", _INFO, "Members marked unsubscribed are skipped.")
    NO_MEMBERS = (
        "no-members",
        _ERROR,
        "No members to send to: check the CSV and the suppression list.",
    )
    # The set-up, as `doctor` judges it (newsletter.domain): the same ids as its problems
    NO_MEMBERS_LIST = (
        "no-members-list",
        _ERROR,
        "The members list `NEWSLETTER_RECIPIENTS` names is not there.",
    )
    BASIC_AUTH_ENDING = (
        "basic-auth-ending",
        _WARNING,
        "Microsoft 365 with a password: Microsoft stops taking SMTP passwords; move to OAuth "
        "2.0 sign-in before the cut-off.",
    )
    BASIC_AUTH_ENDED = (
        "basic-auth-ended",
        _ERROR,
        "Microsoft 365 with a password, after the cut-off: never sent, even with `--force`; "
        "sign in with OAuth 2.0.",
    )
    APP_PASSWORD = (
        "app-password",
        _WARNING,
        "Google takes only an app password (or OAuth 2.0), not the account's password.",
    )
    TRANSACTIONAL_STREAM = (
        "transactional-stream",
        _WARNING,
        "`NEWSLETTER_SMTP_HOST` is Postmark's transactional host: a bulletin belongs on a "
        "Broadcast stream (`smtp-broadcasts.postmarkapp.com`).",
    )
    # How `feedback` signs in to the mailbox (doctor's; `check` leaves them out)
    FEEDBACK_PASSWORD_REFUSED = (
        "feedback-password-refused",
        _WARNING,
        "`feedback` would sign in to a Microsoft 365 mailbox with a password, which it refuses.",
    )
    FEEDBACK_APP_PASSWORD = (
        "feedback-app-password",
        _WARNING,
        "`feedback` would sign in to Google with what does not look like an app password.",
    )
    FEEDBACK_RELAY_ACCOUNT = (
        "feedback-relay-account",
        _WARNING,
        "`feedback` would sign in to the mailbox with the relay's SMTP user name or password.",
    )
    # The From domain's DNS (`check --dns`)
    DNS_UNAVAILABLE = ("dns-unavailable", _ERROR, "DNS did not answer: nothing was checked.")
    NO_MX = (
        "no-mx",
        _ERROR,
        "The From domain has no MX record: replies and bounces cannot reach it.",
    )
    NO_SPF = ("no-spf", _ERROR, "The From domain has no SPF record.")
    MULTIPLE_SPF = (
        "multiple-spf",
        _ERROR,
        "More than one SPF record: receivers fail SPF (permerror).",
    )
    SPF_SYNTAX = ("spf-syntax", _ERROR, "The SPF record cannot be read.")
    SPF_TOO_MANY_LOOKUPS = (
        "spf-too-many-lookups",
        _ERROR,
        "The SPF record needs more DNS look-ups than the limit of 10: SPF fails.",
    )
    SPF_WITHOUT_PROVIDER = (
        "spf-without-provider",
        _ERROR,
        "The SPF record does not include the provider that sends the mail.",
    )
    SPF_PASS_ALL = ("spf-pass-all", _ERROR, "The SPF record lets anyone send (`+all`).")
    SPF_SOFT = (
        "spf-soft",
        _WARNING,
        "The SPF record ends without `~all` or `-all`: other servers are treated as neutral.",
    )
    SPF_PROVIDER_UNKNOWN = (
        "spf-provider-unknown",
        _WARNING,
        "The provider is not known, so whether SPF includes it cannot be told.",
    )
    NO_DKIM = ("no-dkim", _ERROR, "No DKIM key is published for the provider's selectors.")
    DKIM_MALFORMED = ("dkim-malformed", _ERROR, "A DKIM key record cannot be read.")
    DKIM_REVOKED = ("dkim-revoked", _ERROR, "A DKIM key is revoked (empty `p=`).")
    DKIM_WEAK = ("dkim-weak", _ERROR, "A DKIM RSA key is shorter than receivers accept.")
    DKIM_SELECTOR_UNKNOWN = (
        "dkim-selector-unknown",
        _WARNING,
        "The relay's DKIM selectors are not known: set `NEWSLETTER_DKIM_SELECTOR`.",
    )
    NO_DMARC = ("no-dmarc", _ERROR, "The From domain has no DMARC record.")
    MULTIPLE_DMARC = (
        "multiple-dmarc",
        _ERROR,
        "More than one DMARC record: receivers ignore them all.",
    )
    DMARC_MALFORMED = ("dmarc-malformed", _ERROR, "The DMARC record cannot be read.")
    DMARC_NO_RUA = ("dmarc-no-rua", _WARNING, "The DMARC record asks for no reports (`rua=`).")
    ONLY_SPF_ALIGNS = (
        "only-spf-aligns",
        _WARNING,
        "Only SPF aligns with the From domain, not DKIM: forwarding breaks it.",
    )
    NOTHING_ALIGNS = (
        "nothing-aligns",
        _ERROR,
        "Neither SPF nor DKIM aligns with the From domain: DMARC fails.",
    )


# The checks reference page's sections, by the first check of each (in declaration order).
GROUPS = {
    Check.PLACEHOLDER_SETTING: "The settings",
    Check.SUBJECT_LONG: "The issue's front matter and file",
    Check.TEMPLATE_SYNTAX: "What members would see as typed",
    Check.IMAGE_ALT: "Links and pictures in the issue",
    Check.CONTRAST: "How it looks",
    Check.HTML_SIZE: "The rendered message",
    Check.EXAMPLE_LIST: "The members list",
    Check.NO_MEMBERS_LIST: "The set-up, as `newsletter doctor` judges it",
    Check.DNS_UNAVAILABLE: "The From domain's DNS (`newsletter check --dns`)",
}


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
