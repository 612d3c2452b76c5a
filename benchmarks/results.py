"""Where benchmark figures live: ``benchmarks/results/<name>.json``, one file per script.

Every figure the README quotes comes from one of these files (``report.py`` writes the
README's Performance tables from them), so a reader can see how it was measured: the exact
command line, the machine, the date, the load on the machine, and the raw numbers behind
each median. Scripts call :func:`save` once, at the end of a complete run.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none, e.g. Windows)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:  # Linux: the model name is more telling than platform.processor()'s "x86_64"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (AttributeError, ValueError, OSError):
        pass
    return {
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": memory,
    }


def commit() -> str | None:
    """The checkout's git commit, with "+changes" if files differ from it; None outside git."""
    import subprocess

    root = RESULTS.parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "newsletter"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def save(name: str, figures: dict[str, Any], *, load_before: list[float] | None) -> Path:
    """Write ``results/<name>.json``; ``figures`` holds medians and the raw samples."""
    RESULTS.mkdir(exist_ok=True)
    record = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),  # the code measured (newsletter/ changes since it: "+changes")
        "machine": machine(),
        # The machine may be shared: a high load makes every figure below pessimistic.
        "load_average": {"before": load_before, "after": load_average()},
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {path.relative_to(RESULTS.parent.parent)}")
    return path


def percent(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole``, to one decimal, truncated (never rounded up):
    79.96 % stays 79.9 %, so a missed target never reads as met."""
    return int(part / whole * 1000) / 10


def ratio(part: float, whole: float) -> float:
    """``part / whole`` to one decimal, truncated like :func:`percent`."""
    return int(part / whole * 10) / 10
