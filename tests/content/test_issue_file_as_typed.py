"""An issue file as chairs type it: ' #' in the front matter, YAML quoting mistakes named at
their line with the fix, a misspelt key, member fields in the title and preheader, and
files Notepad saved in ANSI or 'Unicode'."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import (
    CHECK_ENV,
    dry_run_cli,
    run_cli,
    write_issue,
    write_three_members,
)

from newsletter.common.config import Settings
from newsletter.common.errors import IssueError
from newsletter.content.frontmatter import split_front_matter
from newsletter.content.issue import load_issue

# ---- ' #' on a continued front-matter line ------------------------------------------------


def test_a_hash_on_a_continued_line_is_kept_not_cut(tmp_path: Path) -> None:
    """YAML took ' #12 …' on the second line of a preheader for a comment: the preheader
    silently lost its end ('Funding calls, events and issue'). It is kept whole."""
    text = "---\npreheader: Funding calls, events\n  and issue #12 news\ntitle: x\n---\n"
    assert split_front_matter(text, tmp_path / "x.md")[0]["preheader"] == (
        "Funding calls, events and issue #12 news"
    )
    ok = "---\npreheader: Funding calls, events\n  and C# news\ntitle: x\n---\n"
    assert split_front_matter(ok, tmp_path / "x.md")[0]["preheader"] == (
        "Funding calls, events and C# news"
    )


def test_a_hash_line_that_breaks_the_yaml_is_named_not_the_next_line(tmp_path: Path) -> None:
    text = "---\npreheader:\n  Funding calls #3, events\n  and issue news\ntitle: x\n---\n"
    with pytest.raises(IssueError, match="' #'") as caught:
        split_front_matter(text, tmp_path / "x.md")
    assert ":3:" in str(caught.value)


def test_a_member_field_in_the_title_is_not_ready_and_in_the_preheader_is_filled(
    project: Path, ready: Settings
) -> None:
    """A preheader '{{ recipient.first_name }}, …' reached every inbox as typed and `check`
    said READY: the preheader is now filled per member like the subject (the web edition
    with the fallback). The title, shown in the archive and feed too, stays an error."""
    import email
    import email.policy

    from newsletter.sending.campaign import dry_run, prepare
    from newsletter.sending.checks import run_checks

    write_three_members(project)
    (project / "issues" / "fields.md").write_text(
        "---\ntitle: \"News for {{ recipient.organisation or 'members' }}\"\n"
        "subject: \"{{ recipient.first_name or 'Member' }}, your news\"\n"
        "preheader: \"{{ recipient.first_name or 'Dear member' }}, here is what is inside.\"\n"
        "date: 2026-11-25\n---\n\n## Hello\n\nDear {{ recipient.first_name or 'member' }}.\n",
        encoding="utf-8",
    )
    report = run_checks(prepare(ready, "fields"), http_head=lambda url: None)
    errors = {f.where: f.message for f in report.errors}
    assert any(w.endswith("fields.md:2") and "title holds" in m for w, m in errors.items())
    assert not any(w.endswith(("fields.md:3", "fields.md:4")) for w in errors)
    camp = prepare(ready, "fields")
    result = dry_run(camp, ready.outbox / "fields", head=None)
    for path in sorted(result.out_dir.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = msg.get_body(("html",)).get_content()
        hidden = html.split('mso-hide:all;">', 1)[1].split("\u034f", 1)[0]
        assert "{{" not in hidden and "recipient" not in hidden
        first = msg["Subject"].split(",")[0]  # the same member's name, as the subject has it
        expected = first if first != "Member" else "Dear member"
        assert hidden.startswith(f"{expected}, here is what is inside."), hidden


# ---- front matter as chairs type it ----------------------------------------------------------


def front(subject_line: str) -> str:
    return (
        "---\ntitle: Cluster News – January\n" + subject_line + "\n"
        "preheader: Events, funding and a word from the chair for the year ahead.\n"
        "date: 2024-01-11\n---\n\n## Hello\n\nText.\n"
    )


def test_a_hash_in_an_unquoted_subject_is_kept_whole(project: Path) -> None:
    """YAML reads ' #' as a comment: 'subject: Cluster News #12: …' became the subject
    "Cluster News", and check said READY. The chair writes no YAML comments: the subject is
    taken whole, as written, quoted or not."""
    for line in (
        "subject: Cluster News #12 – skills and events",
        'subject: "Cluster News #12 – skills and events"',
    ):
        (project / "issues" / "probe.md").write_text(front(line), encoding="utf-8")
        assert dry_run_cli(project, "probe")[0]["Subject"] == "Cluster News #12 – skills and events"
        done = run_cli(["check", "probe"], env=CHECK_ENV)
        assert "comment" not in done.stdout + done.stderr


def test_yaml_quoting_mistakes_name_their_own_line_and_the_fix(project: Path) -> None:
    """An unclosed quote was reported at the closing '---' line; every YAML mistake got the
    same hint about ': ', whatever it was (an apostrophe inside '…', a leading '*' or '[')."""
    cases = {
        'subject: "Cluster News – January': 'close the quote, and write a " inside the value',
        "subject: 'The chair's January news'": "an apostrophe ends a value in '…': use double "
        'quotes instead — subject: "The chair\'s January news"',
        "subject: *New* events in January": 'put the value in double quotes — subject: "*New*',
        "subject: {{ recipient.first_name }}, your news": "put the value in double quotes — "
        'subject: "{{ recipient.first_name }}, your news"',
    }
    for line, hint in cases.items():
        (project / "issues" / "probe.md").write_text(front(line), encoding="utf-8")
        done = run_cli(["check", "probe"], env=CHECK_ENV)
        assert done.returncode == 2
        assert done.stderr.startswith("error: issues/probe.md:3: front matter: "), done.stderr
        assert hint in done.stderr, done.stderr


def test_an_issue_saved_by_notepad_in_ansi_or_unicode_says_how_to_resave(project: Path) -> None:
    """'not UTF-8 text (save it as UTF-8)' did not say which character, nor how; a UTF-16
    file ('Unicode' in Notepad) was blamed on line 1 as not UTF-8 alike."""
    text = front("subject: Cluster News – January").replace("Text.", "Café at £5 — “free”.")
    (project / "issues" / "ansi.md").write_bytes(text.encode("cp1252"))
    (project / "issues" / "wide.md").write_bytes(text.encode("utf-16"))
    resave = "(in Notepad: File > Save as, Encoding: UTF-8; in other editors, save as UTF-8)"
    done = run_cli(["check", "ansi"], env=CHECK_ENV)
    assert done.returncode == 2
    assert done.stderr == (
        "error: issues/ansi.md:2: not UTF-8 text: byte 0x96 ('–' in Windows-1252) cannot be "
        f"read {resave}\n"
    )
    done = run_cli(["render", "wide"], env=CHECK_ENV)
    assert done.returncode == 2
    assert (
        done.stderr == f"error: issues/wide.md:1: is UTF-16 text ('Unicode'), not UTF-8 {resave}\n"
    )


def test_misspelt_required_key_is_reported_at_its_line(project: Path, ready: Settings) -> None:
    (project / "issues" / "typo.md").write_text(
        "---\ntitle: T\nsubject: S\npreheder: A preheader\ndate: 2024-01-18\n---\nBody.\n",
        encoding="utf-8",
    )
    with pytest.raises(IssueError) as caught:
        load_issue("typo", ready.issues_dir)
    assert caught.value.message == "unknown key 'preheder': did you mean 'preheader'?"
    assert caught.value.line == 4
    # An optional key misspelt is an error too (issue 17: ignored, it published the issue).
    slug = write_issue(project, "Body.\n")
    path = project / "issues" / "probe.md"
    path.write_text(path.read_text("utf-8").replace("date:", "archve: false\ndate:"), "utf-8")
    with pytest.raises(IssueError) as caught:
        load_issue(slug, ready.issues_dir)
    assert caught.value.message == "unknown key 'archve': did you mean 'archive'?"
    assert caught.value.line == 5
