"""Load test: 20 users at once on the dashboard and its SQL console, over loopback; p50/p95 latency and errors.

Starts ``crash-aggregates serve`` on a free port of 127.0.0.1 over a dataset
(``--data DIR``, e.g. the demo week of ``make demo``; else the dataset of
``bench_sql.py``, built in a temporary folder, ``--days`` × ``--rows``), then
``--users`` threads each send ``--requests`` requests, one after the other, a
mix of the dashboard's views and pages (~40%) and console queries through
``POST /api/sql`` with parameters (~60%: small aggregates, a grouped week, a
top-builds query, and now and then one that the row cap cuts). Every answer
must be a 200 with the expected shape; anything else counts as an error.

It reports, per kind and overall, the latency's median (p50), 95th percentile
(p95) and maximum as the users saw them (queueing in the console's line
included), requests per second, and the errors; it exits 1 if there was any.

    python benchmarks/bench_console.py [--data DIR] [--users 20] [--requests 30] [--running 2] [--seed 1]

The figures depend on the machine and on what else runs on it (the load
average is printed); the server and the users share its cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

VIEWS = [
    "/overview",
    "/explore?by=channel",
    "/builds?channel=nightly",
    "/health",
    "/console",
    "/api/schema",
]

QUERIES = [
    # (kind, SQL, parameters made from a random generator)
    (
        "query: crash rate per channel",
        "SELECT dimensions['channel'] AS channel, sum(stats['usage_hours']) AS usage_hours, "
        "1000 * sum(stats['main_crashes']) / sum(stats['usage_hours']) AS main_crash_rate "
        "FROM crash_aggregates WHERE submission_date BETWEEN {{ days.start }} AND {{ days.end }} "
        "GROUP BY 1 ORDER BY 2 DESC",
        lambda rnd, dates: {"days": _range(rnd, dates)},
    ),
    (
        "query: one channel per day",
        "SELECT activity_date, sum(stats['main_crashes']) AS crashes, sum(stats['usage_hours']) AS hours "
        "FROM crash_aggregates WHERE dimensions['channel'] = {{ channel }} AND submission_date >= {{ since }} "
        "GROUP BY 1 ORDER BY 1",
        lambda rnd, dates: {
            "channel": rnd.choice(["release", "beta", "nightly", "aurora", "esr"]),
            "since": {"type": "date", "value": rnd.choice(dates)},
        },
    ),
    (
        "query: top builds",
        "SELECT dimensions['build_id'] AS build_id, sum(stats['usage_hours']) AS hours "
        "FROM crash_aggregates WHERE dimensions['channel'] IN ({{ channels }}) GROUP BY 1 ORDER BY 2 DESC LIMIT 20",
        lambda rnd, dates: {"channels": rnd.sample(["release", "beta", "nightly", "aurora"], 2)},
    ),
    (
        "query: many rows (cut by the row cap)",
        "SELECT submission_date, activity_date, dimensions['os_name'] AS os, stats['usage_hours'] AS hours "
        "FROM crash_aggregates WHERE submission_date = {{ day }}",
        lambda rnd, dates: {"day": {"type": "date", "value": rnd.choice(dates)}},
    ),
]
WEIGHTS = [0.25, 0.2, 0.1, 0.05]  # of all requests; the views share the remaining 0.4


def _range(rnd: random.Random, dates: list[str]) -> dict:
    i = rnd.randrange(len(dates))
    j = min(len(dates) - 1, i + rnd.randrange(7))
    return {"start": dates[i], "end": dates[j]}


def start_server(data: str, running: int, config_dir: Path) -> tuple[subprocess.Popen, str]:
    config = config_dir / "console.toml"
    config.write_text(f"[dashboard]\nconsole_running = {running}\nconsole_waiting = 1000\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", "serve", "--data", data, "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
    if not match:
        process.kill()
        sys.exit(f"serve printed no URL: {line!r} {process.stderr.read()}")
    return process, match.group(1)


def request(base: str, kind: str, path: str, body: dict | None) -> tuple[str, float, str | None]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST" if body else "GET")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            payload = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        return kind, time.perf_counter() - started, f"{path}: HTTP {e.code} {e.read()[:200]!r}"
    except OSError as e:
        return kind, time.perf_counter() - started, f"{path}: {e}"
    took = time.perf_counter() - started
    if status != 200:
        return kind, took, f"{path}: HTTP {status}"
    if body is not None:
        answer = json.loads(payload)
        if "columns" not in answer or "rows" not in answer:
            return kind, took, f"{path}: no columns/rows in {payload[:200]!r}"
    return kind, took, None


def user(base: str, dates: list[str], n: int, seed: int, results: list, lock: threading.Lock) -> None:
    rnd = random.Random(seed)
    mine = []
    for _ in range(n):
        pick = rnd.random()
        acc = 0.0
        chosen = None
        for (kind, sql, params), weight in zip(QUERIES, WEIGHTS, strict=True):
            acc += weight
            if pick < acc:
                chosen = (kind, "/api/sql", {"sql": sql, "dialect": "presto", "parameters": params(rnd, dates)})
                break
        if chosen is None:
            path = rnd.choice(VIEWS)
            chosen = ("view: " + path.split("?")[0], path, None)
        mine.append(request(base, *chosen))
    with lock:
        results.extend(mine)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a published dataset (default: build the bench_sql dataset)")
    parser.add_argument("--days", type=int, default=30, help="days of the built dataset")
    parser.add_argument("--rows", type=int, default=100_000, help="aggregates per day of the built dataset")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30, help="requests per user")
    parser.add_argument("--running", type=int, default=2, help="console queries at once ([dashboard] console_running)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-console-"))
    data = args.data
    if data is None:
        try:  # python benchmarks/bench_console.py, or python -m benchmarks.bench_console
            from bench_sql import build
        except ImportError:  # pragma: no cover
            from benchmarks.bench_sql import build
        data = str(scratch / "aggregates")
        print(f"building {args.days} days x {args.rows:,} aggregates in {data} ...", flush=True)
        build(Path(data), args.days, args.rows)
    dates = sorted(p.name.split("=", 1)[1] for p in Path(data).glob("submission_date=*") if (p / "_SUCCESS").exists())
    if not dates:
        sys.exit(f"no published partition in {data}")
    process, base = start_server(data, args.running, scratch)
    try:
        request(base, "warm-up", "/overview", None)  # the first answers of a version fill the caches
        results: list = []
        lock = threading.Lock()
        threads = [
            threading.Thread(target=user, args=(base, dates, args.requests, args.seed + i, results, lock))
            for i in range(args.users)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)

    print(f"\n{args.users} users x {args.requests} requests on {base} ({len(dates)} published days in {data})")
    load = os.getloadavg()[0]
    print(f"console_running = {args.running}; load average at the end: {load:.2f} on {os.cpu_count()} cores")
    kinds = sorted({k for k, _, _ in results})
    print(f"\n{'kind':<42} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'errors':>7}")
    for kind in [*kinds, "all"]:
        rows = [r for r in results if kind == "all" or r[0] == kind]
        times = [t * 1000 for _, t, _ in rows]
        errors = sum(1 for _, _, e in rows if e)
        print(
            f"{kind:<42} {len(rows):>5} {statistics.median(times):>9.1f} {percentile(times, 0.95):>9.1f} "
            f"{max(times):>9.1f} {errors:>7}"
        )
    print(f"\n{len(results)} requests in {wall:.1f} s: {len(results) / wall:.1f} requests/s")
    failed = [e for _, _, e in results if e]
    for e in failed[:10]:
        print("error:", e)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
