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

from .docs import DocPage
from .errors import ConfigError
from .limits import provider_daily_limit, provider_rate
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


def _setting(default: Any, help: str, *, secret: bool = False, example: str | None = None) -> Any:
    """A setting's field: its default and what it means, in words a chair reads.

    ``help`` is the one description of the setting: the settings reference page
    (``python -m newsletter.cli.reference``) and .env.example's comments are made from it.
    ``example``: the value .env.example shows, when not the default (a placeholder `check`
    refuses). A ``secret`` is kept out of ``repr``, so it never reaches output or logs."""
    metadata = {"help": help} if example is None else {"help": help, "example": example}
    return field(default=default, repr=not secret, metadata=metadata)


# The settings' sections, by the first setting of each (the fields below are in this order).
SECTIONS = {
    "from_": "Who the bulletin is from",
    "unsubscribe_url": "Unsubscribe (at least one is required for a real send)",
    "issues_dir": "Files and folders (relative to where you run newsletter)",
    "smtp_host": "SMTP",
    "imap_host": "Reading the sending mailbox (newsletter feedback)",
    "smtp_auth": "Signing in with OAuth 2.0 (Microsoft 365, Google)",
    "dns_server": "The sending domain's checks (newsletter doctor, newsletter check --dns)",
    "connections": "Pacing and retries",
    "utm": "Links and pictures",
}


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default and meaning. Names map to ``NEWSLETTER_<NAME
    upper-cased>`` (``from_``: NEWSLETTER_FROM); :data:`SECTIONS` groups them."""

    from_: str = _setting(
        "",
        "The sender, as 'Name <address>'. Default: the name and email in "
        "templates/organisation.toml.",
        example='"Cluster News <news@example.org>"',
    )
    reply_to: str = _setting("", "Optional Reply-To header.")
    test_to: str = _setting(
        "",
        "Where `newsletter send SLUG --test` sends its copy; several addresses: separate "
        "with commas (or semicolons).",
        example="chair@example.org",
    )
    list_id: str = _setting(
        "", 'List-Id header; default: "<bulletin> <bulletin-name.your-domain>".'
    )

    unsubscribe_url: str = _setting(
        "",
        "The unsubscribe page. {token} carries the member's address and an HMAC of it under "
        "NEWSLETTER_SECRET: your page gets the address back with "
        "newsletter.members.unsubscribe.verify(token, secret), and forged links fail. (The "
        "older form ?email={email}&token={token} still works, but `check` warns: the address "
        "in clear is scored by spam filters and lands in web logs.) An https URL also adds "
        "the RFC 8058 one-click header that Gmail and Yahoo expect.",
        example="https://example.org/unsubscribe?token={token}",
    )
    unsubscribe_mailto: str = _setting(
        "",
        "The address members write to to unsubscribe (a mailto: List-Unsubscribe).",
        example="unsubscribe@example.org",
    )
    secret: str = _setting(
        "",
        "The key that signs unsubscribe links: a long random string (newsletter setup makes "
        "one); never share it.",
        secret=True,
        example="change-me-to-a-long-random-string",
    )

    issues_dir: Path = _setting(Path("issues"), "The folder of issue files (SLUG.md).")
    templates_dir: Path = _setting(Path("templates"), "The email templates and organisation.toml.")
    recipients: Path = _setting(Path("recipients.csv"), "The members list (CSV).")
    suppressed: Path = _setting(
        Path("suppressed.csv"), "The suppression list: addresses never mailed again."
    )
    state_dir: Path = _setting(Path(".newsletter"), "The send journal, sign-in tokens and locks.")
    outbox: Path = _setting(Path("outbox"), "Where `send --dry-run` writes messages.")

    smtp_host: str = _setting(
        "", "The SMTP server, e.g. smtp.office365.com.", example="smtp.example.org"
    )
    smtp_port: int = _setting(0, "Default by security mode: starttls 587, ssl 465, none 25.")
    smtp_security: str = _setting(
        "starttls",
        "starttls (default) | ssl | none (any case). Certificates are always verified.",
    )
    smtp_username: str = _setting("", "The SMTP account, usually the sending mailbox.")
    smtp_password: str = _setting("", "The SMTP password (password sign-in).", secret=True)
    password_store: str = _setting(
        "",
        "Where the password lives: env (NEWSLETTER_SMTP_PASSWORD, here or in the environment; "
        "the default) or keyring (the operating system's keyring, where `newsletter setup` "
        "stores it).",
    )
    smtp_cafile: str = _setting("", "Trust a private CA (PEM file) in addition to the system's.")
    smtp_allow_insecure: bool = _setting(
        False, "`none` is allowed without this only for 127.0.0.1/localhost."
    )
    smtp_timeout: float = _setting(
        30.0,
        "Seconds to wait for each reply of the server, or for it to take the next block of "
        "a message (more than 0; not a limit on a whole upload), and for the OAuth sign-in "
        "service; no reply after a whole message leaves that member unknown, three "
        "connection failures in a row stop the run.",
    )
    smtp_max_per_connection: int = _setting(
        100, "Reconnect after this many messages on one connection."
    )
    smtp_pipelining: str = _setting(
        "auto",
        "auto (default): send MAIL, RCPT and DATA together when the server offers "
        "PIPELINING, RFC 2920 (half the round trips a message); off: one command at a time, "
        "for a server that offers it but mishandles it.",
    )

    imap_host: str = _setting(
        "",
        "Empty: outlook.office365.com for Microsoft 365, imap.gmail.com for Gmail (from the "
        "SMTP host).",
    )
    imap_port: int = _setting(0, "Default by security mode: ssl 993, starttls 143.")
    imap_security: str = _setting(
        "ssl",
        "ssl (default) | starttls | none (only to localhost). Certificates are always verified.",
    )
    imap_username: str = _setting(
        "",
        "Empty: the SMTP username and password (usually the same mailbox). With OAuth "
        "sign-in for SMTP and no IMAP password, IMAP signs in with the same tokens (XOAUTH2).",
    )
    imap_password: str = _setting(
        "", "Empty: the SMTP password (see NEWSLETTER_IMAP_USERNAME).", secret=True
    )
    imap_folder: str = _setting("INBOX", "The folder bounces and replies arrive in.")
    imap_cafile: str = _setting("", "Trust a private CA (PEM file); empty: NEWSLETTER_SMTP_CAFILE.")
    soft_bounce_limit: int = _setting(
        3,
        "Suppress an address after soft bounces (mailbox full, policy, 4xx) in this many "
        "different issues.",
    )

    smtp_auth: str = _setting(
        "",
        "password | oauth2 | none. Empty: oauth2 for smtp.office365.com / smtp.gmail.com "
        "when no password is set or NEWSLETTER_OAUTH_CLIENT_ID is (or a token command is), "
        "else password. Then run `newsletter login`.",
    )
    oauth_provider: str = _setting(
        "", "microsoft | google; empty: inferred from NEWSLETTER_SMTP_HOST."
    )
    oauth_client_id: str = _setting(
        "",
        "The app registration's Application (client) ID, from your IT person (see "
        "docs/it/microsoft-365.md or docs/it/google.md).",
    )
    oauth_client_secret: str = _setting(
        "",
        "Google desktop clients only (required for Google: the sign-in needs it).",
        secret=True,
    )
    oauth_tenant: str = _setting(
        "organizations",
        "Microsoft: your Directory (tenant) ID or domain; required when the app is "
        'registered for "this organisational directory only" (organizations works for '
        "multi-tenant apps only).",
    )
    oauth_authority: str = _setting(
        "",
        "Another sign-in service (https), e.g. https://login.microsoftonline.us/TENANT; "
        "empty: the provider's.",
    )
    smtp_oauth_token_command: str = _setting(
        "",
        "IT-managed: a command that prints an access token, run at each connection (no "
        "login needed; set NEWSLETTER_SMTP_USERNAME to the mailbox).",
        secret=True,
    )

    dns_server: str = _setting(
        "", "Ask this DNS server (host or host:port) instead of the system's."
    )
    dkim_selector: str = _setting(
        "",
        "DKIM selectors your relay signs with, separated by commas (known for Microsoft 365 "
        "and Google).",
    )

    connections: int = _setting(1, "Parallel SMTP connections.")
    rate: float = _setting(
        0.0,
        "Messages per minute across all connections; 0 = as fast as the server accepts. "
        "Empty: 30 for Microsoft 365 (smtp.office365.com), 20 for Gmail, otherwise "
        "unlimited.",
        example="",
    )
    batch_size: int = _setting(
        0,
        "Pause NEWSLETTER_BATCH_PAUSE seconds after every NEWSLETTER_BATCH_SIZE messages; 0 = off.",
    )
    batch_pause: float = _setting(0.0, "Seconds to pause between batches (see above).")
    max_attempts: int = _setting(
        5,
        "Attempts per message for temporary failures (4xx, dropped connection), with "
        "exponential backoff from NEWSLETTER_RETRY_BASE_DELAY seconds; then the member is "
        "left `deferred`.",
    )
    retry_base_delay: float = _setting(2.0, "Seconds before the first retry (see above).")
    daily_limit: int = _setting(
        0,
        "Messages per rolling 24 hours for this account, over all issues and test copies "
        "(the journal counts them); a send stops at what is left today and says when to "
        "resume. Empty: 10000 for Microsoft 365, 2000 for Gmail/Workspace (consumer Gmail: "
        "set 500), otherwise no cap. 0 = no cap.",
        example="",
    )

    utm: bool = _setting(
        False,
        "Add utm_source/utm_medium/utm_campaign to every http(s) link ({slug} = the issue's slug).",
    )
    utm_source: str = _setting("newsletter", "The utm_source value.")
    utm_medium: str = _setting("email", "The utm_medium value.")
    utm_campaign: str = _setting("{slug}", "The utm_campaign value.")
    archive_url: str = _setting(
        "", "Public web archive; when set, each email links to ARCHIVE_URL/SLUG.html."
    )
    images: str = _setting(
        "",
        "Local pictures (![alt](images/x.jpg) beside the issue): `hosted` puts them in the "
        "web archive's assets/ folder and the email loads them from ARCHIVE_URL/assets/ (a "
        "real send checks they are online); `embed` carries them inside each message "
        "(multipart/related). Empty: hosted when NEWSLETTER_ARCHIVE_URL is set, else embed.",
    )

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
                hint="ask your IT person for the application (client) ID; see "
                f"{DocPage.for_provider(self.oauth_provider_name)}",
            )
        if self.oauth_provider_name == "google" and not self.oauth_client_secret:
            # Google's token endpoint refuses a Desktop app client without its secret; say so
            # before the chair signs in in the browser for nothing.
            raise ConfigError(
                "Google desktop app clients need their client secret to sign in",
                setting="NEWSLETTER_OAUTH_CLIENT_SECRET",
                hint="ask your IT person for the OAuth client's secret (Google Cloud console, "
                f"Credentials); see {DocPage.GOOGLE}",
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
            # "10,000" as the documentation and provider pages write limits: accept the groups.
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
