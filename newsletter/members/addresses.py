"""One address, checked and normalised as the member list, the suppression list and the
settings take it: email-validator's rules, ASCII only (IDN domains as punycode), and each
domain checked once per process (a list's members share a few domains)."""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from ..common.csvfile import CONTROL_CHARS as _CONTROL

# Control characters are never valid in an address (a CR/LF would let a cell inject headers).
_CONTROL_RE = re.compile(f"[{re.escape(_CONTROL)}]")

# A plain ASCII dot-atom local part (RFC 5322 atext, dots between): what nearly every member
# has. email-validator returns such a part unchanged (an RFC 2142 role name such as
# "Postmaster" aside, which it lowercases), so only the domain needs its full checks.
_PLAIN_LOCAL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z"
)
_MAX_LOCAL, _MAX_ADDRESS = 64, 254  # octets (RFC 5321), as email-validator checks them


@functools.lru_cache(maxsize=4096)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """(normalised domain, its IDNA ASCII form) as email-validator finds them, or None if
    it refuses the domain. A list's members share a few domains, and the domain's checks
    (IDNA, UTS #46) are most of the validation's cost (~130 µs an address)."""
    try:
        checked = validate_email("a@" + domain, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


def _plain_address(value: str) -> str | None:
    """What :func:`validate_address` returns for ``value`` when it is a plain address (ASCII
    dot-atom local part, a domain email-validator accepts, within every length limit),
    found without validating the same domain again; None: not that simple, validate it
    in full (which also words the reason for a refusal)."""
    local, at, domain = value.partition("@")
    if not at or len(local) > _MAX_LOCAL or not _PLAIN_LOCAL.match(local):
        return None
    if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        return None
    forms = _domain_forms(domain)
    if forms is None:
        return None
    unicode_domain, ascii_domain = forms
    # The three lengths email-validator checks: as given, normalised, and in ASCII.
    for whole in (value, f"{local}@{unicode_domain}", f"{local}@{ascii_domain}"):
        if len(whole.encode("utf-8")) > _MAX_ADDRESS:
            return None
    return f"{local}@{ascii_domain}"


def validate_address(value: str) -> tuple[str | None, str]:
    """(normalised address, "") or (None, reason)."""
    if not value:
        return None, "no address"
    if _CONTROL_RE.search(value):
        return None, "contains a line break or control character"
    plain = _plain_address(value)
    if plain is not None:
        return plain, ""
    try:
        # ASCII only (IDN domains as punycode): headers and the SMTP envelope stay 7-bit,
        # which every server accepts; non-ASCII local parts would need SMTPUTF8.
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
        return checked.ascii_email or checked.normalized, ""
    except EmailNotValidError as error:
        return None, str(error)
