"""What several commands share: the members-list and ``--resend-of`` options, the settings
with flags applied, a SLUG argument read as the chair types it (or the newest issue), and
the refusal to run outside a project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .views import notice, skipped

if TYPE_CHECKING:
    from ..common.config import Settings

ResendOfOpt = Annotated[
    str | None,
    typer.Option(
        "--resend-of",
        metavar="SLUG",
        help="Send it although it is a copy of SLUG, sent before: its members get it again.",
    ),
]
RecipientsOpt = Annotated[
    Path | None,
    typer.Option(
        "--recipients", "-r", help="Members CSV [default: NEWSLETTER_RECIPIENTS or recipients.csv]."
    ),
]


def load(**overrides: Any) -> Settings:
    """The settings (environment over ``.env``) with command-line flags applied."""
    from ..common.config import load_settings

    return load_settings().with_overrides(**overrides)


def slug_of(settings: Settings, slug: str) -> str:
    """SLUG as given, or as tab completion writes it (``issues/december-2023.md``)."""
    from ..content.issuefiles import issue_slug

    return issue_slug(slug, settings.issues_dir)


def newest_or(settings: Settings, slug: str | None) -> str:
    """SLUG as given; without one, the newest issue by date (as ``preview`` takes it),
    said on stderr so the chair sees which issue the command is about."""
    if slug is not None:
        return slug_of(settings, slug)
    from ..content.issuefiles import newest_issue

    newest = newest_issue(settings.issues_dir, skipped).stem
    notice(f"no SLUG given: {newest}, the newest issue by date")
    return newest


def in_project(settings: Settings, **where: Any) -> Settings:
    """``settings``, once the current folder is a project (common.project.require_project)."""
    from ..common.project import require_project

    require_project(settings, **where)
    return settings
