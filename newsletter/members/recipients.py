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

from ..common.csvfile import Header, csv_error, decode_error, normalise_column, open_csv
from ..common.csvfile import clean_text as _clean_text
from ..common.errors import RecipientsError
from .addresses import validate_address

__all__ = [
    "Recipient",
    "RecipientReport",
    "iter_recipients",
    "normalise_column",
    "read_columns",
]

# Also the words status columns use ("Subscribed"/"Unsubscribed", "opted out"): a value
# that is neither is an invalid row, never a guess either way.
UNSUBSCRIBED_VALUES = frozenset(
    {"no", "false", "0", "n", "unsubscribed", "opted out", "opted-out", "opt-out", "opt out"}
)
SUBSCRIBED_VALUES = frozenset({"yes", "true", "1", "y", "", "subscribed", "opted in", "opted-in"})
MAX_LISTED_ROWS = 10  # row numbers listed per summary line before "…"
MAX_REPORTED_VALUE = 100  # a runaway quoted field must not bloat the report
ACCENTED_SHOWN = 5  # names with accents listed as read from a Windows-1252 list
# How to export a list again so that no letter is lost (Outlook, Excel).
REEXPORT_HINT = (
    "export the list again as Unicode: in Excel, Save As 'CSV UTF-8 (Comma delimited)'; "
    "from Outlook, export to Excel first and save it so, or as 'Unicode Text'"
)
# '?' beside a letter in a name: where an ANSI export put a letter its code page lacks.
_LOST_LETTER = re.compile(r"(?<=[^\W\d_])\?|\?(?=[^\W\d_])")

# The headers chairs' exports use, normalised, for the columns the tool itself needs:
# Excel users ("Email", "E-mail", "Email address"), Outlook ("E-mail Address", "First Name",
# "Last Name"), Mailchimp ("Email Address", …) and Google Contacts ("E-mail 1 - Value",
# "Given Name"/"First Name", "Family Name"/"Last Name").
ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "e_mail",
        "email_address",
        "e_mail_address",
        "e_mail_1_value",
        # Outlook and Excel in German, French and Dutch (members' lists cross borders).
        "e_mail_adresse",
        "adresse_de_messagerie",
        "adresse_e_mail",
        "courriel",
        "e_mailadres",
    ),
    "first_name": (
        "first_name",
        "given_name",
        "firstname",
        "forename",
        "vorname",
        "prénom",
        "prenom",
        "voornaam",
    ),
    "last_name": (
        "last_name",
        "family_name",
        "lastname",
        "surname",
        "nachname",
        "nom",
        "nom_de_famille",
        "achternaam",
    ),
    # {{ recipient.organisation }}: Outlook's and Mailchimp's "Company", Google's
    # "Organization Name" (new export) and "Organization 1 - Name" (old one).
    "organisation": (
        "organisation",
        "organization",
        "company",
        "organisation_name",
        "organization_name",
        "organization_1_name",
        "company_name",
        "firma",
        "société",
        "societe",
        "entreprise",
        "bedrijf",
    ),
}
ROLE_NAMES = {
    "email": "address",
    "first_name": "first name",
    "last_name": "last name",
    "organisation": "organisation",
    "name": "full name",  # named in summaries when it is what greets members
}
# Columns that, when filled in, say the contact left the list: Mailchimp's export of
# unsubscribed ("UNSUB_TIME") and cleaned ("CLEAN_TIME", addresses that bounced) contacts.
# Such a file passed as the members' list must mail none of them.
LEFT_LIST_COLUMNS = ("unsub_time", "clean_time")
# Several addresses in one cell, as Google Contacts writes them.
MULTI_ADDRESS_SEPARATOR = " ::: "
# An address as mail programs copy it: "Jane Doe <jane@x.org>", "<jane@x.org>" or a
# "mailto:" link. The address is unambiguous, so it is used (and the rows are named).
_BRACKETED = re.compile(r"\A[^<>]*<\s*(?:mailto:)?(?P<address>[^<>]+?)\s*>\Z", re.I)
_MAILTO = re.compile(r"\Amailto:(?P<address>[^?]+)\Z", re.I)


