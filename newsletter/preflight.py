"""Pre-flight checks: catch what members should never see, before anything is sent.

Each finding has a severity, a location (file:line or CSV row), what is wrong and how to fix
it. ``newsletter check`` prints them; ``newsletter send`` runs the same checks and refuses to
start on an error unless ``--force``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import model
from .campaign import Campaign
from .issue import key_line
from .limits import GMAIL_CLIP_BYTES, GMAIL_CLIP_KB, HTML_WARN_BYTES, SUBJECT_MAX
from .recipients import RecipientReport

ERROR, WARNING, INFO = "error", "warning", "info"
VAGUE_LINK_TEXT = {
    "here",
    "click here",
    "this",
    "link",
    "this link",
    "read more",
    "more",
    "click",
    "click this",
    "go",
    "website",
    "this page",
    "here.",
    "more info",
    "learn more",
}
PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net")


@dataclass(frozen=True)
class Finding:
    severity: str
    where: str
    message: str
    fix: str = ""
    code: str = ""  # stable name for findings a flag may waive (e.g. --skip-invalid)

    def line(self) -> str:
        fix = f" — {self.fix}" if self.fix else ""
        return f"{self.severity}: {self.where}: {self.message}{fix}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    members: int = 0
    recipients: RecipientReport | None = None

    def add(self, severity: str, where: str, message: str, fix: str = "", code: str = "") -> None:
        self.findings.append(Finding(severity, where, message, fix, code))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def verdict(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        if errors:
            return f"NOT READY: {counts}. Fix the errors before sending."
        return f"READY to send to {self.members} member(s): {counts}."


def run_checks(campaign: Campaign, *, smtp_username: str = "") -> Report:
    """All checks over one prepared campaign (issue rendered, recipients readable)."""
    report = Report()
    _check_front_matter(campaign, report)
    _check_content(campaign, report)
    _check_size(campaign, report)
    _check_compliance(campaign, report)
    _check_sender(campaign, report, smtp_username)
    _check_members(campaign, report)
    return report


# ---- the issue ------------------------------------------------------------------------------


def _where(campaign: Campaign, line: int) -> str:
    return f"{campaign.issue.path}:{line}" if line else str(campaign.issue.path)


def _check_front_matter(campaign: Campaign, report: Report) -> None:
    issue = campaign.issue
    if len(issue.subject) > SUBJECT_MAX:
        report.add(
            WARNING,
            _where(campaign, key_line(campaign.issue.source, "subject")),
            f"subject is {len(issue.subject)} characters; inboxes cut it at about {SUBJECT_MAX}",
            "put the words that matter first, or shorten it",
        )
    if len(issue.preheader) < 30:
        report.add(
            WARNING,
            _where(campaign, key_line(campaign.issue.source, "preheader")),
            "preheader is very short; inboxes fill the rest with the first words of the body",
            "write a sentence (40–100 characters) that adds to the subject",
        )
    if issue.preheader.strip().lower() == issue.subject.strip().lower():
        report.add(
            WARNING,
            _where(campaign, key_line(campaign.issue.source, "preheader")),
            "preheader repeats the subject",
            "use it to say what else is inside",
        )
    from .issue import OPTIONAL_KEYS, REQUIRED_KEYS

    for key in issue.front_matter:
        if key not in REQUIRED_KEYS and key not in OPTIONAL_KEYS:
            report.add(
                WARNING,
                _where(campaign, key_line(campaign.issue.source, key)),
                f"unknown front-matter key {key!r} is ignored",
                f"known keys: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}",
            )


def _links(blocks: list[model.Block]) -> Iterator[tuple[int, model.Link, tuple[model.Inline, ...]]]:
    """Every link with its block's line and the inline run (sentence) around it."""

    def walk(nodes: tuple[model.Inline, ...], line: int, context: tuple[model.Inline, ...]):
        for node in nodes:
            if isinstance(node, model.Link):
                yield line, node, context
            elif isinstance(node, model.Emphasis):
                yield from walk(node.children, line, context)

    for block in blocks:
        if isinstance(block, model.Paragraph):
            yield from walk(block.content, block.line, block.content)
        elif isinstance(block, model.BulletList):
            lists = [block]
            while lists:
                current = lists.pop()
                for index, item in enumerate(current.items):
                    yield from walk(item, block.line, item)
                    if current.sublist(index):
                        lists.append(current.sublist(index))
        elif isinstance(block, model.Quote):
            for para in block.paragraphs:
                yield from walk(para, block.line, para)
        elif isinstance(block, model.Facts):
            for fact in block.facts:
                yield from walk(fact.value, block.line, fact.value)
        elif isinstance(block, model.Button):
            yield block.line, model.Link(block.href, (model.Text(block.text),)), ()


