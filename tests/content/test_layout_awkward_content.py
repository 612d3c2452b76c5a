"""Awkward issues nobody here wrote, measured in real headless Chromium (adversarial trial).

One issue holds what chairs paste: a 200-character URL (as text and as link text), 60-letter
German compounds, a DOI, a long address, a 200-character heading and title, an 8-column
table, lists 4 deep, a quote with a list and code, a code block with a 200-character line,
long event facts, six long buttons, a 16 px icon, a 60 × 3000 strip, a 4000 px panorama, a
picture that is a link, emoji, Arabic and Hebrew mixed with English. It is rendered once and
loaded at 320, 375, 600 and 800 px: element boxes, scroll widths and computed colours are
read back from the browser, never from the HTML string.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image
from support.browser import new_page
from support.helpers import run_cli

from newsletter.common.config import Settings
from newsletter.content.plaintext import WIDTH
from newsletter.web import preview

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

WIDTHS = (320, 375, 600, 800)

LONG_URL = (
    "https://www.example-health-cluster.org.uk/news/2024/01/18/the-very-long-article-slug-"
    "that-never-ends-and-keeps-going?utm_source=newsletter&utm_medium=email&utm_campaign=jan"
)
COMPOUND = "Gesundheitsdatenschutzverordnungsumsetzungsbeauftragtenkonferenz"  # 64 letters
DOI = "10.1016/j.jbi.2023.104567.supplementary-material-appendix-b-tables"
ADDRESS = "chair.of.the.west.midlands.health.technologies.cluster@wmhtc-example.co.uk"
TITLE = (
    f"Cluster News – January 2024: {COMPOUND}, interoperability, procurement frameworks, "
    "the NHS AI Lab and the West Midlands Health Innovation Exchange programme update"
)
HEADING = (
    "An opening article with a heading that is far too long to fit anywhere at all, written "
    "by a committee that could not agree on which words to drop, so it kept every one of them"
)
ARABIC = "مرحبا بكم في النشرة الإخبارية للمجموعة، نحن سعداء بانضمامكم إلينا هذا الشهر"
HEBREW = "שלום לכולם, זהו עלון החדשות של האשכול לחודש ינואר"
ARABIC_ITEM = "نحن سعداء بانضمامكم إلينا"
HEBREW_ITEM = "זהו עלון החדשות"
EMOJI = "👍🎉🚀🏥💊🩺🧬🔬📊📈🤝✨"
CODE_LINE = (
    "for member in members: send(member, issue, subject='Cluster News – January 2024', "
    "retries=5, backoff=2.0, jitter=True, timeout=30, on_error='defer')  # a comment that "
    "makes this line long"
)
BUTTONS = [
    "Register your interest in the West Midlands expo",
    "Download the full programme as a PDF document",
    "Book a one-to-one meeting with a procurement lead",
    COMPOUND,
    "Apply for the accelerator programme before the closing date",
    "Contact the cluster team",
]
TABLE_HEADER = ["Company", "Product", "Stage", "Funding", "Region", "Contact", "Website", "Notes"]
TABLE_ROW = [
    "Acme Health Technologies Limited",
    "Remote patient monitoring platform for COPD",
    "Series A",
    "£2.5 million",
    "West Midlands",
    "jane.doe@acme-health.example",
    "https://acme-health.example/products",
    f"Looking for NHS trust partners for a pilot in 2024 ({COMPOUND})",
]
FACTS = {
    "Date": "Wednesday 6 March 2024 to Friday 8 March 2024, with an optional networking "
    "dinner on the Thursday evening",
    "Location": f"International Convention Centre, Broad Street, Birmingham B1 2EA ({COMPOUND})",
}

BODY = f"""
## {HEADING}

Pasted: {LONG_URL}

As link text: [{LONG_URL}]({LONG_URL})

