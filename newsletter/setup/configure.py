"""``newsletter setup``: the settings a send needs, asked for once and written to ``.env``.

Every answer comes from a flag, else the value ``.env`` already holds, else a default found
for the chair (the provider from the domain's MX records, the From address for the test
copy and unsubscribe requests, a fresh random secret); interactively each question shows
that default. Only what changes is written; an existing value is replaced only once the
chair said yes (``--yes``). Passwords go to the keyring where there is one. Nothing here
prints a secret: the terminal side gets :class:`Change` objects that know which are secret.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Protocol

from ..common.docs import DocPage
from ..common.errors import UsageError
from ..common.passwords import (
    ENV,
    KEYRING,
    KeyringUnavailable,
    keyring_available,
    store_password,
)
from ..domain.dns import DnsResolver, DnsUnavailable, Lookup
from ..domain.offline import SECRET_MIN, placeholder
from ..mail.providers import (
    POSTMARK_STREAM_CREDENTIALS,
    RELAYS,
    MessageStream,
    Provider,
    info,
    message_stream,
    provider_from_imap_host,
    provider_from_mx,
    provider_from_smtp_host,
)
from .envfile import read_env, write_env

SECRET_SETTINGS = {
    "NEWSLETTER_SECRET",
    "NEWSLETTER_SMTP_PASSWORD",
    "NEWSLETTER_IMAP_PASSWORD",
    "NEWSLETTER_OAUTH_CLIENT_SECRET",
}
SECURITY = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class SetupOptions:
    """Every answer as a flag (None: not given, ask or keep)."""

    from_address: str | None = None
    name: str | None = None
    provider: str | None = None  # microsoft365 | google | ses | postmark | mailgun | other
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # from --password-stdin
    password_store: str | None = None  # env | keyring
    oauth_client_id: str | None = None
    oauth_tenant: str | None = None
    oauth_client_secret: str | None = field(default=None, repr=False)  # --…-secret-stdin
    imap_host: str | None = None
    imap_username: str | None = None
    test_to: str | None = None
    unsubscribe_mailto: str | None = None
    recipients: str | None = None
    dns_server: str | None = None
    yes: bool = False


class Asker(Protocol):
    """The terminal (or nothing, when scripted)."""

    interactive: bool

    def ask(self, question: str, default: str, *, secret: bool = False) -> str: ...

    def choose(self, question: str, choices: list[str], default: str) -> str: ...

    def confirm(self, question: str, default: bool) -> bool: ...

    def say(self, text: str) -> None: ...


@dataclass(frozen=True)
class Change:
    name: str
    old: str = field(repr=False)
    new: str = field(repr=False)

    @property
    def secret(self) -> bool:
        return self.name in SECRET_SETTINGS

    @property
    def replaces(self) -> bool:
        """An existing value the chair set is replaced (not merely added or cleared)."""
        return bool(self.old) and self.old != self.new

    def shown(self) -> str:
        """The line the terminal prints: secrets never, only that they change."""
        if self.secret:
            what = "removed from .env" if not self.new else "a new value (not shown)"
            return f"{self.name}: {what}"
        if self.replaces:
            return f"{self.name}: {self.old} -> {self.new}"
        return f"{self.name}={self.new}"


@dataclass(frozen=True)
class MxLookup:
    """What the From domain's MX records said: who receives its mail, or why nobody knows."""

    provider: Provider | None  # None: the look-up failed (``failure`` says why)
    failure: str = ""


@dataclass
class SetupResult:
    env_path: Path
    changes: list[Change]
    written: bool
    provider: Provider
    mx_provider: Provider | None  # None: the MX records could not be read
    password_where: str = ""  # "keyring", ".env" or "" when no password was given
    next_steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _current_address(current: dict[str, str]) -> tuple[str, str]:
    name, address = parseaddr(current.get("NEWSLETTER_FROM", ""))
    return name, address


class _Answers:
    """One question each: the flag, else .env's value, else the default (asked when
    there is a terminal)."""

    def __init__(self, asker: Asker, current: dict[str, str]) -> None:
        self.asker = asker
        self.current = current

    def get(self, flag: str | None, setting: str, question: str, default: str) -> str:
        if flag is not None:
            return flag.strip()
        value = self.current.get(setting, "") or default
        if self.asker.interactive:
            return self.asker.ask(question, value).strip()
        return value


