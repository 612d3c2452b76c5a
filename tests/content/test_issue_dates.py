"""Issue dates as chairs write them: month names, other separators, and the numeric dates
that read two ways, refused with both readings and what to write."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.helpers import write_probe

from newsletter.common.errors import IssueError
from newsletter.content.issue import parse_issue

# ---- dates written out -------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    ["1 December 2023", "December 1, 2023", "1st December 2023", "Dec 1 2023",
     "Friday 1 December 2023", "friday, december 1, 2023"],
)  # fmt: skip
def test_a_date_written_out_with_the_month_name_is_read(tmp_path: Path, written: str) -> None:
    """'date: 1 December 2023' was refused although nobody can misread it."""
    assert parse_issue(write_probe(tmp_path, f"date: {written}\n")).date == dt.date(2023, 12, 1)


def test_an_ambiguous_numeric_date_is_refused_naming_the_line_and_both_readings(
    tmp_path: Path,
) -> None:
    with pytest.raises(IssueError) as caught:
        parse_issue(write_probe(tmp_path, "date: 01/12/2023\n"))
    message = str(caught.value)
    assert "probe.md:5:" in message and "\n" not in message
    assert "2023-12-01" in message and "2023-01-12" in message


@pytest.mark.parametrize(
    ("written", "shown"),
    [("14/12/2023", "2023-12-14"), ("Monday 1 December 2023", "is a Friday"),
     ("31 February 2024", "February 2024 has no day 31")],
)  # fmt: skip
def test_a_wrong_or_one_way_numeric_date_says_what_to_write(
    tmp_path: Path, written: str, shown: str
) -> None:
    with pytest.raises(IssueError, match="YYYY-MM-DD") as caught:
        parse_issue(write_probe(tmp_path, f"date: {written}\n"))
    assert shown in str(caught.value)


@pytest.mark.parametrize("written", ["2023-12-1", "2023/12/01", "2023.12.01"])
def test_a_year_first_date_with_other_separators_is_read(tmp_path: Path, written: str) -> None:
    assert parse_issue(write_probe(tmp_path, f"date: {written}\n")).date == dt.date(2023, 12, 1)
