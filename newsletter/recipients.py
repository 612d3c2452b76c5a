"""The member list: a CSV file read as a stream, one validated :class:`Recipient` at a time.

The list may hold tens of thousands of rows, so nothing here keeps the rows: the only state
that grows is the set of addresses already seen (for de-duplication) and the
:class:`RecipientReport`'s lists of rejected rows. Row numbers are spreadsheet row numbers
(header = row 1), because that is where the user will go to fix a problem.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TextIO

from email_validator import EmailNotValidError, validate_email

from .errors import RecipientsError

__all__ = [
    "Recipient",
    "RecipientReport",
    "iter_recipients",
    "normalise_column",
    "read_columns",
]

RESAVE_HINT = "re-save it as 'CSV UTF-8 (Comma delimited)' in Excel, or as UTF-8 in your editor"
DELIMITERS = (",", ";", "\t")  # in order of preference when counts tie
UNSUBSCRIBED_VALUES = frozenset({"no", "false", "0", "n"})
SUBSCRIBED_VALUES = frozenset({"yes", "true", "1", "y", ""})
MAX_LISTED_ROWS = 10  # row numbers listed per summary line before "…"
MAX_REPORTED_VALUE = 100  # a runaway quoted field must not bloat the report

# C0/C1 control characters and the Unicode line/paragraph separators: never valid in an
# address (a CR/LF would let a cell inject mail headers), replaced by spaces in names.
_CONTROL = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) + "\u2028\u2029"
_CONTROL_RE = re.compile(f"[{re.escape(_CONTROL)}]")
_CONTROL_TO_SPACE = str.maketrans(_CONTROL, " " * len(_CONTROL))
_NON_WORD_RE = re.compile(r"[\W_]+")
# What ``errors="surrogateescape"`` turns undecodable bytes into; strict UTF-8 never yields it.
_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")
# The headers chairs' exports use, normalised, for the columns the tool itself needs:
# Excel users ("Email", "E-mail", "Email address"), Outlook ("E-mail Address", "First Name",
# "Last Name"), Mailchimp ("Email Address", …) and Google Contacts ("E-mail 1 - Value",
# "Given Name"/"First Name", "Family Name"/"Last Name").
ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "e_mail", "email_address", "e_mail_address", "e_mail_1_value"),
    "first_name": ("first_name", "given_name", "firstname", "forename"),
    "last_name": ("last_name", "family_name", "lastname", "surname"),
}
ROLE_NAMES = {"email": "address", "first_name": "first name", "last_name": "last name"}
# Several addresses in one cell, as Google Contacts writes them.
MULTI_ADDRESS_SEPARATOR = " ::: "


def _clean_text(value: str) -> str:
    """Control characters (CR/LF from multi-line cells) to spaces, whitespace collapsed."""
    return " ".join(value.translate(_CONTROL_TO_SPACE).split())


@dataclass(frozen=True, slots=True)
class Recipient:
    """One accepted member: a valid, unique, subscribed, unsuppressed address."""

    email: str  # as normalised by email-validator (domain lower-cased, IDNA to Unicode)
    row: int  # spreadsheet row number: header is row 1
    fields: Mapping[str, str]  # every named column, stripped; "email" holds ``email``

    @property
    def first_name(self) -> str:
        """The first name; with only a full-name column, the full name as written
        ("Dr. Ann Lee"): splitting it would greet "Dr." or half a double-barrelled name."""
        first = self.fields.get("first_name", "")
        if first:
            return _clean_text(first)
        return _clean_text(self.fields.get("name", ""))

    @property
    def name(self) -> str:
        parts = (self.fields.get("first_name", ""), self.fields.get("last_name", ""))
        joined = _clean_text(" ".join(parts))
        return joined or _clean_text(self.fields.get("name", ""))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _row_list(rows: list[str]) -> str:
    shown = ", ".join(rows[:MAX_LISTED_ROWS])
    return shown + ", …" if len(rows) > MAX_LISTED_ROWS else shown


def _rows_phrase(rows: list[int]) -> str:
    label = "row" if len(rows) == 1 else "rows"
    return f"{label} {_row_list([str(r) for r in rows])}"


@dataclass
class RecipientReport:
    """What happened to every data row; filled in while :func:`iter_recipients` streams.

    ``rows`` counts the non-empty data rows, and each of them ends up in exactly one of
    ``accepted``, ``invalid``, ``duplicates``, ``suppressed`` or ``unsubscribed``.
    """

    rows: int = 0
    accepted: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (row, value, reason)
    duplicates: list[tuple[int, str, int]] = field(default_factory=list)  # (row, addr, first)
    suppressed: list[tuple[int, str]] = field(default_factory=list)  # (row, address)
    unsubscribed: list[int] = field(default_factory=list)  # rows
    columns: dict[str, str] = field(default_factory=dict)  # role -> header cell used for it
    several: list[int] = field(default_factory=list)  # rows whose cell held several addresses

    def columns_line(self) -> str:
        """Which column was used for what, e.g. ``address 'E-mail Address', …``."""
        return ", ".join(f"{ROLE_NAMES[role]} {raw!r}" for role, raw in self.columns.items())

    def summary_lines(self) -> list[str]:
        """Short lines for the terminal, e.g. ``2 invalid (rows 5, 9)``."""
        lines = [f"{_plural(self.rows, 'row')} read, {self.accepted} accepted"]
        if self.invalid:
            rows = [r for r, _, _ in self.invalid]
            lines.append(f"{len(rows)} invalid ({_rows_phrase(rows)})")
        if self.duplicates:
            # "row 7, same as row 3" alone; without the comma when several are listed.
            sep = ", " if len(self.duplicates) == 1 else " "
            pairs = [f"row {r}{sep}same as row {first}" for r, _, first in self.duplicates]
            lines.append(f"{_plural(len(pairs), 'duplicate')} ({_row_list(pairs)})")
        if self.suppressed:
            rows = [r for r, _ in self.suppressed]
            lines.append(f"{len(rows)} suppressed ({_rows_phrase(rows)})")
        if self.unsubscribed:
            lines.append(
                f"{len(self.unsubscribed)} unsubscribed ({_rows_phrase(self.unsubscribed)})"
            )
        return lines

    def several_line(self) -> str:
        if not self.several:
            return ""
        count = len(self.several)
        return (
            f"{_plural(count, 'row')} held several addresses: used the first "
            f"({_rows_phrase(self.several)})"
        )


def normalise_column(name: str) -> str:
    """``"First Name"`` -> ``first_name``, ``" E-Mail "`` -> ``e_mail`` (a template name)."""
    return _NON_WORD_RE.sub("_", name.strip().lower()).strip("_")


# --- opening and sniffing ---------------------------------------------------------------


def _sniff_delimiter(header: str) -> str:
    """The one of , ; TAB used most in the header line outside quotes (comma on a tie).

    csv.Sniffer guesses from letter frequencies and is easily fooled by a short header, so
    count only the candidates, and only outside quoted names.
    """
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equal counts
    return best if counts[best] else ","


def _open_error(path: Path, error: OSError) -> RecipientsError:
    if isinstance(error, FileNotFoundError):
        return RecipientsError("file not found", path=path, hint="check the path or the setting")
    if isinstance(error, IsADirectoryError):
        return RecipientsError("is a directory, not a CSV file", path=path)
    if isinstance(error, PermissionError):
        return RecipientsError("cannot be read: permission denied", path=path)
    return RecipientsError(f"cannot be read: {error.strerror or error}", path=path)


def _decode_error(path: Path, error: UnicodeDecodeError) -> RecipientsError:
    """One clear error for a file that is not UTF-8, at the exact row if it can be found.

    The strict reader decodes ahead in 8 KB chunks, so the row it had reached may be before
    the bad byte; a second pass with ``surrogateescape`` finds the row that holds it. That
    costs a re-read, but only on this error path, so the normal path pays nothing.
    """
    bad = error.object[error.start : error.start + 1]
    byte = f"byte 0x{bad.hex()}" if bad else "a byte"
    hint = RESAVE_HINT
    try:
        with path.open("rb") as raw:
            magic = raw.read(4)
    except OSError:
        magic = b""
    if magic.startswith((b"\xff\xfe", b"\xfe\xff")):
        return RecipientsError(
            "is UTF-16 text ('Unicode Text'), not UTF-8", path=path, row=1, hint=hint
        )
    if magic.startswith(b"PK\x03\x04"):
        return RecipientsError(
            "is a spreadsheet workbook (.xlsx), not a CSV file",
            path=path,
            hint="in Excel use File > Save As > 'CSV UTF-8 (Comma delimited)'",
        )
    row = _find_undecodable_row(path)
    return RecipientsError(
        f"is not UTF-8 text ({byte} cannot be decoded)", path=path, row=row, hint=hint
    )


def _find_undecodable_row(path: Path) -> int | None:
    """The spreadsheet row holding the first byte that is not UTF-8 (None if not found)."""
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
            # Same sniffing and parsing as the strict pass, so row numbers agree with it.
            delimiter = _sniff_delimiter(file.readline())
            file.seek(0)
            reader = csv.reader(file, delimiter=delimiter, skipinitialspace=True)
            for row, record in enumerate(reader, start=1):
                if _ESCAPED_BYTE_RE.search(delimiter.join(record)):
                    return row
    except (OSError, csv.Error):
        pass
    return None


def _csv_error(path: Path, row: int, error: csv.Error) -> RecipientsError:
    text = str(error)
    if "field limit" in text:
        return RecipientsError(
            f"a cell is longer than {csv.field_size_limit():,} characters",
            path=path,
            row=row,
            hint='check this row for an unmatched double quote (")',
        )
    return RecipientsError(f"is not valid CSV: {text}", path=path, row=row)


@dataclass(slots=True)
class _Header:
    delimiter: str
    raw: list[str]  # header cells as written
    names: list[str]  # normalised; "" for a blank header cell (that column is ignored)
    line_ending: str
    roles: dict[str, int] = field(default_factory=dict)  # "email"/"first_name"/… -> index


def _read_header(path: Path, file: TextIO) -> _Header:
    """Read row 1 (possibly several lines if a quoted name holds a newline) and sniff it.

    Only the header is read here, so the rest of the file can still be streamed.
    """
    head = file.readline()
    # An odd number of quotes means a quoted header cell continues on the next line.
    while head.count('"') % 2 and len(head) < 65536:
        more = file.readline()
        if not more:
            break
        head += more
    if not head.strip():
        if file.read(4096).strip():  # blank first line but content further down
            raise RecipientsError(
                "row 1 is empty",
                path=path,
                row=1,
                hint="the first row must be the column headers, including 'email'",
            )
        raise RecipientsError(
            "the file is empty",
            path=path,
            hint="the first row must be the column headers, including 'email'",
        )
    delimiter = _sniff_delimiter(head)
    try:
        raw = next(csv.reader([head], delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error as error:
        raise _csv_error(path, 1, error) from None
    ending = "\r\n" if head.endswith("\r\n") else head[-1] if head[-1] in "\r\n" else "\n"
    return _Header(delimiter, raw, [normalise_column(c) for c in raw], ending)


def _check_columns(path: Path, header: _Header) -> None:
    """Unique names, and exactly one address column (found by its aliases)."""
    seen: dict[str, str] = {}
    for raw, name in zip(header.raw, header.names, strict=True):
        if not name:
            continue
        if name in seen:
            raise RecipientsError(
                f"columns {seen[name]!r} and {raw!r} both become {{{{ {name} }}}}",
                path=path,
                row=1,
                hint="rename or delete one of them",
            )
        seen[name] = raw
    for role, aliases in ALIASES.items():
        candidates = [header.names.index(n) for n in aliases if n in seen]
        if role != "email" and role in seen:
            candidates = [header.names.index(role)]  # an exact name wins over an alias
        if len(candidates) > 1 and role == "email":
            first, second = (header.raw[i] for i in candidates[:2])
            raise RecipientsError(
                f"two address columns: {first!r} and {second!r}",
                path=path,
                row=1,
                hint="delete one of them, or rename the one to use to 'email'",
            )
        if candidates:
            header.roles[role] = candidates[0]
    if "email" not in header.roles:
        found = ", ".join(repr(c) for c in seen.values()) or "none"
        raise RecipientsError(
            f"no 'email' column (columns found: {found})",
            path=path,
            row=1,
            hint="add a column headed 'email' (or 'Email Address', 'E-mail Address') "
            "holding the addresses",
        )


def _open_csv(path: Path) -> tuple[TextIO, _Header]:
    """Open ``path`` for streaming and read its header; the caller closes the file."""
    try:
        # utf-8-sig drops Excel's BOM; newline="" lets csv see quoted line breaks intact.
        file = path.open(encoding="utf-8-sig", errors="strict", newline="")
    except OSError as error:
        raise _open_error(path, error) from None
    try:
        header = _read_header(path, file)
        _check_columns(path, header)
    except UnicodeDecodeError as error:
        file.close()
        raise _decode_error(path, error) from None
    except BaseException:
        file.close()
        raise
    return file, header


def read_columns(path: Path) -> list[str]:
    """The normalised column names (for checking template variables against the list).

    Only the header is read: an encoding problem further down is found by
    :func:`iter_recipients`.
    """
    file, header = _open_csv(Path(path))
    with file:
        names = [name for name in header.names if name]
        return names + [role for role in header.roles if role not in names]


# --- streaming ----------------------------------------------------------------------------


def validate_address(value: str) -> tuple[str | None, str]:
    """(normalised address, "") or (None, reason)."""
    if not value:
        return None, "no address"
    if _CONTROL_RE.search(value):
        return None, "contains a line break or control character"
    try:
        # ASCII only (IDN domains as punycode): headers and the SMTP envelope stay 7-bit,
        # which every server accepts; non-ASCII local parts would need SMTPUTF8.
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
        return checked.ascii_email or checked.normalized, ""
    except EmailNotValidError as error:
        return None, str(error)


def _shorten(value: str) -> str:
    if len(value) <= MAX_REPORTED_VALUE:
        return value
    return value[:MAX_REPORTED_VALUE] + "…"


def iter_recipients(
    path: Path,
    *,
    suppressed: Container[str] = frozenset(),
    report: RecipientReport | None = None,
) -> Iterator[Recipient]:
    """Yield each accepted member in file order, recording every rejected row in ``report``.

    ``suppressed`` holds casefolded addresses (see :func:`newsletter.suppression.load_suppressed`).
    Raises :class:`RecipientsError` for a file that cannot be used at all; because this is
    a generator, an encoding error late in the file surfaces only when iteration reaches it.
    """
    path = Path(path)
    report = report if report is not None else RecipientReport()
    file, header = _open_csv(path)
    names = header.names
    width = len(names)
    email_at = header.roles["email"]
    # Recognised columns under their aliases ("E-mail Address") also go by the role names.
    role_columns = [(role, i) for role, i in header.roles.items() if names[i] != role]
    report.columns = {role: header.raw[i] for role, i in header.roles.items()}
    subscribed_at = names.index("subscribed") if "subscribed" in names else None
    # Blank-headed columns (Excel's trailing empty columns) have no name to be used by.
    named = [(i, n) for i, n in enumerate(names) if n]
    all_named = len(named) == width
    seen: dict[str, int] = {}  # casefolded address -> first row; the only growing state
    row = 1
    with file:
        reader = csv.reader(file, delimiter=header.delimiter, skipinitialspace=True)
        try:
            for record in reader:
                row += 1
                values = [value.strip() for value in record]
                if not any(values):
                    continue  # a blank line or a row of empty cells: nothing to report
                report.rows += 1
                if len(values) != width:
                    if len(values) < width:
                        values += [""] * (width - len(values))  # Excel drops trailing blanks
                    elif any(values[width:]):
                        extra = len(values) - width
                        report.invalid.append(
                            (
                                row,
                                _shorten(values[email_at]),
                                f"{_plural(extra, 'value')} more than the "
                                "header has columns (an unquoted comma?)",
                            )
                        )
                        continue
                    else:
                        del values[width:]  # stray trailing delimiters are harmless
                if subscribed_at is not None:
                    flag = values[subscribed_at].lower()
                    if flag in UNSUBSCRIBED_VALUES:
                        report.unsubscribed.append(row)
                        continue
                    if flag not in SUBSCRIBED_VALUES:
                        # Mailing someone who may have opted out is the worse mistake.
                        report.invalid.append(
                            (
                                row,
                                _shorten(values[email_at]),
                                f"subscribed is {values[subscribed_at]!r}, not yes or no",
                            )
                        )
                        continue
                raw = values[email_at]
                if MULTI_ADDRESS_SEPARATOR in raw:
                    raw = raw.split(MULTI_ADDRESS_SEPARATOR, 1)[0].strip()
                    report.several.append(row)
                address, reason = validate_address(raw)
                if address is None:
                    report.invalid.append((row, _shorten(raw), reason))
                    continue
                key = address.casefold()
                first = seen.setdefault(key, row)
                if first != row:
                    report.duplicates.append((row, address, first))
                    continue
                if key in suppressed:
                    report.suppressed.append((row, address))
                    continue
                values[email_at] = address
                if all_named:
                    fields = dict(zip(names, values, strict=True))
                else:
                    fields = {n: values[i] for i, n in named}
                for role, i in role_columns:
                    fields[role] = values[i]
                fields["email"] = address
                report.accepted += 1
                yield Recipient(email=address, row=row, fields=MappingProxyType(fields))
        except UnicodeDecodeError as error:
            raise _decode_error(path, error) from None
        except csv.Error as error:
            raise _csv_error(path, row + 1, error) from None