def run_setup(
    options: SetupOptions,
    asker: Asker,
    *,
    env_path: Path = Path(".env"),
    organisation: tuple[str, str] = ("", ""),
    lookup: Lookup | None = None,
    environ_dns_server: str = "",
) -> SetupResult:
    """Ask, work out the settings, show the changes, write them (``organisation``: the
    name and email in organisation.toml, the defaults for From)."""
    current = read_env(env_path)
    answers = _Answers(asker, current)
    old_name, old_address = _current_address(current)
    default_address = old_address or organisation[1]
    if options.from_address is None and not asker.interactive and not default_address:
        raise UsageError(
            "--from ADDRESS is needed: the address the bulletin is sent from",
            hint="e.g. newsletter setup --from news@your-cluster.org --yes",
        )
    address = answers.get(
        options.from_address, "", "Send the bulletin from which address?", default_address
    )
    address = parseaddr(address)[1] or address
    if "@" not in address:
        raise UsageError(f"{address!r} is not an email address", hint="e.g. news@your-cluster.org")
    name = answers.get(
        options.name, "", "Name shown as the sender", old_name or organisation[0] or ""
    )
    domain = address.rpartition("@")[2].lower()
    desired: dict[str, str] = {"NEWSLETTER_FROM": formataddr((name, address)) if name else address}
    notes: list[str] = []

    dns_server = (
        options.dns_server or current.get("NEWSLETTER_DNS_SERVER", "") or environ_dns_server
    )
    if options.dns_server:
        desired["NEWSLETTER_DNS_SERVER"] = options.dns_server
    mx = _mx_lookup(lookup, dns_server, domain, asker, notes)
    mx_provider = mx.provider
    provider = _choose_provider(options, asker, current, mx, domain, notes)
    carrier = info(provider)
    keep_smtp = options.provider is None and bool(current.get("NEWSLETTER_SMTP_HOST"))
    if provider in (Provider.MICROSOFT365, Provider.GOOGLE):
        host = options.smtp_host or (
            current["NEWSLETTER_SMTP_HOST"] if keep_smtp else carrier.smtp_host
        )
        port = str(
            options.smtp_port
            or (current.get("NEWSLETTER_SMTP_PORT") if keep_smtp else "")
            or carrier.smtp_port
        )
        security = (
            options.smtp_security
            or (current.get("NEWSLETTER_SMTP_SECURITY") if keep_smtp else "")
            or carrier.smtp_security
        )
    else:
        host = answers.get(
            options.smtp_host,
            "NEWSLETTER_SMTP_HOST" if keep_smtp else "",
            f"SMTP server of {carrier.label}",
            carrier.smtp_host,
        )
        port = answers.get(
            None if options.smtp_port is None else str(options.smtp_port),
            "NEWSLETTER_SMTP_PORT" if keep_smtp else "",
            "Port (587 for starttls, 465 for ssl)",
            str(carrier.smtp_port),
        )
        security = (
            options.smtp_security
            or (current.get("NEWSLETTER_SMTP_SECURITY", "") if keep_smtp else "")
            or (
                asker.choose("Security", list(SECURITY), carrier.smtp_security)
                if asker.interactive
                else carrier.smtp_security
            )
        )
    if not host:
        raise UsageError(
            "--smtp-host is needed: the SMTP server to send through",
            hint="ask whoever runs your mail, e.g. --smtp-host smtp.your-provider.net",
        )
    if security not in SECURITY:
        raise UsageError(f"--smtp-security must be one of {', '.join(SECURITY)}, not {security!r}")
    desired |= {
        "NEWSLETTER_SMTP_HOST": host,
        "NEWSLETTER_SMTP_PORT": str(port),
        "NEWSLETTER_SMTP_SECURITY": security,
    }
    password_where, password = "", None
    sending = provider_from_smtp_host(host) if provider == Provider.OTHER else provider
    kept_auth = current.get("NEWSLETTER_SMTP_AUTH", "") if keep_smtp else ""
    if sending in (Provider.MICROSOFT365, Provider.GOOGLE) and kept_auth in ("", "oauth2"):
        desired |= _oauth_answers(options, answers, sending, domain)
    else:
        password_where, password = _password_answers(
            options, asker, answers, current, desired, keep_smtp
        )
    oauth = desired.get("NEWSLETTER_SMTP_AUTH") == "oauth2"
    if options.oauth_client_secret is not None and "NEWSLETTER_OAUTH_CLIENT_SECRET" not in desired:
        raise UsageError(
            "--oauth-client-secret-stdin is for Google's OAuth sign-in only (Microsoft 365 and "
            "password sign-ins take no client secret): nothing was written",
            hint="leave it out, or name Google: --provider google",
        )
    imap = _imap_host(options, answers, current, mx_provider, sending, oauth, notes)
    if options.imap_username is not None and not imap:
        raise UsageError(
            "--imap-username needs an IMAP server: nothing was written",
            hint="add --imap-host HOST (the sending mailbox's, for newsletter feedback)",
        )
    if imap:
        desired["NEWSLETTER_IMAP_HOST"] = imap
        if not oauth and _mailbox_is_not_smtp_account(mx_provider, sending):
            # The relay's SMTP username (an SES access key, a Postmark token) is no
            # mailbox: feedback signs in as the mailbox bounces reach, the From address.
            desired["NEWSLETTER_IMAP_USERNAME"] = answers.get(
                options.imap_username,
                "NEWSLETTER_IMAP_USERNAME",
                "IMAP username of that mailbox (its address)",
                address,
            )
            if not current.get("NEWSLETTER_IMAP_PASSWORD"):
                mailbox = provider_from_imap_host(imap)
                what = "an app password of" if mailbox is Provider.GOOGLE else "the password of"
                notes.append(
                    f"for newsletter feedback, set NEWSLETTER_IMAP_PASSWORD in .env to {what} "
                    f"{desired['NEWSLETTER_IMAP_USERNAME']} (not the relay's SMTP password)"
                )
        elif options.imap_username is not None:
            # Not asked (the SMTP account's mailbox is the default), but named by the chair.
            desired["NEWSLETTER_IMAP_USERNAME"] = options.imap_username.strip()
    desired["NEWSLETTER_TEST_TO"] = answers.get(
        options.test_to, "NEWSLETTER_TEST_TO", "Send test copies to", address
    )
    desired["NEWSLETTER_UNSUBSCRIBE_MAILTO"] = answers.get(
        options.unsubscribe_mailto,
        "NEWSLETTER_UNSUBSCRIBE_MAILTO",
        "Members unsubscribe by writing to",
        address,
    )
    secret = current.get("NEWSLETTER_SECRET", "")
    if len(secret) < SECRET_MIN or secret.lower().startswith(("change-me", "changeme")):
        # Kept once good: unsubscribe links already sent are signed with it.
        desired["NEWSLETTER_SECRET"] = secrets.token_urlsafe(32)
    members = answers.get(
        options.recipients,
        "NEWSLETTER_RECIPIENTS",
        "Members list (the CSV exported from your members' records)",
        "recipients.csv",
    )
    desired["NEWSLETTER_RECIPIENTS"] = members
    if not Path(members).is_file():
        notes.append(f"{members} is not there yet: export the members' list to it before a send")
    for setting in ("NEWSLETTER_TEST_TO", "NEWSLETTER_UNSUBSCRIBE_MAILTO"):
        if placeholder(desired[setting]):
            notes.append(f"{setting} {desired[setting]} is a placeholder address")
    changes = [
        Change(name, current.get(name, ""), value)
        for name, value in desired.items()
        if current.get(name, "") != value
    ]
    result = SetupResult(env_path, changes, False, provider, mx_provider, password_where)
    result.notes = notes
    result.next_steps = _next_steps(desired)
    if not changes:
        return result
    for change in changes:
        asker.say(f"  {change.shown()}")
    replacing = [c for c in changes if c.replaces]
    if options.yes:
        agreed = True
    elif asker.interactive:
        agreed = asker.confirm(
            f"Write {'these' if len(changes) > 1 else 'this'} to {env_path}?", True
        )
    elif replacing:
        raise UsageError(
            f"{env_path} already sets {', '.join(c.name for c in replacing)}: nothing was written",
            hint="add --yes to replace them",
        )
    else:
        agreed = True
    if agreed:
        if password and password_where == "keyring":
            _store_password(host, desired["NEWSLETTER_SMTP_USERNAME"], password)
        write_env(env_path, {c.name: c.new for c in changes})
        result.written = True
    return result