Read [the programme](https://www.wmhtc.co.uk/programme) and [the rules](https://www.wmhtc.co.uk/rules).

German: {COMPOUND} is a word. DOI: {DOI}. Mail: {ADDRESS}

{EMOJI}

{ARABIC} with English mixed in.

{HEBREW} and some English.

- {ARABIC_ITEM}
  - {HEBREW_ITEM}
- English item

| {" | ".join(TABLE_HEADER)} |
|{"---|" * 8}
| {" | ".join(TABLE_ROW)} |

- level one
  - level two
    - level three
      - level four, with a long item text that wraps across several lines on a phone

> A quote with a list:
>
> - quoted item one
> - quoted item two
>
> ```
> quoted_code = "a fairly long line of code inside a quote"
> ```

```
{CODE_LINE}
def greet(name):
    if name:
        return "Hello, " + name
RETRIES    = 5    # aligned by hand
```

::: facts
{chr(10).join(f"{label}: {value}" for label, value in FACTS.items())}
:::

{chr(10).join(f"[{label}](https://www.wmhtc.co.uk/b{n}){{.button}}" for n, label in enumerate(BUTTONS))}

![A tiny icon](images/icon.png)

![A very tall narrow strip](images/strip.png)

![A panorama of the expo hall](images/panorama.jpg)

[![Register for the Expo](images/photo.jpg)](https://www.wmhtc.co.uk/expo)
"""


def _noise(size: tuple[int, int]) -> Image.Image:
    return Image.effect_noise(size, 64).convert("RGB")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, make_project) -> Path:
    """A project with the awkward issue, its pictures, and a very wide logo (a 6:1 wordmark)."""
    root = make_project(tmp_path_factory.mktemp("awkward"), issues=False, members=None)
    (root / "issues" / "images").mkdir(parents=True)
    images = root / "issues" / "images"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(images / "icon.png")
    strip = Image.new("RGB", (60, 3000), (20, 20, 20))
    strip.save(images / "strip.png")
    _noise((4000, 600)).save(images / "panorama.jpg", quality=80)
    _noise((800, 400)).save(images / "photo.jpg", quality=80)
    Image.new("RGB", (600, 100), (255, 255, 255)).save(root / "templates" / "wordmark.png")
    org = root / "templates" / "organisation.toml"
    org.write_text(
        org.read_text(encoding="utf-8").replace('logo_url = ""', 'logo_url = "wordmark.png"'),
        encoding="utf-8",
    )
    preheader = "A preheader far too long for any inbox, " * 6
    (root / "issues" / "awkward.md").write_text(
        f'---\ntitle: "{TITLE}"\nsubject: "{TITLE}"\npreheader: "{preheader.strip()}"\n'
        f"date: 2024-01-18\n---\n{BODY}",
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def rendered(folder: Path) -> tuple[str, str]:
    """(HTML, text) of the awkward issue, as a member without a known name sees it."""
    settings = Settings(issues_dir=folder / "issues", templates_dir=folder / "templates")
    _, html, text = preview.render_path(settings, folder / "issues" / "awkward.md").sample()
    return html, text


@pytest.fixture(scope="module")
def html_file(folder: Path) -> Path:
    """`newsletter render`'s own output (HTML + assets/), so the pictures really load."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name in list(os.environ):
            if name.startswith("NEWSLETTER_"):
                patch.delenv(name)
        done = run_cli(["render", "awkward", "--out", "out"])
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "out" / "awkward.html"


def open_file(page: Page, path: Path) -> None:
    page.route("http*://**", lambda route: route.abort())  # offline: nothing leaves
    page.goto(path.as_uri(), wait_until="load")


# Every visible element's box, and every element that clips its content horizontally.
OVERFLOW_JS = """
() => {
  const W = window.innerWidth, out = {over: [], clipped: []};
  for (const el of document.body.querySelectorAll('*')) {
    const cs = getComputedStyle(el);
    if (el.closest('[style*="display:none"]') || cs.display === 'none') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const what = [el.tagName, (el.textContent || el.alt || '').trim().slice(0, 40)];
    if (r.right > W + 0.5 || r.left < -0.5) out.over.push([...what, r.left, r.right]);
    if (['hidden', 'clip'].includes(cs.overflowX) && el.scrollWidth > el.clientWidth + 1)
      out.clipped.push([...what, el.scrollWidth, el.clientWidth]);
  }
  return out;
}
"""


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_overflows_or_is_clipped(browser: Browser, html_file: Path, width: int) -> None:
    with new_page(browser, width) as page:
        open_file(page, html_file)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        found = page.evaluate(OVERFLOW_JS)
        assert found["over"] == [], f"outside the {width}px screen: {found['over'][:5]}"
        assert found["clipped"] == [], f"cut off at {width}px: {found['clipped'][:5]}"
        # Every picture loaded and fits the screen, none stretched out of shape.
        pictures = page.eval_on_selector_all(
            "img",
            """imgs => imgs.map(i => ({alt: i.alt, w: i.getBoundingClientRect().width,
                h: i.getBoundingClientRect().height, nw: i.naturalWidth, nh: i.naturalHeight,
                link: i.closest('a') ? i.closest('a').href : null}))""",
        )
        assert len(pictures) == 5
        for pic in pictures:
            assert pic["nw"] > 0, f"{pic['alt']} did not load"
            assert abs(pic["w"] / pic["h"] - pic["nw"] / pic["nh"]) < 0.05 * pic["nw"] / pic["nh"]
        icon = next(p for p in pictures if p["alt"] == "A tiny icon")
        assert (icon["w"], icon["h"]) == (16, 16), "the 16 px icon was stretched"
        linked = next(p for p in pictures if p["alt"] == "Register for the Expo")
        assert linked["link"] == "https://www.wmhtc.co.uk/expo"


def _visible_text(page: Page) -> str:
    return " ".join(page.evaluate("document.body.innerText").split())


@pytest.mark.parametrize("width", (320, 800))
def test_all_the_content_is_there(browser: Browser, html_file: Path, width: int) -> None:
    with new_page(browser, width) as page:
        open_file(page, html_file)
        shown = _visible_text(page)
        for words in [TITLE, HEADING, LONG_URL, COMPOUND, DOI, ADDRESS, EMOJI, HEBREW, ARABIC]:
            assert words in shown, words
        for words in [*BUTTONS, *TABLE_ROW, *FACTS.values(), "level four", "quoted item two"]:
            assert words in shown, words
        assert " ".join(CODE_LINE.split()) in shown
        links = page.eval_on_selector_all("a", "as => as.map(a => a.href)")
        assert LONG_URL in links
        # Right-to-left paragraphs read right to left; the English ones stay left to right.
        directions = page.eval_on_selector_all(
            "p[dir=auto]",
            "ps => Object.fromEntries(ps.map(p => [p.textContent.slice(0, 5),"
            " getComputedStyle(p).direction]))",
        )
        assert directions[ARABIC[:5]] == "rtl" and directions[HEBREW[:5]] == "rtl"
        assert directions["Germa"] == "ltr"


def test_code_keeps_its_indentation(browser: Browser, html_file: Path) -> None:
    """A code block's indentation collapsed in the HTML (code spans in a paragraph, white
    space normal): Python's `if` and `return` lines stood flush with `def`."""
    with new_page(browser, 375) as page:
        open_file(page, html_file)
        lefts = page.eval_on_selector_all(
            "code",
            """cs => Object.fromEntries(cs.map(c => {
                const r = document.createRange(); r.selectNodeContents(c);
                const text = c.textContent;
                const skip = text.length - text.trimStart().length;
                r.setStart(c.firstChild, skip);
                return [text.trim().slice(0, 8), r.getBoundingClientRect().left];
            }))""",
        )
        assert lefts["if name:"] > lefts["def gree"] + 20
        assert lefts['return "'] > lefts["if name:"] + 20


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(fg: tuple[float, ...], bg: tuple[float, ...]) -> float:
    light, dark = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# Each element holding text directly: its colour, the first opaque background behind it,
# font size and weight.
COLOURS_JS = """
() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('[style*="display:none"]')) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const alt = el.tagName === 'IMG' && !el.naturalWidth;  // alt text of a blocked picture
    if (!own && !alt) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    let bg = null;
    for (let p = el; p; p = p.parentElement) {
      const c = rgb(getComputedStyle(p).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) { bg = c; break; }
      if (p.getAttribute('bgcolor')) { bg = p.getAttribute('bgcolor'); break; }
    }
    out.push({text: (el.textContent || el.alt).trim().slice(0, 30), fg: rgb(cs.color),
              bg: bg || [255, 255, 255], size: parseFloat(cs.fontSize),
              bold: parseInt(cs.fontWeight) >= 700});
  }
  return out;
}
"""


def _unreadable(page: Page) -> list[tuple[str, float, float]]:
    bad = []
    for el in page.evaluate(COLOURS_JS):
        bg = el["bg"]
        if isinstance(bg, str):
            bg = tuple(int(bg.lstrip("#")[k : k + 2], 16) for k in (0, 2, 4))
        ratio = _contrast(tuple(el["fg"]), tuple(bg))
        large = el["size"] >= 24 or (el["size"] >= 18.66 and el["bold"])
        if ratio < (3 if large else 4.5) or el["size"] < 13:
            bad.append((el["text"], round(ratio, 2), el["size"]))
    return bad


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", (320, 800))
def test_text_is_readable(browser: Browser, html_file: Path, scheme: str, width: int) -> None:
    """WCAG AA contrast of the colours Chromium computed, and no text under 13 px — also with
    the reader's system in dark mode (the template declares no dark scheme: it must stay as
    designed, not turn half dark)."""
    with new_page(browser, width) as page:
        page.emulate_media(color_scheme=scheme)
        open_file(page, html_file)
        assert page.evaluate(f"matchMedia('(prefers-color-scheme: {scheme})').matches")
        assert _unreadable(page) == []


def test_the_logo_alt_text_is_readable_when_pictures_are_blocked(
    browser: Browser, folder: Path
) -> None:
    """Most mail programs block pictures at first: the logo's alt text (the organisation's
    name) showed in black 13 px Times on the dark brand band (contrast 2.6:1)."""
    org = folder / "templates" / "organisation.toml"
    saved = org.read_text(encoding="utf-8")
    org.write_text(
        saved.replace('logo_url = "wordmark.png"', 'logo_url = "https://cdn.wmhtc.co.uk/l.png"'),
        encoding="utf-8",
    )
    try:
        settings = Settings(issues_dir=folder / "issues", templates_dir=folder / "templates")
        html = preview.render_path(settings, folder / "issues" / "awkward.md").sample()[1]
    finally:
        org.write_text(saved, encoding="utf-8")
    with new_page(browser, 375) as page:
        page.route("**/*", lambda route: route.abort())
        page.set_content(html, wait_until="load")
        logo = page.evaluate(
            """() => { const i = document.querySelector('img');
                 return {alt: i.alt, loaded: i.naturalWidth, family: getComputedStyle(i).fontFamily,
                         width: i.getAttribute('width')}; }"""
        )
        assert logo["alt"] and logo["loaded"] == 0
        assert "Arial" in logo["family"]
        assert logo["width"] == "180", "Outlook sizes the logo by its width attribute"
        blocked = [bad for bad in _unreadable(page) if bad[0] == logo["alt"][:30]]
        assert blocked == []


@pytest.mark.parametrize("width", WIDTHS)
def test_a_wide_logo_is_tall_enough_to_read(browser: Browser, html_file: Path, width: int) -> None:
    """A 6:1 wordmark was squeezed into 180 × 30 px; now 240 × 40, within the phone column."""
    with new_page(browser, width) as page:
        open_file(page, html_file)
        logo = page.eval_on_selector(
            "img", "i => { const r = i.getBoundingClientRect(); return [r.width, r.height]; }"
        )
        assert logo[1] >= 39.5 and logo[0] <= min(width - 56, 264)


def test_a_tall_logo_does_not_fill_the_header(tmp_path: Path) -> None:
    from newsletter.content.images import LOGO_WIDTH, PreparedImage

    def size(width: int, height: int) -> tuple[int, int]:
        return PreparedImage(tmp_path, b"", "image/png", width, height, "x").logo_size()

    assert size(540, 180) == (LOGO_WIDTH, 60)  # an ordinary logo: as it always was
    assert size(180, 180) == (180, 180)
    assert size(200, 800) == (45, 180)  # was 180 × 720
    assert size(1600, 100) == (264, 16)  # was 180 × 11
    assert size(100, 30) == (100, 30)  # never enlarged


def test_the_text_part_is_wrapped_and_keeps_everything(rendered: tuple[str, str]) -> None:
    """The title and a long heading ran on as single 200-character lines; a code block lost
    its indentation."""
    html, text = rendered
    assert len(html.encode("utf-8")) < 102 * 1024, "past Gmail's clip"
    lines = text.splitlines()
    for line in lines:
        if len(line) > WIDTH:
            # Only a single unbreakable token (a URL, a DOI) may be longer.
            assert len(line.split()) <= 2 and re.search(r"\S{60,}", line), line
    flat = " ".join(text.split())
    for words in [TITLE, HEADING, COMPOUND, DOI, ADDRESS, EMOJI, ARABIC, HEBREW, *BUTTONS]:
        assert words in flat, words
    for words in [*TABLE_ROW, *FACTS.values(), " ".join(CODE_LINE.split())]:
        assert words in flat, words
    assert "\n    if name:\n        return" in text
    assert "\nRETRIES    = 5    # aligned by hand\n" in text  # runs of spaces kept in code
    # Underlines as wide as the wrapped heading, never past the line width.
    title_end = lines.index(next(line for line in lines if line.startswith("=")))
    assert 0 < len(lines[title_end]) <= WIDTH and title_end >= 3
    # Links: a URL shown as itself in <…>, others numbered and listed after the article.
    assert f"<{LONG_URL}>" in text
    numbered = re.findall(r"^\[(\d+)\]\s*(\S*)", text, re.M)
    assert numbered == [
        ("1", "https://www.wmhtc.co.uk/programme"),
        ("2", "https://www.wmhtc.co.uk/rules"),
    ]
    assert "Read the programme [1] and the rules [2]." in text
    assert "[Image: Register for the Expo] https://www.wmhtc.co.uk/expo" in text


# Words of the table's cells the browser broke across lines ("Compa|ny"): a word's Range has
# a client rect per line it spans. Only words up to 16 letters: a longer token (a URL, a
# 60-letter compound) has to break in any layout.
SPLIT_WORDS_JS = """() => {
  const split = [];
  for (const cell of document.querySelectorAll('table.data td, table.data th')) {
    if (!cell.getClientRects().length) continue;
    const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      if (!node.parentElement.getClientRects().length) continue;
      for (const m of node.data.matchAll(/[^\\s-]+-?/g)) {
        if (m[0].length > 16) continue;
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (lines.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_a_table_too_wide_for_its_columns_breaks_no_word(
    browser: Browser, html_file: Path, width: int
) -> None:
    """8 columns share 544 px on a desktop (68 px each): "Company", "Product", "Funding",
    "Remote" and "Looking" were broken mid-word in every cell. Such a table now reads as the
    phone's "Label: value" blocks at every width."""
    with new_page(browser, width) as page:
        open_file(page, html_file)
        assert page.evaluate(SPLIT_WORDS_JS) == []
        labels = page.eval_on_selector_all(
            "table.data .data-label", "ls => ls.filter(l => l.getClientRects().length).length"
        )
        assert labels == len(TABLE_HEADER)


def test_a_long_organisation_name_wraps_in_the_text_part(folder: Path, tmp_path: Path) -> None:
    """The text part's first line (bulletin · organisation) and the footer's name and contact
    lines were written unwrapped: 150 characters with a long registered name."""
    shutil.copytree(folder / "templates", tmp_path / "templates")
    org = tmp_path / "templates" / "organisation.toml"
    name = "West Midlands Health Technologies Innovation Cluster Community Interest Company"
    bulletin = "The Monthly Members' Bulletin of the West Midlands Health Technologies Cluster"
    org.write_text(
        re.sub(
            r"^bulletin = .*$",
            f'bulletin = "{bulletin}"',
            re.sub(r"^name = .*$", f'name = "{name}"', org.read_text(encoding="utf-8"), flags=re.M),
            flags=re.M,
        ),
        encoding="utf-8",
    )
    settings = Settings(issues_dir=folder / "issues", templates_dir=tmp_path / "templates")
    _, _, text = preview.render_path(settings, folder / "issues" / "awkward.md").sample()
    head, _, footer = text.partition("-" * 70 + "\n" + name.split()[0])
    assert footer, "the footer starts with the organisation's name"
    for line in text.splitlines():
        assert len(line) <= WIDTH or (len(line.split()) <= 2 and re.search(r"\S{60,}", line))
    assert f"{bulletin} · {name}" in " ".join(head.split())


@pytest.mark.parametrize("width", (375, 800))
def test_right_to_left_paragraphs_align_to_the_right(
    browser: Browser, html_file: Path, width: int
) -> None:
    """An Arabic or Hebrew paragraph read right to left but stood against the left edge
    (the column's text-align:left), ragged on the side it is read from."""
    with new_page(browser, width) as page:
        open_file(page, html_file)
        paragraphs = page.eval_on_selector_all(
            "p[dir=auto]",
            """ps => ps.map(p => {
                const range = document.createRange(); range.selectNodeContents(p);
                const lines = [...range.getClientRects()];
                const box = p.getBoundingClientRect();
                return {text: p.textContent.slice(0, 5), rtl: getComputedStyle(p).direction === 'rtl',
                        gapLeft: Math.min(...lines.map(r => r.left)) - box.left,
                        gapRight: box.right - Math.max(...lines.map(r => r.right))};
            })""",
        )
        rtl = [p for p in paragraphs if p["rtl"]]
        assert len(rtl) == 2
        for p in rtl:
            assert p["gapRight"] < 1, p
        for p in paragraphs:
            if not p["rtl"]:
                assert p["gapLeft"] < 1, p


@pytest.mark.parametrize("width", (320, 800))
def test_right_to_left_list_items_keep_their_bullets_in_the_column(
    browser: Browser, html_file: Path, width: int
) -> None:
    """An Arabic item's bullet stands on its right, but the list's room for bullets was on
    the left only: the bullets hung outside the text column, and a nested Hebrew item was
    not indented at all."""
    with new_page(browser, width) as page:
        open_file(page, html_file)
        items = page.eval_on_selector_all(
            "li[dir=auto]",
            """lis => Object.fromEntries(lis.map(li => {
                const column = li.closest('div').getBoundingClientRect();
                const r = li.getBoundingClientRect();
                return [li.firstChild.textContent.trim().slice(0, 12),
                        {rtl: getComputedStyle(li).direction === 'rtl',
                         room: column.right - r.right, right: r.right}];
            }))""",
        )
        arabic, hebrew = items[ARABIC_ITEM[:12]], items[HEBREW_ITEM[:12]]
        assert arabic["rtl"] and hebrew["rtl"]
        assert arabic["room"] >= 15, "no room for the bullet inside the column"
        assert hebrew["right"] <= arabic["right"] - 15, "the nested item is not indented"
        assert not items["English item"]["rtl"]
