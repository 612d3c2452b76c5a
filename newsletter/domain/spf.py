"""SPF (RFC 7208): the sending domain's one ``v=spf1`` record, its syntax, its DNS look-ups
(at most 10, includes counted as receivers count them) and whether it authorises the
provider that actually carries the mail."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..mail.providers import Provider, ProviderInfo
from .dns import Lookup
from .findings import CheckId, Finding, Problem, failed, passed, warned

MAX_LOOKUPS = 10  # RFC 7208 4.6.4: more is a permerror, and the mail fails SPF
_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_COUNTED = {"include", "a", "mx", "ptr", "exists"}  # plus the redirect modifier
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.I)
_TERM = re.compile(r"^([+\-~?]?)([a-z0-9]+)(?::([^/]*))?(/\d+)?(//\d+)?$", re.I)


def spf_records(texts: list[str]) -> list[str]:
    """The TXT records that are SPF records ("v=spf1" then a space or the end)."""
    return [t for t in texts if re.match(r"^v=spf1(\s|$)", t.strip(), re.I)]


@dataclass
class Term:
    qualifier: str
    name: str  # mechanism or modifier name, lower case
    value: str
    modifier: bool = False


@dataclass
class SpfResult:
    record: str = ""
    lookups: int = 0
    includes: set[str] = field(default_factory=set)  # every include/redirect domain reached
    errors: list[str] = field(default_factory=list)  # syntax problems, anywhere in the tree
    all_qualifier: str = ""  # of the top record's "all"; "" when it has none
    redirect: bool = False

    def authorises(self, include: str) -> bool:
        return include.lower() in self.includes


def parse(record: str) -> tuple[list[Term], list[str]]:
    """The record's terms and its syntax errors (each naming the term)."""
    terms: list[Term] = []
    errors: list[str] = []
    for word in record.split()[1:]:
        modifier = _MODIFIER.match(word)
        if modifier and ":" not in modifier.group(1):
            terms.append(Term("", modifier.group(1).lower(), modifier.group(2), True))
            if not modifier.group(2) and modifier.group(1).lower() in ("redirect", "exp"):
                errors.append(f"{word!r} names no domain")
            continue
        match = _TERM.match(word)
        if not match or match.group(2).lower() not in _MECHANISMS:
            errors.append(f"{word!r} is not an SPF mechanism")
            continue
        qualifier, name, value = match.group(1) or "+", match.group(2).lower(), match.group(3)
        if name in ("ip4", "ip6"):
            try:
                network = ipaddress.ip_network(f"{value}{match.group(4) or ''}", strict=False)
                if network.version != int(name[-1]):
                    raise ValueError
            except ValueError:
                errors.append(f"{word!r} is not a valid {name} address")
        elif name in ("include", "exists") and not value:
            errors.append(f"{word!r} names no domain")
        elif name == "all" and (value is not None or match.group(4)):
            errors.append(f"{word!r}: all takes no domain")
        terms.append(Term(qualifier, name, value or ""))
    redirects = [t for t in terms if t.modifier and t.name == "redirect"]
    if len(redirects) > 1:
        errors.append("more than one redirect=")
    return terms, errors


def analyse(lookup: Lookup, domain: str, record: str) -> SpfResult:
    """Walk the record and every include (and redirect) it reaches, counting look-ups."""
    result = SpfResult(record=record)
    terms, errors = parse(record)
    result.errors.extend(errors)
    alls = [t for t in terms if not t.modifier and t.name == "all"]
    result.all_qualifier = alls[0].qualifier if alls else ""
    result.redirect = any(t.modifier and t.name == "redirect" for t in terms)
    seen = {domain.lower()}
    _walk(lookup, terms, result, seen, depth=0)
    return result


