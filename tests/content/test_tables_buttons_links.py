"""GFM tables, buttons and bare links in both parts: email tables that fit a phone (rows
stacked as label: value lines, the desktop grid kept, labels hidden from Outlook), aligned
text tables, one button per {.button} link, bare URLs made links with shared numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import new_page
from support.helpers import dry_run_in_process, run_check, text_and_html, write_issue

from newsletter.common.config import Settings
from newsletter.content.issue import load_issue

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# ---- Markdown chairs write --------------------------------------------------------------------

TABLE = (
    "## Dates\n\n"
    "| Event | Date | Places |\n"
    "|:--|:--|--:|\n"
    "| Topical Tuesday | 9 January | 40 |\n"
    "| [Skills workshop](https://www.wmhtc.co.uk/skills) | 27 February | 120 |\n"
)

WIDE = (
    "| Programme | Who can apply | Funding | Closes |\n"
    "|---|---|---|---|\n"
    "| Innovate UK Biomedical Catalyst 2024 late-stage award | UK SMEs with a medical "
    "technology ready for clinical validation | Up to £4 million per project | 17 April 2024 |\n"
)


def test_tables_render_as_email_tables_and_text(project: Path, ready: Settings) -> None:
    slug = write_issue(project, TABLE + "\n" + WIDE)
    _, (message, *_) = dry_run_in_process(ready, slug)
    text, html = text_and_html(message)
    assert '<table class="data" role="table"' in html
    assert (
        '<th scope="col" style="border:1px solid #c5ced6; padding:6px 8px; text-align:left' in html
    )
    assert ">Topical Tuesday</td>" in html
    assert "border:1px solid #c5ced6" in html.replace(": ", ":")
    assert (
        "Event                Date         Places\n"
        "-------------------  -----------  ------\n"
        "Topical Tuesday      9 January        40\n"
        "Skills workshop [1]  27 February     120\n"
    ) in text.replace("\r\n", "\n")
    # Too wide for aligned columns: "Label: value" lines.
    assert (
        "Programme: Innovate UK Biomedical Catalyst 2024 late-stage award\n"
        "Who can apply: UK SMEs with a medical technology ready for clinical validation\n"
        "Funding: Up to £4 million per project\n"
        "Closes: 17 April 2024\n"
    ) in text.replace("\r\n", "\n")
    assert run_check(ready, slug).errors == []


@pytest.mark.browser
def test_tables_and_buttons_fit_a_320px_phone(
    project: Path, ready: Settings, browser: Browser
) -> None:
    slug = write_issue(
        project,
        TABLE
        + "\n"
        + WIDE
        + "\n[Register for the workshop](https://www.wmhtc.co.uk/r){.button}\n"
        + "[Read the programme](https://www.wmhtc.co.uk/p){.button}\n",
    )
    _, (message, *_) = dry_run_in_process(ready, slug)
    _, html = text_and_html(message)
    with new_page(browser, 320) as page:
        page.set_content(html, wait_until="load")
        sizes = page.evaluate(
            """() => ({
                page: document.documentElement.scrollWidth,
                tables: [...document.querySelectorAll('table.data')].map(t => {
                    const box = t.getBoundingClientRect();
                    return [box.left, box.right, t.scrollWidth, t.clientWidth];
                }),
                buttons: [...document.querySelectorAll('a')].filter(
                    a => /Register for|Read the programme/.test(a.textContent)
                ).map(a => { const b = a.getBoundingClientRect(); return [b.left, b.top, b.bottom]; }),
            })"""
        )
    assert sizes["page"] <= 320, sizes
    assert len(sizes["tables"]) == 2
    for left, right, scroll, client in sizes["tables"]:
        assert left >= 0 and right <= 320 and scroll <= client, sizes
    (left1, top1, bottom1), (left2, top2, _) = sizes["buttons"]
    assert top2 >= bottom1 and abs(left1 - left2) < 1, sizes  # stacked, one under the other


COMPANIES = (
    "| Company | Sector | Employees (FTE) | Date |\n"
    "|---|---|--:|---|\n"
    "| Acme Diagnostics Ltd | Medical device manufacturing | 240 (approx.) | 3 March |\n"
    "| BioNova | Digital health (software) | | 12 April |\n"
)

# Every word of every cell of the GFM tables: its text Range's line boxes. A word the browser
# broke across lines ("manufactu|ring", "Dat|e") has one client rect per line it spans, so
# more than one rect is exactly "split mid-word", whatever the font or the column widths.
# Words split at spaces and after hyphens ("late-|stage" may break at its hyphen).
WORDS_IN_CELLS = """() => [...document.querySelectorAll('table.data td, table.data th')]
    .filter(cell => cell.getClientRects().length)  // displayed
    .map(cell => {
        const split = [];
        const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
            if (!node.parentElement.getClientRects().length) continue;  // hidden label
            for (const m of node.data.matchAll(/[^\\s-]+-?/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (lines.size > 1) split.push(m[0]);
            }
        }
        return {text: cell.innerText.trim(), split,
                fits: cell.scrollWidth <= cell.clientWidth,
                right: cell.getBoundingClientRect().right};
    })"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [320, 375])
