"""The body's Markdown as chairs write it, read back from both parts of what is sent: code
blocks in list items and quotes, lists that keep their numbers, a table inside a list item,
a typed <br>, a heading that is a link, right-to-left paragraphs, and where a picture may
stand."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import new_page
from support.helpers import (
    CHECK_ENV,
    dry_run_cli,
    html_and_text,
    run_cli,
    write_issue,
    write_probe,
)

from newsletter.common.config import Settings
from newsletter.web.preview import render_files

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# ---- content is never lost -------------------------------------------------------------------


def test_code_blocks_inside_list_items_and_quotes_reach_both_parts(project: Path) -> None:
    """A code block indented under a bullet, or inside a quote, vanished from both parts
    (only the items' and quotes' paragraphs were read); a list in a quote lost its numbers
    and bullets ('3. Apply by Friday' read 'Apply by Friday')."""
    slug = write_issue(
        project,
        "## Setting up\n\n"
        "- Install the reader:\n\n"
        "  ```\n  pip install cluster-reader\n  ```\n\n"
        "  Then sign in.\n\n"
        "- Done.\n\n"
        "> The board's note:\n>\n>     quarterly-report-2024.pdf\n>\n"
        "> 3. Apply by Friday\n> 4. Pay by Monday\n>\n> - Bring a badge\n",
    )
    html, text = html_and_text(dry_run_cli(project, slug)[0])
    for words in ("pip install cluster-reader", "quarterly-report-2024.pdf", "Then sign in."):
        assert words in html
        assert words in text
    # A list in a quote keeps its numbers and bullets.
    for words in ("3. Apply by Friday", "4. Pay by Monday", "• Bring a badge"):
        assert words in html
        assert words in text
    # The paragraph after the code block starts on a line of its own, in both parts.
    assert re.search(r"<code\b[^>]*>pip install cluster-reader</code><br>Then sign in\.", html)
    assert "   pip install cluster-reader\n   Then sign in." in text


def test_a_picture_in_a_list_or_table_is_told_where_it_may_go(project: Path) -> None:
    """'- ![Team](images/team.jpg)' stands on a line of its own, yet the error said 'an image
    must stand on a line of its own (put a blank line before and after it)'."""
    for body, line in (
        ("## Team\n\n- ![Our team](images/team.jpg)\n", 9),
        ("## Team\n\n| Who | Photo |\n|---|---|\n| Ann | ![Ann](images/ann.jpg) |\n", 11),
    ):
        slug = write_issue(project, body)
        done = run_cli(["check", slug], env=CHECK_ENV)
        assert done.returncode == 2
        assert done.stderr == (
            f"error: issues/probe.md:{line}: a picture cannot be inside a heading, list, quote, "
            "table or facts block (put it on a line of its own, with a blank line before and "
            "after)\n"
        )


def test_a_heading_that_is_one_link_keeps_it_and_a_link_among_words_is_not_ready(
    project: Path,
) -> None:
    """'## [Register for the Expo](https://…)' kept the words and silently dropped the link
    from both parts, and check said READY. A heading that is one link now is a link (HTML
    and the text part's references); a link among other words in a heading is an error."""
    slug = write_issue(
        project,
        "## [Register for the Expo](https://www.ukri.org/expo)\n\nSix hundred exhibitors.\n\n"
        "### [Speakers](https://www.ukri.org/speakers)\n\nTwelve of them.\n",
    )
    html, text = html_and_text(dry_run_cli(project, slug)[0])
    assert re.search(
        r'<h3[^>]*><a href="https://www.ukri.org/expo"[^>]*>Register for the Expo</a>', html
    )
    assert re.search(r'<h4[^>]*><a href="https://www.ukri.org/speakers"[^>]*>Speakers</a>', html)
    assert "Register for the Expo\n---------------------\nhttps://www.ukri.org/expo\n" in text
    assert "Speakers:\nhttps://www.ukri.org/speakers\n" in text
    done = run_cli(["check", slug], env=CHECK_ENV)
    assert "a heading shows text only" not in done.stdout, done.stdout
    slug = write_issue(
        project, "## Register [for the Expo](https://www.ukri.org/expo) today\n\nSix hundred.\n"
    )
    done = run_cli(["check", slug], env=CHECK_ENV)
    assert done.returncode == 1
    assert (
        "error: issues/probe.md:7: a heading shows text only: the link in it is left out of the "
        "email — put the link in a sentence or a button under the heading"
    ) in done.stdout


# ---- other scripts -----------------------------------------------------------------------------


@pytest.mark.browser
def test_right_to_left_paragraphs_read_right_to_left(project: Path, browser: Browser) -> None:
    """An Arabic paragraph in an English bulletin inherited the email's left-to-right
    direction: its full stop showed at the wrong end. Each block now takes its direction
    from its own first letters (dir="auto"), so English ones are unchanged."""
    slug = write_issue(
        project,
        "## مرحبا بالأعضاء\n\nمرحبا بكم في النشرة الإخبارية.\n\n"
        "- عنصر القائمة.\n\n## Welcome\n\nWelcome to the bulletin.\n",
        subject="أخبار — Cluster News – January",
    )
    message = dry_run_cli(project, slug)[0]
    assert message["Subject"] == "أخبار — Cluster News – January"
    html, text = html_and_text(message)
    assert "مرحبا بكم في النشرة الإخبارية." in text
    with new_page(browser, 600) as page:
        page.set_content(html)
        direction = page.evaluate(
            """words => [...document.querySelectorAll('p, li, h3')]
                .filter(e => words.some(w => e.textContent.includes(w)))
                .map(e => [e.textContent.trim(), getComputedStyle(e).direction])""",
            ["مرحبا", "عنصر", "Welcome"],
        )
    assert dict(direction) == {
        "مرحبا بالأعضاء": "rtl",
        "مرحبا بكم في النشرة الإخبارية.": "rtl",
        "عنصر القائمة.": "rtl",
        "Welcome": "ltr",
        "Welcome to the bulletin.": "ltr",
    }


