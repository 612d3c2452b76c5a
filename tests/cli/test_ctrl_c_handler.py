"""The process's SIGINT handler (cli.ctrlc), called in-process: which presses raise
KeyboardInterrupt, and what it leaves installed. The presses during a real send are
tested with a real process in tests/sending/test_send_ctrl_c_twice.py."""

from __future__ import annotations

import signal
import sys

import pytest

from newsletter.cli.ctrlc import PATIENCE, CtrlC, handled


def test_first_press_raises_later_ones_are_ignored_then_a_wedged_end_can_be_cut() -> None:
    handler = CtrlC()
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, sys._getframe())  # outside any delivery: as Python's own
    for _ in range(PATIENCE):
        handler(signal.SIGINT, sys._getframe())  # the run is ending: nothing raised
    assert (handler.raised, handler.ignored, handler.in_delivery) == (1, PATIENCE, False)
    with pytest.raises(KeyboardInterrupt):  # still pressing: the ending seems stuck
        handler(signal.SIGINT, sys._getframe())


def test_without_a_press_the_previous_handler_is_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with handled() as handler:
        assert isinstance(handler, CtrlC) and signal.getsignal(signal.SIGINT) is handler
    assert signal.getsignal(signal.SIGINT) is before


def test_after_a_press_sigint_stays_ignored_to_the_end_of_the_process() -> None:
    before = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt), handled() as handler:
            assert handler is not None
            handler(signal.SIGINT, sys._getframe())
        # SIG_IGN survives the interpreter's shutdown; a Python handler does not.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
