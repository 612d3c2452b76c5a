"""Settings from the environment and ``.env``, validated once into a typed object.

Precedence: command-line flag > process environment > ``.env`` > default. The password is
kept out of ``repr`` so that it can never reach output, logs or tracebacks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .passwords import KEYRING, STORES, KeyringUnavailable, read_password

PREFIX = "NEWSLETTER_"
SECURITY_MODES = ("starttls", "ssl", "none")
PIPELINING_MODES = ("auto", "off")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
IMAGE_MODES = ("", "hosted", "embed")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
AUTH_MODES = ("password", "oauth2", "none")
OAUTH_PROVIDERS = ("microsoft", "google")
# SMTP hosts whose provider is known: NEWSLETTER_SMTP_AUTH defaults to oauth2 there when no
# password is set (or an app registration is), and NEWSLETTER_OAUTH_PROVIDER is inferred from them.
OAUTH_HOSTS = {
    "office365.com": "microsoft",
    "outlook.com": "microsoft",
    "gmail.com": "google",
    "googlemail.com": "google",
}


def _host_in(host: str, domain: str) -> bool:
    host = host.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


# Safe default pacing (messages per minute) for hosted mailboxes with per-minute limits;
# relays and ESPs default to unlimited. NEWSLETTER_RATE always wins.
PROVIDER_RATES = {
    "office365.com": 30.0,  # Microsoft 365: 30 messages a minute per mailbox
    "outlook.com": 30.0,
    "gmail.com": 20.0,  # Gmail / Workspace: daily caps; spread the load
    "googlemail.com": 20.0,
}


# Recipients a day per account (rolling 24 hours); NEWSLETTER_DAILY_LIMIT always wins.
PROVIDER_DAILY_LIMITS = {
    "office365.com": 10_000,  # Microsoft 365: 10,000 recipients a day
    "outlook.com": 10_000,
    "gmail.com": 2_000,  # Google Workspace: 2,000 a day (consumer Gmail: 500)
    "googlemail.com": 2_000,
}


def provider_rate(host: str) -> float:
    host = host.lower().rstrip(".")
    for domain, rate in PROVIDER_RATES.items():
        if host == domain or host.endswith("." + domain):
            return rate
    return 0.0


def provider_daily_limit(host: str) -> int:
    host = host.lower().rstrip(".")
    for domain, limit in PROVIDER_DAILY_LIMITS.items():
        if host == domain or host.endswith("." + domain):
            return limit
    return 0


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default. Names map to ``NEWSLETTER_<NAME upper-cased>``."""

    # Where things live (relative to the working directory).
    issues_dir: Path = Path("issues")
    templates_dir: Path = Path("templates")
    recipients: Path = Path("recipients.csv")
    suppressed: Path = Path("suppressed.csv")
    state_dir: Path = Path(".newsletter")
    outbox: Path = Path("outbox")

    # Identity and list headers. Empty ``from_`` means: the organisation's name and email.
    from_: str = ""
    reply_to: str = ""
    test_to: str = ""
    list_id: str = ""
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    secret: str = field(default="", repr=False)
    archive_url: str = ""
    # Local pictures: "hosted" (in the web archive) or "embed" (inline parts); empty = hosted
    # when archive_url is set, else embed. See image_mode.
    images: str = ""

    # Link tagging.
    utm: bool = False
    utm_source: str = "newsletter"
    utm_medium: str = "email"
    utm_campaign: str = "{slug}"

    # SMTP.
    smtp_host: str = ""
    smtp_port: int = 0  # 0: by security mode
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_cafile: str = ""
    smtp_allow_insecure: bool = False
    smtp_timeout: float = 30.0
    smtp_max_per_connection: int = 100
    # "auto": MAIL, RCPT and DATA in one write when the server offers PIPELINING (RFC 2920);
    # "off": one command at a time, for a server that offers it but mishandles it.
    smtp_pipelining: str = "auto"

    # Reading the sending mailbox (newsletter feedback). Empty host/username/password:
    # derived from the SMTP settings (see newsletter/imap.py).
    imap_host: str = ""
    imap_port: int = 0  # 0: 993 for ssl, 143 otherwise
    imap_security: str = "ssl"
    imap_username: str = ""
    imap_password: str = field(default="", repr=False)
    imap_folder: str = "INBOX"
    imap_cafile: str = ""
    soft_bounce_limit: int = 3
    # Sign-in (OAuth 2.0). Empty smtp_auth: oauth2 for a Microsoft 365/Google host without a
    # password (or with a token command or a client ID), else password (AUTH only if a
    # username is set).
    smtp_auth: str = ""
    smtp_oauth_token_command: str = field(default="", repr=False)
    oauth_provider: str = ""  # empty: inferred from the SMTP host
    oauth_client_id: str = ""
    oauth_client_secret: str = field(default="", repr=False)
    oauth_tenant: str = "organizations"
    oauth_authority: str = ""  # empty: the provider's public sign-in service
    # Where the SMTP password lives: "env" (.env or the environment; the default) or
    # "keyring" (the operating system's, written by `newsletter setup`; see passwords.py).
    password_store: str = ""

    # The sending domain's checks (doctor, check --dns): a DNS server to ask instead of the
    # system's ("host" or "host:port"), and DKIM selectors a relay chose for the account.
    dns_server: str = ""
    dkim_selector: str = ""

    # Pacing and retries.
    connections: int = 1
    rate: float = 0.0  # messages per minute, 0 = unlimited
    batch_size: int = 0  # 0 = no batches
    batch_pause: float = 0.0
    max_attempts: int = 5
    retry_base_delay: float = 2.0
    daily_limit: int = 0  # messages per rolling 24 hours, all issues; 0 = no cap

    @property
    def image_mode(self) -> str:
        """How emails carry local pictures: "hosted" or "embed" (NEWSLETTER_IMAGES)."""
        return self.images or ("hosted" if self.archive_url else "embed")

    @property
    def port(self) -> int:
        return self.smtp_port or DEFAULT_PORTS[self.smtp_security]

    @property
    def auth_mode(self) -> str:
        """How the SMTP connection authenticates: password, oauth2 or none."""
        if self.smtp_auth:
            return self.smtp_auth
        if self.smtp_oauth_token_command:
            return "oauth2"
        if self.provider_from_host and not self.smtp_password and not self.password_in_keyring:
            return "oauth2"
        if self.provider_from_host and self.oauth_client_id:
            # Moving a Microsoft 365 / Google mailbox off passwords: the old password is often
            # still in .env when the app registration is added. The client ID says which.
            return "oauth2"
        return "password"

    @property
    def password_in_keyring(self) -> bool:
        return self.password_store == "keyring"

    @property
    def dkim_selectors(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.dkim_selector.split(",") if s.strip())

    @property
    def provider_from_host(self) -> str:
        return next((p for d, p in OAUTH_HOSTS.items() if _host_in(self.smtp_host, d)), "")

    @property
    def oauth_provider_name(self) -> str:
        """microsoft or google: the setting, else inferred from the SMTP host ("" if unknown)."""
        return self.oauth_provider or self.provider_from_host

    def with_overrides(self, **changes: Any) -> Settings:
        """Apply command-line flags; ``None`` means "flag not given"."""
        given = {k: v for k, v in changes.items() if v is not None}
        return _validate(replace(self, **given)) if given else self

    def require_smtp(self) -> None:
        """Refuse unsafe or incomplete SMTP settings before any connection is made."""
        if not self.smtp_host:
            raise ConfigError(
                "no SMTP server configured",
                setting="NEWSLETTER_SMTP_HOST",
                hint="set it in .env or the environment; see .env.example",
            )
        if (
            self.smtp_security == "none"
            and self.smtp_host not in LOCAL_HOSTS
            and not self.smtp_allow_insecure
        ):
            raise ConfigError(
                f"refusing an unencrypted connection to {self.smtp_host}",
                setting="NEWSLETTER_SMTP_SECURITY",
                hint="use starttls or ssl, or set NEWSLETTER_SMTP_ALLOW_INSECURE=true",
            )
        if self.auth_mode == "oauth2":
            self._require_oauth2()
            return
        if self.auth_mode == "password" and self.smtp_username and not self.smtp_password:
            if self.password_in_keyring:
                raise ConfigError(
                    f"no password for {self.smtp_username} at {self.smtp_host} in the "
                    "keyring (NEWSLETTER_PASSWORD_STORE=keyring), or the keyring is locked",
                    setting="NEWSLETTER_PASSWORD_STORE",
                    hint="unlock the keyring, or store the password again: newsletter setup",
                )
            raise ConfigError(
                "a username is set but no password",
                setting="NEWSLETTER_SMTP_PASSWORD",
                hint="set it in .env or the environment",
            )
        if self.smtp_security == "none" and self.smtp_username and self.auth_mode == "password":
            raise ConfigError(
                "AUTH is never sent over an unencrypted connection",
                setting="NEWSLETTER_SMTP_SECURITY",
                hint="use starttls or ssl, or remove NEWSLETTER_SMTP_USERNAME",
            )

    def _require_oauth2(self) -> None:
        if self.smtp_security == "none":
            # A bearer token is as good as a password: never over a plain connection.
            raise ConfigError(
                "OAuth 2.0 tokens are never sent over an unencrypted connection",
                setting="NEWSLETTER_SMTP_SECURITY",
                hint="use starttls or ssl",
            )
        if self.smtp_oauth_token_command:
            if not self.smtp_username:
                raise ConfigError(
                    "the token command needs the mailbox to sign in as",
                    setting="NEWSLETTER_SMTP_USERNAME",
                    hint="set it to the sending mailbox's address",
                )
            return
        self.require_oauth_client()

    def require_oauth_client(self) -> None:
        """Refuse to start a sign-in without a provider and an app registration."""
        if not self.oauth_provider_name:
            raise ConfigError(
                f"cannot tell the sign-in provider from the host {self.smtp_host or '(none)'}",
                setting="NEWSLETTER_OAUTH_PROVIDER",
                hint="set it to microsoft or google",
            )
        if not self.oauth_client_id:
            raise ConfigError(
                "no app registration for signing in",
                setting="NEWSLETTER_OAUTH_CLIENT_ID",
                hint="ask your IT person for the application (client) ID; see the README's "
                "'Signing in with Microsoft 365 or Google'",
            )
        if self.oauth_provider_name == "google" and not self.oauth_client_secret:
            # Google's token endpoint refuses a Desktop app client without its secret; say so
            # before the chair signs in in the browser for nothing.
            raise ConfigError(
                "Google desktop app clients need their client secret to sign in",
                setting="NEWSLETTER_OAUTH_CLIENT_SECRET",
                hint="ask your IT person for the OAuth client's secret (Google Cloud console, "
                "Credentials); see the README's 'Signing in with Microsoft 365 or Google'",
            )


