"""The README's exit-status table is generated from ExitStatus, and a stale one fails here.

Only the block between the markers is read (generated text, not prose); after changing
the enum, rewrite it with ``python -m newsletter.cli.reference README.md``."""

from __future__ import annotations

from support.projects import ROOT

from newsletter.cli.reference import BEGIN, END, exit_status_table, marked_block, with_table
from newsletter.common.exitstatus import ExitStatus

README = ROOT / "README.md"


def test_the_readme_table_is_the_one_the_enum_generates() -> None:
    block = marked_block(README.read_text(encoding="utf-8"))
    assert block == exit_status_table(), (
        "README exit-status table is stale: run python -m newsletter.cli.reference README.md"
    )


def test_the_table_has_one_row_per_status_with_its_meaning() -> None:
    rows = exit_status_table().splitlines()[2:]
    assert rows == [f"| `{int(s)}` | {s.meaning} |" for s in ExitStatus]


def test_a_stale_table_is_told_apart_and_rewritten() -> None:
    stale = f"intro\n{BEGIN}\n| `0` | done |\n{END}\nafter\n"
    assert marked_block(stale) != exit_status_table()
    fixed = with_table(stale)
    assert marked_block(fixed) == exit_status_table()
    assert fixed.startswith(f"intro\n{BEGIN}\n") and fixed.endswith(f"{END}\nafter\n")
    assert with_table(fixed) == fixed  # rewriting a fresh table changes nothing
