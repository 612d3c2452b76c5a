"""Benchmark: parse + render December 2023 in-process, and `newsletter --help` start-up.

Run by hand from the project folder: python benchmarks/render.py [--repeats N]
Targets: render ≤ 30 ms (median), `newsletter --help` ≤ 0.3 s (median, whole process).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.issue import parse_issue  # noqa: E402
from newsletter.render import render_issue  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_render(repeats: int) -> dict[str, float]:
    path = ROOT / "issues" / "december-2023.md"
    templates = ROOT / "templates"
    render_issue(parse_issue(path), templates)  # warm: imports, template compilation
    parse, total = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        issue = parse_issue(path)
        parsed = time.perf_counter()
        render_issue(issue, templates)
        end = time.perf_counter()
        parse.append(parsed - start)
        total.append(end - start)
    return {"parse_ms": median_ms(parse), "parse_and_render_ms": median_ms(total)}


def bench_help(repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "newsletter", "--help"], check=True, capture_output=True
        )
        samples.append(time.perf_counter() - start)
    return {"help_s": statistics.median(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    render = bench_render(args.repeats)
    help_ = bench_help(max(5, args.repeats // 5))
    print(f"parse December 2023:            {render['parse_ms']:.1f} ms (median)")
    total = render["parse_and_render_ms"]
    print(f"parse + render December 2023:   {total:.1f} ms (median, target ≤ 30)")
    print(f"newsletter --help, whole process: {help_['help_s']:.3f} s (median, target ≤ 0.3)")


if __name__ == "__main__":
    main()
