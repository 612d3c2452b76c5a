"""A real DNS server on 127.0.0.1 (dnslib) with zones for a good sending domain and broken
ones, for the doctor, check --dns and setup tests: never the internet.

Like a recursive resolver it follows CNAMEs within its zones (Microsoft 365's DKIM
selectors are CNAMEs to the tenant's onmicrosoft.com records). ``ZONES`` says, per domain,
what the doctor must find wrong with it.
"""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import CNAME, MX, QTYPE, RCODE, RR, TXT, DNSLabel
from dnslib.server import BaseResolver, DNSServer

HOST = "127.0.0.1"
# Every question about a name under this domain is answered SERVFAIL, at once: a look-up
# that fails (as on a network whose DNS is down), without waiting for a timeout.
UNANSWERED = "servfail-zone.uk"
M365_SPF = "include:spf.protection.outlook.com"
GOOD_DMARC = "v=DMARC1; p=quarantine; rua=mailto:dmarc@{d}"


@cache
def dkim_private_key() -> rsa.RSAPrivateKey:
    """The key every good zone publishes (dkimpy signs test mail with it)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dkim_private_pem() -> bytes:
    return dkim_private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _spki(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def good_key_record() -> str:
    return f"v=DKIM1; k=rsa; p={_spki(dkim_private_key().public_key())}"


def weak_key_record() -> str:
    weak = rsa.RSAPublicNumbers(65537, (1 << 511) | 0x1F3D).public_key()
    return f"v=DKIM1; k=rsa; p={_spki(weak)}"


@dataclass(frozen=True)
class Zone:
    """One sending domain: what it publishes, who carries its mail, what must fail."""

    provider: str  # NEWSLETTER_SMTP_HOST's provider: microsoft365, google, ses, other
    fails: frozenset[str]  # the doctor's failing check ids
    records: tuple[tuple[str, str, object], ...]  # (name, type, value)
    envelope: str = ""  # the mailbox's domain when it is not the From domain
    selectors: tuple[str, ...] = ()  # --dkim-selector, for relays with account selectors


def _m365(domain: str, *, spf: str | None = None, dkim: bool = True, dmarc: str | None = None):
    tenant = domain.split(".")[0] + ".onmicrosoft.com"
    label = domain.replace(".", "-")
    records: list[tuple[str, str, object]] = [
        (domain, "MX", f"{label}.mail.protection.outlook.com"),
    ]
    if spf is not False:
        records.append((domain, "TXT", spf or f"v=spf1 {M365_SPF} -all"))
    if dkim:
        for selector in ("selector1", "selector2"):
            target = f"{selector}-{label}._domainkey.{tenant}"
            records.append((f"{selector}._domainkey.{domain}", "CNAME", target))
            records.append((target, "TXT", good_key_record()))
    records.append((f"_dmarc.{domain}", "TXT", dmarc or GOOD_DMARC.format(d=domain)))
    return tuple(records)


def _without(records, name: str, kind: str):
    return tuple(r for r in records if not (r[0] == name and r[1] == kind))


def zones() -> dict[str, Zone]:
    """Domain -> zone. Built lazily: the good key is generated once per process."""
    ms = "microsoft365"
    chain = " ".join(f"include:l{n}.lookups-zone.uk" for n in range(1, 11))
    google_good = (
        ("google-good-zone.uk", "MX", "aspmx.l.google.com"),
        ("google-good-zone.uk", "TXT", "v=spf1 include:_spf.google.com ~all"),
        ("google._domainkey.google-good-zone.uk", "TXT", good_key_record()),
        ("_dmarc.google-good-zone.uk", "TXT", GOOD_DMARC.format(d="google-good-zone.uk")),
    )
    return {
        "good-zone.uk": Zone(ms, frozenset(), _m365("good-zone.uk")),
        "google-good-zone.uk": Zone("google", frozenset(), google_good),
        "no-mx-zone.uk": Zone(ms, frozenset({"mx"}), _without(_m365("no-mx-zone.uk"), "no-mx-zone.uk", "MX")),
        "no-spf-zone.uk": Zone(ms, frozenset({"spf"}), _without(_m365("no-spf-zone.uk"), "no-spf-zone.uk", "TXT")),
        "two-spf-zone.uk": Zone(
            ms, frozenset({"spf"}),
            _m365("two-spf-zone.uk") + (("two-spf-zone.uk", "TXT", "v=spf1 include:_spf.google.com ~all"),),
        ),
        "many-lookups-zone.uk": Zone(
            ms, frozenset({"spf"}), _m365("many-lookups-zone.uk", spf=f"v=spf1 {M365_SPF} {chain} -all")
        ),
        "spf-syntax-zone.uk": Zone(
            ms, frozenset({"spf"}), _m365("spf-syntax-zone.uk", spf=f"v=spf1 ip4:300.1.2.3 {M365_SPF} -all")
        ),
        "pass-all-zone.uk": Zone(ms, frozenset({"spf"}), _m365("pass-all-zone.uk", spf=f"v=spf1 {M365_SPF} +all")),
        "spf-no-provider-zone.uk": Zone(
            ms, frozenset({"spf"}), _m365("spf-no-provider-zone.uk", spf="v=spf1 include:_spf.google.com -all")
        ),
        # Microsoft 365 never given the domain's DKIM CNAMEs: it signs as *.onmicrosoft.com
        # (SPF still aligns: a warning for alignment, a failure for dkim).
        "no-dkim-zone.uk": Zone(ms, frozenset({"dkim"}), _m365("no-dkim-zone.uk", dkim=False)),
        # ... and the mailbox itself on the onmicrosoft.com domain: nothing can align.
        "onmicrosoft-zone.uk": Zone(
            ms, frozenset({"dkim", "alignment"}), _m365("onmicrosoft-zone.uk", dkim=False),
            envelope="onmicrosoft.onmicrosoft.com",
        ),
        "bad-key-zone.uk": Zone(
            "google", frozenset({"dkim"}),
            _without(google_good, "google._domainkey.google-good-zone.uk", "TXT")
            + (("google._domainkey.google-good-zone.uk", "TXT", "v=DKIM1; k=rsa; p=not*base64!"),),
        ),
        "weak-key-zone.uk": Zone(
            "google", frozenset({"dkim"}),
            _without(google_good, "google._domainkey.google-good-zone.uk", "TXT")
            + (("google._domainkey.google-good-zone.uk", "TXT", weak_key_record()),),
        ),
        "revoked-key-zone.uk": Zone(
            "google", frozenset({"dkim"}),
            _without(google_good, "google._domainkey.google-good-zone.uk", "TXT")
            + (("google._domainkey.google-good-zone.uk", "TXT", "v=DKIM1; k=rsa; p="),),
        ),
        "no-dmarc-zone.uk": Zone(
            ms, frozenset({"dmarc"}), _without(_m365("no-dmarc-zone.uk"), "_dmarc.no-dmarc-zone.uk", "TXT")
        ),
        "bad-dmarc-zone.uk": Zone(ms, frozenset({"dmarc"}), _m365("bad-dmarc-zone.uk", dmarc="v=DMARC1; p=bogus")),
        "two-dmarc-zone.uk": Zone(
            ms, frozenset({"dmarc"}),
            _m365("two-dmarc-zone.uk") + (("_dmarc.two-dmarc-zone.uk", "TXT", "v=DMARC1; p=none"),),
        ),
        # A relay that signs with its own domain and bounces to its own: nothing aligns.
        "ses-unsigned-zone.uk": Zone(
            "ses", frozenset({"dkim", "alignment"}),
            (
                ("ses-unsigned-zone.uk", "MX", "inbound-smtp.eu-west-1.amazonaws.com"),
                ("ses-unsigned-zone.uk", "TXT", "v=spf1 include:amazonses.com ~all"),
                ("_dmarc.ses-unsigned-zone.uk", "TXT", GOOD_DMARC.format(d="ses-unsigned-zone.uk")),
            ),
            selectors=("ses1",),
        ),
        "other-zone.uk": Zone(
            "other", frozenset(),
            (
                ("other-zone.uk", "MX", "mail.other-zone.uk"),
                ("other-zone.uk", "TXT", "v=spf1 mx -all"),
                ("_dmarc.other-zone.uk", "TXT", GOOD_DMARC.format(d="other-zone.uk")),
            ),
        ),
    }  # fmt: skip


def _google_good_renamed(domain: str, zone: Zone) -> Zone:
    """The Google zones above are written for google-good-zone.uk: give each its own name."""
    records = tuple(
        (name.replace("google-good-zone.uk", domain), kind, value)
        for name, kind, value in zone.records
    )
    return Zone(zone.provider, zone.fails, records, zone.envelope, zone.selectors)


def all_zones() -> dict[str, Zone]:
    found = zones()
    for domain in ("bad-key-zone.uk", "weak-key-zone.uk", "revoked-key-zone.uk"):
        found[domain] = _google_good_renamed(domain, found[domain])
    return found


# What every zone's includes reach: the providers' own SPF records and a chain of ten.
SHARED = (
    ("spf.protection.outlook.com", "TXT", "v=spf1 ip4:40.92.0.0/15 ip4:52.100.0.0/14 -all"),
    ("_spf.google.com", "TXT", "v=spf1 include:_netblocks.google.com ~all"),
    ("_netblocks.google.com", "TXT", "v=spf1 ip4:35.190.247.0/24 ~all"),
    ("amazonses.com", "TXT", "v=spf1 ip4:54.240.0.0/18 -all"),
    *((f"l{n}.lookups-zone.uk", "TXT", f"v=spf1 ip4:10.0.{n}.0/24 ~all") for n in range(1, 11)),
)


def _rr(name: str, kind: str, value: object) -> RR:
    if kind == "TXT":
        text = str(value)
        # TXT strings hold at most 255 bytes each: long keys are split, as zone files do.
        chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
        return RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=60)
    if kind == "MX":
        return RR(name, QTYPE.MX, rdata=MX(str(value), 10), ttl=60)
    if kind == "CNAME":
        return RR(name, QTYPE.CNAME, rdata=CNAME(str(value)), ttl=60)
    raise ValueError(kind)


class _Resolver(BaseResolver):
    """Answers from the records; follows CNAMEs as a recursive resolver would."""

    def __init__(self, records: list[RR]) -> None:
        self.records = records
        self.names = {rr.rname for rr in records}
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request, handler):  # noqa: ANN001 - dnslib's interface
        reply = request.reply()
        name = request.q.qname
        qtype = request.q.qtype
        self.queries.append((str(name).rstrip("."), QTYPE[qtype]))
        if name.matchSuffix(UNANSWERED):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        for _ in range(8):
            here = [rr for rr in self.records if rr.rname == name]
            direct = [rr for rr in here if rr.rtype == qtype]
            alias = [rr for rr in here if rr.rtype == QTYPE.CNAME]
            if direct:
                for rr in direct:
                    reply.add_answer(rr)
                break
            if alias and qtype != QTYPE.CNAME:
                reply.add_answer(alias[0])
                name = DNSLabel(str(alias[0].rdata.label))
                continue
            break
        if not reply.rr and name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _Quiet:
    def __getattr__(self, name: str):  # every log_* method of dnslib's logger
        return lambda *args, **kwargs: None


@dataclass
class DnsServer:
    port: int
    resolver: _Resolver
    servers: tuple[DNSServer, ...]

    @property
    def address(self) -> str:
        """What NEWSLETTER_DNS_SERVER takes."""
        return f"{HOST}:{self.port}"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()


def _free_port() -> int:
    # Free for UDP and for TCP: the server answers on both (dnspython retries a truncated
    # answer over TCP).
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port


def start() -> DnsServer:
    records = [_rr(*record) for record in SHARED]
    for zone in all_zones().values():
        records.extend(_rr(*record) for record in zone.records)
    resolver = _Resolver(records)
    port = _free_port()
    servers = tuple(
        DNSServer(resolver, address=HOST, port=port, tcp=tcp, logger=_Quiet())
        for tcp in (False, True)
    )
    for server in servers:
        server.start_thread()
    return DnsServer(port, resolver, servers)