def env_name(field_name: str) -> str:
    return PREFIX + field_name.rstrip("_").upper()


# Settings that name one of a few choices (validated in _validate): read case-insensitively.
_ENUMERATED = (
    "smtp_security",
    "smtp_auth",
    "smtp_pipelining",
    "oauth_provider",
    "imap_security",
    "images",
    "password_store",
)
_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n", ""}


def _convert(name: str, raw: str, kind: Any) -> Any:
    value = raw.strip()
    try:
        if kind in (Path, "Path"):
            return Path(value)
        if kind in (bool, "bool"):
            low = value.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if kind in (int, "int"):
            # "10,000" as the README and provider pages write limits: accept the groups.
            grouped = _THOUSANDS.fullmatch(value)
            return int(re.sub(r"[, _]", "", value) if grouped else value)
        if kind in (float, "float"):
            return float(value)
    except ValueError:
        raise ConfigError(
            f"invalid value {value!r}", setting=env_name(name), hint=_WRITE_AS.get(str(kind))
        ) from None
    return value


_THOUSANDS = re.compile(r"\d{1,3}(?:([, _])\d{3})(?:\1\d{3})*")
_WRITE_AS = {
    "int": "write a whole number, e.g. 500",
    str(int): "write a whole number, e.g. 500",
    "float": "write a number, e.g. 30 or 0.5",
    str(float): "write a number, e.g. 30 or 0.5",
    "bool": "write true or false",
    str(bool): "write true or false",
}


