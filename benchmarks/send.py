"""Delivery throughput on loopback: deliver() against the mail-merge way and the ceiling.

    python benchmarks/send.py [--count 10000] [--repeats 3] [--security both]
                              [--sink fast|aiosmtpd] [--rtt-ms 0] [--profile]

About 3 minutes with the defaults on 2 cores (``--profile`` adds 14 deliver() runs per mode:
use it with ``--count 5000``). ``--rtt-ms N`` makes the fast sink answer every command N ms
late, a stand-in for the network round trip loopback lacks (connection set-up is nearly
free on loopback, so "≥ 5× new connection per message" mostly measures latency).

Messages are the real December 2023 issue (``campaign.prepare`` + ``MessageBuilder``, about
80 kB each) for generated members written to a CSV in a temporary folder. The sink runs in
its own process so that it does not share the client's GIL: by default ``sink.py`` (an
asyncio server that scans DATA with ``bytearray.find``); ``--sink aiosmtpd`` for the old
one, whose line-by-line DATA handling caps it near 500 messages/s. Nothing leaves 127.0.0.1.

Four ways to send, each in ``none`` (plain) and ``starttls`` (STARTTLS + AUTH PLAIN on every
connection, trustme test CA) mode, round-robin over ``--repeats`` rounds, medians reported:

* ``new connection per message``: connect, EHLO, [STARTTLS, EHLO, AUTH], MAIL/RCPT/DATA,
  QUIT for each message, as mail-merge tools do; pre-built messages, one TLS context for
  the whole run (a generous baseline); ``--baseline-count`` messages (it is slow).
* ``bare smtplib, one connection``: sendmail() in a loop over pre-built messages, nothing
  else: the ceiling for one connection (10,000 messages on a single connection).
* ``deliver(), 1 / 4 connections``: the production path, ``sending.execute``: the member
  CSV streamed and validated, each message built lazily inside deliver(), the journal
  (SQLite, WAL, synchronous=FULL: one fsync per claim) in a fresh temporary folder, the
  production ``smtp_max_per_connection`` (100) unless ``--max-per-connection``.

``--profile``: deliver() on 1 connection with the worker thread's time split into message
source, journal, SMTP and the rest; ablations (pre-built messages, journal on tmpfs); and
cProfile's top entries for the worker thread.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from messages import write_members  # noqa: E402  (the same generated members)
from sink import HOST, make_certs  # noqa: E402  (needs the path above)

from newsletter import campaign as campaigns  # noqa: E402
from newsletter import sending  # noqa: E402
from newsletter.config import Settings  # noqa: E402
from newsletter.delivery import deliver  # noqa: E402
from newsletter.journal import Journal  # noqa: E402
from newsletter.message import OutgoingMessage  # noqa: E402
from newsletter.recipients import RecipientReport  # noqa: E402
from newsletter.smtp import transport_factory  # noqa: E402

SLUG = "december-2023"
USERNAME, PASSWORD = "bench", "bench-password"
NEW_CONN, CEILING = "new connection per message", "bare smtplib, one connection"
DELIVER_1, DELIVER_4 = "deliver(), 1 connection", "deliver(), 4 connections"


# -- the sinks, each in its own process -----------------------------------------------------


def serve_aiosmtpd(port: int, certdir: str | None) -> None:
    import logging

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    # aiosmtpd logs a deprecation warning on every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

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
    print(f"ready {port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    controller.stop()


@dataclass
class Sink:
    kind: str
    proc: subprocess.Popen[str]
    port: int

    def count(self) -> int | None:
        """Messages the sink has accepted so far (fast sink only)."""
        if self.kind != "fast":
            return None
        with smtplib.SMTP(HOST, self.port) as conn:
            code, reply = conn.docmd("XCOUNT")
        assert code == 250, reply
        return int(reply.split()[0])

    def cpu(self) -> float:
        """CPU seconds (user + system) the sink process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def start_sink(kind: str, certdir: str | None, delay_ms: float = 0.0) -> Sink:
    if kind == "fast":
        extra = ["--tls-dir", certdir, "--auth", f"{USERNAME}:{PASSWORD}"] if certdir else []
        extra += ["--reply-delay-ms", str(delay_ms)] if delay_ms else []
        command = [sys.executable, str(HERE / "sink.py"), "--port", "0", *extra]
    else:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        extra = ["--certdir", certdir] if certdir else []
        command = [sys.executable, __file__, "--serve", str(port), *extra]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    word, _, port_text = proc.stdout.readline().strip().partition(" ")
    assert word == "ready", "the sink did not start"
    return Sink(kind, proc, int(port_text))


