"""Per-member placeholders that survive the once-per-issue render.

The expensive pipeline (Jinja2 → MJML → HTML → CSS inlining) runs once per issue with a
stand-in ``recipient`` whose every attribute is an opaque token such as ``zz5f0c9a3bs3zz``.
Tokens are plain letters and digits, so MJML, premailer and URL quoting leave them
untouched; each render draws a random nonce for them, so text in an issue can never be
mistaken for a token. Each
member's message is then a cheap string join: literal chunks with the member's values
between them (see :class:`Filled`).
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# Fields every member has, whatever the CSV's columns (see message.recipient_values).
BUILT_IN_FIELDS = frozenset({"email", "name", "first_name", "unsubscribe_url"})


@dataclass(frozen=True)
class Slot:
    field: str
    # With ``fmt``, a non-empty value is shown as fmt.format(name=value); else ``fallback``.
    fmt: str = "{name}"
    fallback: str = ""

    def value(self, values: Mapping[str, str]) -> str:
        raw = values.get(self.field, "")
        return self.fmt.format(name=raw) if raw else self.fallback


@dataclass(frozen=True)
class Use:
    """Where a template used a member field (for 'not a column of your CSV' errors)."""

    field: str
    template: Path | None
    line: int | None
    fallback: str = ""  # what a member without the field reads there ("" = nothing)


class SlotTable:
    """Hands out one token per distinct (field, format, fallback) and remembers where."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self._ids: dict[Slot, int] = {}
        self.uses: list[Use] = []
        self.nonce = secrets.token_hex(6)
        self.pattern = re.compile(rf"zz{self.nonce}s(\d+)zz")

    def token(self, slot: Slot) -> str:
        if slot not in self._ids:
            self._ids[slot] = len(self.slots)
            self.slots.append(slot)
        self.uses.append(Use(slot.field, *_template_location(), slot.fallback))
        return f"zz{self.nonce}s{self._ids[slot]}zz"

    def values(self, fields: Mapping[str, str]) -> list[str]:
        """Every slot's text for one member, indexed by slot number."""
        return [slot.value(fields) for slot in self.slots]

    def unknown_fields(self, columns: set[str]) -> Iterator[Use]:
        """Uses of fields that neither the CSV nor the built-ins provide: one per field, the
        first without a fallback if there is one (it leaves a gap), else the first."""
        unknown: dict[str, Use] = {}
        for use in self.uses:
            if use.field in columns or use.field in BUILT_IN_FIELDS:
                continue
            first = unknown.setdefault(use.field, use)
            if first.fallback and not use.fallback:
                unknown[use.field] = use
        yield from unknown.values()


class RecipientStandIn:
    """``recipient`` during the once-per-issue render: any attribute is a member field."""

    def __init__(self, table: SlotTable, markup: Callable[[str], str]) -> None:
        self._table = table
        self._markup = markup

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._markup(self._table.token(Slot(name)))

    __getitem__ = __getattr__


def _template_location() -> tuple[Path | None, int | None]:
    """The Jinja template line being rendered right now (for error messages)."""
    frame = sys._getframe(2)
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:
            return (
                Path(template.filename) if template.filename else None,
                template.get_corresponding_lineno(frame.f_lineno),
            )
        frame = frame.f_back
    return None, None


class Filled:
    """A text with slot tokens, split once so that filling it per member is a join."""

    __slots__ = ("literals", "slot_ids")

    def __init__(self, text: str, pattern: re.Pattern[str]) -> None:
        parts = pattern.split(text)
        self.literals: list[str] = parts[0::2]
        self.slot_ids: list[int] = [int(p) for p in parts[1::2]]

    def fill(self, values: list[str], escape: Callable[[str], str] | None = None) -> str:
        out = [self.literals[0]]
        for slot_id, literal in zip(self.slot_ids, self.literals[1:], strict=True):
            value = values[slot_id]
            out.append(escape(value) if escape else value)
            out.append(literal)
        return "".join(out)

    @property
    def has_slots(self) -> bool:
        return bool(self.slot_ids)
