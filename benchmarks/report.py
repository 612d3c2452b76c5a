"""Write the benchmark page of the documentation from the committed results.

    python benchmarks/report.py [--check]

Writes docs/developers/benchmarks.md whole, from benchmarks/results/*.json, so every figure
there is one a script measured and saved (tests/docs/test_generated_pages.py fails while the
page differs from a fresh generation). ``--check``: only say whether the page is up to date
(exit 1 if not). A results file may carry ``"notes"``: a list of Markdown paragraphs that
read its figures (what was missed and why), shown under its table; they belong with the
measurement, so they are re-written with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGE = HERE.parent / "docs" / "developers" / "benchmarks.md"
RESULTS = HERE / "results"
REGENERATE = "python benchmarks/report.py"

INTRO = """\
<!-- Generated from benchmarks/results/*.json by `python benchmarks/report.py`: do not edit
     this file; re-run a benchmark (it saves its results), then that command. -->

# Benchmarks

Measured by hand with the scripts in `benchmarks/` (each has `--help`; none runs in the test
suite). Nothing is sent anywhere but 127.0.0.1. Each script writes
`benchmarks/results/<name>.json` — the exact command line, the machine, the date, the load
average before and after, and every raw run — and the tables below are generated from those
files by `python benchmarks/report.py` (a test checks that they agree). Figures are medians;
percentages and factors are truncated, never rounded up, and a target not reached says
**missed**. The machine these ran on is shared and often busy (see the load figures): every
number is a pessimistic one, and re-running on an idle machine is the way to get yours.

How to read the delivery figures:

- Like with like. Every contender sends the DATA payload exactly as `newsletter.mail.smtp`
  does (smtplib's `sendmail()` runs a dot-stuffing regex over every message that delivery
  skips when no line starts with "."), so the gaps below are what delivery adds: the
  journal (one fsync per claim of up to 8 members, a commit per outcome: the
  no-second-copy promise, kept on purpose), building each message in the sending thread,
  reconnecting every `NEWSLETTER_SMTP_MAX_PER_CONNECTION` messages, and thread hand-offs.
  Where the server offers PIPELINING, `deliver()` uses it (within and across messages)
  and the bare loops do not: that is the feature, measured.
- Reuse and parallelism apart. *Reuse* is `deliver()` on 1 connection against one new
  connection per message (both one message at a time); *parallel* is 4 connections against
  1. Each `deliver()` run is compared with the bare loop on as many connections.
- On loopback a connection costs almost nothing, so reuse cannot win much there; the
  latency scenario (`latency.py`, through `proxy.py`) is where it shows, as with a real ESP
  relay.
- Compare the ratios, measured in one run, rather than absolute times across dates: the
  same code ran about three times slower on a busier day on the same machine.

Reading the figures (why a target is met or missed; the figures themselves are below):

- **Start-up and rendering.** A fresh `render`/`check`/`send` is its libraries' import plus
  Typer, PyYAML, our modules, parsing and rendering. Compiled templates and the inlined
  HTML are kept between runs in a private per-user temporary folder, so an issue rendered
  before neither compiles its templates (~120 ms of CPU) nor imports and runs premailer
  (~0.3 s): that is the "rendered before" row. The row "after an edit of the issue" pays
  premailer's import and a cold inlining (cssutils, pure Python, with empty caches in a
  new process), which is why it is slower than the libraries' import alone.
- **Building messages.** Rendering happens once per issue; a member's message is the
  rendered parts with their fields filled in and MIME assembled, so building is
  thousands a second on one core.
- **Loopback delivery.** With no network latency, what `deliver()` adds to the bare loop
  is all that shows: per message, the journal's claim (its fsync shared by up to 8
  members) and outcome commit, and building the message, in Python, on two cores shared
  with the sink. The breakdown and the ablations under the table say which part costs
  what: with the messages built beforehand and the journal on tmpfs it comes close to the
  bare loop. The journal's cost is the no-second-copy promise, kept on purpose.
- **Delivery over a network.** There latency is what counts: a client that pipelines
  within each message pays two round trips a message; `newsletter` also sends each
  message's data together with the next one's MAIL, RCPT and DATA (RFC 2920 allows it), so
  in steady state a message costs about one round trip, hence beyond the bare pipelining
  client and its nominal bound. What keeps it from two round trips' worth: the
  reconnection every `NEWSLETTER_SMTP_MAX_PER_CONNECTION` messages (QUIT, connect, EHLO,
  STARTTLS, EHLO, AUTH: about eight round trips), the first message of each claim of 8,
  and the measured round trip being a little over 20 ms.
- **Against mailmerge.** mailmerge opens a new connection per message and does nothing
  else; `newsletter` pays start-up, rendering and the pre-flight checks (which build every
  member's message once, to find a bad one before anything goes out) before the first
  message, then delivers at the loopback rate above. The dry run writes an `.eml` file per
  member (mailmerge prints them).
"""


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _source(name: str, record: dict[str, Any]) -> str:
    load = record["load_average"]
    before = load["before"][0] if load["before"] else "n/a"
    after = load["after"][0] if load["after"] else "n/a"
    machine = record["machine"]
    return (
        f"<sub>`results/{name}.json`: `{record['command']}`, {record['date']}, "
        f"{machine['cores']} cores ({machine['cpu']}), Python {machine['python']}; "
        f"1-minute load {before} before, {after} after.</sub>"
    )


def render_section(record: dict[str, Any]) -> list[str]:
    warm = record["parse_and_render_ms"]["median"]
    fresh = record["fresh_process_render_s"]["median"]
    fresh_cpu = record["fresh_process_render_s"].get("cpu_median")
    cpu_note = f" (CPU time {fresh_cpu} s)" if fresh_cpu is not None else ""
    help_ = record["help_s"]["median"]
    targets = record["targets"]
    return [
        "| what (`render.py`) | target | measured (median) |",
        "| --- | --- | --- |",
        f"| parse + render December 2023, warm, in-process | ≤ {targets['parse_and_render_ms']}"
        f" ms | {warm} ms (parse alone {record['parse_ms']['median']} ms): "
        f"{_verdict(warm <= targets['parse_and_render_ms'])} |",
        "| `newsletter render december-2023`, whole fresh process (start-up, imports, "
        "templates: what every `render`/`check`/`send` pays; an issue rendered before) | "
        f"≤ {targets['fresh_process_render_s']} s | {fresh} s{cpu_note}: "
        f"{_verdict(fresh <= targets['fresh_process_render_s'])} |",
        *_over_libraries(record),
        f"| `newsletter --help`, whole process | ≤ {targets['help_s']} s | {help_} s: "
        f"{_verdict(help_ <= targets['help_s'])} |",
        f"| December 2023 HTML size | < 102 KB (Gmail clips) | {record['html_bytes'] / 1024:.1f}"
        f" KB (text part {record['text_bytes'] / 1024:.1f} KB) |",
        "",
        _source("render", record),
    ]


def _over_libraries(record: dict[str, Any]) -> list[str]:
    """The fresh render against importing its libraries, in the same run (if measured)."""
    if "render_over_libraries" not in record:
        return []
    libraries = record["libraries_import_s"]
    over = record["render_over_libraries"]
    target = record["targets"]["render_over_libraries"]
    cpu = (
        f"; CPU time {libraries['cpu_median']} s, {over['cpu']}×"
        if "cpu" in over and "cpu_median" in libraries
        else ""
    )
    lines = [
        "| fresh `render` ÷ a fresh process importing premailer, mjml, jinja2 and markdown-it "
        f"(measured in turn) | ≤ {target}× | {over['wall']}× (the import: {libraries['median']} s"
        f"{cpu}; Typer {record.get('versions', {}).get('typer', '?')}): "
        f"{_verdict(over['wall'] <= target)} |"
    ]
    if "render_cold_over_libraries" in record:
        cold, cold_over = (
            record["fresh_process_render_cold_s"],
            record["render_cold_over_libraries"],
        )
        cold_cpu = (
            f", CPU time {cold['cpu_median']} s, {cold_over['cpu']}×" if "cpu" in cold_over else ""
        )
        lines.append(
            "| the same after an edit of the issue (compiled templates kept, the inlined HTML "
            f"not: premailer imported and run) | ≤ {target}× | "
            f"{cold_over['wall']}× ({cold['median']} s{cold_cpu}): "
            f"{_verdict(cold_over['wall'] <= target)} |"
        )
    return lines


def messages_section(record: dict[str, Any]) -> list[str]:
    build = record["build_msg_per_s"]["median"]
    lines = [
        "| what (`messages.py`) | target | measured |",
        "| --- | --- | --- |",
        f"| messages built and serialised, one core, {_n(record['build_members'])} members "
        f"| ≥ 3,000/s | {_n(build)}/s ({record['message_bytes'] / 1024:.0f} KB each): "
        f"{_verdict(build >= 3000)} |",
    ]
    if "dry_run" in record:
        dry = record["dry_run"]
        lines.append(
            f"| peak RSS of a {_n(dry['members'])}-member dry run, whole process | ≤ 200 MB | "
            f"{dry['peak_rss_mb']} MB ({dry['seconds']} s): {_verdict(dry['peak_rss_mb'] <= 200)} |"
        )
    return [*lines, "", _source("messages", record)]


def send_section(record: dict[str, Any]) -> list[str]:
    modes = record["modes"]
    names = list(next(iter(modes.values()))["contenders"])
    labels = {"none": "plain", "starttls": "STARTTLS + AUTH"}
    lines = [
        f"Loopback, no added latency: {_n(record['messages'])} real December messages "
        f"(~{next(iter(modes.values()))['message_bytes'] / 1000:.0f} kB) per run to "
        f"`sink.py` in its own process"
        + (
            " offering PIPELINING (`deliver()` pipelines, across messages too; the bare "
            "smtplib loops never do)"
            if record.get("sink_offers_pipelining")
            else ""
        )
        + f", medians of {record['repeats']} rounds, msg/s. "
        "Every contender sends DATA as delivery does.",
        "",
        "| msg/s | " + " | ".join(labels[m] for m in modes) + " |",
        "| --- | " + " | ".join("---" for _ in modes) + " |",
    ]
    for name in names:
        cells = [_n(modes[m]["contenders"][name]["msg_per_s"]) for m in modes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    rows = [
        ("reuse: `deliver()` 1 connection ÷ new connection per message", "reuse_factor", "×"),
        ("parallel: `deliver()` 4 connections ÷ 1 connection", "parallel_factor", "×"),
        (
            "`deliver()` 1 connection, % of the bare loop on 1 (target ≥ 80 %)",
            "deliver_1_percent_of_ceiling_1",
            " %",
        ),
        (
            "`deliver()` 4 connections, % of the bare loop on 4 (target ≥ 80 %)",
            "deliver_4_percent_of_ceiling_4",
            " %",
        ),
    ]
    for label, key, unit in rows:
        cells = []
        for m in modes:
            value = modes[m]["derived"][key]
            cell = f"{value}{unit}"
            if unit == " %":
                cell += f": {_verdict(value >= 80)}"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    profiled = [(m, modes[m]["profile"]) for m in modes if "profile" in modes[m]]
    for mode, profile in profiled:
        lines += [
            "",
            f"Where `deliver()` on 1 connection spends its time ({labels[mode]}, timers on: "
            f"{profile['timed_run_us_per_message']} µs a message against the bare loop's "
            f"{profile['ceiling_us_per_message']} µs), worker thread, µs a message:",
            "",
        ]
        split = profile["worker_split_us_per_message"]
        # The build happens inside the message source: list it under it, not beside it.
        subparts = {k: v for k, v in split.items() if k.startswith("of which")}
        for part, micros in split.items():
            if part in subparts:
                continue
            lines.append(f"- {part}: {micros}")
            if part.startswith("message source"):
                lines += [f"  - {sub}: {value}" for sub, value in subparts.items()]
        lines.append("")
        lines.append("Ablations (msg/s, % of the 1-connection bare loop):")
        lines.append("")
        for name, found in profile["ablations_1_connection"].items():
            lines.append(f"- {name}: {_n(found['msg_per_s'])} ({found['percent_of_ceiling']} %)")
    return [*lines, "", _source("send", record)]


def latency_section(record: dict[str, Any]) -> list[str]:
    contenders = record["contenders"]
    derived = record["derived"]
    lines = [
        f"Through `proxy.py` adding a {record['rtt_ms']:g} ms round trip "
        f"(NOOPs through it took {record['rtt_measured_ms']['median']} ms, the sink's own "
        "reply time and the proxy's scheduling included) and two round trips "
        f"per new connection, to {record.get('server', '`sink.py`')}; {record['security']}; "
        f"~{record['message_bytes'] / 1000:.0f} kB messages, "
        f"{record['messages_per_newsletter_run']} per run, {record['baseline_messages']} for "
        f"the baseline; medians of {record['repeats']} rounds. Nominal bound: connections ÷ "
        f"({record['round_trips_per_message']} round trips × {record['rtt_ms']:g} ms), what a "
        "client that pipelines within each message can reach.",
        "",
        "| | msg/s | × new connection | % of the nominal bound | % of the bare pipelining "
        "client on as many connections (target ≥ 95 %) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, found in contenders.items():
        if "percent_of_bound" not in found:
            lines.append(f"| {name} | {found['msg_per_s']} | 1 | | |")
            continue
        bare = found.get("percent_of_bare_pipelining_client")
        versus = "" if bare is None else f"{bare} %: {_verdict(bare >= 95)}"
        lines.append(
            f"| {name} | {found['msg_per_s']} | {found['times_new_connection']}× | "
            f"{found['percent_of_bound']} % of {found['round_trip_bound_msg_per_s']} | {versus} |"
        )
    four = derived["four_connections_vs_new_connection"]
    lines += [
        "",
        f"4 connections vs one new connection per message: {four}× (target ≥ 10×: "
        f"{_verdict(four >= 10)}), made of reuse {derived['reuse_factor']}× (1 connection vs "
        f"new connection per message) and parallel connections {derived['parallel_factor']}× "
        "(4 vs 1).",
        "",
        _source("latency", record),
    ]
    return lines


def mailmerge_section(record: dict[str, Any]) -> list[str]:
    found = record["contenders"]
    derived, targets = record["derived"], record["targets"]
    lines = [
        f"Whole processes, {_n(record['members'])} members, the December issue (ours "
        f"~{record['newsletter_message_bytes'] / 1000:.0f} kB a message, text and HTML; "
        "mailmerge's the same HTML after a greeting), to "
        f"{record['server']}; medians of {record['repeats']} rounds, in turn.",
        "",
        "| | newsletter | mailmerge 2.3 | newsletter ÷ mailmerge (target) |",
        "| --- | --- | --- | --- |",
    ]
    for label, ours, theirs, key in (
        ("send (`send --yes`; `--no-dry-run`)", "newsletter send", "mailmerge send",
         "send_vs_mailmerge"),
        ("dry run (`--dry-run`: .eml files; printed)", "newsletter dry run",
         "mailmerge dry run", "dry_run_vs_mailmerge"),
    ):  # fmt: skip
        value = derived[key]
        lines.append(
            f"| {label} | {found[ours]['seconds']} s ({_n(found[ours]['msg_per_s'])}/s) | "
            f"{found[theirs]['seconds']} s ({_n(found[theirs]['msg_per_s'])}/s) | "
            f"{value}× (≥ {targets[key]}×): {_verdict(value >= targets[key])} |"
        )
    return [*lines, "", _source("mailmerge", record)]


def _notes(record: dict[str, Any]) -> list[str]:
    """The results file's own reading of its figures (Markdown paragraphs), if it has one."""
    notes = record.get("notes") or []
    return [line for note in notes for line in ("", note)]


def generate() -> str:
    """The whole page (Markdown)."""
    parts: list[str] = [INTRO.rstrip("\n"), ""]
    sections = [
        ("render", "Start-up and rendering", render_section),
        ("messages", "Building messages", messages_section),
        ("send", "Delivery on loopback", send_section),
        ("latency", "Delivery over a 20 ms network", latency_section),
        ("mailmerge", "Whole sends against mailmerge", mailmerge_section),
    ]
    for name, title, make in sections:
        record = _load(name)
        parts += [f"## {title}", ""]
        if record is None:
            parts += [f"(no `results/{name}.json` yet: run `python benchmarks/{name}.py`)", ""]
            continue
        parts += [*make(record), *_notes(record), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args()
    text = generate()
    current = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
    if args.check:
        if current != text:
            sys.exit(f"{PAGE} differs from benchmarks/results/: run {REGENERATE}")
        return
    PAGE.write_bytes(text.encode("utf-8"))  # "\n" line ends on every platform
    print(f"{PAGE.relative_to(HERE.parent)}: written from benchmarks/results/")


if __name__ == "__main__":
    main()