def _mx_lookup(
    lookup: Lookup | None, dns_server: str, domain: str, asker: Asker, notes: list[str]
) -> MxLookup:
    try:
        resolver = lookup or DnsResolver(dns_server)
        hosts = resolver.mx(domain)
    except DnsUnavailable as error:
        # Said by _choose_provider: before its question, or as a note when none is asked.
        return MxLookup(None, str(error))
    provider = provider_from_mx(hosts)
    if hosts:
        label = info(provider).label if provider != Provider.OTHER else "its own mail servers"
        asker.say(f"Mail for {domain} is handled by {label} ({hosts[0]}).")
    else:
        notes.append(f"{domain} has no MX records: replies and bounces cannot reach it")
    return MxLookup(provider)


def _choose_provider(
    options: SetupOptions,
    asker: Asker,
    current: dict[str, str],
    mx: MxLookup,
    domain: str,
    notes: list[str],
) -> Provider:
    failed = mx.provider is None
    unknown = f"could not look up where {domain}'s mail goes ({mx.failure})"
    if options.provider is not None:
        try:
            chosen = Provider(options.provider.lower())
        except ValueError:
            names = ", ".join(p.value for p in Provider)
            raise UsageError(
                f"--provider must be one of {names}, not {options.provider!r}"
            ) from None
    elif current.get("NEWSLETTER_SMTP_HOST"):
        chosen = provider_from_smtp_host(current["NEWSLETTER_SMTP_HOST"])
    elif mx.provider in (Provider.MICROSOFT365, Provider.GOOGLE):
        return mx.provider
    elif failed and asker.interactive:
        # Offline, a Microsoft 365 or Google domain looks like any other: say so first and
        # offer them too, with no default, rather than steer the chair to a relay.
        asker.say(f"{unknown[0].upper()}{unknown[1:]}: tell me.")
        asker.say("Which service sends your mail?")
        for p in Provider:
            asker.say(f"  {p.value}: {info(p).label}")
        return Provider(asker.choose("Service", [p.value for p in Provider], ""))
    elif asker.interactive:
        asker.say(
            "Which service sends your mail? (your domain's mail is not Microsoft 365 or Google)"
        )
        for p in RELAYS:
            asker.say(f"  {p.value}: {info(p).label}")
        return Provider(asker.choose("Service", [p.value for p in RELAYS], Provider.OTHER.value))
    elif failed and options.smtp_host is None:
        names = "|".join(p.value for p in Provider if p is not Provider.OTHER)
        raise UsageError(
            f"{unknown}: nothing was written",
            hint=f"name who sends your mail: --provider {names}, or --smtp-host HOST "
            "for another server",
        )
    else:
        chosen = Provider.OTHER
    if failed:
        # No question said it: the MX records also choose the mailbox feedback reads.
        notes.append(f"could not read the MX records of {domain}: {mx.failure}")
    return chosen


