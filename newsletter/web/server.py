"""``newsletter preview``: a local page showing the issue as members will get it.

One page on 127.0.0.1 shows the inbox line (From, Subject, preheader), the email at desktop
width and at 375 px mobile width side by side, and the plain-text part. The page polls
``/version`` every 500 ms; each poll compares the modification times of the issue file and
of every file under the templates folder with the last render, and re-renders only when one
changed, so the page reloads itself moments after a save. A render error replaces the email
on the page (and is printed once in the terminal) and the server keeps running until the
file is fixed.

Routes: ``/`` the page, ``/email.html`` the final email HTML (what the frames show),
``/email.txt`` the plain-text part, ``/version`` a token that changes on every re-render.
"""

from __future__ import annotations

import html
import http.server
import itertools
import secrets
import signal
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..common.config import Settings
from ..common.errors import NewsletterError
from ..common.limits import GMAIL_CLIP_BYTES, GMAIL_CLIP_KB
from ..content.images import ASSETS, PreparedImage

HOST = "127.0.0.1"  # never anything else: the preview is for this machine only
POLL_MS = 500
DESKTOP_FRAME_PX = 640  # the email is 600 px wide; the rest shows its background
MOBILE_FRAME_PX = 375  # an iPhone-sized viewport; below MJML's 480 px breakpoint

Fingerprint = tuple[tuple[str, int, int], ...]


def _to_line(member: dict[str, str] | None) -> str:
    """Who the preview is personalised as: the chair must not take "Member, …" for a bug."""
    if member is None:
        return "a member with no known name (no readable members' list: NEWSLETTER_RECIPIENTS)"
    name = member.get("name", "")
    return f"{name} <{member['email']}>" if name else member["email"]


@dataclass(frozen=True)
class Snapshot:
    """One render (or one failure to render) of the issue, with its version token."""

    version: str
    rendered_at: str
    subject: str = ""
    html: str = ""
    text: str = ""
    title: str = ""
    preheader: str = ""
    sender: str = ""
    to: str = ""  # who the preview is personalised as
    date: str = ""
    source: str = ""  # the issue file, as given
    error: str = ""  # one line, "file:line: message (hint)", when the render failed
    # Local pictures the email shows from assets/, by prepared file name.
    assets: dict[str, PreparedImage] = field(default_factory=dict)


