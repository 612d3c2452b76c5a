"""What ``newsletter feedback`` prints: a table of what came back, what was suppressed,
and the replies from people to read (split from :mod:`.views` for its size)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .views import plain, say

if TYPE_CHECKING:
    from ..feedback.run import FeedbackReport


def print_feedback(report: FeedbackReport) -> None:
    """What a feedback run found and did: a table of messages, suppressions, replies."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=False)
    title = f"Feedback from {report.folder}" + (
        " (dry run: nothing changed)" if report.dry_run else ""
    )
    # One line per message, the facts in full; the detail (the server's words) gets the
    # width that is left, cut with an ellipsis. The width is set explicitly: left to rich
    # (a ratio column), a long detail squeezed the kind and issue columns out of the table.
    # On a terminal too narrow for a useful detail column, the detail goes on its own
    # indented line under its row.
    names = ("kind", "member", "issue", "action")
    cells = [
        tuple(map(plain, (row.kind, row.address or "-", row.issue or "-", row.action, row.detail)))
        for row in report.rows
    ]
    widths = [max([len(name)] + [len(cell[at]) for cell in cells]) for at, name in enumerate(names)]
    room = console.width - sum(widths) - 2 * len(widths) - 1
    longest = max((len(cell[4]) for cell in cells), default=0)
    if report.rows and room >= min(24, longest):
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for name, width in zip(names, widths, strict=True):
            table.add_column(name, no_wrap=True, min_width=width)
        table.add_column("detail", no_wrap=True, overflow="ellipsis", width=room)
        for cell in cells:
            table.add_row(*map(Text, cell))
        console.print(table)
    elif report.rows:

        def line(text: str) -> None:
            console.print(Text(text), no_wrap=True, overflow="ellipsis", crop=True)

        line(title)
        line("  ".join(name.ljust(width) for name, width in zip(names, widths, strict=True)))
        line("-" * min(console.width, sum(widths) + 2 * (len(widths) - 1)))
        for cell in cells:
            line("  ".join(c.ljust(w) for c, w in zip(cell[:4], widths, strict=True)).rstrip())
            if cell[4]:
                line("    " + cell[4])
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.counts.items())) or "nothing new"
    if report.since_first_send:
        say(f"Read from {report.since.isoformat()} on (the day before the first send)")
    elif report.since_default:
        from ..feedback.run import FIRST_RUN_DAYS

        say(
            f"Read from {report.since.isoformat()} on (the last {FIRST_RUN_DAYS} days: nothing "
            "was sent yet; --since YYYY-MM-DD reads further back)"
        )
    if report.mailbox_unread:
        say(f"Mailbox not read: {report.mailbox_unread}")
    else:
        say(f"New: {counts}; already processed before: {report.already_processed}")
    verb = "Would suppress" if report.dry_run else "Suppressed"
    say(f"{verb}: {len(report.suppressed)}")
    for address, reason, issue in report.suppressed:
        say(plain(f"  {address}: {reason}" + (f" ({issue})" if issue else "")))
    if report.moved:
        verb = "Would move" if report.dry_run else "Moved"
        say(f"{verb}: {report.moved} message(s) to {report.move_to}")
    if report.replies:
        replies = Table(
            title="Replies to read in your mail client (no action taken)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        # Addresses and dates are not broken mid-word; the subject wraps at spaces.
        senders = [plain(reply.sender) or "(no sender)" for reply in report.replies]
        replies.add_column("from", no_wrap=True, min_width=max(len(s) for s in senders))
        replies.add_column("date", no_wrap=True)
        replies.add_column("subject", overflow="fold", min_width=20)
        for sender, reply in zip(senders, report.replies, strict=True):
            subject = plain(reply.subject) or "(no subject)"
            replies.add_row(Text(sender), Text(plain(short_date(reply.date))), Text(subject))
        console.print(replies)


def short_date(value: str) -> str:
    """'Mon, 30 Nov 2026 09:31:07 +0100' → '30 Nov 2026 09:31' (as written, if unreadable)."""
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return value
    return f"{when.day} {when:%b %Y %H:%M}"
