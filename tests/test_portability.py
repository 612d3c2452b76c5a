"""Nothing POSIX-only and no file name Windows refuses: the code must run on Windows and macOS.

These are static checks (the suite runs on Linux here); README "Platforms" says where the
tool was actually run.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest

from newsletter.common.errors import IssueError, NewsletterError
from newsletter.content.skeleton import create_issue
from newsletter.sending.campaign import eml_name
from newsletter.sending.plan import run_lock

ROOT = Path(__file__).resolve().parent.parent
POSIX_ONLY = {"fcntl", "pwd", "grp", "termios", "tty", "pty", "resource", "posix", "syslog"}
# os functions that do not exist on Windows.
POSIX_ONLY_OS = {"fork", "getuid", "geteuid", "getpgid", "killpg", "setsid", "chown", "getppid"}
WINDOWS_BAD = re.compile(r'[<>:"/\\|?*\x00-\x1f]|[. ]$')
WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?", re.IGNORECASE)


def windows_valid(name: str) -> bool:
    return (
        0 < len(name) <= 255
        and not WINDOWS_BAD.search(name)
        and not WINDOWS_RESERVED.fullmatch(name)
    )


def test_the_validator_itself() -> None:
    assert windows_valid("00001-jane@example.org.eml")
    for bad in ("a:b", "con", "CON.md", "x.", "a?b", "tab\there", "lpt1.txt", "a" * 256):
        assert not windows_valid(bad), bad


def _sources() -> list[Path]:
    return sorted((ROOT / "newsletter").rglob("*.py"))


def test_no_posix_only_modules_or_calls() -> None:
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "os" and node.attr in POSIX_ONLY_OS:
                    found.append(f"{path.name}:{node.lineno}: os.{node.attr}")
                # Only SIGINT exists on every platform (SIGTERM can be sent, not caught, on
                # Windows; SIGHUP, SIGKILL, SIGUSR1… do not exist there).
                if node.value.id == "signal" and node.attr.startswith("SIG"):
                    if node.attr not in {"SIGINT", "SIG_IGN", "SIG_DFL"}:
                        found.append(f"{path.name}:{node.lineno}: signal.{node.attr}")
                continue
            else:
                continue
            found += [f"{path.name}:{node.lineno}: {n}" for n in names if n in POSIX_ONLY]
    assert not found, found


def test_no_platform_specific_date_formats() -> None:
    # "%-d" is glibc/BSD only (Windows raises ValueError); "%#d" is Windows only.
    files = [*_sources(), *sorted((ROOT / "templates").rglob("*.j2"))]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"%[-#][a-zA-Z]", line)
    ]
    assert not found, found


def test_repository_file_names_are_valid_on_windows() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    bad = [f for f in files if not all(windows_valid(part) for part in f.split("/"))]
    assert not bad, bad
    lowered = [f.lower() for f in files]
    assert len(set(lowered)) == len(lowered), "names that differ only in case"


@pytest.mark.parametrize(
    "address",
    [
        "jane@example.org",
        '"john doe"@example.org',
        "con@example.org",
        "a|b?c*d<e>f@example.org",
        "x" * 60 + "." + "y" * 60 + "@example.org",
    ],
)
def test_dry_run_file_names_are_valid_on_windows(address: str) -> None:
    assert windows_valid(eml_name(1, address))


def test_new_refuses_a_slug_windows_cannot_store(tmp_path: Path) -> None:
    with pytest.raises(IssueError, match="'con' cannot be a file name on Windows"):
        create_issue(tmp_path / "issues", ROOT / "templates", "con", date=dt.date(2024, 1, 1))
    assert not (tmp_path / "issues").exists()


def test_send_lock_is_one_at_a_time_and_names_the_holder(tmp_path: Path) -> None:
    # filelock: a second holder is refused even within one process (flock / LockFileEx).
    with run_lock(tmp_path, "december-2023"):
        with pytest.raises(NewsletterError, match=rf"is running \(pid {os.getpid()}\)"):
            with run_lock(tmp_path, "december-2023"):
                pass
        with run_lock(tmp_path, "january-2024"):  # another issue is not blocked
            pass
    with run_lock(tmp_path, "december-2023"):  # released: the next run may start
        pass
