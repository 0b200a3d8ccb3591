"""Throughput of the Spark engine on local[N], per core, with small and realistic pings.

    python benchmarks/spark_throughput.py --profile realistic --pings 4000
    python benchmarks/spark_throughput.py --profile small --pings 200000

Builds one submission date of gzip NDJSON input from the real main and crash
pings of ../shared/fixtures (with the ingestion ``meta`` added and the
dimensions varied), then times, on a warm session, the Spark engine's
``aggregate_day`` for that date (wall clock: reading, the rules, the shuffle
and collecting the rows to the driver; JVM start-up excluded) and the CPU
time that the whole process tree (this driver, the JVM, the Python workers)
spent on it, read from /proc, which holds on a machine shared with other work;
and, for reference, the per-ping code alone in this process (CPU time: one
core, no Spark). Figures go to stdout as one JSON document.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from isal import igzip

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRASH_AGGREGATES_SHARED", REPO.parent / "shared"))
DAY = date(2016, 3, 15)


def base_pings(profile: str) -> tuple[dict, dict]:
    fixtures = SHARED / "fixtures"
    crash = json.loads((fixtures / "crash.4.sample.pass.json").read_text())
    crash["payload"]["processType"] = "main"
    if profile == "realistic":
        main = json.loads((fixtures / "main.4.sample.pass.json").read_text())
        # ~110 KB compact, like a real main ping of the time: drop the biggest optional sections.
        for section in ("processes", "threadHangStats", "addonDetails", "slowSQL"):
            main["payload"].pop(section, None)
    else:
        main = json.loads((fixtures / "main.4.min.pass.json").read_text())
    return main, crash


def variants(profile: str, count: int, seed: int = 0) -> list[bytes]:
    """Distinct pings (main and ~10% crash) with varied dimensions, serialized once."""
    rng = random.Random(seed)
    main, crash = base_pings(profile)
    out = []
    for _ in range(count):
        is_crash = rng.random() < 0.1
        doc = copy.deepcopy(crash if is_crash else main)
        activity = DAY - timedelta(days=rng.choice([0, 0, 1, 1, 2, 3, 5, 9]))
        doc["type"] = "crash" if is_crash else "main"
        doc["creationDate"] = f"{activity.isoformat()}T10:00:00.000Z"
        doc["meta"] = {
            "submissionDate": DAY.strftime("%Y%m%d"),
            "docType": doc["type"],
            "geoCountry": rng.choice(["US", "DE", "FR", "BR", "IN", "JP"]),
        }
        app = doc.setdefault("application", {})
        app["channel"] = rng.choice(["release", "release", "beta", "nightly", "aurora"])
        app["name"] = "Firefox"
        env = doc.setdefault("environment", {})
        env.setdefault("build", {}).update(
            version=rng.choice(["44.0", "45.0", "46.0a2"]),
            buildId=rng.choice(["20160301000000", "20160307030208", "20160210153822"]),
        )
        env.setdefault("system", {}).setdefault("os", {}).update(
            name=rng.choice(["Windows_NT", "Darwin", "Linux"]), version=rng.choice(["6.1", "10.0", "15.3.0"])
        )
        env.setdefault("settings", {})["e10sEnabled"] = rng.choice([True, False])
        payload = doc.setdefault("payload", {})
        if is_crash:
            payload["crashDate"] = activity.isoformat()
        else:
            info = payload.setdefault("info", {})
            info["subsessionStartDate"] = f"{activity.isoformat()}T00:00:00.0+01:00"
            info["subsessionLength"] = rng.choice([60, 600, 3600, 14400])
        payload.setdefault("keyedHistograms", {})["SUBPROCESS_CRASHES_WITH_DUMP"] = {
            "content": {"values": {"0": rng.choice([0, 0, 1])}},
            "plugin": {"values": {"0": rng.choice([0, 1])}},
        }
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


def write_input(root: Path, profile: str, pings: int, files: int) -> tuple[int, int]:
    """gzip files under root/submission_date=DAY/; returns (JSON bytes, file bytes)."""
    folder = root / f"submission_date={DAY.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    lines = variants(profile, 97)
    raw = 0
    per_file = -(-pings // files)
    for f in range(files):
        n = min(per_file, pings - f * per_file)
        chunk = b"".join(lines[(f * per_file + i) % len(lines)] + b"\n" for i in range(n))
        raw += len(chunk)
        (folder / f"part-{f:03d}.ndjson.gz").write_bytes(igzip.compress(chunk, 1))
    return raw, sum(p.stat().st_size for p in folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["realistic", "small"], default="realistic")
    parser.add_argument("--pings", type=int, default=4000)
    parser.add_argument("--files", type=int, default=8, help="input files (one Spark task each)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=2, help="timed Spark runs; the best is kept")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO))
    from benchmarks.warm_engines import tree_cpu_seconds
    from crash_aggregates.config import default_config
    from crash_aggregates.engines import spark
    from crash_aggregates.engines.embedded import aggregate_split
    from crash_aggregates.pings import PingRules
    from crash_aggregates.sources import list_input, plan_splits

    config = default_config()
    with tempfile.TemporaryDirectory(prefix="spark-throughput-") as tmp:
        root = Path(tmp)
        raw_bytes, file_bytes = write_input(root, args.profile, args.pings, args.files)
        splits = plan_splits(list_input(root, DAY))

        # The per-ping code alone, in this process: CPU seconds on one core.
        rules = PingRules(config, DAY)
        cpu = time.process_time()
        total = None
        for split in splits:
            partial = aggregate_split(rules, split, False)
            total = partial if total is None else total.merge(partial)
        cpu = time.process_time() - cpu
        assert total.pings == args.pings, total.pings

        session = spark.start(args.master)
        cores = session.sparkContext.defaultParallelism
        warm = root / "warm"
        write_input(warm, "small", 100, cores)
        spark.aggregate_day(config, DAY, plan_splits(list_input(warm, DAY)))  # start the Python workers
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu_before = time.perf_counter(), tree_cpu_seconds()
            result = spark.aggregate_day(config, DAY, splits)
            walls.append(time.perf_counter() - wall)
            cpus.append(tree_cpu_seconds() - cpu_before)
            assert result.pings == args.pings and result.aggregates.keys() == total.aggregates.keys()
        spark.stop()

    wall, spark_cpu = min(walls), min(cpus)
    mb = raw_bytes / 1e6
    print(
        json.dumps(
            {
                "profile": args.profile,
                "pings": args.pings,
                "ping_kb": round(raw_bytes / args.pings / 1e3, 1),
                "json_mb": round(mb, 1),
                "gzip_mb": round(file_bytes / 1e6, 1),
                "aggregates": len(total.aggregates),
                "load_average_1min": os.getloadavg()[0],
                "spark": {
                    "master": args.master,
                    "cores": cores,
                    "seconds": [round(w, 2) for w in walls],
                    "pings_per_s_per_core": round(args.pings / wall / cores),
                    "json_mb_per_s_per_core": round(mb / wall / cores, 1),
                    "cpu_seconds": [round(c, 2) for c in cpus],
                    "pings_per_cpu_second": round(args.pings / spark_cpu),
                    "json_mb_per_cpu_second": round(mb / spark_cpu, 1),
                },
                "per_ping_code_one_core": {
                    "cpu_seconds": round(cpu, 2),
                    "pings_per_s": round(args.pings / cpu),
                    "json_mb_per_s": round(mb / cpu, 1),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
