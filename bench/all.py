"""The whole benchmark suite in one command, results appended to docs/performance.md.

    python -m bench.all [--quick] [--no-write]          # make bench-all

Runs issue #9's six benchmarks one after another, each in a fresh interpreter (no state
shared between them) on a written-back disk (`sync` first), on loopback only: the HTTP
hot paths against bare Starlette baselines (wrk), a million relay timers, history
ingest and the 10-day query on SQLite and PostgreSQL, FFR across 10,000 controllers,
the Push3 round trip, and 24 h of a 10,000-device simulation. About 20 minutes at full
size (history's 28.8 M rows per backend are most of it); `--quick` runs every part at a
tenth of the size in about five. Each figure is printed beside its target; the markdown
section printed at the end is appended to docs/performance.md with the command that
produced it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "performance.md"


@dataclass(frozen=True)
class Part:
    """One benchmark: its module, arguments (full and quick) and how to render it."""

    title: str
    module: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    render: Callable[[dict[str, Any]], list[str]]


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _http(r: dict[str, Any]) -> list[str]:
    targets = {"fetch": 0.80, "send": 0.50, "getdata": 0.80}
    lines = [
        "| path | req/s | p50 ms | p99 ms | errors | ratio | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        key = next((k for k in targets if k in row["name"]), None)
        ratio = row["ratio"]
        target = ""
        if key == "getdata":
            ratio_close = r["getdata_vs_close_baseline"]
            target = f"≥ 0.80 of the `Connection: close` baseline: {ratio_close:.3f}, " + _met(
                ratio_close >= targets[key]
            )
        elif key:
            target = f"≥ {targets[key]:.2f}: {_met(ratio >= targets[key])}"
        lines.append(
            f"| {row['name']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['errors']} | {ratio:.2f} | {target} |"
        )
    return lines


def _timers(r: dict[str, Any]) -> list[str]:
    return [
        "| timers | memory per timer (RSS) | lateness p50 | p99 | max |",
        "|---|---|---|---|---|",
        f"| {r['timers']:,} | {r['bytes_per_timer_rss']:.0f} B "
        f"(< 300: {_met(r['bytes_per_timer_rss'] < 300)}) | {r['lateness_ms_p50']:.3f} ms | "
        f"{r['lateness_ms_p99']:.3f} ms (< 10: {_met(r['lateness_ms_p99'] < 10)}) | "
        f"{r['lateness_ms_max']:.1f} ms |",
    ]


def _history(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{r['devices']:,} devices x {r['days']} days of 15-minute statuses per backend.",
        "",
        "| backend | rows | ingest rows/s (≥ 100k) | µs/row | a year of 10,000 devices | "
        "10-day query p50 | p99 (< 20 ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        b = r.get(backend)
        if b is None:
            continue
        lines.append(
            f"| {backend} | {b['rows']:,} | {b['ingest_rows_per_s']:,} "
            f"({_met(b['ingest_rows_per_s'] >= 100_000)}) | {b['ingest_us_per_row']} | "
            f"{b['year_of_10000_devices_hours']} h | {b['query_10_days_ms_p50']} ms | "
            f"{b['query_10_days_ms_p99']} ms ({_met(b['query_10_days_ms_p99'] < 20)}) |"
        )
    return lines


def _ffr(r: dict[str, Any]) -> list[str]:
    return [
        "| controllers | physics (grid cycles) | step → first relay open | step → last relay "
        "open (< 250 ms) |",
        "|---|---|---|---|",
        f"| {r['controllers']:,} | {r['physical_delay_ms']} ms | {r['step_to_first_open_ms']} ms "
        f"| {r['step_to_last_open_ms']} ms ({_met(r['step_to_last_open_ms'] < 250)}) |",
    ]


def _push3(r: dict[str, Any]) -> list[str]:
    return [
        "| commands | clients | p50 | p99 (< 20 ms) | messages/s |",
        "|---|---|---|---|---|",
        f"| {r['commands']:,} | {r['clients']} | {r['round_trip_ms_p50']} ms | "
        f"{r['round_trip_ms_p99']} ms ({_met(r['round_trip_ms_p99'] < 20)}) | "
        f"{r['messages_per_s']} |",
    ]


def _simulate(r: dict[str, Any]) -> list[str]:
    hours, wall = r["virtual_hours"], r["wall_seconds"]
    target = f" (< 60 s: {_met(wall < 60)})" if r["devices"] >= 10_000 and hours >= 24 else ""
    return [
        "| devices | virtual hours | wall time | statuses | virtual speed-up |",
        "|---|---|---|---|---|",
        f"| {r['devices']:,} | {hours:g} | {wall} s{target} | {r['updates_expected']:,} | "
        f"{r['virtual_speedup']:,}x |",
    ]


PARTS = (
    Part("HTTP hot paths", "bench.run", ("--seconds", "10", "--json"),
         ("--seconds", "3", "--json"), _http),
    Part("Timers", "bench.timers", ("--timers", "1000000"), ("--timers", "100000"), _timers),
    Part("History", "bench.history", ("--devices", "10000", "--days", "30"),
         ("--devices", "1000", "--days", "30"), _history),
    Part("FFR fleet", "bench.ffr", ("--controllers", "10000"), ("--controllers", "1000"), _ffr),
    Part("Push3 round trip", "bench.push3rt", ("--commands", "1000", "--clients", "10"),
         ("--commands", "200", "--clients", "10"), _push3),
    Part("Simulation speed", "bench.simulate", ("--devices", "10000", "--hours", "24"),
         ("--devices", "1000", "--hours", "24"), _simulate),
)  # fmt: skip


def run_part(part: Part, quick: bool) -> tuple[dict[str, Any], float]:
    """Run one benchmark in a fresh interpreter; its JSON result and how long it took."""
    args = part.quick if quick else part.full
    os.sync()  # the part before may leave gigabytes for the kernel to write back: not here
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", part.module, *args],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    # the JSON document is printed last; a server the part started may have printed
    # before it (the demo's banner has JSON bodies in its curl examples)
    at = out.rfind("\n{\n")
    return json.loads(out[at + 1 if at >= 0 else out.index("{") :]), time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every part at a tenth of the size")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--only", default="", help="comma-separated modules, e.g. bench.ffr")
    args = ap.parse_args()
    command = "python -m bench.all" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    parts = [p for p in PARTS if not args.only or p.module in args.only.split(",")]
    today = dt.date.today().isoformat()
    lines = [
        f"## {today} — the suite (`{command}`)",
        "",
        f"python-svc machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Every part ran in its own interpreter, one after "
        "another, on loopback.",
        "",
    ]
    for part in parts:
        print(f"[bench.all] {part.title}: python -m {part.module} "
              f"{' '.join(part.quick if args.quick else part.full)}", flush=True)  # fmt: skip
        try:
            result, took = run_part(part, args.quick)
        except (subprocess.CalledProcessError, ValueError) as err:  # report it, go on
            lines += [f"### {part.title}", "", f"Did not complete: {err}", ""]
            print(f"[bench.all] {part.title} did not complete: {err}", flush=True)
            continue
        lines += [f"### {part.title} ({took:.0f} s)", "", *part.render(result), ""]
        print("\n".join(lines[-len(part.render(result)) - 2 :]), flush=True)
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        with REPORT.open("a") as f:
            f.write("\n" + section)
        print(f"[bench.all] appended to {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