def _oauth_answers(
    options: SetupOptions, answers: _Answers, provider: Provider, domain: str
) -> dict[str, str]:
    values = {
        "NEWSLETTER_SMTP_AUTH": "oauth2",
        "NEWSLETTER_OAUTH_PROVIDER": info(provider).oauth_provider,
    }
    client = answers.get(
        options.oauth_client_id,
        "NEWSLETTER_OAUTH_CLIENT_ID",
        "Application (client) ID from your IT person (Enter: add it later)",
        "",
    )
    if client:
        values["NEWSLETTER_OAUTH_CLIENT_ID"] = client
    if provider == Provider.MICROSOFT365:
        values["NEWSLETTER_OAUTH_TENANT"] = answers.get(
            options.oauth_tenant,
            "NEWSLETTER_OAUTH_TENANT",
            "Directory (tenant) ID or domain",
            domain,
        )
    else:
        secret = options.oauth_client_secret
        if (
            secret is None
            and answers.asker.interactive
            and not answers.current.get("NEWSLETTER_OAUTH_CLIENT_SECRET")
        ):
            secret = answers.asker.ask("OAuth client secret (Enter: add it later)", "", secret=True)
        if secret:
            values["NEWSLETTER_OAUTH_CLIENT_SECRET"] = secret
    return values


