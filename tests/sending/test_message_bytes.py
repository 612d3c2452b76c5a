"""The bytes of each member's message stay what they were when the builder took shortcuts
for speed: a long one-link List-Unsubscribe written directly instead of through
email.header, the Date line formatted once a second, the parts joined once."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

import pytest

from newsletter.common.config import Settings
from newsletter.members.recipients import Recipient
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.message import MessageBuilder, _header


def builder_for(folder: Path, clock=None, **changes: str) -> MessageBuilder:
    (folder / "members.csv").write_text(
        "email,first_name,last_name,organisation\n", encoding="utf-8"
    )
    settings = Settings(
        issues_dir=folder / "issues",
        templates_dir=folder / "templates",
        suppressed=folder / "suppressed.csv",
        from_="Cluster News <news@wmhtc.co.uk>",
        secret="s3cret",
        **changes,  # type: ignore[arg-type]
    )
    camp = campaign_mod.prepare(settings, "december-2023", recipients=folder / "members.csv")
    if clock is not None:
        camp.clock = clock
    return camp.builder()


def header_block(data: bytes) -> str:
    return data.split(b"\r\n\r\n", 1)[0].decode("ascii") + "\r\n"


def member(address: str) -> Recipient:
    return Recipient(email=address, row=2, fields={"email": address, "first_name": "Jane"})


@pytest.mark.parametrize("mailto", ["", "unsubscribe@wmhtc.co.uk"])
def test_list_unsubscribe_is_folded_exactly_as_email_header_folds_it(
    tmp_path: Path, make_project, mailto: str
) -> None:
    folder = make_project(tmp_path, members=None)
    checked = 0
    # URLs whose header line falls just under, on and over the 78-character fold.
    for pad in range(0, 40, 3):
        url = "https://wm.example.org/u?" + "p" * pad + "&t={token}"
        for address in ("j@x.org", "jane.doe@example.org", "a" * 40 + "@example.co.uk"):
            builder = builder_for(
                folder, unsubscribe_url=url.replace("&t={token}", "") + "&e={email}",
                unsubscribe_mailto=mailto,
            )  # fmt: skip
            _, value = builder.sender.unsubscribe_target(address)
            reference = Header(value, "us-ascii", header_name="List-Unsubscribe").encode(
                linesep="\r\n"
            )
            block = header_block(builder.build(member(address)).data)
            assert f"\r\nList-Unsubscribe: {reference}\r\n" in block, (value, block)
            checked += 1
    assert checked == 3 * 14


def test_two_link_list_unsubscribe_is_folded_exactly_as_email_header_folds_it(
    tmp_path: Path, make_project
) -> None:
    # The https and mailto links, written without email.header: long URLs (the member's
    # address in them) past the point where the first link no longer fits the first line.
    folder = make_project(tmp_path, members=None)
    shapes = set()
    for pad in range(0, 130, 9):
        url = "https://wm.org/" + "p" * pad + ("?e={email}" if pad % 2 else "?t={token}")
        for mailto in ("u@wm.org", "unsubscribe-requests-" + "m" * 30 + "@wmhtc.co.uk"):
            builder = builder_for(folder, unsubscribe_url=url, unsubscribe_mailto=mailto)
            for address in ("j@x.org", "a" * 40 + "@example.co.uk"):
                _, value = builder.sender.unsubscribe_target(address)
                reference = Header(value, "us-ascii", header_name="List-Unsubscribe").encode(
                    linesep="\r\n"
                )
                block = header_block(builder.build(member(address)).data)
                assert f"\r\nList-Unsubscribe: {reference}\r\n" in block, (value, block)
                shapes.add((reference.startswith("\r\n"), reference.count("\r\n")))
    assert shapes == {(False, 1), (True, 2)}  # "A,\r\n B" and "\r\n A,\r\n B"


def test_two_words_are_folded_as_email_header_folds_them_at_every_length() -> None:
    # Every way two unbreakable words fall around the 78-character fold: one line, the
    # second word on a continuation line, the first too, or both on one continuation line.
    shapes = set()
    for name in ("To", "List-Unsubscribe", "X-A-Rather-Long-Header-Name"):
        for first in range(1, 100, 3):
            for second in range(1, 60, 2):
                value = f"<https://{'p' * first}>, <m:{'u' * second}>"
                reference = Header(value, "us-ascii", header_name=name).encode(linesep="\r\n")
                assert _header(name, value) == f"{name}: {reference}\r\n", value
                shapes.add((reference.startswith("\r\n"), reference.count("\r\n")))
    assert shapes == {(False, 0), (False, 1), (True, 1), (True, 2)}


def test_values_email_header_would_break_elsewhere_still_go_through_it() -> None:
    # A comma or semicolon inside a link is also a place email.header may fold at.
    for value in (
        "<https://x.org/" + "a;b" * 30 + ">, <mailto:u@x.org>",
        "<https://x.org/" + "a,b" * 30 + ">, <mailto:u@x.org>",
        "<https://x.org/" + "a" * 90 + ">,  <mailto:u@x.org>",
    ):
        reference = Header(value, "us-ascii", header_name="List-Unsubscribe").encode(linesep="\r\n")
        assert _header("List-Unsubscribe", value) == f"List-Unsubscribe: {reference}\r\n"


def test_the_date_line_is_the_clock_s_second_for_every_message(
    tmp_path: Path, make_project
) -> None:
    folder = make_project(tmp_path, members=None)
    start = dt.datetime(2026, 12, 7, 23, 59, 58, 100_000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    times = [start + dt.timedelta(milliseconds=300 * n) for n in range(12)]
    # The same instant in another zone right after: its own offset, not the cached line.
    times.append(times[-1].astimezone(dt.UTC))
    given = iter(times)
    builder = builder_for(folder, clock=lambda: next(given))
    for when in times:
        data = builder.build(member("jane@example.org")).data
        msg = email.message_from_bytes(data, policy=email.policy.SMTP)
        assert re.search(rf"\r\nDate: {re.escape(format_datetime(when))}\r\n", header_block(data))
        assert msg["Date"].datetime == when.replace(microsecond=0)


def test_every_built_message_says_no_line_starts_with_a_dot_and_none_does(
    tmp_path: Path, make_project
) -> None:
    # SMTP skips its dot-stuffing scan for messages marked dot_safe: the mark must be true
    # whatever the member's values hold (leading dots, a lone "." on a line, line breaks).
    folder = make_project(tmp_path, members=None)
    builder = builder_for(folder, unsubscribe_mailto="unsubscribe@wmhtc.co.uk")
    values = [".Dot", ".", "a\n.b", "x\r\n.\r\ny", "." * 90, "..", "=2E", "\n.\n"]
    for value in values:
        fields = {"email": "jane@example.org", "first_name": value, "last_name": value,
                  "organisation": value}  # fmt: skip
        msg = builder.build(Recipient(email="jane@example.org", row=2, fields=fields))
        assert msg.dot_safe
        assert not msg.data.startswith(b".")
        assert b"\n." not in msg.data, value
        parsed = email.message_from_bytes(msg.data, policy=email.policy.default)
        assert not parsed.defects
