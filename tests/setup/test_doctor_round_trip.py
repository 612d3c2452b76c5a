"""`newsletter doctor`'s round trip, end to end on this machine: the test copy goes over
loopback SMTP to a test relay, which plays the provider and the receiving server — it signs
the copy with DKIM (dkimpy, the key the local DNS server publishes), verifies the signature
against that DNS server as a receiver would, computes DMARC alignment, stamps an
Authentication-Results header (SPF: the verdict the test chooses; the relay has no outside
IP to judge) and APPENDs the copy into a real Dovecot mailbox. doctor finds it there by its
token and reads the verdicts back.

Also: `doctor` against each broken zone through the CLI (the right failing check and fix,
exit 1), the good one passing, and the `--json` shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

import dkim
import dns.resolver
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from support import dovecot
from support.dns_server import all_zones, dkim_private_pem
from support.helpers import run_cli
from support.smtp_servers import start_server

from newsletter.common.config import Settings
from newsletter.domain.findings import CheckId, Problem, Status
from newsletter.setup.doctor import run_doctor
from newsletter.setup.roundtrip import round_trip_checks

TODAY = __import__("datetime").date(2026, 12, 7)


@dataclass
class Signing:
    domain: str  # d= the relay signs with
    selector: str
    spf: str = "pass"  # the SPF verdict the relay stamps


class ProviderAndReceiver:
    """The test relay: DKIM-signs as the provider would, verifies as the receiver would,
    stamps Authentication-Results and delivers into Dovecot."""

    def __init__(self, mailbox: dovecot.Dovecot, dns_address: str, signing: Signing) -> None:
        self.mailbox = mailbox
        self.signing = signing
        host, port = dns_address.split(":")
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers, self.resolver.port = [host], int(port)
        self.delivered = 0

    def _txt(self, name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = self.resolver.resolve(name.decode().rstrip("."), "TXT")
        except dns.exception.DNSException:
            return None
        return b"".join(answer[0].strings)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        data = bytes(envelope.original_content or b"")
        if self.signing.domain:
            data = (
                dkim.sign(
                    data,
                    self.signing.selector.encode(),
                    self.signing.domain.encode(),
                    dkim_private_pem(),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
                )
                + data
            )
        signature_ok = bool(self.signing.domain) and dkim.verify(data, dnsfunc=self._txt)
        head = data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
        from_line = next(line for line in head.split("\r\n") if line.lower().startswith("from:"))
        from_domain = parseaddr(from_line[5:])[1].rpartition("@")[2].lower()
        mailfrom = envelope.mail_from or ""
        dkim_aligned = signature_ok and self.signing.domain.endswith(from_domain)
        spf_aligned = self.signing.spf == "pass" and mailfrom.endswith("@" + from_domain)
        dmarc = "pass" if dkim_aligned or spf_aligned else "fail"
        dkim_part = (
            f"dkim={'pass' if signature_ok else 'fail'} header.d={self.signing.domain} "
            f"header.s={self.signing.selector}"
            if self.signing.domain
            else "dkim=none"
        )
        stamp = (
            f"Authentication-Results: mx.receiver-zone.uk;\r\n spf={self.signing.spf} "
            f"smtp.mailfrom={mailfrom};\r\n {dkim_part};\r\n dmarc={dmarc} "
            f"header.from={from_domain}\r\n"
        )
        self.mailbox.append(stamp.encode() + data)
        self.delivered += 1
        return "250 2.0.0 Ok: delivered"


def _settings(project: Path, relay, mailbox: dovecot.Dovecot, dns_server, domain: str) -> Settings:
    members = project / "recipients.csv"
    return Settings(
        issues_dir=project / "issues",
        templates_dir=project / "templates",
        recipients=members,
        suppressed=project / "suppressed.csv",
        state_dir=project / ".newsletter",
        from_=f"Cluster News <news@{domain}>",
        test_to=f"chair@{domain}",
        unsubscribe_url=f"https://{domain}/u?t={{token}}",
        secret="a-long-random-test-secret",
        smtp_host="127.0.0.1",
        smtp_port=relay.port,
        smtp_security="none",
        smtp_timeout=10.0,
        imap_host="127.0.0.1",
        imap_port=mailbox.plain_port,
        imap_security="none",
        imap_username=dovecot.USERNAME,
        imap_password=dovecot.PASSWORD,
        dns_server=dns_server.address,
    )


class NoSleep:
    """A clock that moves only when slept on: the poll's timeout costs no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_round_trip_reads_the_receivers_verdicts_back(
    project: Path, mailbox, dns_server
) -> None:
    relay_handler = ProviderAndReceiver(
        mailbox, dns_server.address, Signing("good-zone.uk", "selector1")
    )
    with start_server(relay_handler) as relay:
        settings = _settings(project, relay, mailbox, dns_server, "good-zone.uk")
        clock = NoSleep()
        findings = round_trip_checks(
            settings, "december-2023", timeout=30, clock=clock, sleep=clock.sleep
        )
    assert relay_handler.delivered == 1, [(f.check, f.message) for f in findings]
    by = {f.check: f for f in findings}
    assert [f.check for f in findings] == [
        CheckId.ROUND_TRIP, CheckId.RECEIVED_SPF, CheckId.RECEIVED_DKIM,
        CheckId.RECEIVED_DMARC, CheckId.SIZE, CheckId.LIST_UNSUBSCRIBE,
    ]  # fmt: skip
    assert {f.status for f in findings} == {Status.PASS}, [(f.check, f.message) for f in findings]
    assert "signed as good-zone.uk" in by[CheckId.RECEIVED_DKIM].message
    assert "INBOX" in by[CheckId.ROUND_TRIP].message
    assert "of Gmail's 102 KB clip" in by[CheckId.SIZE].message


