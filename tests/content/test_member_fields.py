"""Member fields ({{ recipient.… }}) in the issue: a misspelt or unknown one named at the
issue's line, fallbacks filled per member, a fallback's '|' inside a table cell, the subject
measured as members read it, and the gap a field without fallback leaves on the web page."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import dry_run_in_process, run_check, said, text_and_html, write_issue

from newsletter.common.config import Settings
from newsletter.common.errors import TemplateError
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity

# ---- a misspelt member field is reported where the chair typed it ------------------------


def test_misspelt_member_field_in_the_body_names_the_issue_line(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(project, "## Hello\n\nWelcome, {{ recipient.frist_name }}!\n")
    with pytest.raises(TemplateError) as caught:
        campaign_mod.prepare(ready, slug)
    error = caught.value
    assert (error.path, error.line) == (project / "issues" / "probe.md", 9)
    assert "recipient.frist_name is not a column of" in error.message
    assert error.hint.startswith("did you mean 'first_name'?")


def test_unknown_member_field_in_the_subject_names_the_subject_line(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(project, "## Hello\n\nText.\n", subject="{{ recipient.company }} news")
    with pytest.raises(TemplateError) as caught:
        campaign_mod.prepare(ready, slug)
    assert (caught.value.path, caught.value.line) == (project / "issues" / "probe.md", 3)


def test_subject_length_is_measured_as_members_read_it(project: Path, ready: Settings) -> None:
    # As typed, 74 characters; as Priya reads it, 41: no warning.
    subject = '{{ recipient.first_name or "Member" }}, your January news from the cluster'
    slug = write_issue(project, "## Hello\n\nText.\n", subject=subject)
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert not [w for w in said(report, Severity.WARNING) if "subject is" in w]
    # A long organisation name makes some members' subjects too long: the longest is named.
    subject = "January: {{ recipient.organisation }} in the cluster's news this month"
    slug = write_issue(project, "## Hello\n\nText.\n", subject=subject)
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert [w for w in said(report, Severity.WARNING) if "subject is" in w] == [
        f"{project / 'issues' / 'probe.md'}:3: subject is up to 71 characters as members "
        "read it (row 4); inboxes cut it at about 60"
    ]


# ---- a fallback written with | inside a table cell ------------------------------------------


def test_default_filter_in_a_table_cell_is_one_cell(project: Path, ready: Settings) -> None:
    # The README's `| default("member")` has a pipe: in a table row it must not split the cell.
    slug = write_issue(
        project,
        "## Your membership\n\n"
        "| Member | Organisation |\n"
        "|---|---|\n"
        '| {{ recipient.first_name | default("member") }} | {{ recipient.organisation }} |\n\n'
        "Code stays as typed: `{{ a | b }}`.\n",
    )
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert report.errors == []
    camp = campaign_mod.prepare(ready, slug)
    result = campaign_mod.dry_run(camp, ready.outbox / slug)
    import email
    import email.policy

    priya, _, _, info, *_ = (
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(result.out_dir.glob("*.eml"))
    )
    text = info.get_body(("plain",)).get_content()
    html = priya.get_body(("html",)).get_content()
    assert "{{ recipient" not in text and "default(" not in text
    assert "member" in text and "Pennine Diagnostics, Leeds" in text
    assert "`{{ a | b }}`" not in text and "{{ a | b }}" in text
    assert ">Priya</td>" in html.replace("\n", "") or "Priya</td>" in html


def test_a_field_without_fallback_warns_that_the_web_archive_shows_a_gap(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(
        project, "## Hello\n\nWe hope everyone at {{ recipient.organisation }} is well.\n"
    )
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert (
        f"{project / 'issues' / 'probe.md'}:9: '{{{{ recipient.organisation }}}}' has no fallback: "
        "the web archive page shows nothing there"
    ) in said(report, Severity.WARNING)
    # With a fallback, or kept out of the archive, nothing to say.
    body = (
        '## Hello\n\nWe hope everyone at {{ recipient.organisation or "your company" }} is well.\n'
    )
    slug = write_issue(project, body)
    assert not [
        w
        for w in said(run_checks(campaign_mod.prepare(ready, slug)), Severity.WARNING)
        if "web archive" in w
    ]


def test_template_syntax_in_the_body_is_an_error_naming_the_line(
    project: Path, ready: Settings
) -> None:
    slug = write_issue(
        project,
        "Hello {{ recipient.first_name or 'member' }}.\n\n"
        "This is {{ issue.title }} for you.\n\n"
        "{% if recipient.organisation %}Hi{% endif %}\n\n"
        "## News for {{ recipient.organisation }}\n",
    )
    path = project / "issues" / "probe.md"
    assert said(run_check(ready, slug), Severity.ERROR) == [
        f"{path}:9: template syntax '{{{{ issue.title }}}}' would be sent as typed",
        f"{path}:11: template syntax '{{% if recipient.organisation %}}' would be sent as typed",
        f"{path}:13: member field '{{{{ recipient.organisation }}}}' cannot be filled in a "
        "heading, button or image text",
    ]


# ---- personalisation --------------------------------------------------------------------------


def test_member_fields_with_fallbacks_in_body_and_subject(project: Path, ready: Settings) -> None:
    slug = write_issue(
        project,
        'Dear {{ recipient.first_name or "member" }}, of '
        "{{ recipient.organisation | default('your organisation') }}.\n\n"
        "## News\n\n"
        "Your **{{ recipient.organisation }}** news.\n",
        subject='{{ recipient.first_name or "Member" }}, your January news',
    )
    members = project / "members.csv"
    members.write_text(
        "email,first_name,organisation\nann@wmhtc.co.uk,Ann,Acme & Sons <Ltd>\nbob@wmhtc.co.uk,,\n",
        encoding="utf-8",
    )
    _, (ann, bob) = dry_run_in_process(ready, slug, members)
    assert ann["Subject"] == "Ann, your January news"
    assert bob["Subject"] == "Member, your January news"
    ann_text, ann_html = text_and_html(ann)
    bob_text, bob_html = text_and_html(bob)
    assert "Dear Ann, of Acme & Sons <Ltd>." in ann_text
    assert "Dear Ann, of Acme &amp; Sons &lt;Ltd&gt;." in ann_html
    assert "Your *Acme & Sons <Ltd>* news." in ann_text
    assert "Dear member, of your organisation." in bob_text
    assert "Dear member, of your organisation." in bob_html
    assert "{{" not in ann_text + ann_html + bob_text + bob_html
    # The field used without a fallback is a warning for the members who have it empty.
    report = run_check(ready, slug, members)
    assert said(report, Severity.WARNING) == [
        f"{project / 'issues' / 'probe.md'}:11: '{{{{ recipient.organisation }}}}' has no "
        "fallback: the web archive page shows nothing there",
        f"{members}: organisation is empty for 1 member (row 3): add a fallback",
    ]
    assert report.errors == []


def test_full_name_only_greets_with_the_name_as_written(project: Path, ready: Settings) -> None:
    members = project / "members.csv"
    members.write_text("Email,Name\nann@wmhtc.co.uk,Dr. Ann Lee\n", encoding="utf-8")
    _, (message,) = dry_run_in_process(ready, "december-2023", members)
    text, html = text_and_html(message)
    assert "Dear Dr. Ann Lee," in text and "Dear Dr. Ann Lee," in html
    assert "Dr.," not in text
