"""The DNS checks of `doctor` and `check --dns` against a real DNS server on 127.0.0.1 with
a good domain and broken ones: each broken zone fails exactly the check it breaks, with a
fix that names the record to publish."""

from __future__ import annotations

import pytest
from support.dns_server import all_zones

from newsletter.domain.dns import DnsResolver, DnsUnavailable, parse_server
from newsletter.domain.dnschecks import DNS_CHECKS, run_dns_checks
from newsletter.domain.findings import CheckId, Problem, Status
from newsletter.mail.providers import Provider

ZONES = all_zones()


def _checks(dns_server, domain: str, **kwargs):
    zone = ZONES[domain]
    resolver = DnsResolver(dns_server.address, timeout=3)
    kwargs.setdefault("dkim_selectors", zone.selectors)
    return run_dns_checks(
        resolver, domain, Provider(zone.provider), envelope_domain=zone.envelope, **kwargs
    )


def test_the_good_domain_passes_every_check(dns_server) -> None:
    findings = _checks(dns_server, "good-zone.uk")
    assert [f.check for f in findings] == list(DNS_CHECKS)
    assert {f.status for f in findings} == {Status.PASS}, [f.message for f in findings]
    by_check = {f.check: f for f in findings}
    assert "Microsoft 365" in by_check[CheckId.MX].message
    assert "include:spf.protection.outlook.com" in by_check[CheckId.SPF].message
    assert "selector1 (RSA 2048 bits)" in by_check[CheckId.DKIM].message


@pytest.mark.parametrize("domain", sorted(ZONES))
def test_each_zone_fails_exactly_what_it_breaks(dns_server, domain: str) -> None:
    findings = _checks(dns_server, domain)
    failing = {str(f.check) for f in findings if f.status == Status.FAIL}
    assert failing == set(ZONES[domain].fails), [(f.check, f.status, f.message) for f in findings]
    for finding in findings:
        if finding.status == Status.FAIL:
            assert finding.fix, finding
            # Every fix names the record (or the provider page that makes it) to publish.
            assert domain in finding.fix or "selector" in finding.fix, finding.fix


EXPECTED = {
    "no-mx-zone.uk": (CheckId.MX, Problem.NO_MX, "MX records"),
    "no-spf-zone.uk": (
        CheckId.SPF,
        Problem.NO_SPF,
        'TXT "v=spf1 include:spf.protection.outlook.com ~all" at no-spf-zone.uk',
    ),
    "two-spf-zone.uk": (CheckId.SPF, Problem.MULTIPLE_SPF, "merge them into one"),
    "many-lookups-zone.uk": (CheckId.SPF, Problem.SPF_TOO_MANY_LOOKUPS, "at most 10 look-ups"),
    "spf-syntax-zone.uk": (
        CheckId.SPF,
        Problem.SPF_SYNTAX,
        "correct the TXT record at spf-syntax-zone.uk",
    ),
    "pass-all-zone.uk": (CheckId.SPF, Problem.SPF_PASS_ALL, "~all or -all"),
    "spf-no-provider-zone.uk": (
        CheckId.SPF,
        Problem.SPF_WITHOUT_PROVIDER,
        "add include:spf.protection.outlook.com",
    ),
    "no-dkim-zone.uk": (CheckId.DKIM, Problem.NO_DKIM, "selector1._domainkey.no-dkim-zone.uk"),
    "onmicrosoft-zone.uk": (
        CheckId.ALIGNMENT,
        Problem.NOTHING_ALIGNS,
        "publish the DKIM key for onmicrosoft-zone.uk",
    ),
    "bad-key-zone.uk": (CheckId.DKIM, Problem.DKIM_MALFORMED, "google._domainkey.bad-key-zone.uk"),
    "weak-key-zone.uk": (CheckId.DKIM, Problem.DKIM_WEAK, "google._domainkey.weak-key-zone.uk"),
    "revoked-key-zone.uk": (
        CheckId.DKIM,
        Problem.DKIM_REVOKED,
        "google._domainkey.revoked-key-zone.uk",
    ),
    "no-dmarc-zone.uk": (
        CheckId.DMARC,
        Problem.NO_DMARC,
        '"v=DMARC1; p=none; rua=mailto:dmarc-reports@no-dmarc-zone.uk" at _dmarc.no-dmarc-zone.uk',
    ),
    "bad-dmarc-zone.uk": (CheckId.DMARC, Problem.DMARC_MALFORMED, "_dmarc.bad-dmarc-zone.uk"),
    "two-dmarc-zone.uk": (
        CheckId.DMARC,
        Problem.MULTIPLE_DMARC,
        "keep one record at _dmarc.two-dmarc-zone.uk",
    ),
    "ses-unsigned-zone.uk": (CheckId.ALIGNMENT, Problem.NOTHING_ALIGNS, "Easy DKIM"),
}