def test_onmicrosoft_signing_passes_dkim_but_not_alignment(
    project: Path, mailbox, dns_server
) -> None:
    # Microsoft 365 without DKIM for the domain signs as the tenant's onmicrosoft.com; with
    # SPF failing too (a forwarder), DMARC fails.
    handler = ProviderAndReceiver(
        mailbox,
        dns_server.address,
        Signing("good-zone.onmicrosoft.com", "selector1-good-zone-uk", spf="fail"),
    )
    with start_server(handler) as relay:
        settings = _settings(project, relay, mailbox, dns_server, "good-zone.uk")
        clock = NoSleep()
        findings = round_trip_checks(
            settings, "december-2023", timeout=30, clock=clock, sleep=clock.sleep
        )
    by = {f.check: f for f in findings}
    assert by[CheckId.RECEIVED_DKIM].status == Status.WARN
    assert by[CheckId.RECEIVED_DKIM].problem == Problem.UNALIGNED_SIGNATURE
    assert "good-zone.onmicrosoft.com" in by[CheckId.RECEIVED_DKIM].message
    assert by[CheckId.RECEIVED_SPF].status == Status.FAIL
    assert by[CheckId.RECEIVED_DMARC].status == Status.FAIL
    assert "align" in by[CheckId.RECEIVED_DMARC].fix


def test_a_copy_that_never_arrives_fails_naming_the_settings(
    project: Path, mailbox, dns_server
) -> None:

    class Swallow:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
            return "250 OK"  # accepted, never delivered

    with start_server(Swallow()) as relay:
        settings = _settings(project, relay, mailbox, dns_server, "good-zone.uk")
        clock = NoSleep()
        findings = round_trip_checks(
            settings, "december-2023", timeout=9, clock=clock, sleep=clock.sleep
        )
    assert findings[0].status == Status.FAIL and findings[0].problem == Problem.NOT_FOUND
    assert "NEWSLETTER_TEST_TO" in findings[0].fix
    assert clock.now >= 9  # it kept looking until the timeout
    assert {f.status for f in findings[1:]} == {Status.SKIP}


