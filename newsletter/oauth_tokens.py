"""What the sign-in backends hand back (no tokens in any repr), shared by
:mod:`newsletter.oauth` and its backends without importing one another."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SignInError

Clock = Callable[[], float]
Echo = Callable[[str], None]
OpenBrowser = Callable[[str], Any]

# A sign-in service whose certificate does not verify: almost always a company proxy that
# inspects TLS with its own CA. requests (MSAL's and Authlib's HTTP) reads REQUESTS_CA_BUNDLE
# from the process environment only, so a line in .env does not reach it.
CA_HINT = (
    "if your network inspects TLS with its own CA, set REQUESTS_CA_BUNDLE to that CA's PEM "
    "file in the environment (not in .env); otherwise check NEWSLETTER_OAUTH_AUTHORITY"
)


@contextmanager
def network_errors(authority: str, hint: str) -> Iterator[None]:
    """requests' failures to reach the sign-in service ``authority``, as one line naming it.

    Only the exception's class is shown, never its text: requests quotes the URL, and a
    token request's URL or body may carry an authorisation code or a refresh token."""
    import requests  # MSAL's and Authlib's HTTP; loaded with them, not with oauth.py

    try:
        yield
    except requests.exceptions.SSLError:
        raise SignInError(
            f"the sign-in service {authority} has a certificate this computer does not trust",
            hint=CA_HINT,
        ) from None
    except requests.RequestException as error:
        raise SignInError(
            f"cannot reach the sign-in service {authority} ({type(error).__name__})", hint=hint
        ) from None


@dataclass(frozen=True)
class Grant:
    """An access token as a provider's library returned it."""

    username: str
    access_token: str = field(repr=False)
    expires_in: float  # seconds from now; inf when unknown


@dataclass(frozen=True)
class SignIn:
    """Who is signed in, for ``newsletter login --status`` (no token in it)."""

    provider: str
    username: str
    expires_at: float | None  # wall-clock epoch seconds of the access token; None: none yet
    path: Path | None  # where the tokens are stored
