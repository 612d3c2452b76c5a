"""An issue named on the command line as tab completion writes it (SLUG.md, issues/SLUG.md),
and a typo answered with the closest issue."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import one_line, run_cli

SLUG = "december-2023"

# ---- Slugs as tab completion writes them; did you mean ---------------------------------------


@pytest.mark.parametrize("given", [f"{SLUG}.md", f"issues/{SLUG}.md"])
def test_a_slug_with_md_or_its_folder_is_the_slug(project: Path, given: str) -> None:
    dry = run_cli(["send", given, "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert (project / "outbox" / SLUG).is_dir()
    status = run_cli(["status", given])
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"{SLUG}: ")
    assert run_cli(["render", given, "--out", "build"]).returncode == 0
    assert (project / "build" / f"{SLUG}.html").is_file()


def test_an_unknown_slug_suggests_the_closest_issue(project: Path) -> None:
    result = run_cli(["send", "decmber-2023", "--dry-run"])
    assert result.returncode == 2
    assert f"no issue called 'decmber-2023': did you mean {SLUG}?" in one_line(result.stderr)
