"""One engine's ``aggregate_day`` on a corpus, timed in a warm process (``make bench``: ``spark-warm``).

    python -m benchmarks.warm_engines {embedded,spark} --date YYYY-MM-DD --cores N ROOT

Issue 16 compares the Spark engine with the embedded one per core, on a warm
session: what separates them is then Spark's own overhead (task start-up,
shipping the records, the shuffle), not starting a JVM. So this process
starts the engine (the Spark session on ``local[N]``, or nothing for the
embedded engine, which starts its N worker processes on every day), runs
the day's files ``--warm-up`` times (the JVM compiles its hot code in the
first runs), then times one more run, and prints one JSON line: its ``seconds``
(which the bench reads as the measurement), the warm-up runs' seconds, and
the pings and aggregates found. Reading, the rules, summing and merging the
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
import time
from datetime import date, timedelta

from crash_aggregates import engines
from crash_aggregates.config import default_config
from crash_aggregates.sources import list_input, plan_splits


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
        started = time.perf_counter()
        day = engine.aggregate_day(config, args.date - timedelta(days=days_before), splits, workers=args.cores)
        warm_up.append(time.perf_counter() - started)
    seconds = warm_up.pop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "warm_up_seconds": warm_up,
                "pings": day.pings,
                "aggregates": len(day.aggregates),
                "splits": len(splits),
            }
        )
    )


if __name__ == "__main__":
    main()
