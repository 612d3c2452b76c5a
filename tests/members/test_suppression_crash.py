"""``kill -9`` at any point of ``unsubscribe`` or ``resubscribe`` leaves the suppression list
whole: the old list or the new one, never a row cut short or a list half written; and the
next run works (issue 21, item 5). Real processes, killed by SIGKILL in every state their
file steps can leave the disk in (see crashpoints.py) and at moments in time; the next run
is the real command run in this process (it is not the one being killed)."""

from __future__ import annotations

import csv
import os
import random
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from support.crashpoints import (
    describe,
    in_parallel,
    kill_after,
    kill_at,
    kill_points,
    make_project,
    run,
    steps,
)
from support.helpers import run_cli

from newsletter.members.suppression import load_suppressed

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX; Windows has none")

MEMBERS = [f"member{n}@nghealth.uk" for n in range(6)]
# Many rows, so that writing the list takes more than an instant of the run.
EARLIER = [f"earlier{n}@mmedtech.uk" for n in range(800)]
START = set(EARLIER) | {"member1@nghealth.uk"}
CASES = {
    "unsubscribe": (["unsubscribe", "member4@nghealth.uk"], START | {"member4@nghealth.uk"}),
    "resubscribe": (["resubscribe", "member1@nghealth.uk"], START - {"member1@nghealth.uk"}),
}


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_project(tmp_path_factory.mktemp("original") / "cluster", MEMBERS)
    rows = [f"{a},bounced,2026-01-05" for a in sorted(START)]
    (folder / "suppressed.csv").write_text(
        "email,reason,date\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return folder


def _copy(original: Path, where: Path) -> Path:
    shutil.copytree(original, where)
    return where


def _whole_list(path: Path) -> set[str]:
    """The list's addresses, once it is shown to be whole: the header, and every row with
    its three fields (a row cut short has fewer, or an address that is another set's)."""
    assert load_suppressed(path)  # parses, every address valid
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["email", "reason", "date"]
    assert all(len(row) == 3 and row[2].startswith("20") for row in rows[1:]), rows[-1]
    return {row[0] for row in rows[1:]}


@pytest.fixture(autouse=True)
def _no_settings_of_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("NEWSLETTER_")]:
        monkeypatch.delenv(name)


def _after_the_next_run(project: Path, args: list[str], expected: set[str]) -> None:
    here = Path.cwd()
    os.chdir(project)
    try:
        again = run_cli(args)
    finally:
        os.chdir(here)
    if args[0] == "resubscribe" and again.returncode != 0:
        # The kill came after the list was written: taken off already, and it says so.
        assert "not on the suppression list" in again.stderr, again
    else:
        assert again.returncode == 0, again
    assert _whole_list(project / "suppressed.csv") == expected
    assert not list(project.glob(".*.tmp"))  # a killed writer's temporary file is swept
    log = project / ".newsletter" / "feedback.sqlite3"
    if log.exists():
        with sqlite3.connect(log) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize("case", CASES)
def test_kill_9_between_any_two_steps_leaves_the_old_or_the_new_list(
    original: Path, tmp_path: Path, case: str
) -> None:
    args, expected = CASES[case]
    reference, taken = steps(_copy(original, tmp_path / "reference"), args, tmp_path / "log")
    assert reference.returncode == 0, describe(reference)
    assert any(step.startswith("os.rename") for step in taken)  # the replace is one of them
    points = kill_points(taken)
    projects = {step: _copy(original, tmp_path / f"killed-at-{step}") for step in points}
    runs = in_parallel(lambda step: kill_at(projects[step], args, step), points)
    for step, killed in zip(points, runs, strict=True):
        assert killed.killed, (step, taken[step - 1], describe(killed))
        found = _whole_list(projects[step] / "suppressed.csv")
        assert found in (START, expected), (step, taken[step - 1])
        _after_the_next_run(projects[step], args, expected)
        shutil.rmtree(projects[step])


@pytest.mark.parametrize("case", CASES)
def test_kill_9_at_random_moments_leaves_the_old_or_the_new_list(
    original: Path, tmp_path: Path, case: str
) -> None:
    args, expected = CASES[case]
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1 << 30))
    moments = random.Random(seed)
    project = _copy(original, tmp_path / "timed")
    started = time.monotonic()
    assert run(project, args).returncode == 0
    took = time.monotonic() - started  # only to spread the kills over a run: not asserted
    shutil.rmtree(project)
    delays = [moments.uniform(took * 0.4, took * 1.05) for _ in range(3)]
    projects = [_copy(original, tmp_path / f"timed-{n}") for n in range(len(delays))]
    # The second half of a run: its first half is Python starting up.
    in_parallel(lambda n: kill_after(projects[n], args, delays[n]), range(len(delays)))
    for project in projects:
        found = _whole_list(project / "suppressed.csv")
        assert found in (START, expected), f"CRASH_SEED={seed}"
        _after_the_next_run(project, args, expected)
        shutil.rmtree(project)