def _validate(settings: Settings) -> Settings:
    if settings.smtp_security not in SECURITY_MODES:
        raise ConfigError(
            f"must be one of {', '.join(SECURITY_MODES)}, not {settings.smtp_security!r}",
            setting="NEWSLETTER_SMTP_SECURITY",
        )
    if settings.smtp_auth not in ("", *AUTH_MODES):
        raise ConfigError(
            f"must be one of {', '.join(AUTH_MODES)}, not {settings.smtp_auth!r}",
            setting="NEWSLETTER_SMTP_AUTH",
        )
    if settings.smtp_pipelining not in PIPELINING_MODES:
        raise ConfigError(
            f"must be auto or off, not {settings.smtp_pipelining!r}",
            setting="NEWSLETTER_SMTP_PIPELINING",
        )
    if settings.oauth_provider not in ("", *OAUTH_PROVIDERS):
        raise ConfigError(
            f"must be one of {', '.join(OAUTH_PROVIDERS)}, not {settings.oauth_provider!r}",
            setting="NEWSLETTER_OAUTH_PROVIDER",
        )
    if settings.oauth_authority and not settings.oauth_authority.startswith("https://"):
        raise ConfigError("must be an https:// address", setting="NEWSLETTER_OAUTH_AUTHORITY")
    if not 0 <= settings.smtp_port <= 65535:
        raise ConfigError("must be a port number from 1 to 65535", setting="NEWSLETTER_SMTP_PORT")
    if settings.imap_security not in SECURITY_MODES:
        raise ConfigError(
            f"must be one of {', '.join(SECURITY_MODES)}, not {settings.imap_security!r}",
            setting="NEWSLETTER_IMAP_SECURITY",
        )
    if not 0 <= settings.imap_port <= 65535:
        raise ConfigError("must be a port number from 1 to 65535", setting="NEWSLETTER_IMAP_PORT")
    if settings.imap_cafile and not Path(settings.imap_cafile).is_file():
        raise ConfigError(
            f"CA file {settings.imap_cafile} does not exist", setting="NEWSLETTER_IMAP_CAFILE"
        )
    for name in ("connections", "smtp_max_per_connection", "max_attempts", "soft_bounce_limit"):
        if getattr(settings, name) < 1:
            raise ConfigError("must be at least 1", setting=env_name(name))
    for name in (
        "rate",
        "batch_size",
        "batch_pause",
        "smtp_timeout",
        "retry_base_delay",
        "daily_limit",
    ):
        if getattr(settings, name) < 0:
            raise ConfigError("must not be negative", setting=env_name(name))
    if settings.smtp_timeout == 0:
        # 0 meant "no timeout": a server that stops answering would hang the send for ever.
        raise ConfigError(
            "must be more than 0 seconds",
            setting="NEWSLETTER_SMTP_TIMEOUT",
            hint="how long to wait for the server's reply; 0 would wait for ever (default 30)",
        )
    if settings.password_store not in ("", *STORES):
        raise ConfigError(
            f"must be env or keyring, not {settings.password_store!r}",
            setting="NEWSLETTER_PASSWORD_STORE",
        )
    if settings.images not in IMAGE_MODES:
        raise ConfigError(
            f"must be hosted or embed, not {settings.images!r}", setting="NEWSLETTER_IMAGES"
        )
    if settings.images == "hosted" and not settings.archive_url:
        raise ConfigError(
            "hosted images need the web archive's address",
            setting="NEWSLETTER_IMAGES",
            hint="set NEWSLETTER_ARCHIVE_URL, or NEWSLETTER_IMAGES=embed",
        )
    if settings.smtp_cafile and not Path(settings.smtp_cafile).is_file():
        raise ConfigError(
            f"CA file {settings.smtp_cafile} does not exist", setting="NEWSLETTER_SMTP_CAFILE"
        )
    return settings