# -- the contenders ----------------------------------------------------------------------


def _open(settings: Settings, context: ssl.SSLContext | None) -> smtplib.SMTP:
    conn = smtplib.SMTP(HOST, settings.port, local_hostname="bench.local")
    # As SmtpTransport does: without it, TLS runs stall ~40 ms per message (delayed ACK),
    # which would make the baselines look far worse than they are.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is not None:
        conn.starttls(context=context)
        conn.login(settings.smtp_username, settings.smtp_password)
    return conn


def _client_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_security != "starttls":
        return None
    return ssl.create_default_context(cafile=settings.smtp_cafile)


def per_message_connection(
    settings: Settings, sender: str, messages: list[OutgoingMessage]
) -> float:
    context = _client_context(settings)
    started = time.perf_counter()
    for msg in messages:
        with _open(settings, context) as conn:
            conn.sendmail(sender, [msg.to], msg.data)
    return len(messages) / (time.perf_counter() - started)


def bare_loop(settings: Settings, sender: str, messages: list[OutgoingMessage]) -> float:
    context = _client_context(settings)
    started = time.perf_counter()
    with _open(settings, context) as conn:
        for msg in messages:
            conn.sendmail(sender, [msg.to], msg.data)
    return len(messages) / (time.perf_counter() - started)


def with_deliver(camp: campaigns.Campaign, count: int, conns: int) -> float:
    settings = replace(camp.settings, connections=conns)
    camp = replace(camp, settings=settings)
    with tempfile.TemporaryDirectory() as state, Journal.for_state_dir(state) as journal:
        plan = sending.SendPlan(camp, RecipientReport())
        started = time.perf_counter()
        result = sending.execute(plan, journal, transport_factory(settings))
        elapsed = time.perf_counter() - started
    assert result.sent == count, result
    return count / elapsed


# -- profiling one deliver() run ------------------------------------------------------------


@dataclass
class Split:
    """Seconds spent by the worker thread in each part of deliver()'s loop."""

    parts: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.parts[name] = self.parts.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1


