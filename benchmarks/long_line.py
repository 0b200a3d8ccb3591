"""``python -m benchmarks.long_line`` (``make bench-long-line``): peak memory of ``run`` on one huge line.

Issue 14: a 3 MB gzip file holding one 3 GB line made ``run`` peak at 3.2 GB
of RSS. This writes (once, cached) a day whose input is a file of ordinary
pings with, in the middle, one valid main ping padded to ``--line-gib`` GiB,
plus a file of ordinary pings beside it; then runs ``crash-aggregates run``
on it (each engine asked for) under ``measure.run`` and prints the peak RSS
of the largest process and of the whole process tree, the wall time and
what ``_report.json`` says about the line, against the target (peak RSS
under 300 MB), and beside it the peak of the same day without the long
line's file (what ``run`` takes anyway). Results go to
``benchmarks/results/long-line/``.

The huge line is streamed into the compressor a block at a time, so writing
it needs no memory either (a 3 GiB line: ~3 MB gzip, ~0.1 MB zstd, a few
seconds to a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from isal import igzip

from crash_aggregates import synth
from crash_aggregates.sources import zstd

from . import machine, measure
from .baselines import CORES
from .corpora import DAY, SEED

HERE = Path(__file__).resolve().parent
TARGET_RSS = 300e6  # bytes, the target for the largest process of `run` (embedded engine)
#: Spark's largest process is its JVM, over the target with no long line at all: there the
#: check is that the long line adds less than this to the peak of the same day without it.
SPARK_MARGIN = 100e6
ORDINARY_PINGS = 2_000  # in the file beside the long one
AROUND = 50  # ordinary pings before and after the long line, in its file
CHUNK = 16 << 20


def _compressed_writer(path: Path, compression: str):
    raw = open(path, "wb")
    if compression == "gzip":
        return igzip.IGzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0), raw
    if compression == "zstd":
        return zstd.ZstdFile(raw, "wb", level=1), raw
    return raw, None


def write_corpus(folder: Path, line_bytes: int, compression: str, log=print) -> dict:
    """The day's input under ``folder`` (written unless its manifest is there); returns the manifest."""
    manifest = folder / "corpus.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    log(f"writing {folder.name}: one {line_bytes / 2**30:.2f} GiB line, {compression} ...")
    started = time.perf_counter()
    # Ordinary pings from the project's generator: a file of their own, and
    # some around the long line (read back from a plain day of them).
    summary = synth.generate(str(folder), [DAY], ORDINARY_PINGS, seed=SEED, profile="small", compression=compression)
    plain = folder / "_plain"
    synth.generate(str(plain), [DAY], 2 * AROUND, seed=SEED + 1, profile="small", compression="none")
    around = b"".join(p.read_bytes() for p in sorted((plain / f"submission_date={DAY}").glob("pings-*"))).splitlines()
    shutil.rmtree(plain)
    # A valid main ping (one of the generated ones) with a huge string field first.
    ping = next(line for line in around if b'"docType": "main"' in line or b'"docType":"main"' in line)
    head, tail = b'{"pad": "', b'", ' + ping[1:] + b"\n"
    pad = line_bytes - len(head) - len(tail) + 1
    suffix = {"gzip": ".gz", "zstd": ".zst"}.get(compression, "")
    path = folder / f"submission_date={DAY}" / f"long-line.ndjson{suffix}"
    out, raw = _compressed_writer(path, compression)
    offset = 0
    with out:
        for line in around[:AROUND]:
            out.write(line + b"\n")
            offset += len(line) + 1
        out.write(head)
        chunk = b"a" * CHUNK
        left = pad
        while left > 0:
            out.write(chunk[: min(left, CHUNK)])
            left -= CHUNK
        out.write(tail)
        for line in around[AROUND:]:
            out.write(line + b"\n")
    if raw is not None:
        raw.close()
    doc = {
        "root": str(folder),
        "day": DAY.isoformat(),
        "compression": compression,
        "long_line_path": str(path),
        "long_line_offset": offset,
        "long_line_bytes": line_bytes,
        "long_line_file_bytes": path.stat().st_size,
        "pings": summary.pings + len(around) + 1,
        "seconds_to_write": round(time.perf_counter() - started, 1),
    }
    manifest.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"  {path.stat().st_size / 1e6:,.1f} MB on disk, {doc['seconds_to_write']} s")
    return doc


def baseline_root(corpus: dict) -> Path:
    """The same day without the long line's file: links to the other files, in a folder beside it."""
    root = Path(corpus["root"] + "-without")
    folder = root / f"submission_date={corpus['day']}"
    if not folder.exists():
        folder.mkdir(parents=True)
        for path in sorted((Path(corpus["root"]) / f"submission_date={corpus['day']}").iterdir()):
            if path != Path(corpus["long_line_path"]):
                (folder / path.name).symlink_to(path)
    return root


