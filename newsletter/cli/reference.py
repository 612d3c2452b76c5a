"""Reference text generated from the code, so the documentation cannot drift from it.

The README's exit-status table sits between two markers and is this module's output;
a test fails when they differ. After changing :class:`ExitStatus`, rewrite it with
``python -m newsletter.cli.reference README.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..common.exitstatus import ExitStatus

BEGIN = "<!-- exit-status:begin -->"
END = "<!-- exit-status:end -->"


def exit_status_table() -> str:
    """The exit-status table (Markdown), one row per :class:`ExitStatus` member."""
    rows = ["| exit status | meaning |", "| --- | --- |"]
    rows += [f"| `{status.value}` | {status.meaning} |" for status in ExitStatus]
    return "\n".join(rows) + "\n"


def marked_block(text: str) -> str:
    """What ``text`` holds between the exit-status markers (ValueError if they are missing)."""
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END, start)].strip("\n") + "\n"


def with_table(text: str) -> str:
    """``text`` with the block between the markers replaced by :func:`exit_status_table`."""
    start = text.index(BEGIN) + len(BEGIN)
    return text[:start] + "\n" + exit_status_table() + text[text.index(END, start) :]


if __name__ == "__main__":  # python -m newsletter.cli.reference README.md
    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
