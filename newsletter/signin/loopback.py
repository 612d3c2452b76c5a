"""The browser's way back to us: a one-shot HTTP listener on 127.0.0.1 (RFC 8252 §7.3).

The provider redirects the browser to ``http://localhost:PORT/?code=…&state=…`` after the
user signs in; this module receives that one request and hands its query parameters to the
OAuth library, which checks ``state`` and redeems the code with the PKCE verifier. Plain
HTTP is what RFC 8252 prescribes for loopback redirects: the request never leaves the machine.
"""

from __future__ import annotations

import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from ..common.errors import SignInError

DONE_PAGE = (
    "<!doctype html><meta charset=utf-8><title>newsletter</title>"
    "<p>{message} You can close this tab and go back to the terminal.</p>"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # A connection that sends nothing (a browser's spare, pre-opened one) is dropped after
    # this many seconds instead of holding its thread.
    timeout = 30

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(dict(parse_qsl(urlsplit(self.path).query)))

    def do_POST(self) -> None:  # noqa: N802
        # response_mode=form_post (RFC 9700 §4.3.1): the code arrives in the body, so it
        # stays out of the browser's history and of any Referer header.
        try:
            length = max(0, min(int(self.headers.get("Content-Length") or 0), 65536))
        except ValueError:
            self.send_error(400)
            return
        self._answer(dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace"))))

    def _answer(self, params: dict[str, str]) -> None:
        if "code" not in params and "error" not in params:
            # favicon.ico, a browser's pre-connect: not the redirect we wait for.
            self.send_error(404)
            return
        expected = self.server.state
        if expected and not hmac.compare_digest(params.get("state", ""), expected):
            # Not the answer to this sign-in (another local program, a web page probing
            # ports): ignored, so it can neither end the wait nor refuse the sign-in. The
            # provider always sends the state back, with a code and with an error alike.
            self.send_error(400, "not the sign-in newsletter is waiting for")
            return
        message = "Sign-in refused." if "error" in params else "Signed in."
        body = DONE_PAGE.format(message=message).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.deliver(params)

    def log_message(self, format: str, *args: object) -> None:
        # The request line holds the authorisation code: never log it.
        pass


class _Server(ThreadingHTTPServer):
    # One thread per connection: browsers open spare connections and leave them idle, and
    # a one-at-a-time server would keep the real redirect waiting behind one of them.
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.params: dict[str, str] | None = None
        self.state = ""  # the sign-in's state, once known: only its answer counts
        self.arrived = threading.Event()
        self._lock = threading.Lock()

    def deliver(self, params: dict[str, str]) -> None:
        with self._lock:  # handlers run in parallel now: the first answer wins
            if self.params is None:
                self.params = params
                self.arrived.set()


class LoopbackReceiver:
    """``with LoopbackReceiver("localhost") as rx: open(url(rx.redirect_uri)); rx.wait(300)``.

    ``host_name`` is the name in the redirect URI: Microsoft Entra registers
    ``http://localhost`` (any port); Google desktop clients accept ``127.0.0.1``. The
    listener itself is always bound to 127.0.0.1 only.
    """

    def __init__(self, host_name: str = "127.0.0.1") -> None:
        self._server = _Server()
        self.port = self._server.server_address[1]
        self.redirect_uri = f"http://{host_name}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def expect_state(self, state: str) -> None:
        """Count only the redirect that carries ``state`` (the one in the sign-in URL)."""
        self._server.state = state

    def wait(self, timeout: float) -> dict[str, str]:
        """The redirect's query parameters; SignInError if none came within ``timeout`` s."""
        if not self._server.arrived.wait(timeout):
            raise SignInError(
                f"no sign-in within {timeout:g}s",
                hint="run newsletter login again, or newsletter login --device-code",
            )
        assert self._server.params is not None
        return self._server.params
