"""One delivery run: parallel connections, a shared rate limit, batches, retries, journal.

Guarantee: nobody gets a second copy. Before each SMTP transaction the member is claimed in
the journal (``sending``, committed and fsynced, a few members per commit: see
:mod:`.workers`); after it, the outcome is committed. The claim is a check-and-set in one
SQLite transaction, so a member already ``sent`` (or ``sending``: unknown, maybe in flight
in another run) is skipped even if the caller passes it again.

Threads: ``settings.connections`` workers, each with its own transport (SMTP connection),
pull messages from the caller's iterator (under a lock: generators are not thread-safe).
The main thread only relays events to ``on_event`` and waits with timeouts, so Ctrl-C
(KeyboardInterrupt, delivered to the main thread only) is seen at once.
"""

from __future__ import annotations

import dataclasses
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable

from ..common.config import Settings
from ..mail.envelope import Envelope as OutgoingMessage
from ..mail.smtp import Transport
from ..records.journal import Journal
from .outcomes import DeliveryEvent, DeliveryResult, EventHandler, Outcome
from .pacing import MAX_RETRY_DELAY, Pacer, ThrottleWatch, retry_delay
from .stops import Stop, StopReason
from .workers import CLAIM_AHEAD, TROUBLE_LIMIT, Job, Run

_Pacer, _Job, _Run = Pacer, Job, Run  # the names the tests knew them by

__all__ = [
    "CLAIM_AHEAD",
    "MAX_RETRY_DELAY",
    "TROUBLE_LIMIT",
    "DeliveryEvent",
    "DeliveryResult",
    "EventHandler",
    "Outcome",
    "Stop",
    "StopReason",
    "deliver",
    "retry_delay",
]


# Seconds the main thread lets events gather between relays: waking it for each one costs
# the worker a GIL hand-off (~60 µs CPU a message at ~1,000 messages/s); a progress line
# 10 ms late is not seen, nor is a stop asked for by on_event 10 ms later.
RELAY_PAUSE = 0.01


def deliver(
    messages: Iterable[OutgoingMessage],
    *,
    slug: str,
    sender: str,
    journal: Journal,
    transport_factory: Callable[[], Transport],
    settings: Settings,
    on_event: EventHandler | None = None,
    on_stopping: Callable[[str], None] | None = None,
    resend_unknown: bool = False,
    grace: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    wanted: Callable[[OutgoingMessage], bool] | None = None,
) -> DeliveryResult:
    """Send ``messages`` (consumed lazily) for issue ``slug`` and record every outcome.

    ``transport_factory`` makes one transport per connection (``settings.connections``).
    Members ``sent`` in the journal are skipped, and ``sending`` (unknown) ones too unless
    ``resend_unknown``. On Ctrl-C, no new transaction starts; those in flight get ``grace``
    seconds (default: ``settings.smtp_timeout``; a second Ctrl-C abandons them, leaving
    them ``sending``; ``on_stopping`` is told so, in words for the user, when any are in
    flight), then the result is returned with ``interrupted=True``.

    A refusal of the *sender* (a provider's quota or block, see :mod:`newsletter.mail.refusals`)
    or a server that stops answering after messages went out ends the run at once: the
    members refused that way go back to pending (``deferred``), and the result says why in
    ``stopped``; so does any DeliveryError (sign-in, TLS) once messages went out in this run.
    Members are claimed a few at a time (CLAIM_AHEAD per connection, one fsync for them,
    one when paced); ``wanted`` is asked again just before each transaction (the caller's
    source may have built a message before its member unsubscribed): False puts the claim
    back and sends nothing.

    Raises DeliveryError (after all outcomes so far are recorded) if the server cannot be
    used before any message went out, and re-raises any error from ``messages`` or ``on_event``.
    """
    started = clock()
    run = Run(
        messages, slug=slug, sender=sender, journal=journal,
        transport_factory=transport_factory, settings=settings,
        resend_unknown=resend_unknown, clock=clock, sleep=sleep, rng=rng, wanted=wanted,
    )  # fmt: skip
    # A server's "too fast" slows the shared pacer, seen in the worker that got it.
    watch = ThrottleWatch(run.pacer, clock)
    run.transport_factory = lambda: watch.transport(transport_factory())
    grace = settings.smtp_timeout if grace is None else grace
    workers = [
        threading.Thread(target=run.work, name=f"smtp-{i + 1}", daemon=True)
        for i in range(settings.connections)
    ]
    alive = 0

    def relay(deadline: float | None, call: bool = True, notice: str = "") -> None:
        # Pass worker events on until every worker has ended (or the deadline passed).
        # get() with a timeout keeps the main thread responsive to KeyboardInterrupt.
        # The notice is said from in here, so that a Ctrl-C answering it already lands in
        # this frame, where cli/ctrlc.py lets a second press stop the wait.
        nonlocal alive
        if notice and on_stopping is not None:
            on_stopping(notice)
        while alive:
            timeout = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if timeout <= 0:
                return
            try:
                event = run.events.get(timeout=timeout)
            except queue.Empty:
                continue
            while True:  # everything waiting, then a pause: see RELAY_PAUSE
                if event is None:
                    alive -= 1
                elif call and on_event is not None:
                    on_event(event)
                try:
                    event = run.events.get_nowait()
                except queue.Empty:
                    break
            if alive:
                # Sleeping is interrupted by Ctrl-C (in this frame, as ctrlc.py expects).
                time.sleep(
                    RELAY_PAUSE
                    if deadline is None
                    else min(RELAY_PAUSE, max(0.0, deadline - time.monotonic()))
                )

    try:
        for worker in workers:
            worker.start()
            alive += 1
        relay(None)
    except KeyboardInterrupt:
        run.result.interrupted = True
        run.stop.set()
        try:
            in_flight = run.in_flight()
            # The wait can be as long as the SMTP timeout: say why nothing happens.
            notice = (
                f"Stopping: waiting up to {grace:g} s for the {in_flight} message(s) in "
                "flight; press Ctrl-C again to stop at once (they are then left unknown)"
                if in_flight
                else ""
            )
            relay(time.monotonic() + grace, notice=notice)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: do not wait for transactions in flight
    except BaseException as error:  # on_event failed: stop cleanly, then re-raise
        run.fail(error)
        relay(time.monotonic() + grace, call=False)
    run.abandoned = alive > 0  # those threads are daemons; their members stay "sending"
    if run.abandoned:
        # Their members claimed for later transactions never began: not unknown.
        run.release()

    result = run.result
    for job in [*run.pending_retries(), *run.released()]:  # stopped before a retry: deferred
        result.deferred += 1
        result.deferrals.append((job.msg.to, job.last_reply))
    result.unknown = run.unknown()
    if result.stopped is not None:
        # With several connections, others may still have finished a message after the one
        # that saw the stop: the reason counts what the whole run sent.
        result.stopped = dataclasses.replace(result.stopped, sent=result.sent)
    if not run.abandoned:  # else a worker may still write; its members stay "unknown"
        journal.flush()  # the last outcomes were committed without an fsync of their own
    result.elapsed = clock() - started
    if watch.slowed:
        result.slowed_to = run.pacer.rate
    if run.error is not None and not result.interrupted:
        raise run.error
    return result
