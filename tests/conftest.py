"""Shared fixtures: a throw-away copy of the project (issues, templates, example members)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from newsletter.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "data" / "cluster-news-december-2023.txt"  # copy of shared/seeds


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out like the user's: issues/, templates/, recipients.csv; cwd is there."""
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copy(ROOT / "recipients.csv.example", tmp_path / "recipients.csv")
    monkeypatch.chdir(tmp_path)
    # The developer's own environment must not leak into tests.
    for name in list(__import__("os").environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return Settings(
        issues_dir=project / "issues",
        templates_dir=project / "templates",
        recipients=project / "recipients.csv",
        suppressed=project / "suppressed.csv",
        state_dir=project / ".newsletter",
        outbox=project / "outbox",
    )
