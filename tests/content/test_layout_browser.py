"""The final email HTML in real headless Chromium at phone, small-tablet and desktop widths.

Chromium is not a mail client, but it applies the same CSS a WebKit/Blink-based client
(Apple Mail, iOS Mail, Gmail apps) does, including the 480 px media query that stacks the
layout — which no string assertion on the HTML can check.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import new_page

from newsletter.common.config import Settings
from newsletter.content.render import RenderedIssue
from newsletter.web import preview

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.browser

WIDTHS = (320, 375, 600, 800)
BREAKPOINT = 480  # <mj-breakpoint> in templates/email.mjml.j2: narrower stacks


@pytest.fixture(scope="module")
def december_previewed(tmp_path_factory: pytest.TempPathFactory, make_project) -> RenderedIssue:
    """The example issue as the preview renders it (no unsubscribe link set up)."""
    folder = make_project(tmp_path_factory.mktemp("december"), members=None)
    settings = Settings(issues_dir=folder / "issues", templates_dir=folder / "templates")
    return preview.render_path(settings, folder / "issues" / "december-2023.md")


@pytest.fixture(scope="module")
def email_html(december_previewed: RenderedIssue) -> str:
    return december_previewed.sample()[1]


def load(page: Page, html: str) -> list[str]:
    """Load ``html`` as the page; return every network request it tried (all refused)."""
    requests: list[str] = []

    def refuse(route: Route) -> None:
        requests.append(route.request.url)
        route.abort()

    # Everything but about:/data: goes through the route: an email that fetches a font,
    # a tracking pixel or a stylesheet when opened would show up here.
    page.route("**/*", refuse)
    page.set_content(html, wait_until="load")
    return [url for url in requests if not url.startswith(("about:", "data:"))]


def box(page: Page, selector: str) -> dict[str, float]:
    return page.eval_on_selector(
        selector,
        "el => { const r = el.getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; }",
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_no_horizontal_overflow_and_no_network(
    browser: Browser, email_html: str, width: int
) -> None:
    with new_page(browser, width) as page:
        requests = load(page, email_html)
        assert requests == [], f"the email fetched {requests} when opened"
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert inner_width == width
        assert scroll_width <= inner_width, f"{scroll_width}px wide content at {width}px"


def test_mobile_layout_stacks(browser: Browser, email_html: str) -> None:
    with new_page(browser, 375) as page:
        load(page, email_html)
        name = box(page, ".mj-column-per-65")
        date = box(page, ".mj-column-per-35")
        assert date["top"] >= name["bottom"] - 0.5, "the header's date is not below the name"

        cells = page.eval_on_selector_all(
            "table.facts tr",
            """rows => rows.map(tr => {
                const th = tr.querySelector('th'), td = tr.querySelector('td');
                return {th: getComputedStyle(th).display, td: getComputedStyle(td).display,
                        thBottom: th.getBoundingClientRect().bottom,
                        tdTop: td.getBoundingClientRect().top};
            })""",
        )
        assert cells, "the issue has facts tables"
        for cell in cells:
            assert (cell["th"], cell["td"]) == ("block", "block")
            assert cell["tdTop"] >= cell["thBottom"] - 0.5, "a fact's value is not below its label"


def test_desktop_layout_side_by_side(browser: Browser, email_html: str) -> None:
    with new_page(browser, 600) as page:
        load(page, email_html)
        name = box(page, ".mj-column-per-65")
        date = box(page, ".mj-column-per-35")
        assert abs(date["top"] - name["top"]) < 1 and date["left"] >= name["right"] - 0.5

        cells = page.eval_on_selector_all(
            "table.facts tr",
            """rows => rows.map(tr => {
                const th = tr.querySelector('th'), td = tr.querySelector('td');
                return {th: getComputedStyle(th).display, td: getComputedStyle(td).display,
                        thTop: th.getBoundingClientRect().top,
                        tdTop: td.getBoundingClientRect().top};
            })""",
        )
        assert cells
        for cell in cells:
            assert (cell["th"], cell["td"]) == ("table-cell", "table-cell")
            assert abs(cell["tdTop"] - cell["thTop"]) < 1


def test_body_text_readable_on_a_phone(browser: Browser, email_html: str) -> None:
    with new_page(browser, 375) as page:
        load(page, email_html)
        # Body text: paragraphs, list items and quotes outside the footer (whose 14 px small
        # print is deliberate). iOS enlarges text under 16 px anyway, breaking the layout.
        sizes = page.eval_on_selector_all(
            "p, li, blockquote",
            """els => els.filter(el => !el.closest('.footer'))
                         .map(el => [el.textContent.trim().slice(0, 40),
                                     parseFloat(getComputedStyle(el).fontSize)])""",
        )
        assert len(sizes) > 20
        small = [(text, size) for text, size in sizes if size < 16]
        assert small == [], f"body text under 16px at 375px: {small[:5]}"


def test_document_language(
    browser: Browser, december_previewed: RenderedIssue, email_html: str
) -> None:
    # (Image alts: test_logo_and_images_have_alt_text; December has no image to check.)
    with new_page(browser, 375) as page:
        load(page, email_html)
        assert december_previewed.org.lang
        assert page.evaluate("document.documentElement.lang") == december_previewed.org.lang


def test_logo_and_images_have_alt_text(browser: Browser, tmp_path: Path, make_project) -> None:
    """The December issue has no image: render one with a logo and an image to check alts."""
    make_project(tmp_path, issues=False, members=None)
    org = tmp_path / "templates" / "organisation.toml"
    org.write_text(
        org.read_text(encoding="utf-8").replace(
            'logo_url = ""', 'logo_url = "https://www.example.org/logo.png"'
        ),
        encoding="utf-8",
    )
    (tmp_path / "issues").mkdir()
    issue = tmp_path / "issues" / "images.md"
    issue.write_text(
        "---\ntitle: Images\nsubject: Images\npreheader: With images\ndate: 2024-01-10\n---\n\n"
        "## Pictures\n\nSome text.\n\n![The new lab at Aston](https://www.example.org/lab.jpg)\n",
        encoding="utf-8",
    )
    settings = Settings(issues_dir=tmp_path / "issues", templates_dir=tmp_path / "templates")
    html = preview.render_path(settings, issue).sample()[1]
    with new_page(browser, 375) as page:
        # The two images are requested, and refused: this also shows the route sees requests.
        requested = load(page, html)
        assert sorted(requested) == [
            "https://www.example.org/lab.jpg",
            "https://www.example.org/logo.png",
        ]
        alts = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.getAttribute('alt'))")
        assert len(alts) == 2
        assert all(alt for alt in alts), alts
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
