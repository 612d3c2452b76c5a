"""Real ``python -m newsletter`` processes, killed with SIGKILL at chosen points.

A point is a file-system step the process takes inside the project folder: opening a file
(to read or write), renaming, removing, creating a folder, opening a SQLite file. An audit
hook (``sys.addaudithook``) counts those steps and the process kills itself *at* step N,
before the step happens: no clean-up, no ``finally``, no flush, as ``kill -9`` or a power
cut from the program's point of view. Running with N = 1, 2, … therefore stops the command
between any two of its steps. :func:`kill_after` adds kills at a moment in time, which can
fall in the middle of a step (a write half done).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]  # the checkout: its code goes on PYTHONPATH

# The hook runs in the child before newsletter is imported. Steps outside CRASH_ROOT
# (Python's own imports, the templates of the checkout) are not counted.
_HOOK = r"""
import os, signal, sys
_root = os.path.realpath(os.environ["CRASH_ROOT"])
_at = int(os.environ.get("CRASH_AT") or 0)
_log = os.environ.get("CRASH_LOG")
_steps = []
_EVENTS = {"open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree",
           "shutil.copyfile", "shutil.copymode", "shutil.copystat", "sqlite3.connect"}

def _hook(event, args):
    if event not in _EVENTS or not args:
        return
    path = args[0]
    if isinstance(path, int) or path is None:
        return
    try:
        path = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if not path.startswith(_root):
        return
    if event == "open":  # (path, mode, flags): a write, or a read that changes nothing
        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
        event = "write" if len(args) > 2 and isinstance(args[2], int) and args[2] & writes else "read"
    _steps.append(event + " " + os.path.relpath(path, _root))
    if len(_steps) == _at:
        os.kill(os.getpid(), signal.SIGKILL)

if _log:
    import atexit
    def _write():
        with open(_log, "w", encoding="utf-8") as out:  # after the run: not a step
            out.write("\n".join(_steps))
    atexit.register(_write)
sys.addaudithook(_hook)
import runpy
sys.argv = ["newsletter", *sys.argv[1:]]
runpy.run_module("newsletter", run_name="__main__", alter_sys=True)
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def environment(project: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: this checkout's package first, no NEWSLETTER_ setting
    of the developer's, the project as the folder whose steps are counted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "CRASH_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CRASH_ROOT"] = str(project)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-c", _HOOK, *args]


def steps(project: Path, args: Sequence[str], log: Path) -> tuple[Run, list[str]]:
    """Run ``newsletter ARGS`` to the end; the steps it took, in order ("write NAME",
    "read NAME", "os.rename NAME", ...: what, and the path inside the project)."""
    run = _run(project, args, {"CRASH_LOG": str(log)})
    return run, [line for line in log.read_text(encoding="utf-8").splitlines() if line]


def changes_state(step: str) -> bool:
    """Whether a step can change what is on disk (a read cannot)."""
    return not step.startswith("read ")


def kill_points(taken: Sequence[str]) -> list[int]:
    """The steps (1-based) to kill at so as to stop the run in each different state of the
    disk: before the first step, and just before and just after every step that changes
    something (kills between two reads would find the same files as the kill before them)."""
    points = {1}
    for number, step in enumerate(taken, start=1):
        if changes_state(step) and (number == 1 or taken[number - 2] != step):
            points.update({number, number + 1})  # (a step repeated at once: the same state)
    return sorted(p for p in points if p <= len(taken))


def in_parallel(work: Callable[[T], Run], items: Sequence[T]) -> list[Run]:
    """``work`` on each item, a few processes at a time (each item its own project copy)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        return list(pool.map(work, items))


def kill_at(project: Path, args: Sequence[str], step: int) -> Run:
    """Run ``newsletter ARGS``, killed (SIGKILL) just before its ``step``-th step."""
    return _run(project, args, {"CRASH_AT": str(step)})


def run(project: Path, args: Sequence[str]) -> Run:
    """Run ``newsletter ARGS`` to the end (the hook counts, kills nothing)."""
    return _run(project, args, {})


def kill_after(project: Path, args: Sequence[str], seconds: float) -> Run:
    """Run ``newsletter ARGS`` and SIGKILL it ``seconds`` after it started (if still running)."""
    process = subprocess.Popen(
        command(args), cwd=project, env=environment(project),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(seconds)  # where the kill lands, not a timing assertion
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    return Run(process.returncode, out, err)


def _run(project: Path, args: Sequence[str], extra: dict[str, str]) -> Run:
    done = subprocess.run(
        command(args), cwd=project, env=environment(project, extra),
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr)


def describe(run: Run) -> str:
    return json.dumps({"code": run.returncode, "out": run.stdout[-800:], "err": run.stderr[-800:]})


def make_project(folder: Path, members: Sequence[str] = ()) -> Path:
    """A project folder of the test's own: the product's templates, an empty issues
    folder, and a members list of ``members`` (nothing of the checkout's issues or lists)."""
    from support.projects import copy_templates

    folder.mkdir(parents=True, exist_ok=True)
    copy_templates(folder / "templates")
    (folder / "issues").mkdir()
    rows = ["email,first_name", *(f"{a},{a.split('@')[0].title()}" for a in members)]
    (folder / "recipients.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
