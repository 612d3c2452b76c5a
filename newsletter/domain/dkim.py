"""DKIM keys (RFC 6376 3.6.1): a key published at each selector the provider signs with,
under the sending domain, that parses (RSA of 1024 bits or more, or Ed25519)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from ..mail.providers import Provider, ProviderInfo
from .dns import Lookup
from .findings import CheckId, Finding, Problem, failed, passed, warned

MIN_RSA_BITS = 1024  # receivers (Gmail among them) ignore shorter keys


class KeyProblem(ValueError):
    """A published key that receivers cannot use; ``problem`` says which way."""

    def __init__(self, message: str, problem: Problem = Problem.DKIM_MALFORMED) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass
class DkimResult:
    keys: dict[str, str] = field(default_factory=dict)  # selector -> "RSA 2048 bits"
    broken: dict[str, KeyProblem] = field(default_factory=dict)  # selector -> what is wrong


def tags(record: str) -> dict[str, str]:
    """A tag=value list (``v=DKIM1; k=rsa; p=...``) as a dict; whitespace is ignored."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            found[name.strip().lower()] = "".join(value.split())
    return found


def describe_key(record: str) -> str:
    """What the key is ("RSA 2048 bits"); raises :class:`KeyProblem` saying what is wrong."""
    values = tags(record)
    if "v" in values and values["v"] != "DKIM1":
        raise KeyProblem(f"v={values['v']} (must be DKIM1)")
    if "p" not in values:
        raise KeyProblem("no p= (public key) tag")
    if not values["p"]:
        raise KeyProblem("p= is empty: the key was revoked", Problem.DKIM_REVOKED)
    try:
        raw = base64.b64decode(values["p"], validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem("p= is not valid base64") from None
    kind = values.get("k", "rsa").lower()
    if kind == "ed25519":
        if len(raw) != 32:
            raise KeyProblem(f"an Ed25519 key is 32 bytes, this one {len(raw)}")
        return "Ed25519"
    if kind != "rsa":
        raise KeyProblem(f"k={kind} is not a key type receivers know (rsa, ed25519)")
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(raw)
    except (ValueError, TypeError):
        raise KeyProblem("p= does not hold an RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyProblem("p= holds a key that is not RSA")
    if key.key_size < MIN_RSA_BITS:
        raise KeyProblem(
            f"the RSA key has {key.key_size} bits; receivers need {MIN_RSA_BITS}+",
            Problem.DKIM_WEAK,
        )
    return f"RSA {key.key_size} bits"


def check_dkim(
    lookup: Lookup, domain: str, provider: ProviderInfo, selectors: tuple[str, ...] = ()
) -> tuple[Finding, DkimResult]:
    """The ``dkim`` finding: ``selectors`` (--dkim-selector) or the provider's own."""
    chosen = selectors or provider.dkim_selectors
    result = DkimResult()
    if not chosen:
        return warned(
            CheckId.DKIM,
            Problem.DKIM_SELECTOR_UNKNOWN,
            f"{provider.label} signs with a selector chosen for your account, so the DKIM "
            "key cannot be looked up",
            "pass --dkim-selector NAME (or set NEWSLETTER_DKIM_SELECTOR) with the selector "
            f"{provider.label} gave you ({provider.dkim_how})",
        ), result
    for selector in chosen:
        name = f"{selector}._domainkey.{domain}"
        records = [t for t in lookup.txt(name) if "p=" in t.replace(" ", "")]
        if not records:
            continue
        try:
            result.keys[selector] = describe_key(records[0])
        except KeyProblem as error:
            result.broken[selector] = error
    names = " and ".join(f"{s}._domainkey.{domain}" for s in chosen)
    if result.broken:
        selector, problem = next(iter(result.broken.items()))
        return failed(
            CheckId.DKIM,
            problem.problem,
            f"the DKIM record at {selector}._domainkey.{domain} cannot be used: {problem}",
            f"publish the key exactly as {provider.label} shows it at "
            f"{selector}._domainkey.{domain} ({provider.dkim_how})",
        ), result
    if not result.keys:
        signed_as = (
            f": {provider.label} then signs as your tenant's *.onmicrosoft.com, which does "
            f"not align with {domain}"
            if provider.provider == Provider.MICROSOFT365
            else f": {provider.label} then signs with its own domain, which does not align "
            f"with {domain}"
            if provider.provider == Provider.GOOGLE
            else ""
        )
        fix = (
            f"publish CNAME records selector1._domainkey.{domain} and "
            f"selector2._domainkey.{domain} as the Defender portal shows them "
            f"(selector1-{domain.replace('.', '-')}._domainkey.<tenant>.onmicrosoft.com), "
            "then enable DKIM signing for the domain"
            if provider.provider == Provider.MICROSOFT365
            else f"publish the DKIM key at {names} ({provider.dkim_how})"
        )
        return failed(
            CheckId.DKIM, Problem.NO_DKIM, f"no DKIM key at {names}{signed_as}", fix
        ), result
    shown = ", ".join(f"{s} ({kind})" for s, kind in result.keys.items())
    return passed(CheckId.DKIM, f"DKIM key published for {domain}: {shown}"), result
