"""Pre-flight checks: catch what members should never see, before anything is sent.

Each finding has a severity, a location (file:line or CSV row), what is wrong and how to fix
it. ``newsletter check`` prints them; ``newsletter send`` runs the same checks and refuses to
start on an error unless ``--force``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..common.limits import (
    EMBED_WARN_BYTES,
    GMAIL_CLIP_BYTES,
    GMAIL_CLIP_KB,
    HTML_WARN_BYTES,
    SUBJECT_MAX,
)
from ..content import model
from ..content.images import is_local, visible_colours
from ..content.issue import key_line
from ..content.published import PUBLISH_HINT, HeadFunction
from ..content.published import http_head as http_head_default
from ..members.recipients import RecipientReport, normalise_column
from .campaign import EXAMPLE_RECIPIENTS, Campaign

if TYPE_CHECKING:
    from ..domain.findings import Finding as DomainFinding

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
    already_sent: int = 0  # of ``members``, those the journal says already have the issue
    mails_now: int = 0  # of ``members``, those a send now would mail (when already_sent)

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
        ready = f"READY to send to {self.members} member(s): {counts}."
        if self.already_sent:  # as the dry run says after a send began
            have, left = self.already_sent, self.mails_now
            ready += f" {have} of them already have it: a send now mails {left}."
        return ready


def run_checks(
    campaign: Campaign,
    *,
    smtp_username: str = "",
    http_head: HeadFunction | None = None,
    sign_in_missing: str = "",
    sign_in_fix: str = "",
    skip_invalid: bool = False,
    setup: Sequence[DomainFinding] = (),
) -> Report:
    """All checks over one prepared campaign (issue rendered, recipients readable).

    ``setup``: the set-up and sending-domain findings (newsletter.domain), added as they are.

    ``http_head`` checks hosted pictures are online (default: a real HTTP HEAD each).
    ``sign_in_missing``: why the OAuth sign-in a send needs is not there ("" when it is;
    the caller asks `oauth.sign_in_problem`, which also gives ``sign_in_fix``).
    ``skip_invalid``: invalid member rows are a warning, as ``send --skip-invalid`` takes them."""
    report = Report()
    _check_settings(campaign, report)
    _check_front_matter(campaign, report)
    _check_draft(campaign, report)
    _check_renamed(campaign, report)
    _check_skeleton(campaign, report)
    _check_source(campaign, report)
    _check_content(campaign, report)
    _check_literal_markdown(campaign, report)
    _check_colours(campaign, report)
    _check_logo(campaign, report)
    _check_images(campaign, report, http_head or http_head_default)
    _check_size(campaign, report)
    _check_compliance(campaign, report)
    _check_sender(campaign, report, smtp_username)
    if sign_in_missing:
        report.add(
            ERROR,
            "NEWSLETTER_SMTP_AUTH",
            sign_in_missing,
            sign_in_fix or "run 'newsletter login' and sign in with the sending mailbox",
            code="sign-in",
        )
    _check_members(campaign, report)
    _add_setup(report, setup)
    if skip_invalid:
        # As the send with --skip-invalid: the invalid rows are left out, not a refusal.
        report.findings = [
            Finding(WARNING, f.where, f.message, "left out (--skip-invalid)", f.code)
            if f.code == "invalid-rows"
            else f
            for f in report.findings
        ]
    return report


def _add_setup(report: Report, findings: Sequence[DomainFinding]) -> None:
    """Set-up findings (``doctor``'s settings, smtp-auth, DNS) in this report's terms."""
    from ..domain.findings import Status

    for f in findings:
        if f.status in (Status.FAIL, Status.WARN):
            severity = ERROR if f.status == Status.FAIL else WARNING
            report.add(severity, f.where or str(f.check), f.message, f.fix, code=str(f.problem))


# ---- settings still as in .env.example --------------------------------------------------------

# The values .env.example ships with (a test keeps this in step with the file).
ENV_EXAMPLE_PLACEHOLDERS = {
    "from_": "Cluster News <news@example.org>",
    "test_to": "chair@example.org",
    "unsubscribe_url": "https://example.org/unsubscribe?token={token}",
    "unsubscribe_mailto": "unsubscribe@example.org",
    "secret": "change-me-to-a-long-random-string",
    "smtp_host": "smtp.example.org",
}
SECRET_MIN = 16
_DOTTED_PLACEHOLDERS = tuple("." + host for host in PLACEHOLDER_HOSTS)
_DOMAIN_SETTINGS = ("from_", "reply_to", "unsubscribe_url", "unsubscribe_mailto")


def _setting_domain(value: str) -> str:
    if "://" in value:
        return (urlsplit(value).hostname or "").lower()
    address = value.rpartition("<")[2].rstrip(">").strip() if "<" in value else value
    return address.rpartition("@")[2].lower().strip()


def placeholder_domain(value: str) -> str:
    """The placeholder domain (example.org/.com/.net, or a host under one) an address, URL
    or host name is on; "" when it is a real one. The rule ``check`` applies to settings."""
    domain = _setting_domain(value if "@" in value or "://" in value else f"@{value}")
    if domain in PLACEHOLDER_HOSTS or domain.endswith(_DOTTED_PLACEHOLDERS):
        return domain
    return ""


def _check_settings(campaign: Campaign, report: Report) -> None:
    """A setting left as the example ships it would send from, or unsubscribe members to,
    someone else's domain: an error, never READY."""
    from ..common.config import env_name

    settings = campaign.settings
    flagged: set[str] = set()
    for name, placeholder in ENV_EXAMPLE_PLACEHOLDERS.items():
        value = str(getattr(settings, name, "") or "")
        if value and value == placeholder:
            flagged.add(name)
            shown = "the secret" if name == "secret" else repr(value)
            report.add(
                ERROR,
                env_name(name),
                f"{shown} is still the placeholder from .env.example",
                "set your own value in .env",
                code="weak-secret" if name == "secret" else "placeholder-setting",
            )
    for name in _DOMAIN_SETTINGS:
        value = str(getattr(settings, name, "") or "")
        domain = _setting_domain(value)
        if name in flagged or not domain:
            continue
        if domain in PLACEHOLDER_HOSTS or domain.endswith(_DOTTED_PLACEHOLDERS):
            report.add(
                ERROR,
                env_name(name),
                f"{value!r} is on {domain}, a placeholder domain",
                "use your organisation's real address or web page",
                code="placeholder-setting",
            )
    secret = settings.secret
    if secret and "secret" not in flagged:
        if secret.lower().startswith(("change-me", "changeme")) or len(secret) < SECRET_MIN:
            problem = (
                "is a placeholder"
                if secret.lower().startswith(("change-me", "changeme"))
                else f"is only {len(secret)} characters (at least {SECRET_MIN} needed)"
            )
            report.add(
                ERROR,
                "NEWSLETTER_SECRET",
                f"the secret {problem}: unsubscribe links could be forged",
                'generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"',
                code="weak-secret",
            )


# ---- the issue ------------------------------------------------------------------------------


def _where(campaign: Campaign, line: int) -> str:
    return f"{campaign.issue.path}:{line}" if line else str(campaign.issue.path)


def _check_front_matter(campaign: Campaign, report: Report) -> None:
    issue = campaign.issue
    # With member fields the length depends on the member: measured in _check_members.
    if not campaign.rendered.subject_filled.has_slots and len(issue.subject) > SUBJECT_MAX:
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
    from ..content.issue import FIELD_RE

    # Member fields are filled in the preheader too; other template syntax is not.
    for key, value in (("title", issue.title), ("preheader", FIELD_RE.sub("", issue.preheader))):
        syntax = _TEMPLATE_SYNTAX.search(value)
        if syntax:
            # Only the subject, the preheader and the body are filled in per member: here
            # every member, and the archive, would read the braces as typed.
            report.add(
                ERROR,
                _where(campaign, key_line(campaign.issue.source, key)),
                f"{key} holds {syntax.group(0)!r}, which every member would see as typed: "
                "member fields are filled in the subject, the preheader and the body only",
                f"write the {key} without it",
                code="template-syntax",
            )
    if issue.preheader.strip().lower() == issue.subject.strip().lower():
        report.add(
            WARNING,
            _where(campaign, key_line(campaign.issue.source, "preheader")),
            "preheader repeats the subject",
            "use it to say what else is inside",
        )
    import difflib

    from ..content.issue import OPTIONAL_KEYS, REQUIRED_KEYS

    known = REQUIRED_KEYS + OPTIONAL_KEYS
    for key in issue.front_matter:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            report.add(
                WARNING,
                _where(campaign, key_line(campaign.issue.source, key)),
                f"unknown front-matter key {key!r} is ignored"
                + (f": did you mean {close[0]!r}?" if close else ""),
                f"known keys: {', '.join(known)}",
            )


def _check_draft(campaign: Campaign, report: Report) -> None:
    if campaign.issue.draft:
        report.add(
            ERROR,
            _where(campaign, key_line(campaign.issue.source, "draft")),
            "this issue is a draft (draft: true): it cannot be sent to members",
            "delete the 'draft: true' line when it is ready; previews and --test sends work "
            "meanwhile",
            code="draft",
        )


def _check_renamed(campaign: Campaign, report: Report) -> None:
    """An issue sent, then its file renamed (``january.md`` → ``january-2026.md``): the
    journal knows its members by the old slug, so a send under the new one would mail every
    one of them a second copy. Compared by the rendered issue's hash, never by name."""
    from ..records.journal import JOURNAL_NAME, Journal
    from .campaign import sent_before_as

    path = campaign.settings.state_dir / JOURNAL_NAME
    if not path.is_file():
        return
    with Journal.open(path) as journal:
        if any(journal.counts(campaign.issue.slug).values()):
            return  # sent (or begun) under this name: a resume, not a rename
        runs: dict[str, str] = {}
        counts: dict[str, int] = {}
        for summary in journal.issues_summary():
            last = journal.last_run(summary.slug)
            if last and summary.counts.get("sent"):
                runs[summary.slug], counts[summary.slug] = last[0], summary.counts["sent"]
    old = sent_before_as(campaign, runs)
    if old:
        report.add(
            ERROR,
            _where(campaign, 1),
            f"this issue was already sent to {counts[old]} member(s) as {old!r}; its file "
            "was renamed since, and under the new name every one of them would get it again",
            f"rename it back to {campaign.settings.issues_dir / (old + '.md')} "
            f"('newsletter status {old}' shows who got it)",
            code="renamed",
        )


def _body_lines(campaign: Campaign) -> Iterator[tuple[int, str]]:
    """(line number, text) of the issue's body, without comments and fenced code."""
    from ..content.issue import blank_comments

    source = campaign.issue.source
    lines = source.splitlines()
    fences = [n for n, line in enumerate(lines) if line.strip() == "---"][:2]
    start = fences[1] + 1 if len(fences) == 2 else 0
    body = blank_comments("\n".join(lines[start:])).split("\n")
    fenced = False
    for offset, line in enumerate(body):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            yield start + offset + 1, line


def _check_skeleton(campaign: Campaign, report: Report) -> None:
    """Text that ``newsletter new`` wrote and nobody changed must not reach members."""
    from ..content.skeleton import skeleton_text

    issue = campaign.issue
    skeleton = skeleton_text(campaign.settings.templates_dir, issue, campaign.org)
    if skeleton is None:
        return
    preheader, lines = skeleton
    if issue.preheader == preheader:
        report.add(
            ERROR,
            _where(campaign, key_line(issue.source, "preheader")),
            "the preheader is still the skeleton's placeholder",
            "write one sentence on what is inside this issue",
            code="skeleton",
        )
    for number, line in _body_lines(campaign):
        if line.strip() and line.strip() in lines:
            text = line.strip()
            shown = text if len(text) <= 70 else text[:67] + "…"
            report.add(
                ERROR,
                _where(campaign, number),
                f"skeleton text left in the issue: {shown!r}",
                "write your own text here, or delete the line",
                code="skeleton",
            )


_TEMPLATE_SYNTAX = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{\{|\{%")
# HTML tags shown as typed; <br> is not among them: the parser reads it as a line break.
_RAW_HTML = re.compile(r"</?(?![Bb][Rr]\s*/?>)[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]")
_STRIKE = re.compile(r"~~[^~]+~~")


def _check_source(campaign: Campaign, report: Report) -> None:
    """What the chair typed that the email would show literally: template syntax other than
    member fields (an error), raw HTML, footnotes, strikethrough (warnings)."""
    from ..content.issue import FIELD_RE

    for number, line in _body_lines(campaign):
        where = _where(campaign, number)
        field = FIELD_RE.search(line)
        if field and (line.lstrip().startswith("#") or "{.button}" in line or "![" in line):
            report.add(
                ERROR,
                where,
                f"member field {field.group(0)!r} cannot be filled in a heading, button or "
                "image text",
                "use it in a paragraph, list, quote, facts block or table",
                code="template-syntax",
            )
        without_code = re.sub(r"`[^`]*`", "", line)  # `{{ x }}` in code is shown on purpose
        if campaign.issue.archived:
            for used in FIELD_RE.finditer(without_code):
                if not (used.group(2) or used.group(3)):
                    report.add(
                        WARNING,
                        where,
                        f"{used.group(0)!r} has no fallback: the web archive page shows "
                        "nothing there",
                        f'add one, e.g. {{{{ recipient.{used.group(1)} or "…" }}}}, '
                        "or 'archive: false' in the front matter",
                    )
        unfilled = FIELD_RE.sub("", without_code)
        syntax = _TEMPLATE_SYNTAX.search(unfilled)
        if syntax:
            report.add(
                ERROR,
                where,
                f"template syntax {syntax.group(0)!r} would be sent as typed",
                'only member fields are filled in, e.g. {{ recipient.first_name or "member" }}',
                code="template-syntax",
            )
        tag = _RAW_HTML.search(without_code)
        if tag:
            report.add(
                WARNING,
                where,
                f"raw HTML {tag.group(0)!r} is shown as text in the email",
                "use Markdown instead: **bold**, _italic_, [text](https://…), a blank line",
            )
        footnote = _FOOTNOTE.search(without_code)
        if footnote:
            report.add(
                WARNING,
                where,
                f"footnote {footnote.group(0)!r} is not supported: it is shown as typed",
                "put the source in the sentence, or make it a link",
            )
        strike = _STRIKE.search(without_code)
        if strike:
            report.add(
                WARNING,
                where,
                f"strikethrough {strike.group(0)!r} is not supported: it is shown as typed",
                "delete the words instead",
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
        elif isinstance(block, model.Image) and block.href:
            yield block.line, model.Link(block.href, (model.Text(block.alt),)), ()


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
                    ERROR,
                    where,
                    f"image {block.src} has no alt text",
                    "describe it: ![what the picture shows](…); many clients block images",
                )
            if not is_local(block.src) and not block.src.lower().startswith(("https://", "data:")):
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


# Markdown link syntax left in the text: markdown-it did not read it as a link (a space in
# the address, a space before "(", an undefined [reference], a missing ")").
_BROKEN_LINK = re.compile(
    r"!?\[[^\[\]\n]*\](?:\(|\[[^\[\]\n]*\]|\s+\((?=\s*<?(?:https?:|www\.|mailto:|tel:)))"
)


# Numbered references typed as text ("as shown [1][2]") are meant to be seen as typed.
_CITATION = re.compile(r"\[[\d,\s–-]+\]\[[\d,\s–-]+\]$")

_HEADING_LINK = re.compile(r" {0,3}#{1,6}\s.*\[[^\[\]]*\]\([^)]*\)")
# "## [Register now](https://…)": an article or sub-heading that is one link keeps it.
_HEADING_ALL_LINK = re.compile(r" {0,3}#{2,6}\s+\[[^\[\]]*\]\([^)]*\)\s*#*\s*$")


def _inline_runs(block: model.Block) -> Iterator[tuple[model.Inline, ...]]:
    """Each run of inline content a block shows (items, quoted paragraphs, facts, cells)."""
    if isinstance(block, model.Paragraph):
        yield block.content
    elif isinstance(block, model.BulletList):
        for index, item in enumerate(block.items):
            yield item
            sub = block.sublist(index)
            if sub is not None:
                yield from _inline_runs(sub)
    elif isinstance(block, model.Quote):
        yield from block.paragraphs
    elif isinstance(block, model.Facts):
        for fact in block.facts:
            yield fact.value
    elif isinstance(block, model.Table):
        yield from block.header
        for row in block.rows:
            yield from row


def _shown_text(nodes: tuple[model.Inline, ...]) -> str:
    """The words a run shows as typed, code left out (code shows markup on purpose)."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, model.Text):
            out.append(node.text)
        elif isinstance(node, model.Emphasis | model.Link):
            out.append(_shown_text(node.children))
        elif isinstance(node, model.Field):
            out.append(f"{{{{ recipient.{node.name} }}}}")  # as typed, for the message
        else:
            out.append(" ")
    return "".join(out)


def _broken_link_hint(fragment: str, after: str) -> str:
    if fragment.endswith("]("):
        target = after.split(")", 1)[0] if ")" in after else ""
        if not target:
            return "close the ( … ) after the address: [text](https://…)"
        if "{{" in target:
            return (
                "a member field cannot be filled in a link's address: link to a page every "
                "member can use"
            )
        if " " in target.strip():
            return "a web address cannot hold spaces: write each as %20, or put it in <…>"
        return "write it as [text](https://…), on one line"
    if fragment.rstrip().endswith("("):
        return "remove the space between ] and ( : [text](https://…)"
    return "write it as [text](https://…) ([text][name] needs a line '[name]: https://…')"


def _check_literal_markdown(campaign: Campaign, report: Report) -> None:
    """Markup every member would see as typed, or a link that cannot work: link syntax
    markdown-it could not read (an error: the link is lost), a '<!--' never closed
    (an error: the rest of the issue shows as text), member fields in a link's address
    (an error: sent as typed), unmatched '**' (a warning)."""
    for block in campaign.issue.all_blocks():
        for run in _inline_runs(block):
            text = _shown_text(run)
            broken = next(
                (m for m in _BROKEN_LINK.finditer(text) if not _CITATION.match(m.group())), None
            )
            if broken:
                fragment = text[broken.start() : broken.end()]
                shown = text[broken.start() : broken.start() + 70].split("\n")[0]
                report.add(
                    ERROR,
                    _where(campaign, _source_line(campaign, block.line, fragment)),
                    f"this is not read as a link, and every member would see it as typed: "
                    f"{shown!r}",
                    _broken_link_hint(fragment, text[broken.end() :]),
                )
            if "<!--" in text:
                report.add(
                    ERROR,
                    _where(campaign, _source_line(campaign, block.line, "<!--")),
                    "a comment '<!--' is never closed, so what follows shows as text",
                    "end the comment with '-->'",
                )
            if "**" in text:
                report.add(
                    WARNING,
                    _where(campaign, _source_line(campaign, block.line, "**")),
                    "'**' without its pair is shown as typed",
                    "close the bold text with '**', or delete the '**'",
                )
    from ..content.issue import indented_code_lines

    for number in indented_code_lines(campaign.issue):
        report.add(
            WARNING,
            _where(campaign, number),
            "this text is indented by 4 spaces or a tab, so it shows as code, in a typewriter font",
            "remove the indentation; for code on purpose, put ``` lines around it",
        )
    for number, line in _body_lines(campaign):
        if _HEADING_LINK.match(line) and not _HEADING_ALL_LINK.match(line):
            report.add(
                ERROR,
                _where(campaign, number),
                "a heading shows text only: the link in it is left out of the email",
                "put the link in a sentence or a button under the heading",
            )
    for line, link, _ in _links(list(campaign.issue.all_blocks())):
        if "{{" in link.href or "%7b%7b" in link.href.lower():
            report.add(
                ERROR,
                _where(campaign, _source_line(campaign, line, "{{")),
                f"a member field in a link's address is not filled in: {link.href!r} "
                "would be sent as typed",
                "link to a page every member can use; member fields work in the text only",
                code="template-syntax",
            )


def _check_images(campaign: Campaign, report: Report, head: HeadFunction) -> None:
    """Local pictures: readable images (errors), the weight embedding adds to each message,
    and with hosted pictures whether the web archive already serves each one."""
    pictures = campaign.rendered.pictures
    if pictures is None:
        return
    for problem in pictures.problems:
        report.add(ERROR, problem.where(), problem.message, problem.hint)
    for block in campaign.issue.all_blocks():
        image = pictures.images.get(block.src) if isinstance(block, model.Image) else None
        if image is not None and image.frames > 1:
            report.add(
                WARNING,
                f"{campaign.issue.path}:{block.line}",
                f"{block.src} is an animation ({image.frames} frames): the email shows its "
                "first frame only (Outlook would show no more)",
                "use a still picture, or link to the animation on the website",
            )
    embedded = sum(len(image.data) for _, image in campaign.rendered.inline_images)
    if embedded * 4 // 3 > EMBED_WARN_BYTES:  # base64 adds a third
        report.add(
            WARNING,
            str(campaign.issue.path),
            f"embedded pictures add {embedded * 4 / 3 / 1024 / 1024:.1f} MB to every message",
            "use fewer or smaller pictures, or publish them with the web archive "
            "(NEWSLETTER_ARCHIVE_URL, NEWSLETTER_IMAGES=hosted)",
        )
    for offline in campaign.offline_images(head):
        report.add(ERROR, "NEWSLETTER_ARCHIVE_URL", offline.line(), PUBLISH_HINT, "images-offline")


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
            code="no-unsubscribe",
        )
    else:
        if "{email}" in campaign.sender.unsubscribe_url:
            report.add(
                WARNING,
                "NEWSLETTER_UNSUBSCRIBE_URL",
                "the unsubscribe URL carries the address in clear ({email}): spam filters "
                "score that and it lands in web-server logs",
                "use {token} alone (it carries the address and its HMAC); the page checks it "
                "with newsletter.members.unsubscribe.verify(token, secret)",
            )
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
    # However the footer wraps or breaks them: compare with whitespace normalised.
    html_words, text_words = _words(_html_to_text(html)), _words(text)
    for label, value in (("organisation name", org.name), ("postal address", org.address)):
        parts = [_words(line.strip(" ,")) for line in value.splitlines() if line.strip(" ,")]
        if not all(part in text_words and part in html_words for part in parts):
            report.add(
                ERROR,
                str(campaign.settings.templates_dir / "organisation.toml"),
                f"the {label} is missing from the footer",
                "UK PECR / GDPR expect the sender's identity and address in every bulletin",
            )


def _words(value: str) -> str:
    return " ".join(value.split())


def _html_to_text(document: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", " ", document))


# ---- colours ---------------------------------------------------------------------------------

WHITE = "#ffffff"
# Every text/background pair the templates use: (text, background, large text?, where).
# Large = at least 24px, or 18.7px bold (WCAG): 3:1 is enough; else 4.5:1.
COLOUR_PAIRS = (
    (WHITE, "brand", False, "header and section bands"),
    (WHITE, "accent", False, "buttons"),
    ("text", WHITE, False, "body text"),
    ("link", WHITE, False, "links"),
    ("brand", WHITE, True, "article headings"),
    ("muted", WHITE, False, "muted text"),
    ("text", "facts", False, "key facts and table headers"),
    ("muted", "facts", False, "key-fact labels"),
    ("link", "facts", False, "links in key facts"),
    ("muted", "background", False, "footer text"),
    ("link", "background", False, "footer links"),
)


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[k : k + 2], 16) / 255 for k in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _check_colours(campaign: Campaign, report: Report) -> None:
    """WCAG AA for every pair the templates use; below 3:1 even headings are unreadable for
    many members, so that is an error, between 3:1 and 4.5:1 a warning."""
    colours = campaign.org.colours
    path = campaign.settings.templates_dir / "organisation.toml"
    try:
        toml_text = path.read_text(encoding="utf-8")
    except OSError:
        toml_text = ""

    def name(key: str) -> str:
        return "white" if key == WHITE else f"colours.{key} {colours[key]}"

    for fg, bg, large, used in COLOUR_PAIRS:
        key = bg if fg == WHITE else fg
        if fg != WHITE and fg not in colours or bg != WHITE and bg not in colours:
            continue
        ratio = contrast(colours.get(fg, fg), colours.get(bg, bg))
        needed = 3.0 if large else 4.5
        if ratio >= needed:
            continue
        line = next(
            (
                number
                for number, text in enumerate(toml_text.splitlines(), start=1)
                if re.match(rf"\s*{key}\s*=", text)
            ),
            0,
        )
        report.add(
            ERROR if ratio < 3.0 else WARNING,
            f"{path}:{line}" if line else str(path),
            f"{name(fg)} text on {name(bg)} ({used}): contrast {ratio:.1f}:1, "
            f"below WCAG AA {needed:g}:1",
            f"choose a {'darker' if fg == WHITE or bg == WHITE else 'different'} colour for "
            f"colours.{key}",
            code="contrast",
        )


# A logo pixel closer than this to the header band's colour is all but invisible on it.
LOGO_MIN_CONTRAST = 1.5


def _check_logo(campaign: Campaign, report: Report) -> None:
    """A logo with a transparent background sits on the brand-coloured header band: drawn
    in the brand colour (as most organisations' logos are), it vanishes there."""
    pictures = campaign.rendered.pictures
    logo = pictures.logo if pictures is not None else None
    colours = visible_colours(logo) if logo is not None else None
    if not colours:
        return
    band = campaign.org.colours.get("brand")
    if not band:
        return
    hidden = sum(
        contrast(f"#{r:02x}{g:02x}{b:02x}", band) < LOGO_MIN_CONTRAST for r, g, b in colours
    )
    if hidden * 2 <= len(colours):
        return
    path = campaign.settings.templates_dir / "organisation.toml"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    line = next((n for n, text in enumerate(lines, 1) if re.match(r"\s*logo_url\s*=", text)), 0)
    report.add(
        WARNING,
        f"{path}:{line}" if line else str(path),
        f"logo_url {campaign.org.logo_url}: {hidden * 100 // len(colours)} % of the logo is "
        f"almost the colour of the header band it sits on (colours.brand {band}): it will "
        "hardly show",
        "use a white or light version of the logo (for dark backgrounds), or one with its "
        "own background",
        code="logo-contrast",
    )


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
        elif (
            smtp_username.casefold() != campaign.sender.address.casefold()
            and campaign.settings.oauth_provider_name
        ):
            # Same domain, another mailbox: Microsoft 365 refuses every message without
            # Send As rights (554 5.2.252 SendAsDenied); Gmail replaces the From with the
            # account's own address unless it is a verified "Send mail as" alias.
            report.add(
                WARNING,
                "NEWSLETTER_FROM",
                f"From is {campaign.sender.address} but the mail goes out as "
                f"{smtp_username} (the signed-in or SMTP account)",
                "Microsoft 365 needs Send As rights on the From mailbox (README, For the IT "
                "person, step 6) and Gmail a verified 'Send mail as' address, else it is "
                "refused or members see the account's address: send a --test copy first",
            )


def _rows(rows: list[int], limit: int = 10) -> str:
    label = "row" if len(rows) == 1 else "rows"
    return f"{label} " + ", ".join(map(str, rows[:limit])) + (", …" if len(rows) > limit else "")


def _placeholder_members(
    report: Report, where: str, placeholder: dict[str, list[int]], count: int
) -> None:
    """Members on example.org/.com/.net: the list is (partly) still the example one, e.g.
    recipients.csv copied from recipients.csv.example. Nobody reads mail there; a list of
    nothing else is no members' list at all (an error), some such rows a warning."""
    rows = sorted(row for found in placeholder.values() for row in found)
    domains = ", ".join(sorted(placeholder))
    kind = "a placeholder domain" if len(placeholder) == 1 else "placeholder domains"
    if len(rows) == count:
        everyone = "the only member is" if count == 1 else f"all {count} members are"
        report.add(
            ERROR,
            where,
            f"{everyone} on {domains}, {kind} ({_rows(rows)})",
            "replace the example list with your members' addresses",
            code="placeholder-members",
        )
        return
    members = "member" if len(rows) == 1 else "members"
    report.add(
        WARNING,
        where,
        f"{len(rows)} {members} on {domains}, {kind} ({_rows(rows)})",
        "replace the example list's rows with real members, or delete them",
        code="placeholder-members",
    )


def _already_sent(campaign: Campaign) -> tuple[int, int]:
    """Of the current list, the members the journal says already have this issue, and
    those a send now would mail (not sent, failed, nor cut off mid-send): after a send,
    "READY to send to 38" read as if a send would mail them all again."""
    from ..records.journal import JOURNAL_NAME, Journal, address_key

    path = campaign.settings.state_dir / JOURNAL_NAME
    if not path.is_file():
        return 0, 0
    with Journal.open(path) as journal:
        sent = journal.addresses(campaign.issue.slug, "sent")
        settled = journal.addresses(campaign.issue.slug, "sent", "failed", "sending")
    if not sent:
        return 0, 0
    have = left = 0
    for recipient in campaign.recipients(RecipientReport()):
        key = address_key(recipient.email)
        have += key in sent
        left += key not in settled
    return have, left


def _check_members(campaign: Campaign, report: Report) -> None:
    from .message import MessageBuilder

    recipients = RecipientReport()
    builder = campaign.builder()
    # Fields shown with no fallback: an empty value would leave a gap (", your news…").
    bare = {
        slot.field
        for slot in campaign.rendered.slots.slots
        if not slot.fallback and slot.field not in ("unsubscribe_url", "email")
    }
    empty: dict[str, list[int]] = {}
    placeholder: dict[str, list[int]] = {}  # placeholder domain -> rows of members on it
    count = 0
    subject = campaign.rendered.subject_filled
    longest = (0, 0)  # (length, row) of the longest personalised subject
    # A name cell holding an address (Outlook fills its display name with the address when
    # it knows no name; a column shifted by one): "Dear anna@hospital.de,".
    greets = bool(campaign.org.greeting) and campaign.issue.greeting
    odd_names: list[tuple[int, str]] = []
    for recipient in campaign.recipients(recipients):
        if greets and ("@" in recipient.first_name or "<" in recipient.first_name):
            odd_names.append((recipient.row, recipient.first_name))
        # Build every member's message: a field or value problem shows here, not mid-send.
        builder.build(recipient)
        count += 1
        domain = recipient.email.rpartition("@")[2].lower()
        if domain in PLACEHOLDER_HOSTS or domain.endswith(_DOTTED_PLACEHOLDERS):
            placeholder.setdefault(domain, []).append(recipient.row)
        if subject.has_slots:
            values = campaign.rendered.slots.values(MessageBuilder.fields(recipient, ""))
            length = len(" ".join(subject.fill(values).split()))
            longest = max(longest, (length, -recipient.row))
        if bare:
            values = MessageBuilder.fields(recipient, "")
            for name in bare:
                if not values.get(name, "").strip():
                    empty.setdefault(name, []).append(recipient.row)
    report.members = count
    report.recipients = recipients
    report.already_sent, report.mails_now = _already_sent(campaign)
    if longest[0] > SUBJECT_MAX:
        report.add(
            WARNING,
            _where(campaign, key_line(campaign.issue.source, "subject")),
            f"subject is up to {longest[0]} characters as members read it (row {-longest[1]}); "
            f"inboxes cut it at about {SUBJECT_MAX}",
            "put the words that matter first, or shorten it",
        )
    where = str(campaign.recipients_path)
    if campaign.recipients_path == EXAMPLE_RECIPIENTS and campaign.recipients_given:
        report.add(
            ERROR,
            "--recipients",
            f"{EXAMPLE_RECIPIENTS} is the example list: its members are placeholders nobody "
            "reads mail at",
            f"pass -r with your members' list instead (or save it as "
            f"{campaign.settings.recipients} and leave out -r)",
            code="example-list",
        )
    elif campaign.recipients_path == EXAMPLE_RECIPIENTS != campaign.settings.recipients:
        # A dry run may show the example; READY would promise a send that cannot start.
        report.add(
            ERROR,
            "NEWSLETTER_RECIPIENTS",
            f"{campaign.settings.recipients} not found: this check used the example list "
            f"{EXAMPLE_RECIPIENTS}, which a real send never uses",
            f"save your members' list as {campaign.settings.recipients}, or pass -r FILE",
            code="example-list",
        )
    if placeholder and campaign.recipients_path != EXAMPLE_RECIPIENTS:
        _placeholder_members(report, where, placeholder, count)
    if any(normalise_column(raw) != role for role, raw in recipients.columns.items()):
        report.add(INFO, where, f"columns used: {recipients.columns_line()}")
    for note in recipients.note_lines():
        report.add(INFO, where, note)
    if recipients.encoding:
        ansi = recipients.encoding == "Windows-1252"  # a guess: say so louder
        report.add(WARNING if ansi else INFO, where, recipients.encoding_line())
    for name, rows in sorted(empty.items()):
        members = "member" if len(rows) == 1 else "members"
        report.add(
            WARNING,
            where,
            f"{name} is empty for {len(rows)} {members} ({_rows(rows)}): add a fallback",
            f'e.g. {{{{ recipient.{name} or "…" }}}}, or fill the column in',
        )
    if odd_names:
        row, name = odd_names[0]
        members = "member" if len(odd_names) == 1 else "members"
        report.add(
            WARNING,
            where,
            f"the name used in the greeting holds an address for {len(odd_names)} {members} "
            f"({_rows([r for r, _ in odd_names])}): row {row} would read "
            f"{campaign.org.greeting.format(name=name)!r}",
            "put the member's name in the name column, or leave it empty to greet "
            f"{campaign.org.greeting_fallback!r}",
        )
    if recipients.invalid:
        shown = "; ".join(
            f"row {row} {value!r}: {reason}" for row, value, reason in recipients.invalid[:5]
        )
        rest = [row for row, _, _ in recipients.invalid[5:]]
        more = f"; and {len(rest)} more ({_rows(rest)})" if rest else ""
        report.add(
            ERROR,
            where,
            f"{len(recipients.invalid)} invalid address(es): {shown}{more}",
            "fix them, or send with --skip-invalid to leave them out",
            code="invalid-rows",
        )
    if recipients.no_address:
        rows = recipients.no_address
        report.add(
            WARNING,
            where,
            f"{len(rows)} {'row has' if len(rows) == 1 else 'rows have'} no address and "
            f"{'is' if len(rows) == 1 else 'are'} skipped ({_rows(rows)})",
            "add the member's address to send them the bulletin",
        )
    if recipients.duplicates:
        rows = [row for row, _, _ in recipients.duplicates]
        report.add(
            INFO,
            where,
            f"{len(rows)} duplicate address(es) will be sent once ({_rows(rows)} left out)",
        )
    if recipients.suppressed:
        report.add(INFO, where, f"{len(recipients.suppressed)} suppressed member(s) skipped")
    if recipients.unsubscribed:
        report.add(INFO, where, f"{len(recipients.unsubscribed)} unsubscribed member(s) skipped")
    if count == 0:
        report.add(ERROR, where, "no members to send to", "check the CSV and the suppression list")