def _source_line(campaign: Campaign, start: int, needle: str) -> int:
    """The line at or after ``start`` that holds ``needle`` (a block spans several lines)."""
    lines = campaign.issue.source.splitlines()
    for number in range(max(start, 1), len(lines) + 1):
        if needle in lines[number - 1]:
            return number
    return start


def _sentence(context: tuple[model.Inline, ...], label: str) -> str:
    text = " ".join(model.plain(context).split())
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if label in sentence:
            return sentence if len(sentence) <= 120 else sentence[:117] + "…"
    return text[:120]


def _check_content(campaign: Campaign, report: Report) -> None:
    blocks = list(campaign.issue.all_blocks())
    for block in blocks:
        if isinstance(block, model.Image):
            where = _where(campaign, block.line)
            if not block.alt.strip():
                report.add(
                    WARNING,
                    where,
                    f"image {block.src} has no alt text",
                    "describe it: ![what the picture shows](…); many clients block images",
                )
            if not block.src.lower().startswith("https://"):
                report.add(
                    WARNING,
                    where,
                    f"image {block.src} is not an https URL",
                    "host it on a website and use its https:// address",
                )
    for line, link, context in _links(blocks):
        label = " ".join(model.plain(link.children).split())
        href = link.href.strip()
        where = _where(campaign, _source_line(campaign, line, f"]({href}" if href else "]("))
        said = f'"{label}"'
        context_note = f' (in: "{_sentence(context, label)}")' if context else ""
        host = (urlsplit(href).hostname or "").lower() if "://" in href else ""
        if not href or href == "#":
            report.add(
                WARNING, where, f"link {said} has no target" + context_note, "add the URL in (…)"
            )
        elif "todo" in href.lower() or "tbc" in href.lower() or host.endswith(PLACEHOLDER_HOSTS):
            report.add(
                WARNING,
                where,
                f"link {said} points at a placeholder: {href}" + context_note,
                "replace it with the real address",
            )
        elif href.lower().startswith("http://"):
            report.add(
                WARNING,
                where,
                f"link {said} uses http://" + context_note,
                "use https:// if the site has it",
            )
        elif not href.lower().startswith(("https://", "mailto:", "tel:", "#")):
            report.add(
                WARNING,
                where,
                f"link {said} has an unusual target: {href}" + context_note,
                "links in email must be absolute (https://…)",
            )
        if not label:
            report.add(
                WARNING,
                where,
                f"link to {href or '(nothing)'} has no text" + context_note,
                "write the words to click between the [ ]",
            )
        elif label.lower().strip(" .!") in VAGUE_LINK_TEXT:
            report.add(
                WARNING,
                where,
                f"link text {said} does not say where it goes" + context_note,
                "make the link text describe the target, e.g. 'register on the Innovate UK site'",
            )


def _check_size(campaign: Campaign, report: Report) -> None:
    size = campaign.rendered.html_bytes
    where = str(campaign.issue.path)
    if size > GMAIL_CLIP_BYTES:
        report.add(
            ERROR,
            where,
            f"the HTML is {size / 1024:.0f} KB; Gmail clips messages above {GMAIL_CLIP_KB} KB",
            "shorten the issue or move long pieces to the website",
        )
    elif size > HTML_WARN_BYTES:
        report.add(
            WARNING,
            where,
            f"the HTML is {size / 1024:.0f} KB, close to Gmail's {GMAIL_CLIP_KB} KB clip",
            "consider shortening the issue",
        )


