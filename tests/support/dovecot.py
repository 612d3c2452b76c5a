"""A real, private Dovecot IMAP server on 127.0.0.1 for the feedback tests.

Started unprivileged (workers run as the ``dovecot``/``dovenull`` users even when the tests
run as root) from a temporary config: one user with a password, a Maildir, a plain listener
and an implicit-TLS listener with a trustme certificate. See shared/NOTES.md for why each
setting is there. Stopped by the pid in ``master.pid``, waiting until that pid is gone.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import trustme

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
HOST = "127.0.0.1"
USERNAME = "bulletin"
PASSWORD = "imap-Pa55word"
# The session's server (``running``) has a second account whose password is not ASCII, and
# accepts XOAUTH2 with one bearer token, checked at a local introspection endpoint.
UTF8_USER = "chair"
UTF8_PASSWORD = "Grüße-2026"
GOOD_TOKEN = "access-token-good"


def available() -> bool:
    # dovecot-core alone has the master binary but no IMAP service.
    return Path(DOVECOT).is_file() and Path("/usr/lib/dovecot/imap").is_file()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: the daemonised master's parent is the container's init, which may
    # reap it only seconds later.
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Dovecot:
    root: Path
    plain_port: int
    tls_port: int
    cafile: Path
    process_pid: int

    def client(self) -> imaplib.IMAP4:
        """A logged-in plain connection, for seeding and inspecting the mailbox."""
        imap = imaplib.IMAP4(HOST, self.plain_port, timeout=10)
        imap.login(USERNAME, PASSWORD)
        return imap

    def append(self, data: bytes, folder: str = "INBOX") -> None:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        imap = self.client()
        try:
            imap.create(folder)  # "already exists" is fine
            typ, detail = imap.append(folder, None, None, data)
            assert typ == "OK", detail
        finally:
            imap.logout()

    def uids(self, folder: str = "INBOX") -> list[int]:
        imap = self.client()
        try:
            typ, _ = imap.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            _, found = imap.uid("SEARCH", "ALL")
            return [int(u) for u in found[0].split()]
        finally:
            imap.logout()

    def clear(self) -> None:
        """Empty every folder (between tests), through IMAP so Dovecot's indexes stay right."""
        imap = self.client()
        try:
            _, folders = imap.list()
            # (flags) "delimiter" name: the name is quoted or not ("Trait&AOk-s" comes bare).
            names = [line.decode().split(") ", 1)[1].split(" ", 1)[1] for line in folders or []]
            names = [name.strip('"') for name in names if name.strip('"').upper() != "INBOX"]
            for name in sorted(names, key=len, reverse=True):  # children before parents
                typ, detail = imap.delete(f'"{name}"')
                assert typ == "OK", (name, detail)
            _, count = imap.select("INBOX")
            if int(count[0] or 0):
                imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                imap.expunge()
        finally:
            imap.logout()

    def stop(self) -> None:
        pid_file = self.root / "run" / "master.pid"
        pid = int(pid_file.read_text().strip()) if pid_file.is_file() else self.process_pid
        with contextlib.suppress(ProcessLookupError):
            # Dovecot's master waits ~2.5 s for its children on SIGTERM; the test mailbox is
            # thrown away, so kill its whole process group (it is a session leader) at once.
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.02)
        shutil.rmtree(self.root, ignore_errors=True)


def imap_env(server: Dovecot) -> dict[str, str]:
    """NEWSLETTER_IMAP_* for the test account of ``server`` over implicit TLS (its CA)."""
    return {
        "NEWSLETTER_IMAP_HOST": HOST,
        "NEWSLETTER_IMAP_PORT": str(server.tls_port),
        "NEWSLETTER_IMAP_SECURITY": "ssl",
        "NEWSLETTER_IMAP_CAFILE": str(server.cafile),
        "NEWSLETTER_IMAP_USERNAME": USERNAME,
        "NEWSLETTER_IMAP_PASSWORD": PASSWORD,
    }


