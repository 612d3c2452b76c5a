"""Benchmark: render December 2023 warm (in-process) and as a fresh process, and ``--help``.

Run by hand from the project folder: python benchmarks/render.py [--repeats N]
Writes benchmarks/results/render.json. Targets (medians):

* parse + render in-process, warm (imports done, templates compiled): ≤ 30 ms;
* ``newsletter render december-2023`` as a whole fresh process — what every ``render``,
  ``check`` and ``send`` pays before its first message (interpreter start, imports, template
  compilation, CSS inliner set-up): ≤ 0.5 s;
* ``newsletter --help`` as a whole process: ≤ 0.3 s;
* a fresh ``render`` ≤ 1.5× the time a fresh process takes to import the libraries it
  renders with (premailer, mjml, jinja2, markdown-it: ``python -c "import premailer, mjml,
  jinja2, markdown_it"``), the two measured in turn in the same run: what the program adds
  to the libraries (its own code, Typer, PyYAML, the rendering itself) stays small.

The library versions (Typer's above all: 0.29 imports pydantic in every command) go into
the results file.

The processes run as an installed program does: with Python's compiled bytecode (an
inherited ``PYTHONDONTWRITEBYTECODE`` is dropped: without it every process compiled our
modules from source, ~100 ms that no installed copy pays) and with their own temporary
folder, where the compiled templates and the inlined HTML are kept between runs (on a shared
machine, other processes rendering other templates evicted them from the common one). The
fresh ``render`` is timed twice: with those kept (``render``: an issue rendered before, as
when the chair checks, then sends) and ``render, cold`` (a new temporary folder each run with
the compiled templates but not the inlined HTML: the first render after an edit of the
issue, which imports and runs the CSS inliner).
"""

from __future__ import annotations

import argparse
import os
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

from newsletter.content.issue import parse_issue  # noqa: E402
from newsletter.content.render import render_issue  # noqa: E402


def bench_render(repeats: int) -> dict[str, object]:
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
        parse.append((parsed - start) * 1000)
        total.append((end - start) * 1000)
    return {
        "parse_ms": {"median": round(statistics.median(parse), 2), "samples": _r(parse)},
        "parse_and_render_ms": {"median": round(statistics.median(total), 2), "samples": _r(total)},
    }


def _command() -> list[str]:
    """The installed ``newsletter`` script beside this interpreter, else ``python -m``."""
    for name in ("newsletter", "newsletter.exe"):
        script = Path(sys.executable).parent / name
        if script.exists():
            return [str(script)]
    return [sys.executable, "-m", "newsletter"]


