"""Checks of the members list: every member's message built once, invalid, missing,
duplicate and placeholder addresses, empty fields, names that hold addresses, the
example list used by mistake, and how many already have the issue."""

from __future__ import annotations

from ...common.limits import SUBJECT_MAX
from ...content.frontmatter import key_line
from ...members.recipients import REEXPORT_HINT, RecipientReport, normalise_column
from ..campaign import EXAMPLE_RECIPIENTS, Campaign
from .findings import Check, Report, Severity
from .issue import in_issue
from .settings import on_placeholder_domain


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
            Check.PLACEHOLDER_MEMBERS,
            Severity.ERROR,
            where,
            f"{everyone} on {domains}, {kind} ({_rows(rows)})",
            "replace the example list with your members' addresses",
        )
        return
    members = "member" if len(rows) == 1 else "members"
    report.add(
        Check.PLACEHOLDER_MEMBERS,
        Severity.WARNING,
        where,
        f"{len(rows)} {members} on {domains}, {kind} ({_rows(rows)})",
        "replace the example list's rows with real members, or delete them",
    )


def _already_sent(campaign: Campaign) -> tuple[int, int]:
    """Of the current list, the members the journal says already have this issue, and
    those a send now would mail (not sent, failed, nor cut off mid-send): after a send,
    "READY to send to 38" read as if a send would mail them all again."""
    from ...records.journal import JOURNAL_NAME, Journal, address_key

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


def check_members(campaign: Campaign, report: Report) -> None:
    from ..message import MessageBuilder

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
        if on_placeholder_domain(domain):
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
            Check.SUBJECT_LONG,
            Severity.WARNING,
            in_issue(campaign, key_line(campaign.issue.source, "subject")),
            f"subject is up to {longest[0]} characters as members read it (row {-longest[1]}); "
            f"inboxes cut it at about {SUBJECT_MAX}",
            "put the words that matter first, or shorten it",
        )
    where = str(campaign.recipients_path)
    if campaign.recipients_path == EXAMPLE_RECIPIENTS and campaign.recipients_given:
        report.add(
            Check.EXAMPLE_LIST,
            Severity.ERROR,
            "--recipients",
            f"{EXAMPLE_RECIPIENTS} is the example list: its members are placeholders nobody "
            "reads mail at",
            f"pass -r with your members' list instead (or save it as "
            f"{campaign.settings.recipients} and leave out -r)",
        )
    elif campaign.recipients_path == EXAMPLE_RECIPIENTS != campaign.settings.recipients:
        # A dry run may show the example; READY would promise a send that cannot start.
        report.add(
            Check.EXAMPLE_LIST,
            Severity.ERROR,
            "NEWSLETTER_RECIPIENTS",
            f"{campaign.settings.recipients} not found: this check used the example list "
            f"{EXAMPLE_RECIPIENTS}, which a real send never uses",
            f"save your members' list as {campaign.settings.recipients}, or pass -r FILE",
        )
    if placeholder and campaign.recipients_path != EXAMPLE_RECIPIENTS:
        _placeholder_members(report, where, placeholder, count)
    if any(normalise_column(raw) != role for role, raw in recipients.columns.items()):
        report.add(
            Check.COLUMNS, Severity.INFO, where, f"columns used: {recipients.columns_line()}"
        )
    for note in recipients.note_lines():
        report.add(Check.LIST_NOTE, Severity.INFO, where, note)
    if recipients.encoding:
        ansi = recipients.encoding == "Windows-1252"  # a guess: say so louder
        report.add(
            Check.ENCODING,
            Severity.WARNING if ansi else Severity.INFO,
            where,
            recipients.encoding_line(),
        )
    if recipients.accented:  # what the guess made of the names: judged without a dry run
        report.add(Check.ENCODING, Severity.INFO, where, recipients.accented_line())
    if recipients.lost_letters:
        report.add(
            Check.LOST_LETTERS, Severity.ERROR, where, recipients.lost_letters_line(), REEXPORT_HINT
        )
    for name, rows in sorted(empty.items()):
        members = "member" if len(rows) == 1 else "members"
        report.add(
            Check.EMPTY_FIELD,
            Severity.WARNING,
            where,
            f"{name} is empty for {len(rows)} {members} ({_rows(rows)}): add a fallback",
            f'e.g. {{{{ recipient.{name} or "…" }}}}, or fill the column in',
        )
    if odd_names:
        row, name = odd_names[0]
        members = "member" if len(odd_names) == 1 else "members"
        report.add(
            Check.NAME_IS_ADDRESS,
            Severity.WARNING,
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
            Check.INVALID_ROWS,
            Severity.ERROR,
            where,
            f"{len(recipients.invalid)} invalid address(es): {shown}{more}",
            "fix them, or send with --skip-invalid to leave them out",
        )
    if recipients.no_address:
        rows = recipients.no_address
        report.add(
            Check.NO_ADDRESS,
            Severity.WARNING,
            where,
            f"{len(rows)} {'row has' if len(rows) == 1 else 'rows have'} no address and "
            f"{'is' if len(rows) == 1 else 'are'} skipped ({_rows(rows)})",
            "add the member's address to send them the bulletin",
        )
    if recipients.duplicates:
        rows = [row for row, _, _ in recipients.duplicates]
        report.add(
            Check.DUPLICATES,
            Severity.INFO,
            where,
            f"{len(rows)} duplicate address(es) will be sent once ({_rows(rows)} left out)",
        )
    if recipients.suppressed:
        report.add(
            Check.SUPPRESSED,
            Severity.INFO,
            where,
            f"{len(recipients.suppressed)} suppressed member(s) skipped",
        )
    if recipients.unsubscribed:
        report.add(
            Check.UNSUBSCRIBED,
            Severity.INFO,
            where,
            f"{len(recipients.unsubscribed)} unsubscribed member(s) skipped",
        )
    if count == 0:
        report.add(
            Check.NO_MEMBERS,
            Severity.ERROR,
            where,
            "no members to send to",
            "check the CSV and the suppression list",
        )
