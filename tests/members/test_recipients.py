"""The member list: CSV edge cases, validation, de-duplication, exclusions and streaming."""

from __future__ import annotations

from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from support.projects import ROOT

from newsletter.common.errors import RecipientsError
from newsletter.members.recipients import (
    Recipient,
    RecipientReport,
    iter_recipients,
    normalise_column,
    read_columns,
)


def write(tmp_path: Path, content: str | bytes, name: str = "recipients.csv") -> Path:
    """Write exact bytes (no newline translation), so line endings are what the test says."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_all(path: Path, **kwargs: object) -> tuple[list[Recipient], RecipientReport]:
    report = RecipientReport()
    return list(iter_recipients(path, report=report, **kwargs)), report  # type: ignore[arg-type]


def validator_reason(address: str) -> str:
    with pytest.raises(EmailNotValidError) as caught:
        validate_email(address, check_deliverability=False)
    return str(caught.value)


# --- columns and formats ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("First Name", "first_name"),
        (" E-Mail ", "e_mail"),
        ("EMAIL", "email"),
        ("Organisation  (full)", "organisation_full"),
        ("last_name", "last_name"),
        ("Prénom", "prénom"),
        ("\ufeffemail", "email"),
    ],
)
def test_normalise_column(header: str, expected: str) -> None:
    assert normalise_column(header) == expected


def test_utf8_bom_is_dropped_from_the_first_header(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfemail,first_name\r\nann@example.org,Ann\r\n")
    assert read_columns(path) == ["email", "first_name"]
    (ann,), report = read_all(path)
    assert ann.email == "ann@example.org"
    assert ann.first_name == "Ann"
    assert report.rows == 1 and report.accepted == 1


@pytest.mark.parametrize(
    ("content", "fields"),
    [
        pytest.param(
            "email;first_name;organisation\nann@example.org;Ann;Smith, Jones & Co\n",
            {"email": "ann@example.org", "first_name": "Ann", "organisation": "Smith, Jones & Co"},
            id="semicolons-keep-commas-in-values",
        ),
        pytest.param(
            "email\tfirst_name\tlast_name\nann@example.org\tAnn\tLee, Jr\n",
            {"email": "ann@example.org", "first_name": "Ann", "last_name": "Lee, Jr"},
            id="tabs",
        ),
        # Three semicolons inside a quoted header, two real commas: the delimiter is the comma.
        pytest.param(
            'email,"notes; a; b; c",town\nann@example.org,x;y,Leeds\n',
            {"email": "ann@example.org", "notes_a_b_c": "x;y", "town": "Leeds"},
            id="a-quoted-header-does-not-choose-it",
        ),
    ],
)
def test_the_delimiter_is_the_files_own(
    tmp_path: Path, content: str, fields: dict[str, str]
) -> None:
    (ann,), _ = read_all(write(tmp_path, content))
    assert dict(ann.fields) == fields
    if "first_name" in fields:
        assert ann.first_name == fields["first_name"]


def test_upper_case_and_spaced_headers_are_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        " EMAIL , First Name ,Last-Name, Organisation \n ann@example.org ,  Ann , Lee , NHS \n",
    )
    assert read_columns(path) == ["email", "first_name", "last_name", "organisation"]
    (ann,), _ = read_all(path)
    assert ann.email == "ann@example.org"
    assert dict(ann.fields) == {
        "email": "ann@example.org",
        "first_name": "Ann",
        "last_name": "Lee",
        "organisation": "NHS",
    }
    assert ann.name == "Ann Lee"


def test_classic_mac_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "email,first_name\rann@example.org,Ann\rbob@example.org,Bob\r")
    recipients, _ = read_all(path)
    assert [(r.email, r.row) for r in recipients] == [
        ("ann@example.org", 2),
        ("bob@example.org", 3),
    ]


def test_blank_header_columns_are_ignored(tmp_path: Path) -> None:
    # Excel often exports trailing empty columns with empty headers.
    path = write(tmp_path, "email,first_name,,\nann@example.org,Ann,,\n")
    assert read_columns(path) == ["email", "first_name"]
    (ann,), report = read_all(path)
    assert dict(ann.fields) == {"email": "ann@example.org", "first_name": "Ann"}
    assert report.invalid == []


# --- file-level errors ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(RecipientsError, match="file not found") as caught:
        read_columns(path)
    assert caught.value.path == path
    with pytest.raises(RecipientsError, match="file not found"):
        next(iter_recipients(path))


def test_missing_email_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name,organisation\nAnn,NHS\n")
    with pytest.raises(RecipientsError) as caught:
        read_columns(path)
    error = caught.value
    assert error.row == 1
    assert "no 'email' column" in error.message
    assert "'name'" in error.message and "'organisation'" in error.message
    assert str(error).startswith(f"{path}, row 1: ")
    with pytest.raises(RecipientsError, match="no 'email' column"):
        list(iter_recipients(path))


def test_email_like_column_is_the_address_column(tmp_path: Path) -> None:
    path = write(tmp_path, "E-Mail Address,name\nann@example.org,Dr. Ann Lee\n")
    assert read_columns(path) == ["e_mail_address", "name", "email"]
    report = RecipientReport()
    [ann] = iter_recipients(path, report=report)
    assert ann.email == "ann@example.org" and ann.fields["email"] == "ann@example.org"
    assert report.columns_line() == "address 'E-Mail Address', full name 'name'"
    # Only a full name: greet with it as written, never a split fragment ("Dr.").
    assert ann.first_name == "Dr. Ann Lee"


def test_two_address_columns_are_refused_naming_both(tmp_path: Path) -> None:
    path = write(tmp_path, "Email,E-mail Address\nann@example.org,ann@example.org\n")
    with pytest.raises(RecipientsError) as caught:
        read_columns(path)
    assert caught.value.message == "two address columns: 'Email' and 'E-mail Address'"
    assert caught.value.row == 1


def test_several_addresses_in_one_cell_use_the_first(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Given Name,E-mail 1 - Value\nAnn,ann@example.org ::: ann.lee@example.net\nBo,bo@x.org\n",
    )
    report = RecipientReport()
    ann, bo = iter_recipients(path, report=report)
    assert (ann.email, ann.first_name, bo.email) == ("ann@example.org", "Ann", "bo@x.org")
    assert report.several_line() == "1 row held several addresses: used the first (row 2)"
    assert report.columns_line() == "address 'E-mail 1 - Value', first name 'Given Name'"


def test_two_columns_with_the_same_name_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "email,First Name,first_name\nann@example.org,Ann,Anne\n")
    with pytest.raises(RecipientsError, match="'First Name' and 'first_name'") as caught:
        read_columns(path)
    assert caught.value.row == 1


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content)
    with pytest.raises(RecipientsError, match="the file is empty") as caught:
        read_columns(path)
    assert caught.value.path == path
    with pytest.raises(RecipientsError, match="the file is empty"):
        list(iter_recipients(path))


def test_blank_first_row_with_data_below(tmp_path: Path) -> None:
    path = write(tmp_path, "\nemail\nann@example.org\n")
    with pytest.raises(RecipientsError, match="row 1 is empty"):
        read_columns(path)


def test_header_only_file_yields_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "email,first_name\n")
    assert read_columns(path) == ["email", "first_name"]
    recipients, report = read_all(path)
    assert recipients == []
    assert (report.rows, report.accepted) == (0, 0)
    assert report.summary_lines() == ["0 rows read, 0 accepted"]


def test_ansi_file_is_read_as_windows_1252(tmp_path: Path) -> None:
    # Outlook's CSV export and Excel's plain "CSV" are in the ANSI code page, not UTF-8.
    path = write(
        tmp_path,
        "email,first_name\nann@example.org,Ann\njo@example.org,Jos\u00e9 \u2013 \u00a3\n".encode(
            "cp1252"
        ),
    )
    (ann, jo), report = read_all(path)
    assert jo.first_name == "Jos\u00e9 \u2013 \u00a3"
    assert report.encoding == "Windows-1252"
    assert "check that accented names look right" in report.encoding_line()


def test_mixed_utf8_and_ansi_is_refused_at_the_exact_row(tmp_path: Path) -> None:
    # UTF-8 names with one ANSI byte pasted in: no single encoding reads it right. The
    # strict decoder works in 8 KB chunks, i.e. well before row 900 here: the reported row
    # must still be the one with the bad byte, not where the chunk began.
    rows = [f"member{i}@example.org,Name{i}" for i in range(2, 1500)]
    rows[0] = "zoe@example.org,Zo\u00eb"
    path = write(tmp_path, ("email,name\n" + "\n".join(rows) + "\n").encode("utf-8"))
    data = path.read_bytes().replace(b"member900@example.org,Name900", b"pound@example.org,\xa35")
    path.write_bytes(data)
    report = RecipientReport()
    with pytest.raises(RecipientsError) as caught:
        for _ in iter_recipients(path, report=report):
            pass
    assert caught.value.row == 900
    assert "byte 0xa3" in caught.value.message
    assert "CSV UTF-8 (Comma delimited)" in str(caught.value)


def test_ansi_header_is_read_by_read_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "email,pr\u00e9nom\n".encode("latin-1"))
    # Decoded from Windows-1252; a recognised alias ("Prénom") also goes by its role name.
    assert read_columns(path) == ["email", "pr\u00e9nom", "first_name"]


def test_utf16_unicode_text_is_read(tmp_path: Path) -> None:
    # Excel's "Unicode Text": UTF-16 with a BOM, TAB-separated.
    path = write(tmp_path, "email\tname\r\nann@example.org\tAnn L\u00e9e\r\n".encode("utf-16"))
    assert read_columns(path) == ["email", "name"]
    (ann,), report = read_all(path)
    assert (ann.email, ann.name, report.encoding) == ("ann@example.org", "Ann L\u00e9e", "UTF-16")


def test_nul_byte_in_an_address_makes_the_row_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, b"email\nann@example.org\nbob@exa\x00mple.org\n")
    recipients, report = read_all(path)
    assert [r.email for r in recipients] == ["ann@example.org"]
    assert report.invalid == [
        (3, "bob@exa\x00mple.org", "contains a line break or control character")
    ]


# --- rows -------------------------------------------------------------------------------------


def test_duplicates_in_different_case_keep_the_first(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name\n"
        "Ann@Example.org,Ann\n"
        "bob@example.org,Bob\n"
        "ANN@EXAMPLE.ORG,Annie\n"
        " ann@example.ORG ,Ann again\n",
    )
    recipients, report = read_all(path)
    assert [(r.email, r.row, r.first_name) for r in recipients] == [
        ("Ann@example.org", 2, "Ann"),
        ("bob@example.org", 3, "Bob"),
    ]
    # The validator lower-cases the domain only; duplicates compare casefolded.
    assert report.duplicates == [(4, "ANN@example.org", 2), (5, "ann@example.org", 2)]
    assert "2 duplicates (row 4 same as row 2, row 5 same as row 2)" in report.summary_lines()


def test_single_duplicate_summary(tmp_path: Path) -> None:
    path = write(tmp_path, "email\na@example.org\nb@example.org\nA@example.org\n")
    _, report = read_all(path)
    assert report.summary_lines() == [
        "3 rows read, 2 accepted",
        "1 duplicate (row 4, same as row 2)",
    ]


def test_invalid_addresses_are_reported_with_row_and_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name\n"
        "ann@example.org,Ann\n"
        "not-an-address,Bob\n"
        ",Carol\n"
        "dan@,Dan\n"
        "eve@example.org,Eve\n",
    )
    recipients, report = read_all(path)
    assert [r.email for r in recipients] == ["ann@example.org", "eve@example.org"]
    assert report.invalid == [
        (3, "not-an-address", validator_reason("not-an-address")),
        (5, "dan@", validator_reason("dan@")),
    ]
    # An empty address cell (a contact known by phone only) is skipped, not invalid.
    assert report.no_address == [4]
    assert report.invalid[0][2] == "An email address must have an @-sign."
    assert report.summary_lines() == [
        "5 rows read, 2 accepted",
        "2 invalid (rows 3, 5)",
        "1 without an address (row 4)",
    ]


def test_no_dns_lookup_is_made(tmp_path: Path) -> None:
    # A syntactically valid address at a domain that does not exist is accepted: no DNS.
    path = write(tmp_path, "email\nann@no-such-domain-for-newsletter-tests.example\n")
    (ann,), _ = read_all(path)
    assert ann.email == "ann@no-such-domain-for-newsletter-tests.example"


def test_completely_empty_rows_are_skipped_but_keep_row_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.org,Ann\n\n , \n,\nbob@example.org,Bob\n")
    recipients, report = read_all(path)
    assert [(r.email, r.row) for r in recipients] == [
        ("ann@example.org", 2),
        ("bob@example.org", 6),
    ]
    assert report.rows == 2
    assert report.invalid == []


def test_quoted_fields_with_newlines_and_commas_keep_row_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name,organisation\n"
        'ann@example.org,Ann,"Smith, Jones\nand Partners\r\nLLP"\n'
        'bad address,Bob,"One, Two"\n'
        'cat@example.org,"Cat\nKin","A\n\nB"\n'
        "dan@,Dan,X\n",
    )
    recipients, report = read_all(path)
    assert [(r.email, r.row) for r in recipients] == [
        ("ann@example.org", 2),
        ("cat@example.org", 4),
    ]
    assert recipients[0].fields["organisation"] == "Smith, Jones\nand Partners\r\nLLP"
    assert [row for row, _, _ in report.invalid] == [3, 5]


def test_names_with_line_breaks_are_flattened(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name,last_name\n"
        'ann@example.org,"Ann\r\nBcc: x@example.com","Lee\x0b\tSmith"\n',
    )
    (ann,), _ = read_all(path)
    assert ann.first_name == "Ann Bcc: x@example.com"
    assert ann.name == "Ann Bcc: x@example.com Lee Smith"
    for text in (ann.first_name, ann.name):
        assert "\r" not in text and "\n" not in text and "\x0b" not in text


def test_name_properties_fall_back_to_the_name_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'email,name\nann@example.org,"  Ann\nMarie  Lee "\nbob@example.org,\ncat@example.org,Cat\n',
    )
    ann, bob, cat = read_all(path)[0]
    # The full name as written, never a split fragment of it.
    assert (ann.first_name, ann.name) == ("Ann Marie Lee", "Ann Marie Lee")
    assert (bob.first_name, bob.name) == ("", "")
    assert (cat.first_name, cat.name) == ("Cat", "Cat")


def test_name_uses_first_and_last_name_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name,last_name,name\n"
        "ann@example.org,Ann,Lee,Dr A Lee\n"
        "bob@example.org,,Brown,\n"
        "cat@example.org,,,Cat Jones\n",
    )
    ann, bob, cat = read_all(path)[0]
    assert (ann.first_name, ann.name) == ("Ann", "Ann Lee")
    assert (bob.first_name, bob.name) == ("", "Brown")
    assert (cat.first_name, cat.name) == ("Cat Jones", "Cat Jones")


@pytest.mark.parametrize(
    "value",
    ['"ann@example.org\r\nBcc: eve@example.com"', '"ann@exam\nple.org"', "ann\x07@example.org"],
)
def test_address_with_control_characters_is_invalid(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"email,first_name\n{value},Ann\nbob@example.org,Bob\n")
    recipients, report = read_all(path)
    assert [(r.email, r.row) for r in recipients] == [("bob@example.org", 3)]
    ((row, _raw, reason),) = report.invalid
    assert row == 2
    assert reason == "contains a line break or control character"


def test_non_ascii_names_and_addresses_are_intact(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name,last_name\n"
        "zoe@example.org,Zoë,Brontë\n"
        "sian@example.net,Siân,Llŷr\n"
        "li@bücher.example,李,小龙\n"
        "李@example.com,李,小龙\n",
    )
    recipients, report = read_all(path)
    # Names stay as written; IDN domains become punycode so headers and the SMTP
    # envelope stay ASCII; a non-ASCII local part (needs SMTPUTF8) is reported invalid.
    assert [(r.email, r.name) for r in recipients] == [
        ("zoe@example.org", "Zoë Brontë"),
        ("sian@example.net", "Siân Llŷr"),
        ("li@xn--bcher-kva.example", "李 小龙"),
    ]
    assert [(row, value) for row, value, _ in report.invalid] == [(5, "李@example.com")]


def test_subscribed_column_excludes_false_like_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,Subscribed\n"
        "a@example.org,yes\n"
        "b@example.org,no\n"
        "c@example.org, FALSE \n"
        "d@example.org,0\n"
        "e@example.org,N\n"
        "f@example.org,\n"
        "g@example.org,TRUE\n"
        "h@example.org,maybe\n",
    )
    recipients, report = read_all(path)
    assert [r.email for r in recipients] == ["a@example.org", "f@example.org", "g@example.org"]
    assert report.unsubscribed == [3, 4, 5, 6]
    # An unclear value is not guessed: that member is not mailed, and the row is reported.
    assert report.invalid == [(9, "h@example.org", "subscribed is 'maybe', not yes or no")]
    assert "4 unsubscribed (rows 3, 4, 5, 6)" in report.summary_lines()


def test_suppressed_addresses_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nAnn@Example.org\nbob@example.org\nann@example.org\n")
    recipients, report = read_all(path, suppressed=frozenset({"ann@example.org"}))
    assert [r.email for r in recipients] == ["bob@example.org"]
    # The second Ann is a duplicate of the first, which is reported as suppressed.
    assert report.suppressed == [(2, "Ann@example.org")]
    assert report.duplicates == [(4, "ann@example.org", 2)]
    assert "1 suppressed (row 2)" in report.summary_lines()


def test_extra_fields_are_invalid_and_missing_ones_empty(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,first_name,last_name\n"
        "ann@example.org,Ann\n"
        "bob@example.org,Bob,Brown,extra\n"
        "cat@example.org,Cat,Cole,,\n",
    )
    recipients, report = read_all(path)
    assert [(r.email, dict(r.fields)) for r in recipients] == [
        ("ann@example.org", {"email": "ann@example.org", "first_name": "Ann", "last_name": ""}),
        ("cat@example.org", {"email": "cat@example.org", "first_name": "Cat", "last_name": "Cole"}),
    ]
    assert report.invalid == [
        (3, "bob@example.org", "1 value more than the header has columns (an unquoted comma?)")
    ]


def test_fields_hold_the_normalised_address_and_are_read_only(tmp_path: Path) -> None:
    path = write(tmp_path, "Email,Organisation\n  Ann@EXAMPLE.org ,NHS\n")
    (ann,), _ = read_all(path)
    assert ann.email == "Ann@example.org"
    assert ann.fields["email"] == "Ann@example.org"
    with pytest.raises(TypeError):
        ann.fields["email"] = "eve@example.com"  # type: ignore[index]


def test_report_counts_every_row_once_and_lists_are_capped(tmp_path: Path) -> None:
    lines = ["email,subscribed"]
    lines += [f"bad{i}," for i in range(12)]  # rows 2..13 invalid
    lines += ["ok@example.org,yes", "ok@example.org,yes", "off@example.org,no"]
    path = write(tmp_path, "\n".join(lines) + "\n")
    recipients, report = read_all(path, suppressed={"nobody@example.org"})
    assert len(recipients) == 1
    total = (
        report.accepted
        + len(report.invalid)
        + len(report.duplicates)
        + len(report.suppressed)
        + len(report.unsubscribed)
    )
    assert report.rows == total == 15
    assert report.summary_lines()[1] == "12 invalid (rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, …)"


def test_report_is_optional(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nann@example.org\nnot valid\n")
    assert [r.email for r in iter_recipients(path)] == ["ann@example.org"]


def test_example_file_is_valid() -> None:
    example = ROOT / "recipients.csv.example"
    recipients, report = read_all(example)
    assert report.invalid == [] and report.duplicates == []
    assert len(report.unsubscribed) == 1
    assert 5 <= len(recipients) <= 8
    assert any(r.first_name == "" for r in recipients)
    assert any(not r.name.isascii() for r in recipients)
    assert all(
        r.email.rsplit("@", 1)[1] in {"example.org", "example.com", "example.net"}
        for r in recipients
    )


# --- streaming --------------------------------------------------------------------------------


def test_iteration_is_lazy_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as out:
        out.write(b"email,first_name,subscribed\n")
        out.write("zoe@example.org,Zo\u00eb,yes\n".encode())  # UTF-8, so the end is mixed
        out.writelines(f"member{i}@example.org,M{i},yes\n".encode() for i in range(20_000))
        out.write(b"last@example.org,Ren\xe9e,yes\n")  # latin-1: invalid UTF-8, row 20003
    report = RecipientReport()
    recipients = iter_recipients(path, report=report)
    first = next(recipients)  # would raise here if the whole file were read up front
    assert (first.email, first.row) == ("zoe@example.org", 2)
    assert report.rows == 1
    count = 1
    with pytest.raises(RecipientsError) as caught:
        for _ in recipients:
            count += 1
    # The error surfaces only near the end (the decoder reads ahead at most one 8 KB chunk,
    # i.e. a few hundred rows), yet names the exact row holding the bad byte.
    assert 19_000 < count <= 20_000
    assert caught.value.row == 20_003
    assert str(caught.value).startswith(f"{path}, row 20003: is not UTF-8 text")
