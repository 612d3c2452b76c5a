"""The fixtures every room shares, each defined once: a project folder (and the factory that
lays one out), settings for it, a journal, SMTP servers on 127.0.0.1 (plain, and STARTTLS
with the test account), the session's Dovecot, the session's headless Chromium, and the
doctor's DNS server and an in-memory keyring (support/dns_server.py, memory_keyring.py). The
OAuth server and the XOAUTH2 SMTP server, used by the sign-in tests only, are in
tests/signin/conftest.py. What they are built from lives in tests/support/.

No test reads the checkout's own issues/, recipients.csv or .env (they are the chair's): a
project is built from tests/data/, and every test runs from an empty folder with no
NEWSLETTER_* setting from the environment, so a default relative path reaches nothing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support import dovecot, projects
from support.browser import chromium
from support.helpers import TickingClock
from support.smtp_servers import RecordingHandler, Server, start_server

from newsletter.common.config import Settings
from newsletter.records.journal import Journal

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def _drop_settings(patch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_"):
            patch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """For the whole session: the current folder is an empty one and the developer's own
    NEWSLETTER_* settings are gone, so nothing reads the checkout's issues/, .env or
    recipients.csv through a relative default path, nor the shell's settings."""
    with pytest.MonkeyPatch.context() as patch:
        away = tmp_path_factory.mktemp("not-a-project")
        patch.chdir(away)
        _drop_settings(patch)
        yield away


# ---- project folders ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_project() -> Callable[..., Path]:
    """The project-folder factory: ``make_project(folder, members=..., issues=...,
    templates=...)`` (support/projects.py). Session-scoped, so module-scoped fixtures can
    build their folders with it too."""
    return projects.make_project


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_project: Callable[..., Path]
) -> Path:
    """A folder laid out like the user's (issues/ with the example issue, templates/,
    recipients.csv); the current folder is there."""
    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    _drop_settings(monkeypatch)  # again: a test before may have set some
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return projects.project_settings(project)


@pytest.fixture
def ready(settings: Settings) -> Settings:
    """Settings that pass the pre-flight's settings checks: a real-looking sender, the
    token-only unsubscribe URL and a long secret (none of them .env.example's placeholders),
    and an SMTP server (a send needs one: `check` is not READY without it)."""
    return replace(
        settings,
        smtp_host="smtp.wmhtc.co.uk",
        from_="Cluster News <news@wmhtc.co.uk>",
        unsubscribe_url="https://wmhtc.co.uk/u?t={token}",
        secret="a-long-random-test-secret",
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A journal in tmp_path/state on a clock that moves one second a reading from
    2024-01-15 09:30 UTC (support.helpers.TickingClock): the times it records are exact."""
    with Journal.for_state_dir(tmp_path / "state", clock=TickingClock()) as opened:
        yield opened


# ---- servers on 127.0.0.1 ----------------------------------------------------------------


@pytest.fixture
def plain_smtp_server() -> Iterator[Server]:
    """Plain SMTP, no sign-in, recording every message."""
    with start_server(RecordingHandler()) as server:
        yield server


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Server]:
    """STARTTLS (required; its CA in tmp_path) and AUTH with the test account
    (support.smtp_servers.USERNAME/PASSWORD), recording every message: a provider's
    submission port as the chair's send meets it."""
    with start_server(RecordingHandler(), tls="starttls", auth=True, cafile_dir=tmp_path) as srv:
        yield srv


@pytest.fixture(scope="session")
def imap_server() -> Iterator[dovecot.Dovecot]:
    """The session's Dovecot (support/dovecot.py: ``running``); tests that read its INBOX
    take ``mailbox``, which empties it before and after."""
    if not dovecot.available():
        pytest.skip("dovecot-imapd not installed")
    with dovecot.running() as server:
        yield server


@pytest.fixture
def mailbox(imap_server: dovecot.Dovecot) -> Iterator[dovecot.Dovecot]:
    """The session's Dovecot with every folder of the test account empty, before and after."""
    imap_server.clear()
    yield imap_server
    imap_server.clear()


# ---- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the session (launching costs ~1 s); tests that use it are
    marked ``browser`` (support/browser.py says when they are skipped)."""
    with chromium() as launched:
        yield launched


# ---- the doctor's DNS server, a keyring of its own ---------------------------------------


@pytest.fixture(scope="module")
def dns_server():
    """A local DNS server (dnslib) with the doctor's good and broken zones
    (support/dns_server.py); its ``address`` is what NEWSLETTER_DNS_SERVER takes. Per module:
    its two server threads must not outlive the tests that use it (some tests count
    threads)."""
    from support.dns_server import start

    server = start()
    yield server
    server.stop()


@pytest.fixture
def memory_keyring():
    """The keyring library pointed at an in-memory backend (support/memory_keyring.py) for
    the test, then back at what it was: no test reads or writes the system's keyring."""
    import keyring
    from support.memory_keyring import MemoryKeyring

    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)
