"""Sender refusals (quota, blocked account) told apart from a member's own failure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.mail.refusals import (
    DAY,
    CircuitBreaker,
    classify,
    enhanced_code,
    is_recipient_refusal,
    reply_shape,
)

GMAIL_DAILY = (
    "550 5.4.5 Daily user sending limit exceeded. For more information on Gmail sending "
    "limits go to https://support.google.com/a/answer/166852 d9443c01a7336-21c"
)
GMAIL_RELAY = "550 5.4.5 Daily SMTP relay sending limit exceeded for customer C01abc"
MS_QUOTA = (
    "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
    "process message due to a permanent exception with message [BeginDiagnosticData]"
)
MS_TENANT = "550 5.7.705 Access denied, tenant has exceeded threshold"
MS_IP = "550 5.7.708 Access denied, traffic not accepted from this IP"


@pytest.mark.parametrize(
    ("reply", "words", "daily"),
    [
        (GMAIL_DAILY, "Gmail's daily sending limit", True),
        (GMAIL_RELAY, "daily", True),
        (MS_QUOTA, "Microsoft 365's daily recipient limit", True),
        (MS_TENANT, "blocked the tenant", False),
        (MS_IP, "sending IP", False),
        ("550 5.1.8 Access denied, bad outbound sender", "blocked the account", False),
    ],
)
def test_known_sender_refusals(reply: str, words: str, daily: bool) -> None:
    refusal = classify(reply)
    assert refusal is not None and words in refusal.reason
    assert refusal.reply == reply
    assert (refusal.retry_after == DAY) is daily
    assert ("24 hours" in refusal.advice) is daily


@pytest.mark.parametrize(
    "reply",
    [
        "550 5.1.1 <jane@example.org>: Recipient address rejected: User unknown",
        "552 5.2.2 mailbox full",
        "550 5.2.1 mailbox disabled",
        "554 5.7.1 message rejected as spam",
        "550 No such user here",
    ],
)
def test_member_refusals_are_not_sender_refusals(reply: str) -> None:
    assert classify(reply) is None


def test_enhanced_codes() -> None:
    assert enhanced_code("550 5.1.1 user unknown") == "5.1.1"
    assert enhanced_code("550 user unknown") is None
    assert is_recipient_refusal("550 5.1.1 user unknown")
    assert is_recipient_refusal("550 5.1.10 null MX")
    assert is_recipient_refusal("552 5.2.2 over quota")
    assert not is_recipient_refusal("550 5.1.8 bad outbound sender")  # the sender's address
    assert not is_recipient_refusal("554 5.7.1 rejected")
    assert not is_recipient_refusal("550 rejected")


def test_reply_shape_ignores_what_differs_per_member() -> None:
    a = reply_shape("554 5.7.1 <a@example.org>: rejected [AM0PR01MB1234.eurprd01] id 4f3a2b1c9")
    b = reply_shape("554 5.7.1 <b@example.org>: rejected [AM0PR02MB9999.eurprd02] id 77ee2b1c0")
    assert a == b
    assert reply_shape("554 5.7.1 rejected") != reply_shape("554 5.7.1 accepted")


def test_breaker_trips_on_consecutive_identical_refusals_of_different_members() -> None:
    breaker = CircuitBreaker(threshold=3)
    assert breaker.refused("a@example.org", "554 5.7.1 <a@example.org> blocked") is None
    assert breaker.refused("b@example.org", "554 5.7.1 <b@example.org> blocked") is None
    refusal = breaker.refused("c@example.org", "554 5.7.1 <c@example.org> blocked")
    assert refusal is not None and "3 different members" in refusal.reason
    assert breaker.members == ["a@example.org", "b@example.org", "c@example.org"]


def test_breaker_resets_on_success_recipient_codes_and_other_replies() -> None:
    breaker = CircuitBreaker(threshold=2)
    breaker.refused("a@example.org", "554 blocked")
    breaker.success()
    assert breaker.refused("b@example.org", "554 blocked") is None
    assert breaker.refused("c@example.org", "550 5.1.1 user unknown") is None  # a real bounce
    assert breaker.members == []
    breaker.refused("d@example.org", "554 blocked")
    assert breaker.refused("e@example.org", "554 something else") is None
    assert breaker.members == ["e@example.org"]
    # The same member twice (a retry) is not "different members".
    assert breaker.refused("E@example.org", "554 something else") is None


@given(st.lists(st.sampled_from(["550 5.1.1 unknown", "552 5.2.2 full", "550 5.1.2 no host"])))
def test_recipient_failures_never_trip_the_breaker(replies: list[str]) -> None:
    breaker = CircuitBreaker(threshold=2)
    for n, reply in enumerate(replies):
        assert breaker.refused(f"m{n}@example.org", reply) is None


def test_ten_members_at_three_organisations_refused_as_unknown_before_any_success_trip() -> None:
    breaker = CircuitBreaker()
    domains = ["nhs.net", "aston.ac.uk", "medtech.co.uk"]
    members = [f"m{n}@{domains[n % 3]}" for n in range(10)]
    for member in members[:9]:
        assert breaker.refused(member, f"550 5.1.1 <{member}>: Recipient address rejected") is None
    refusal = breaker.refused(members[9], "550 5.1.1 <m9@nhs.net>: Recipient address rejected")
    assert refusal is not None and "not a server that sends mail out" in refusal.reason
    assert "NEWSLETTER_SMTP_HOST" in refusal.advice
    assert breaker.returned() == members  # all go back to pending


def test_unknown_members_do_not_trip_once_the_server_accepted_one_or_at_one_organisation() -> None:
    breaker = CircuitBreaker()
    breaker.success()
    for n in range(30):
        assert breaker.refused(f"m{n}@d{n % 5}.org", "550 5.1.1 user unknown") is None
    alone = CircuitBreaker()  # an old list from one organisation that closed: real bounces
    for n in range(30):
        assert alone.refused(f"m{n}@closed.org", "550 5.1.1 user unknown") is None
    two = CircuitBreaker()
    for n in range(30):
        assert two.refused(f"m{n}@d{n % 2}.org", "550 5.1.1 user unknown") is None


@given(st.text(max_size=300))
def test_classification_never_fails_on_any_reply(reply: str) -> None:
    classify(reply)
    reply_shape(reply)
    is_recipient_refusal(reply)
