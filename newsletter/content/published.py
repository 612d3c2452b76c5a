"""Is each hosted picture really online? One HTTP HEAD per picture, with a short timeout.

With ``NEWSLETTER_IMAGES=hosted`` every email points at ``NEWSLETTER_ARCHIVE_URL/assets/…``:
a picture not yet published there shows as a broken image in every member's inbox, and
nothing can fix a sent email. A real send refuses until each one answers 200 with the right
type; ``check`` and ``send --dry-run`` list the missing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .images import PreparedImage

HEAD_TIMEOUT = 5.0  # seconds per picture: a published file answers at once

# (url, timeout) -> (HTTP status, Content-Type); status 0 when no answer came at all.
HeadFunction = Callable[[str, float], tuple[int, str]]


def http_head(url: str, timeout: float) -> tuple[int, str]:
    """HEAD ``url`` (certificates verified, redirects followed); a server that does not
    allow HEAD (405, 501) is asked with a GET whose body is never read."""
    status, content_type = _request(url, "HEAD", timeout)
    if status in (405, 501):
        status, content_type = _request(url, "GET", timeout)
    return status, content_type


def _request(url: str, method: str, timeout: float) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, method=method, headers={"User-Agent": "newsletter (image check)"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, OSError, ValueError):
        return 0, ""


@dataclass(frozen=True)
class Offline:
    url: str
    image: PreparedImage
    why: str  # "HTTP 404", "no answer", "served as text/html"

    def line(self) -> str:
        return f"{self.image.source.name} is not online at {self.url} ({self.why})"


def not_online(
    pictures: Iterable[tuple[str, PreparedImage]],
    head: HeadFunction = http_head,
    timeout: float = HEAD_TIMEOUT,
) -> list[Offline]:
    """The (url, image) pairs that the web server does not serve as that image type."""
    missing: list[Offline] = []
    for url, image in pictures:
        status, content_type = head(url, timeout)
        served = content_type.split(";")[0].strip().lower()
        if status == 0:
            missing.append(Offline(url, image, "no answer"))
        elif status != 200:
            missing.append(Offline(url, image, f"HTTP {status}"))
        elif served != image.mime:
            missing.append(Offline(url, image, f"served as {served or 'no type'}"))
    return missing


PUBLISH_HINT = (
    "publish the archive first: run 'newsletter archive' and upload the folder, "
    "assets/ included, to NEWSLETTER_ARCHIVE_URL"
)
