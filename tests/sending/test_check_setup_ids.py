"""`check` (and every send) adds the set-up findings `doctor` makes (newsletter.domain) to
its report: each problem under its own stable check id, a failure as an error, a warning
as a warning, at the setting or DNS name it is about."""

from __future__ import annotations

import pytest
from support.dns_server import all_zones

from newsletter.domain.dns import DnsResolver
from newsletter.domain.dnschecks import run_dns_checks
from newsletter.domain.findings import CheckId, Problem, Status, failed, passed, skipped, warned
from newsletter.mail.providers import Provider
from newsletter.sending.checks.findings import Check, Report, Severity
from newsletter.sending.checks.settings import check_setup, setup_id

ZONES = all_zones()

# Problems only the doctor's round trip finds (a copy sent and read back): never in `check`.
ROUND_TRIP_ONLY = {
    Problem.NOT_FOUND,
    Problem.IN_JUNK,
    Problem.NO_AUTH_RESULTS,
    Problem.VERDICT,
    Problem.UNALIGNED_SIGNATURE,
    Problem.CLIPPED,
    Problem.NEAR_CLIP,
    Problem.NO_LIST_UNSUBSCRIBE,
    Problem.NO_ONE_CLICK,
    Problem.SEND_FAILED,
    Problem.NO_ISSUE,
}


def test_every_set_up_problem_has_a_check_id() -> None:
    reaches_check = set(Problem) - ROUND_TRIP_ONLY - {Problem.NONE, Problem.NOT_ASKED}
    ids = {problem: setup_id(problem) for problem in reaches_check}
    # The same words as doctor's problem, so a script can key on either; a missing setting
    # is the one check has always called settings-missing.
    assert ids[Problem.MISSING_SETTING] is Check.SETTINGS_MISSING
    assert all(ids[p].value == p.value for p in reaches_check - {Problem.MISSING_SETTING})
    assert len(set(ids.values())) == len(ids)
    for problem in ROUND_TRIP_ONLY:  # doctor's alone: no id in check's report
        with pytest.raises(ValueError):
            setup_id(problem)


def test_failures_are_errors_warnings_warnings_and_passes_nothing() -> None:
    report = Report()
    check_setup(
        report,
        [
            passed(CheckId.SETTINGS, "everything a send needs is set"),
            skipped(CheckId.MX, "no From address to check"),
            failed(
                CheckId.SMTP_AUTH,
                Problem.BASIC_AUTH_ENDED,
                "Microsoft 365 refuses passwords",
                "sign in with OAuth 2.0",
                "NEWSLETTER_SMTP_AUTH",
            ),
            warned(CheckId.SMTP_AUTH, Problem.APP_PASSWORD, "an app password", "create one"),
        ],
    )
    assert [(f.check, f.severity, f.where) for f in report.findings] == [
        (Check.BASIC_AUTH_ENDED, Severity.ERROR, "NEWSLETTER_SMTP_AUTH"),
        # No setting named: the doctor's check stands as the location.
        (Check.APP_PASSWORD, Severity.WARNING, "smtp-auth"),
    ]
    assert report.findings[0].fix == "sign in with OAuth 2.0"


@pytest.mark.parametrize("domain", sorted(d for d, zone in ZONES.items() if zone.fails))
def test_each_broken_zone_is_an_error_under_its_problems_id(dns_server, domain: str) -> None:
    zone = ZONES[domain]
    findings = run_dns_checks(
        DnsResolver(dns_server.address, timeout=3),
        domain,
        Provider(zone.provider),
        envelope_domain=zone.envelope,
        dkim_selectors=zone.selectors,
    )
    report = Report()
    check_setup(report, findings)
    wanted = [setup_id(f.problem) for f in findings if f.status is Status.FAIL]
    assert wanted, "a broken zone fails something"
    assert [f.check for f in report.errors] == wanted
