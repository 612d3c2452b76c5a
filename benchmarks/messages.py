"""Benchmark: per-member messages for December 2023.

1. Messages built and serialised per second, in-process, over N generated members
   (target ≥ 3,000/s on one core).
2. Peak RSS of a whole `newsletter send december-2023 --dry-run` over M generated members
   (target ≤ 200 MB for 100,000), measured on the child process.

Run by hand from the project folder:
    python benchmarks/messages.py [--members N] [--dry-run-members M]
Nothing is sent anywhere: the dry run writes .eml files to a temporary folder.
Writes benchmarks/results/messages.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from results import load_average, save  # noqa: E402

from newsletter.common.config import Settings  # noqa: E402
from newsletter.members.recipients import Recipient  # noqa: E402

FIRST = ["Jane", "Zoë", "Siân", "Ahmed", "Priya", "Tomasz", "", "Olu", "Marie-Claire"]
LAST = ["Doe", "Brennan", "Griffiths", "Khan", "Shah", "Nowak", "O’Neill", "Adeyemi"]


def write_members(path: Path, count: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "first_name", "last_name", "organisation"])
        for n in range(count):
            writer.writerow(
                [
                    f"member{n}@example{n % 50}.org",
                    FIRST[n % len(FIRST)],
                    LAST[n % len(LAST)],
                    f"Company {n % 700}, Ltd",
                ]
            )


def bench_build(members: int, repeats: int) -> tuple[list[float], int]:
    from newsletter.sending import campaign

    settings = Settings(
        issues_dir=ROOT / "issues",
        templates_dir=ROOT / "templates",
        recipients=ROOT / "recipients.csv.example",
        unsubscribe_url="https://example.org/unsubscribe?email={email}&token={token}",
        unsubscribe_mailto="unsubscribe@example.org",
        secret="benchmark-secret",
    )
    camp = campaign.prepare(settings, "december-2023")
    builder = camp.builder()
    people = [
        Recipient(
            email=f"member{n}@example{n % 50}.org",
            row=n + 2,
            fields={
                "email": f"member{n}@example{n % 50}.org",
                "first_name": FIRST[n % len(FIRST)],
                "last_name": LAST[n % len(LAST)],
                "organisation": f"Company {n % 700}",
            },
        )
        for n in range(members)
    ]
    rates = []
    size = 0
    for _ in range(repeats):
        start = time.perf_counter()
        for person in people:
            size = len(builder.build(person).data)
        rates.append(members / (time.perf_counter() - start))
    return rates, size


def bench_dry_run_rss(members: int) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    try:
        csv_path = work / "members.csv"
        write_members(csv_path, members)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "newsletter",
                "send",
                "december-2023",
                "--dry-run",
                "--recipients",
                str(csv_path),
                "--out",
                str(work / "outbox"),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return peak_kb / 1024, elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dry-run-members", type=int, default=100_000)
    args = parser.parse_args()
    load_before = load_average()
    rates, size = bench_build(args.members, args.repeats)
    rate = statistics.median(rates)
    print(
        f"build + serialise: {rate:,.0f} messages/s (median of {args.repeats} runs over "
        f"{args.members:,} members; {size / 1024:.1f} KB each; target ≥ 3,000/s)"
    )
    figures: dict[str, object] = {
        "build_members": args.members,
        "build_msg_per_s": {"median": round(rate), "runs": [round(r) for r in rates]},
        "message_bytes": size,
        "targets": {"build_msg_per_s": 3000, "dry_run_peak_rss_mb": 200},
    }
    if args.dry_run_members:
        peak, elapsed = bench_dry_run_rss(args.dry_run_members)
        print(
            f"dry run of {args.dry_run_members:,} members: peak RSS {peak:.0f} MB "
            f"(target ≤ 200 MB), {elapsed:.1f} s, {args.dry_run_members / elapsed:,.0f} messages/s"
        )
        figures["dry_run"] = {
            "members": args.dry_run_members,
            "peak_rss_mb": round(peak, 1),
            "seconds": round(elapsed, 1),
        }
    save("messages", figures, load_before=load_before)


if __name__ == "__main__":
    main()