def _password_answers(
    options: SetupOptions,
    asker: Asker,
    answers: _Answers,
    current: dict[str, str],
    desired: dict[str, str],
    keep_smtp: bool,
) -> tuple[str, str | None]:
    """Username and password; (where the password goes, the password) — ("", None) when
    none was given (the one stored before stays where it is). On a re-run that keeps the
    SMTP server, no username is made up: the set-up may sign in without one."""
    address = "" if keep_smtp else parseaddr(desired["NEWSLETTER_FROM"])[1]
    username = answers.get(options.username, "NEWSLETTER_SMTP_USERNAME", "SMTP username", address)
    desired["NEWSLETTER_SMTP_USERNAME"] = username
    desired["NEWSLETTER_SMTP_AUTH"] = "password"
    password = options.password
    if password is None and asker.interactive:
        stored = current.get("NEWSLETTER_PASSWORD_STORE") or current.get("NEWSLETTER_SMTP_PASSWORD")
        kept = " (Enter keeps the stored one)" if stored else ""
        password = asker.ask(f"SMTP password{kept}", "", secret=True) or None
    if password is None:
        return "", None
    store = options.password_store or (KEYRING if keyring_available() else ENV)
    if store not in (ENV, KEYRING):
        raise UsageError(f"--password-store must be env or keyring, not {store!r}")
    desired["NEWSLETTER_PASSWORD_STORE"] = store
    if store == KEYRING:
        if current.get("NEWSLETTER_SMTP_PASSWORD"):
            desired["NEWSLETTER_SMTP_PASSWORD"] = ""  # moved to the keyring: not kept twice
        return "keyring", password
    if "${" in password:
        # python-dotenv expands ${NAME} in every .env value, quoted or not: the password
        # read back would not be the one given.
        raise UsageError(
            "the password contains '${', which .env would expand: nothing was written",
            hint="keep it in the keyring (--password-store keyring), or set "
            "NEWSLETTER_SMTP_PASSWORD in the environment",
        )
    desired["NEWSLETTER_SMTP_PASSWORD"] = password
    return ".env", password


def _store_password(host: str, username: str, password: str) -> None:
    try:
        store_password(host, username, password)
    except KeyringUnavailable as error:
        raise UsageError(
            f"the keyring refused the password ({error}): nothing was written",
            hint="unlock it, or keep the password in .env: --password-store env",
        ) from None


def _mailbox_is_not_smtp_account(mx: Provider | None, sending: Provider) -> bool:
    """The SMTP sign-in is not the mailbox's: a known relay (its own credentials), or
    another server than the one the MX records name."""
    if sending in (Provider.AMAZON_SES, Provider.POSTMARK, Provider.MAILGUN):
        return True
    return mx in (Provider.MICROSOFT365, Provider.GOOGLE) and mx != sending


def _imap_host(
    options: SetupOptions,
    answers: _Answers,
    current: dict[str, str],
    mx: Provider | None,
    sending: Provider,
    oauth: bool,
    notes: list[str],
) -> str:
    # The mailbox bounces and replies reach is the From address's: its provider is the one
    # the MX records name (a relay such as Amazon SES has no mailbox to read).
    mailbox = mx if mx in (Provider.MICROSOFT365, Provider.GOOGLE) else sending
    default = info(mailbox).imap_host if mailbox in (Provider.MICROSOFT365, Provider.GOOGLE) else ""
    if mailbox is Provider.MICROSOFT365 and not oauth:
        # Microsoft 365 takes no passwords over IMAP, and OAuth for IMAP comes only with
        # the SMTP sign-in: filled in, feedback could only fail to sign in.
        default = ""
        if not options.imap_host and not current.get("NEWSLETTER_IMAP_HOST"):
            notes.append(
                "newsletter feedback cannot read the Microsoft 365 mailbox when the SMTP "
                "sign-in is a password (Microsoft 365 takes none over IMAP): no IMAP server "
                "is set, so feedback acts only on the addresses refused during the send"
            )
    return answers.get(
        options.imap_host,
        "NEWSLETTER_IMAP_HOST",
        "IMAP server of the sending mailbox, for newsletter feedback (Enter: none)",
        default,
    )


def _next_steps(desired: dict[str, str]) -> list[str]:
    steps = []
    stream = message_stream(desired.get("NEWSLETTER_SMTP_HOST", ""))
    if stream is MessageStream.BROADCAST:
        steps.append(f"Postmark: {POSTMARK_STREAM_CREDENTIALS}")
    elif stream is MessageStream.TRANSACTIONAL:
        # Given by hand (--smtp-host): say so now rather than only in doctor's report.
        steps.append(
            f"Postmark: {desired['NEWSLETTER_SMTP_HOST']} is the transactional stream; a "
            f"bulletin belongs on a Broadcast stream: newsletter setup --smtp-host "
            f"{info(Provider.POSTMARK).smtp_host}, with {POSTMARK_STREAM_CREDENTIALS}"
        )
    if desired.get("NEWSLETTER_SMTP_AUTH") == "oauth2":
        if "NEWSLETTER_OAUTH_CLIENT_ID" not in desired:
            steps.append(
                f"ask your IT person to register the app (see {DocPage.IT}), then "
                "newsletter setup --oauth-client-id ID"
            )
        steps.append("newsletter login")
    steps.append("newsletter doctor")
    return steps
