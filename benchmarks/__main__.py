"""``python -m benchmarks`` (``make bench``): the throughput and memory benchmark (issues 6 and 16).

Generates (once) the corpora of ``corpora.CORPORA``, then for each corpus runs
every measurement ``--runs`` times, interleaved (run 1 of each, then run 2...),
on a warm page cache, and prints the medians, the ratios and the targets;
results go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import machine, measure, report
from .baselines import CORES
from .corpora import CORPORA, Corpus, ensure, warm

HERE = Path(__file__).resolve().parent
ENGINE_KINDS = {"engine-1": 1, "engine-N": CORES}
STARTUP_RUNS = 10
#: The corpus ``distinct`` run again without the dimensions it gives a value per ping: its pings
#: and bytes, few aggregates. The difference of peak RSS over that of aggregates is what an
#: aggregate costs at peak (issue 14).
FEW_AGGREGATES = "few-aggregates"
PER_PING_DIMENSIONS = ("build_id", "country")
#: Issue 16's Spark target: both engines' aggregate_day on a warm process, same corpus, same cores.
WARM_KINDS = ("embedded-warm", "spark-warm")
BYTES_PER_PING = {"realistic": 120e3, "small": 1.6e3}  # for the disk-space check only


def engine_exe() -> str:
    exe = Path(sys.executable).parent / "crash-aggregates"
    return str(exe) if exe.exists() else (shutil.which("crash-aggregates") or "crash-aggregates")


def spark_status() -> tuple[str, str, bool]:
    """(what its cells say when it can't run, or "", why, whether --spark-master exists)."""
    help_text = subprocess.run([engine_exe(), "run", "--help"], capture_output=True, text=True).stdout
    if not re.search(r"--engine \[[^\]]*\bspark\b", help_text):
        return "n/a", "n/a: this version of crash-aggregates has no --engine spark", False
    missing = [
        name
        for name, there in (("pyspark", importlib.util.find_spec("pyspark")), ("java", shutil.which("java")))
        if not there
    ]
    if missing:
        return "not installed", f"not installed ({' and '.join(missing)} missing)", False
    return "", "", "--spark-master" in help_text


def kind_name(kind: str) -> str:
    return f"engine-w{ENGINE_KINDS[kind]}" if kind in ENGINE_KINDS else kind


def command(kind: str, corpus: Corpus, out: Path, spark_master: bool) -> list[str]:
    dates = ["--min-submission-date", corpus.day, "--max-submission-date", corpus.day]
    job = [engine_exe(), "run", "--input", corpus.root, "--output", str(out), *dates, "--no-progress"]
    if kind in ENGINE_KINDS:
        return [*job, "--workers", str(ENGINE_KINDS[kind])]
    if kind == FEW_AGGREGATES:
        return [*job, "--workers", str(CORES), "--config", str(few_aggregates_config(out))]
    if kind == "spark":
        return [*job, "--engine", "spark", *(["--spark-master", f"local[{CORES}]"] if spark_master else [])]
    if kind in WARM_KINDS:  # aggregate_day alone, in a process that has run the day before (warm_engines.py)
        engine = kind.removesuffix("-warm")
        script = [sys.executable, "-m", "benchmarks.warm_engines", engine, corpus.root]
        return [*script, "--date", corpus.day, "--cores", str(CORES)]
    extra = ["--date", corpus.day, "--out", str(out / "duckdb.parquet")] if kind == "duckdb" else []
    extra = ["--date", corpus.day] if kind == "scan" else extra
    return [sys.executable, "-m", "benchmarks.baselines", kind, *extra, *corpus.paths]


def few_aggregates_config(folder: Path) -> Path:
    """The default configuration without ``PER_PING_DIMENSIONS``, written in ``folder``."""
    import dataclasses

    from crash_aggregates.config import default_config, to_toml

    config = default_config()
    dimensions = tuple(d for d in config.dimensions if d.name not in PER_PING_DIMENSIONS)
    path = folder / "few-aggregates.toml"
    path.write_text(to_toml(dataclasses.replace(config, dimensions=dimensions)))
    return path


def measure_one(kind: str, corpus: Corpus, runs_dir: Path, spark_master: bool) -> dict:
    out = runs_dir / f"{corpus.name}-{kind}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sample = measure.run(command(kind, corpus, out, spark_master), timeout=3600)
    run = {
        "seconds": sample.result.get("seconds", sample.seconds),
        "wall_seconds": sample.seconds,
        "peak_rss": sample.peak_rss,
        "peak_tree_rss": sample.peak_tree_rss,
        "returncode": sample.returncode,
        "result": sample.result,
        "load_1min_after": os.getloadavg()[0],
    }
    if not sample.ok:
        run["error"] = (sample.stderr or sample.stdout).strip()[-2000:]
    report_json = out / f"submission_date={corpus.day}" / "_report.json"
    if report_json.exists():  # the job's own counters, to compare with DuckDB's
        r = json.loads(report_json.read_text())
        run["result"] = {
            k: r.get(k)
            for k in (
                "aggregates",
                "main_pings_processed",
                "crash_pings_processed",
                "main_pings_ignored",
                "crash_pings_ignored",
                "ignored_by_reason",
            )
        }
    shutil.rmtree(out, ignore_errors=True)
    expected = {
        "parse": ("lines", corpus.pings),
        "scan": ("lines", corpus.pings),
        "inflate": ("uncompressed_bytes", corpus.uncompressed_bytes),
    }
    if kind in expected and sample.ok:  # did the baseline do all the work?
        key, want = expected[kind]
        if run["result"].get(key) != want:
            run["warning"] = f"{key} {run['result'].get(key)} != {want} in the corpus"
    return run


def startup() -> dict:
    samples = [measure.run([engine_exe(), "--help"]) for _ in range(STARTUP_RUNS)]
    return {
        "median_seconds": statistics.median(s.seconds for s in samples),
        "runs": [s.seconds for s in samples],
        "command": "crash-aggregates --help",
    }


def check_disk(specs, corpus_dir: Path, quick: bool) -> None:
    need = sum(
        (s.quick_pings if quick else s.pings) * BYTES_PER_PING[s.profile] / (5 if s.compression != "none" else 1)
        for s in specs
    )
    corpus_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(corpus_dir).free
    cached = sum(f.stat().st_size for f in corpus_dir.rglob("*") if f.is_file())
    if free + cached < need + 2e9:
        sys.exit(f"not enough disk under {corpus_dir}: the corpora need ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small corpora (~50 MB): a smoke run, not the verdict")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement; the median is shown (default 3)")
    parser.add_argument(
        "--only",
        default="",
        metavar="NAME[,NAME]",
        help="corpora (" + ", ".join(s.name for s in CORPORA) + ") and/or measurements "
        f"(engine, engine-1, engine-N, duckdb, parse, scan, inflate, spark, {', '.join(WARM_KINDS)}, startup, "
        f"{FEW_AGGREGATES})",
    )
    parser.add_argument("--corpus-dir", type=Path, default=HERE / "corpora", help="where corpora are cached")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="write the missing corpora and stop (e.g. while the machine is busy)",
    )
    args = parser.parse_args(argv)
    args.corpus_dir = args.corpus_dir.resolve()

    only = {n for n in args.only.split(",") if n}
    corpus_names = {s.name for s in CORPORA}
    kinds_wanted = only - corpus_names
    unknown = kinds_wanted - {
        "engine",
        "startup",
        "duckdb",
        "parse",
        "scan",
        "inflate",
        "spark",
        FEW_AGGREGATES,
        *WARM_KINDS,
        *ENGINE_KINDS,
    }
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")
    specs = [s for s in CORPORA if not (only & corpus_names) or s.name in only]

    def wanted(kind: str) -> bool:
        return not kinds_wanted or kind in kinds_wanted or (kind.startswith("engine") and "engine" in kinds_wanted)

    if CORES == 1:  # engine-1 and engine-N would be the same measurement
        ENGINE_KINDS.pop("engine-N")
    check_disk(specs, args.corpus_dir, args.quick)
    if args.generate_only:
        for spec in specs:
            ensure(spec, args.corpus_dir, args.quick)
        return

    spark_cell, spark_why, spark_master = spark_status()
    console = report.console()
    results = report.header(args, CORES)
    console.print(report.preamble(results, spark_why))
    if wanted("startup"):
        results["startup"] = startup()
        console.print(
            f"startup: crash-aggregates --help in {results['startup']['median_seconds']:.3f} s "
            f"(median of {STARTUP_RUNS})"
        )

    runs_dir = args.corpus_dir / "_runs"
    cpu_before = machine.cpu_snapshot()
    for spec in specs:
        corpus = ensure(spec, args.corpus_dir, args.quick, log=console.print)
        kinds = [k for k in spec.measurements if wanted(k) and (k in ENGINE_KINDS or k not in ("engine-1", "engine-N"))]
        entry = results["corpora"][spec.name] = {"corpus": corpus.__dict__, "measurements": {}}
        for kind in ("spark", "spark-warm"):
            if kind in kinds and spark_cell:
                kinds.remove(kind)
                entry["measurements"][kind] = {"skipped": spark_cell, "why": spark_why}
        warm(corpus)
        for i in range(args.runs):  # interleaved: a burst of load hits every measurement alike
            for kind in kinds:
                run = measure_one(kind, corpus, runs_dir, spark_master)
                entry["measurements"].setdefault(kind_name(kind), {"runs": []})["runs"].append(run)
                console.print(report.progress_line(spec.name, kind_name(kind), i, args.runs, run, corpus))
    shutil.rmtree(runs_dir, ignore_errors=True)

    results["load_after"] = list(os.getloadavg())
    results["other_processes_cores"] = machine.others_cores(cpu_before, machine.cpu_snapshot())
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    summary = report.summarise(results)
    report.render(console, results, summary)
    path = report.write(results, summary, args.results_dir, quick=args.quick)
    console.print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
