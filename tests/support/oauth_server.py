"""A real OAuth 2.0 / OpenID Connect authorisation server on https://127.0.0.1 for tests.

Built with Authlib's server side (the same protocol code real providers' clones run), in a
Flask app served by Werkzeug over TLS with the trustme test CA:

* authorisation code grant with PKCE (RFC 7636, S256 required) and loopback redirects on any
  port (RFC 8252 §7.3), plus OpenID Connect ID tokens (with the request's ``nonce``);
* device authorisation grant (RFC 8628);
* refresh tokens with rotation, access-token expiry by a clock the test moves;
* revocation (RFC 7009);
* discovery documents where MSAL (``/{tenant}/v2.0/.well-known/openid-configuration``) and
  generic OpenID clients (``/.well-known/openid-configuration``) look for them.

The "user" is played by :meth:`OAuthServer.browser` (an HTTP client that follows the sign-in
page's consent form and then the redirect to the app's loopback listener, as a browser would)
and :meth:`OAuthServer.approve_device` (the user typing the code on another device). No real
browser: what is under test is the app's side of the protocol, not a sign-in page.

Issued access tokens are checked by :meth:`OAuthServer.user_for_token` (the test SMTP server
shares this object, as a resource server shares the AS's token store or introspects).
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from flask import Flask, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from newsletter.common.config import Settings
from support.smtp_servers import HOST, Server, server_tls_context, test_ca

USER = "chair@example.org"
TENANT = "organizations"
MS_CLIENT = "11111111-2222-3333-4444-555555555555"  # a public client (no secret)
GOOGLE_CLIENT = "desktop-client.apps.example"
GOOGLE_SECRET = "gOOgle-desktop-s3cret"
ACCESS_LIFETIME = 3600


@dataclass
class Client:
    client_id: str
    secret: str = ""

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 8252 §7.3: a loopback redirect matches on any port (as Entra and Google do).
        parts = urlsplit(redirect_uri)
        return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.secret) and secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.secret:
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return True


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    created: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.created)


@dataclass
class Token:
    client_id: str
    user: str
    scope: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    issued_at: float
    expires_in: int
    revoked: bool = False  # the refresh token

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:  # the refresh token never expires by time here
        return False

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return self.user

    def get_client(self) -> Client:
        return Client(self.client_id)


class DeviceCredential(dict):
    def get_client_id(self) -> str:
        return self["client_id"]

    def get_scope(self) -> str:
        return self["scope"]

    def get_user_code(self) -> str:
        return self["user_code"]

    def is_expired(self) -> bool:
        return False


class OAuthServer:
    """The server and its state; ``with OAuthServer() as s:`` runs it on a free port."""

    def __init__(self, access_lifetime: int = ACCESS_LIFETIME) -> None:
        self.offset = 0.0  # the server's clock runs at time.time() + offset
        self.access_lifetime = access_lifetime
        self.clients = {
            MS_CLIENT: Client(MS_CLIENT),
            GOOGLE_CLIENT: Client(GOOGLE_CLIENT, GOOGLE_SECRET),
        }
        self.codes: dict[str, AuthCode] = {}
        self.tokens: list[Token] = []
        self.devices: dict[str, DeviceCredential] = {}  # by device_code
        self.device_grants: dict[str, tuple[str, bool]] = {}  # user_code -> (user, approved)
        self.revocations = 0
        # Misbehaviour on demand: each token request first takes the next queued fault, a
        # callable returning a Flask response (an error JSON, an HTML page, a 503, a stall).
        self.token_faults: list[Any] = []
        self.token_requests = 0
        self.lock = threading.RLock()
        self.key = RSAKey.generate_key(2048)
        self.app = self._build_app()
        self._httpd = make_server(
            HOST, 0, self.app, threaded=True, ssl_context=server_tls_context()
        )
        self.port = self._httpd.server_port
        self.base = f"https://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> OAuthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    @property
    def ms_authority(self) -> str:
        return f"{self.base}/{TENANT}"

    def http(self, cafile: str) -> requests.Session:
        """A session trusting the test CA. trust_env off: requests would otherwise let a
        REQUESTS_CA_BUNDLE in the environment override ``verify``."""
        session = requests.Session()
        session.verify = cafile
        session.trust_env = False
        return session

    # -- what the SMTP server and the tests ask -------------------------------------------

    def user_for_token(self, access_token: str) -> str | None:
        """The user an access token was issued to, if it is valid now."""
        with self.lock:
            for token in self.tokens:
                if secrets.compare_digest(token.access_token, access_token):
                    fresh = self.now() < token.issued_at + token.expires_in
                    return token.user if fresh else None
        return None

    def revoke_all(self) -> None:
        """An admin revokes every session (as Entra's "Revoke sessions" does)."""
        with self.lock:
            for token in self.tokens:
                token.revoked = True

    def issued_access_tokens(self) -> list[str]:
        with self.lock:
            return [t.access_token for t in self.tokens]

    def issued_secrets(self) -> list[str]:
        with self.lock:
            values = [t.access_token for t in self.tokens] + [t.refresh_token for t in self.tokens]
        return [*values, GOOGLE_SECRET]

    # -- the user's side ------------------------------------------------------------------

    def browser(self, cafile: str, *, approve: bool = True):
        """An ``open_browser`` function: the user signs in and consents on our page, then
        the browser follows the redirect to the app's loopback listener."""

        def open_browser(url: str) -> bool:
            session = self.http(cafile)
            page = session.get(url, timeout=30)
            assert page.status_code == 200 and "Allow" in page.text, page.text
            answer = session.post(
                url, data={"confirm": "yes" if approve else "no"}, allow_redirects=False
            )
            # The loopback listener is plain http on 127.0.0.1 (RFC 8252): no CA involved.
            if answer.status_code == 302:
                self.http(cafile).get(answer.headers["Location"], timeout=30)
                return True
            # response_mode=form_post: the page's form, submitted as its script would.
            assert answer.status_code == 200 and "<form" in answer.text, answer.text
            action = re.search(r'action="([^"]+)"', answer.text).group(1)
            fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', answer.text))
            self.http(cafile).post(html.unescape(action), data=fields, timeout=30)
            return True

        return open_browser

    def approve_device(self, cafile: str, user_code: str) -> None:
        """The user enters the code on the verification page of another device."""
        session = self.http(cafile)
        answer = session.post(
            f"{self.base}/device", data={"user_code": user_code, "confirm": "yes"}, timeout=30
        )
        assert answer.status_code == 200, answer.text

    # -- the Flask app ---------------------------------------------------------------------

    def _id_token(self, client_id: str, user: str, nonce: str | None) -> str:
        now = int(time.time())  # real time: MSAL checks iat/exp against its own clock
        claims = {
            "iss": f"{self.base}/{TENANT}/v2.0",
            "sub": "sub-" + user,
            "aud": client_id,
            "iat": now,
            "exp": now + 3600,
            "preferred_username": user,
            "email": user,
            "oid": "00000000-0000-0000-0000-0000000000aa",
            "tid": "00000000-0000-0000-0000-0000000000bb",
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)

    def _build_app(self) -> Flask:
        server_state = self
        app = Flask("test-oauth")

        def query_client(client_id: str) -> Client | None:
            return server_state.clients.get(client_id)

        def save_token(token: dict[str, Any], req: Any) -> None:
            with server_state.lock:
                server_state.tokens.append(
                    Token(
                        client_id=req.client.client_id,
                        user=req.user,
                        scope=token.get("scope", ""),
                        access_token=token["access_token"],
                        refresh_token=token.get("refresh_token", ""),
                        issued_at=server_state.now(),
                        expires_in=int(token["expires_in"]),
                    )
                )

        authorization = AuthorizationServer(app, query_client=query_client, save_token=save_token)

        def generate(
            grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True
        ):
            token = {
                "token_type": "Bearer",
                "access_token": "at-" + secrets.token_urlsafe(24),
                "expires_in": server_state.access_lifetime,
            }
            if scope:
                token["scope"] = scope
            if include_refresh_token:
                token["refresh_token"] = "rt-" + secrets.token_urlsafe(24)
            return token

        authorization.register_token_generator("default", generate)

        def openid_extension(grant: Any) -> None:
            # What Entra adds to every token answer MSAL reads: client_info (the account's
            # home id) and, for openid scopes, an ID token (with the request's nonce).
            def process(grant: Any, response: Any) -> Any:
                _, token, _ = response
                user = grant.request.user
                info = {"uid": "uid-" + user, "utid": "tenant-1"}
                token["client_info"] = (
                    base64.urlsafe_b64encode(json.dumps(info).encode()).decode().rstrip("=")
                )
                if "openid" in (token.get("scope") or "").split():
                    code = getattr(grant.request, "authorization_code", None)
                    token["id_token"] = server_state._id_token(
                        grant.request.client.client_id, user, code.nonce if code else None
                    )
                return token

            grant.register_hook("after_create_token_response", process)

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def save_authorization_code(self, code: str, req: Any) -> None:
                payload = req.payload
                with server_state.lock:
                    server_state.codes[code] = AuthCode(
                        code=code,
                        client_id=req.client.client_id,
                        redirect_uri=payload.redirect_uri,
                        scope=req.scope,
                        user=req.user,
                        nonce=payload.data.get("nonce"),
                        code_challenge=payload.data.get("code_challenge"),
                        code_challenge_method=payload.data.get("code_challenge_method"),
                        created=server_state.now(),
                    )

            def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
                item = server_state.codes.get(code)
                return item if item and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: AuthCode) -> None:
                server_state.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: AuthCode) -> str:
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation, as Entra does

            def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
                with server_state.lock:
                    for token in server_state.tokens:
                        if token.refresh_token and secrets.compare_digest(
                            token.refresh_token, refresh_token
                        ):
                            return None if token.revoked else token
                return None

            def authenticate_user(self, credential: Token) -> str:
                return credential.user

            def revoke_old_credential(self, credential: Token) -> None:
                credential.revoked = True

        class DeviceGrant(DeviceCodeGrant):
            def query_device_credential(self, device_code: str) -> DeviceCredential | None:
                return server_state.devices.get(device_code)

            def query_user_grant(self, user_code: str) -> tuple[str, bool] | None:
                return server_state.device_grants.get(user_code)

            def should_slow_down(self, credential: DeviceCredential) -> bool:
                return False

        class DeviceEndpoint(DeviceAuthorizationEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
            INTERVAL = 1

            def get_verification_uri(self) -> str:
                return f"{server_state.base}/device"

            def save_device_credential(self, client_id: str, scope: str, data: dict) -> None:
                server_state.devices[data["device_code"]] = DeviceCredential(
                    client_id=client_id, scope=scope, **data
                )

        class Revocation(RevocationEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
                with server_state.lock:
                    for token in server_state.tokens:
                        if token_string in (token.access_token, token.refresh_token):
                            return token
                return None

            def revoke_token(self, token: Token, req: Any) -> None:
                with server_state.lock:
                    token.revoked = True
                    server_state.revocations += 1

        authorization.register_grant(CodeGrant, [CodeChallenge(required=True), openid_extension])
        authorization.register_grant(RefreshGrant, [openid_extension])
        authorization.register_grant(DeviceGrant, [openid_extension])
        authorization.register_endpoint(DeviceEndpoint)
        authorization.register_endpoint(Revocation)

        def discovery() -> dict[str, Any]:
            base = server_state.base
            return {
                "issuer": f"{base}/{TENANT}/v2.0",
                "authorization_endpoint": f"{base}/{TENANT}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{TENANT}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/{TENANT}/oauth2/v2.0/devicecode",
                "revocation_endpoint": f"{base}/revoke",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
            }

        @app.get(f"/{TENANT}/v2.0/.well-known/openid-configuration")
        @app.get("/.well-known/openid-configuration")
        def openid_configuration():
            return discovery()

        @app.route(f"/{TENANT}/oauth2/v2.0/authorize", methods=["GET", "POST"])
        def authorize():
            if request.method == "GET":
                grant = authorization.get_consent_grant(end_user=USER)
                return (
                    f"<form method=post><p>{grant.client.client_id} asks for "
                    f"{grant.request.scope}</p><button name=confirm value=yes>Allow</button>"
                    "</form>"
                )
            grant_user = USER if request.form.get("confirm") == "yes" else None
            grant = authorization.get_consent_grant(end_user=grant_user)
            response = authorization.create_authorization_response(
                grant_user=grant_user, grant=grant
            )
            if request.args.get("response_mode") != "form_post" or response.status_code != 302:
                return response
            # OAuth 2.0 Form Post Response Mode: the answer as a self-submitting form.
            target = urlsplit(response.headers["Location"])
            inputs = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in parse_qsl(target.query)
            )
            action = html.escape(target._replace(query="").geturl())
            return (
                f'<form method="post" action="{action}">{inputs}</form>'
                "<script>document.forms[0].submit()</script>"
            )

        @app.post(f"/{TENANT}/oauth2/v2.0/token")
        def token():
            with server_state.lock:
                server_state.token_requests += 1
                fault = server_state.token_faults.pop(0) if server_state.token_faults else None
            if fault is not None:
                return fault()
            return authorization.create_token_response()

        @app.post(f"/{TENANT}/oauth2/v2.0/devicecode")
        def device_authorization():
            return authorization.create_endpoint_response("device_authorization")

        @app.post("/device")
        def device_verification():
            user_code = request.form["user_code"]
            if not any(d["user_code"] == user_code for d in server_state.devices.values()):
                return "unknown code", 400
            server_state.device_grants[user_code] = (USER, request.form.get("confirm") == "yes")
            return "Done: go back to your device."

        @app.post("/revoke")
        def revoke():
            return authorization.create_endpoint_response("revocation")

        return app


def write_ca(directory: Any) -> str:
    path = str(directory / "oauth-ca.pem")
    test_ca().cert_pem.write_to_path(path)
    return path


# ---- a client of this server: its settings ------------------------------------------------


def _sending_through(base: Settings, smtp: Server | None, provider: str) -> Settings:
    """``base`` sending through ``smtp`` over XOAUTH2 (the real host would be the provider's:
    the provider is named instead)."""
    if smtp is None:
        return base
    return replace(
        base,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_cafile=smtp.cafile,
        smtp_auth="oauth2",
        oauth_provider=provider,
    )


def ms_settings(
    tmp_path: Path, server: OAuthServer, smtp: Server | None = None, **extra: Any
) -> Settings:
    """Microsoft 365 sign-in at ``server`` (state in tmp_path/state); with ``smtp``, sending
    through it over XOAUTH2."""
    base = Settings(
        state_dir=tmp_path / "state",
        smtp_host="smtp.office365.com",
        oauth_client_id=MS_CLIENT,
        oauth_authority=server.ms_authority,
    )
    return replace(_sending_through(base, smtp, "microsoft"), **extra)


def google_settings(
    tmp_path: Path, server: OAuthServer, smtp: Server | None = None, **extra: Any
) -> Settings:
    """Google sign-in at ``server`` (a desktop client with its secret); with ``smtp``, sending
    through it over XOAUTH2."""
    base = Settings(
        state_dir=tmp_path / "state",
        smtp_host="smtp.gmail.com",
        oauth_client_id=GOOGLE_CLIENT,
        oauth_client_secret=GOOGLE_SECRET,
        oauth_authority=server.base,
    )
    return replace(_sending_through(base, smtp, "google"), **extra)


def ms_send_env(smtp: Server, server: OAuthServer, cafile: str) -> dict[str, str]:
    """The environment of a `newsletter send` through ``smtp`` signed in to Microsoft 365 at
    ``server``: on real-looking addresses (check refuses placeholder domains for a real
    send), trusting the test CA for the sign-in's HTTP."""
    return {
        "NEWSLETTER_SMTP_HOST": smtp.host,
        "NEWSLETTER_SMTP_PORT": str(smtp.port),
        "NEWSLETTER_SMTP_CAFILE": smtp.cafile or "",
        "NEWSLETTER_SMTP_AUTH": "oauth2",
        "NEWSLETTER_OAUTH_PROVIDER": "microsoft",
        "NEWSLETTER_OAUTH_CLIENT_ID": MS_CLIENT,
        "NEWSLETTER_OAUTH_AUTHORITY": server.ms_authority,
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
        "REQUESTS_CA_BUNDLE": cafile,
    }
