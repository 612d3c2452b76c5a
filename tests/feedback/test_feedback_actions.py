"""What ``feedback`` does about an address is a typed Action; the report's words are made
from it, and whether a message was acted on (moved by --move-to) is decided from the enum,
never from the words."""

from __future__ import annotations

import pytest

from newsletter.feedback import actions
from newsletter.feedback.actions import (
    Action,
    Decisions,
    FeedbackAction,
    FeedbackReport,
    Note,
    Row,
)
from newsletter.feedback.classify import Feedback, FeedbackKind
from newsletter.feedback.run import _handle, _Matcher
from newsletter.records.feedback_log import EventKind


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (Action(FeedbackAction.SUPPRESS), "suppress"),
        (Action(FeedbackAction.SUPPRESS_AGAIN), "suppress (again)"),
        (Action(FeedbackAction.SUPPRESS, count=3), "suppress (3 issues)"),
        (Action(FeedbackAction.SUPPRESS_AGAIN, count=3), "suppress (again) (3 issues)"),
        (Action(FeedbackAction.SOFT_COUNTED, count=1, limit=2), "soft 1 of 2"),
        (Action(FeedbackAction.NOT_COUNTED), "not counted: no issue"),
        (Action(FeedbackAction.IGNORED), "ignored"),
        (Action(FeedbackAction.LEFT_INVALID), "left: not a valid address"),
        (
            Action(FeedbackAction.LEFT_RESUBSCRIBED, since="2024-01-05"),
            "left: resubscribed since (2024-01-05)",
        ),
        (Action(FeedbackAction.LEFT_NOT_A_BULLETIN), "left: not a bulletin"),
        (Action(FeedbackAction.LEFT_NO_MEMBER), "left: no member"),
        (Action(FeedbackAction.LEFT_NO_SENDER), "left: no sender"),
        (Action(FeedbackAction.LEFT_SERVER_FAILS), "left: the server fails on it"),
        (Action(FeedbackAction.LEFT_NOT_RETURNED), "left: the server did not return it"),
        (
            Action(FeedbackAction.LEFT_SUSPECT_SERVER, count=5, delivered=1),
            "left: 5 members refused as unknown, 1 delivered — nobody suppressed: check "
            "NEWSLETTER_SMTP_HOST is your sending server",
        ),
        (Action(FeedbackAction.SUPPRESS).noted(Note.NOT_A_MEMBER), "suppress (not a member)"),
        (
            Action(FeedbackAction.LEFT_INVALID).noted(Note.NOT_A_BULLETIN),
            "left: not a valid address (not a bulletin)",
        ),
    ],
)
def test_each_action_has_its_words(action: Action, words: str) -> None:
    assert action.text == words
    row = Row("UID 1", FeedbackKind.UNSUBSCRIBE, "a@b.example", "", action)
    assert row.action == words  # what the report table shows


def test_left_is_exactly_the_left_actions() -> None:
    left = {a for a in FeedbackAction if Action(a, count=1, limit=2, since="x").left}
    assert left == {
        FeedbackAction.LEFT_INVALID,
        FeedbackAction.LEFT_RESUBSCRIBED,
        FeedbackAction.LEFT_NOT_A_BULLETIN,
        FeedbackAction.LEFT_NO_MEMBER,
        FeedbackAction.LEFT_NO_SENDER,
        FeedbackAction.LEFT_SERVER_FAILS,
        FeedbackAction.LEFT_NOT_RETURNED,
        FeedbackAction.LEFT_SUSPECT_SERVER,
    }


def _decisions(limit: int = 2) -> Decisions:
    return Decisions(None, limit, FeedbackReport(folder="INBOX", dry_run=True))


def test_decisions_are_typed() -> None:
    decide = _decisions(limit=2)
    first = decide.act("ann@nhs.example", EventKind.SOFT, "2024-01", "452 full")
    assert (first.what, first.count, first.limit) == (FeedbackAction.SOFT_COUNTED, 1, 2)
    second = decide.act("ann@nhs.example", EventKind.SOFT, "2024-02", "452 full")
    assert (second.what, second.count) == (FeedbackAction.SUPPRESS, 2)
    again = decide.act("ANN@nhs.example", EventKind.HARD, "2024-02", "550 5.1.1")
    assert again.what is FeedbackAction.SUPPRESS_AGAIN
    assert decide.act("bob@nhs.example", EventKind.SOFT, "", "452").what is (
        FeedbackAction.NOT_COUNTED
    )
    assert decide.act("not an address", EventKind.COMPLAINT, "x", "").what is (
        FeedbackAction.LEFT_INVALID
    )
    assert decide.suppress["ann@nhs.example"] == ("ann@nhs.example", "bounced", "2024-02")


def _unsubscribe(sender: str) -> Feedback:
    return Feedback(FeedbackKind.UNSUBSCRIBE, sender=sender, subject="unsubscribe")


@pytest.mark.parametrize(
    ("sender", "acted"),
    [("cat@members.example", True), ("not an address", False)],
)
def test_whether_a_message_was_acted_on_does_not_depend_on_the_words(
    monkeypatch: pytest.MonkeyPatch, sender: str, acted: bool
) -> None:
    """An unsubscribe that suppressed someone is moved by --move-to; one nobody could be
    taken off for stays. Reworded so that every action reads like the other kind (the
    suppression as "left: ...", the refusal as "suppress"), the decision stays."""
    decide = _decisions()
    assert _handle(_unsubscribe(sender), "UID 7", _Matcher(None), decide) is acted
    before = [row.action for row in decide.report.rows]
    assert before[0].startswith("left") is not acted

    reworded = {
        action: ("suppress" if Action(action).left else "left: reworded")
        for action in FeedbackAction
    }
    monkeypatch.setattr(actions, "_WORDS", reworded)
    decide = _decisions()
    assert _handle(_unsubscribe(sender), "UID 7", _Matcher(None), decide) is acted
    after = [row.action for row in decide.report.rows]
    assert after != before and after[0].startswith("left") is acted
