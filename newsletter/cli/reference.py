"""The Reference pages of the documentation, generated from the code so they cannot drift.

    python -m newsletter.cli.reference docs/reference            # write every page
    python -m newsletter.cli.reference docs/reference --check    # exit 1 if one is stale

Each page (commands.md, settings.md, front-matter.md, exit-codes.md, checks.md,
file-formats.md) is made from one declaration in the code: the Typer app, the
:class:`~newsletter.common.config.Settings` fields, the front-matter keys, :class:`ExitStatus`,
the check ids, the file readers and the journal's schema. tests/docs/test_generated_pages.py
fails while a committed page differs from a fresh generation. Change the code, never the
page, then run the first command above. (The benchmark tables in
docs/developers/benchmarks.md are made likewise by ``python benchmarks/report.py``.)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ..common.exitstatus import ExitStatus
from . import refmarkdown as md


def exit_status_table() -> str:
    """The exit-status table (Markdown), one row per :class:`ExitStatus` member."""
    rows = [(md.code(str(status.value)), status.meaning) for status in ExitStatus]
    return "\n".join(md.table(("exit status", "meaning"), rows)) + "\n"


def exit_codes_page() -> str:
    lines = md.header(
        "Exit codes",
        "ExitStatus (newsletter/common/exitstatus.py)",
        "Every `newsletter` command ends with one of these exit statuses, so a script (or a "
        "scheduled task) can tell how it went without reading the words it printed.",
    )
    return md.page([*lines, exit_status_table()])


def commands_page() -> str:
    from .commands import app
    from .refcommands import commands_page as make

    return make(app)


def _pages() -> dict[str, Callable[[], str]]:
    from .refpages import checks_page, file_formats_page, front_matter_page, settings_page

    return {
        "commands.md": commands_page,
        "settings.md": settings_page,
        "front-matter.md": front_matter_page,
        "exit-codes.md": exit_codes_page,
        "checks.md": checks_page,
        "file-formats.md": file_formats_page,
    }


def generate() -> dict[str, str]:
    """Every page's file name and text, made afresh from the code."""
    return {name: make() for name, make in _pages().items()}


def stale(folder: Path) -> list[str]:
    """The pages in ``folder`` that differ from a fresh generation (or are missing)."""
    found = []
    for name, text in generate().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> ExitStatus:
    parser = argparse.ArgumentParser(
        prog="python -m newsletter.cli.reference", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folder", type=Path, help="where the pages go, e.g. docs/reference")
    parser.add_argument("--check", action="store_true", help="only say which pages are stale")
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.folder)
        for name in names:
            print(f"{args.folder / name} is stale: run {md.REGENERATE}")
        return ExitStatus.FAILED if names else ExitStatus.OK
    args.folder.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        path = args.folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            # Bytes, not text mode: the pages keep "\n" line ends on Windows too.
            path.write_bytes(text.encode("utf-8"))
            print(f"wrote {path}")
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())  # a developer's tool: 0 done, 1 a page is stale