class Preview:
    """The watched issue: re-rendered lazily, when a watched file's mtime or size changed.

    Shared by the request threads of a ThreadingHTTPServer, hence the lock: two polls
    arriving together must not both re-render, nor echo the same error twice.
    """

    def __init__(
        self,
        settings: Settings,
        path: Path,
        echo: Callable[[str], None],
        member: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.path = path
        self.echo = echo
        self.member = member  # personalised as this member, like a test send; None: anonymous
        from .preview import preview_unsubscribe

        self.unsubscribe = preview_unsubscribe(settings)  # the footer's link, as a test copy's
        self._lock = threading.Lock()
        # A per-process prefix: a page left open across a restart of the server reloads too.
        self._boot = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._fingerprint: Fingerprint | None = None
        self._snapshot: Snapshot | None = None
        self._last_error = ""
        self._pictures: list[Path] = []  # local picture files the issue names (even missing)

    def current(self) -> Snapshot:
        with self._lock:
            fingerprint = self._watch()
            if self._snapshot is None or fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                self._snapshot = self._render()
            return self._snapshot

    def _watch(self) -> Fingerprint:
        """(path, mtime_ns, size) of the issue, its pictures and every template file."""
        files = [self.path, *self._pictures]
        templates = self.settings.templates_dir
        if templates.is_dir():
            files += sorted(
                p
                for p in templates.rglob("*")
                # Editors' swap and backup files change while typing; they are not templates.
                if p.is_file() and not p.name.startswith((".", "#")) and not p.name.endswith("~")
            )
        out = []
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                out.append((str(file), -1, -1))  # gone (mid-save or deleted): render reports it
            else:
                out.append((str(file), stat.st_mtime_ns, stat.st_size))
        return tuple(out)

    def _render(self) -> Snapshot:
        from .preview import personalised, render_path  # heavy libraries load on first use

        version = f"{self._boot}-{next(self._counter)}"
        rendered_at = time.strftime("%H:%M:%S")
        try:
            rendered = render_path(self.settings, self.path, strict=False)
            if rendered.pictures is not None:
                # Watch every picture the issue names: saving (or adding) one reloads.
                self._pictures = list(rendered.pictures.watched)
                rendered.pictures.require()
            subject, email_html, text = personalised(rendered, self.member, self.unsubscribe)
        except NewsletterError as error:
            return self._failed(version, rendered_at, str(error))
        except Exception as error:  # noqa: BLE001 - a half-edited template must not kill the server
            return self._failed(version, rendered_at, f"{type(error).__name__}: {error}")
        if self._last_error:
            self.echo(f"{self.path.name} renders again.")
            self._last_error = ""
        org = rendered.org
        return Snapshot(
            version=version,
            rendered_at=rendered_at,
            subject=subject,
            html=email_html,
            text=text,
            title=rendered.issue.title,
            preheader=rendered.issue.preheader,
            sender=self.settings.from_ or f"{org.name} <{org.email}>",
            to=_to_line(self.member),
            date=f"{rendered.issue.date.day} {rendered.issue.date:%B %Y}",
            source=str(self.path),
            assets={i.name: i for i in rendered.pictures.prepared} if rendered.pictures else {},
        )

    def _failed(self, version: str, rendered_at: str, message: str) -> Snapshot:
        message = " ".join(message.split())  # one line, whatever the library said
        # Once per distinct error: the page polls twice a second, the terminal must not scroll.
        if message != self._last_error:
            self.echo(f"error: {message}")
            self._last_error = message
        return Snapshot(version=version, rendered_at=rendered_at, error=message)


def serve(
    settings: Settings,
    slug: str | None,
    *,
    port: int = 0,
    open_browser: bool = True,
    echo: Callable[[str], None] = print,
    ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    as_address: str | None = None,
) -> None:
    """Serve the preview until Ctrl-C (or until ``stop`` is set); then return normally.

    ``slug`` None means the newest issue by front-matter date; the page shows it
    personalised as the first member of the list, or as ``as_address``. ``ready(url)`` is
    called once the server listens; ``stop`` lets a caller in another thread end it (tests).
    """
    from .preview import find, preview_member

    path = find(settings, slug, lambda error: echo(f"note: skipped: {error}"))
    member = preview_member(settings, as_address)
    preview = Preview(settings, path, echo, member)
    try:
        httpd = http.server.ThreadingHTTPServer((HOST, port), _handler(preview))
    except OSError as error:
        raise NewsletterError(
            f"cannot listen on {HOST}:{port}: {error.strerror or error}",
            hint="choose another port with --port, or --port 0 for any free one",
        ) from None
    url = f"http://{HOST}:{httpd.server_address[1]}/"
    stop = stop if stop is not None else threading.Event()
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="preview", daemon=True
    )
    try:
        preview.current()  # render now: a broken issue is reported at once, not on first load
        thread.start()
        echo(f"Previewing {path.stem} at {url} — Ctrl-C to stop")
        if ready is not None:
            ready(url)
        if open_browser:
            _open(url, echo)
        # Wait in short slices: Ctrl-C reaches the main thread as KeyboardInterrupt here.
        while not stop.wait(0.25):
            pass
    except KeyboardInterrupt:
        echo("Stopped.")
    finally:
        with _sigint_ignored():  # a second Ctrl-C must not leave a traceback mid-shutdown
            if thread.is_alive():
                httpd.shutdown()
            httpd.server_close()


class _sigint_ignored:
    """Ignore SIGINT for a moment (main thread only; elsewhere signals are not ours)."""

    def __enter__(self) -> None:
        self._installed = False
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            except (ValueError, OSError):  # an embedding host that owns its signals
                return
            self._installed = True

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            # None: a handler not set from Python (possible on Windows); restore the default.
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)


