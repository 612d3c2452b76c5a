"""Who the preview is personalised as: the first member, a member chosen with --as (pasted
with their name too), or nobody known, said on the page."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.helpers import run_cli, write_issue

from newsletter.common.config import Settings


def test_preview_says_who_it_is_personalised_as(project: Path, ready: Settings) -> None:
    from newsletter.web.preview import preview_member
    from newsletter.web.server import Preview, page

    write_issue(project, "## Hello\n\nText.\n", subject='{{ recipient.first_name or "Member" }}!')
    path = project / "issues" / "probe.md"
    first = Preview(ready, path, print, preview_member(ready)).current()
    assert '<dt>To</dt><dd class="to">Priya Shah &lt;priya.shah@nghealth.uk&gt;</dd>' in page(first)
    nobody = preview_member(replace(ready, recipients=project / "none.csv"))
    anonymous = Preview(ready, path, print, nobody).current()
    assert (
        '<dd class="to">a member with no known name (no readable members&#x27; list: '
        "NEWSLETTER_RECIPIENTS)</dd>"
    ) in page(anonymous)


def test_preview_is_personalised_as_the_first_member_or_as(project: Path, ready: Settings) -> None:
    from newsletter.common.errors import RecipientsError
    from newsletter.web.preview import preview_member, write_email_html
    from newsletter.web.server import Preview, page

    slug = write_issue(
        project,
        "News for {{ recipient.organisation | default('your organisation') }}.\n",
        subject='{{ recipient.first_name or "Member" }}, your January news',
    )
    path = project / "issues" / "probe.md"
    first = Preview(ready, path, print, preview_member(ready)).current()
    assert first.subject == "Priya, your January news"
    assert "Dear Priya," in first.html and "News for Northgate Digital Health." in first.text
    assert '<dd class="subject">Priya, your January news</dd>' in page(first)
    chosen = Preview(ready, path, print, preview_member(ready, "INFO@mmedtech.uk")).current()
    assert chosen.subject == "Member, your January news"
    assert "Dear member," in chosen.text and "News for Pennine Diagnostics, Leeds." in chosen.text
    out, _ = write_email_html(ready, slug, project / "p.html", as_address="zoe.brennan@mmedtech.uk")
    assert "Dear Zoë," in out.read_text("utf-8")
    with pytest.raises(RecipientsError, match="nobody@example.org is not a member in the list"):
        preview_member(ready, "nobody@example.org")
    # No list yet: the anonymous sample, as before.
    assert preview_member(replace(ready, recipients=project / "none.csv")) is None


def test_as_takes_a_member_pasted_with_their_name(project: Path) -> None:
    # --as for `preview` and `send --test` refused "Zoë Brennan <zoe@…>" as "not a member"
    # although it names one, while --to, unsubscribe and the list all read that form.
    member = "Zoë Brennan <zoe.brennan@mmedtech.uk>"
    assert "zoe.brennan@mmedtech.uk" in (project / "recipients.csv").read_text("utf-8")
    result = run_cli(["preview", "december-2023", "--as", member, "--out", "p.html"])
    assert result.returncode == 0, result.stderr
    assert "Dear Zoë," in (project / "p.html").read_text("utf-8")
