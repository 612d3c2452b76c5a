"""Project folders for the tests, built from the tests' own copy of the example issue.

A chair's checkout holds their own ``issues/``, ``recipients.csv`` and ``.env``: no test reads
those. A project here gets the December 2023 example from tests/data/issues/ (a copy of the
shipped ``issues/december-2023.md``), the shipped ``templates/`` with the tests' own copy of
the example organisation (tests/data/organisation.toml: a chair puts their own details in the
checkout's ``templates/organisation.toml``, as Getting started says), and a members' list
made from the shipped ``recipients.csv.example``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from newsletter.common.config import Settings

ROOT = Path(__file__).resolve().parents[2]  # the checkout: code, templates/, *.example
DATA = ROOT / "tests" / "data"
EXAMPLE_ISSUES = DATA / "issues"  # the example issue as shipped (and any pictures it uses)
EXAMPLE_ORGANISATION = DATA / "organisation.toml"  # the shipped organisation.toml, as shipped
SEED = DATA / "cluster-news-december-2023.txt"  # the December bulletin's text, as sent
# What the project's members list has instead of the example's placeholder domains.
MEMBER_DOMAINS = {
    "@example.org": "@nghealth.uk",
    "@example.com": "@mmedtech.uk",
    "@example.net": "@cdhealth.uk",
}


def filled_members() -> str:
    """The example members' list as a chair fills it in: the same members, on their
    organisations' domains (`check` refuses a list still on example.org/.com/.net)."""
    example = (ROOT / "recipients.csv.example").read_text(encoding="utf-8")
    for placeholder, domain in MEMBER_DOMAINS.items():
        example = example.replace(placeholder, domain)
    return example


def copy_templates(where: Path) -> Path:
    """The shipped templates in ``where``, with the example organisation rather than the
    checkout's own (which a chair edits). Returns ``where``."""
    shutil.copytree(ROOT / "templates", where)
    shutil.copy(EXAMPLE_ORGANISATION, where / "organisation.toml")
    return where


def make_project(
    folder: Path, *, members: str | None = "filled", issues: bool = True, templates: bool = True
) -> Path:
    """Lay out a project in ``folder`` (made if missing): ``issues/`` with the example issue,
    ``templates/`` as shipped, and a members' list: ``"filled"`` (recipients.csv, see
    :func:`filled_members`), ``"example"`` (the shipped recipients.csv.example, as a fresh
    checkout has it) or ``None``. Returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if issues:
        shutil.copytree(EXAMPLE_ISSUES, folder / "issues")
    if templates:
        copy_templates(folder / "templates")
    if members == "filled":
        (folder / "recipients.csv").write_text(filled_members(), encoding="utf-8")
    elif members == "example":
        shutil.copy(ROOT / "recipients.csv.example", folder / "recipients.csv.example")
    elif members is not None:
        raise ValueError(members)
    return folder


def project_settings(folder: Path) -> Settings:
    """Settings for the project in ``folder``: every path absolute, none left to the
    current folder."""
    return Settings(
        issues_dir=folder / "issues",
        templates_dir=folder / "templates",
        recipients=folder / "recipients.csv",
        suppressed=folder / "suppressed.csv",
        state_dir=folder / ".newsletter",
        outbox=folder / "outbox",
    )
