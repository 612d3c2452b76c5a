"""Delivery throughput on loopback: deliver() against the mail-merge way and the ceiling.

    python benchmarks/send.py [--count 10000] [--repeats 3] [--size 60000]

The sink (aiosmtpd, a handler that only answers "250 OK") runs in its own process so that it
does not share the client's GIL. Four ways to send the same messages:

* ``new connection per message``: connect, EHLO, MAIL/RCPT/DATA, QUIT for each message (the
  way mailmerge sends); measured on at most ``--baseline-count`` messages (it is slow).
* ``bare smtplib, one connection``: sendmail() in a loop over pre-built messages, nothing
  else: the ceiling for one connection.
* ``deliver(), 1 connection`` and ``deliver(), 4 connections``: the real path, with the
  journal (SQLite, WAL, synchronous=FULL) in a temporary folder, messages built lazily.

Replace :func:`fake_messages` by the real message builder when it exists.
"""

from __future__ import annotations

import argparse
import email.policy
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from newsletter.config import Settings  # noqa: E402  (needs the path above)
from newsletter.delivery import deliver  # noqa: E402
from newsletter.journal import Journal  # noqa: E402
from newsletter.message import OutgoingMessage  # noqa: E402
from newsletter.smtp import transport_factory  # noqa: E402

HOST = "127.0.0.1"
SENDER = "news@healthtech-cluster.example"
MessageSource = Callable[[int, int], Iterator[OutgoingMessage]]