def engine_command(corpus: dict, out: Path, engine: str, root: Path | None = None) -> list[str]:
    exe = Path(sys.executable).parent / "crash-aggregates"
    root = str(root or corpus["root"])
    cmd = [str(exe) if exe.exists() else "crash-aggregates", "run", "--input", root, "--output", str(out)]
    cmd += ["--min-submission-date", corpus["day"], "--max-submission-date", corpus["day"], "--no-progress"]
    if engine == "spark":
        return [*cmd, "--engine", "spark", "--spark-master", f"local[{CORES}]"]
    return [*cmd, "--workers", str(CORES)]


def measure_engine(corpus: dict, engine: str, runs_dir: Path) -> dict:
    out = runs_dir / f"long-line-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    sample = measure.run(engine_command(corpus, out, engine), timeout=3600)
    report_path = out / f"submission_date={corpus['day']}" / "_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    shutil.rmtree(out, ignore_errors=True)
    without = measure.run(engine_command(corpus, out, engine, baseline_root(corpus)), timeout=3600)
    shutil.rmtree(out, ignore_errors=True)
    counted = sum(report.get(k, 0) for k in ("main_pings_processed", "main_pings_ignored"))
    counted += sum(report.get(k, 0) for k in ("crash_pings_processed", "crash_pings_ignored"))
    where = {"offset": corpus["long_line_offset"], "length": corpus["long_line_bytes"]}
    located = [
        {k: line[k] for k in where} == where and Path(line["path"]).name == Path(corpus["long_line_path"]).name
        for line in report.get("oversized_lines") or []
    ]
    # Right answers first: every ping counted, the one long line found where it is.
    correct = counted == corpus["pings"] and report.get("ignored_by_reason", {}).get("oversized") == 1 and any(located)
    return {
        "engine": engine,
        "returncode": sample.returncode,
        "wall_seconds": round(sample.seconds, 2),
        "peak_rss": sample.peak_rss,
        "peak_tree_rss": sample.peak_tree_rss,
        "peak_rss_without_the_line": without.peak_rss if without.ok else None,
        "correct": correct,
        "within_target": sample.ok
        and correct
        and without.ok
        and (
            sample.peak_rss < TARGET_RSS if engine == "embedded" else sample.peak_rss - without.peak_rss < SPARK_MARGIN
        ),
        "pings_counted": counted,
        "oversized": report.get("ignored_by_reason", {}).get("oversized"),
        "oversized_lines": report.get("oversized_lines"),
        **({"error": (sample.stderr or sample.stdout).strip()[-1000:]} if not sample.ok else {}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.long_line", description=__doc__.split("\n\n")[0])
    parser.add_argument("--line-gib", type=float, default=3.0, help="size of the long line in GiB (default 3)")
    parser.add_argument(
        "--compression", default="gzip", choices=["gzip", "zstd", "none"], help="of the file holding it (default gzip)"
    )
    parser.add_argument(
        "--engines", default="embedded", metavar="E[,E]", help="embedded and/or spark (default embedded)"
    )
    parser.add_argument("--corpus-dir", type=Path, default=HERE / "corpora", help="where the input is cached")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results" / "long-line")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    if set(engines) - {"embedded", "spark"}:
        parser.error("--engines: embedded and/or spark")
    line_bytes = int(args.line_gib * 2**30)
    corpus_dir = args.corpus_dir.resolve()
    folder = corpus_dir / f"long-line-{line_bytes}-{args.compression}"
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = os.getloadavg()
    corpus = write_corpus(folder, line_bytes, args.compression)
    results = {
        "started_at": started,
        "load_before": list(load_before),
        "machine": machine.info(CORES),
        "corpus": corpus,
        "target_peak_rss": TARGET_RSS,
        "runs": [],
    }
    print(
        f"load average {load_before[0]:.2f}; target: peak RSS under {TARGET_RSS / 1e6:.0f} MB "
        f"(spark: the long line adds under {SPARK_MARGIN / 1e6:.0f} MB to its JVM's peak)"
    )
    for engine in engines:
        run = measure_engine(corpus, engine, corpus_dir / "_runs")
        results["runs"].append(run)
        verdict = (
            "FAILED"
            if run["returncode"]
            else "WRONG COUNTS OR LOCATION"
            if not run["correct"]
            else "ok"
            if run["within_target"]
            else "OVER TARGET"
        )
        print(
            f"{engine:<9} peak RSS {run['peak_rss'] / 1e6:8,.0f} MB (tree {run['peak_tree_rss'] / 1e6:,.0f} MB; "
            f"{(run['peak_rss_without_the_line'] or 0) / 1e6:,.0f} MB without the long line), "
            f"{run['wall_seconds']:,.1f} s, {run['pings_counted']:,} of {corpus['pings']:,} pings counted, "
            f"oversized {run['oversized']}: {verdict}"
        )
        if run.get("oversized_lines"):
            print(f"          at {run['oversized_lines'][:1]}")
        if "error" in run:
            print(f"          {run['error'][-300:]}")
    results["load_after"] = list(os.getloadavg())
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / (started.replace(":", "").replace("-", "") + ".json")
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {path}")
    if not all(r["within_target"] for r in results["runs"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
