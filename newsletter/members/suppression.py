"""The suppression list: addresses that must never be mailed again (unsubscribed, bounced).

It is a CSV file (``email,reason,date``) kept beside the member list rather than inside it,
so that re-importing the member list from a spreadsheet can never re-subscribe anyone.
Unsubscribe links carry an HMAC token so that only the address's owner can use them.
"""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import hmac
import io
from collections.abc import Iterable
from pathlib import Path

from ..common.csvfile import (
    Header,
    clean_text,
    csv_error,
    decode_error,
    detect_encoding,
    open_csv,
    open_error,
)
from ..common.errors import ConfigError, NewsletterError, RecipientsError
from ..common.files import atomic_write, locked
from .recipients import ALIASES, iter_recipients, unwrap_address, validate_address

__all__ = [
    "add_suppressed",
    "not_members",
    "load_suppressed",
    "remove_suppressed",
    "suppress_entries",
    "unsubscribe_token",
    "verify_token",
]

HEADER = ("email", "reason", "date")  # + "issue" when written by newsletter feedback
TOKEN_LENGTH = 32  # characters of urlsafe base64: 192 bits, short enough for a URL


def load_suppressed(path: Path) -> frozenset[str]:
    """The casefolded suppressed addresses; a missing or zero-byte file is an empty list.

    Any unreadable row is an error rather than skipped: a suppression silently lost would
    mean mailing someone who asked not to be mailed.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return frozenset()
    except FileNotFoundError:
        return frozenset()
    except OSError as error:
        raise open_error(path, error) from None
    file, header = open_csv(path, _check_columns)
    email_at = _email_at(header)
    found: set[str] = set()
    row = 1
    with file:
        reader = csv.reader(file, delimiter=header.delimiter, skipinitialspace=True)
        try:
            for record in reader:
                row += 1
                if not "".join(record).strip():
                    continue
                raw = record[email_at].strip() if email_at < len(record) else ""
                address, reason = validate_address(raw)
                if address is None:
                    raise RecipientsError(
                        f"{raw!r} is not a valid address: {reason}" if raw else "no address",
                        path=path,
                        row=row,
                        hint="correct or delete this row",
                    )
                # The raw form too, in case normalisation ever differs from the list's.
                found.add(address.casefold())
                found.add(raw.casefold())
        except UnicodeDecodeError as error:
            raise decode_error(path, error) from None
        except csv.Error as error:
            raise csv_error(path, row + 1, error) from None
    return frozenset(found)


def _email_at(header: Header) -> int:
    """The address column: 'email', or a header the member list also reads as one
    ('Email Address', 'E-mail'), as an export pasted into the list in Excel brings."""
    if "email" in header.names:
        return header.names.index("email")
    return next(n for n, name in enumerate(header.names) if name in ALIASES["email"])


def _check_columns(path: Path, header: Header) -> None:
    if not any(name in ALIASES["email"] for name in header.names):
        found = ", ".join(repr(c) for c in header.raw if c.strip()) or "none"
        raise RecipientsError(
            f"no 'email' column (columns found: {found})",
            path=path,
            row=1,
            hint="the first row must be the headers " + ",".join(HEADER),
        )


def _valid(path: Path, value: str) -> str:
    """The normalised address, or an error that says nothing was written."""
    address, why = validate_address(unwrap_address(value))
    if address is None:
        raise RecipientsError(
            f"cannot suppress {value.strip()!r}: {why}",
            path=path,
            hint="nothing was added; correct the address and try again",
        )
    return address


def add_suppressed(
    path: Path,
    addresses: Iterable[str],
    *,
    reason: str,
    today: datetime.date,
) -> tuple[list[str], list[str]]:
    """Suppress ``addresses``; return (added, already present), as normalised addresses.

    All addresses are validated before anything is written, so a typo in one of them leaves
    the file untouched. The file (with its header) is created if missing; an existing file
    keeps its delimiter, column order and line endings. Read and rewritten under the list's
    lock: many at once (an unsubscribe page running this per click) all land.
    """
    path = Path(path)
    valid = [_valid(path, value) for value in addresses]
    with locked(path):
        known = set(load_suppressed(path))  # also refuses to append to a broken file
        added: list[str] = []
        present: list[str] = []
        for address in valid:
            key = address.casefold()
            if key in known:
                present.append(address)
            else:
                known.add(key)
                added.append(address)
        if added:
            _append(path, added, clean_text(reason), today.isoformat())
    return added, present


def not_members(recipients: Path, addresses: Iterable[str]) -> list[tuple[str, str | None]]:
    """Those of ``addresses`` the member list would not mail anyway, each with the closest
    member address (a typo: 'priya.sha@…' suppressed, while 'priya.shah@…' kept getting
    the bulletin). Nothing when there is no list or it cannot be read (the send says why)."""
    import difflib

    try:
        if not Path(recipients).is_file():
            return []
        members = {m.email.casefold(): m.email for m in iter_recipients(Path(recipients))}
    except NewsletterError:
        return []
    strangers = []
    for address in addresses:
        key = unwrap_address(address).casefold()
        if key not in members:
            close = difflib.get_close_matches(key, list(members), n=1, cutoff=0.85)
            strangers.append((address.strip(), members[close[0]] if close else None))
    return strangers


def suppress_entries(
    path: Path, entries: Iterable[tuple[str, str, str]], *, today: datetime.date
) -> list[tuple[str, str, str]]:
    """Suppress many (address, reason, issue) at once, in one atomic write.

    Addresses already suppressed (or repeated) are left out; invalid ones raise before
    anything is written. Returns the entries written, addresses normalised.
    """
    path = Path(path)
    entries = list(entries)
    with locked(path):
        known = set(load_suppressed(path))
        rows: list[dict[str, str]] = []
        written: list[tuple[str, str, str]] = []
        for value, reason, issue in entries:
            address = _valid(path, value)
            if address.casefold() in known:
                continue
            known.add(address.casefold())
            rows.append(
                {"email": address, "reason": clean_text(reason), "date": today.isoformat(),
                 "issue": clean_text(issue)}
            )  # fmt: skip
            written.append((address, reason, issue))
        if rows:
            _write_rows(path, rows)
    return written


def remove_suppressed(path: Path, address: str) -> int:
    """Take ``address`` off the list (every row for it); the number of rows removed.

    The file is rewritten under the list's lock and replaced atomically, keeping its
    header, delimiter and line endings.
    """
    path = Path(path)
    key = unwrap_address(address).casefold()
    if not path.is_file():
        return 0
    with locked(path):
        if not path.is_file() or path.stat().st_size == 0:
            return 0
        file, header = open_csv(path, _check_columns)
        email_at = _email_at(header)
        kept: list[list[str]] = []
        removed = 0
        with file:
            for record in csv.reader(file, delimiter=header.delimiter, skipinitialspace=True):
                raw = record[email_at].strip() if email_at < len(record) else ""
                normalised, _ = validate_address(raw)
                if raw and (raw.casefold() == key or (normalised or "").casefold() == key):
                    removed += 1
                else:
                    kept.append(record)
        if removed:
            text = io.StringIO()
            writer = csv.writer(text, delimiter=header.delimiter, lineterminator=header.line_ending)
            writer.writerow(header.raw)
            writer.writerows(kept)
            _save(path, _bom(path, header) + text.getvalue().encode("utf-8"))
    return removed


def _append(path: Path, addresses: list[str], reason: str, date: str) -> None:
    _write_rows(path, [{"email": a, "reason": reason, "date": date} for a in addresses])


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """The file becomes its old content + ``rows``, replaced atomically (the caller holds
    the lock): a crash leaves either the old list or the new one, never a half-written row.
    """
    exists = path.is_file() and path.stat().st_size > 0
    old = b""
    if exists:
        file, header = open_csv(path, _check_columns)
        file.close()
        names, delimiter, ending = header.names, header.delimiter, header.line_ending
        names = ["email" if n == _email_at(header) else name for n, name in enumerate(names)]
        if header.encoding:
            # Saved by Excel as "Unicode Text" (UTF-16) or plain "CSV" (Windows-1252):
            # UTF-8 rows appended to it made a file no program reads right (and the next
            # send refused it). Rewrite it all as UTF-8 with a BOM, which Excel reads.
            text = path.read_bytes().decode(detect_encoding(path)).lstrip("\ufeff")
            if not text.endswith(("\n", "\r")):
                text += ending
            old = "\ufeff".encode() + text.encode("utf-8")
        else:
            old = path.read_bytes()
            if not old.endswith((b"\n", b"\r")):
                old += ending.encode()  # the last row had no line ending
    else:
        names, delimiter, ending = list(HEADER), ",", "\n"
        if any("issue" in values for values in rows):
            names.append("issue")
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator=ending)
    if not old:
        writer.writerow(names)
    for values in rows:
        writer.writerow([values.get(n, "") for n in names])
    _save(path, old + text.getvalue().encode("utf-8"))


def _bom(path: Path, header: Header) -> bytes:
    """A rewritten list keeps Excel's BOM (without it Excel shows accents in the reasons
    garbled), and gets one when it was UTF-16 or Windows-1252 (now rewritten as UTF-8)."""
    with path.open("rb") as raw:
        had = raw.read(3) == b"\xef\xbb\xbf"
    return "\ufeff".encode() if had or header.encoding else b""


def _save(path: Path, data: bytes) -> None:
    """``path`` holds ``data``, atomically (see :func:`newsletter.common.files.atomic_write`)."""
    try:
        atomic_write(path, data)
    except PermissionError as error:
        # Windows refuses to replace a file another program holds open (Excel keeps the
        # list it shows locked): one line that says so, not an internal error.
        raise RecipientsError(
            f"cannot write the suppression list ({error.strerror or error})",
            path=path,
            hint="close it in Excel or any program that has it open, then run this again; "
            "the list was not changed",
        ) from None


def _require_secret(secret: str) -> bytes:
    if not secret:
        # Without a secret anyone could compute the token and unsubscribe anyone.
        raise ConfigError(
            "a secret is needed for unsubscribe links",
            setting="NEWSLETTER_SECRET",
            hint="set it to a long random string, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    return secret.encode("utf-8")


def unsubscribe_token(address: str, secret: str) -> str:
    """HMAC-SHA256 of the casefolded address: 32 urlsafe-base64 characters, no padding."""
    digest = hmac.new(
        _require_secret(secret), address.strip().casefold().encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:TOKEN_LENGTH]


def verify_token(address: str, token: str, secret: str) -> bool:
    """Whether ``token`` was made for ``address`` under ``secret`` (constant-time compare)."""
    expected = unsubscribe_token(address, secret)
    return hmac.compare_digest(expected.encode("ascii"), token.strip().encode("utf-8"))
