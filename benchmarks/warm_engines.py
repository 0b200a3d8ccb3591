"""One engine's ``aggregate_day`` on a corpus, timed in a warm process (``make bench``: ``spark-warm``).

    python -m benchmarks.warm_engines {embedded,spark} --date YYYY-MM-DD --cores N ROOT

Issue 16 compares the Spark engine with the embedded one per core, on a warm
session: what separates them is then Spark's own overhead (task start-up,
shipping the records, the shuffle), not starting a JVM. So this process
starts the engine (the Spark session on ``local[N]``, or nothing for the
embedded engine, which starts its N worker processes on every day), runs
the day's files ``--warm-up`` times (the JVM compiles its hot code in the
first runs), then times one more run, and prints one JSON line: its ``seconds``
(which the bench reads as the measurement), the CPU seconds the whole
process tree spent on it, the warm-up runs' seconds, and the pings and
aggregates found. Reading, the rules, summing and merging the
rows are timed; writing Parquet is not (it is the same code for both
engines, after them).

The warm-up runs read the files as if they were the previous days' (most
pings are then ignored for their submission date): the Spark engine's Python
workers keep each date's ``PingRules``, with what they learnt of the pings'
shapes, from task to task, and a day's run in a daily job finds them new.
Timing the same date again would time rules already learnt (~25 % less CPU
for realistic pings), an advantage no daily run has.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date, timedelta

from crash_aggregates import engines
from crash_aggregates.config import default_config
from crash_aggregates.sources import list_input, plan_splits


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and all its descendants: the ones it has waited for (the embedded
    engine's workers), and the live ones, read from /proc (the JVM and its Python workers)."""
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    todo = list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", choices=["embedded", "spark"])
    parser.add_argument("root", help="the input: ROOT/submission_date=DATE/...")
    parser.add_argument("--date", required=True, type=date.fromisoformat)
    parser.add_argument("--cores", type=int, required=True, help="worker processes, or Spark's local[N]")
    parser.add_argument("--warm-up", type=int, default=4, help="untimed runs first (default 4)")
    args = parser.parse_args(argv)

    config = default_config()
    splits = plan_splits(list_input(args.root, args.date))
    engine = engines.get(args.engine)
    engine.start(workers=args.cores, master=f"local[{args.cores}]")
    warm_up = []
    for days_before in [*range(args.warm_up, 0, -1), 0]:
        started, cpu = time.perf_counter(), tree_cpu_seconds()
        day = engine.aggregate_day(config, args.date - timedelta(days=days_before), splits, workers=args.cores)
        warm_up.append(time.perf_counter() - started)
    seconds, cpu = warm_up.pop(), tree_cpu_seconds() - cpu
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "warm_up_seconds": warm_up,
                "pings": day.pings,
                "aggregates": len(day.aggregates),
                "splits": len(splits),
            }
        )
    )


if __name__ == "__main__":
    main()