def _timed(split: Split, name: str, call: Callable[..., object]) -> Callable[..., object]:
    def wrapper(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            split.add(name, time.perf_counter() - started)

    return wrapper


def _deliver_once(
    camp: campaigns.Campaign,
    count: int,
    *,
    state_parent: str | None = None,
    prebuilt: list[OutgoingMessage] | None = None,
    split: Split | None = None,
    profiler: cProfile.Profile | None = None,
) -> tuple[float, float]:
    """One deliver() on 1 connection: (seconds, main-thread CPU seconds).

    ``state_parent``: where the journal's temporary folder goes (``/dev/shm``: no fsync
    cost). ``prebuilt``: send these instead of streaming the CSV and building lazily.
    ``split``: time the worker's parts. ``profiler``: cProfile the worker thread.
    """
    settings = replace(camp.settings, connections=1)
    camp = replace(camp, settings=settings)
    make_transport = transport_factory(settings)

    class Wrapped:
        """The production transport; timed and/or profiled in the worker thread."""

        def __init__(self) -> None:
            self.inner = make_transport()
            self.send = self.inner.send
            if split is not None:
                self.send = _timed(split, "SMTP send (smtplib, TLS, waiting)", self.inner.send)
            if profiler is not None:
                profiler.enable()  # made in the worker thread; cProfile sees only that one

        def connect(self) -> None:
            self.inner.connect()

        def close(self) -> None:  # deliver() calls it once, when the worker ends
            if profiler is not None:
                profiler.disable()
            self.inner.close()

    def timed_source(messages: Iterator[OutgoingMessage]) -> Iterator[OutgoingMessage]:
        assert split is not None
        while True:
            started = time.perf_counter()
            try:
                msg = next(messages)
            except StopIteration:
                return
            split.add(SOURCE, time.perf_counter() - started)
            yield msg

    if split is not None:
        builder = camp.builder()
        builder.build = _timed(split, BUILD, builder.build)  # type: ignore[method-assign]
        camp.builder = lambda subject_prefix="": builder  # type: ignore[method-assign]
    with (
        tempfile.TemporaryDirectory(dir=state_parent) as state,
        Journal.for_state_dir(state) as journal,
    ):
        if split is not None:
            for name in ("mark_sending", "mark_sent"):
                label = (
                    f"journal {name} ({'commit + fsync' if name == 'mark_sending' else 'commit'})"
                )
                setattr(journal, name, _timed(split, label, getattr(journal, name)))
        plan = sending.SendPlan(camp, RecipientReport())
        main_cpu = time.thread_time()
        started = time.perf_counter()
        source = iter(prebuilt) if prebuilt is not None else sending.pending_messages(plan, journal)
        result = deliver(
            timed_source(source) if split is not None else source,
            slug=SLUG,
            sender=camp.sender.address,
            journal=journal,
            transport_factory=Wrapped,
            settings=settings,
        )
        elapsed = time.perf_counter() - started
        main_cpu = time.thread_time() - main_cpu
    assert result.sent == count, result
    return elapsed, main_cpu


SOURCE = "message source: CSV row, validation and build"
BUILD = "  of which MessageBuilder.build"


def profile_deliver(
    camp: campaigns.Campaign, count: int, ceiling: float, prebuilt: list[OutgoingMessage]
) -> None:
    """Where deliver()'s time goes on 1 connection: parts, ablations, cProfile."""
    split = Split()
    elapsed, main_cpu = _deliver_once(camp, count, split=split)
    per = 1e6 / count
    print(
        f"  -- profile: deliver(), 1 connection, {count} messages, timers on: "
        f"{count / elapsed:.0f} msg/s = {elapsed * per:.0f} µs/msg "
        f"(ceiling: {1e6 / ceiling:.0f} µs/msg); worker thread, wall time:"
    )
    accounted = 0.0
    for name, seconds in split.parts.items():
        accounted += 0 if name == BUILD else seconds
        print(f"     {name:50} {seconds * per:5.0f} µs/msg {seconds / elapsed:4.0%}")
    rest = elapsed - accounted
    name = "rest: deliver() bookkeeping, locks, GIL waits"
    print(f"     {name:50} {rest * per:5.0f} µs/msg {rest / elapsed:4.0%}")
    print(f"     (main thread relaying events: {main_cpu * per:.0f} µs CPU/msg)")

    print("  -- ablations, deliver() 1 connection (median of 3; msg/s, µs/msg):")
    variants: dict[str, dict[str, object]] = {
        "production (CSV + lazy build, journal fsync)": {},
        "pre-built messages, journal fsync": {"prebuilt": prebuilt},
        "CSV + lazy build, journal on tmpfs (fsync ~free)": {"state_parent": "/dev/shm"},
        "pre-built messages, journal on tmpfs": {"prebuilt": prebuilt, "state_parent": "/dev/shm"},
    }
    for name, kwargs in variants.items():
        times = [_deliver_once(camp, count, **kwargs)[0] for _ in range(3)]  # type: ignore[arg-type]
        seconds = statistics.median(times)
        print(
            f"     {name:50} {count / seconds:5.0f} msg/s {seconds * per:5.0f} µs/msg "
            f"{count / seconds / ceiling:4.0%} of ceiling"
        )

    profiler = cProfile.Profile()
    _deliver_once(camp, count, profiler=profiler)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("  -- cProfile of the worker thread (own time; cProfile inflates Python calls):")
    for line in lines[start:]:
        print("     " + line.replace(str(ROOT) + "/", "").replace(sys.prefix, "<py>"))


# -- the run ----------------------------------------------------------------------------------


def measure_mode(
    args: argparse.Namespace, security: str, work: Path, cpu: dict[str, list[tuple[float, float]]]
) -> dict[str, list[float]]:
    certdir = None
    if security == "starttls":
        certdir = str(work / "certs")
        Path(certdir).mkdir(exist_ok=True)
        make_certs(certdir)
    sink = start_sink(args.sink, certdir, args.rtt_ms)
    settings = Settings(
        issues_dir=ROOT / "issues",
        templates_dir=ROOT / "templates",
        recipients=work / "members.csv",
        suppressed=work / "suppressed.csv",  # absent: nobody suppressed
        unsubscribe_url="https://example.org/unsubscribe?email={email}&token={token}",
        unsubscribe_mailto="unsubscribe@example.org",
        secret="benchmark-secret",
        smtp_host=HOST,
        smtp_port=sink.port,
        smtp_security=security,
        smtp_cafile=f"{certdir}/ca.pem" if certdir else "",
        smtp_username=USERNAME if certdir else "",
        smtp_password=PASSWORD if certdir else "",
    )
    if args.max_per_connection:
        settings = replace(settings, smtp_max_per_connection=args.max_per_connection)
    camp = campaigns.prepare(settings, SLUG)
    sender = camp.sender.address
    builder = camp.builder()
    prebuilt = [builder.build(r) for r in camp.recipients(RecipientReport())]
    assert len(prebuilt) == args.count
    baseline = prebuilt[: args.baseline_count]
    size = sum(len(m.data) for m in prebuilt) / len(prebuilt)
    print(
        f"\n== security {security}{' + AUTH' if certdir else ''}, {args.sink} sink: "
        f"{args.count} messages of {size / 1000:.0f} kB (real December 2023 builder), "
        f"{settings.smtp_max_per_connection} per connection in deliver(); "
        f"{f'{args.rtt_ms:g} ms per reply; ' if args.rtt_ms else ''}"
        f"new connection per message: {len(baseline)} messages",
        flush=True,
    )
    runs: dict[str, tuple[int, Callable[[], float]]] = {
        NEW_CONN: (len(baseline), lambda: per_message_connection(settings, sender, baseline)),
        CEILING: (len(prebuilt), lambda: bare_loop(settings, sender, prebuilt)),
        DELIVER_1: (args.count, lambda: with_deliver(camp, args.count, 1)),
        DELIVER_4: (args.count, lambda: with_deliver(camp, args.count, 4)),
    }
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for name in runs:
        cpu[name] = []
    try:
        for _ in range(args.repeats):
            for name, (expected, measure) in runs.items():
                before = sink.count()
                client, server, wall = time.process_time(), sink.cpu(), time.perf_counter()
                rates[name].append(measure())
                wall = time.perf_counter() - wall
                cpu[name].append(
                    ((time.process_time() - client) / wall, (sink.cpu() - server) / wall)
                )
                after = sink.count()
                if before is not None and after is not None:
                    assert after - before == expected, (name, before, after, expected)
        if args.profile:
            profile_deliver(camp, args.count, statistics.median(rates[CEILING]), prebuilt)
    finally:
        sink.stop()
    return rates


def report(
    security: str, rates: dict[str, list[float]], cpu: dict[str, list[tuple[float, float]]]
) -> list[str]:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    base, ceiling = medians[NEW_CONN], medians[CEILING]
    label = "STARTTLS+AUTH" if security == "starttls" else "plain"
    lines = [
        f"{label:14} {'':30} {'msg/s':>7}  {'× new-conn':>10}  {'% ceiling':>9}  "
        f"{'CPU client/sink':>15}   runs (msg/s)",
    ]
    for name, values in rates.items():
        rate = medians[name]
        client = statistics.median(c for c, _ in cpu[name])
        server = statistics.median(s for _, s in cpu[name])
        lines.append(
            f"{'':14} {name:30} {rate:7.0f}  {rate / base:9.1f}×  {rate / ceiling:9.0%}  "
            f"{client:7.0%}/{server:<7.0%}   " + ", ".join(f"{v:.0f}" for v in values)
        )
    for name in (DELIVER_1, DELIVER_4):
        rate = medians[name]
        fast = "met" if rate >= 5 * base else "NOT met"
        near = "met" if rate >= 0.8 * ceiling else "NOT met"
        lines.append(
            f"{'':14} {name}: ≥ 5× new connection {fast} ({rate / base:.1f}×), "
            f"≥ 80 % of ceiling {near} ({rate / ceiling:.0%})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-count", type=int, default=1_000)
    parser.add_argument("--security", choices=["none", "starttls", "both"], default="both")
    parser.add_argument("--sink", choices=["fast", "aiosmtpd"], default="fast")
    parser.add_argument(
        "--max-per-connection", type=int, default=0,
        help="deliver()'s smtp_max_per_connection (default: the production default)",
    )  # fmt: skip
    parser.add_argument(
        "--rtt-ms", type=float, default=0.0,
        help="fast sink only: delay every reply by this much (a network round trip)",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="split one deliver() run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_aiosmtpd(args.serve, args.certdir)
        return
    args.baseline_count = min(args.baseline_count, args.count)
    if args.rtt_ms and args.sink != "fast":
        parser.error("--rtt-ms needs the fast sink")

    modes = ["none", "starttls"] if args.security == "both" else [args.security]
    started = time.perf_counter()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="newsletter-send-bench-") as tmp:
        work = Path(tmp)
        write_members(work / "members.csv", args.count)
        for security in modes:
            cpu: dict[str, list[tuple[float, float]]] = {}
            lines += report(security, measure_mode(args, security, work, cpu), cpu)
    print(
        f"\nmedians of {args.repeats} rounds ({args.sink} sink, {threading.active_count()} "
        f"thread(s) left, {time.perf_counter() - started:.0f} s in all)"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
