"""The organisation's colours meet WCAG AA contrast where the templates put text on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import run_check, said
from support.projects import EXAMPLE_ORGANISATION

from newsletter.common.config import Settings
from newsletter.content.organisation import load_organisation
from newsletter.sending.checks.findings import Severity


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(
    ("foreground", "background"),
    [
        ("#ffffff", "brand"),  # header and section bands
        ("#ffffff", "accent"),  # buttons
        ("link", "#ffffff"),
        ("text", "#ffffff"),
        ("muted", "background"),  # footer
        ("link", "background"),  # footer links
        ("text", "facts"),
        ("muted", "facts"),  # fact labels
    ],
)
def test_contrast_aa(foreground: str, background: str, tmp_path: Path) -> None:
    # The example organisation's colours (a chair's own are for `check` to judge).
    (tmp_path / "organisation.toml").write_bytes(EXAMPLE_ORGANISATION.read_bytes())
    colours = load_organisation(tmp_path).colours
    fg = colours.get(foreground, foreground)
    bg = colours.get(background, background)
    assert contrast(fg, bg) >= 4.5, (foreground, background, round(contrast(fg, bg), 2))


# ---- colours -------------------------------------------------------------------------------


def set_colour(project: Path, key: str, value: str) -> str:
    """Set colours.KEY; return "path:line" of the key, as findings name it."""
    path = project / "templates" / "organisation.toml"
    lines = path.read_text("utf-8").splitlines()
    number = next(n for n, line in enumerate(lines, start=1) if line.startswith(f"{key} ="))
    lines[number - 1] = f'{key} = "{value}"'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{path}:{number}"


def test_yellow_brand_colour_is_not_ready(project: Path, ready: Settings) -> None:
    path = set_colour(project, "brand", "#f5c400")
    report = run_check(ready, "december-2023")
    assert said(report, Severity.ERROR) == [
        f"{path}: white text on colours.brand #f5c400 (header and section bands): "
        "contrast 1.6:1, below WCAG AA 4.5:1",
        f"{path}: colours.brand #f5c400 text on white (article headings): contrast 1.6:1, "
        "below WCAG AA 3:1",
    ]
    assert report.verdict().startswith("NOT READY")


def test_colour_just_below_aa_is_a_warning(project: Path, ready: Settings) -> None:
    path = set_colour(project, "accent", "#e0601a")
    report = run_check(ready, "december-2023")
    assert said(report, Severity.ERROR) == []
    assert said(report, Severity.WARNING) == [
        f"{path}: white text on colours.accent #e0601a (buttons): contrast 3.6:1, "
        "below WCAG AA 4.5:1"
    ]
