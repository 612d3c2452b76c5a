"""Issue 17, item 1: the rule that tells a copy of a sent issue from a new one, at its edges
(content.likeness): a corrected typo is the same issue, a new month in the same layout is
not, member fields and the template around the text do not count, short texts are not
compared."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from newsletter.content.issue import parse_issue
from newsletter.content.likeness import (
    MIN_WORDS,
    SAME_ISSUE,
    body_words,
    same_issue,
    similarity,
    subject_words,
)

DECEMBER = Path(__file__).resolve().parents[1] / "data" / "issues" / "december-2023.md"


def words_of(path: Path) -> str:
    return body_words(parse_issue(path))


def variant(tmp_path: Path, name: str, change: Callable[[str], str]) -> Path:
    path = tmp_path / f"{name}.md"
    path.write_text(change(DECEMBER.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def test_an_identical_copy_and_a_corrected_typo_are_the_same_issue(tmp_path: Path) -> None:
    sent = words_of(DECEMBER)
    copy = shutil.copy(DECEMBER, tmp_path / "december-2023-final.md")
    assert similarity(sent, words_of(Path(copy))) == 1.0
    typo = variant(tmp_path, "typo", lambda t: t.replace("quite a stir", "quite a stirr", 1))
    score = similarity(sent, words_of(typo))
    assert score is not None and SAME_ISSUE <= score < 1.0
    assert same_issue(sent, words_of(typo))


def test_a_new_month_in_the_same_layout_is_another_issue(tmp_path: Path) -> None:
    # The same front matter and section headings (every month shares them), new articles.
    text = DECEMBER.read_text(encoding="utf-8")
    head, _, body = text.partition("\n---\n")
    fresh = []
    for number, line in enumerate(body.splitlines()):
        if line.startswith("#") or not line.strip():
            fresh.append(line)
        else:
            fresh.append(
                f"January news item {number}: the cluster met {number} new members at the "
                f"Birmingham event, and paper {number} on wearables is out this month."
            )
    january = tmp_path / "january-2024.md"
    january.write_text(head + "\n---\n" + "\n".join(fresh) + "\n", encoding="utf-8")
    score = similarity(words_of(DECEMBER), words_of(january))
    assert score is not None and score < 0.2
    assert not same_issue(words_of(DECEMBER), words_of(january))


def test_half_the_articles_rewritten_is_another_issue(tmp_path: Path) -> None:
    body = DECEMBER.read_text(encoding="utf-8").split("\n---\n", 1)[1]
    paragraphs = [p for p in body.split("\n\n") if p.strip() and not p.startswith("#")]
    rewritten = variant(
        tmp_path,
        "half",
        lambda t: _replace_all(t, paragraphs[::2], "A new paragraph about the spring programme."),
    )
    assert not same_issue(words_of(DECEMBER), words_of(rewritten))


def _replace_all(text: str, olds: list[str], new: str) -> str:
    for number, old in enumerate(olds):
        text = text.replace(old, f"{new} ({number})", 1)
    return text


def test_member_fields_links_and_case_do_not_count(tmp_path: Path) -> None:
    issue = tmp_path / "a.md"
    other = tmp_path / "b.md"
    sentence = "The cluster's annual meeting is on the fourth of March in Coventry " * 3
    issue.write_text(
        "---\ntitle: T\nsubject: Hello {{ recipient.first_name or 'member' }}, news\n"
        "preheader: P\ndate: 2024-01-18\n---\n"
        f"Dear {{{{ recipient.first_name or 'member' }}}}, {sentence}. "
        "See [the agenda](https://wmhtc.co.uk/agm).\n",
        encoding="utf-8",
    )
    other.write_text(
        "---\ntitle: T\nsubject: News\npreheader: P\ndate: 2024-02-18\n---\n"
        f"DEAR, {sentence.upper()}. See [THE AGENDA](https://example.org/other).\n",
        encoding="utf-8",
    )
    assert body_words(parse_issue(issue)) == body_words(parse_issue(other))
    assert subject_words(parse_issue(issue)) == "hello news"


def test_texts_shorter_than_the_minimum_are_not_compared() -> None:
    short = " ".join(["word"] * (MIN_WORDS - 1))
    assert similarity(short, short) is None
    assert not same_issue(short, short)
    enough = " ".join(f"word{n}" for n in range(MIN_WORDS))
    assert similarity(enough, enough) == 1.0