def test_a_numbered_list_keeps_its_first_number(project: Path) -> None:
    """'3. Attend' continuing a list after a paragraph was renumbered '1.' in both parts,
    and '2023. A good year.' lost its year."""
    slug = write_issue(
        project,
        "## Steps\n\n1. Register\n2. Pay\n\nThen, once paid:\n\n3. Attend\n4. Give feedback\n\n"
        "Looking back:\n\n2023. A good year for the cluster.\n",
    )
    html, text = html_and_text(dry_run_cli(project, slug)[0])
    assert "1. Register\n2. Pay\n" in text
    assert "3. Attend\n4. Give feedback\n" in text
    assert "2023. A good year for the cluster.\n" in text
    assert [ol.split(" style")[0] for ol in html.split("<ol")[1:]] == [
        "",
        ' start="3"',
        ' start="2023"',
    ]


def test_a_typed_br_is_a_line_break_not_text(project: Path) -> None:
    """'<br>' typed out of habit reached every member as the characters '<br>' (check only
    warned about raw HTML)."""
    slug = write_issue(
        project,
        "## Where\n\nThe Exchange<br>Birmingham<BR/>B1 1AA, and <b>this</b> as typed.\n\n"
        "Type `<br>` for nothing.\n",
    )
    html, text = html_and_text(dry_run_cli(project, slug)[0])
    assert "The Exchange<br>Birmingham<br>B1 1AA, and &lt;b&gt;this&lt;/b&gt; as typed." in html
    assert "The Exchange\nBirmingham\nB1 1AA, and <b>this</b> as typed.\n" in text
    assert re.search(r"<code\b[^>]*>&lt;br&gt;</code>", html)
    done = run_cli(["check", slug], env=CHECK_ENV)
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning")]
    assert warnings == [
        "warning: issues/probe.md:9: raw HTML '<b>' is shown as text in the email — use "
        "Markdown instead: **bold**, _italic_, [text](https://…), a blank line"
    ]


# ---- a table inside a list item; a list numbered from 2023 --------------------------------

TABLE_IN_ITEM = """## Events

- Our events this year:

  | Event | Date |
  |---|---|
  | Expo | 9 May |
  | Summit | |

- Another item
"""


def test_a_table_inside_a_list_item_reads_as_one_line_per_row(
    settings: Settings, tmp_path: Path
) -> None:
    """The cells ran together: 'Our events this year: Event Date Expo 9 May Summit'."""
    write_probe(settings.issues_dir, "date: 2024-01-18\n", TABLE_IN_ITEM)
    html_path, text_path, _ = render_files(settings, "probe", tmp_path / "out")
    text = text_path.read_text(encoding="utf-8")
    assert "Our events this year:\n   Event: Expo; Date: 9 May\n   Event: Summit\n" in text
    html = html_path.read_text(encoding="utf-8")
    assert "Our events this year:<br>Event: Expo; Date: 9 May<br>Event: Summit</li>" in html


def test_a_list_numbered_from_2023_has_room_for_its_numbers(
    settings: Settings, tmp_path: Path
) -> None:
    body = "## Years\n\n2023. a good year\n2024. a better one\n\n## Steps\n\n1. one\n2. two\n"
    write_probe(settings.issues_dir, "date: 2024-01-18\n", body)
    html = render_files(settings, "probe", tmp_path / "out")[0].read_text(encoding="utf-8")
    assert '<ol start="2023" style="margin:0 0 16px; padding:0 0 0 22px; padding-left:50px">' in (
        html
    )
    assert '<ol style="margin:0 0 16px; padding:0 0 0 22px">' in html  # 1. 2. as before


def test_a_list_typed_from_1_again_is_not_numbered_on_from_the_one_above(
    settings: Settings, tmp_path: Path
) -> None:
    """CommonMark runs '1. one' on from a list just above it: the chair typed 1. and 2.,
    members read 2025. and 2026. An item typed '1.' after other numbers starts a new list;
    '1. 1. 1.' (numbering left to Markdown) stays one list."""
    body = (
        "## Years\n\n2023. a good year\n2024. a better one\n\n1. one\n2. two\n\n"
        "## Lazy\n\n1. a\n1. b\n1. c\n"
    )
    write_probe(settings.issues_dir, "date: 2024-01-18\n", body)
    html_path, text_path, _ = render_files(settings, "probe", tmp_path / "out")
    text = text_path.read_text(encoding="utf-8")
    assert "2024. a better one\n\n1. one\n2. two\n" in text
    assert "2025." not in text
    assert "\n1. a\n2. b\n3. c\n" in text
    html = html_path.read_text(encoding="utf-8")
    assert html.count("<ol") == 3
