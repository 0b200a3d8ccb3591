"""Benchmark: the dashboard's server time per view, cold and warm, on the bench_sql dataset.

Builds (or reuses, ``--keep DIR``) the dataset of ``bench_sql.py`` (30 days ×
100,000 aggregates, published with sidecars as the job publishes), then for
each view and API call of the dashboard measures, in-process through the ASGI
app (no network, what the server spends on a request):

- cold: the first request after the app starts (a new app for each
  measurement, opened as ``serve`` opens it before it listens: the markers
  read, the connection and its views made), so that the question is asked of
  DuckDB and nothing is cached;
- after a new partition: the first request once a partition was published
  again (a new version: new connection, empty cache);
- warm: the same request again (answered from the cache of this version),
  the median of ``--warm`` requests.

Targets (issue 11): cold <= 500 ms, warm <= 50 ms. Beside the cold wall time,
the process's CPU time (all threads, DuckDB's included), which depends much
less than the wall time on what else runs on a shared machine.

    python benchmarks/bench_web.py [--days 30] [--rows 100000] [--runs 3] [--warm 20] [--keep DIR]

The figures depend on what else runs on the machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from starlette.testclient import TestClient

try:  # python benchmarks/bench_web.py, or python -m benchmarks.bench_web
    from bench_sql import build
except ImportError:  # pragma: no cover
    from benchmarks.bench_sql import build

from crash_aggregates.config import default_config
from crash_aggregates.storage import publish_partition
from crash_aggregates.web.app import create_app

VIEWS = {
    "Overview": "/overview",
    "Overview by channel and OS": "/overview?by=channel&by=os_name",
    "Explore": "/explore",
    "Explore by channel": "/explore?by=channel",
    "Explore by build_id, filtered": "/explore?by=build_id&where=channel:nightly&where=os_name:Windows_NT",
    "Builds (nightly)": "/builds?channel=nightly",
    "Compare (experiment branches)": "/compare",
    "Compare two builds (days since release)": "/compare?a=channel:nightly&a=build_id:20160301000000"
    "&b=channel:nightly&b=build_id:20160308000000",
    "Data health": "/health",
    "GET /api/rates by channel": "/api/rates?stat=main_crashes&by=channel&from=2016-02-15&to=2016-03-15",
    "GET /api/health": "/api/health",
}
COLD_TARGET, WARM_TARGET = 0.5, 0.05


def timed(client: TestClient, url: str, cpu: list | None = None) -> float:
    started, processor = time.perf_counter(), time.process_time()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.append(time.process_time() - processor)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return elapsed


def started(root: Path):
    """A new app, opened as ``serve`` opens it before taking requests."""
    app = create_app(str(root), default_config())
    app.state.dashboard.data.open()
    return TestClient(app)


def republish(root: Path) -> None:
    """Publish the last partition again, as a re-run of its date would: a new version of the dataset."""
    last = sorted(root.glob("submission_date=*"))[-1]
    day = date.fromisoformat(last.name.split("=", 1)[1])
    table = pq.read_table(last / json.loads((last / "_SUCCESS").read_text())["files"][0])
    publish_partition(root, day, table, {"submission_date": day.isoformat(), "aggregates": table.num_rows})


def measure(root: Path, runs: int, warm_runs: int) -> list[tuple[str, float, float, float]]:
    results = []
    for name, url in VIEWS.items():
        if url == "/compare":  # the page redirects once to its populations: time the page itself
            with started(root) as client:
                url = client.get(url, follow_redirects=False).headers["location"]
        cold, fresh, warm, cpu = [], [], [], []
        for _ in range(runs):
            with started(root) as client:
                cold.append(timed(client, url, cpu))
                warm.extend(timed(client, url) for _ in range(warm_runs))
                republish(root)
                fresh.append(timed(client, url))
        results.append((name, statistics.median(cold), statistics.median(fresh), statistics.median(warm)))
        print(
            f"{name:40s} cold {1000 * results[-1][1]:5.0f} ms (CPU {1000 * statistics.median(cpu):4.0f} ms)"
            f"  after a new partition {1000 * results[-1][2]:5.0f} ms  warm {1000 * results[-1][3]:5.1f} ms"
            f"  (cold runs: {', '.join(f'{1000 * t:.0f}' for t in cold)})",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=100_000, help="aggregates per day")
    parser.add_argument("--runs", type=int, default=3, help="cold measurements per view (median)")
    parser.add_argument("--warm", type=int, default=20, help="warm requests per cold one (median)")
    parser.add_argument("--keep", metavar="DIR", help="build the dataset in DIR and keep it")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-web-")) / "aggregates"
    try:
        if not (root / "submission_date=2016-03-15" / "_SUCCESS").exists():
            started = time.perf_counter()
            build(root, args.days, args.rows)
            print(f"dataset built in {time.perf_counter() - started:.0f} s")
        print(f"dataset: {args.days} days x {args.rows:,} aggregates at {root}")
        print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        results = measure(root, args.runs, args.warm)
        print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        slow_cold = [n for n, c, f, _ in results if max(c, f) > COLD_TARGET]
        slow_warm = [n for n, _, _, w in results if w > WARM_TARGET]
        for label, target, slow in (("cold", COLD_TARGET, slow_cold), ("warm", WARM_TARGET, slow_warm)):
            print(f"{label} target {1000 * target:.0f} ms: {'met' if not slow else 'missed by ' + ', '.join(slow)}")
    finally:
        if not args.keep:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
