"""`newsletter new`: the slug as typed or tab-completed, the month it names (the coming
December, abbreviations, typos refused with what was meant), a date written out, and the
sections the organisation lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.helpers import (
    one_line,
    run_cli,
)

from newsletter.common.config import Settings
from newsletter.content.skeleton import create_issue, issue_date


def test_new_takes_a_written_out_date(project: Path) -> None:
    result = run_cli(["new", "winter-special", "--date", "3 December 2026"])
    assert result.returncode == 0, result.stderr
    assert "date: 2026-12-03" in (project / "issues" / "winter-special.md").read_text()
    refused = run_cli(["new", "other", "--date", "03/12/2026"])
    assert refused.returncode == 2
    assert "2026-12-03" in refused.stderr and "2026-03-12" in refused.stderr


def test_new_reads_the_issues_path_as_tab_completion_writes_it(project: Path) -> None:
    # Every command takes `issues/SLUG.md` for SLUG (README, Writing an issue); `new` refused
    # it as "not a usable slug" while accepting `SLUG.md`.
    result = run_cli(["new", "issues/february-2027.md"])
    assert result.returncode == 0, result.stderr
    assert (project / "issues" / "february-2027.md").is_file()
    assert "2027-02-01" in result.stdout
    assert not (project / "issues" / "issues").exists()


def test_new_still_refuses_a_path_into_another_folder(project: Path) -> None:
    result = run_cli(["new", "drafts/february-2027.md"])
    assert result.returncode == 2
    assert "not a usable slug" in result.stderr
    assert not list(project.rglob("february-2027.md"))


# ---- new: a month it cannot place ------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "meant"),
    [
        ("janaury-2027", "january-2027"),
        ("february-27", "february-2027"),
        ("decmber-2026-special", "december-2026-special"),
    ],
)
def test_new_refuses_a_month_it_cannot_place_and_says_what_was_meant(
    project: Path, slug: str, meant: str
) -> None:
    result = run_cli(["new", slug])
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"did you mean {meant}?" in one_line(result.stderr)
    assert not (project / "issues" / f"{slug}.md").exists()


@pytest.mark.parametrize("slug", ["2031-feb", "feb-2031"])  # not this month: dated the 1st
def test_new_reads_month_abbreviations_and_says_the_title_and_date(
    project: Path, slug: str
) -> None:
    result = run_cli(["new", slug])
    assert result.returncode == 0, result.stderr
    assert "February 2031" in result.stdout and "dated 2031-02-01" in result.stdout
    text = (project / "issues" / f"{slug}.md").read_text(encoding="utf-8")
    assert "February 2031" in text and "2031-02-01" in text
    # In the month it names, it is dated today, as before.
    assert issue_date(slug, dt.date(2031, 2, 17)) == dt.date(2031, 2, 17)


def test_new_with_a_date_takes_any_slug(project: Path) -> None:
    result = run_cli(["new", "janaury-2027", "--date", "2027-01-14"])
    assert result.returncode == 0, result.stderr
    assert "dated 2027-01-14" in result.stdout


@pytest.mark.parametrize(
    ("slug", "today", "expected"),
    [
        ("december", dt.date(2026, 11, 29), dt.date(2026, 12, 1)),
        ("january", dt.date(2026, 11, 29), dt.date(2027, 1, 1)),
        ("nov-special", dt.date(2026, 11, 29), dt.date(2026, 11, 29)),  # this month: today
        ("what-may-come", dt.date(2026, 11, 29), dt.date(2026, 11, 29)),  # no month meant
    ],
)
def test_a_slug_that_is_a_months_name_is_the_coming_such_month(
    slug: str, today: dt.date, expected: dt.date
) -> None:
    """'newsletter new december' was refused ("cannot tell which month"); before that it
    was titled and dated for the current month. The chair means the coming December."""
    from newsletter.content.skeleton import issue_date, unplaced_month

    assert unplaced_month(slug, today) is None
    assert issue_date(slug, today) == expected


def test_new_takes_the_month_from_the_slug_and_sections_from_the_organisation(
    project: Path, ready: Settings
) -> None:
    path = create_issue(
        ready.issues_dir, ready.templates_dir, "march-2024", today=dt.date(2023, 12, 20)
    )
    text = path.read_text("utf-8")
    assert 'title: "Cluster News – March 2024"' in text and "date: 2024-03-01\n" in text
    assert "draft: true\n" in text
    assert "\n# Cluster’s events\n" in text and "\n# Spotlight on…\n" in text
    # The same month as today: today's date.
    same = create_issue(
        ready.issues_dir, ready.templates_dir, "december-2023-b", today=dt.date(2023, 12, 20)
    )
    assert "date: 2023-12-20\n" in same.read_text("utf-8")
    # Without a `sections` list: a neutral default, not one organisation's bulletin.
    toml = ready.templates_dir / "organisation.toml"
    content = toml.read_text("utf-8")
    start = content.index("sections = [")
    toml.write_text(content[:start] + content[content.index("]", start) + 2 :], "utf-8")
    neutral = create_issue(ready.issues_dir, ready.templates_dir, "april-2024").read_text("utf-8")
    headings = [line for line in neutral.splitlines() if line.startswith("# ")]
    assert headings == ["# News", "# Events", "# Opportunities"]
