"""Pre-flight checks: catch what members should never see, before anything is sent.

Each finding has a check id, a severity, a location (file:line or CSV row), what is wrong
and how to fix it (:mod:`.findings`). ``newsletter check`` prints them; ``newsletter send``
runs the same checks and refuses to start on an error unless ``--force``.

The checks, by what they look at: :mod:`.settings` (placeholders, a weak secret, what a
send needs to start), :mod:`.issue` (front matter, member fields, draft, a renamed file,
skeleton text), :mod:`.copies` (a copy of an issue already sent), :mod:`.markup` (what
members would see as typed), :mod:`.links` (links and alt text), :mod:`.pictures`
(colours, logo, pictures), :mod:`.rendered` (size, unsubscribe and identity in the
footer), :mod:`.members` (the list). :func:`run_checks` runs them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...content.published import HeadFunction
from ...content.published import http_head as http_head_default
from ..campaign import Campaign
from .copies import check_sent_before
from .findings import Check, Finding, Report, Severity
from .issue import (
    check_draft,
    check_front_matter,
    check_member_fields,
    check_renamed,
    check_skeleton,
)
from .links import check_content
from .markup import check_literal_markdown, check_source
from .members import check_members
from .pictures import check_colours, check_images, check_logo
from .rendered import check_compliance, check_size
from .settings import check_send_settings, check_sender, check_settings, check_setup

if TYPE_CHECKING:
    from ...domain.findings import Finding as SetupFinding


def run_checks(
    campaign: Campaign,
    *,
    smtp_username: str = "",
    http_head: HeadFunction | None = None,
    sign_in_missing: str = "",
    sign_in_fix: str = "",
    skip_invalid: bool = False,
    resend_of: str = "",
    setup: Sequence[SetupFinding] = (),
) -> Report:
    """All checks over one prepared campaign (issue rendered, recipients readable).

    ``http_head`` checks hosted pictures are online (default: a real HTTP HEAD each).
    ``sign_in_missing``: why the OAuth sign-in a send needs is not there ("" when it is;
    the caller asks `oauth.sign_in_problem`, which also gives ``sign_in_fix``).
    ``skip_invalid``: invalid member rows are a warning, as ``send --skip-invalid`` takes them.
    ``resend_of``: the slug ``send --resend-of`` names, whose copy is sent again as asked.
    ``setup``: the set-up and sending-domain findings (newsletter.domain), added as they are."""
    report = Report()
    check_settings(campaign, report)
    check_send_settings(campaign, report)
    check_front_matter(campaign, report)
    check_member_fields(campaign, report)
    check_draft(campaign, report)
    renamed = check_renamed(campaign, report, resend_of)
    check_sent_before(campaign, report, resend_of, renamed)
    check_skeleton(campaign, report)
    check_source(campaign, report)
    check_content(campaign, report)
    check_literal_markdown(campaign, report)
    check_colours(campaign, report)
    check_logo(campaign, report)
    check_images(campaign, report, http_head or http_head_default)
    check_size(campaign, report)
    check_compliance(campaign, report)
    check_sender(campaign, report, smtp_username)
    # Settings the sign-in needs that are missing are said already, as settings.
    if sign_in_missing and not any(f.check is Check.SETTINGS_MISSING for f in report.findings):
        report.add(
            Check.SIGN_IN,
            Severity.ERROR,
            "NEWSLETTER_SMTP_AUTH",
            sign_in_missing,
            sign_in_fix or "run 'newsletter login' and sign in with the sending mailbox",
        )
    check_members(campaign, report)
    check_setup(report, setup)
    if skip_invalid:
        # As the send with --skip-invalid: the invalid rows are left out, not a refusal.
        report.findings = [
            dataclasses.replace(f, severity=Severity.WARNING, fix="left out (--skip-invalid)")
            if f.check is Check.INVALID_ROWS
            else f
            for f in report.findings
        ]
    return report


def issue_refusals(campaign: Campaign) -> list[Finding]:
    """The errors in the issue itself that a real send would refuse (a draft, skeleton
    text, a copy of a sent issue, template syntax members would see, ...): for the dry run
    and the test copy, which go ahead regardless and say so. Only the quick checks that
    need neither the network nor the whole members list (`check` runs them all); the copy
    check reads the list only for an issue that is a copy, to count who already got it."""
    report = Report()
    check_front_matter(campaign, report)
    check_member_fields(campaign, report)
    check_draft(campaign, report)
    check_sent_before(campaign, report, renamed=check_renamed(campaign, report))
    check_skeleton(campaign, report)
    check_source(campaign, report)
    check_content(campaign, report)
    check_literal_markdown(campaign, report)
    return report.errors
