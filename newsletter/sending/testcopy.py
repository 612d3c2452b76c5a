"""``send --test``: one copy of the issue to the chair, personalised as a member.

Never a member send (the journal keeps test copies apart), but counted toward the daily
cap; sent to placeholder addresses only with a note; what a real send would refuse (a
draft, skeleton text, a copy of a sent issue) said beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..common.config import Settings
from ..common.errors import ConfigError, DailyCapReached
from ..content.published import Offline
from ..members.recipients import Recipient
from ..records.journal import Journal
from . import campaign as campaign_mod
from . import plan as sending
from .checks.findings import Finding
from .checks.settings import placeholder_domain
from .daily import daily_budget, when


@dataclass
class TestSend:
    """What ``send --test`` did: where the copies went, and what to know about them."""

    __test__ = False  # not a pytest class

    sent: list[tuple[str, str]]
    # Hosted pictures the copy shows broken, not yet published (it is sent all the same:
    # the copy is how the chair looks at the issue before publishing).
    offline: list[Offline] = field(default_factory=list)
    # Placeholder addresses the copy was sent from or to anyway (see _placeholder_notes).
    notes: list[str] = field(default_factory=list)
    member: str = ""  # whom the copy was personalised as ("Zoë Brennan <zoe@…>, row 3")
    # What a real send would refuse (a draft, skeleton text, ...): said, not refused.
    refusals: list[Finding] = field(default_factory=list)


def test_addresses(settings: Settings, to: tuple[str, ...]) -> tuple[list[str], str]:
    """Where the test copy goes, and which option or setting said so."""
    if to:
        return list(to), "--to"
    # Commas as the settings reference says, semicolons as Outlook writes address lists.
    parts = [part.strip() for part in settings.test_to.replace(";", ",").split(",")]
    return [part for part in parts if part], "NEWSLETTER_TEST_TO"


def send_test_copy(
    settings: Settings,
    slug: str,
    *,
    recipients: Path | None = None,
    to: tuple[str, ...] = (),
    as_address: str | None = None,
) -> TestSend:
    """``send --test``: one copy to each test address (``to``, else NEWSLETTER_TEST_TO),
    personalised as ``as_address`` or the first member; what a real send would refuse is
    said with it, not refused (the copy is how the chair looks at a draft)."""
    from ..mail.smtp import transport_factory
    from .checks import issue_refusals

    host_placeholder = placeholder_domain(settings.smtp_host)
    if host_placeholder:
        raise ConfigError(
            f"{settings.smtp_host!r} is still a placeholder host: the test copy was not sent",
            setting="NEWSLETTER_SMTP_HOST",
            hint="set your organisation's SMTP server in .env",
        )
    camp = campaign_mod.prepare(settings, slug, recipients=recipients, allow_example=True)
    addresses, source = test_addresses(settings, to)
    notes = _placeholder_notes(camp, addresses, source)
    member = sending.test_recipient(camp, as_address)
    with Journal.for_state_dir(settings.state_dir) as journal:
        _test_copies_fit_the_cap(journal, settings.daily_limit, len(addresses))
        sent = sending.send_test(
            camp, addresses, transport_factory(settings), journal, member=member, source=source
        )
    return TestSend(
        sent,
        camp.offline_images(),
        notes,
        member=_who(member),
        refusals=issue_refusals(camp),
    )


def _who(member: Recipient) -> str:
    """Whom a test copy was personalised as, as the summary names them."""
    if not member.row:
        return "a member without a name (no members' list)"
    name = f"{member.name} <{member.email}>" if member.name else member.email
    return f"{name}, row {member.row}"


def _placeholder_notes(camp: campaign_mod.Campaign, to: list[str], source: str) -> list[str]:
    """A test copy from or to an address still on example.org/.com/.net (.env copied from
    .env.example) goes to nobody, or is sent as someone else's domain: said, naming the
    setting, by the rule ``check`` uses. Not refused: one copy is harmless, test set-ups
    use those domains on purpose, and the real send's checks refuse them."""
    settings = camp.settings
    notes = []
    sender = placeholder_domain(camp.sender.address)
    if sender:
        setting = "NEWSLETTER_FROM" if settings.from_ else "templates/organisation.toml email"
        notes.append(
            f"{setting}: {camp.sender.address!r} is on {sender}, a placeholder domain — set "
            "your organisation's sending address before the real send"
        )
    for address in to:
        domain = placeholder_domain(address)
        if domain:
            where = "" if source == "--to" else " in .env"
            notes.append(
                f"{source}: {address!r} is on {domain}, a placeholder domain: nobody reads that "
                f"mailbox — use your own address{where}"
            )
    return notes


def _test_copies_fit_the_cap(journal: Journal, limit: int, copies: int) -> None:
    """Test copies count toward the provider's daily cap like member sends, so they are
    held back by it too: over the cap the provider would refuse them (or the account)."""
    budget = daily_budget(journal, limit)
    if budget is None or copies <= budget.left:
        return
    now = journal.now()
    moment = budget.free_again(copies, now)
    what = "the test copy was" if copies == 1 else f"the {copies} test copies were"
    head = (
        "daily cap reached"
        if budget.left == 0
        else f"daily cap: {budget.left} left for {copies} test copies"
    )
    raise DailyCapReached(
        f"{head}: {budget.used} of {budget.limit} sent in the last 24 hours "
        f"(NEWSLETTER_DAILY_LIMIT); {what} not sent",
        hint=(f"it can go {when(moment, now)}" if moment else "try again tomorrow")
        + ", or raise NEWSLETTER_DAILY_LIMIT if the provider allows more",
    )