def test_doctor_whole_report_with_a_round_trip(project: Path, mailbox, dns_server) -> None:
    handler = ProviderAndReceiver(mailbox, dns_server.address, Signing("good-zone.uk", "selector1"))
    with start_server(handler) as relay:
        settings = _settings(project, relay, mailbox, dns_server, "good-zone.uk")
        clock = NoSleep()
        report = run_doctor(
            settings,
            today=TODAY,
            round_trip=lambda: round_trip_checks(
                settings, None, timeout=30, clock=clock, sleep=clock.sleep
            ),
        )
    statuses = {str(f.check): f.status for f in report.findings}
    # The loopback relay is "your mail server" (no provider include to look for in SPF).
    assert statuses["spf"] == Status.WARN
    assert not report.failed, [(f.check, f.message) for f in report.findings if f.status == "fail"]
    assert statuses["received-dkim"] == Status.PASS


# ---- the CLI against every zone -------------------------------------------------------------

ZONES = all_zones()
HOSTS = {
    "microsoft365": "smtp.office365.com",
    "google": "smtp.gmail.com",
    "ses": "email-smtp.eu-west-1.amazonaws.com",
    "other": "mail.other-zone.uk",
}


def _zone_env(project: Path, dns_server, domain: str) -> dict[str, str]:
    zone = ZONES[domain]
    env = {
        "NEWSLETTER_FROM": f"News <news@{domain}>",
        "NEWSLETTER_TEST_TO": f"chair@{domain}",
        "NEWSLETTER_UNSUBSCRIBE_MAILTO": f"news@{domain}",
        "NEWSLETTER_SMTP_HOST": HOSTS[zone.provider],
        "NEWSLETTER_DNS_SERVER": dns_server.address,
        "NEWSLETTER_DKIM_SELECTOR": ",".join(zone.selectors),
    }
    if zone.provider in ("microsoft365", "google"):
        env |= {"NEWSLETTER_SMTP_AUTH": "oauth2", "NEWSLETTER_OAUTH_CLIENT_ID": "client"}
        env["NEWSLETTER_OAUTH_CLIENT_SECRET"] = "s" if zone.provider == "google" else ""
        if zone.envelope:
            env["NEWSLETTER_SMTP_USERNAME"] = f"news@{zone.envelope}"
    else:
        env |= {"NEWSLETTER_SMTP_USERNAME": "news", "NEWSLETTER_SMTP_PASSWORD": "pw"}
    return env


@pytest.mark.parametrize("domain", sorted(ZONES))
def test_doctor_reports_each_zone(project: Path, dns_server, domain: str) -> None:
    done = run_cli(["doctor", "--no-send", "--json"], env=_zone_env(project, dns_server, domain))
    findings = json.loads(done.stdout)
    failing = {f["check"] for f in findings if f["status"] == "fail"}
    assert failing == set(ZONES[domain].fails), findings
    assert done.returncode == (1 if failing else 0), done.stderr
    for finding in findings:
        if finding["status"] == "fail":
            assert finding["fix"]


