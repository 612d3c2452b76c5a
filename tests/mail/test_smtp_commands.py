"""MAIL and RCPT name their addresses exactly as smtplib's ``quoteaddr`` would, though the
transport skips its parser (~10 µs an address) for the plain addresses nearly all are."""

from __future__ import annotations

import smtplib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsletter.mail.smtp import _PLAIN_ADDRESS, _quoted

# Letters the fast path takes, and the ones that make email.utils.parseaddr do something.
ALPHABET = "aZ09._+-@" + "!#$%&'*/=?^`{|}~ \"<>(),;:[]\\é\t"


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="aZ09._+-@", max_size=30),  # plain ones and their near misses
        st.text(alphabet=ALPHABET, max_size=30),
    )
)
@example("jane.doe@example.org")
@example("a+b_c-d@x-y.co.uk")
@example("jane@localhost")
@example(".jane@example.org")
@example("jane.@example.org")
@example("ja..ne@example.org")
@example("jane@example..org")
@example("jane@.example.org")
@example("jane@example.org.")
@example("Jane <jane@example.org>")
@example("jane@example.org\n")
@example("o'neill@example.org")
@example("zoë@example.org")
def test_an_address_is_quoted_as_smtplib_quotes_it(address: str) -> None:
    assert _quoted(address) == smtplib.quoteaddr(address)


def test_the_fast_path_takes_the_plain_addresses_of_a_member_list() -> None:
    # What the speed-up is for: it must actually apply to ordinary addresses.
    for address in ("member12@example12.org", "first.last+news@sub.example-cluster.co.uk"):
        assert _PLAIN_ADDRESS.fullmatch(address)
        assert _quoted(address) == f"<{address}>"
    assert not _PLAIN_ADDRESS.fullmatch("Jane <jane@example.org>")
