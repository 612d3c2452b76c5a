"""One issue going to one member list: everything ``send`` needs, prepared and checked once.

``prepare`` loads the issue, renders it once, validates the identity settings and checks
that every member field a template uses exists in the CSV, all before the first message is
built. ``dry_run`` writes every message a real send would deliver to disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..common.config import Settings
from ..common.errors import TemplateError
from ..common.outdir import staged
from ..content import images
from ..content.frontmatter import KeyProblem
from ..content.issue import load_issue
from ..content.linktags import link_tagger, view_online_url
from ..content.model import Issue
from ..content.organisation import Organisation, load_organisation
from ..content.published import HeadFunction, Offline, http_head, not_online
from ..content.render import RenderedIssue, render_issue
from ..members.recipients import Recipient, RecipientReport, iter_recipients, read_columns
from ..members.suppression import load_suppressed
from .message import MessageBuilder, Sender, make_sender

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
    recipients_given: bool = False  # the list was named (-r), not the setting's or the example
    # Read for `check` (prepare(lenient=True)): the front matter's problems, all of them,
    # where a send stops at the first; and member fields the list has no column for.
    front_matter_problems: list[KeyProblem] = field(default_factory=list)
    missing_fields: list[MissingField] = field(default_factory=list)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC).astimezone()
    # Set by read_members_once(): the list as read then, so that the checks, the plan and
    # the delivery of one real send read the CSV once and all see the same members.
    _members: list[Recipient] | None = field(default=None, repr=False)
    _members_report: RecipientReport | None = field(default=None, repr=False)
    _content_hash: str | None = field(default=None, repr=False)

    def builder(self, subject_prefix: str = "") -> MessageBuilder:
        return MessageBuilder(
            self.rendered, self.sender, clock=self.clock, subject_prefix=subject_prefix
        )

    def recipients(self, report: RecipientReport) -> Iterator[Recipient]:
        if self._members is not None and self._members_report is not None:
            for name in RecipientReport.__dataclass_fields__:
                value = getattr(self._members_report, name)
                setattr(report, name, list(value) if isinstance(value, list) else value)
            return iter(self._members)
        return iter_recipients(self.recipients_path, suppressed=self.suppressed, report=report)

    def read_members_once(self) -> None:
        """Read the CSV now and keep it: later ``recipients()`` calls replay it. A real
        send's checks, plan and delivery then stream one read (an edit to the file while
        the chair is asked to confirm cannot change who gets it); memory grows with the
        list (~1 KB a member), which a dry run avoids by streaming."""
        report = RecipientReport()
        self._members = list(
            iter_recipients(self.recipients_path, suppressed=self.suppressed, report=report)
        )
        self._members_report = report

    def content_hash(self) -> str:
        """A hash of the rendered issue (subject, HTML, text; not per-member values), so a
        resumed send can tell that the issue changed after some members got it. Computed
        once: a send asks for it when it compares with the last run and when it records its own."""
        if self._content_hash is None:
            self._content_hash = _hash(self.rendered)
        return self._content_hash

    def message_bytes(self) -> int:
        """The size of one whole message (embedded pictures included), for summaries; the
        Gmail clip figure is ``rendered.html_bytes``, the HTML alone."""
        sample = Recipient(email="member@example.org", row=0, fields={})
        return len(self.builder().build(sample).data)

    def example_subject(self) -> tuple[str, Recipient] | None:
        """The first member's subject, for summaries of a subject with member fields (the
        template alone does not show what members will read); None without fields or
        members. Streams only the first row (a real send replays its one read)."""
        if not self.rendered.subject_filled.has_slots:
            return None
        members = self.recipients(RecipientReport())
        first = next(members, None)
        close = getattr(members, "close", None)
        if close is not None:
            close()  # ends the CSV stream now, not at garbage collection
        if first is None:
            return None
        values = self.rendered.slots.values(MessageBuilder.fields(first, ""))
        return self.rendered.subject_filled.fill(values), first

    def hosted_images(self) -> list[tuple[str, images.PreparedImage]]:
        """(URL, picture) of each local picture the email loads from the web archive."""
        pictures = self.rendered.pictures
        if self.settings.image_mode != "hosted" or pictures is None:
            return []
        base = image_placement(self.settings)["image_base"]
        return [(f"{base}{image.name}", image) for image in pictures.prepared]

    def offline_images(self, head: HeadFunction = http_head) -> list[Offline]:
        """Hosted pictures the archive's web server does not serve yet (HTTP HEAD each)."""
        return not_online(self.hosted_images(), head)


