"""The ``newsletter`` command line: options in, one core call, a typed result rendered out.

May import: common, content, domain, feedback, mail, members, records, sending, setup, signin, web.
Nothing imports it (except ``__main__``).
"""

from .commands import app, main

__all__ = ["app", "main"]
