"""Issue dates as chairs write them: ``YYYY-MM-DD``, or the month's name in English.

Month names are shared with the skeleton (slugs such as ``december-2026``). A date written
with numbers only in another order (``01/12/2023``) is refused, never guessed.
"""

from __future__ import annotations

import datetime as dt
import re

# Month names and the abbreviations people write, as in dates and slugs.
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY = (
    r"(?:(?P<weekday>mon|tue|wed|thu|fri|sat|sun)(?:day|s|nes|nesday|rs|rsday|urday)?\.?,?\s+)?"
)
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[a-z]+)\.?"
_YEAR = r"(?P<year>\d{4})"
# "1 December 2023", "Friday 1st Dec 2023" (British); "December 1, 2023" (American): the
# month is a word, so neither can be misread, unlike 01/12/2023.
_WRITTEN_DATES = (
    re.compile(rf"{_WEEKDAY}{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}"),
    re.compile(rf"{_WEEKDAY}{_MONTH}\s+{_DAY},?\s+{_YEAR}"),
)
_YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_NUMERIC_DATE = re.compile(r"(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<year>\d{4})")


def read_date(text: str) -> dt.date:
    """An issue date: ``YYYY-MM-DD``, or written out with the month's name in English
    (``1 December 2023``, ``December 1, 2023``). Numbers only in another order
    (``01/12/2023``: 1 December in Britain, 12 January in the US) are refused; the
    ValueError says what to write instead, in the YYYY-MM-DD form."""
    value = " ".join(text.split())
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    year_first = _YEAR_FIRST.fullmatch(value)
    if year_first:  # 2023-12-1, 2023/12/01: the year first is always year, month, day
        year, month, day = (int(part) for part in year_first.groups())
        try:
            return dt.date(year, month, day)
        except ValueError:
            month_name = (
                f"{dt.date(year, month, 1):%B %Y} has no day {day}: " if 1 <= month <= 12 else ""
            )
            raise ValueError(f"{month_name}write it as YYYY-MM-DD, e.g. 2023-12-14") from None
    lowered = value.lower()
    for pattern in _WRITTEN_DATES:
        match = pattern.fullmatch(lowered)
        if match and match.group("month") in MONTHS:
            day, year = int(match.group("day")), int(match.group("year"))
            month = MONTHS[match.group("month")]
            try:
                day_ = dt.date(year, month, day)
            except ValueError:
                raise ValueError(
                    f"{dt.date(year, month, 1):%B %Y} has no day {day}: write it as YYYY-MM-DD"
                ) from None
            weekday = match.group("weekday")
            if weekday and weekday != f"{day_:%a}".lower():
                # "Monday 1 December 2023" was a Friday: which of the two was meant?
                raise ValueError(
                    f"{day_.day} {day_:%B %Y} is a {day_:%A}, not a "
                    f"{value.split()[0].rstrip(',.')}: write it as YYYY-MM-DD, "
                    f"e.g. {day_.isoformat()}"
                )
            return day_
    numeric = _NUMERIC_DATE.fullmatch(value)
    if numeric:
        a, b, year = (int(numeric.group(n)) for n in ("a", "b", "year"))
        readings = []
        for day, month in ((a, b), (b, a)):
            try:
                readings.append(dt.date(year, month, day))
            except ValueError:
                continue
        readings = sorted(set(readings))
        if len(readings) == 2:
            first, second = readings
            raise ValueError(
                f"it could be {first.day} {first:%B} or {second.day} {second:%B}: "
                f"write it as YYYY-MM-DD, {first.isoformat()} or {second.isoformat()}"
            )
        if readings:
            raise ValueError(f"write it as YYYY-MM-DD: {readings[0].isoformat()}")
    raise ValueError("write it as YYYY-MM-DD, e.g. 2023-12-14 (or 14 December 2023)")
