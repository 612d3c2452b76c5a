"""`preview --out FILE` and `render --out FOLDER` never replace what is not theirs: an issue,
.env, the members' list or a template; a folder given as a file is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import one_line, run_cli

SLUG = "december-2023"

# ---- preview --out FILE ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["issues/december-2023.md", ".env", "recipients.csv", "templates/email.mjml.j2"]
)
def test_preview_out_never_replaces_a_file_that_is_not_html(project: Path, target: str) -> None:
    path = project / target
    if not path.exists():
        path.write_text("NEWSLETTER_SECRET=keep-me\n", encoding="utf-8")
    before = path.read_bytes()
    result = run_cli(["preview", SLUG, "--out", target])
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert target in line and ".html" in line
    assert path.read_bytes() == before


def test_preview_out_writes_only_an_html_name_and_may_replace_one(project: Path) -> None:
    result = run_cli(["preview", SLUG, "--out", "photo.jpg"])
    assert result.returncode == 2 and "photo.jpg" in one_line(result.stderr)
    assert not (project / "photo.jpg").exists()
    (project / "old.HTM").write_text("old", encoding="utf-8")
    result = run_cli(["preview", SLUG, "--out", "old.HTM"])
    assert result.returncode == 0, result.stderr
    assert "<html" in (project / "old.HTM").read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("target", ["issues", ""])
def test_preview_out_folder_is_a_usage_error(project: Path, target: str) -> None:
    result = run_cli(["preview", SLUG, "--out", target])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is a folder" in one_line(result.stderr)


# ---- render --out FILE -----------------------------------------------------------------------


def test_render_out_an_existing_file_says_out_is_a_folder(project: Path) -> None:
    before = (project / "recipients.csv").read_bytes()
    result = run_cli(["render", SLUG, "--out", "recipients.csv"])
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert "recipients.csv" in line and "folder" in line
    assert (project / "recipients.csv").read_bytes() == before
