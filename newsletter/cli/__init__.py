"""The ``newsletter`` command line: options in, one core call, a typed result rendered out.

``commands`` holds the Typer app (options, one core call each), ``views`` what the terminal
shows, ``exits`` the one place a result or an error becomes the exit status, ``ctrlc``
which Ctrl-C presses still stop something (the others are ignored), ``reference`` (with
``refcommands``, ``refpages``, ``refmarkdown``) the documentation's Reference pages,
generated from the code.

May import: common, content, domain, feedback, mail, members, records, sending, setup, signin, web.
Nothing imports it (except ``__main__``).
"""

from .commands import app, main

__all__ = ["app", "main"]
