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

Every contender sends DATA exactly as delivery does (``newsletter.mail.smtp``'s payload: no
smtplib dot-stuffing regex, and no scan at all of a built message, which the builder marks
``dot_safe``), so the comparison is like with like: only connections, threads, the journal
and message building differ.

* ``new connection per message``: connect, EHLO, [STARTTLS, EHLO, AUTH], MAIL/RCPT/DATA,
  QUIT for each message, as mail-merge tools do; pre-built messages, one TLS context for
  the whole run (a generous baseline); ``--baseline-count`` messages (it is slow).
* ``bare smtplib, 1 connection``: MAIL/RCPT/DATA in a loop over pre-built messages, nothing
  else: the ceiling for one connection (all messages on a single connection).
* ``bare smtplib, 4 connections``: the same in 4 threads, a quarter of the messages each:
  the ceiling for 4 connections (the like-for-like yardstick of ``deliver()`` on 4).
* ``deliver(), 1 / 4 connections``: the production path, ``sending.execute``: the member
  list read and validated once beforehand (``Campaign.read_members_once``, as a real send
  does before its checks) and replayed, each message built lazily inside deliver(), the journal
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
from results import load_average, percent, ratio, save  # noqa: E402
from sink import HOST, make_certs  # noqa: E402  (needs the path above)

from newsletter.common.config import Settings  # noqa: E402
from newsletter.mail.smtp import _dot_stuffed, transport_factory  # noqa: E402
from newsletter.members.recipients import RecipientReport  # noqa: E402
from newsletter.records.journal import Journal  # noqa: E402
from newsletter.sending import campaign as campaigns  # noqa: E402
from newsletter.sending import plan as sending  # noqa: E402
from newsletter.sending.engine import deliver  # noqa: E402
from newsletter.sending.message import OutgoingMessage  # noqa: E402

# Private on purpose: the benchmark must send DATA byte for byte as delivery does.

SLUG = "december-2023"
USERNAME, PASSWORD = "bench", "bench-password"
NEW_CONN = "new connection per message"
CEILING, CEILING_4 = "bare smtplib, 1 connection", "bare smtplib, 4 connections"
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


def start_sink(
    kind: str, certdir: str | None, delay_ms: float = 0.0, *, pipelining: bool = False
) -> Sink:
    if kind == "fast":
        extra = ["--tls-dir", certdir, "--auth", f"{USERNAME}:{PASSWORD}"] if certdir else []
        extra += ["--reply-delay-ms", str(delay_ms)] if delay_ms else []
        extra += ["--pipelining"] if pipelining else []
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
    conn.ehlo_or_helo_if_needed()  # mail() does not, unlike sendmail()
    return conn


def _client_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_security != "starttls":
        return None
    return ssl.create_default_context(cafile=settings.smtp_cafile)


def send_one(conn: smtplib.SMTP, sender: str, msg: OutgoingMessage) -> None:
    """One transaction the way ``SmtpTransport`` does it (same commands, same DATA bytes)."""
    code, reply = conn.mail(sender)
    assert code == 250, reply
    code, reply = conn.rcpt(msg.to)
    assert code == 250, reply
    code, reply = conn.docmd("data")
    assert code == 354, reply
    conn.send(_dot_stuffed(msg.data, dot_safe=msg.dot_safe))
    code, reply = conn.getreply()
    assert code == 250, reply


def send_one_pipelined(conn: smtplib.SMTP, sender: str, msg: OutgoingMessage) -> None:
    """One transaction as a bare RFC 2920 client: MAIL, RCPT and DATA in one write, their
    three replies, then the message and its reply: two round trips."""
    conn.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{msg.to}>\r\nDATA\r\n".encode())
    for expected in (250, 250, 354):
        code, reply = conn.getreply()
        assert code == expected, reply
    conn.send(_dot_stuffed(msg.data, dot_safe=msg.dot_safe))
    code, reply = conn.getreply()
    assert code == 250, reply


def per_message_connection(
    settings: Settings, sender: str, messages: list[OutgoingMessage]
) -> float:
    context = _client_context(settings)
    started = time.perf_counter()
    for msg in messages:
        with _open(settings, context) as conn:
            send_one(conn, sender, msg)
    return len(messages) / (time.perf_counter() - started)


def bare_loop(
    settings: Settings,
    sender: str,
    messages: list[OutgoingMessage],
    connections: int = 1,
    *,
    pipelined: bool = False,
) -> float:
    """Messages a second over ``connections`` threads, each on one connection for all its
    messages (never reconnecting); ``pipelined``: as a bare RFC 2920 client."""
    context = _client_context(settings)
    send = send_one_pipelined if pipelined else send_one

    def loop(part: list[OutgoingMessage]) -> None:
        with _open(settings, context) as conn:
            if pipelined:
                assert conn.has_extn("pipelining"), "the server does not offer PIPELINING"
            for msg in part:
                send(conn, sender, msg)

    parts = [messages[i::connections] for i in range(connections)]
    threads = [threading.Thread(target=loop, args=(part,)) for part in parts]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(messages) / (time.perf_counter() - started)


