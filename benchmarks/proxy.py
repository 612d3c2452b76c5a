"""A latency-injecting TCP proxy on 127.0.0.1, for the delivery benchmarks.

    python benchmarks/proxy.py --upstream-port PORT [--rtt-ms 20] [--port 0]

Prints ``ready <port>`` once listening (on 127.0.0.1 only; the upstream is 127.0.0.1 too),
then relays until its standard input is closed, and prints what it relayed to stderr.

Every chunk is delivered ``rtt / 2`` after it arrived, in each direction and in order, so a
request and its reply cost one round trip, as on a real network; bandwidth is not limited.
A new connection costs what TCP costs: the proxy opens its upstream connection one and a
half round trips after accepting (SYN, SYN-ACK, ACK), so the server's greeting reaches the
client two round trips after it began to connect. TLS passes through untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

HOST = "127.0.0.1"


class Totals:
    connections = 0
    chunks = 0
    bytes = 0


async def pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, totals: Totals
) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it was read."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(65536):
            totals.chunks += 1
            totals.bytes += len(chunk)
            queue.put_nowait((time.monotonic() + delay, chunk))
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait((0.0, b""))  # after the last chunk: close when it is out
        try:
            await sender
        except (ConnectionError, OSError):
            pass


async def serve(port: int, upstream_port: int, rtt: float, stop: asyncio.Event) -> None:
    totals = Totals()
    one_way = rtt / 2

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        totals.connections += 1
        try:
            await asyncio.sleep(rtt + one_way)  # the TCP handshake the proxy hides
            server_r, server_w = await asyncio.open_connection(HOST, upstream_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            pump(client_r, server_w, one_way, totals),
            pump(server_r, client_w, one_way, totals),
        )

    server = await asyncio.start_server(handle, HOST, port)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()
    print(
        f"proxy: {totals.connections} connections, {totals.chunks} chunks, {totals.bytes} bytes",
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--upstream-port", type=int, required=True, help="on 127.0.0.1")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="round trip to add")
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def wait_for_stdin() -> None:
        sys.stdin.read()  # until the parent closes our stdin
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stdin, daemon=True).start()
    loop.run_until_complete(serve(args.port, args.upstream_port, args.rtt_ms / 1000, stop))


if __name__ == "__main__":
    main()
