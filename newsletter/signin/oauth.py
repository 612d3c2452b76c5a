"""Signing in to the mailbox with OAuth 2.0: the provider-neutral API.

Everything that talks to a mailbox (SMTP now, IMAP next) uses only this module::

    source = token_source(settings)      # SignInRequired if never signed in
    token = source()                     # a fresh access token, refreshed when near expiry
    source.username                      # the mailbox to put in XOAUTH2's user=
    source.invalidate()                  # the server refused the token: refresh next time

The flows and the token cache belong to the providers' libraries (MSAL for Microsoft,
Authlib for Google; see :mod:`newsletter.signin.microsoft` and :mod:`newsletter.signin.google`)
or to the IT department's own token command (:mod:`newsletter.signin.command`). This module
only decides *when* to refresh, by a clock it is given, and keeps tokens out of every
``repr``, message and log.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import Any, Protocol

from ..common.config import Settings
from ..common.errors import NewsletterError, SignInError, SignInRequired
from .tokens import Clock, Echo, Grant, OpenBrowser, SignIn

# Refresh this long before the access token expires: a paced send checks before every
# message, so no message starts with a token that could expire mid-connection.
REFRESH_MARGIN = 300.0
LOGIN_TIMEOUT = 300.0


class Backend(Protocol):
    """One way of getting tokens (MSAL, Authlib, a command)."""

    def account(self) -> str | None:
        """The signed-in account, from storage (no network); None if not signed in."""
        ...

    def token(self, force_refresh: bool) -> Grant:
        """An access token; raise SignInRequired if the refresh token no longer works."""
        ...


# A backend with ``fetch_every_time = True`` (the token command) is asked at every call,
# i.e. at every (re)connection: it owns its tokens' lifetime.


class TokenSource:
    """Fresh access tokens on demand; thread-safe (one source serves all connections)."""

    def __init__(self, backend: Backend, username: str, *, clock: Clock = time.time) -> None:
        self._backend = backend
        self.username = username
        self.clock = clock
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenSource({self.username})"

    def __call__(self) -> str:
        with self._lock:
            now = self.clock()
            if (
                self._token is None
                or now >= self._valid_until - REFRESH_MARGIN
                or getattr(self._backend, "fetch_every_time", False)
            ):
                # force only once we held a token: the first call may use a cached one.
                grant = self._backend.token(force_refresh=self._token is not None)
                self._token = grant.access_token
                self._valid_until = now + grant.expires_in
            return self._token

    @property
    def valid_until(self) -> float:
        """When (by ``clock``) the current token expires."""
        return self._valid_until

    def needs_refresh(self) -> bool:
        """True when the current token is within REFRESH_MARGIN of expiring."""
        return self.clock() >= self._valid_until - REFRESH_MARGIN

    def invalidate(self) -> None:
        """The server refused the current token: the next call gets a new one."""
        with self._lock:
            if self._token is not None:
                self._valid_until = 0.0


def xoauth2(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, before base64 (smtplib and imaplib encode it)."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def xoauth2_b64(username: str, token: str) -> str:
    return base64.b64encode(xoauth2(username, token).encode()).decode("ascii")


def backend_for(settings: Settings, *, http: Any = None, clock: Clock = time.time) -> Backend:
    """The backend the settings ask for. ``http``: a requests.Session (tests pass one that
    trusts their CA; by default requests honours REQUESTS_CA_BUNDLE)."""
    if settings.smtp_oauth_token_command:
        from .command import CommandBackend

        return CommandBackend(settings)
    settings.require_oauth_client()
    if settings.oauth_provider_name == "microsoft":
        from .microsoft import MicrosoftBackend

        return MicrosoftBackend(settings, http=http)
    from .google import GoogleBackend

    return GoogleBackend(settings, http=http, clock=clock)


def token_source(settings: Settings, *, http: Any = None, clock: Clock = time.time) -> TokenSource:
    """A :class:`TokenSource` for the configured mailbox (SMTP or IMAP).

    Raises SignInRequired if nobody is signed in, ConfigError if the settings are incomplete.
    The username is NEWSLETTER_SMTP_USERNAME if set, else the signed-in account.
    """
    backend = backend_for(settings, http=http, clock=clock)
    username = settings.smtp_username or backend.account()
    if not username:
        raise SignInRequired("nobody is signed in yet")
    return TokenSource(backend, username, clock=clock)


def login(
    settings: Settings,
    *,
    device_code: bool = False,
    open_browser: OpenBrowser,
    echo: Echo,
    http: Any = None,
    clock: Clock = time.time,
    timeout: float = LOGIN_TIMEOUT,
) -> SignIn:
    """Sign the sending mailbox in: browser (auth code + PKCE, loopback redirect) or, with
    ``device_code``, a code to enter on another device. Stores the tokens; returns who."""
    if settings.smtp_oauth_token_command:
        raise SignInError(
            "NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND is set: tokens come from that command",
            hint="no login needed; unset it to sign in here instead",
        )
    try:
        backend: Any = backend_for(settings, http=http, clock=clock)
    except SignInError:
        # A damaged token file (the only thing building a backend reads): a new sign-in
        # replaces it anyway, so do not send the chair round by `logout` first.
        logout(settings, http=http)
        backend = backend_for(settings, http=http, clock=clock)
    if device_code:
        backend.login_device(echo=echo, timeout=timeout)
    else:
        backend.login_browser(open_browser=open_browser, echo=echo, timeout=timeout)
    status = backend.status()
    assert status is not None
    return status


def password_set_up(settings: Settings) -> bool:
    """No OAuth here at all: the server takes a password (or nothing) and no provider is
    named or recognisable from the host, so there is no sign-in to show or forget."""
    return settings.auth_mode != "oauth2" and not settings.oauth_provider_name


def sign_in_status(settings: Settings) -> SignIn | None:
    """Who is signed in and when the access token expires, from storage only."""
    if settings.smtp_oauth_token_command:
        return SignIn("token command", settings.smtp_username, None, None)
    if password_set_up(settings):
        return None
    backend: Any = backend_for(settings)
    return backend.status()


def username_mismatch(settings: Settings, info: SignIn) -> str:
    """A note when NEWSLETTER_SMTP_USERNAME names another mailbox than the one signed in:
    XOAUTH2 then presents that mailbox with this account's token, which the provider
    refuses unless the account may use that mailbox (e.g. the browser's sign-in page was
    answered with the chair's own account instead of the sending mailbox)."""
    wanted = settings.smtp_username
    if not wanted or not info.username or info.provider == "token command":
        return ""
    if wanted.casefold() == info.username.casefold():
        return ""
    return (
        f"note: NEWSLETTER_SMTP_USERNAME is {wanted}, but {info.username} is signed in: the "
        f"send signs in to {wanted} with {info.username}'s sign-in, which the provider "
        f"refuses unless that account may use it. Run newsletter login again and sign in "
        f"as {wanted}, or remove NEWSLETTER_SMTP_USERNAME to send as {info.username}"
    )


def sending_account(settings: Settings) -> str:
    """The mailbox SMTP AUTH signs in as, from the settings and storage only (no network):
    NEWSLETTER_SMTP_USERNAME, else with OAuth the signed-in account; "" if unknown. The
    pre-flight check compares it with the From address (Microsoft 365 refuses to send as
    another address without Send As rights; elsewhere SPF/DKIM alignment suffers)."""
    if settings.smtp_username or settings.auth_mode != "oauth2":
        return settings.smtp_username
    try:
        info = sign_in_status(settings)
    except NewsletterError:  # incomplete sign-in settings: the send itself will say so
        return ""
    return info.username if info and info.username else ""


def sign_in_missing(settings: Settings) -> str:
    """Why a send could not sign in ("" when it can), from the settings and the token store
    only (no network): a real send finds a dead refresh token at its first connection and
    stops there with "sign in again" before any message, as `send --test` does."""
    return sign_in_problem(settings, refresh=False)[0]


SIGN_IN_FIX = "run 'newsletter login' and sign in with the sending mailbox"


def sign_in_problem(
    settings: Settings, *, refresh: bool = True, http: Any = None
) -> tuple[str, str]:
    """Why a send could not sign in, and what to do; ("", "") when it can (a password, a
    token command, or a sign-in that yields a token). The pre-flight check reports it, so
    `check` never says READY for a mailbox nobody signed in, nor for a sign-in that expired
    or was revoked (the send would stop at its first connection). When someone is signed
    in, a token is fetched as the send will: from the store while the access token is
    fresh, else by a refresh at the provider (which is what tells a dead refresh token);
    ``refresh=False``: the token store only."""
    if settings.auth_mode != "oauth2":
        return "", ""
    if settings.smtp_oauth_token_command:
        if not refresh:
            return "", ""
        try:  # run it once, as every connection of the send will
            token_source(settings, http=http)()
        except NewsletterError as error:
            return f"cannot get a sign-in token: {error.message}", (
                error.hint or "fix the command (run it yourself to see why it fails)"
            )
        return "", ""
    try:
        info = sign_in_status(settings)
    except NewsletterError as error:  # incomplete sign-in settings (no client ID, …)
        return str(error), SIGN_IN_FIX
    provider = {"microsoft": "Microsoft 365", "google": "Google"}.get(
        settings.oauth_provider_name, "OAuth 2.0"
    )
    if info and not refresh:
        return "", ""
    if info:
        try:
            token_source(settings, http=http)()
        except SignInRequired as error:
            why = f" ({error.hint})" if error.hint else ""
            return (
                f"the sign-in of {info.username} with {provider} has expired or was revoked{why}",
                SIGN_IN_FIX,
            )
        except NewsletterError as error:  # the sign-in service unreachable or in trouble
            return f"cannot get a sign-in token: {error.message}", (
                error.hint or "check the network, then run the check again"
            )
        return "", ""
    missing = f"the send signs in with {provider} (OAuth 2.0), but nobody is signed in yet"
    if settings.smtp_password:  # an app password left beside an OAuth client ID
        missing += (
            " (NEWSLETTER_SMTP_PASSWORD is ignored with OAuth: to send with it instead, set "
            "NEWSLETTER_SMTP_AUTH=password)"
        )
    return missing, SIGN_IN_FIX


def logout(settings: Settings, *, http: Any = None) -> SignIn | None:
    """Forget the stored tokens (and revoke them where the provider offers it)."""
    if settings.smtp_oauth_token_command or password_set_up(settings):
        return None  # nothing stored here: the command owns its tokens, or none are used
    try:
        backend: Any = backend_for(settings, http=http)
        status = backend.status()
    except SignInError:
        # A damaged token file: every other command says "run newsletter logout", so
        # logout must get rid of it (there is nothing in it to revoke).
        from .store import remove, token_path

        path = token_path(settings.state_dir, settings.oauth_provider_name)
        remove(path)
        return SignIn(settings.oauth_provider_name, "an unreadable saved sign-in", None, path)
    backend.logout()
    return status
