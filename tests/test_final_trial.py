"""Found by trying the integrated product end to end, as the chair would (two monthly
routines against a real STARTTLS + AUTH server): what the merges broke between features."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_cli


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
