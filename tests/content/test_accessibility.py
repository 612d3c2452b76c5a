"""The organisation's colours meet WCAG AA contrast where the templates put text on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.content.organisation import load_organisation

ROOT = Path(__file__).resolve().parent.parent


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
def test_contrast_aa(foreground: str, background: str) -> None:
    colours = load_organisation(ROOT / "templates").colours
    fg = colours.get(foreground, foreground)
    bg = colours.get(background, background)
    assert contrast(fg, bg) >= 4.5, (foreground, background, round(contrast(fg, bg), 2))