def image_placement(settings: Settings) -> dict[str, object]:
    """Where the email points at local pictures (render_issue's keywords)."""
    if settings.image_mode == "hosted":
        return {"image_base": f"{settings.archive_url.rstrip('/')}/{images.ASSETS}/"}
    return {"embed": True}


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
    lenient: bool = False,
) -> Campaign:
    """Load, render and check everything a send needs; raises NewsletterError subclasses.

    ``lenient`` (for `check`): front-matter problems and member fields the list lacks are
    kept in the campaign for the report instead of raised, so the rest is checked too."""
    problems: list[KeyProblem] | None = [] if lenient else None
    issue = load_issue(slug, settings.issues_dir, problems)
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
    rendered = _render(settings, issue, org, sender)
    path, notices = resolve_recipients(settings, recipients, allow_example=allow_example)
    missing = missing_fields(rendered, path)
    if not lenient:
        check_fields(missing)
    campaign = Campaign(
        settings=settings,
        issue=issue,
        org=org,
        sender=sender,
        rendered=rendered,
        recipients_path=path,
        suppressed=load_suppressed(settings.suppressed),
        notices=notices,
        recipients_given=recipients is not None,
        front_matter_problems=problems or [],
        missing_fields=missing,
    )
    if clock is not None:
        campaign.clock = clock
    if not sender.has_unsubscribe:
        campaign.notices.append(
            "no unsubscribe link configured (NEWSLETTER_UNSUBSCRIBE_URL or "
            "NEWSLETTER_UNSUBSCRIBE_MAILTO): a real send will refuse to start"
        )
    return campaign


def _render(settings: Settings, issue: Issue, org: Organisation, sender: Sender) -> RenderedIssue:
    return render_issue(
        issue,
        settings.templates_dir,
        has_unsubscribe=sender.has_unsubscribe,
        view_online_url=view_online_url(settings, issue.slug),
        link_tagger=link_tagger(settings, issue.slug),
        org=org,
        # Once per issue, not per member: every message shares the prepared pictures.
        pictures=images.resolve(issue, org, settings.templates_dir),
        **image_placement(settings),
    )


def _hash(rendered: RenderedIssue) -> str:
    digest = hashlib.sha256()
    for filled in (rendered.subject_filled, rendered.html_filled, rendered.text_filled):
        for literal in filled.literals:
            digest.update(literal.encode("utf-8") + b"\0")
        digest.update(repr(filled.slot_ids).encode("ascii") + b"\1")
    return digest.hexdigest()[:32]


def sent_before_as(campaign: Campaign, runs: dict[str, str]) -> str | None:
    """The slug under which this very issue was already sent, when its file was renamed
    since (``runs``: the journal's last real-send hash by slug). Members are recorded by
    slug, so under its new name a send would mail every one of them a second copy.

    The issue is rendered again under each such slug that no issue file has any more
    (the slug is in the "View in your browser" link and the UTM tags): an unchanged issue
    then hashes as it did when it was sent."""
    from dataclasses import replace

    for slug, sent_hash in sorted(runs.items()):
        if slug == campaign.issue.slug or (campaign.settings.issues_dir / f"{slug}.md").exists():
            continue  # itself, or still an issue of its own
        old = replace(campaign.issue, slug=slug)
        if _hash(_render(campaign.settings, old, campaign.org, campaign.sender)) == sent_hash:
            return slug
    return None


@dataclass(frozen=True)
class MissingField:
    """A member field (``recipient.<field>``) the issue or a template uses that is not a
    column of the list. With a ``fallback`` every member reads the fallback (a warning);
    without one, a gap (an error: ``error`` says where and what to do)."""

    field: str
    fallback: str
    error: TemplateError