def _template(size: int) -> bytes:
    """A realistic multipart/alternative newsletter of about ``size`` bytes, built once."""
    paragraph = (
        "The cluster's medtech accelerator opens its spring call: start-ups working on "
        "remote monitoring, clinical decision support and hospital logistics can apply "
        "until 31 March. Mentoring by partner hospitals, 50 000 € in vouchers. "
    )
    text = "\n\n".join(paragraph for _ in range(max(1, size // 5 // len(paragraph))))
    html_block = (
        '<tr><td style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;'
        'font-size:16px;line-height:24px;color:#1f2933;">'
        f'<p style="margin:0 0 12px 0;">{paragraph}</p>'
        '<a href="https://cluster.example/news?utm_source=newsletter&amp;utm_medium=email" '
        'style="color:#0b6e99;text-decoration:underline;">Read more</a></td></tr>\n'
    )
    rows = "".join(html_block for _ in range(max(1, size * 3 // 4 // len(html_block))))
    html = f'<!DOCTYPE html><html><body><table role="presentation">{rows}</table></body></html>'
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"HealthTech Cluster <{SENDER}>"
    msg["To"] = "@@TO@@"
    msg["Subject"] = "Cluster news — March: accelerator call, events, members"
    msg["Date"] = "Tue, 05 Mar 2024 09:00:00 +0100"
    msg["Message-ID"] = "@@MID@@"
    msg["List-Id"] = "Cluster news <news.healthtech-cluster.example>"
    msg["List-Unsubscribe"] = "<https://cluster.example/unsubscribe?t=@@TOKEN@@>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def fake_messages(count: int, size: int) -> Iterator[OutgoingMessage]:
    """Stand-in for the real builder: one template, a cheap fill-in per member."""
    template = _template(size)
    for row in range(2, count + 2):
        to = f"member{row:06d}@example.org"
        mid = f"<{uuid.uuid4().hex}@healthtech-cluster.example>"
        data = (
            template.replace(b"@@TO@@", to.encode())
            .replace(b"@@MID@@", mid.encode())
            .replace(b"@@TOKEN@@", uuid.uuid4().hex.encode())
        )
        yield OutgoingMessage(to, row, mid, data)


# -- the sink, in its own process ------------------------------------------------------


USERNAME, PASSWORD = "bench", "bench-password"


def serve(port: int, certdir: str | None) -> None:
    import logging
    import ssl

    from aiosmtpd.controller import Controller

    # aiosmtpd logs a deprecation warning on every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    from aiosmtpd.smtp import AuthResult

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    def authenticator(server: object, session: object, envelope: object, mechanism: str,
                      data: object) -> AuthResult:  # fmt: skip
        ok = getattr(data, "password", None) == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, object] = {}
    if certdir:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(f"{certdir}/server.pem")
        kwargs = {
            "tls_context": context,
            "require_starttls": True,
            "authenticator": authenticator,
            "auth_required": True,
        }
    controller = Controller(Sink(), hostname=HOST, port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    controller.stop()


def start_sink(certdir: str | None) -> tuple[subprocess.Popen[str], int]:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    extra = ["--certdir", certdir] if certdir else []
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, port


# -- the contenders ----------------------------------------------------------------------


def _open(settings: Settings) -> smtplib.SMTP:
    conn = smtplib.SMTP(HOST, settings.port, local_hostname="bench.local")
    # As SmtpTransport does: without it, TLS runs stall ~40 ms per message (delayed ACK),
    # which would make the baselines look far worse than they are.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if settings.smtp_security == "starttls":
        import ssl

        conn.starttls(context=ssl.create_default_context(cafile=settings.smtp_cafile))
        conn.login(settings.smtp_username, settings.smtp_password)
    return conn


def per_message_connection(settings: Settings, messages: list[OutgoingMessage]) -> float:
    started = time.perf_counter()
    for msg in messages:
        with _open(settings) as conn:
            conn.sendmail(SENDER, [msg.to], msg.data)
    return len(messages) / (time.perf_counter() - started)


def bare_loop(settings: Settings, messages: list[OutgoingMessage]) -> float:
    started = time.perf_counter()
    with _open(settings) as conn:
        for msg in messages:
            conn.sendmail(SENDER, [msg.to], msg.data)
    return len(messages) / (time.perf_counter() - started)


def with_deliver(
    settings: Settings, source: Iterator[OutgoingMessage], count: int, conns: int
) -> float:
    settings = replace(settings, connections=conns)
    with tempfile.TemporaryDirectory() as state, Journal.for_state_dir(state) as journal:
        started = time.perf_counter()
        result = deliver(
            source,
            slug="bench",
            sender=SENDER,
            journal=journal,
            transport_factory=transport_factory(settings),
            settings=settings,
        )
        elapsed = time.perf_counter() - started
    assert result.sent == count, result
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=60_000, help="approximate message bytes")
    parser.add_argument("--baseline-count", type=int, default=1_000)
    parser.add_argument(
        "--security", choices=["none", "starttls"], default="none",
        help="starttls: STARTTLS + AUTH on every connection (test CA from trustme)",
    )  # fmt: skip
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.certdir)
        return

    source: MessageSource = fake_messages
    prebuilt = list(source(args.count, args.size))
    baseline = prebuilt[: args.baseline_count]
    print(
        f"{args.count} messages of {len(prebuilt[0].data) / 1000:.0f} KB, security "
        f"{args.security}, median of {args.repeats} "
        f"(new connection per message: {len(baseline)} messages)"
    )
    certs = tempfile.TemporaryDirectory()
    certdir = None
    if args.security == "starttls":
        import trustme

        ca = trustme.CA()
        ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(f"{certs.name}/server.pem")
        ca.cert_pem.write_to_path(f"{certs.name}/ca.pem")
        certdir = certs.name
    proc, port = start_sink(certdir)
    settings = Settings(
        smtp_host=HOST,
        smtp_port=port,
        smtp_security=args.security,
        smtp_cafile=f"{certs.name}/ca.pem" if certdir else "",
        smtp_username=USERNAME if certdir else "",
        smtp_password=PASSWORD if certdir else "",
        smtp_max_per_connection=1000,
    )
    try:
        runs: dict[str, Callable[[], float]] = {
            "new connection per message": lambda: per_message_connection(settings, baseline),
            "bare smtplib, one connection": lambda: bare_loop(settings, prebuilt),
            "deliver(), 1 connection": lambda: with_deliver(
                settings, source(args.count, args.size), args.count, 1
            ),
            "deliver(), 4 connections": lambda: with_deliver(
                settings, source(args.count, args.size), args.count, 4
            ),
        }
        medians: dict[str, float] = {}
        for name, measure in runs.items():
            rates = [measure() for _ in range(args.repeats)]
            medians[name] = statistics.median(rates)
            print(
                f"  {name:30} {medians[name]:8.0f} msg/s   ({', '.join(f'{r:.0f}' for r in rates)})"
            )
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
        certs.cleanup()

    base = medians["new connection per message"]
    ceiling = medians["bare smtplib, one connection"]
    for name in ("deliver(), 1 connection", "deliver(), 4 connections"):
        rate = medians[name]
        ratio = f"{rate / base:.1f}× new connection per message"
        print(f"{name}: {ratio}, {rate / ceiling:.0%} of ceiling")


if __name__ == "__main__":
    main()
