"""Reading CSV files as spreadsheets write them: the one place that knows the format.

The member list (:mod:`newsletter.members.recipients`) and the suppression list
(:mod:`newsletter.members.suppression`) are both CSV files saved by Excel, LibreOffice or an editor:
UTF-8 with or without a BOM, UTF-16 (Excel's "Unicode Text"), or the Windows ANSI code
page (Outlook's CSV export, Excel's plain "CSV"); comma, semicolon or TAB delimited, any
line ending. This module
opens such a file for streaming, sniffs and normalises its header, and turns every way it
can fail into a :class:`RecipientsError` with the file and row. What the columns mean is the
callers' business.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .errors import RecipientsError

__all__ = [
    "CONTROL_CHARS",
    "DELIMITERS",
    "RESAVE_HINT",
    "Header",
    "clean_text",
    "csv_error",
    "decode_error",
    "normalise_column",
    "open_csv",
    "open_error",
    "read_header",
    "sniff_delimiter",
]

RESAVE_HINT = "re-save it as 'CSV UTF-8 (Comma delimited)' in Excel, or as UTF-8 in your editor"
DELIMITERS = (",", ";", "\t")  # in order of preference when counts tie

# C0/C1 control characters and the Unicode line/paragraph separators: never valid in an
# address (a CR/LF would let a cell inject mail headers), replaced by spaces in names.
CONTROL_CHARS = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) + "\u2028\u2029"
_CONTROL_TO_SPACE = str.maketrans(CONTROL_CHARS, " " * len(CONTROL_CHARS))
_NON_WORD_RE = re.compile(r"[\W_]+")
# What ``errors="surrogateescape"`` turns undecodable bytes into; strict UTF-8 never yields it.
_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")
_SEP_DIRECTIVE = re.compile(r'\A"?sep=([,;\t|])"?\s*\Z', re.I)


def clean_text(value: str) -> str:
    """Control characters (CR/LF from multi-line cells) to spaces, whitespace collapsed."""
    return " ".join(value.translate(_CONTROL_TO_SPACE).split())


def normalise_column(name: str) -> str:
    """``"First Name"`` -> ``first_name``, ``" E-Mail "`` -> ``e_mail`` (a template name)."""
    return _NON_WORD_RE.sub("_", name.strip().lower()).strip("_")


def sniff_delimiter(header: str) -> str:
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


def open_error(path: Path, error: OSError) -> RecipientsError:
    if isinstance(error, FileNotFoundError):
        return RecipientsError("file not found", path=path, hint="check the path or the setting")
    if isinstance(error, IsADirectoryError):
        return RecipientsError("is a directory, not a CSV file", path=path)
    if isinstance(error, PermissionError):
        return RecipientsError("cannot be read: permission denied", path=path)
    return RecipientsError(f"cannot be read: {error.strerror or error}", path=path)


def decode_error(path: Path, error: UnicodeDecodeError) -> RecipientsError:
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
    row = find_undecodable_row(path)
    return RecipientsError(
        f"is not UTF-8 text ({byte} cannot be decoded)", path=path, row=row, hint=hint
    )


def find_undecodable_row(path: Path) -> int | None:
    """The spreadsheet row holding the first byte that is not UTF-8 (None if not found)."""
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
            # Same sniffing and parsing as the strict pass, so row numbers agree with it.
            head = file.readline()
            directive = _SEP_DIRECTIVE.match(head.rstrip("\r\n"))
            if directive:  # as read_header: the header below it is row 1
                delimiter = directive.group(1)
            else:
                delimiter = sniff_delimiter(head)
                file.seek(0)
            reader = csv.reader(file, delimiter=delimiter, skipinitialspace=True)
            for row, record in enumerate(reader, start=1):
                if _ESCAPED_BYTE_RE.search(delimiter.join(record)):
                    return row
    except (OSError, csv.Error):
        pass
    return None


def csv_error(path: Path, row: int, error: csv.Error) -> RecipientsError:
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
class Header:
    delimiter: str
    raw: list[str]  # header cells as written
    names: list[str]  # normalised; "" for a blank header cell (that column is ignored)
    line_ending: str
    encoding: str = ""  # "" for UTF-8; else what the summary names (see ENCODING_NAMES)


# Python codec -> what the chair is told it was read as (UTF-8 is not worth a mention).
ENCODING_NAMES = {"utf-16": "UTF-16", "cp1252": "Windows-1252"}
_CHUNK = 1 << 20
# A UTF-8 multi-byte sequence: in a file that is not valid UTF-8 it means a mixed file
# (UTF-8 pasted into an ANSI one), which no single encoding reads right.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def detect_encoding(path: Path) -> str:
    """The codec to read ``path`` with: UTF-16 by its BOM; UTF-8 (BOM or not) when every
    byte decodes; else Windows-1252, the ANSI code page Outlook's CSV export and Excel's
    plain "CSV" write in Western Europe — unless the file also holds UTF-8 sequences or
    bytes Windows-1252 lacks, when UTF-8 is returned so that the strict read reports the
    row. Streams the file once (about 1 ms a MB); raises OSError like ``open``."""
    with path.open("rb") as raw:
        if raw.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return "utf-16"
        raw.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for chunk in iter(lambda: raw.read(_CHUNK), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return "utf-8-sig"
        except UnicodeDecodeError:
            pass
        raw.seek(0)
        ansi = codecs.getincrementaldecoder("cp1252")()
        tail = b""
        try:
            for chunk in iter(lambda: raw.read(_CHUNK), b""):
                ansi.decode(chunk)
                if _UTF8_SEQUENCE.search(tail + chunk):
                    return "utf-8-sig"
                tail = chunk[-3:]
        except UnicodeDecodeError:
            return "utf-8-sig"
    return "cp1252"


def read_header(path: Path, file: TextIO) -> Header:
    """Read row 1 (possibly several lines if a quoted name holds a newline) and sniff it.

    Only the header is read here, so the rest of the file can still be streamed.
    """
    head = file.readline()
    # Excel's "sep=;" first line names the delimiter; Excel hides it, so the header below it
    # is what the chair sees as row 1.
    directive = _SEP_DIRECTIVE.match(head.rstrip("\r\n"))
    if directive:
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
    delimiter = directive.group(1) if directive else sniff_delimiter(head)
    try:
        raw = next(csv.reader([head], delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error as error:
        raise csv_error(path, 1, error) from None
    ending = "\r\n" if head.endswith("\r\n") else head[-1] if head[-1] in "\r\n" else "\n"
    return Header(delimiter, raw, [normalise_column(c) for c in raw], ending)


def _workbook_kind(magic: bytes) -> str:
    """What a spreadsheet program's own file format is, by its first bytes ("" if none)."""
    if magic.startswith(b"PK\x03\x04"):  # a zip: .xlsx, .ods, .numbers
        return "a spreadsheet workbook (.xlsx)"
    if magic.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2: Excel 97-2003
        return "an Excel 97-2003 workbook (.xls)"
    return ""


def open_csv(
    path: Path, check: Callable[[Path, Header], None] | None = None
) -> tuple[TextIO, Header]:
    """Open ``path`` for streaming and read its header; the caller closes the file.

    ``check`` (the caller's column rules) runs on the header before anything else is read.
    """
    try:
        with path.open("rb") as raw:
            workbook = _workbook_kind(raw.read(8))
        if workbook:
            # Checked first: a small workbook's bytes can happen to decode as text, and its
            # "columns" were then listed as binary garbage.
            raise RecipientsError(
                f"is {workbook}, not a CSV file",
                path=path,
                hint="in Excel use File > Save As > 'CSV UTF-8 (Comma delimited)'",
            )
        encoding = detect_encoding(path)
        # utf-8-sig drops Excel's BOM; newline="" lets csv see quoted line breaks intact.
        file = path.open(encoding=encoding, errors="strict", newline="")
    except OSError as error:
        raise open_error(path, error) from None
    try:
        header = read_header(path, file)
        header.encoding = ENCODING_NAMES.get(encoding, "")
        if check is not None:
            check(path, header)
    except UnicodeDecodeError as error:
        file.close()
        raise decode_error(path, error) from None
    except BaseException:
        file.close()
        raise
    return file, header