def start(
    introspection_url: str = "", users: dict[str, str] | None = None, extra_config: str = ""
) -> Dovecot:
    """Start a server; with ``introspection_url`` it also accepts XOAUTH2, checking bearer
    tokens at that RFC 7662 token introspection endpoint (Dovecot's oauth2 passdb).
    ``users``: more accounts (name: password) beside USERNAME. ``extra_config``: lines
    appended to dovecot.conf (e.g. ``imap_capability`` for a server without MOVE)."""
    # Its own folder directly under the temp dir: Dovecot's workers (other users) must be able
    # to reach it, and pytest's tmp_path parents are private (0700).
    root = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
    (root / "run").mkdir()
    mail = root / "mail"
    mail.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    accounts = {USERNAME: PASSWORD, **(users or {})}
    (root / "passwd").write_text(
        "".join(f"{name}:{{PLAIN}}{secret}\n" for name, secret in accounts.items()),
        encoding="utf-8",
    )
    plain_port, tls_port = _free_port(), _free_port()
    oauth2 = ""
    if introspection_url:
        (root / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = {introspection_url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        oauth2 = (
            f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n  args = {root}/oauth2.conf\n}}"
        )
    (root / "dovecot.conf").write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
ssl = yes
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.pem
disable_plaintext_auth = no
auth_failure_delay = 0  # refuse a wrong password at once (default: after 2 s)
auth_mechanisms = plain login{" xoauth2" if introspection_url else ""}
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:{mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
  mechanisms = plain login
}}
{oauth2}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={mail}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {plain_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No growing wait after failed sign-ins from 127.0.0.1 (Dovecot's brute-force penalty):
  # the tests fail sign-ins on purpose, and the next one waited 4 s.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{extra_config}
"""
    )
    for path in (root, mail):
        shutil.chown(path, "dovecot", "dovecot")
    os.chmod(root, 0o755)
    for name in ("passwd", "server.pem", "oauth2.conf"):
        if not (root / name).exists():
            continue
        os.chmod(root / name, 0o644)
    # Output to a file, not a pipe: the daemon's children inherit it and would keep a pipe open.
    with (root / "start.log").open("wb") as out:
        process = subprocess.run(
            [DOVECOT, "-c", str(root / "dovecot.conf")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    if process.returncode != 0:
        raise RuntimeError(f"dovecot did not start: {(root / 'start.log').read_text()}")
    server = Dovecot(root, plain_port, tls_port, root / "ca.pem", 0)
    deadline = time.monotonic() + 15
    while True:
        try:
            server.client().logout()
            break
        except OSError:
            if time.monotonic() > deadline:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                server.stop()
                raise RuntimeError(f"dovecot is not answering: {log[-2000:]}") from None
            time.sleep(0.1)
    return server


class _Introspection(BaseHTTPRequestHandler):
    """RFC 7662: POST token=... → {"active": true, "username": ...} for GOOD_TOKEN only. It
    stands in for the identity provider's endpoint: only the IMAP side is under test."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        token = parse_qs(body).get("token", [""])[0]
        active = token == GOOD_TOKEN
        answer = {"active": True, "username": USERNAME} if active else {"active": False}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@contextlib.contextmanager
def running() -> Iterator[Dovecot]:
    """The test session's server: password sign-in for USERNAME and UTF8_USER, XOAUTH2 with
    GOOD_TOKEN (Dovecot's oauth2 passdb asks the introspection endpoint started here).
    Stopped, with its endpoint, on exit."""
    introspection = ThreadingHTTPServer((HOST, 0), _Introspection)
    thread = threading.Thread(target=introspection.serve_forever, daemon=True)
    thread.start()
    try:
        server = start(
            f"http://{HOST}:{introspection.server_port}/introspect",
            users={UTF8_USER: UTF8_PASSWORD},
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        introspection.shutdown()
        thread.join()
