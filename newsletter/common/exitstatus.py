"""How a ``newsletter`` command ends: one exit status per kind of ending, with its meaning.

Every exit goes through :class:`ExitStatus`: an error's status is decided by its class
(:mod:`.errors`), a command's typed result is mapped to one in ``cli.exits``. The page
docs/reference/exit-codes.md is generated from the members below (``cli.reference``), so
each member's ``meaning`` is the documentation a chair's script relies on: change it here.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The process exit status, with a one-line ``meaning`` for the documentation."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitStatus:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = (
        0,
        "done (also the live `preview` stopped with Ctrl-C, its normal end: `Stopped.`)",
    )
    FAILED = (
        1,
        "not all done: some messages failed or were deferred, members are left unknown or "
        "pending (a provider's limit, the daily cap, a server that went away; not those "
        "`--limit` left out on purpose); `check` found errors; `login --status`: nobody is "
        "signed in",
    )
    USAGE = (
        2,
        "bad input, settings or usage, or a send refused by its checks: nothing was sent",
    )
    INTERNAL = (
        70,
        "a bug of ours: please report it (`NEWSLETTER_DEBUG=1` shows the traceback)",
    )
    INTERRUPTED = (
        130,
        "interrupted: Ctrl-C in any command ends with one line saying so, e.g. "
        "`interrupted: nobody was signed in` during `login` (not the live `preview`: `0`)",
    )
