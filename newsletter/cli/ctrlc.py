"""Ctrl-C (SIGINT) for a whole ``newsletter`` process: a press that can still stop
something raises KeyboardInterrupt, as Python's own handler does; a press that comes while
the run is already ending for an earlier one is ignored.

Why: the first press raises wherever the main thread is, and the command ends with
"interrupted" and ExitStatus.INTERRUPTED. During a send's delivery
(:func:`newsletter.sending.engine.deliver`) the first press begins the orderly stop, and a
second one, while the engine waits for the messages in flight, abandons that wait; the
engine catches both. Any other press has nothing left to stop: with Python's handler it
only cut the ending short wherever it landed (in the engine's own wrapping up, the summary
half printed, the journal closing, or after the command returned, where nothing catches
it and the process died by SIGINT instead of ending with ExitStatus.INTERRUPTED).

Where the engine is is read from the interrupted frame's stack when the press arrives,
not from a flag set after the fact: a press landing between the engine's return and any
such flag would still be raised.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import CodeType, FrameType

ENGINE = "newsletter.sending.engine"
WAIT = "relay"  # deliver()'s inner function that waits for its workers (and catches Ctrl-C)
PATIENCE = 3  # presses ignored before a wedged ending may be cut short after all


class CtrlC:
    """The SIGINT handler :func:`handled` sets; called as ``handler(signum, frame)``."""

    def __init__(self) -> None:
        self.raised = 0  # KeyboardInterrupts raised
        self.in_delivery = False  # the first came while the engine delivered
        self.ignored = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not self.raised:
            self.in_delivery = _running(frame, _deliver())
        elif not (self.raised == 1 and self.in_delivery and _running(frame, _waits())):
            if self.ignored < PATIENCE:
                self.ignored += 1  # the run is ending for an earlier press: let it
                return
        self.raised += 1
        raise KeyboardInterrupt


def _deliver() -> tuple[CodeType, ...]:
    """The engine's deliver(), if loaded (not loaded: no delivery has begun)."""
    engine = sys.modules.get(ENGINE)
    return (engine.deliver.__code__,) if engine is not None else ()


def _waits() -> tuple[CodeType, ...]:
    """Where the engine waits for its workers and catches a Ctrl-C; all of deliver() if
    that cannot be found (then a second press may cut its wrapping up short, as before)."""
    found = tuple(
        const
        for code in _deliver()
        for const in code.co_consts
        if isinstance(const, CodeType) and const.co_name == WAIT
    )
    return found or _deliver()


def _running(frame: FrameType | None, codes: tuple[CodeType, ...]) -> bool:
    """Whether one of ``codes`` is on ``frame``'s stack."""
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


@contextmanager
def handled() -> Iterator[CtrlC | None]:
    """Run the block with a :class:`CtrlC` as the SIGINT handler (None where Python cannot
    set one: not the main thread, an embedding host that owns its signals).

    Afterwards the handler it replaced is back, unless a press came: then the process is
    ending for it, and SIGINT is ignored to its very end. SIG_IGN, not this handler: when
    the interpreter shuts down it puts back the system's default for a Python handler (a
    press then kills the process by SIGINT), and keeps an ignored signal ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    handler = CtrlC()
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):
        yield None
        return
    try:
        yield handler
    finally:
        if handler.raised:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:
            # None: a handler not set from Python (possible on Windows); Python's default.
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)