def _walk(lookup: Lookup, terms: list[Term], result: SpfResult, seen: set[str], depth: int) -> None:
    for term in terms:
        counted = (not term.modifier and term.name in _COUNTED) or (
            term.modifier and term.name == "redirect"
        )
        if not counted:
            continue
        result.lookups += 1
        if term.name not in ("include", "redirect") or "%" in term.value:
            continue  # a, mx, ptr, exists: one look-up each; macros cannot be followed
        target = term.value.lower().rstrip(".")
        result.includes.add(target)
        if target in seen or depth >= MAX_LOOKUPS or result.lookups > MAX_LOOKUPS:
            continue
        seen.add(target)
        records = spf_records(lookup.txt(target))
        if len(records) != 1:
            what = "no SPF record" if not records else f"{len(records)} SPF records"
            result.errors.append(f"{term.name}:{target} has {what}")
            continue
        inner, errors = parse(records[0])
        result.errors.extend(f"in {target}: {e}" for e in errors)
        _walk(lookup, inner, result, seen, depth + 1)


def check_spf(lookup: Lookup, domain: str, provider: ProviderInfo) -> tuple[Finding, SpfResult]:
    """The ``spf`` finding for ``domain`` sent through ``provider``."""
    include = provider.spf_include
    # An unknown relay: the chair must ask which include (or addresses) authorise it.
    wanted = f"include:{include}" if include else "include:<your mail server's SPF domain>"
    example = f'TXT "v=spf1 {wanted} ~all"'
    records = spf_records(lookup.txt(domain))
    where = f"the TXT record at {domain}"
    if not records:
        return failed(
            CheckId.SPF,
            Problem.NO_SPF,
            f"{domain} publishes no SPF record: receivers cannot tell your servers from a forger's",
            f"publish {example} at {domain}",
        ), SpfResult()
    if len(records) > 1:
        return failed(
            CheckId.SPF,
            Problem.MULTIPLE_SPF,
            f"{domain} publishes {len(records)} SPF records; receivers treat that as an "
            "error (permerror) and the mail fails SPF",
            f"merge them into one {example} record at {domain} and delete the others",
        ), SpfResult(record=records[0])
    result = analyse(lookup, domain, records[0])
    if result.errors:
        return failed(
            CheckId.SPF,
            Problem.SPF_SYNTAX,
            f"{where} {records[0]!r} is not valid SPF: {'; '.join(result.errors[:3])}",
            f"correct {where}, e.g. {example}",
        ), result
    if result.lookups > MAX_LOOKUPS:
        return failed(
            CheckId.SPF,
            Problem.SPF_TOO_MANY_LOOKUPS,
            f"{where} needs {result.lookups} DNS look-ups, over the limit of {MAX_LOOKUPS}: "
            "receivers stop and fail SPF (permerror)",
            f"remove includes of services you no longer use from {where}, or replace a, mx "
            "and include terms by ip4:/ip6: ranges, until at most 10 look-ups remain",
        ), result
    if result.all_qualifier == "+":
        return failed(
            CheckId.SPF,
            Problem.SPF_PASS_ALL,
            f"{where} ends in +all: it authorises every server on the internet",
            f"end {where} with ~all or -all",
        ), result
    if include and not result.authorises(include):
        return failed(
            CheckId.SPF,
            Problem.SPF_WITHOUT_PROVIDER,
            f"{where} does not authorise {provider.label} (no include:{include}): its "
            "servers fail SPF for your mail",
            f"add include:{include} to {where} (before its all), e.g. {example}",
        ), result
    if provider.provider == Provider.OTHER:
        return warned(
            CheckId.SPF,
            Problem.SPF_PROVIDER_UNKNOWN,
            f"{where} is valid ({_lookups(result.lookups)}), but whether it authorises your "
            "mail server cannot be told from here",
            f"ask whoever runs your SMTP server which include: or ip4: to add to {where}",
        ), result
    if not result.all_qualifier and not result.redirect or result.all_qualifier == "?":
        return warned(
            CheckId.SPF,
            Problem.SPF_SOFT,
            f"{where} ends without ~all or -all: other servers sending as {domain} are "
            "treated as neutral",
            f"end {where} with ~all (or -all)",
        ), result
    return passed(
        CheckId.SPF,
        f"{where} authorises {provider.label}"
        + (f" (include:{include})" if include else "")
        + f", {_lookups(result.lookups)} of {MAX_LOOKUPS}",
    ), result


def _lookups(count: int) -> str:
    return f"{count} look-up{'s' * (count != 1)}"