def test_doctor_json_shape(project: Path, dns_server) -> None:
    done = run_cli(
        ["doctor", "--no-send", "--json"], env=_zone_env(project, dns_server, "good-zone.uk")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    findings = json.loads(done.stdout)
    assert isinstance(findings, list) and findings
    for finding in findings:
        assert set(finding) == {"check", "status", "message", "fix"}
        assert finding["status"] in {"pass", "warn", "fail", "skip"}
        assert all(isinstance(value, str) for value in finding.values())
    checks = [f["check"] for f in findings]
    assert checks == [
        "settings", "smtp-auth", "mx", "spf", "dkim", "dmarc", "alignment", "round-trip",
        "received-spf", "received-dkim", "received-dmarc", "size", "list-unsubscribe",
    ]  # fmt: skip
    assert {f["status"] for f in findings[-6:]} == {"skip"}


def test_doctor_text_names_the_record_to_publish(project: Path, dns_server) -> None:
    done = run_cli(["doctor", "--no-send"], env=_zone_env(project, dns_server, "no-dmarc-zone.uk"))
    assert done.returncode == 1
    assert "fail  dmarc" in done.stdout
    assert (
        'fix: publish TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@no-dmarc-zone.uk" at _dmarc.no-dmarc-zone.uk'
        in done.stdout
    )
    assert "NOT READY: 1 failed" in done.stdout


def test_check_dns_adds_the_domain_checks(project: Path, dns_server) -> None:
    env = _zone_env(project, dns_server, "no-spf-zone.uk")
    env["NEWSLETTER_SECRET"] = "a-long-random-test-secret"
    plain = run_cli(["check", "december-2023"], env=env)
    assert "spf" not in plain.stdout.lower().replace("spf/dkim", "")
    with_dns = run_cli(["check", "december-2023", "--dns"], env=env)
    assert with_dns.returncode == 1
    assert "error: spf: no-spf-zone.uk publishes no SPF record" in with_dns.stdout
    assert "NOT READY" in with_dns.stdout


def test_no_secret_in_the_doctor_report(project: Path, dns_server) -> None:
    env = _zone_env(project, dns_server, "other-zone.uk")
    env |= {
        "NEWSLETTER_SMTP_PASSWORD": "very-secret-pw",
        "NEWSLETTER_SECRET": "s3cret-s3cret-s3cret",
    }
    done = run_cli(["doctor", "--no-send"], env=env)
    json_done = run_cli(["doctor", "--no-send", "--json"], env=env)
    for output in (done.stdout + done.stderr, json_done.stdout + json_done.stderr):
        assert "very-secret-pw" not in output and "s3cret-s3cret-s3cret" not in output


def test_doctor_and_check_warn_about_postmarks_transactional_stream(
    project: Path, dns_server
) -> None:
    env = _zone_env(project, dns_server, "other-zone.uk")
    env |= {"NEWSLETTER_SMTP_HOST": "smtp.postmarkapp.com", "NEWSLETTER_SECRET": "x" * 32}
    done = run_cli(["doctor", "--no-send", "--json"], env=env)
    stream = [f for f in json.loads(done.stdout) if "transactional stream" in f["message"]]
    assert [(f["check"], f["status"]) for f in stream] == [("settings", "warn")]
    assert "smtp-broadcasts.postmarkapp.com" in stream[0]["fix"]
    checked = run_cli(["check", "december-2023"], env=env)
    assert "warning: NEWSLETTER_SMTP_HOST: smtp.postmarkapp.com is Postmark's transactional" in (
        checked.stdout
    )


def test_doctor_says_feedback_cannot_sign_in_to_microsoft_365_behind_a_relay(
    project: Path, dns_server
) -> None:
    env = _zone_env(project, dns_server, "good-zone.uk")
    env |= {
        "NEWSLETTER_SMTP_HOST": "email-smtp.eu-west-1.amazonaws.com",
        "NEWSLETTER_SMTP_AUTH": "password",
        "NEWSLETTER_SMTP_USERNAME": "AKIAEXAMPLEACCESSKEY",
        "NEWSLETTER_SMTP_PASSWORD": "ses-secret",
        "NEWSLETTER_IMAP_HOST": "outlook.office365.com",
    }
    done = run_cli(["doctor", "--no-send", "--json"], env=env)
    said = [f for f in json.loads(done.stdout) if "Microsoft 365 refuses for IMAP" in f["message"]]
    assert [(f["check"], f["status"]) for f in said] == [("settings", "warn")], done.stdout
    assert "NEWSLETTER_IMAP_HOST=" in said[0]["fix"] and "OAuth" in said[0]["fix"]
