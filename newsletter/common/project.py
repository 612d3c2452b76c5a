"""Whether the current folder is a newsletter project: the check every command makes first."""

from __future__ import annotations

from pathlib import Path

from .config import Settings
from .errors import ConfigError


def require_project(
    settings: Settings,
    dotenv_path: str | Path = ".env",
    *,
    also: tuple[Path, ...] = (),
    creates: Path | None = None,
) -> None:
    """Refuse to run outside a newsletter project: none of the issues folder, the members
    list or a ``.env`` where the settings point (run from ``issues/``, or any other folder,
    every command would read nothing and ``unsubscribe`` would start a suppression list
    there that no send ever reads). ``also``: further files that make a project for this
    command (``new`` needs only the templates). ``creates``: a file the command would
    create; it is refused without a members list or an issues folder, even with a ``.env``
    (the suppression list, which belongs beside the members it protects)."""
    issues, members = Path(settings.issues_dir), Path(settings.recipients)
    where = Path.cwd()
    found = issues.is_dir() or members.is_file()
    # The organisation's details mark a project too (an issue file given by its path, with
    # the templates where NEWSLETTER_TEMPLATES_DIR points).
    markers = (*also, Path(settings.templates_dir) / "organisation.toml")
    if not (found or Path(dotenv_path).is_file() or any(Path(p).is_file() for p in markers)):
        raise ConfigError(
            f"this folder is not a newsletter project (no {issues.as_posix()}/, {members} or "
            f"{Path(dotenv_path)} in {where}): run newsletter from the project folder"
        )
    if creates is not None and not found and not Path(creates).exists():
        raise ConfigError(
            f"this folder is not a newsletter project (no {issues.as_posix()}/ or "
            f"{members} in {where}): run newsletter from the project folder",
            hint=f"{creates} was not created",
        )