def with_deliver(camp: campaigns.Campaign, count: int, conns: int) -> float:
    settings = replace(camp.settings, connections=conns)
    camp = replace(camp, settings=settings)
    with tempfile.TemporaryDirectory() as state, Journal.for_state_dir(state) as journal:
        plan = sending.plan(camp, journal)  # before the clock: a real send plans first too
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
            for name in ("claim", "mark_sent"):
                label = f"journal {name} ({'commit + fsync' if name == 'claim' else 'commit'})"
                setattr(journal, name, _timed(split, label, getattr(journal, name)))
        plan = sending.plan(camp, journal)
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


SOURCE = "message source: the member (read once, replayed) and the build"
BUILD = "  of which MessageBuilder.build"


def profile_deliver(
    camp: campaigns.Campaign, count: int, ceiling: float, prebuilt: list[OutgoingMessage]
) -> dict[str, object]:
    """Where deliver()'s time goes on 1 connection (parts, ablations, cProfile): printed,
    and returned for the results file (µs per message; ablations in msg/s)."""
    split = Split()
    elapsed, main_cpu = _deliver_once(camp, count, split=split)
    per = 1e6 / count
    found: dict[str, object] = {
        "timed_run_us_per_message": round(elapsed * per, 1),
        "ceiling_us_per_message": round(1e6 / ceiling, 1),
    }
    print(
        f"  -- profile: deliver(), 1 connection, {count} messages, timers on: "
        f"{count / elapsed:.0f} msg/s = {elapsed * per:.0f} µs/msg "
        f"(ceiling: {1e6 / ceiling:.0f} µs/msg); worker thread, wall time:"
    )
    parts: dict[str, float] = {}
    accounted = 0.0
    for name, seconds in split.parts.items():
        accounted += 0 if name == BUILD else seconds
        parts[name.strip()] = round(seconds * per, 1)
        print(f"     {name:50} {seconds * per:5.0f} µs/msg {percent(seconds, elapsed):5.1f} %")
    rest = elapsed - accounted
    name = "rest: deliver() bookkeeping, locks, GIL waits"
    parts[name] = round(rest * per, 1)
    print(f"     {name:50} {rest * per:5.0f} µs/msg {percent(rest, elapsed):5.1f} %")
    print(f"     (main thread relaying events: {main_cpu * per:.0f} µs CPU/msg)")
    found["worker_split_us_per_message"] = parts
    found["main_thread_cpu_us_per_message"] = round(main_cpu * per, 1)

    print("  -- ablations, deliver() 1 connection (median of 3; msg/s, µs/msg):")
    variants: dict[str, dict[str, object]] = {
        "production (members replayed + lazy build, journal fsync)": {},
        "pre-built messages, journal fsync": {"prebuilt": prebuilt},
        "members replayed + lazy build, journal on tmpfs (fsync ~free)": {
            "state_parent": "/dev/shm"
        },
        "pre-built messages, journal on tmpfs": {"prebuilt": prebuilt, "state_parent": "/dev/shm"},
    }
    ablations: dict[str, object] = {}
    for name, kwargs in variants.items():
        times = [_deliver_once(camp, count, **kwargs)[0] for _ in range(3)]  # type: ignore[arg-type]
        seconds = statistics.median(times)
        ablations[name] = {
            "msg_per_s": round(count / seconds, 1),
            "percent_of_ceiling": percent(count / seconds, ceiling),
            "runs_s": [round(t, 3) for t in times],
        }
        print(
            f"     {name:50} {count / seconds:5.0f} msg/s {seconds * per:5.0f} µs/msg "
            f"{percent(count / seconds, ceiling):5.1f} % of ceiling"
        )
    found["ablations_1_connection"] = ablations

    profiler = cProfile.Profile()
    _deliver_once(camp, count, profiler=profiler)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("  -- cProfile of the worker thread (own time; cProfile inflates Python calls):")
    for line in lines[start:]:
        print("     " + line.replace(str(ROOT) + "/", "").replace(sys.prefix, "<py>"))
    return found


# -- the run ----------------------------------------------------------------------------------


def measure_mode(
    args: argparse.Namespace,
    security: str,
    work: Path,
    cpu: dict[str, list[tuple[float, float]]],
    extra: dict[str, object],
) -> dict[str, list[float]]:
    """Rates (msg/s) per contender, one per round; ``extra`` gets the message size and,
    with ``--profile``, where deliver()'s time goes."""
    certdir = None
    if security == "starttls":
        certdir = str(work / "certs")
        Path(certdir).mkdir(exist_ok=True)
        make_certs(certdir)
    sink = start_sink(args.sink, certdir, args.rtt_ms, pipelining=args.pipelining)
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
    # As a real send does before its checks: the list read once, then replayed by the plan
    # and by delivery's message source.
    camp.read_members_once()
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
        CEILING_4: (len(prebuilt), lambda: bare_loop(settings, sender, prebuilt, 4)),
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
        extra["message_bytes"] = round(size)
        extra["max_per_connection"] = settings.smtp_max_per_connection
        if args.profile:
            ceiling = statistics.median(rates[CEILING])
            extra["profile"] = profile_deliver(camp, args.count, ceiling, prebuilt)
    finally:
        sink.stop()
    return rates


