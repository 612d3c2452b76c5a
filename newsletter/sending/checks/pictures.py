"""Checks of how the bulletin looks: colour contrast (WCAG AA) for every pair the
templates use, a logo that vanishes on the header band, unreadable or animated pictures,
the weight of embedded pictures, hosted pictures not online yet."""

from __future__ import annotations

import re

from ...common.limits import EMBED_WARN_BYTES
from ...content import model
from ...content.images import visible_colours
from ...content.published import PUBLISH_HINT, HeadFunction
from ..campaign import Campaign
from .findings import Check, Report, Severity


def check_images(campaign: Campaign, report: Report, head: HeadFunction) -> None:
    """Local pictures: readable images (errors), the weight embedding adds to each message,
    and with hosted pictures whether the web archive already serves each one."""
    pictures = campaign.rendered.pictures
    if pictures is None:
        return
    for problem in pictures.problems:
        report.add(Check.PICTURE, Severity.ERROR, problem.where(), problem.message, problem.hint)
    for block in campaign.issue.all_blocks():
        image = pictures.images.get(block.src) if isinstance(block, model.Image) else None
        if image is not None and image.frames > 1:
            report.add(
                Check.ANIMATION,
                Severity.WARNING,
                f"{campaign.issue.path}:{block.line}",
                f"{block.src} is an animation ({image.frames} frames): the email shows its "
                "first frame only (Outlook would show no more)",
                "use a still picture, or link to the animation on the website",
            )
    embedded = sum(len(image.data) for _, image in campaign.rendered.inline_images)
    if embedded * 4 // 3 > EMBED_WARN_BYTES:  # base64 adds a third
        report.add(
            Check.EMBED_SIZE,
            Severity.WARNING,
            str(campaign.issue.path),
            f"embedded pictures add {embedded * 4 / 3 / 1024 / 1024:.1f} MB to every message",
            "use fewer or smaller pictures, or publish them with the web archive "
            "(NEWSLETTER_ARCHIVE_URL, NEWSLETTER_IMAGES=hosted)",
        )
    for offline in campaign.offline_images(head):
        report.add(
            Check.IMAGES_OFFLINE,
            Severity.ERROR,
            "NEWSLETTER_ARCHIVE_URL",
            offline.line(),
            PUBLISH_HINT,
        )


WHITE = "#ffffff"
# Every text/background pair the templates use: (text, background, large text?, where).
# Large = at least 24px, or 18.7px bold (WCAG): 3:1 is enough; else 4.5:1.
COLOUR_PAIRS = (
    (WHITE, "brand", False, "header and section bands"),
    (WHITE, "accent", False, "buttons"),
    ("text", WHITE, False, "body text"),
    ("link", WHITE, False, "links"),
    ("brand", WHITE, True, "article headings"),
    ("muted", WHITE, False, "muted text"),
    ("text", "facts", False, "key facts and table headers"),
    ("muted", "facts", False, "key-fact labels"),
    ("link", "facts", False, "links in key facts"),
    ("muted", "background", False, "footer text"),
    ("link", "background", False, "footer links"),
)


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[k : k + 2], 16) / 255 for k in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def check_colours(campaign: Campaign, report: Report) -> None:
    """WCAG AA for every pair the templates use; below 3:1 even headings are unreadable for
    many members, so that is an error, between 3:1 and 4.5:1 a warning."""
    colours = campaign.org.colours
    path = campaign.settings.templates_dir / "organisation.toml"
    try:
        toml_text = path.read_text(encoding="utf-8")
    except OSError:
        toml_text = ""

    def name(key: str) -> str:
        return "white" if key == WHITE else f"colours.{key} {colours[key]}"

    for fg, bg, large, used in COLOUR_PAIRS:
        key = bg if fg == WHITE else fg
        if fg != WHITE and fg not in colours or bg != WHITE and bg not in colours:
            continue
        ratio = contrast(colours.get(fg, fg), colours.get(bg, bg))
        needed = 3.0 if large else 4.5
        if ratio >= needed:
            continue
        line = next(
            (
                number
                for number, text in enumerate(toml_text.splitlines(), start=1)
                if re.match(rf"\s*{key}\s*=", text)
            ),
            0,
        )
        report.add(
            Check.CONTRAST,
            Severity.ERROR if ratio < 3.0 else Severity.WARNING,
            f"{path}:{line}" if line else str(path),
            f"{name(fg)} text on {name(bg)} ({used}): contrast {ratio:.1f}:1, "
            f"below WCAG AA {needed:g}:1",
            f"choose a {'darker' if fg == WHITE or bg == WHITE else 'different'} colour for "
            f"colours.{key}",
        )


# A logo pixel closer than this to the header band's colour is all but invisible on it.
LOGO_MIN_CONTRAST = 1.5


def check_logo(campaign: Campaign, report: Report) -> None:
    """A logo with a transparent background sits on the brand-coloured header band: drawn
    in the brand colour (as most organisations' logos are), it vanishes there."""
    pictures = campaign.rendered.pictures
    logo = pictures.logo if pictures is not None else None
    colours = visible_colours(logo) if logo is not None else None
    if not colours:
        return
    band = campaign.org.colours.get("brand")
    if not band:
        return
    hidden = sum(
        contrast(f"#{r:02x}{g:02x}{b:02x}", band) < LOGO_MIN_CONTRAST for r, g, b in colours
    )
    if hidden * 2 <= len(colours):
        return
    path = campaign.settings.templates_dir / "organisation.toml"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    line = next((n for n, text in enumerate(lines, 1) if re.match(r"\s*logo_url\s*=", text)), 0)
    report.add(
        Check.LOGO_CONTRAST,
        Severity.WARNING,
        f"{path}:{line}" if line else str(path),
        f"logo_url {campaign.org.logo_url}: {hidden * 100 // len(colours)} % of the logo is "
        f"almost the colour of the header band it sits on (colours.brand {band}): it will "
        "hardly show",
        "use a white or light version of the logo (for dark backgrounds), or one with its "
        "own background",
    )
