"""The organisation's details and colours, read from ``templates/organisation.toml``."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..common.errors import TemplateError

FILE_NAME = "organisation.toml"
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Organisation:
    name: str
    email: str
    address: str
    website: str = ""
    bulletin: str = ""
    reason: str = ""
    logo_url: str = ""
    logo_alt: str = ""
    greeting: str = "Dear {name},"
    greeting_fallback: str = "Dear member,"
    lang: str = "en"
    colours: dict[str, str] = field(default_factory=dict)
    # The `#` sections `newsletter new` starts each issue with.
    sections: list[str] = field(default_factory=lambda: list(DEFAULT_SECTIONS))

    @property
    def address_lines(self) -> list[str]:
        """The postal address one entry per line (a multi-line TOML string), without the
        commas that end them: HTML breaks the lines, the text part joins them with ", "."""
        lines = (" ".join(line.split()).rstrip(",") for line in self.address.splitlines())
        return [line for line in lines if line]

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


DEFAULT_SECTIONS = ("News", "Events", "Opportunities")
DEFAULT_COLOURS = {
    "brand": "#0b4f6c",
    "accent": "#b4420f",
    "link": "#0b5f86",
    "text": "#1f2933",
    "muted": "#52606d",
    "background": "#eef2f5",
    "facts": "#f3f7f9",
}


def load_organisation(templates_dir: Path) -> Organisation:
    path = templates_dir / FILE_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(
            "organisation details not found",
            path=path,
            hint="copy templates/organisation.toml from the project and fill it in",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise TemplateError(f"invalid TOML: {exc}", path=path, line=line) from None
    known = {f.name for f in fields(Organisation)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TemplateError(
            f"unknown key {unknown[0]!r}", path=path, hint=f"known keys: {', '.join(sorted(known))}"
        )
    for key in ("name", "email", "address"):
        if not str(data.get(key, "")).strip():
            raise TemplateError(f"{key!r} is required", path=path)
    colours = dict(DEFAULT_COLOURS)
    colours.update(data.get("colours", {}))
    for key, value in colours.items():
        if not _COLOUR.fullmatch(str(value)):
            raise TemplateError(f"colour {key} = {value!r} is not #rrggbb", path=path)
    data["colours"] = colours
    sections = data.get("sections", list(DEFAULT_SECTIONS))
    if not isinstance(sections, list) or not all(
        isinstance(item, str) and item.strip() for item in sections
    ):
        raise TemplateError(
            "sections must be a list of headings", path=path, hint='e.g. sections = ["News"]'
        )
    try:
        org = Organisation(**data)
        org.greeting.format(name="x")
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"invalid value: {exc}", path=path) from None
    return org
