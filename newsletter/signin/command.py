"""Tokens from the IT department's own command (NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND).

As msmtp's ``passwordeval`` or git's credential helpers: the command prints an access token
on its first output line; it runs at each (re)connection, so any token source works (an
app-only client-credentials token, a company helper, a secrets manager). Run without a
shell: on POSIX the line is split like a shell would (shlex), on Windows it goes to
CreateProcess as one string, which parses it the Windows way. A shell is not needed, and
would make quoting of the setting a second, platform-specific language.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from ..common.config import Settings
from ..common.errors import SignInError
from .tokens import Grant

COMMAND_TIMEOUT = 60.0
# The command's tokens carry no expiry we could read; Microsoft and Google access tokens
# live at least an hour, so a token is re-fetched after 45 minutes on a long connection.
ASSUMED_LIFETIME = 45 * 60.0
SETTING = "NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND"


def _argv(command: str) -> str | list[str]:
    return command if os.name == "nt" else shlex.split(command)


class CommandBackend:
    fetch_every_time = True  # run at each (re)connection, as the setting promises

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def account(self) -> str | None:
        return self._settings.smtp_username or None

    def token(self, force_refresh: bool) -> Grant:
        try:
            done = subprocess.run(
                _argv(self._settings.smtp_oauth_token_command),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except (OSError, ValueError) as error:
            raise SignInError(f"{SETTING}: cannot run it ({error})") from None
        except subprocess.TimeoutExpired:
            raise SignInError(f"{SETTING}: no token within {COMMAND_TIMEOUT:g}s") from None
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            # stderr's last line says why; stdout is never shown (it may hold a token).
            why = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise SignInError(f"{SETTING}: exit status {done.returncode}: {why}")
        return Grant(self._settings.smtp_username, lines[0].strip(), ASSUMED_LIFETIME)
