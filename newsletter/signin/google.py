"""Google (Gmail, Google Workspace) sign-in with Authlib's OAuth 2.0 client.

Authlib's ``OAuth2Session`` does the protocol: PKCE (S256) and ``state`` for the
authorisation code flow, the token and refresh requests, RFC 7009 revocation at logout. We
keep its token (refresh token, access token, expiry by our clock) in one JSON file (mode
0600) in the state folder and run the loopback listener so the browser is opened by a
function we are given. Google has no device flow for the Gmail scope: a browser is needed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from ..common.config import Settings
from ..common.docs import DocPage
from ..common.errors import SignInError, SignInRequired
from .loopback import LoopbackReceiver
from .store import damaged, locked, read_json, remove, token_path, write_private
from .tokens import (
    Clock,
    Echo,
    Grant,
    OpenBrowser,
    SignIn,
    network_errors,
    not_a_token_answer,
)

# openid + email: so the token response names the account (its ID token's email claim).
MAIL_SCOPE = "https://mail.google.com/"
SCOPES = f"{MAIL_SCOPE} openid email"
ENDPOINTS = {
    "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
    "token_endpoint": "https://oauth2.googleapis.com/token",
    "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
}


def _claims(id_token: str) -> dict[str, Any]:
    """The ID token's claims. Not signature-checked: it came straight from the token
    endpoint over verified TLS, which OpenID Connect Core §3.1.3.7 accepts instead."""
    try:
        payload = id_token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


class GoogleBackend:
    def __init__(self, settings: Settings, *, http: Any = None, clock: Clock) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self.path = token_path(settings.state_dir, "google")
        self.authority = settings.oauth_authority.rstrip("/") or "https://accounts.google.com"
        self._endpoints: dict[str, str] | None = None

    @contextmanager
    def _service(self, what: str) -> Iterator[None]:
        try:
            with network_errors(self.authority, "check the network, or NEWSLETTER_OAUTH_AUTHORITY"):
                yield
        except OAuthError as error:
            if error.error in ("invalid_grant", "unauthorized_client"):
                raise SignInRequired(f"{what}: {error.error}") from None
            description = (error.description or "").splitlines()[:1]
            raise SignInError(
                f"{what} failed: {error.error}" + (f": {description[0]}" if description else ""),
                hint="check NEWSLETTER_OAUTH_CLIENT_ID and NEWSLETTER_OAUTH_CLIENT_SECRET",
            ) from None
        except ValueError:  # a token endpoint answering something else than JSON
            raise not_a_token_answer(self.authority) from None

    def _session(self, **kwargs: Any) -> OAuth2Session:
        session = OAuth2Session(
            self._settings.oauth_client_id,
            self._settings.oauth_client_secret or None,
            scope=SCOPES,
            code_challenge_method="S256",
            token_endpoint_auth_method=(
                "client_secret_post" if self._settings.oauth_client_secret else "none"
            ),
            # requests waits forever by default: a sign-in service that never answers
            # would hang a send at its first (re)connection.
            default_timeout=self._settings.smtp_timeout or None,
            **kwargs,
        )
        if self._http is not None:
            session.verify = self._http.verify
            session.trust_env = self._http.trust_env
        return session

    def endpoints(self) -> dict[str, str]:
        if self._endpoints is None:
            if not self._settings.oauth_authority:
                self._endpoints = dict(ENDPOINTS)
            else:  # another issuer (the tests' server): its OpenID discovery document
                with self._service("discovery"):
                    session = self._session()
                    url = f"{self.authority}/.well-known/openid-configuration"
                    response = session.get(url, timeout=30, withhold_token=True)
                    response.raise_for_status()
                    self._endpoints = response.json()
        return self._endpoints

    # -- storage --------------------------------------------------------------------------

    def _load(self) -> dict[str, Any] | None:
        saved = read_json(self.path)
        if saved is not None and not (
            isinstance(saved.get("username"), str)
            and isinstance(saved.get("refresh_token"), str)
            and isinstance(saved.get("access_token", ""), str)
            and isinstance(saved.get("expires_at", 0), int | float)
        ):
            raise damaged(self.path)  # not the file _store writes
        return saved

    def _store(
        self, token: dict[str, Any], username: str, *, refreshed: str | None = None
    ) -> dict[str, Any]:
        """Save a new token. ``refreshed``: the refresh token it was got with; it is saved
        only if the file still holds that one (else another command signed out, or in
        anew, while this one was refreshing: theirs stays, this run still uses its own)."""
        saved = {
            "username": username,
            "refresh_token": token["refresh_token"],
            "access_token": token["access_token"],
            "expires_at": self._clock() + float(token.get("expires_in", 3600)),
        }
        with locked(self.path):
            if refreshed is None or self._holds(refreshed):
                write_private(self.path, json.dumps(saved))
        return saved

    def _holds(self, refresh_token: str) -> bool:
        current = self._load()
        return bool(current) and current.get("refresh_token") == refresh_token

    def _forget(self, dead: str) -> None:
        """Remove the sign-in whose refresh token ``dead`` was refused, unless another
        command has signed in anew meanwhile."""
        with locked(self.path):
            if self._holds(dead):
                remove(self.path)

    def account(self) -> str | None:
        saved = self._load()
        return saved.get("username") if saved else None

    def status(self) -> SignIn | None:
        saved = self._load()
        if not saved:
            return None
        return SignIn("google", saved["username"], saved.get("expires_at"), self.path)

    # -- flows ----------------------------------------------------------------------------

    def token(self, force_refresh: bool) -> Grant:
        saved = self._load()
        if not saved or not saved.get("refresh_token"):
            raise SignInRequired("nobody is signed in yet")
        remaining = float(saved.get("expires_at", 0)) - self._clock()
        if not force_refresh and remaining > 0:
            return Grant(saved["username"], saved["access_token"], remaining)
        session = self._session()
        try:
            with self._service("token refresh"):
                token = session.refresh_token(
                    self.endpoints()["token_endpoint"], refresh_token=saved["refresh_token"]
                )
        except SignInRequired as refused:
            if "invalid_grant" in (refused.hint or ""):
                # The refresh token is dead (revoked, expired): forget it, so `login --status`
                # says "not signed in" as the send's "sign in again" does.
                self._forget(saved["refresh_token"])
            raise
        if not token.get("access_token"):
            raise not_a_token_answer(self.authority)
        # Google keeps the refresh token (no rotation) and omits it from the answer.
        token.setdefault("refresh_token", saved["refresh_token"])
        saved = self._store(token, saved["username"], refreshed=saved["refresh_token"])
        return Grant(saved["username"], saved["access_token"], float(token.get("expires_in", 3600)))

    def login_browser(self, *, open_browser: OpenBrowser, echo: Echo, timeout: float) -> Grant:
        endpoints = self.endpoints()
        with LoopbackReceiver("127.0.0.1") as receiver:
            session = self._session(redirect_uri=receiver.redirect_uri)
            from authlib.common.security import generate_token

            verifier = generate_token(64)
            url, state = session.create_authorization_url(
                endpoints["authorization_endpoint"],
                code_verifier=verifier,
                # offline + consent: Google issues a refresh token only on these terms.
                access_type="offline",
                prompt="consent",
                login_hint=self._settings.smtp_username or None,
            )
            receiver.expect_state(state)
            echo("Opening the Google sign-in page in your browser. If it does not open, go to:")
            echo(url)
            open_browser(url)
            echo(f"Waiting for the sign-in (up to {timeout / 60:g} minutes; Ctrl-C stops)…")
            params = receiver.wait(timeout)
        if "error" in params:
            raise SignInError(
                f"sign-in refused: {params['error']}",
                hint="run newsletter login again and choose Allow; with a Workspace account "
                f"your IT person may need to allow the app (see {DocPage.GOOGLE})",
            )
        with self._service("sign-in"):
            if params.get("state") != state:
                raise SignInError("sign-in answer does not match this request (state)")
            token = session.fetch_token(
                endpoints["token_endpoint"],
                grant_type="authorization_code",
                code=params["code"],
                code_verifier=verifier,
            )
        if not token.get("refresh_token"):
            raise SignInError(
                "the provider issued no refresh token", hint="run newsletter login again"
            )
        granted = str(token.get("scope") or SCOPES).split()
        if MAIL_SCOPE not in granted:
            # Google's consent page lets the user untick each permission: without the mail
            # one the sign-in "works" and every send is refused (535 5.7.8) later.
            raise SignInError(
                "the sign-in did not allow access to Gmail (its box was unticked on Google's "
                "consent page)",
                hint="run newsletter login again and tick 'Read, compose, send and "
                "permanently delete all your email from Gmail'",
            )
        username = _claims(token.get("id_token", "")).get("email") or self._settings.smtp_username
        if not username:
            raise SignInError(
                "the sign-in did not say which account it is",
                hint="set NEWSLETTER_SMTP_USERNAME to the mailbox address",
            )
        saved = self._store(token, username)
        return Grant(username, saved["access_token"], float(token.get("expires_in", 3600)))

    def login_device(self, *, echo: Echo, timeout: float) -> Grant:
        raise SignInError(
            "Google does not allow device sign-in for mail (https://mail.google.com/)",
            hint="run newsletter login (without --device-code) on a computer with a browser",
        )

    def logout(self) -> None:
        saved = self._load()
        if saved and saved.get("refresh_token"):
            endpoint = self.endpoints().get("revocation_endpoint")
            if endpoint:
                # Best effort: the local copy is deleted even if the provider is unreachable.
                try:
                    self._session().revoke_token(
                        endpoint, saved["refresh_token"], token_type_hint="refresh_token"
                    )
                except (OAuthError, requests.RequestException, ValueError):
                    pass
        with locked(self.path):
            remove(self.path)
