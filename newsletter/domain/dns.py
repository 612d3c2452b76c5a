"""DNS look-ups for the domain checks, through dnspython: the system's resolver, or the one
NEWSLETTER_DNS_SERVER names (``host`` or ``host:port``). Answers are cached per resolver
(SPF's includes ask the same names again), and a server that does not answer is a typed
:class:`DnsUnavailable`, never an empty answer: "no record" and "could not ask" call for
different fixes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Protocol

from ..common.errors import ConfigError

DEFAULT_TIMEOUT = 5.0


class DnsUnavailable(Exception):
    """The DNS server could not be asked (timeout, refused, SERVFAIL)."""


class Lookup(Protocol):
    """What the checks need from DNS (a fake in a test, a resolver otherwise)."""

    def txt(self, name: str) -> list[str]: ...

    def mx(self, name: str) -> list[str]: ...


def parse_server(value: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (IP address, port).

    A host name is resolved once, with the system's resolver (dnspython needs an address)."""
    value = value.strip()
    port = 53
    host = value
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], value)
    elif value.count(":") == 1:
        host, _, text = value.partition(":")
        port = _port(text, value)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    try:
        address = socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0][4][0]
    except (OSError, UnicodeError):
        raise ConfigError(
            f"cannot find the DNS server {host!r}",
            setting="NEWSLETTER_DNS_SERVER",
            hint="write an address such as 1.1.1.1 or 127.0.0.1:5353, or leave it empty",
        ) from None
    return str(address), port


def _port(text: str, value: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise ConfigError(
        f"{value!r} has no valid port", setting="NEWSLETTER_DNS_SERVER", hint="e.g. 127.0.0.1:5353"
    )


class DnsResolver:
    """dnspython's resolver, with a cache and typed failures."""

    def __init__(self, server: str = "", *, timeout: float = DEFAULT_TIMEOUT) -> None:
        import dns.resolver

        if server:
            address, port = parse_server(server)
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [address]
            self._resolver.port = port
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise DnsUnavailable(
                    "this computer has no DNS server configured (set NEWSLETTER_DNS_SERVER)"
                ) from None
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout
        self._cache: dict[tuple[str, str], list[str]] = {}
        self.where = server or "the system's DNS"

    def _ask(self, name: str, kind: str, read: Callable[[object], str]) -> list[str]:
        import dns.exception
        import dns.resolver

        key = (name.lower().rstrip("."), kind)
        if key in self._cache:
            return self._cache[key]
        try:
            answer = self._resolver.resolve(name, kind, raise_on_no_answer=False)
            found = [read(rdata) for rdata in answer] if answer.rrset is not None else []
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            found = []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            what = f"{self.where} did not answer for {name} {kind}: {error}"
            raise DnsUnavailable(what) from None
        except dns.exception.DNSException as error:
            raise DnsUnavailable(f"cannot look up {name} {kind}: {error}") from None
        self._cache[key] = found
        return found

    def txt(self, name: str) -> list[str]:
        """Every TXT record at ``name``, each record's strings joined (RFC 7208 3.3)."""
        return self._ask(
            name,
            "TXT",
            lambda r: b"".join(r.strings).decode("utf-8", "replace"),  # type: ignore[attr-defined]
        )

    def mx(self, name: str) -> list[str]:
        """The MX host names at ``name``, most preferred first."""
        records = self._ask(
            name,
            "MX",
            lambda r: f"{r.preference:05d} {r.exchange.to_text(omit_final_dot=True)}",  # type: ignore[attr-defined]
        )
        return [entry.split(" ", 1)[1].lower() for entry in sorted(records)]
