"""The DNS part of ``newsletter doctor`` (and ``check --dns``): mx, spf, dkim, dmarc and
alignment for the From domain, judged against the provider that carries the mail."""

from __future__ import annotations

from ..mail.providers import Provider, info, provider_from_mx
from .dkim import DkimResult, check_dkim
from .dmarc import DmarcResult, check_dmarc
from .dns import DnsUnavailable, Lookup
from .findings import CheckId, Finding, Problem, Status, failed, passed, skipped, warned
from .spf import SpfResult, check_spf

DNS_CHECKS = (CheckId.MX, CheckId.SPF, CheckId.DKIM, CheckId.DMARC, CheckId.ALIGNMENT)
# Second-level labels under which registrations sit (example.co.uk): a rough organisational
# domain for relaxed alignment, without a public-suffix list.
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "nhs", "sch"}


def organisational(domain: str) -> str:
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def aligned(one: str, other: str, mode: str) -> bool:
    """DMARC identifier alignment: strict is the same name, relaxed the same organisation."""
    one, other = one.lower().rstrip("."), other.lower().rstrip(".")
    return one == other if mode == "s" else organisational(one) == organisational(other)


def run_dns_checks(
    lookup: Lookup,
    from_domain: str,
    provider: Provider,
    *,
    envelope_domain: str = "",
    dkim_selectors: tuple[str, ...] = (),
) -> list[Finding]:
    """Every DNS finding, in the order of DNS_CHECKS. ``envelope_domain``: the domain of the
    address the provider uses as the envelope sender (the mailbox), default the From one."""
    carrier = info(provider)
    try:
        mx_finding = _check_mx(lookup, from_domain)
        spf, spf_result = check_spf(lookup, from_domain, carrier)
        dkim, dkim_result = check_dkim(lookup, from_domain, carrier, dkim_selectors)
        dmarc, dmarc_result = check_dmarc(lookup, from_domain)
    except DnsUnavailable as error:
        return [
            failed(
                CheckId.MX,
                Problem.DNS_UNAVAILABLE,
                f"cannot ask DNS about {from_domain}: {error}",
                "check the network connection, or set NEWSLETTER_DNS_SERVER to a DNS server "
                "that answers (e.g. 1.1.1.1)",
            ),
            *(skipped(c, "not checked: DNS did not answer", Problem.DNS_UNAVAILABLE)
              for c in DNS_CHECKS[1:]),
        ]  # fmt: skip
    envelope = envelope_domain or from_domain
    alignment = _check_alignment(
        from_domain, envelope, carrier.provider, spf, spf_result, dkim, dkim_result, dmarc_result
    )
    return [mx_finding, spf, dkim, dmarc, alignment]


def _check_mx(lookup: Lookup, domain: str) -> Finding:
    hosts = lookup.mx(domain)
    if not hosts:
        return failed(
            CheckId.MX,
            Problem.NO_MX,
            f"{domain} has no MX record: replies and bounces cannot reach it, and some "
            "receivers refuse mail from a domain that cannot receive any",
            f"publish the MX records your mail provider gives for {domain}",
        )
    receiver = provider_from_mx(hosts)
    who = info(receiver).label if receiver != Provider.OTHER else "its own mail servers"
    return passed(CheckId.MX, f"mail for {domain} is received by {who} ({hosts[0]})")


def _check_alignment(
    from_domain: str,
    envelope: str,
    provider: Provider,
    spf: Finding,
    spf_result: SpfResult,
    dkim: Finding,
    dkim_result: DkimResult,
    dmarc: DmarcResult,
) -> Finding:
    carrier = info(provider)
    dkim_aligns = bool(dkim_result.keys)  # keys under the From domain itself: d=From
    spf_aligns = (
        carrier.spf_aligns
        and spf.status in (Status.PASS, Status.WARN)
        and spf.problem != Problem.SPF_PROVIDER_UNKNOWN
        and aligned(envelope, from_domain, dmarc.aspf)
    )
    if dkim_aligns:
        also = " and SPF" if spf_aligns else ""
        return passed(
            CheckId.ALIGNMENT,
            f"From {from_domain} can align with DKIM{also} (the signature is d={from_domain})",
        )
    if dkim.problem == Problem.DKIM_SELECTOR_UNKNOWN and not spf_aligns:
        return warned(
            CheckId.ALIGNMENT,
            Problem.DKIM_SELECTOR_UNKNOWN,
            f"cannot tell whether {carrier.label} signs as {from_domain}: the DKIM selector "
            "is not known",
            "pass --dkim-selector NAME; a doctor round trip shows the receiving server's verdict",
        )
    signs_as = {
        Provider.MICROSOFT365: "your tenant's *.onmicrosoft.com",
        Provider.GOOGLE: "a Google domain (*.gappssmtp.com)",
    }.get(provider, f"{carrier.label}'s own domain")
    dkim_fix = f"publish the DKIM key for {from_domain} and switch signing on ({carrier.dkim_how})"
    if spf_aligns:
        return warned(
            CheckId.ALIGNMENT,
            Problem.ONLY_SPF_ALIGNS,
            f"only SPF aligns with From {from_domain}: DKIM signs as {signs_as}, so mail "
            "forwarded by a member's server (which breaks SPF) fails DMARC",
            dkim_fix,
        )
    why = (
        f"the envelope sender is on {envelope}"
        if carrier.spf_aligns and not aligned(envelope, from_domain, dmarc.aspf)
        else f"{carrier.label} uses its own bounce domain"
        if not carrier.spf_aligns
        else "SPF does not authorise the provider"
    )
    return failed(
        CheckId.ALIGNMENT,
        Problem.NOTHING_ALIGNS,
        f"nothing aligns with From {from_domain}: DKIM signs as {signs_as} and SPF cannot "
        f"({why}); DMARC fails and Gmail, Yahoo and Outlook.com reject or junk the mail",
        dkim_fix,
    )


def domain_checks(
    settings_dns_server: str,
    from_domain: str,
    provider: Provider,
    *,
    envelope_domain: str = "",
    dkim_selectors: tuple[str, ...] = (),
    lookup: Lookup | None = None,
) -> list[Finding]:
    """:func:`run_dns_checks` through the resolver the settings name (or ``lookup``)."""
    from .dns import DnsResolver

    try:
        resolver = lookup or DnsResolver(settings_dns_server)
    except DnsUnavailable as error:
        return [
            failed(
                CheckId.MX,
                Problem.DNS_UNAVAILABLE,
                str(error),
                "set NEWSLETTER_DNS_SERVER to a DNS server that answers (e.g. 1.1.1.1)",
            ),
            *(skipped(c, "not checked: no DNS", Problem.DNS_UNAVAILABLE) for c in DNS_CHECKS[1:]),
        ]
    return run_dns_checks(
        resolver,
        from_domain,
        provider,
        envelope_domain=envelope_domain,
        dkim_selectors=dkim_selectors,
    )