@pytest.mark.parametrize("domain", sorted(EXPECTED))
def test_the_failure_names_its_problem_and_fix(dns_server, domain: str) -> None:
    check, problem, fix = EXPECTED[domain]
    findings = _checks(dns_server, domain)
    (finding,) = [f for f in findings if f.check == check]
    assert finding.status == Status.FAIL
    assert finding.problem == problem
    assert fix in finding.fix


def test_at_least_twelve_broken_zones() -> None:
    assert len([z for z in ZONES.values() if z.fails]) >= 12


def test_microsoft_without_dkim_says_it_signs_as_onmicrosoft(dns_server) -> None:
    findings = {f.check: f for f in _checks(dns_server, "no-dkim-zone.uk")}
    assert "onmicrosoft.com" in findings[CheckId.DKIM].message
    # SPF still aligns: DMARC can pass, but forwarding breaks it.
    assert findings[CheckId.ALIGNMENT].status == Status.WARN
    assert findings[CheckId.ALIGNMENT].problem == Problem.ONLY_SPF_ALIGNS


def test_an_unknown_selector_is_a_warning_naming_the_flag(dns_server) -> None:
    findings = {f.check: f for f in _checks(dns_server, "ses-unsigned-zone.uk", dkim_selectors=())}
    assert findings[CheckId.DKIM].status == Status.WARN
    assert "--dkim-selector" in findings[CheckId.DKIM].fix


def test_a_dmarc_record_without_reports_warns(dns_server) -> None:
    findings = {f.check: f for f in _checks(dns_server, "other-zone.uk")}
    assert findings[CheckId.DMARC].status == Status.PASS
    # Whether SPF covers an unknown relay cannot be told: said, not failed.
    assert findings[CheckId.SPF].status == Status.WARN
    assert findings[CheckId.SPF].problem == Problem.SPF_PROVIDER_UNKNOWN


def test_a_subdomain_uses_the_parent_dmarc_record(dns_server) -> None:
    resolver = DnsResolver(dns_server.address, timeout=3)
    from newsletter.domain.dmarc import check_dmarc

    finding, result = check_dmarc(resolver, "news.good-zone.uk")
    assert finding.status == Status.PASS
    assert result.found_at == "good-zone.uk"


def test_a_dns_server_that_does_not_answer_fails_mx_and_skips_the_rest() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers
        resolver = DnsResolver(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        findings = run_dns_checks(resolver, "good-zone.uk", Provider.MICROSOFT365)
    assert findings[0].check == CheckId.MX and findings[0].status == Status.FAIL
    assert findings[0].problem == Problem.DNS_UNAVAILABLE
    assert "NEWSLETTER_DNS_SERVER" in findings[0].fix
    assert {f.status for f in findings[1:]} == {Status.SKIP}
    with pytest.raises(DnsUnavailable):
        resolver.txt("good-zone.uk")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
    ],
)
def test_dns_server_setting_forms(value: str, expected: tuple[str, int]) -> None:
    assert parse_server(value) == expected
