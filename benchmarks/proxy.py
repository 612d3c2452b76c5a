"""A latency-injecting TCP proxy on 127.0.0.1, for the delivery benchmarks.

    python benchmarks/proxy.py --upstream-port PORT [--rtt-ms 20] [--port 0]

Prints ``ready <port>`` once listening (on 127.0.0.1 only; the upstream is 127.0.0.1 too),
then relays until its standard input is closed, and prints what it relayed to stderr.

Every chunk is delivered ``rtt / 2`` after it arrived, in each direction and in order, so a
request and its reply cost one round trip, as on a real network; bandwidth is not limited.
A new connection costs what TCP costs: the proxy opens its upstream connection one and a
half round trips after accepting (SYN, SYN-ACK, ACK), so the server's greeting reaches the
client two round trips after it began to connect. TLS passes through untouched.

Why threads and ``time.sleep`` rather than asyncio: an event loop's timers wake on the
selector's millisecond-rounded timeout, which added about half a millisecond to every hop
(a "20 ms" round trip measured 21.06 ms, 5 % of the bound the benchmark compares against).
``time.sleep`` uses a high-resolution timer, so each hop is late by tens of microseconds;
``latency.py`` still measures and reports the round trip actually achieved.
"""

from __future__ import annotations

import argparse
import queue
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
CHUNK = 65536


class Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections = 0
        self.chunks = 0
        self.bytes = 0

    def add(self, size: int) -> None:
        with self.lock:
            self.chunks += 1
            self.bytes += size


def pump(src: socket.socket, dst: socket.socket, delay: float, totals: Totals) -> None:
    """Copy ``src`` to ``dst``, each chunk ``delay`` seconds after it was read; then half-close."""
    line: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def deliver() -> None:
        try:
            while True:
                due, chunk = line.get()
                if not chunk:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                dst.sendall(chunk)
            dst.shutdown(socket.SHUT_WR)  # the end of the stream arrives on time too
        except OSError:
            pass

    sender = threading.Thread(target=deliver, daemon=True)
    sender.start()
    try:
        while chunk := src.recv(CHUNK):
            totals.add(len(chunk))
            line.put((time.monotonic() + delay, chunk))
    except OSError:
        pass
    finally:
        line.put((0.0, b""))
        sender.join()


def relay(client: socket.socket, upstream_port: int, rtt: float, totals: Totals) -> None:
    one_way = rtt / 2
    time.sleep(rtt + one_way)  # the TCP handshake the proxy hides
    try:
        server = socket.create_connection((HOST, upstream_port))
    except OSError:
        client.close()
        return
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=pump, args=(server, client, one_way, totals), daemon=True)
    back.start()
    pump(client, server, one_way, totals)
    back.join()
    client.close()
    server.close()


def serve(listener: socket.socket, upstream_port: int, rtt: float, totals: Totals) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # closed: shutting down
        with totals.lock:
            totals.connections += 1
        threading.Thread(
            target=relay, args=(client, upstream_port, rtt, totals), daemon=True
        ).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--upstream-port", type=int, required=True, help="on 127.0.0.1")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="round trip to add")
    args = parser.parse_args()
    totals = Totals()
    listener = socket.create_server((HOST, args.port))
    print(f"ready {listener.getsockname()[1]}", flush=True)
    threading.Thread(
        target=serve, args=(listener, args.upstream_port, args.rtt_ms / 1000, totals), daemon=True
    ).start()
    sys.stdin.read()  # until the parent closes our stdin
    listener.close()
    print(
        f"proxy: {totals.connections} connections, {totals.chunks} chunks, {totals.bytes} bytes",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