def _check_compliance(campaign: Campaign, report: Report) -> None:
    rendered, org = campaign.rendered, campaign.org
    if not campaign.sender.has_unsubscribe:
        report.add(
            ERROR,
            "NEWSLETTER_UNSUBSCRIBE_URL",
            "no unsubscribe link is configured",
            "set NEWSLETTER_UNSUBSCRIBE_URL (and NEWSLETTER_SECRET) "
            "or NEWSLETTER_UNSUBSCRIBE_MAILTO",
        )
    else:
        probe = "probe@example.invalid"
        target, header = campaign.sender.unsubscribe_target(probe)
        _, html, text = rendered.personalise({"email": probe, "unsubscribe_url": target})
        if target.replace("&", "&amp;") not in html or target not in text or not header:
            report.add(
                ERROR,
                str(campaign.settings.templates_dir),
                "the unsubscribe link is missing from the footer of the HTML or text part",
                "keep {{ unsubscribe_url }} in partials/footer.mjml.j2 and email.txt.j2",
            )
    _, html, text = rendered.sample()
    for label, value in (("organisation name", org.name), ("postal address", org.address)):
        if value not in text or _html_text(value) not in html:
            report.add(
                ERROR,
                str(campaign.settings.templates_dir / "organisation.toml"),
                f"the {label} is missing from the footer",
                "UK PECR / GDPR expect the sender's identity and address in every bulletin",
            )


def _html_text(value: str) -> str:
    import html

    return html.escape(value, quote=False)


def _check_sender(campaign: Campaign, report: Report, smtp_username: str) -> None:
    from_domain = campaign.sender.domain
    if smtp_username and "@" in smtp_username:
        account_domain = smtp_username.rpartition("@")[2].lower()
        if account_domain != from_domain:
            report.add(
                WARNING,
                "NEWSLETTER_FROM",
                f"From is on {from_domain} but the SMTP account is on {account_domain}",
                "SPF/DKIM alignment may fail (spam folder): send from the account's domain "
                "or authorise the server for yours",
            )


def _check_members(campaign: Campaign, report: Report) -> None:
    recipients = RecipientReport()
    builder = campaign.builder()
    used = {use.field for use in campaign.rendered.slots.uses}
    optional = {"first_name", "name", "unsubscribe_url", "email"}
    empty: dict[str, list[int]] = {}
    count = 0
    for recipient in campaign.recipients(recipients):
        # Build every member's message: a field or value problem shows here, not mid-send.
        builder.build(recipient)
        count += 1
        for name in used - optional:
            if not recipient.fields.get(name, "").strip():
                empty.setdefault(name, []).append(recipient.row)
    report.members = count
    report.recipients = recipients
    where = str(campaign.recipients_path)
    for name, rows in sorted(empty.items()):
        shown = ", ".join(map(str, rows[:10])) + (", …" if len(rows) > 10 else "")
        report.add(
            WARNING,
            where,
            f"{len(rows)} member(s) have no {name} (rows {shown})",
            "fill it in, or the template shows nothing there",
        )
    if recipients.invalid:
        rows = ", ".join(str(row) for row, _, _ in recipients.invalid[:10])
        report.add(
            ERROR,
            where,
            f"{len(recipients.invalid)} invalid address(es) (rows {rows})",
            "fix them, or send with --skip-invalid to leave them out",
            code="invalid-rows",
        )
    if recipients.duplicates:
        report.add(
            INFO,
            where,
            f"{len(recipients.duplicates)} duplicate address(es) will be sent once",
        )
    if recipients.suppressed:
        report.add(INFO, where, f"{len(recipients.suppressed)} suppressed member(s) skipped")
    if recipients.unsubscribed:
        report.add(INFO, where, f"{len(recipients.unsubscribed)} unsubscribed member(s) skipped")
    if count == 0:
        report.add(ERROR, where, "no members to send to", "check the CSV and the suppression list")
