"""Shared fixtures: a throw-away copy of the project (issues, templates, example members)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.common.config import Settings

ROOT = Path(__file__).resolve().parent.parent
# What the project fixture's members list has instead of the example's placeholder domains.
MEMBER_DOMAINS = {
    "@example.org": "@nghealth.uk",
    "@example.com": "@mmedtech.uk",
    "@example.net": "@cdhealth.uk",
}
SEED = ROOT / "tests" / "data" / "cluster-news-december-2023.txt"  # copy of shared/seeds


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out like the user's: issues/, templates/, recipients.csv; cwd is there."""
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    # The example list as a chair fills it in: the same members, on their organisations'
    # domains (`check` refuses a list still on example.org/.com/.net, the example's own).
    example = (ROOT / "recipients.csv.example").read_text(encoding="utf-8")
    for placeholder, domain in MEMBER_DOMAINS.items():
        example = example.replace(placeholder, domain)
    (tmp_path / "recipients.csv").write_text(example, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # The developer's own environment must not leak into tests.
    for name in list(__import__("os").environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return Settings(
        issues_dir=project / "issues",
        templates_dir=project / "templates",
        recipients=project / "recipients.csv",
        suppressed=project / "suppressed.csv",
        state_dir=project / ".newsletter",
        outbox=project / "outbox",
    )


@pytest.fixture
def ready(settings: Settings) -> Settings:
    """Settings that pass the pre-flight's settings checks: a real-looking sender, the
    token-only unsubscribe URL and a long secret (none of them .env.example's placeholders)."""
    return replace(
        settings,
        from_="Cluster News <news@wmhtc.co.uk>",
        unsubscribe_url="https://wmhtc.co.uk/u?t={token}",
        secret="a-long-random-test-secret",
    )


@pytest.fixture(scope="module")
def dns_server():
    """A local DNS server (dnslib) with the doctor's good and broken zones
    (tests/dns_server.py); its ``address`` is what NEWSLETTER_DNS_SERVER takes. Per module:
    its two server threads must not outlive the tests that use it (some tests count
    threads)."""
    from dns_server import start

    server = start()
    yield server
    server.stop()


@pytest.fixture
def memory_keyring():
    """The keyring library pointed at an in-memory backend (tests/memory_keyring.py) for
    the test, then back at what it was: no test reads or writes the system's keyring."""
    import keyring
    from memory_keyring import MemoryKeyring

    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)
