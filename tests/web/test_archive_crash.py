"""``kill -9`` at any point of ``newsletter archive`` over a published site leaves one whole
site: the old one or the new one, with every picture ever published (issue 21, item 5).

Before, the old folder was deleted before the new one was renamed in: a kill in between
left an incomplete folder and lost published pictures for good (emails already sent load
them from the site). Real processes, killed by SIGKILL in every state their file steps can
leave the disk in (see crashpoints.py) and at moments in time; then the next run.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
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

from newsletter.common.outdir import MARKER, partial_path, previous_path
from newsletter.content.images import ASSETS

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX; Windows has none")

FRONT = (
    "---\ntitle: {title}\nsubject: Cluster News – {title}\n"
    "preheader: What our members did this month, with pictures from the events we held.\n"
    "date: {date}\n---\n"
)


def _issue(project: Path, slug: str, title: str, date: str, pictures: list[str]) -> None:
    body = "## What happened\n\nWe met, and here are the pictures.\n\n" + "".join(
        f"![Members at event {name}](images/{name})\n\n" for name in pictures
    )
    (project / "issues" / f"{slug}.md").write_text(
        FRONT.format(title=title, date=date) + body, encoding="utf-8"
    )


def _picture(project: Path, name: str, colour: tuple[int, int, int]) -> None:
    folder = project / "issues" / "images"
    folder.mkdir(exist_ok=True)
    Image.new("RGB", (240, 160), colour).save(folder / name)


def _manifest(site: Path) -> dict[str, str]:
    """Every file of a site and a hash of its bytes."""
    return {
        str(path.relative_to(site)): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted(site.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project whose site/ was built for two issues; then a third issue came, and one
    picture of the first issue was replaced (its old version must stay published)."""
    project = make_project(tmp_path_factory.mktemp("published") / "cluster")
    for n, colour in enumerate([(200, 30, 30), (30, 160, 40), (40, 60, 200), (220, 180, 0)]):
        _picture(project, f"event{n}.png", colour)
    _issue(project, "january-2026", "January 2026", "2026-01-15", ["event0.png", "event1.png"])
    _issue(project, "february-2026", "February 2026", "2026-02-12", ["event2.png"])
    first = run(project, ["archive", "--out", "site"])
    assert first.returncode == 0, describe(first)
    old = _manifest(project / "site")
    assert sum(name.startswith(f"{ASSETS}/") for name in old) == 3
    _picture(project, "event0.png", (120, 0, 120))  # the chair changed a picture
    _issue(project, "march-2026", "March 2026", "2026-03-12", ["event3.png"])
    return project, old


def _pictures(manifest: dict[str, str]) -> dict[str, str]:
    return {name: digest for name, digest in manifest.items() if name.startswith(f"{ASSETS}/")}


def _copy(project: Path, where: Path) -> Path:
    shutil.copytree(project, where)
    return where


def _whole(site: Path, old: dict[str, str], new: dict[str, str]) -> str:
    """Which whole site is there, 'old' or 'new': anything else fails."""
    found = _manifest(site)
    if found == old:
        return "old"
    assert found == new, sorted(set(found.items()) ^ set(old.items()) ^ set(new.items()))[:6]
    return "new"


def _check_after_kill(project: Path, old: dict[str, str], new: dict[str, str]) -> None:
    site = project / "site"
    if site.exists():
        _whole(site, old, new)  # as the web server would publish it right now
    else:
        # Killed between the two renames: the old site waits whole beside its name, and the
        # next run (or recover) puts it back before anything else.
        assert _whole(previous_path(site), old, new) == "old"
    # The next run, in this process (warm: quick): it recovers what the kill left first.
    here = Path.cwd()
    os.chdir(project)
    try:
        again = run_cli(["archive", "--out", "site"])
    finally:
        os.chdir(here)
    assert again.returncode == 0, again
    assert _manifest(site) == new
    assert not partial_path(site).exists() and not previous_path(site).exists()


@pytest.fixture(autouse=True)
def _no_settings_of_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("NEWSLETTER_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def new_site(
    published: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], dict[str, str]]:
    """The steps of the second build, and the site it makes."""
    project, old = published
    reference = _copy(project, tmp_path_factory.mktemp("reference") / "cluster")
    done, taken = steps(reference, ["archive", "--out", "site"], reference.parent / "steps")
    assert done.returncode == 0, describe(done)
    new = _manifest(reference / "site")
    assert new != old and _pictures(old).items() < _pictures(new).items()  # old ones kept
    assert MARKER in new
    return taken, new


def test_kill_9_at_any_step_of_archive_leaves_one_whole_site(
    published: tuple[Path, dict[str, str]],
    new_site: tuple[list[str], dict[str, str]],
    tmp_path: Path,
) -> None:
    project, old = published
    taken, new = new_site
    points = kill_points(taken)
    swap = [
        n
        for n, step in enumerate(taken, start=1)
        if step in ("os.rename site", "os.rename site.partial")
    ]
    assert len(swap) == 2 and set(swap) <= set(points)  # old aside, new in: both covered
    # A sample of the writes into the new folder and of the old one's deletion (each the
    # same state as its neighbours but for one file), and every step around the swap.
    before, after = [p for p in points if p < swap[0]], [p for p in points if p > swap[1] + 2]
    around = {p for p in points if swap[0] - 2 <= p <= swap[1] + 2}
    chosen = sorted(
        set(before[:: max(1, len(before) // 8)]) | around | set(after[:: max(1, len(after) // 3)])
    )
    copies = {step: _copy(project, tmp_path / f"killed-at-{step}") for step in chosen}
    runs = in_parallel(
        lambda step: kill_at(copies[step], ["archive", "--out", "site"], step), chosen
    )
    for step, killed in zip(chosen, runs, strict=True):
        assert killed.killed, (step, taken[step - 1], describe(killed))
        _check_after_kill(copies[step], old, new)
        shutil.rmtree(copies[step])


def test_kill_9_at_random_moments_of_archive_leaves_one_whole_site(
    published: tuple[Path, dict[str, str]],
    new_site: tuple[list[str], dict[str, str]],
    tmp_path: Path,
) -> None:
    project, old = published
    _, new = new_site
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1 << 30))
    moments = random.Random(seed)
    timing = _copy(project, tmp_path / "timing")
    started = time.monotonic()
    assert run(timing, ["archive", "--out", "site"]).returncode == 0
    took = time.monotonic() - started  # only to spread the kills over a run: not asserted
    delays = [moments.uniform(took * 0.5, took * 1.05) for _ in range(3)]
    copies = [_copy(project, tmp_path / f"timed-{n}") for n in range(len(delays))]
    in_parallel(
        lambda n: kill_after(copies[n], ["archive", "--out", "site"], delays[n]),
        range(len(delays)),
    )
    for copy in copies:
        try:
            _check_after_kill(copy, old, new)
        except AssertionError as error:
            raise AssertionError(f"CRASH_SEED={seed}: {error}") from error
