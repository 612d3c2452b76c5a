"""Microsoft 365 sign-in with MSAL (Microsoft's own library, kept in step with Entra ID).

MSAL does the protocol: PKCE and ``state`` for the authorisation code flow, the device code
flow (RFC 8628), refresh-token rotation and its token cache, which we persist as one JSON
file (mode 0600) in the state folder. We only provide the loopback listener (so the browser
is opened by a function we are given) and the mapping of failures to one-line errors.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msal

from ..common.config import Settings
from ..common.errors import SignInError, SignInRequired
from .loopback import LoopbackReceiver
from .store import damaged, locked, remove, token_path, write_private
from .tokens import (
    Echo,
    Grant,
    OpenBrowser,
    SignIn,
    network_errors,
    not_a_token_answer,
    service_trouble,
)

# MSAL logs a token answer it cannot parse with logger.exception; with no handler anywhere,
# Python's last-resort handler would print that traceback on the chair's terminal. Our own
# one-line error says what happened; a NullHandler keeps MSAL's record out of the terminal
# (it still propagates to any logging the application configures).
logging.getLogger("msal").addHandler(logging.NullHandler())

# offline_access, openid and profile are added by MSAL itself (it refuses them here).
SCOPES = [
    "https://outlook.office.com/SMTP.Send",
    "https://outlook.office.com/IMAP.AccessAsUser.All",
]
# Replies that mean "the refresh token is no good any more": the user must sign in again.
SIGN_IN_AGAIN = {"invalid_grant", "interaction_required", "consent_required", "login_required"}


def _one_line(result: dict[str, Any]) -> str:
    # Entra's error_description carries trace and correlation ids on extra lines.
    text = str(result.get("error_description") or result.get("error") or "unknown error")
    return text.splitlines()[0][:300]


# Entra's AADSTS codes for a wrong app registration or tenant, and what fixes each. They
# reach us from the device-code and token endpoints (the browser shows its own page).
_AADSTS_HINTS = {
    "AADSTS700016": "check NEWSLETTER_OAUTH_CLIENT_ID (the Application (client) ID) and "
    "NEWSLETTER_OAUTH_TENANT",
    "AADSTS90002": "check NEWSLETTER_OAUTH_TENANT (your Directory (tenant) ID or domain)",
    "AADSTS50194": "the app is registered for your organisation only: set "
    "NEWSLETTER_OAUTH_TENANT to your Directory (tenant) ID",
    "AADSTS7000218": "the app registration is not a public client: in Entra, Authentication "
    "→ Allow public client flows: Yes, and the redirect URI http://localhost under "
    "Mobile and desktop applications (not Web)",
    "AADSTS65001": "the app's permissions need consent: ask your IT person to grant admin "
    "consent (API permissions → Grant admin consent)",
    # Refusals at a refresh where signing in again alone does not help, or needs a word.
    "AADSTS53003": "your organisation's Conditional Access policy blocks this sign-in (this "
    "device, network or app): ask your IT person (Entra's sign-in logs name the policy)",
    "AADSTS50020": "the saved sign-in is an account of another organisation than "
    "NEWSLETTER_OAUTH_TENANT (a token file from another project?): check the tenant, then "
    "newsletter login with the sending mailbox",
    "AADSTS50057": "the account is disabled in your organisation's directory: ask your IT person",
    "AADSTS50076": "your organisation now asks for multi-factor authentication: "
    "newsletter login lets you complete it",
    "AADSTS50079": "your organisation now asks you to set up multi-factor authentication: "
    "newsletter login takes you through it",
}
_CLIENT_HINT = "check NEWSLETTER_OAUTH_CLIENT_ID and NEWSLETTER_OAUTH_TENANT"


def entra_hint(result: dict[str, Any], default: str | None = None) -> str | None:
    """What to do about an Entra error answer, from its AADSTS code or OAuth error."""
    text = str(result.get("error_description") or "")
    for code, hint in _AADSTS_HINTS.items():
        if code in text:
            return hint
    if result.get("error") in ("invalid_client", "unauthorized_client"):
        return _CLIENT_HINT
    return default


_T = TypeVar("_T")


class SharedCache(msal.SerializableTokenCache):
    """MSAL's token cache, kept in the token file and shared with every other process of
    ours (a send, ``login``, ``logout``, ``feedback``): each change MSAL makes is applied to
    what the file holds *now*, under its lock, and saved at once; a look-up first picks up
    what another process saved meanwhile. (MSAL rotates refresh tokens: an older copy
    written back over a newer one could sign the chair out.)"""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        # MSAL's own lock (an RLock, held while its look-ups run) guards ours too: one lock
        # order, so two threads (a send's) never wait on each other in opposite orders.
        self._guard = getattr(self, "_lock", None) or threading.RLock()
        self._depth = 0  # add() calls modify(): one reload and one save for the whole
        self._reload()

    def _reload(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="utf-8") if stamp else ""
            self.deserialize(text)
            # MSAL trusts the file's shape; one it did not write (another version's,
            # edited, another program's) would fail later with an AttributeError.
            types = msal.TokenCache.CredentialType
            for account in super().search(types.ACCOUNT):
                if not isinstance(account.get("username", ""), str):
                    raise ValueError("account")
            for token in super().search(types.ACCESS_TOKEN):
                float(token.get("expires_on") or 0)
        except (ValueError, AttributeError, TypeError):
            raise damaged(self.path) from None
        self._stamp = stamp

    def _change(self, apply: Callable[[], _T]) -> _T:
        with self._guard:
            if self._depth:
                return apply()
            with locked(self.path):
                self._depth += 1
                try:
                    self._reload()
                    result = apply()
                    if self.has_state_changed:
                        write_private(self.path, self.serialize())
                        self._stamp = _stamp(self.path)
                finally:
                    self._depth -= 1
            return result

    def add(self, event: dict[str, Any], **kwargs: Any) -> None:
        self._change(lambda: super(SharedCache, self).add(event, **kwargs))

    def modify(
        self,
        credential_type: str,
        old_entry: dict[str, Any],
        new_key_value_pairs: dict[str, Any] | None = None,
    ) -> Any:
        return self._change(
            lambda: super(SharedCache, self).modify(
                credential_type, old_entry, new_key_value_pairs=new_key_value_pairs
            )
        )

    def search(self, credential_type: str, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            if not self._depth:
                self._reload()
        return super().search(credential_type, *args, **kwargs)

    def forget(self) -> None:
        """Sign out: the file goes, and with it every token of every process's copy."""
        with self._guard, locked(self.path):
            remove(self.path)
            self._reload()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What identifies one version of the file: every save replaces it (a new inode)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class MicrosoftBackend:
    def __init__(self, settings: Settings, *, http: Any = None) -> None:
        self._settings = settings
        self.path = token_path(settings.state_dir, "microsoft")
        self.authority = (
            settings.oauth_authority.rstrip("/")
            or f"https://login.microsoftonline.com/{settings.oauth_tenant}"
        )
        self._http = http
        self._cache = SharedCache(self.path)  # a damaged file: "run logout, then login"
        self._app: msal.PublicClientApplication | None = None

    @contextmanager
    def _service(self) -> Iterator[None]:
        """Network and discovery failures as one line naming the sign-in service."""
        hint = "check the network, or NEWSLETTER_OAUTH_TENANT / NEWSLETTER_OAUTH_AUTHORITY"
        try:
            with network_errors(self.authority, hint):
                yield
        except msal.exceptions.MsalServiceError as error:
            # MSAL raises this (no JSON, no error code) for a 5xx answer of the token endpoint.
            status = str(error).rpartition(" ")[2] if "HTTP Error" in str(error) else "an error"
            raise service_trouble(self.authority, status) from None
        except json.JSONDecodeError:  # a web page where the token answer should be
            raise not_a_token_answer(self.authority) from None
        except ValueError as error:  # MSAL's authority validation and discovery
            raise SignInError(
                f"sign-in service {self.authority} refused: {str(error).splitlines()[0][:200]}",
                hint="check NEWSLETTER_OAUTH_TENANT and NEWSLETTER_OAUTH_AUTHORITY",
            ) from None

    def _application(self) -> msal.PublicClientApplication:
        # Built lazily: MSAL fetches the authority's discovery document on construction,
        # and --status or logout need no network.
        if self._app is None:
            with self._service():
                self._app = msal.PublicClientApplication(
                    self._settings.oauth_client_id,
                    authority=self.authority,
                    token_cache=self._cache,
                    http_client=self._http,  # None: MSAL's own requests.Session
                    # MSAL waits forever by default: a sign-in service that never answers
                    # would hang a send at its first (re)connection.
                    timeout=self._settings.smtp_timeout or None,
                    # A custom authority (a sovereign cloud, the tests' server) is trusted
                    # as given instead of being checked against Microsoft's instance list.
                    instance_discovery=False if self._settings.oauth_authority else None,
                )
        return self._app

    def _accounts(self) -> list[dict[str, Any]]:
        # Only accounts this app registration holds a refresh token for: a cache written
        # with another client ID (IT registered the app anew, a file copied from another
        # project) is no sign-in here; `--status` said "signed in" and every send then
        # failed with "no saved sign-in".
        client_id = self._settings.oauth_client_id
        holders = {
            rt.get("home_account_id")
            for rt in self._cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
            if rt.get("client_id") == client_id
        }
        accounts = [
            a
            for a in self._cache.search(msal.TokenCache.CredentialType.ACCOUNT)
            if a.get("username") and a.get("home_account_id") in holders
        ]
        wanted = self._settings.smtp_username.casefold()
        matching = [a for a in accounts if a["username"].casefold() == wanted]
        return matching or accounts

    def account(self) -> str | None:
        accounts = self._accounts()
        return accounts[0]["username"] if accounts else None

    def status(self) -> SignIn | None:
        accounts = self._accounts()
        if not accounts:
            return None
        home = accounts[0].get("home_account_id")
        expiries = [
            float(at["expires_on"])
            for at in self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
            if at.get("home_account_id") == home and at.get("expires_on")
        ]
        return SignIn(
            "microsoft", accounts[0]["username"], max(expiries) if expiries else None, self.path
        )

    def _finish(self, result: dict[str, Any] | None, what: str) -> Grant:
        if not result or "access_token" not in result:
            error = (result or {}).get("error")
            if result is None or error in SIGN_IN_AGAIN:
                reason = _one_line(result) if result else "no saved sign-in"
                # Consent, Conditional Access, a disabled account: signing in again alone
                # does not help, so say who can.
                extra = entra_hint(result) if result else None
                raise SignInRequired(f"{reason}; {extra}" if extra else reason)
            raise SignInError(f"{what} failed: {_one_line(result)}", hint=entra_hint(result))
        claims = result.get("id_token_claims") or {}
        username = claims.get("preferred_username") or self.account() or ""
        return Grant(username, result["access_token"], float(result.get("expires_in", 3600)))

    def token(self, force_refresh: bool) -> Grant:
        app = self._application()
        raw = self._accounts()
        if not raw:
            raise SignInRequired("nobody is signed in yet")
        with self._service():
            account = next(
                (a for a in app.get_accounts() if a.get("username") == raw[0]["username"]), None
            )
            if account is None:
                raise SignInRequired("nobody is signed in yet")
            result = app.acquire_token_silent_with_error(
                SCOPES, account, force_refresh=force_refresh
            )
        if result and result.get("error") == "invalid_grant":
            # The refresh token is dead (revoked, expired, password changed): forget it, so
            # `login --status` says "not signed in" as the send's "sign in again" does.
            app.remove_account(account)
        return self._finish(result, "token refresh")

    def login_browser(self, *, open_browser: OpenBrowser, echo: Echo, timeout: float) -> Grant:
        app = self._application()
        # Entra matches http://localhost registrations on any port (RFC 8252 §7.3).
        with LoopbackReceiver("localhost") as receiver, self._service():
            flow = app.initiate_auth_code_flow(
                SCOPES,
                redirect_uri=receiver.redirect_uri,
                login_hint=self._settings.smtp_username or None,
                prompt="select_account",
                response_mode="form_post",
            )
            receiver.expect_state(flow["state"])
            echo("Opening the Microsoft sign-in page in your browser. If it does not open, go to:")
            echo(flow["auth_uri"])
            open_browser(flow["auth_uri"])
            echo(f"Waiting for the sign-in (up to {timeout / 60:g} minutes; Ctrl-C stops)…")
            params = receiver.wait(timeout)
            result = app.acquire_token_by_auth_code_flow(flow, params, scopes=SCOPES)
        if "error" in params:
            raise SignInError(f"sign-in refused: {_one_line(params)}", hint=entra_hint(params))
        return self._only(self._finish(result, "sign-in"))

    def _only(self, grant: Grant) -> Grant:
        """One mailbox per project: a new sign-in replaces any other account's tokens."""
        app = self._application()
        for account in app.get_accounts():
            if account.get("username") != grant.username:
                app.remove_account(account)
        return grant

    def login_device(self, *, echo: Echo, timeout: float) -> Grant:
        app = self._application()
        with self._service():
            flow = app.initiate_device_flow(scopes=SCOPES)
            if "user_code" not in flow:
                # A wrong client ID or tenant fails here; "Allow public client flows" off
                # fails later, when the code is redeemed (AADSTS7000218).
                raise SignInError(
                    f"device sign-in not available: {_one_line(flow)}",
                    hint=entra_hint(
                        flow, 'the app registration needs "Allow public client flows" set to Yes'
                    ),
                )
            echo(
                f"To sign in, open {flow['verification_uri']} on any device "
                f"and enter the code {flow['user_code']}"
            )
            echo(f"Waiting for the sign-in (up to {timeout / 60:g} minutes; Ctrl-C stops)…")
            deadline = time.monotonic() + timeout
            result = app.acquire_token_by_device_flow(
                flow, exit_condition=lambda flow: time.monotonic() > deadline
            )
        if (result or {}).get("error") in ("authorization_pending", "slow_down", "expired_token"):
            # Nobody entered the code in time: MSAL hands back the last poll's answer.
            raise SignInError(
                f"no sign-in within {timeout / 60:g} minutes",
                hint="run newsletter login --device-code again and enter the new code",
            )
        return self._only(self._finish(result, "device sign-in"))

    def logout(self) -> None:
        # Microsoft offers public clients no revocation endpoint: forgetting the tokens is
        # all a client can do (an admin revokes sessions in Entra if a device is lost).
        self._cache.forget()