def summarise(
    security: str, rates: dict[str, list[float]], cpu: dict[str, list[tuple[float, float]]]
) -> tuple[list[str], dict[str, object]]:
    """Printed lines and the results-file record for one mode. Like compares with like:
    reuse = deliver() on 1 connection ÷ new connection per message (both one at a time);
    parallel = deliver() on 4 ÷ deliver() on 1; each deliver() against the bare loop on as
    many connections. Percentages and factors are truncated, never rounded up."""
    medians = {name: statistics.median(values) for name, values in rates.items()}
    base = medians[NEW_CONN]
    yardstick = {DELIVER_1: medians[CEILING], DELIVER_4: medians[CEILING_4]}
    label = "STARTTLS+AUTH" if security == "starttls" else "plain"
    lines = [f"{label:14} {'':30} {'msg/s':>7}  {'CPU client/sink':>15}   runs (msg/s)"]
    record: dict[str, object] = {"contenders": {}}
    for name, values in rates.items():
        client = statistics.median(c for c, _ in cpu[name])
        server = statistics.median(s for _, s in cpu[name])
        lines.append(
            f"{'':14} {name:30} {medians[name]:7.0f}  {client:7.0%}/{server:<7.0%}   "
            + ", ".join(f"{v:.0f}" for v in values)
        )
        record["contenders"][name] = {  # type: ignore[index]
            "msg_per_s": round(medians[name], 1),
            "runs_msg_per_s": [round(v, 1) for v in values],
            "cpu_client": round(client, 3),
            "cpu_sink": round(server, 3),
        }
    one, four = medians[DELIVER_1], medians[DELIVER_4]
    derived = {
        "reuse_factor": ratio(one, base),  # 1 connection reused vs one per message
        "parallel_factor": ratio(four, one),  # 4 connections vs 1
        "deliver_1_percent_of_ceiling_1": percent(one, yardstick[DELIVER_1]),
        "deliver_4_percent_of_ceiling_4": percent(four, yardstick[DELIVER_4]),
        "ceiling_4_vs_ceiling_1": ratio(medians[CEILING_4], medians[CEILING]),
    }
    record["derived"] = derived
    lines.append(
        f"{'':14} reuse (1 connection vs new connection per message): "
        f"{derived['reuse_factor']}×; parallel (4 vs 1 connection): {derived['parallel_factor']}×"
    )
    for name in (DELIVER_1, DELIVER_4):
        share = percent(medians[name], yardstick[name])
        verdict = "met" if share >= 80.0 else "MISSED"
        lines.append(
            f"{'':14} {name}: {share} % of the bare loop on as many connections "
            f"(target ≥ 80 %: {verdict})"
        )
    return lines, record


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
    parser.add_argument(
        "--pipelining", action="store_true",
        help="the fast sink offers PIPELINING (deliver() then pipelines; the bare loops never)",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="split one deliver() run")
    parser.add_argument(
        "--save", default="send", metavar="NAME",
        help="write benchmarks/results/NAME.json (default: send; '' to skip)",
    )  # fmt: skip
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
    load_before = load_average()
    started = time.perf_counter()
    lines: list[str] = []
    modes_record: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="newsletter-send-bench-") as tmp:
        work = Path(tmp)
        write_members(work / "members.csv", args.count)
        for security in modes:
            cpu: dict[str, list[tuple[float, float]]] = {}
            extra: dict[str, object] = {}
            rates = measure_mode(args, security, work, cpu, extra)
            mode_lines, record = summarise(security, rates, cpu)
            lines += mode_lines
            modes_record[security] = {**extra, **record}
    print(
        f"\nmedians of {args.repeats} rounds ({args.sink} sink, {threading.active_count()} "
        f"thread(s) left, {time.perf_counter() - started:.0f} s in all)"
    )
    print("\n".join(lines))
    if args.save:
        figures = {
            "messages": args.count,
            "baseline_messages": args.baseline_count,
            "repeats": args.repeats,
            "sink": args.sink,
            "reply_delay_ms": args.rtt_ms,
            "sink_offers_pipelining": args.pipelining,
            "data_path": "all contenders send DATA as newsletter.mail.smtp does (no dot-stuffing "
            "regex unless a line starts with '.')",
            "modes": modes_record,
        }
        save(args.save, figures, load_before=load_before)


if __name__ == "__main__":
    main()
