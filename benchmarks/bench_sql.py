"""Benchmark: a GROUP BY channel over 30 days × 100,000 aggregates per day.

Writes 30 published partitions in the job's layout (``storage.publish_partition``,
so the same Parquet settings and flat sidecars as the job) with realistic
dimension cardinalities into a temporary folder, then times queries through
the project's whole query path (``crash_aggregates.query``: translation,
rewrite, views, fence, DuckDB, Arrow result) and prints the median of 3 runs,
twice: on the dataset as published (the sidecars answer the subscripts), and
on the same part files without sidecars, as earlier versions published them
(the maps answer).

    python benchmarks/bench_sql.py [--days 30] [--rows 100000] [--keep DIR] [--no-old]

The wall-clock figure depends on what else runs on the machine; the CPU
figure (all DuckDB threads together) does not, and the wall time on an idle
machine is about CPU / cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

import crash_aggregates
from crash_aggregates import flat
from crash_aggregates.storage import SCHEMA, publish_partition

STATS = [
    "ping_count", "usage_hours", "usage_hours_squared", "main_crashes", "main_crashes_squared",
    "content_crashes", "content_crashes_squared", "plugin_crashes", "plugin_crashes_squared",
    "gmplugin_crashes", "gmplugin_crashes_squared", "gpu_crashes", "gpu_crashes_squared",
    "content_shutdown_crashes", "content_shutdown_crashes_squared",
]  # fmt: skip

QUERIES = {
    "GROUP BY channel": (
        "SELECT dimensions['channel'] AS channel, sum(stats['usage_hours']) AS usage_hours, "
        "1000 * sum(stats['main_crashes']) / sum(stats['usage_hours']) AS main_crash_rate "
        "FROM crash_aggregates GROUP BY dimensions['channel']"
    ),
    "one day, GROUP BY build_id": (
        "SELECT dimensions['build_id'] AS build_id, sum(stats['main_crashes']) AS crashes "
        "FROM crash_aggregates WHERE submission_date = DATE '2016-03-15' "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
    ),
}


def _pick(rng: random.Random, values, weights=None):
    return rng.choices(values, weights=weights)[0]


def dimension_pool(rng: random.Random, n: int, day: date) -> pa.Array:
    """n dimension maps with the default dimensions and realistic cardinalities."""
    versions = [f"{v}.0" for v in range(40, 48)] + [f"{v}.0b{b}" for v in range(44, 48) for b in range(1, 8)]
    builds = [(day - timedelta(days=d)).strftime("%Y%m%d") + f"{h:02d}0000" for d in range(0, 120) for h in (0, 3)]
    countries = ["US", "DE", "FR", "GB", "BR", "RU", "PL", "JP", "IN", "CN", "IT", "ES", "CA"] + [
        f"C{i}" for i in range(90)
    ]
    os_versions = ["5.1", "6.0", "6.1", "6.2", "6.3", "10.0", "15.0", "15.6", "4.4", "4.8"]
    cohorts = [None, "test", "control", "disqualified", "unsupportedChannel", "optedIn"]
    experiments = [None, "e10s-a@exp", "e10s-b@exp", "gfx@exp", "tls@exp"]
    maps = []
    for _ in range(n):
        experiment = _pick(rng, experiments, [90, 3, 3, 2, 2])
        entry = {
            "build_version": rng.choice(versions),
            "build_id": rng.choice(builds),
            "channel": _pick(rng, ["release", "beta", "aurora", "nightly", "esr"], [60, 20, 5, 10, 5]),
            "application": _pick(rng, ["Firefox", "Fennec"], [95, 5]),
            "os_name": _pick(rng, ["Windows_NT", "Darwin", "Linux"], [80, 10, 10]),
            "os_version": rng.choice(os_versions),
            "architecture": _pick(rng, ["x86", "x86-64"], [60, 40]),
            "country": rng.choice(countries),
            "experiment_id": experiment,
            "experiment_branch": rng.choice(["control", "experiment"]) if experiment else None,
            "e10s_enabled": _pick(rng, ["True", "False"], [40, 60]),
            "e10s_cohort": _pick(rng, cohorts, [10, 30, 30, 10, 10, 10]),
        }
        maps.append([(k, v) for k, v in entry.items() if v is not None])
    return pa.array(maps, SCHEMA[1].type)


def stats_pool(rng: random.Random, n: int) -> pa.Array:
    """n stats maps shaped like real aggregates: a long tail of small ones, crashes rare."""
    maps = []
    for _ in range(n):
        pings = min(int(rng.paretovariate(1.2)), 50_000)
        hours = [min(rng.expovariate(1 / 2.5), 25.0) for _ in range(min(pings, 20))]
        scale = pings / len(hours)
        usage, usage_sq = sum(hours) * scale, sum(h * h for h in hours) * scale
        values = {"ping_count": float(pings), "usage_hours": usage, "usage_hours_squared": usage_sq}
        for name in STATS[3::2]:
            rate = 0.02 if name == "main_crashes" else 0.01
            count = sum(1 for _ in range(min(pings, 200)) if rng.random() < rate) * max(1, pings // 200)
            values[name] = float(count)
            values[name + "_squared"] = float(count)  # per-ping values are 0 or 1
        maps.append([(k, values[k]) for k in STATS])
    return pa.array(maps, SCHEMA[2].type)


def build(root: Path, days: int, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    last = date(2016, 3, 15)
    dims = dimension_pool(rng, rows, last)
    stats = stats_pool(rng, rows)
    for i in range(days):
        day = last - timedelta(days=days - 1 - i)
        order = list(range(rows))
        rng.shuffle(order)
        take = pa.array(order, pa.int32())
        activity = pa.array([(day - timedelta(days=rng.randrange(8))).isoformat() for _ in range(rows)], pa.string())
        table = pa.Table.from_arrays([activity, dims.take(take), stats.take(take)], schema=SCHEMA)
        publish_partition(root, day, table, {"submission_date": day.isoformat(), "aggregates": rows})


def without_sidecars(root: Path, copy: Path) -> Path:
    """The same part files (hard links) with _SUCCESS documents as published before sidecars existed."""
    for folder in sorted(root.glob("submission_date=*")):
        success = json.loads((folder / "_SUCCESS").read_text())
        success.pop("flat", None)
        target = copy / folder.name
        target.mkdir(parents=True)
        for name in success["files"]:
            os.link(folder / name, target / name)
        (target / "_SUCCESS").write_text(json.dumps(success))
    return copy


def sizes(root: Path) -> tuple[int, int]:
    """Bytes of the part files and of the sidecars."""
    parts = sum(p.stat().st_size for p in root.glob("*/part-*.parquet"))
    sidecars = sum(p.stat().st_size for p in root.glob("*/_flat*") if flat.is_file_name(p.name))
    return parts, sidecars


def measure(label: str, root: Path, runs: int) -> None:
    for name, query in QUERIES.items():
        times, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            table = crash_aggregates.query(query, root)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        print(
            f"{label}, {name}: median {statistics.median(times):.3f} s of {runs} runs "
            f"({', '.join(f'{t:.3f}' for t in times)}), CPU {statistics.median(cpu):.3f} s, "
            f"{table.num_rows} rows"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=100_000, help="aggregates per day")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="build the dataset in DIR and keep it")
    parser.add_argument("--no-old", action="store_true", help="do not measure the dataset without sidecars")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-sql-")) / "aggregates"
    try:
        started = time.perf_counter()
        if not (root / "submission_date=2016-03-15" / "_SUCCESS").exists():
            build(root, args.days, args.rows)
        parts, sidecars = sizes(root)
        print(
            f"dataset: {args.days} days x {args.rows:,} aggregates, {parts / 1e6:.1f} MB of part files "
            f"+ {sidecars / 1e6:.1f} MB of sidecars (+{100 * sidecars / parts:.0f} %) "
            f"(built in {time.perf_counter() - started:.1f} s)"
        )
        print(
            f"load average before measuring: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
        )
        measure("with sidecars", root, args.runs)
        if not args.no_old:
            old = Path(tempfile.mkdtemp(prefix="bench-sql-old-"))
            try:
                measure("without sidecars", without_sidecars(root, old / "aggregates"), args.runs)
            finally:
                shutil.rmtree(old, ignore_errors=True)
        print(
            f"load average while measuring: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
        )
    finally:
        if not args.keep:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
