"""Delivery over a network with latency: pipelining, connection reuse and parallel connections.

    python benchmarks/latency.py [--rtt-ms 20] [--count 240] [--baseline-count 40]
                                 [--repeats 3] [--save latency]

Client → ``proxy.py`` (adds ``--rtt-ms`` per round trip, and two round trips to open a
connection, as TCP does) → ``sink.py --pipelining`` (STARTTLS + AUTH PLAIN, trustme CA;
offers PIPELINING and answers the commands of one read in one write, as Postfix does), all
on 127.0.0.1. Real December 2023 messages (~80 kB), as in ``send.py``. Contenders,
round-robin over ``--repeats`` rounds, medians reported:

* one new connection per message, as mail-merge tools send (connect, EHLO, STARTTLS,
  EHLO, AUTH, MAIL, RCPT, DATA, QUIT for each message: about 11 round trips);
* a bare pipelining client on 1 and on 4 connections: MAIL+RCPT+DATA in one write, then
  the message (two round trips a message), one connection per thread for all its messages,
  nothing else (no journal, no building, no reconnection): the yardstick;
* ``newsletter`` (``sending.execute``: CSV, journal, lazy build) on 1 and on 4 connections,
  each connection carrying ``smtp_max_per_connection`` (100) messages.

The round-trip bound: a pipelined message on an open connection costs 2 round trips
(MAIL+RCPT+DATA, then the message): at most ``connections / (2 × rtt)`` messages per second.
Targets: each ``newsletter`` run ≥ 95 % of the bare pipelining client on as many
connections; 4 connections ≥ 10× the new-connection-per-message rate. The % of the nominal
bound is reported too, and the round trip actually achieved (timer granularity, a busy
machine) is measured with NOOPs. Writes benchmarks/results/<save>.json.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from results import load_average, percent, ratio, save  # noqa: E402
from send import (  # noqa: E402  (same sink, contenders and members as send.py)
    PASSWORD,
    SLUG,
    USERNAME,
    _open,
    bare_loop,
    per_message_connection,
    start_sink,
    with_deliver,
    write_members,
)
from sink import HOST, make_certs  # noqa: E402

from newsletter.common.config import Settings  # noqa: E402
from newsletter.members.recipients import RecipientReport  # noqa: E402
from newsletter.sending import campaign as campaigns  # noqa: E402

ROUND_TRIPS_PER_MESSAGE = 2  # MAIL+RCPT+DATA in one write (RFC 2920), then the message
NEW_CONN = "new connection per message"
BARE_1, BARE_4 = "bare pipelining client, 1 connection", "bare pipelining client, 4 connections"
NEWS_1, NEWS_4 = "newsletter, 1 connection", "newsletter, 4 connections"
YARDSTICK = {NEWS_1: BARE_1, NEWS_4: BARE_4}
CONNECTIONS = {BARE_1: 1, BARE_4: 4, NEWS_1: 1, NEWS_4: 4}


def start_proxy(upstream: int, rtt_ms: float) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, str(HERE / "proxy.py"), "--upstream-port", str(upstream)]
    proc = subprocess.Popen(
        [*command, "--rtt-ms", str(rtt_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    word, _, port = proc.stdout.readline().strip().partition(" ")
    assert word == "ready", "the proxy did not start"
    return proc, int(port)


def measured_rtt(settings: Settings, samples: int = 30) -> list[float]:
    """Seconds per NOOP round trip through the proxy, on one open connection."""
    context = ssl.create_default_context(cafile=settings.smtp_cafile)
    times = []
    with _open(settings, context) as conn:
        for _ in range(samples):
            started = time.perf_counter()
            code, _ = conn.noop()
            times.append(time.perf_counter() - started)
            assert code == 250
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--count", type=int, default=240, help="messages per newsletter run")
    parser.add_argument("--baseline-count", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--save", default="latency", metavar="NAME")
    args = parser.parse_args()
    load_before = load_average()
    rtt = args.rtt_ms / 1000

    with tempfile.TemporaryDirectory(prefix="newsletter-latency-bench-") as tmp:
        work = Path(tmp)
        write_members(work / "members.csv", args.count)
        certdir = work / "certs"
        certdir.mkdir()
        make_certs(certdir)
        sink = start_sink("fast", str(certdir), pipelining=True)
        proxy, port = start_proxy(sink.port, args.rtt_ms)
        try:
            settings = Settings(
                issues_dir=HERE.parent / "issues",
                templates_dir=HERE.parent / "templates",
                recipients=work / "members.csv",
                suppressed=work / "suppressed.csv",
                unsubscribe_url="https://example.org/unsubscribe?email={email}&token={token}",
                unsubscribe_mailto="unsubscribe@example.org",
                secret="benchmark-secret",
                smtp_host=HOST,
                smtp_port=port,
                smtp_security="starttls",
                smtp_cafile=str(certdir / "ca.pem"),
                smtp_username=USERNAME,
                smtp_password=PASSWORD,
                smtp_timeout=30.0,
            )
            camp = campaigns.prepare(settings, SLUG)
            sender = camp.sender.address
            builder = camp.builder()
            prebuilt = [builder.build(r) for r in camp.recipients(RecipientReport())]
            baseline = prebuilt[: args.baseline_count]
            noop = measured_rtt(settings)
            bare = prebuilt[: args.count]
            runs = {
                NEW_CONN: lambda: per_message_connection(settings, sender, baseline),
                BARE_1: lambda: bare_loop(settings, sender, bare, 1, pipelined=True),
                BARE_4: lambda: bare_loop(settings, sender, bare, 4, pipelined=True),
                NEWS_1: lambda: with_deliver(camp, args.count, 1),
                NEWS_4: lambda: with_deliver(camp, args.count, 4),
            }
            rates: dict[str, list[float]] = {name: [] for name in runs}
            for round_ in range(args.repeats):
                for name, measure in runs.items():
                    rates[name].append(measure())
                    print(f"round {round_ + 1}: {name}: {rates[name][-1]:.1f} msg/s", flush=True)
        finally:
            assert proxy.stdin is not None
            proxy.stdin.close()
            proxy.wait(timeout=30)
            sink.stop()

    medians = {name: statistics.median(values) for name, values in rates.items()}
    base = medians[NEW_CONN]
    rtt_measured = statistics.median(noop)
    contenders: dict[str, object] = {}
    lines = []
    for name, values in rates.items():
        entry: dict[str, object] = {
            "msg_per_s": round(medians[name], 2),
            "runs_msg_per_s": [round(v, 2) for v in values],
        }
        line = f"{name:38} {medians[name]:7.1f} msg/s"
        if name != NEW_CONN:
            conns = CONNECTIONS[name]
            bound = conns / (ROUND_TRIPS_PER_MESSAGE * rtt)
            bound_measured = conns / (ROUND_TRIPS_PER_MESSAGE * rtt_measured)
            share = percent(medians[name], bound)
            entry.update(
                connections=conns,
                round_trip_bound_msg_per_s=round(bound, 2),
                percent_of_bound=share,
                percent_of_bound_at_measured_rtt=percent(medians[name], bound_measured),
                times_new_connection=ratio(medians[name], base),
            )
            line += f"  {ratio(medians[name], base)}× new connection; {share} % of {bound:.1f}"
            if name in YARDSTICK:
                bare_share = percent(medians[name], medians[YARDSTICK[name]])
                entry["percent_of_bare_pipelining_client"] = bare_share
                line += (
                    f"; {bare_share} % of the bare pipelining client (target ≥ 95 %: "
                    f"{'met' if bare_share >= 95 else 'MISSED'})"
                )
        contenders[name] = entry
        lines.append(line)
    four = ratio(medians[NEWS_4], base)
    reuse = ratio(medians[NEWS_1], base)
    parallel = ratio(medians[NEWS_4], medians[NEWS_1])
    lines.append(
        f"4 connections vs new connection per message: {four}× (target ≥ 10×: "
        f"{'met' if four >= 10 else 'MISSED'}) = reuse {reuse}× · parallel {parallel}×"
    )
    lines.append(
        f"round trip: {args.rtt_ms:g} ms set, {rtt_measured * 1000:.1f} ms measured (NOOP median)"
    )
    print("\n" + "\n".join(lines))
    if not args.save:
        return
    save(
        args.save,
        {
            "rtt_ms": args.rtt_ms,
            "rtt_measured_ms": {
                "median": round(rtt_measured * 1000, 2),
                "samples": [round(t * 1000, 2) for t in noop],
            },
            "security": "STARTTLS + AUTH PLAIN",
            "server": "sink.py --pipelining (offers PIPELINING; replies to one read in one write)",
            "messages_per_newsletter_run": args.count,
            "baseline_messages": args.baseline_count,
            "message_bytes": round(sum(len(m.data) for m in prebuilt) / len(prebuilt)),
            "max_per_connection": settings.smtp_max_per_connection,
            "round_trips_per_message": ROUND_TRIPS_PER_MESSAGE,
            "repeats": args.repeats,
            "contenders": contenders,
            "derived": {
                "four_connections_vs_new_connection": four,
                "reuse_factor": reuse,
                "parallel_factor": parallel,
            },
        },
        load_before=load_before,
    )


if __name__ == "__main__":
    main()