def test_table_rows_stack_as_label_value_lines_on_a_phone(
    project: Path, ready: Settings, browser: Browser, width: int
) -> None:
    slug = write_issue(project, TABLE + "\n" + WIDE + "\n" + COMPANIES)
    _, (message, *_) = dry_run_in_process(ready, slug)
    text, html = text_and_html(message)
    with new_page(browser, width) as page:
        page.set_content(html, wait_until="load")
        cells = page.evaluate(WORDS_IN_CELLS)
        page_width = page.evaluate("document.documentElement.scrollWidth")
        heads = page.eval_on_selector_all(
            "table.data th", "ths => ths.filter(th => th.getClientRects().length).length"
        )
    assert page_width <= width
    assert heads == 0, "the header row shows on a phone: its labels are in the cells"
    assert [c["split"] for c in cells if c["split"]] == [], cells
    assert all(c["fits"] and c["right"] <= width for c in cells), cells
    shown = [" ".join(c["text"].split()) for c in cells]
    assert shown[:3] == ["Event: Topical Tuesday", "Date: 9 January", "Places: 40"]
    assert "Sector: Medical device manufacturing" in shown
    assert "Employees (FTE):" not in shown  # BioNova's empty cell is not a bare label
    assert len(shown) == 3 + 3 + 4 + 7
    # The plain-text part never sees the labels: still the aligned table.
    assert "Event:" not in text and "Topical Tuesday      9 January        40" in text


@pytest.mark.browser
def test_tables_keep_the_desktop_grid_and_hide_labels_from_outlook(
    project: Path, ready: Settings, browser: Browser
) -> None:
    slug = write_issue(project, TABLE + "\n" + COMPANIES)
    _, (message, *_) = dry_run_in_process(ready, slug)
    _, html = text_and_html(message)
    # Outlook (Word engine, no media queries) and clients without <style> keep the plain
    # table: each label is hidden inline, in the form premailer leaves untouched.
    labels = re.findall(r'<span class="data-label" style="([^"]*)">([^<]*)</span>', html)
    assert len(labels) == 3 * 2 + 4 * 2
    assert all("display:none" in style and "mso-hide:all" in style for style, _ in labels)
    with new_page(browser, 600) as page:
        page.set_content(html, wait_until="load")
        rows = page.eval_on_selector_all(
            "table.data tr",
            """trs => trs.map(tr => [...tr.children].map(c => [
                getComputedStyle(c).display, Math.round(c.getBoundingClientRect().top),
                c.innerText.trim()]))""",
        )
    assert [cell[2] for cell in rows[0]] == ["Event", "Date", "Places"]
    assert [cell[2] for cell in rows[1]] == ["Topical Tuesday", "9 January", "40"]
    for row in rows:
        assert {cell[0] for cell in row} == {"table-cell"}
        assert len({cell[1] for cell in row}) == 1, row  # side by side


def test_several_buttons_each_become_a_button(project: Path, ready: Settings) -> None:
    slug = write_issue(
        project,
        "[Register](https://www.wmhtc.co.uk/r){.button}\n"
        "[Programme](https://www.wmhtc.co.uk/p){.button}\n\n"
        "[Apply now](https://www.wmhtc.co.uk/a){.button} [Read more about it](https://www.wmhtc.co.uk/m){.button}\n",
    )
    issue = load_issue(slug, ready.issues_dir)
    buttons = [(b.text, b.line) for b in issue.all_blocks()]
    assert buttons == [
        ("Register", 7),
        ("Programme", 8),
        ("Apply now", 10),
        ("Read more about it", 10),
    ]
    _, (message, *_) = dry_run_in_process(ready, slug)
    text, html = text_and_html(message)
    assert html.count("background:#b4420f") >= 4 or html.count('bgcolor="#b4420f"') >= 4
    assert ">> Register:" in text and ">> Read more about it:" in text


def test_bare_urls_become_links_and_repeat_urls_share_a_number(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(
        project,
        "The report is at https://www.ons.gov.uk/report and www.wmhtc.co.uk has more.\n\n"
        "Read [the ONS report](https://www.ons.gov.uk/full) and "
        "[its summary](https://www.ons.gov.uk/summary); again: "
        "[the full ONS report](https://www.ons.gov.uk/full).\n",
    )
    _, (message, *_) = dry_run_in_process(ready, slug)
    text, html = text_and_html(message)
    assert '<a href="https://www.ons.gov.uk/report"' in html
    assert '<a href="https://www.wmhtc.co.uk"' in html
    flat = " ".join(text.split())
    assert "The report is at <https://www.ons.gov.uk/report> and www.wmhtc.co.uk has" in flat
    assert "the ONS report [1] and its summary [2]; again: the full ONS report [1]." in flat
    assert text.count("[1] https://www.ons.gov.uk/full") == 1
    assert run_check(ready, slug).warnings == []
