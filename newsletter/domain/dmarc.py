"""DMARC (RFC 7489): one valid ``v=DMARC1`` record for the From domain (or the domain above
it), its policy and where reports go."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .dkim import tags
from .dns import Lookup
from .findings import CheckId, Finding, Problem, failed, passed, warned

_POLICIES = ("none", "quarantine", "reject")


@dataclass
class DmarcResult:
    found_at: str = ""  # the domain whose _dmarc record applies
    policy: str = ""
    adkim: str = "r"
    aspf: str = "r"


def dmarc_records(texts: list[str]) -> list[str]:
    return [t for t in texts if re.match(r"^\s*v\s*=\s*DMARC1\s*(;|$)", t)]


def parse(record: str) -> tuple[dict[str, str], list[str]]:
    """The record's tags and what is wrong with them."""
    values = tags(record)
    errors: list[str] = []
    if record.split(";")[0].replace(" ", "") != "v=DMARC1":
        errors.append("it must start with v=DMARC1")
    policy = values.get("p", "").lower()
    if not policy:
        errors.append("no p= (policy) tag")
    elif policy not in _POLICIES:
        errors.append(f"p={values['p']} is not none, quarantine or reject")
    if "sp" in values and values["sp"].lower() not in _POLICIES:
        errors.append(f"sp={values['sp']} is not none, quarantine or reject")
    for name in ("adkim", "aspf"):
        if name in values and values[name].lower() not in ("r", "s"):
            errors.append(f"{name}={values[name]} is not r or s")
    if "pct" in values and not (values["pct"].isdigit() and 0 <= int(values["pct"]) <= 100):
        errors.append(f"pct={values['pct']} is not a number from 0 to 100")
    for name in ("rua", "ruf"):
        for uri in filter(None, values.get(name, "").split(",")):
            if not re.match(r"^mailto:[^@\s]+@[^@\s]+$", uri.split("!")[0], re.I):
                errors.append(f"{name}: {uri!r} is not a mailto: address")
    return values, errors


def _lookup(lookup: Lookup, domain: str) -> tuple[str, list[str]]:
    """The DMARC records for ``domain``: its own, else the nearest parent's (the
    organisational domain's policy covers its subdomains); never the top-level domain's."""
    labels = domain.lower().rstrip(".").split(".")
    for start in range(0, max(1, len(labels) - 1)):
        name = ".".join(labels[start:])
        records = dmarc_records(lookup.txt(f"_dmarc.{name}"))
        if records:
            return name, records
    return "", []


def check_dmarc(lookup: Lookup, domain: str) -> tuple[Finding, DmarcResult]:
    found_at, records = _lookup(lookup, domain)
    example = f'TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"'
    if not records:
        return failed(
            CheckId.DMARC,
            Problem.NO_DMARC,
            f"{domain} publishes no DMARC record: Gmail and Yahoo require one of bulk "
            "senders (p=none at least), and receivers cannot tell what to do with forgeries",
            f"publish {example} at _dmarc.{domain}",
        ), DmarcResult()
    where = f"the TXT record at _dmarc.{found_at}"
    if len(records) > 1:
        return failed(
            CheckId.DMARC,
            Problem.MULTIPLE_DMARC,
            f"_dmarc.{found_at} has {len(records)} DMARC records: receivers ignore them all",
            f"keep one record at _dmarc.{found_at}, e.g. {example}",
        ), DmarcResult(found_at)
    values, errors = parse(records[0])
    if errors:
        return failed(
            CheckId.DMARC,
            Problem.DMARC_MALFORMED,
            f"{where} {records[0]!r} is not valid DMARC: {'; '.join(errors[:3])}",
            f"correct {where}, e.g. {example}",
        ), DmarcResult(found_at)
    result = DmarcResult(
        found_at,
        values["p"].lower(),
        values.get("adkim", "r").lower(),
        values.get("aspf", "r").lower(),
    )
    policy = f"policy p={result.policy}" + (
        " (monitoring only: enough for Gmail and Yahoo)" if result.policy == "none" else ""
    )
    if not values.get("rua"):
        return warned(
            CheckId.DMARC,
            Problem.DMARC_NO_RUA,
            f"{where} is valid ({policy}) but asks for no reports (rua=): you will not see "
            "who sends as your domain, nor whether your own mail passes",
            f"add rua=mailto:dmarc-reports@{found_at} to {where}",
        ), result
    return passed(CheckId.DMARC, f"{where} is valid: {policy}, reports to {values['rua']}"), result
