"""The Reference pages and the benchmark page are generated from the code: a committed page
that differs from a fresh generation fails here, naming the command that regenerates it.
The other tests check the generators against the code by other roads (``--help`` as Typer
prints it, the settings the source reads), so a page cannot silently leave something out."""

from __future__ import annotations

import ast
import importlib.util
import re
from types import ModuleType

import pytest
import typer.main
from support.projects import ROOT
from typer.testing import CliRunner

from newsletter.cli import reference
from newsletter.cli.commands import app
from newsletter.cli.refmarkdown import REGENERATE, cell, prose
from newsletter.cli.refpages import setting_names
from newsletter.common.exitstatus import ExitStatus
from newsletter.content.frontmatter import KEYS
from newsletter.domain.findings import CheckId
from newsletter.sending.checks.findings import Check

PAGES = ROOT / "docs" / "reference"
GENERATED = reference.generate()
# NEWSLETTER_ names in the source that are not settings: the prefix itself (written as
# NEWSLETTER_IMAP_* for the group of IMAP settings), and the switch that shows a bug's
# traceback, read by cli/exits.py before any settings are loaded.
NOT_SETTINGS = {"NEWSLETTER_", "NEWSLETTER_IMAP_", "NEWSLETTER_DEBUG"}


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_each_reference_page_is_what_the_code_generates(name: str) -> None:
    committed = (PAGES / name).read_text(encoding="utf-8")
    assert committed == GENERATED[name], f"docs/reference/{name} is stale: run {REGENERATE}"


def test_the_benchmark_page_is_what_the_results_generate() -> None:
    report = _report()
    committed = (ROOT / "docs" / "developers" / "benchmarks.md").read_text(encoding="utf-8")
    assert committed == report.generate(), f"stale: run {report.REGENERATE}"


def test_every_page_says_it_is_generated_and_how_to_regenerate_it() -> None:
    for name, text in GENERATED.items():
        assert text.startswith("<!-- Generated from "), name
        assert REGENERATE in text.split("-->")[0], name
    assert "python benchmarks/report.py" in _report().generate().split("-->")[0]


def test_a_stale_page_is_found_and_rewritten(tmp_path) -> None:
    for name, text in GENERATED.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "settings.md").write_text("# Settings\n\nedited by hand\n", encoding="utf-8")
    (tmp_path / "checks.md").unlink()
    assert reference.stale(tmp_path) == ["settings.md", "checks.md"]
    assert reference.main([str(tmp_path), "--check"]) is ExitStatus.FAILED
    assert reference.main([str(tmp_path)]) is ExitStatus.OK
    assert reference.stale(tmp_path) == []


# ---- commands -----------------------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    return [[name] for name in root.commands]  # no sub-groups today; the generator walks them


def _section(page: str, path: list[str]) -> str:
    """The part of commands.md under the heading ``## newsletter PATH``."""
    start = page.index(f"\n## newsletter {' '.join(path)}\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end > 0 else None]


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_every_option_help_shows_is_in_the_command_reference(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    shown = set()
    for block in re.findall(r"^(?:Options|Arguments):\n((?:  .*\n?|\s*\n)*)", result.output, re.M):
        for line in block.splitlines():
            # Each entry starts at two spaces; its names run until two spaces or a metavar.
            entry = re.match(r"  (\S.*?)(?:  |$)", line)
            if entry:
                shown |= set(re.findall(r"(?<![\w-])-{1,2}[a-zA-Z][\w-]*", entry.group(1)))
    shown -= {"-h", "--help"}  # every command takes them: said once, at the top
    section = _section(GENERATED["commands.md"], path)
    missing = sorted(name for name in shown if f"`{name}`" not in section)
    assert not missing, f"newsletter {' '.join(path)}: {missing} not in commands.md"
    assert "`--help`" in GENERATED["commands.md"].split("\n## ")[0]


def test_every_command_has_its_usage_help_and_example() -> None:
    page = GENERATED["commands.md"]
    for path in _command_paths():
        section = _section(page, path)
        assert f"```text\nnewsletter {' '.join(path)}" in section
        assert section.count("\n") > 4
    send = _section(page, ["send"])
    assert "$ newsletter send december-2023 --test" in send
    assert "| `--limit` | whole number, ≥ 1 |" in send
    assert "| `-y`, `--yes` | flag |" in send


# ---- settings -----------------------------------------------------------------------------


def test_every_setting_the_code_reads_is_declared_and_documented() -> None:
    read: set[str] = set()
    for path in (ROOT / "newsletter").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                read |= set(re.findall(r"NEWSLETTER_[A-Z0-9_]*", node.value))
    declared = setting_names()
    assert read - NOT_SETTINGS <= declared, sorted(read - NOT_SETTINGS - declared)
    assert not NOT_SETTINGS & declared
    page = GENERATED["settings.md"]
    assert all(f"| `{name}` |" in page for name in declared)
    assert "| `NEWSLETTER_SMTP_SECURITY` | `starttls` |" in page
    assert "| `NEWSLETTER_UTM` | `false` |" in page


# ---- front matter, exit codes, checks, file formats ----------------------------------------


def test_every_front_matter_key_is_in_its_page() -> None:
    page = GENERATED["front-matter.md"]
    for key in KEYS:
        assert f"| `{key.name}` | {'yes' if key.required else 'no'} |" in page


def test_the_exit_codes_table_has_one_row_per_status_with_its_meaning() -> None:
    rows = reference.exit_status_table().splitlines()[2:]
    assert rows == [f"| `{int(s)}` | {s.meaning} |" for s in ExitStatus]
    assert reference.exit_status_table() in GENERATED["exit-codes.md"]


def test_every_check_id_is_in_the_checks_page_with_its_severities() -> None:
    page = GENERATED["checks.md"]
    for check in Check:
        assert check.severities and check.description, check
        row = next(line for line in page.splitlines() if line.startswith(f"| `{check}` |"))
        assert all(str(severity) in row for severity in check.severities), row
    for check_id in CheckId:
        assert f"| `{check_id}` | " in page


def test_the_journal_and_feedback_tables_are_in_the_file_formats_page() -> None:
    page = GENERATED["file-formats.md"]
    for table in ("deliveries", "claims", "run_stops", "processed", "events"):
        assert f"Table `{table}`" in page
    assert "| `status` | TEXT | one of sending, sent, failed, deferred |" in page
    assert "`email,reason,date`" in page


# ---- the Markdown the pages are written in ------------------------------------------------


def test_terminal_text_is_escaped_and_what_a_reader_types_is_code() -> None:
    assert prose("Title [default: '<bulletin>'] *not bold*") == (
        "Title \\[default: '\\<bulletin\\>'\\] \\*not bold\\*"
    )
    assert prose("set NEWSLETTER_RATE or --rate, see recipients.csv") == (
        "set `NEWSLETTER_RATE` or `--rate`, see `recipients.csv`"
    )
    assert prose("re-run newsletter send SLUG") == "re-run `newsletter send SLUG`"
    assert prose("a `code | span` kept") == "a `code | span` kept"
    assert cell(prose("a | b")) == "a \\| b"
    assert cell("`x | y`") == "`x \\| y`"