def unwrap_address(raw: str) -> str:
    """The address inside "Jane Doe <jane@x.org>", "<jane@x.org>" or "mailto:jane@x.org"
    (as mail programs copy it), else ``raw`` stripped and otherwise unchanged."""
    raw = raw.strip()
    wrapped = _BRACKETED.match(raw) or _MAILTO.match(raw)
    if wrapped and "@" in wrapped.group("address") and not other_address_shown(raw):
        return wrapped.group("address")
    return raw


def other_address_shown(raw: str) -> str:
    """The address a "Name <address>" value shows as its name when that is another address
    than the one in <…> ("priya@member.org <someone@else.org>": the chair reads Priya's,
    the mail would go to the other); "" when there is none. Such a value is never unwrapped:
    which one was meant cannot be told."""
    wrapped = _BRACKETED.match(raw.strip())
    if not wrapped:
        return ""
    name = raw.strip()[: wrapped.start("address")].rsplit("<", 1)[0]
    inner = wrapped.group("address").removeprefix("mailto:").strip().casefold()
    for shown in re.findall(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+", name):
        if shown.casefold() != inner:
            return shown
    return ""


# Invisible characters an address picks up when copied from a web page, Teams or a PDF (zero
# width spaces and joiners, word joiner, a BOM where two CSV files were joined): never part of
# an address, and impossible for the chair to see, let alone fix, in a spreadsheet.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


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
    ``accepted``, ``invalid``, ``no_address``, ``duplicates``, ``suppressed`` or
    ``unsubscribed``.
    """

    rows: int = 0
    accepted: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (row, value, reason)
    duplicates: list[tuple[int, str, int]] = field(default_factory=list)  # (row, addr, first)
    suppressed: list[tuple[int, str]] = field(default_factory=list)  # (row, address)
    unsubscribed: list[int] = field(default_factory=list)  # rows
    columns: dict[str, str] = field(default_factory=dict)  # role -> header cell used for it
    several: list[int] = field(default_factory=list)  # rows whose cell held several addresses
    # Rows whose cell held a name or "mailto:" around the address ("Jane <jane@x.org>").
    bracketed: list[int] = field(default_factory=list)
    # Rows with an empty address cell: contacts exports (Google, Outlook) hold people known
    # by phone only. Skipped and listed, not invalid: there is nothing to correct or send.
    no_address: list[int] = field(default_factory=list)
    encoding: str = ""  # "" for UTF-8, else e.g. "Windows-1252" (csvfile.ENCODING_NAMES)
    # Read as Windows-1252 (a guess): members whose name holds '?' where a letter belongs
    # (the export's code page had no 'Ł', so Outlook wrote '?'), and a few names with
    # accents as read, for the chair to judge the guess by. (row, name as read)
    lost_letters: list[tuple[int, str]] = field(default_factory=list)
    accented: list[tuple[int, str]] = field(default_factory=list)

    def columns_line(self) -> str:
        """Which column was used for what, e.g. ``address 'E-mail Address', …``."""
        return ", ".join(f"{ROLE_NAMES[role]} {raw!r}" for role, raw in self.columns.items())

    def summary_lines(self) -> list[str]:
        """Short lines for the terminal, e.g. ``2 invalid (rows 5, 9)``."""
        lines = [f"{_plural(self.rows, 'row')} read, {self.accepted} accepted"]
        if self.invalid:
            rows = [r for r, _, _ in self.invalid]
            lines.append(f"{len(rows)} invalid ({_rows_phrase(rows)})")
        if self.no_address:
            lines.append(
                f"{len(self.no_address)} without an address ({_rows_phrase(self.no_address)})"
            )
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

    def encoding_line(self) -> str:
        """What a file that is not UTF-8 was read as; ANSI may hold the wrong code page."""
        if self.encoding == "Windows-1252":
            return (
                "read as Windows-1252 (an ANSI export, not UTF-8): check that accented "
                "names look right in a dry run"
            )
        return f"read as {self.encoding}" if self.encoding else ""

    def lost_letters_line(self) -> str:
        """Which members' names lost letters in an ANSI export, why, and what to do."""
        if not self.lost_letters:
            return ""
        count = len(self.lost_letters)
        shown = ", ".join(f"row {row} {name!r}" for row, name in self.lost_letters[:5])
        more = f" and {count - 5} more" if count > 5 else ""
        return (
            f"{_plural(count, 'name')} {'holds' if count == 1 else 'hold'} '?' where a letter "
            f"belongs: {shown}{more}. The "
            "list is a Windows-1252 (ANSI) export, whose code page has no such letter (Ł, "
            "ő, ș, …), so the export wrote '?': members would read 'Dear ?ukasz'"
        )

    def accented_line(self) -> str:
        """A few names with accents as read, to judge a Windows-1252 read by."""
        if not self.accented:
            return ""
        return "names as read: " + ", ".join(f"row {r} {name!r}" for r, name in self.accented)

    def note_lines(self) -> list[str]:
        """What was read other than as written: the summary's and check's notes."""
        lines = [self.several_line()] if self.several else []
        if self.bracketed:
            count = len(self.bracketed)
            lines.append(
                f"{_plural(count, 'row')} held a name or 'mailto:' around the address: used "
                f"the address ({_rows_phrase(self.bracketed)})"
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


def _roles(path: Path, header: Header) -> dict[str, int]:
    """Column index of the address, first and last name, recognised by their aliases; two
    candidate address columns are an error naming both."""
    roles: dict[str, int] = {}
    for role, aliases in ALIASES.items():
        candidates = [header.names.index(n) for n in aliases if n in header.names]
        if role != "email" and role in header.names:
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
            roles[role] = candidates[0]
    return roles


def _check_columns(path: Path, header: Header) -> None:
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
    if "email" not in _roles(path, header):
        found = ", ".join(repr(c) for c in seen.values()) or "none"
        raise RecipientsError(
            f"no 'email' column (columns found: {found})",
            path=path,
            row=1,
            hint="add a column headed 'email' (or 'Email Address', 'E-mail Address') "
            "holding the addresses",
        )


def _open_csv(path: Path) -> tuple[TextIO, Header]:
    """Open ``path`` for streaming and read its header; the caller closes the file."""
    return open_csv(path, _check_columns)


def read_columns(path: Path) -> list[str]:
    """The normalised column names (for checking template variables against the list).

    Only the header is read: an encoding problem further down is found by
    :func:`iter_recipients`.
    """
    file, header = _open_csv(Path(path))
    with file:
        names = [name for name in header.names if name]
        return names + [role for role in _roles(path, header) if role not in names]


# --- streaming ----------------------------------------------------------------------------


def _ansi_names(report: RecipientReport, row: int, cells: list[str]) -> None:
    """Record the name (and organisation) of a member of a Windows-1252 list that lost
    letters, or a name that shows accents as read."""
    cells = [_clean_text(cell) for cell in cells if cell.strip()]
    lost = [cell for cell in cells if _LOST_LETTER.search(cell)]
    if lost:
        report.lost_letters.append((row, _shorten(", ".join(lost))))
    elif len(report.accented) < ACCENTED_SHOWN:
        accented = next((cell for cell in cells if not cell.isascii()), "")
        if accented:
            report.accented.append((row, _shorten(accented)))


def _check_swallowed_rows(
    path: Path, row: int, values: list[str], delimiter: str, width: int, email_at: int
) -> None:
    """A cell running over several lines is fine ("Klinik\nBerlin"), but one whose later
    lines read as whole member rows is a double quote never closed: every row up to the next
    quote (or the end of the file) became part of that cell, and those members would be
    missed without a word. Refuse the file at the row where the cell starts."""
    for value in values:
        lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")[1:]
        for line in lines:
            cells = next(csv.reader([line], delimiter=delimiter), [])
            if len(cells) < width or len(cells) <= email_at:
                continue
            address, _ = validate_address(cells[email_at].strip())
            if address is None:
                continue
            raise RecipientsError(
                f'a double quote (") in this row is not closed where the row ends: the rows '
                f"after it ({address} among them) were read as part of one cell",
                path=path,
                row=row,
                hint='close the quote or delete it (a quote inside a cell is written "")',
            )


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

    ``suppressed`` holds casefolded addresses
    (see :func:`newsletter.members.suppression.load_suppressed`).
    Raises :class:`RecipientsError` for a file that cannot be used at all; because this is
    a generator, an encoding error late in the file surfaces only when iteration reaches it.
    """
    path = Path(path)
    report = report if report is not None else RecipientReport()
    file, header = _open_csv(path)
    names = header.names
    width = len(names)
    roles = _roles(path, header)
    email_at = roles["email"]
    # Recognised columns under their aliases ("E-mail Address") also go by the role names.
    role_columns = [(role, i) for role, i in roles.items() if names[i] != role]
    report.columns = {role: header.raw[i] for role, i in roles.items()}
    if "first_name" not in roles and "name" in names:  # greetings use the full name
        report.columns = {
            **{k: v for k, v in report.columns.items() if k == "email"},
            "name": header.raw[names.index("name")],
            **{k: v for k, v in report.columns.items() if k != "email"},
        }
    report.encoding = header.encoding
    # Read as Windows-1252, the names members are greeted and addressed by are checked for
    # letters the export lost: the role columns and a full-name column.
    ansi = header.encoding == "Windows-1252"
    person_at = [roles[r] for r in ("first_name", "last_name") if r in roles]
    person_at += [names.index("name")] if "name" in names and not person_at else []
    org_at = [roles["organisation"]] if "organisation" in roles else []
    subscribed_at = names.index("subscribed") if "subscribed" in names else None
    left_at = [names.index(name) for name in LEFT_LIST_COLUMNS if name in names]
    # Blank-headed columns (Excel's trailing empty columns) have no name to be used by.
    named = [(i, n) for i, n in enumerate(names) if n]
    all_named = len(named) == width
    seen: dict[str, int] = {}  # casefolded address -> first row; the only growing state
    separator = {";": "semicolon", "\t": "tab"}.get(header.delimiter, "comma")
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
                if any("\n" in value or "\r" in value for value in values):
                    _check_swallowed_rows(path, row, values, header.delimiter, width, email_at)
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
                                f"header has columns (an unquoted {separator}?)",
                            )
                        )
                        continue
                    else:
                        del values[width:]  # stray trailing delimiters are harmless
                if any(values[i] for i in left_at):
                    report.unsubscribed.append(row)
                    continue
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
                raw = _INVISIBLE.sub("", values[email_at]).strip()
                if MULTI_ADDRESS_SEPARATOR in raw:
                    raw = raw.split(MULTI_ADDRESS_SEPARATOR, 1)[0].strip()
                    report.several.append(row)
                if not raw:
                    report.no_address.append(row)
                    continue
                unwrapped = unwrap_address(raw)
                if unwrapped != raw:
                    raw = unwrapped
                    report.bracketed.append(row)
                address, reason = validate_address(raw)
                shown = other_address_shown(raw) if address is None else ""
                if shown:
                    reason = f"it shows {shown} but holds another address in <…>: which is meant?"
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
                if ansi:
                    person = " ".join(values[i] for i in person_at)
                    _ansi_names(report, row, [person, *(values[i] for i in org_at)])
                yield Recipient(email=address, row=row, fields=MappingProxyType(fields))
        except UnicodeDecodeError as error:
            raise decode_error(path, error) from None
        except csv.Error as error:
            raise csv_error(path, row + 1, error) from None
