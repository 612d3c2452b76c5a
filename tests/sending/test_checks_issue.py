"""`check` on the issue: a draft is never sent (even with --force) but previews; raw HTML,
footnotes, strikethrough and prose indented as code are warnings; links Markdown could not
read are errors at their line."""

from __future__ import annotations

from pathlib import Path

from support.helpers import CHECK_ENV, run_check, run_cli, said, write_issue
from support.projects import ROOT

from newsletter.common.config import Settings
from newsletter.content.issue import load_issue
from newsletter.content.render import render_issue
from newsletter.sending.checks.findings import Severity

# ---- no false READY: the issue -----------------------------------------------------------------


def test_draft_cannot_be_sent_but_previews(project: Path, ready: Settings) -> None:
    slug = write_issue(project, "Body text.\n")
    path = project / "issues" / "probe.md"
    path.write_text(path.read_text("utf-8").replace("date:", "draft: true\ndate:"), "utf-8")
    assert load_issue(slug, ready.issues_dir).draft is True
    report = run_check(ready, slug)
    assert [(f.where, f.message, f.fix, f.check) for f in report.errors] == [
        (
            f"{path}:5",
            "this issue is a draft (draft: true): it cannot be sent to members",
            "delete the 'draft: true' line when it is ready; previews and --test sends work "
            "meanwhile",
            "draft",
        )
    ]
    # The preview renders it like any other issue.
    assert (
        "Body text." in render_issue(load_issue(slug, ready.issues_dir), ready.templates_dir).text
    )


def test_raw_html_footnotes_and_strikethrough_are_warnings(project: Path, ready: Settings) -> None:
    slug = write_issue(
        project,
        "Some <b>bold</b> words.\n\n"
        "A claim.[^1]\n\n"
        "A ~~mistake~~ here.\n\n"
        "Code `<b>` or `{{ x }}` and an autolink <https://www.ons.gov.uk/report> are fine.\n",
    )
    path = project / "issues" / "probe.md"
    report = run_check(ready, slug)
    assert report.errors == []  # `{{ x }}` in inline code is shown as written, on purpose
    assert said(report, Severity.WARNING) == [
        f"{path}:7: raw HTML '<b>' is shown as text in the email",
        f"{path}:9: footnote '[^1]' is not supported: it is shown as typed",
        f"{path}:11: strikethrough '~~mistake~~' is not supported: it is shown as typed",
    ]


def test_a_draft_is_never_sent_even_with_force(project: Path) -> None:
    import subprocess
    import sys

    slug = write_issue(project, "Body text.\n")
    path = project / "issues" / "probe.md"
    path.write_text(path.read_text("utf-8").replace("date:", "draft: true\ndate:"), "utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",  # never reached: the checks refuse first
        "NEWSLETTER_SMTP_PORT": "9",
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@wmhtc.co.uk",
    }
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "send", slug, "--yes", "--force"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"error: {path.relative_to(project)}:5: this issue is a draft" in done.stderr
    assert "a draft is never sent, even with --force: delete its 'draft: true' line" in (
        done.stderr
    )


# ---- check tells the truth about Markdown that is shown as typed -----------------------------


def test_links_markdown_could_not_read_are_not_ready(project: Path) -> None:
    """A space in a link's address, a space before '(', an undefined [reference], a missing
    ')', a member field in the address, an unclosed '<!--': every member saw the Markdown as
    typed (or a link to '%7B%7B…'), and check said READY."""
    slug = write_issue(
        project,
        "## Reports\n\n"
        "Read [the land report](https://www.wmhtc.co.uk/land report.pdf) now.\n\n"  # line 9
        "See [the statistics] (https://www.ons.gov.uk/stats) too.\n\n"  # 11
        "As [the BBC says][bbc], AI rules are coming.\n\n"  # 13
        "Book at [the portal](https://www.ukri.org/book here.\n\n"  # 15
        "Your page: [profile](https://www.wmhtc.co.uk/m?e={{recipient.email}}).\n\n"  # 17
        "**Deadline: 12 January.\n\n"  # 19
        "<!-- draft note\n\n"  # 21
        "Regards.\n",
    )
    done = run_cli(["check", slug], env=CHECK_ENV)
    assert done.returncode == 1
    assert "NOT READY" in done.stdout
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    expected = {
        9: "a web address cannot hold spaces: write each as %20, or put it in <…>",
        11: "remove the space between ] and (",
        13: "([text][name] needs a line '[name]: https://…')",
        15: "close the ( … ) after the address",
        17: "would be sent as typed",
        21: "a comment '<!--' is never closed, so what follows shows as text",
    }
    for line, words in expected.items():
        assert any(
            e.startswith(f"error: issues/probe.md:{line}: ") and words in e for e in errors
        ), (line, errors)
    assert (
        "warning: issues/probe.md:19: '**' without its pair is shown as typed — close the "
        "bold text with '**', or delete the '**'"
    ) in done.stdout
    # What a chair means by the same words is READY, and a code span may show markup.
    slug = write_issue(
        project,
        "## Reports\n\n"
        "Read [the land report](<https://www.wmhtc.co.uk/land report.pdf>) now, and "
        "[the statistics][ons]. Type `[text](https://…)` for a link, **in bold**.\n\n"
        "Two studies agree [1][2], as numbered references typed as text.\n\n"
        "[ons]: https://www.ons.gov.uk/stats\n",
    )
    done = run_cli(["check", slug], env=CHECK_ENV)
    assert done.returncode == 0, done.stdout
    assert "READY to send to 6 member(s): 0 errors, 0 warnings." in done.stdout


def test_prose_indented_like_in_a_word_processor_is_warned_as_code(project: Path) -> None:
    """A paragraph indented with a tab (or 4 spaces) is a Markdown code block: every member
    saw it in a typewriter font, and check said nothing."""
    slug = write_issue(
        project,
        "## Skills\n\nFirst paragraph.\n\n\tSecond paragraph, indented as in Word.\n\n"
        "```\nnewsletter send --test\n```\n",
    )
    done = run_cli(["check", slug], env=CHECK_ENV)
    assert (
        "warning: issues/probe.md:11: this text is indented by 4 spaces or a tab, so it shows "
        "as code, in a typewriter font — remove the indentation; for code on purpose, put ``` "
        "lines around it"
    ) in done.stdout
    assert done.stdout.count("typewriter") == 1  # the fenced block is meant