def load_settings(
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
    *,
    keyring_read: Callable[[str, str], str] = read_password,
) -> Settings:
    """Read settings from ``environ`` (default: ``os.environ``) over the ``.env`` file.

    With NEWSLETTER_PASSWORD_STORE=keyring and no password set, the SMTP password is read
    from the keyring here (``keyring_read(host, username)``), the one place the send and
    ``feedback`` get it from. A keyring that cannot be read leaves it empty: commands that
    need no password still work, and those that do say so (``require_smtp``)."""
    values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        from dotenv import dotenv_values  # imported here: only needed when a .env exists

        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    kwargs: dict[str, Any] = {}
    for f in fields(Settings):
        raw = values.get(env_name(f.name))
        # An empty value means "not set" (as in .env.example), never an invalid number.
        if raw is not None and raw.strip():
            kwargs[f.name] = _convert(f.name, raw, f.type)
    if "rate" not in kwargs and kwargs.get("smtp_host"):
        kwargs["rate"] = provider_rate(kwargs["smtp_host"])
    if "daily_limit" not in kwargs and kwargs.get("smtp_host"):
        kwargs["daily_limit"] = provider_daily_limit(kwargs["smtp_host"])
    for name in _ENUMERATED:  # "None", "STARTTLS", "Microsoft": the choice, in any case
        if name in kwargs:
            kwargs[name] = kwargs[name].lower()
    if kwargs.get("password_store") == KEYRING and not kwargs.get("smtp_password"):
        try:
            kwargs["smtp_password"] = keyring_read(
                kwargs.get("smtp_host", ""), kwargs.get("smtp_username", "")
            )
        except KeyringUnavailable:
            pass
    return _validate(Settings(**kwargs))


