"""One issue going to one member list: everything ``send`` needs, prepared and checked once.

``prepare`` loads the issue, renders it once, validates the identity settings and checks
that every member field a template uses exists in the CSV, all before the first message is
built. ``dry_run`` writes every message a real send would deliver to disk.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings
from .errors import TemplateError
from .issue import load_issue
from .linktags import link_tagger, view_online_url
from .message import MessageBuilder, Sender, make_sender
from .model import Issue
from .organisation import Organisation, load_organisation
from .outdir import staged
from .recipients import Recipient, RecipientReport, iter_recipients, read_columns
from .render import RenderedIssue, render_issue
from .suppression import load_suppressed

EXAMPLE_RECIPIENTS = Path("recipients.csv.example")


@dataclass
class Campaign:
    settings: Settings
    issue: Issue
    org: Organisation
    sender: Sender
    rendered: RenderedIssue
    recipients_path: Path
    suppressed: frozenset[str]
    notices: list[str] = field(default_factory=list)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC).astimezone()

    def builder(self, subject_prefix: str = "") -> MessageBuilder:
        return MessageBuilder(
            self.rendered, self.sender, clock=self.clock, subject_prefix=subject_prefix
        )

    def recipients(self, report: RecipientReport) -> Iterator[Recipient]:
        return iter_recipients(self.recipients_path, suppressed=self.suppressed, report=report)


def resolve_recipients(
    settings: Settings, path: Path | None, *, allow_example: bool
) -> tuple[Path, list[str]]:
    """The CSV to use; on a dry run with no list yet, the bundled example (with a notice)."""
    if path is not None:
        return path, []
    if not settings.recipients.exists() and allow_example and EXAMPLE_RECIPIENTS.is_file():
        return EXAMPLE_RECIPIENTS, [
            f"{settings.recipients} not found: using the example list {EXAMPLE_RECIPIENTS}"
        ]
    return settings.recipients, []


def prepare(
    settings: Settings,
    slug: str,
    *,
    recipients: Path | None = None,
    allow_example: bool = False,
    clock: Callable[[], dt.datetime] | None = None,
) -> Campaign:
    """Load, render and check everything a send needs; raises NewsletterError subclasses."""
    issue = load_issue(slug, settings.issues_dir)
    org = load_organisation(settings.templates_dir)
    sender = make_sender(
        from_=settings.from_,
        org_name=org.name,
        org_email=org.email,
        bulletin=org.bulletin,
        reply_to=settings.reply_to,
        list_id=settings.list_id,
        unsubscribe_url=settings.unsubscribe_url,
        unsubscribe_mailto=settings.unsubscribe_mailto,
        secret=settings.secret,
    )
    rendered = render_issue(
        issue,
        settings.templates_dir,
        has_unsubscribe=sender.has_unsubscribe,
        view_online_url=view_online_url(settings, issue.slug),
        link_tagger=link_tagger(settings, issue.slug),
        org=org,
    )
    path, notices = resolve_recipients(settings, recipients, allow_example=allow_example)
    check_fields(rendered, path)
    campaign = Campaign(
        settings=settings,
        issue=issue,
        org=org,
        sender=sender,
        rendered=rendered,
        recipients_path=path,
        suppressed=load_suppressed(settings.suppressed),
        notices=notices,
    )
    if clock is not None:
        campaign.clock = clock
    if not sender.has_unsubscribe:
        campaign.notices.append(
            "no unsubscribe link configured (NEWSLETTER_UNSUBSCRIBE_URL or "
            "NEWSLETTER_UNSUBSCRIBE_MAILTO): a real send will refuse to start"
        )
    return campaign


def check_fields(rendered: RenderedIssue, recipients_path: Path) -> None:
    """Every ``recipient.<field>`` a template uses must be a column of the CSV."""
    columns = set(read_columns(recipients_path))
    for use in rendered.slots.unknown_fields(columns):
        raise TemplateError(
            f"recipient.{use.field} is not a column of {recipients_path}",
            path=use.template or rendered.issue.path,
            line=use.line,
            hint=f"columns: {', '.join(sorted(columns))}",
        )


# ---- dry run -------------------------------------------------------------------------------


@dataclass
class DryRunResult:
    out_dir: Path
    written: int
    report: RecipientReport
    total_bytes: int
    largest_bytes: int
    html_bytes: int


def eml_name(number: int, address: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9@._+-]+", "_", address)[:80]
    return f"{number:05d}-{safe}.eml"


def dry_run(campaign: Campaign, out_dir: Path) -> DryRunResult:
    """Write one .eml per member a real send would mail; replaces ``out_dir``'s contents.

    Messages go to a sibling ``.partial`` folder first and replace ``out_dir`` only when all
    were written, so a failed run never leaves a half-written outbox looking complete.
    """
    report = RecipientReport()
    builder = campaign.builder()
    written = total = largest = 0
    with staged(out_dir) as folder:
        for recipient in campaign.recipients(report):
            message = builder.build(recipient)
            written += 1
            (folder / eml_name(written, recipient.email)).write_bytes(message.data)
            total += len(message.data)
            largest = max(largest, len(message.data))
    return DryRunResult(
        out_dir=out_dir,
        written=written,
        report=report,
        total_bytes=total,
        largest_bytes=largest,
        html_bytes=campaign.rendered.html_bytes,
    )
