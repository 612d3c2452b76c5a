"""What the sign-in backends hand back (no tokens in any repr), shared by
:mod:`newsletter.signin.oauth` and its backends without importing one another."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.errors import SignInError

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


# The sign-in service was reached but is having trouble (5xx, a timeout): nothing is wrong
# with the settings or the stored sign-in, which is kept.
BUSY_HINT = (
    "the provider's sign-in service is having trouble: try again in a few minutes "
    "(you stay signed in); if it persists, check the network"
)


def service_trouble(authority: str, status: object) -> SignInError:
    """The sign-in service answered an HTTP error status (e.g. 503) instead of a token."""
    return SignInError(f"the sign-in service {authority} answered HTTP {status}", hint=BUSY_HINT)


def not_a_token_answer(authority: str) -> SignInError:
    """The token endpoint answered something that is not JSON: a web page (a hotel or
    company network's sign-in page, a proxy's error page) in place of the provider's."""
    return SignInError(
        f"the sign-in service {authority} answered with a web page, not a token",
        hint="a network sign-in page or proxy may be in the way: open a web page in your "
        "browser, sign in to the network if asked, then try again",
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
    except requests.exceptions.Timeout:
        raise SignInError(
            f"the sign-in service {authority} did not answer in time", hint=BUSY_HINT
        ) from None
    except requests.HTTPError as error:  # reached, but it answered 5xx (or 4xx without JSON)
        status = error.response.status_code if error.response is not None else "an error"
        raise service_trouble(authority, status) from None
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