def require_project(
    settings: Settings,
    dotenv_path: str | Path = ".env",
    *,
    also: tuple[Path, ...] = (),
    creates: Path | None = None,
) -> None:
    """Refuse to run outside a newsletter project: none of the issues folder, the members
    list or a ``.env`` where the settings point (run from ``issues/``, or any other folder,
    every command would read nothing and ``unsubscribe`` would start a suppression list
    there that no send ever reads). ``also``: further files that make a project for this
    command (``new`` needs only the templates). ``creates``: a file the command would
    create; it is refused without a members list or an issues folder, even with a ``.env``
    (the suppression list, which belongs beside the members it protects)."""
    issues, members = Path(settings.issues_dir), Path(settings.recipients)
    where = Path.cwd()
    found = issues.is_dir() or members.is_file()
    # The organisation's details mark a project too (an issue file given by its path, with
    # the templates where NEWSLETTER_TEMPLATES_DIR points).
    markers = (*also, Path(settings.templates_dir) / "organisation.toml")
    if not (found or Path(dotenv_path).is_file() or any(Path(p).is_file() for p in markers)):
        raise ConfigError(
            f"this folder is not a newsletter project (no {issues.as_posix()}/, {members} or "
            f"{Path(dotenv_path)} in {where}): run newsletter from the project folder"
        )
    if creates is not None and not found and not Path(creates).exists():
        raise ConfigError(
            f"this folder is not a newsletter project (no {issues.as_posix()}/ or "
            f"{members} in {where}): run newsletter from the project folder",
            hint=f"{creates} was not created",
        )