def missing_fields(rendered: RenderedIssue, recipients_path: Path) -> list[MissingField]:
    """Every ``recipient.<field>`` a template or the issue uses that the CSV lacks."""
    import difflib

    from ..content.slots import BUILT_IN_FIELDS

    columns = set(read_columns(recipients_path))
    missing = []
    for use in rendered.slots.unknown_fields(columns):
        # A field the chair typed in the issue is reported at its line there, not at the
        # template line that rendered the paragraph holding it.
        typed = _issue_line(rendered.issue.source, use.field)
        known = sorted(columns | BUILT_IN_FIELDS - {"unsubscribe_url"})
        close = difflib.get_close_matches(use.field, known, n=1, cutoff=0.7)
        shown = ", ".join(sorted(columns)[:15]) + (", …" if len(columns) > 15 else "")
        error = TemplateError(
            f"recipient.{use.field} is not a column of {recipients_path}",
            path=rendered.issue.path if typed else use.template or rendered.issue.path,
            line=typed or use.line,
            hint=(f"did you mean {close[0]!r}? " if close else "") + f"columns: {shown}",
        )
        missing.append(MissingField(use.field, use.fallback, error))
    return missing


def check_fields(missing: list[MissingField]) -> None:
    """Raise for the first member field without a fallback that the list lacks (a gap in
    every member's message); one with a fallback is `check`'s warning, not a refusal."""
    for field_ in missing:
        if not field_.fallback:
            raise field_.error


def _issue_line(source: str, name: str) -> int | None:
    """The first line of the issue file that uses ``recipient.<name>``."""
    pattern = re.compile(rf"recipient\.{re.escape(name)}\b")
    for number, line in enumerate(source.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


# ---- dry run -------------------------------------------------------------------------------


@dataclass
class DryRunResult:
    out_dir: Path
    written: int
    report: RecipientReport
    total_bytes: int
    largest_bytes: int
    html_bytes: int
    images_bytes: int = 0  # embedded pictures in each message (already in the sizes above)
    offline: list[Offline] = field(default_factory=list)  # hosted pictures not online yet
    # Per the journal (a real send of this issue ran before): of the members written, those
    # who already have it, and those a real send leaves out unless asked (failed before, or
    # cut off mid-send). None: no journal, nobody has it yet.
    already_sent: int | None = None
    held: int = 0

    @property
    def would_send(self) -> int:
        """How many a real send would mail now (before --limit and the daily cap)."""
        return self.written - (self.already_sent or 0) - self.held


def eml_name(number: int, address: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9@._+-]+", "_", address)[:80]
    return f"{number:05d}-{safe}.eml"


def dry_run(
    campaign: Campaign,
    out_dir: Path,
    *,
    head: HeadFunction | None = http_head,
    journal: tuple[set[str], set[str]] | None = None,
) -> DryRunResult:
    """Write one .eml per member a real send would mail; replaces ``out_dir``'s contents.

    Every member's message is written (the preview of the whole mailing), whoever already
    has it; ``journal``: (members who have it, members failed or cut off before) as
    casefolded addresses, for the summary to count what a real send would mail now.

    Messages go to a sibling ``.partial`` folder first and replace ``out_dir`` only when all
    were written, so a failed run never leaves a half-written outbox looking complete.
    With hosted pictures, ``head`` checks which are not online yet (None: not checked).
    """
    if campaign.rendered.pictures is not None:
        campaign.rendered.pictures.require()
    report = RecipientReport()
    builder = campaign.builder()
    written = total = largest = sent = held = 0
    with staged(out_dir) as folder:
        for recipient in campaign.recipients(report):
            message = builder.build(recipient)
            written += 1
            if journal is not None:
                key = recipient.email.strip().casefold()  # the journal's address_key
                sent += key in journal[0]
                held += key in journal[1] and key not in journal[0]
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
        images_bytes=sum(len(image.data) for _, image in campaign.rendered.inline_images),
        offline=campaign.offline_images(head) if head is not None else [],
        already_sent=sent if journal is not None else None,
        held=held,
    )
