"""Address validation: the fast path for plain addresses (one domain check per domain)
gives exactly what email-validator gives for the whole address, valid or not."""

from __future__ import annotations

import itertools
import random

from email_validator import EmailNotValidError, validate_email

from newsletter.members.recipients import validate_address

LOCALS = [
    "jane", "Jane.Doe", "j.o'neill", "a+tag", "x", "a" * 64, "a" * 65, "first..last",
    ".lead", "trail.", "Postmaster", "INFO", "news", "sales.team", "user_name", "a-b",
    "weird!#$%&*/=?^`{|}~", "two words", '"quoted"', "zoë", "ü", "a@b", "",
]  # fmt: skip
DOMAINS = [
    "example.org", "EXAMPLE.ORG", "nhs.net", "sub.domain.co.uk", "xn--bcher-kva.de",
    "bücher.de", "localhost", "invalid", "a..b.org", "-lead.org", "trail-.org",
    "x" * 63 + ".org", "x" * 64 + ".org", ".".join(["d" * 60] * 4) + ".org", "org",
    "[127.0.0.1]", "exa mple.org", "1.2.3.4", "test", "example.com.",
]  # fmt: skip


def expected(value: str) -> tuple[str | None, str]:
    """What validate_address returned before its fast path: email-validator in full."""
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        return None, str(error)
    return checked.ascii_email or checked.normalized, ""


def test_plain_and_odd_addresses_validate_exactly_as_email_validator_says() -> None:
    values = [f"{local}@{domain}" for local, domain in itertools.product(LOCALS, DOMAINS)]
    values += ["no-at-sign", "@example.org", "jane@", "a@b@example.org", "<jane@example.org>"]
    rng = random.Random(20)
    for _ in range(300):  # long ones around the 254-octet limit
        local = rng.choice(["a" * rng.randint(40, 64), "b.c" * rng.randint(5, 21)])
        labels = ["l" * rng.randint(1, 63) for _ in range(rng.randint(1, 4))]
        values.append(f"{local}@{'.'.join(labels)}.org")
    for value in values:
        # Twice: the second time the domain's checks come from the cache.
        assert validate_address(value) == expected(value), value
        assert validate_address(value) == expected(value), value