def _open(url: str, echo: Callable[[str], None]) -> None:
    try:
        opened = webbrowser.open(url)
    except Exception:  # noqa: BLE001 - a broken browser setup must not stop the preview
        opened = False
    if not opened:
        echo(f"Could not open a browser: open {url} yourself.")


# ---- HTTP ----------------------------------------------------------------------------------


def _handler(preview: Preview) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "newsletter-preview"

        def do_GET(self) -> None:  # noqa: N802 - the http.server naming
            self._respond(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._respond(send_body=False)

        def _respond(self, *, send_body: bool) -> None:
            if not self._host_allowed():
                self._send(403, "text/plain", "Forbidden: unexpected Host header\n", send_body)
                return
            route = self.path.split("?", 1)[0]
            if route.startswith(f"/{ASSETS}/"):
                image = preview.current().assets.get(route[len(ASSETS) + 2 :])
                if image is None:
                    self._send(404, "text/plain", "Not found\n", send_body)
                else:
                    self._send(200, image.mime, image.data, send_body)
                return
            if route not in ("/", "/index.html", "/email.html", "/email.txt", "/version"):
                self._send(404, "text/plain", "Not found\n", send_body)
                return
            snapshot = preview.current()
            if route == "/version":
                self._send(200, "text/plain", snapshot.version, send_body)
            elif route in ("/", "/index.html"):
                self._send(200, "text/html", page(snapshot), send_body)
            elif snapshot.error:
                self._send(503, "text/plain", f"error: {snapshot.error}\n", send_body)
            elif route == "/email.html":
                self._send(200, "text/html", snapshot.html, send_body)
            else:
                self._send(200, "text/plain", snapshot.text, send_body)

        def _host_allowed(self) -> bool:
            # Against DNS rebinding: a web page that points its own name at 127.0.0.1 must
            # not be able to read the preview.
            port = self.server.server_address[1]
            host = (self.headers.get("Host") or "").lower()
            return host in {f"127.0.0.1:{port}", f"localhost:{port}"}

        def _send(self, status: int, kind: str, body: str | bytes, send_body: bool) -> None:
            data = body if isinstance(body, bytes) else body.encode("utf-8")
            self.send_response(status)
            text = not isinstance(body, bytes)
            self.send_header("Content-Type", f"{kind}; charset=utf-8" if text else kind)
            self.send_header("Content-Length", str(len(data)))
            # Every response reflects the files right now: never let the browser cache one.
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if send_body:
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # the page polls twice a second: an access log would drown the terminal

    return Handler


# ---- the page ------------------------------------------------------------------------------

_STYLE = f"""
*, *::before, *::after {{ box-sizing: border-box; }}
body {{ margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Arial, sans-serif;
  color: #1f2933; background: #f4f5f7; }}
header, main {{ padding: 0 16px; max-width: 1160px; margin: 0 auto; }}
h1 {{ font-size: 1.35rem; margin: 16px 0 4px; }}
h2 {{ font-size: 1.05rem; margin: 0 0 8px; }}
.meta {{ margin: 0 0 12px; color: #52606d; font-size: 0.9rem; }}
.inbox {{ display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 0;
  padding: 12px 16px; background: #fff; border: 1px solid #d5dbe1; border-radius: 6px; }}
.inbox dt {{ font-weight: bold; color: #52606d; }}
.inbox dd {{ margin: 0; overflow-wrap: anywhere; }}
.frames {{ display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; margin: 20px 0; }}
.frame {{ max-width: 100%; }}
/* The desktop frame keeps its width on a narrow window and scrolls sideways inside its
   box instead, so the page itself never overflows and the email still shows at 600 px. */
.scroller {{ max-width: 100%; overflow-x: auto; }}
iframe {{ display: block; height: 80vh; min-height: 480px; border: 1px solid #c5ccd3;
  background: #fff; }}
iframe.desktop {{ width: {DESKTOP_FRAME_PX + 2}px; }}
iframe.mobile {{ width: {MOBILE_FRAME_PX + 2}px; }}
/* The plain-text part as a mail client shows it: lines of up to 78 columns, never wrapped
   again by the page (a longer line, a long link, scrolls sideways inside the box). */
pre {{ white-space: pre; overflow-x: auto; background: #fff; padding: 16px;
  border: 1px solid #d5dbe1; border-radius: 6px; width: calc(78ch + 34px); max-width: 100%;
  font-size: 0.9rem; }}
.error {{ margin: 20px 0; padding: 16px; background: #fff4f2; border: 2px solid #b42318;
  border-radius: 6px; color: #7a1a12; }}
.error code {{ display: block; white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: 1rem; color: #1f2933; }}
#status {{ font-size: 0.85rem; color: #52606d; }}
"""

# Poll /version; reload when it changes. A failed poll (server stopped) just says so.
_SCRIPT = """
(function () {
  var version = document.documentElement.dataset.version;
  var every = POLL_MS;
  var status = document.getElementById("status");
  function poll() {
    fetch("/version", {cache: "no-store"}).then(function (response) {
      return response.ok ? response.text() : Promise.reject(response.status);
    }).then(function (current) {
      if (current.trim() !== version) { location.reload(); return; }
      status.textContent = "Watching for changes.";
      setTimeout(poll, every);
    }, function () {
      status.textContent = "The preview server is not answering (stopped?).";
      setTimeout(poll, every * 4);
    });
  }
  setTimeout(poll, every);
})();
""".replace("POLL_MS", str(POLL_MS))


def page(snapshot: Snapshot) -> str:
    """The preview page for one snapshot: everything escaped, nothing fetched from the web."""
    e = html.escape
    if snapshot.error:
        title = "Render error"
        body = f"""
<section class="error" role="alert" aria-labelledby="error-heading">
  <h2 id="error-heading">The issue does not render</h2>
  <code>{e(snapshot.error)}</code>
  <p>Fix the file and save it: this page reloads by itself.</p>
</section>"""
    else:
        title = snapshot.title
        size = len(snapshot.html.encode("utf-8"))
        over = size > GMAIL_CLIP_BYTES
        clip = f" — over Gmail's {GMAIL_CLIP_KB} KB limit: Gmail will clip it" if over else ""
        version = e(snapshot.version, quote=True)
        body = f"""
<section aria-labelledby="inbox-heading">
  <h2 id="inbox-heading">Inbox line</h2>
  <dl class="inbox">
    <dt>From</dt><dd class="from">{e(snapshot.sender)}</dd>
    <dt>To</dt><dd class="to">{e(snapshot.to)}</dd>
    <dt>Subject</dt><dd class="subject">{e(snapshot.subject)}</dd>
    <dt>Preheader</dt><dd class="preheader">{e(snapshot.preheader)}</dd>
  </dl>
  <p class="meta">{e(snapshot.source)}, dated {e(snapshot.date)} ·
    HTML {size / 1024:.1f} KB{clip}</p>
</section>
<div class="frames">
  <section class="frame" aria-labelledby="desktop-heading">
    <h2 id="desktop-heading">Desktop ({DESKTOP_FRAME_PX} px)</h2>
    <div class="scroller">
      <iframe class="desktop" src="/email.html?v={version}"
        title="The email at desktop width ({DESKTOP_FRAME_PX} px)"
        sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"></iframe>
    </div>
  </section>
  <section class="frame" aria-labelledby="mobile-heading">
    <h2 id="mobile-heading">Mobile ({MOBILE_FRAME_PX} px)</h2>
    <div class="scroller">
      <iframe class="mobile" src="/email.html?v={version}"
        title="The email at mobile width ({MOBILE_FRAME_PX} px)"
        sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"></iframe>
    </div>
  </section>
</div>
<section aria-labelledby="text-heading">
  <h2 id="text-heading">Plain-text version</h2>
  <pre class="text">{e(snapshot.text)}</pre>
</section>"""
    # The email frames get no allow-scripts: an email runs no script in any mail client.
    return f"""<!doctype html>
<html lang="en" data-version="{e(snapshot.version, quote=True)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview: {e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
  <h1>Preview: {e(title)}</h1>
  <p class="meta">Rendered at {e(snapshot.rendered_at)}.
    <span id="status" role="status">Watching for changes.</span></p>
</header>
<main>{body}
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""
