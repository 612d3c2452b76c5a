"""Safe files (newsletter.common.files) and output folders swapped whole
(newsletter.common.outdir): the pieces the "nothing lost" guarantees are built from."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support.crashpoints import environment

from newsletter.common.errors import NewsletterError
from newsletter.common.files import FileBusy, atomic_write, lock_path, locked
from newsletter.common.outdir import MARKER, partial_path, previous_path, recover, staged

POSIX = pytest.mark.skipif(os.name == "nt", reason="file mode bits are POSIX")

# A process that adds 1 to the number in a file, ``times`` times, each under the file's lock.
COUNTER = """
import sys
from pathlib import Path
from newsletter.common.files import atomic_write, locked
path, times = Path(sys.argv[1]), int(sys.argv[2])
for _ in range(times):
    with locked(path):
        value = int(path.read_text()) if path.exists() else 0
        atomic_write(path, str(value + 1).encode())
"""


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    atomic_write(path, b"one\n")
    atomic_write(path, b"two\n")
    assert path.read_bytes() == b"two\n"
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv"]


def test_atomic_write_creates_its_folder(tmp_path: Path) -> None:
    atomic_write(tmp_path / "state" / "deeper" / "file.json", b"{}")
    assert (tmp_path / "state" / "deeper" / "file.json").read_bytes() == b"{}"


def test_a_failed_replace_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        atomic_write(target, b"a file cannot replace a folder")
    assert (target / "inside").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


@POSIX
def test_private_files_are_owner_only_and_others_keep_their_mode(tmp_path: Path) -> None:
    secret = tmp_path / "oauth.json"
    secret.write_text("old")
    secret.chmod(0o644)
    atomic_write(secret, b"new", private=True)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    shared = tmp_path / "suppressed.csv"
    shared.write_text("old")
    shared.chmod(0o640)
    atomic_write(shared, b"new")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640


def test_the_lock_serialises_read_modify_write_between_processes(tmp_path: Path) -> None:
    path = tmp_path / "counter.txt"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", COUNTER, str(path), "25"], env=environment(tmp_path)
        )  # fmt: skip
        for _ in range(4)
    ]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0, 0]
    assert path.read_text() == "100"  # no increment lost


def test_a_lock_held_too_long_is_one_line_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from newsletter.common.files import locked\n"
         f"with locked(Path({str(path)!r})):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        env=environment(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FileBusy) as busy:
            with locked(path, timeout=0.1):
                pass
    finally:
        holder.communicate("", timeout=60)
    assert str(path) in str(busy.value) and "nothing was changed" in str(busy.value)
    with locked(path, timeout=0.1):  # released with its process
        pass


def test_the_lock_file_is_hidden_beside_the_file(tmp_path: Path) -> None:
    with locked(tmp_path / "suppressed.csv"):
        assert lock_path(tmp_path / "suppressed.csv").exists()
    assert lock_path(tmp_path / "suppressed.csv").name == ".suppressed.csv.lock"


def test_temporaries_of_a_killed_writer_are_swept_under_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("email\n")
    leftover = tmp_path / ".suppressed.csv.1a2b3c4d.tmp"
    leftover.write_text("email\nhalf@exam")
    other = tmp_path / ".other.csv.1a2b3c4d.tmp"  # another file's: not this lock's business
    other.write_text("x")
    with locked(path):
        pass
    assert not leftover.exists() and other.exists() and path.read_text() == "email\n"


# ---- output folders ----------------------------------------------------------------------


def _site(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / MARKER).write_text("written by newsletter\n")
    (folder / "index.html").write_text(text)
    return folder


def test_a_folder_is_swapped_whole_and_the_old_one_goes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    site = _site(tmp_path / "site", "old")
    with staged(site) as new:
        (new / "index.html").write_text("new")
    assert (site / "index.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.lock", "site"]


def test_a_failed_build_leaves_the_old_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    site = _site(tmp_path / "site", "old")
    with pytest.raises(RuntimeError), staged(site) as new:
        (new / "index.html").write_text("half")
        raise RuntimeError("the build failed")
    assert (site / "index.html").read_text() == "old"
    assert not partial_path(site).exists()


def test_killed_between_the_renames_the_old_folder_is_put_back(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _site(previous_path(site), "old")  # renamed aside ...
    _site(partial_path(site), "new")  # ... and the new one not renamed in yet
    recover(site)
    assert (site / "index.html").read_text() == "old"
    assert not previous_path(site).exists() and not partial_path(site).exists()


def test_killed_after_the_swap_the_old_folder_is_deleted(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", "new")
    aside = _site(previous_path(site), "old")
    (aside / "index.html").unlink()  # its deletion had begun
    recover(site)
    assert (site / "index.html").read_text() == "new" and not aside.exists()


def test_a_folder_of_someone_elses_beside_it_is_never_touched(tmp_path: Path) -> None:
    site = tmp_path / "site"
    theirs = previous_path(site)
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(NewsletterError, match="not written by newsletter"):
        recover(site)
    assert (theirs / "notes.txt").read_text() == "mine" and not site.exists()