def _children_cpu() -> float | None:
    """CPU seconds (user + system) of finished child processes; None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


LIBRARIES = "import premailer, mjml, jinja2, markdown_it"


def _temp_env(env: dict[str, str], folder: Path) -> dict[str, str]:
    return {**env, "TMPDIR": str(folder), "TEMP": str(folder), "TMP": str(folder)}


def bench_processes(
    commands: dict[str, list[str]], repeats: int, work: Path, cold: frozenset[str] = frozenset()
) -> dict[str, dict[str, object]]:
    """Wall time of whole fresh processes, the commands in turn (round-robin: a busy spell
    falls on all of them), run from the project folder (this checkout's code: PYTHONPATH
    points here, as in development), and their CPU time: on a busy machine wall time also
    counts waiting for a core, CPU time much less so. Each runs with a temporary folder of
    its own under ``work``: kept between runs, except for the ``cold`` ones (a new one each
    run holding the compiled templates kept, not the inlined HTML)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEWSLETTER_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    kept = work / "temp"
    kept.mkdir()
    samples: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}

    def run(name: str, command: list[str]) -> None:
        folder = kept
        if name in cold:
            # The compiled templates as kept, but no inlined HTML: an edited issue.
            folder = Path(tempfile.mkdtemp(dir=work))
            for cache in kept.glob("_jinja2-cache-*"):
                shutil.copytree(
                    cache,
                    folder / cache.name,
                    ignore=shutil.ignore_patterns("__newsletter_inlined_*"),
                )
        subprocess.run(
            command, check=True, capture_output=True, cwd=ROOT, env=_temp_env(env, folder)
        )
        if name in cold:
            shutil.rmtree(folder, ignore_errors=True)

    for name, command in commands.items():  # warm the OS's file cache, write the bytecode
        run(name, command)
    for _ in range(repeats):
        for name, command in commands.items():
            cpu_before = _children_cpu()
            start = time.perf_counter()
            run(name, command)
            samples[name].append(time.perf_counter() - start)
            cpu_after = _children_cpu()
            if cpu_before is not None and cpu_after is not None:
                cpu[name].append(cpu_after - cpu_before)
    found: dict[str, dict[str, object]] = {}
    for name in commands:
        found[name] = {
            "median": round(statistics.median(samples[name]), 3),
            "samples": _r(samples[name], 3),
        }
        if cpu[name]:
            found[name]["cpu_median"] = round(statistics.median(cpu[name]), 3)
            found[name]["cpu_samples"] = _r(cpu[name], 3)
    return found


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("typer", "premailer", "cssutils", "mjml-python", "jinja2", "markdown-it-py"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _r(values: list[float], digits: int = 2) -> list[float]:
    return [round(v, digits) for v in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    load_before = load_average()
    render = bench_render(args.repeats)
    out = Path(tempfile.mkdtemp(prefix="newsletter-render-bench-"))
    work = Path(tempfile.mkdtemp(prefix="newsletter-render-bench-temp-"))
    try:
        process_repeats = max(5, args.repeats // 3)
        fresh_render = [*_command(), "render", "december-2023", "--out", str(out)]
        timed = bench_processes(
            {
                "render": fresh_render,
                "render, cold": fresh_render,
                "libraries": [sys.executable, "-c", LIBRARIES],
                "help": [*_command(), "--help"],
            },
            process_repeats,
            work,
            cold=frozenset({"render, cold"}),
        )
        html = (out / "december-2023.html").stat().st_size
        text = (out / "december-2023.txt").stat().st_size
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    fresh, libraries, help_ = timed["render"], timed["libraries"], timed["help"]
    cold = timed["render, cold"]

    def over_libraries(timing: dict[str, object]) -> dict[str, float]:
        found = {"wall": round(float(timing["median"]) / float(libraries["median"]), 2)}  # type: ignore[arg-type]
        if "cpu_median" in timing and "cpu_median" in libraries:
            found["cpu"] = round(float(timing["cpu_median"]) / float(libraries["cpu_median"]), 2)  # type: ignore[arg-type]
        return found

    over, over_cold = over_libraries(fresh), over_libraries(cold)
    figures = {
        "command_timed": " ".join(Path(c).name for c in _command()) + " render december-2023",
        **render,
        "fresh_process_render_s": fresh,
        "fresh_process_render_cold_s": cold,
        "libraries_import_s": {"command": f'python -c "{LIBRARIES}"', **libraries},
        "render_over_libraries": over,
        "render_cold_over_libraries": over_cold,
        "processes": "bytecode written and used (PYTHONDONTWRITEBYTECODE dropped); a private "
        "temporary folder, kept between runs (render) or new each run with the compiled "
        "templates but no inlined HTML (render, cold: an edited issue)",
        "help_s": help_,
        "html_bytes": html,
        "text_bytes": text,
        "versions": versions(),
        "targets": {
            "parse_and_render_ms": 30,
            "fresh_process_render_s": 0.5,
            "help_s": 0.3,
            "render_over_libraries": 1.5,
        },
    }
    print(f"parse December 2023:                 {render['parse_ms']['median']:.1f} ms (median)")
    print(
        f"parse + render, warm, in-process:    {render['parse_and_render_ms']['median']:.1f} ms"
        " (median, target ≤ 30)"
    )
    print(
        f"newsletter render, fresh process:    {fresh['median']:.3f} s (median, target ≤ 0.5;"
        f" CPU {fresh.get('cpu_median', 'n/a')} s)"
    )
    print(
        f"libraries' import, fresh process:    {libraries['median']:.3f} s (median; CPU "
        f"{libraries.get('cpu_median', 'n/a')} s)"
    )
    print(f"render ÷ libraries' import:          {over} (target ≤ 1.5)")
    print(
        f"newsletter render, edited issue:     {cold['median']:.3f} s (CPU "
        f"{cold.get('cpu_median', 'n/a')} s); ÷ libraries' import: {over_cold}"
    )
    print(f"newsletter --help, fresh process:    {help_['median']:.3f} s (median, target ≤ 0.3)")
    print(f"HTML {html / 1024:.1f} KB, text {text / 1024:.1f} KB")
    save("render", figures, load_before=load_before)


if __name__ == "__main__":
    main()
