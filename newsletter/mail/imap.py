"""The sending mailbox over IMAP (stdlib imaplib): connect, sign in, read, move — never delete.

imaplib rather than imap-tools: we need six commands (SELECT/EXAMINE, UID SEARCH, UID FETCH
BODY.PEEK[], UID MOVE, or UID COPY + UID STORE + UID EXPUNGE) and exact control over the
last three, which is where "never deletes" is decided; a wrapper would hide that.

Sign-in is pluggable: an :data:`Authenticator` is any callable that signs an open
connection in. :func:`password_login` now; :func:`xoauth2_login` takes a callable returning
``(username, access_token)``, so OAuth 2.0 sign-in plugs in without touching this module.

"Never deletes": messages are fetched with ``BODY.PEEK[]`` (not even the \\Seen flag
changes). ``--move-to`` uses ``UID MOVE`` (RFC 6851) when the server has it; otherwise,
only with UIDPLUS (RFC 4315), ``UID COPY`` then ``UID STORE +FLAGS (\\Deleted)`` then
``UID EXPUNGE`` of exactly those UIDs, after the copy succeeded (COPY is all-or-nothing).
A plain EXPUNGE is never sent, since it would also remove messages someone else marked
\\Deleted; without MOVE or UIDPLUS, moving is refused.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import imaplib
import re
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..common.config import LOCAL_HOSTS, Settings
from ..common.errors import ConfigError, MailboxError

Authenticator = Callable[[imaplib.IMAP4], None]
TokenProvider = Callable[[], tuple[str, str]]  # () -> (username, access token)

# Hosted mailboxes whose IMAP host follows from the SMTP host.
_DERIVED_HOSTS = {
    "office365.com": "outlook.office365.com",
    "outlook.com": "outlook.office365.com",
    "gmail.com": "imap.gmail.com",
    "googlemail.com": "imap.gmail.com",
}
DEFAULT_IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}


@dataclass(frozen=True)
class ImapParams:
    host: str
    port: int
    security: str
    username: str
    folder: str
    cafile: str
    timeout: float

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"


def derived_host(smtp_host: str) -> str:
    host = smtp_host.lower().rstrip(".")
    for domain, imap_host in _DERIVED_HOSTS.items():
        if host == domain or host.endswith("." + domain):
            return imap_host
    return ""


def imap_params(settings: Settings) -> ImapParams:
    """The IMAP settings, with the defaults derived from SMTP; refuses unsafe ones."""
    host = settings.imap_host or derived_host(settings.smtp_host)
    if not host:
        raise ConfigError(
            "no IMAP server configured",
            setting="NEWSLETTER_IMAP_HOST",
            hint="set it to the sending mailbox's IMAP server (derived only for Microsoft 365 "
            "and Gmail)",
        )
    if settings.imap_security == "none" and host not in LOCAL_HOSTS:
        raise ConfigError(
            f"refusing an unencrypted IMAP connection to {host}",
            setting="NEWSLETTER_IMAP_SECURITY",
            hint="use ssl (port 993) or starttls (143); none is only for localhost",
        )
    return ImapParams(
        host=host,
        port=settings.imap_port or DEFAULT_IMAP_PORTS[settings.imap_security],
        security=settings.imap_security,
        username=settings.imap_username or settings.smtp_username,
        folder=_folder(settings.imap_folder),
        cafile=settings.imap_cafile or settings.smtp_cafile,
        timeout=settings.smtp_timeout,
    )


def _folder(name: str) -> str:
    """The folder as configured; INBOX in any case is INBOX (RFC 3501 5.1), so that "Inbox"
    and "INBOX" are one folder to the memory of what was processed, not two."""
    name = name.strip()
    return "INBOX" if not name or name.upper() == "INBOX" else name


def _keep_secrets(login: Authenticator, secret: str, sasl: str) -> None:
    """What ``login`` sends that must never be shown: the secret as itself, as LOGIN quotes
    it, and its SASL answer in base64. ``connect`` takes them out of server replies it
    quotes in errors (a server that quotes the command it refuses would show them)."""
    quoted = secret.replace("\\", "\\\\").replace('"', '\\"')
    encoded = base64.b64encode(sasl.encode()).decode("ascii")
    forms = [encoded, quoted, secret]
    # imaplib words some errors with repr() of the server's bytes (\\, \' and \xNN).
    forms += [repr(form.encode())[2:-1] for form in (quoted, secret)]
    forms += [form.replace("'", "\\'") for form in forms[-2:]]
    login.secrets = tuple(sorted(set(forms), key=len, reverse=True))  # type: ignore[attr-defined]


def _hide_secrets(text: str, authenticate: Authenticator) -> str:
    for secret in getattr(authenticate, "secrets", ()):
        if secret:
            text = text.replace(secret, "***")
    return text


def password_login(username: str, password: str) -> Authenticator:
    """LOGIN with a password (only ever sent over TLS, or to localhost)."""

    def login(conn: imaplib.IMAP4) -> None:
        _keep_secrets(login, password, f"\0{username}\0{password}")
        if f"{username}{password}".isascii():
            conn.login(username, password)
        else:  # imaplib's LOGIN is ASCII only; RFC 4616 PLAIN carries UTF-8
            conn.authenticate("PLAIN", lambda _: f"\0{username}\0{password}".encode())

    return login


def xoauth2_login(tokens: TokenProvider) -> Authenticator:
    """AUTHENTICATE XOAUTH2 with a fresh ``(username, access_token)`` from ``tokens``."""

    def login(conn: imaplib.IMAP4) -> None:
        username, token = tokens()
        raw = f"user={username}\x01auth=Bearer {token}\x01\x01".encode()
        _keep_secrets(login, token, raw.decode())
        sent = False

        def respond(_challenge: bytes) -> bytes:
            # On a bad token the server sends a JSON error as a challenge; the answer to
            # that must be empty, then it fails the command.
            nonlocal sent
            if sent:
                return b""
            sent = True
            return raw

        conn.authenticate("XOAUTH2", respond)

    login.hint = "the access token was refused: sign in again"  # type: ignore[attr-defined]
    return login


def authenticator_for(settings: Settings, params: ImapParams) -> Authenticator:
    """The sign-in the settings ask for: XOAUTH2 with the SMTP sign-in's tokens when SMTP
    signs in with OAuth 2.0 (same mailbox, same tokens; its scopes include IMAP) and no IMAP
    password is set; otherwise a password (the IMAP one, else the SMTP one)."""
    if settings.auth_mode == "oauth2" and not settings.imap_password:
        from ..signin.oauth import token_source

        source = token_source(settings)  # SignInRequired (one line) if nobody signed in
        username = settings.imap_username or source.username
        return xoauth2_login(lambda: (username, source()))
    password = settings.imap_password or settings.smtp_password
    if not params.username or not password:
        raise ConfigError(
            "no IMAP username or password",
            setting="NEWSLETTER_IMAP_USERNAME"
            if not params.username
            else "NEWSLETTER_IMAP_PASSWORD",
            hint="set NEWSLETTER_IMAP_USERNAME and NEWSLETTER_IMAP_PASSWORD "
            "(default: the SMTP ones)",
        )
    return password_login(params.username, password)


def _quote(folder: str) -> str:
    """A folder name as IMAP wants it: quoted, in IMAP's modified UTF-7 (RFC 3501 5.1.3),
    so that "Traités" or "Gelöschte Elemente" (and "R&D") name the folder the mail client
    shows, instead of being refused."""
    return '"' + _modified_utf7(folder).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    import base64

    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


# What to do after the connection was lost. While reading, nothing has been written yet
# (feedback_run replaces this hint when it saved what was read before); when moving, both
# the suppression list and the feedback memory are written and the next run moves the rest.
_AGAIN = "nothing was changed; run newsletter feedback again"
_MOVE_AGAIN = "the suppressions are saved; run newsletter feedback --move-to again to move the rest"


def _from_modified_utf7(name: str) -> str:
    """A folder name as the server lists it ("Trait&AOk-s") → as people read it."""
    import base64

    def decode(match: re.Match[str]) -> str:
        chunk = match.group(1)
        if not chunk:
            return "&"
        raw = chunk.replace(",", "/")
        try:
            return base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            return match.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", decode, name)


def _uid_set(uids: Iterable[int]) -> str:
    return ",".join(str(u) for u in sorted(uids))


class Mailbox:
    """One signed-in IMAP connection."""

    def __init__(self, conn: imaplib.IMAP4, params: ImapParams) -> None:
        self._conn = conn
        self.params = params
        self.folder = ""

    def _fail(self, message: str, hint: str | None = None) -> MailboxError:
        return MailboxError(message, host=self.params.host, port=self.params.port, hint=hint)

    @contextlib.contextmanager
    def _talking(self, doing: str, hint: str) -> Iterator[None]:
        """A connection lost mid-run (the server's BYE, a reset, a timeout, an answer
        imaplib cannot read) as one line naming the server, the folder and what to do."""
        try:
            yield
        except (imaplib.IMAP4.error, OSError) as error:
            folder = f" in folder {self.folder!r}" if self.folder else ""
            reason = _text(str(error)) or type(error).__name__
            raise self._fail(f"connection lost while {doing}{folder}: {reason}", hint) from None

    @property
    def capabilities(self) -> set[str]:
        return {c.upper() for c in self._conn.capabilities}

    def open_folder(self, folder: str, *, readonly: bool) -> int:
        """SELECT (or EXAMINE, read-only) the folder; its UIDVALIDITY."""
        with self._talking(f"opening folder {folder!r}", _AGAIN):
            typ, detail = self._conn.select(_quote(folder), readonly=readonly)
        if typ != "OK":
            names = self.folder_names()
            listing = f"; this mailbox has: {', '.join(names[:15])}" if names else ""
            raise self._fail(
                f"cannot open folder {folder!r}: {_text(detail)}",
                hint=f"check NEWSLETTER_IMAP_FOLDER{listing}",
            )
        self.folder = folder
        _, values = self._conn.response("UIDVALIDITY")
        return int(values[0]) if values and values[0] else 0

    def folder_names(self) -> list[str]:
        """The folders as the mail client shows them (for an error naming a wrong one)."""
        try:
            typ, lines = self._conn.list()
        except (imaplib.IMAP4.error, OSError):
            return []
        names = []
        for line in lines or [] if typ == "OK" else []:
            if not isinstance(line, bytes):
                continue
            found = re.search(rb'(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$', line)
            if found:
                raw = found.group(1) if found.group(1) is not None else found.group(2)
                names.append(_from_modified_utf7(raw.decode("ascii", "replace")))
        return names

    def uids(self, since: dt.date | None = None) -> list[int]:
        criteria = ["SINCE", since.strftime("%d-%b-%Y")] if since else ["ALL"]
        with self._talking("searching", _AGAIN):
            typ, found = self._conn.uid("SEARCH", *criteria)
        if typ != "OK":
            raise self._fail(f"search failed: {_text(found)}")
        return sorted(int(u) for u in (found[0] or b"").split())

    def search_subject(self, text: str) -> list[int]:
        """UIDs of the open folder whose Subject contains ``text`` (ASCII), e.g. a token."""
        with self._talking("searching", _AGAIN):
            typ, found = self._conn.uid("SEARCH", "SUBJECT", f'"{text}"')
        if typ != "OK":
            raise self._fail(f"search failed: {_text(found)}")
        return sorted(int(u) for u in (found[0] or b"").split())

    def fetch(self, uid: int) -> bytes | None:
        """The whole message, without setting \\Seen; None if it vanished meanwhile, or if
        the server will not give this one message (Exchange Online answers ``NO`` for a
        damaged item): one such message must not stop every run at the same place."""
        with self._talking(f"reading message UID {uid}", _AGAIN):
            typ, data = self._conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if typ != "OK":
            return None
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        return None

    def can_move(self) -> bool:
        return "MOVE" in self.capabilities or "UIDPLUS" in self.capabilities

    def move(self, uids: Iterable[int], destination: str) -> None:
        """Move these UIDs of the open folder to ``destination`` (created if missing)."""
        uid_list = sorted(set(uids))
        if not uid_list:
            return
        with self._talking(f"moving messages to {destination!r}", _MOVE_AGAIN):
            self._move(uid_list, destination)

    def _move(self, uid_list: list[int], destination: str) -> None:
        target = _quote(destination)
        self._conn.create(target)  # NO "already exists" is fine: COPY/MOVE will tell
        chosen = _uid_set(uid_list)
        if "MOVE" in self.capabilities:
            typ, detail = self._conn.uid("MOVE", chosen, target)
            if typ != "OK":
                raise self._fail(f"cannot move to {destination!r}: {_text(detail)}")
            return
        if "UIDPLUS" not in self.capabilities:
            raise self._fail(
                "the server has neither MOVE nor UIDPLUS, so moving could delete other mail",
                hint="run without --move-to",
            )
        typ, detail = self._conn.uid("COPY", chosen, target)
        if typ != "OK":
            raise self._fail(f"cannot copy to {destination!r}: {_text(detail)}")
        # Only after the copy succeeded, and only these UIDs (UID EXPUNGE, not EXPUNGE).
        self._conn.uid("STORE", chosen, "+FLAGS.SILENT", r"(\Deleted)")
        typ, detail = self._conn.uid("EXPUNGE", chosen)
        if typ != "OK":
            raise self._fail(f"copied to {destination!r} but could not remove: {_text(detail)}")

    def close(self) -> None:
        try:
            self._conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _text(detail: object) -> str:
    if isinstance(detail, list | tuple):
        detail = b" ".join(d if isinstance(d, bytes) else str(d).encode() for d in detail)
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return " ".join(str(detail).split())


def tls_context(params: ImapParams) -> ssl.SSLContext:
    """Certificates and host names always verified; a private CA may be added."""
    context = ssl.create_default_context()
    if params.cafile:
        context.load_verify_locations(cafile=params.cafile)
    return context


def connect(
    params: ImapParams, authenticate: Authenticator, *, ssl_context: ssl.SSLContext | None = None
) -> Mailbox:
    """Open, secure and sign in; every failure is one :class:`MailboxError` line."""

    def fail(message: str, hint: str | None = None) -> MailboxError:
        return MailboxError(message, host=params.host, port=params.port, hint=hint)

    conn: imaplib.IMAP4 | None = None
    try:
        context = ssl_context or (tls_context(params) if params.security != "none" else None)
        if params.security == "ssl":
            conn = imaplib.IMAP4_SSL(
                params.host, params.port, ssl_context=context, timeout=params.timeout
            )
        else:
            conn = imaplib.IMAP4(params.host, params.port, timeout=params.timeout)
            if params.security == "starttls":
                conn.starttls(ssl_context=context)
        authenticate(conn)
        conn.capabilities = _refresh_capabilities(conn)
        return Mailbox(conn, params)
    except ssl.SSLCertVerificationError as error:
        raise fail(
            f"certificate not trusted: {error.verify_message}",
            hint="set NEWSLETTER_IMAP_CAFILE if the server uses a private CA",
        ) from None
    except ssl.SSLError as error:
        raise fail(
            f"TLS failed: {error.reason or error}",
            hint="check NEWSLETTER_IMAP_SECURITY and NEWSLETTER_IMAP_PORT (ssl is usually 993)",
        ) from None
    except imaplib.IMAP4.abort as error:
        # The connection went away (or the server said BYE) before or during sign-in: not
        # a refused password, which is what the next clause would call it.
        raise fail(
            f"connection lost while signing in: {_hide_secrets(_text(str(error)), authenticate)}",
            hint="run newsletter feedback again; if it keeps happening, check "
            "NEWSLETTER_IMAP_SECURITY and NEWSLETTER_IMAP_PORT",
        ) from None
    except imaplib.IMAP4.error as error:
        if conn is not None:
            _quiet_logout(conn)
        text = _hide_secrets(re.sub(r"^b'|'$", "", str(error)), authenticate)
        hint = getattr(
            authenticate, "hint", "check NEWSLETTER_IMAP_USERNAME and NEWSLETTER_IMAP_PASSWORD"
        )
        raise fail(f"sign-in refused: {text}", hint=hint) from None
    except TimeoutError:
        if conn is None:  # no greeting: often starttls or none on the implicit-TLS port 993
            hint = (
                "check NEWSLETTER_IMAP_HOST, NEWSLETTER_IMAP_PORT and NEWSLETTER_IMAP_SECURITY "
                "(port 993 is ssl, 143 is starttls)"
            )
        else:  # after failed sign-ins servers answer slowly on purpose
            hint = "wait a minute and try again; check NEWSLETTER_IMAP_PASSWORD"
        raise fail("no answer in time", hint=hint) from None
    except OSError as error:
        raise fail(
            f"cannot connect: {error.strerror or error}",
            hint="check NEWSLETTER_IMAP_HOST and NEWSLETTER_IMAP_PORT",
        ) from None


def _refresh_capabilities(conn: imaplib.IMAP4) -> tuple[str, ...]:
    # Servers announce MOVE and UIDPLUS only after sign-in (Dovecot does).
    typ, data = conn.capability()
    if typ == "OK" and data and data[0]:
        return tuple(data[0].decode().upper().split())
    return conn.capabilities


def _quiet_logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error):
        pass
