"""Medians, ratios and the issue's targets; the tables on stdout and the JSON under results/."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import machine

MB = 1e6  # every MB here is 10^6 bytes
RSS_LIMIT_MB = 400
DISTINCT_RSS_LIMIT_MB = 600  # issue 14: the 400,000-aggregate day, --workers 2
BYTES_PER_AGGREGATE_LIMIT = 1024  # issue 14: peak RSS per distinct aggregate, over a run of few aggregates
STARTUP_LIMIT = 0.3
LOAD_WARNING = 1.5
QUIET_CORES = 0.1  # CPU used by other processes during the run, in cores, above which figures are suspect

LEGEND = """\
MB/s    = uncompressed JSON bytes of the corpus / 10^6 / wall seconds, in EVERY column, compressed rows
          included (so ratios on a row compare the same work); pings/s = non-blank lines (bad ones
          included) / wall seconds. Each figure is the median of the runs.
engine  = `crash-aggregates run` (embedded, --workers N), the whole command: process start to exit,
          reading, aggregating, writing Parquet. spark = `run --engine spark` on local[N], same.
duckdb  = read_json with explicit nested STRUCT columns, same filters, grouping and sums, Parquet
          written; parse = pysimdjson parsing every line of the plain files; scan = the project's own
          parser (PingRules.leaves: the C scanner) on every line of the plain files; inflate = isal
          (gzip) or zstandard (zstd) decompressing the files to nowhere. These use one process per
          core (DuckDB: threads = cores), and their time is the work alone (interpreter start and
          imports excluded).
warm    = embedded-warm and spark-warm (realistic-2x): the engine's aggregate_day alone (reading, the
          rules, summing, merging; no process start, no Parquet) in a process that ran the same files
          4 times before as earlier dates (the JVM warm, the rules new), both on N cores: their ratio
          is the Spark target, per core.
limit   = the composed limit of a compressed corpus: N / (1/inflate per core + 1/scan per core), from
          its inflate and its plain twin's scan in the same run (each byte must be inflated, then parsed).
peak RSS = the largest single process of the command (getrusage of its reaped tree, or a 50 ms
          sample if larger), max over runs; ratios a/b, a/c, a/d, a/e, a/f = engine (all cores) MB/s
          over duckdb, parse, inflate, spark, limit MB/s (on one corpus, the same as the ratios of pings/s).
agreement: DuckDB's JSON reader accepts NaN tokens, which SPEC 2 (strict RFC 8259) ignores as
          malformed_json: DuckDB then counts a few more pings than the engine (~0.05% of lines)."""


def console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 180, highlight=False)


def header(args, cores: int) -> dict:
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "runs": args.runs,
        "only": args.only,
        "load_before": list(os.getloadavg()),
        "machine": machine.info(cores),
        "corpora": {},
    }


def preamble(results: dict, spark_why: str) -> str:
    m, load = results["machine"], results["load_before"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, Python {m['python']}, "
        f"commit {m['commit'][:10]}{' (dirty)' if m['dirty'] else ''}, parser: {m.get('parser', '?')}",
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]
    if load[0] > LOAD_WARNING:
        lines.append(
            f"[bold yellow]warning: load above {LOAD_WARNING}: other work shares the cores, "
            "figures will be low and noisy[/]"
        )
    if spark_why:
        lines.append(f"spark engine: {spark_why}")
    return "\n".join(lines)


def progress_line(corpus: str, kind: str, i: int, runs: int, run: dict, c) -> str:
    head = f"{corpus:<13} {kind:<10} run {i + 1}/{runs}: "
    if run["returncode"] != 0:
        return head + f"[red]FAILED (exit {run['returncode']})[/]: {run.get('error', '')[-300:]}"
    s = run["seconds"]
    if "warning" in run:
        head += f"[yellow]{run['warning']}[/] "
    return (
        head + f"{s:7.2f} s {c.uncompressed_bytes / MB / s:8.0f} MB/s {c.pings / s:10,.0f} pings/s"
        f"   peak RSS {run['peak_rss'] / MB:5.0f} MB (tree {run['peak_tree_rss'] / MB:5.0f} MB)"
    )


# -- summary --------------------------------------------------------------------


def _median_of(corpus: dict, m: dict) -> dict:
    if "skipped" in m:
        return {"skipped": m["skipped"]}
    ok = [r for r in m["runs"] if r["returncode"] == 0]
    if not ok:
        return {"error": m["runs"][-1].get("error", "failed")}
    seconds = statistics.median(r["seconds"] for r in ok)
    cpus = [r["result"]["cpu_seconds"] for r in ok if "cpu_seconds" in r.get("result", {})]  # warm_engines.py's
    return {
        "seconds": seconds,
        **({"cpu_seconds": statistics.median(cpus)} if cpus else {}),
        "mb_per_s": corpus["uncompressed_bytes"] / MB / seconds,
        "pings_per_s": corpus["pings"] / seconds,
        "runs": len(ok),
        "failed_runs": len(m["runs"]) - len(ok),
        "peak_rss_mb": max(r["peak_rss"] for r in ok) / MB,
        "peak_tree_rss_mb": max(r["peak_tree_rss"] for r in ok) / MB,
        "result": ok[0].get("result", {}),
    }


def _ratio(a: dict | None, b: dict | None) -> float | None:
    if a and b and "mb_per_s" in a and "mb_per_s" in b:
        return a["mb_per_s"] / b["mb_per_s"]
    return None


def composed_limit(inflate: float, scan: float) -> float:
    """The most MB/s an engine that must inflate and then parse each byte can reach on N cores.

    N / (1/inflate_per_core + 1/scan_per_core), with both measured on all N
    cores (one process each): the same as 1 / (1/inflate + 1/scan).

    >>> round(composed_limit(800.0, 800.0), 1), round(composed_limit(900.0, 300.0), 1)
    (400.0, 225.0)
    """
    return 1 / (1 / inflate + 1 / scan)


def _plain_twin(results: dict, name: str) -> str | None:
    """The plain corpus with the same lines as the compressed corpus ``name`` (same profile and size)."""
    c = results["corpora"][name]["corpus"]
    for other, entry in results["corpora"].items():
        o = entry["corpus"]
        if o["compression"] == "none" and o["profile"] == c["profile"] and o["pings"] == c["pings"]:
            return other
    return None


def summarise(results: dict) -> dict:
    cores = results["machine"]["cores"]
    engine = f"engine-w{cores}"
    rows = {}
    for name, entry in results["corpora"].items():
        medians = {kind: _median_of(entry["corpus"], m) for kind, m in entry["measurements"].items()}
        rows[name] = {"medians": medians}
    for name, row in rows.items():
        medians = row["medians"]
        a = medians.get(engine)
        twin = _plain_twin(results, name) if results["corpora"][name]["corpus"]["compression"] != "none" else None
        scan = rows[twin]["medians"].get("scan") if twin else None
        inflate = medians.get("inflate")
        if scan and inflate and "mb_per_s" in scan and "mb_per_s" in inflate:
            medians["limit"] = {"mb_per_s": composed_limit(inflate["mb_per_s"], scan["mb_per_s"]), "from": twin}
        row["ratios"] = {
            "a/b": _ratio(a, medians.get("duckdb")),
            "a/c": _ratio(a, medians.get("parse")),
            "a/d": _ratio(a, medians.get("inflate")),
            "a/e": _ratio(a, medians.get("spark")),
            "a/f": _ratio(a, medians.get("limit")),
        }
        row["scaling"] = _ratio(a, medians.get("engine-w1")) if cores > 1 else None
    return {"engine": engine, "rows": rows, "targets": targets(results, rows, engine)}


def targets(results: dict, rows: dict, engine: str) -> list[dict]:
    def ratio(corpus: str, which: str):
        return rows.get(corpus, {}).get("ratios", {}).get(which)

    def rss(corpus: str, kinds=None):
        medians = rows.get(corpus, {}).get("medians", {})
        values = [
            m["peak_rss_mb"]
            for k, m in medians.items()
            if k.startswith("engine") and "peak_rss_mb" in m and (kinds is None or k in kinds)
        ]
        return max(values) if values else None

    def warm(kind: str):
        return rows.get("realistic-2x", {}).get("medians", {}).get(kind)

    big = [v for v in (rss("realistic"), rss("realistic-gz"), rss("realistic-2x")) if v is not None]
    one, two = rss("realistic", {engine}), rss("realistic-2x", {engine})
    growth = (two / one - 1) if one and two else None
    startup = results.get("startup", {}).get("median_seconds")
    distinct, few = (rows.get("distinct", {}).get("medians", {}).get(k) for k in (engine, "few-aggregates"))
    per_aggregate = None
    if distinct and few and "peak_rss_mb" in distinct and "peak_rss_mb" in few:
        extra = distinct["result"].get("aggregates", 0) - few["result"].get("aggregates", 0)
        per_aggregate = (distinct["peak_rss_mb"] - few["peak_rss_mb"]) * MB / extra if extra > 0 else None
    out = [
        ("small, plain: engine >= 1.2x DuckDB in pings/s", ratio("small", "a/b"), ">=", 1.2, "x"),
        ("small, gzip: engine >= 1.2x DuckDB", ratio("small-gz", "a/b"), ">=", 1.2, "x"),
        ("small, zstd: engine >= 1.2x DuckDB", ratio("small-zst", "a/b"), ">=", 1.2, "x"),
        ("realistic, gzip: engine >= 0.85x the composed limit", ratio("realistic-gz", "a/f"), ">=", 0.85, "x"),
        ("realistic, zstd: engine >= 0.85x the composed limit", ratio("realistic-zst", "a/f"), ">=", 0.85, "x"),
        ("realistic, plain: engine >= 1.0x DuckDB", ratio("realistic", "a/b"), ">=", 1.0, "x"),
        ("realistic, plain: engine >= 0.7x parse-only", ratio("realistic", "a/c"), ">=", 0.7, "x"),
        (
            "Spark (local[N], warm): >= 0.7x the embedded engine per core, realistic 2 GB day",
            _ratio(warm("spark-warm"), warm("embedded-warm")),
            ">=",
            0.7,
            "x",
        ),
        ("memory: peak RSS <= 400 MB on the realistic days", max(big) if big else None, "<=", RSS_LIMIT_MB, " MB"),
        ("memory: doubling the input grows peak RSS < 10%", growth, "<", 0.10, ""),
        ("startup: crash-aggregates --help < 0.3 s", startup, "<", STARTUP_LIMIT, " s"),
        (
            "distinct day: peak RSS <= 600 MB (issue 14)",
            distinct.get("peak_rss_mb") if distinct else None,
            "<=",
            DISTINCT_RSS_LIMIT_MB,
            " MB",
        ),
        (
            "distinct day: peak RSS per aggregate <= 1 KiB (issue 14)",
            per_aggregate,
            "<=",
            BYTES_PER_AGGREGATE_LIMIT,
            " B",
        ),
    ]
    checks = {">=": lambda v, t: v >= t, "<=": lambda v, t: v <= t, "<": lambda v, t: v < t}
    return [
        {
            "target": t,
            "value": v,
            "op": op,
            "threshold": th,
            "unit": unit,
            "status": "—" if v is None else ("PASS" if checks[op](v, th) else "FAIL"),
        }
        for t, v, op, th, unit in out
    ]


# -- rendering -----------------------------------------------------------------------


def _fmt(m: dict | None, key: str, fmt: str = "{:,.0f}") -> str:
    if not m:
        return ""
    if "skipped" in m:
        return m["skipped"]
    if "error" in m:
        return "[red]error[/]"
    return fmt.format(m[key])


def _x(r: float | None) -> str:
    return "" if r is None else f"{r:.2f}x"


def render(con: Console, results: dict, summary: dict) -> None:
    engine, cores = summary["engine"], results["machine"]["cores"]
    table = Table(title=f"Throughput (medians of {results['runs']} runs; engine = --workers {cores})")
    for col in (
        "corpus",
        "MB",
        "pings",
        "engine MB/s",
        "engine pings/s",
        "engine peak RSS MB",
        "DuckDB MB/s",
        "DuckDB pings/s",
        "parse MB/s",
        "scan MB/s",
        "inflate MB/s",
        "limit MB/s",
        "Spark MB/s",
        "a/b",
        "a/c | a/f",
        "a/e",
    ):
        table.add_column(col, justify="left" if col == "corpus" else "right", no_wrap=col == "corpus")
    for name, row in summary["rows"].items():
        c, m, r = results["corpora"][name]["corpus"], row["medians"], row["ratios"]
        table.add_row(
            name,
            f"{c['uncompressed_bytes'] / MB:,.0f}",
            f"{c['pings']:,}",
            _fmt(m.get(engine), "mb_per_s"),
            _fmt(m.get(engine), "pings_per_s"),
            _fmt(m.get(engine), "peak_rss_mb"),
            _fmt(m.get("duckdb"), "mb_per_s"),
            _fmt(m.get("duckdb"), "pings_per_s"),
            _fmt(m.get("parse"), "mb_per_s"),
            _fmt(m.get("scan"), "mb_per_s"),
            _fmt(m.get("inflate"), "mb_per_s"),
            _fmt(m.get("limit"), "mb_per_s"),
            _fmt(m.get("spark"), "mb_per_s"),
            _x(r["a/b"]),
            _x(r["a/f"] if c["compression"] != "none" else r["a/c"]),
            _x(r["a/e"]),
        )
    con.print(table)

    if any("engine-w1" in row["medians"] for row in summary["rows"].values()):
        scaling = Table(title="Scaling with cores (engine)")
        for col in ("corpus", "1 worker MB/s", f"{cores} workers MB/s", "speed-up", "1 worker peak RSS MB"):
            scaling.add_column(col, justify="left" if col == "corpus" else "right")
        for name, row in summary["rows"].items():
            one = row["medians"].get("engine-w1")
            if one:
                scaling.add_row(
                    name,
                    _fmt(one, "mb_per_s"),
                    _fmt(row["medians"].get(engine), "mb_per_s"),
                    _x(row["scaling"]),
                    _fmt(one, "peak_rss_mb"),
                )
        con.print(scaling)

    _render_agreement(con, summary)

    warm = summary["rows"].get("realistic-2x", {}).get("medians", {})
    if "spark-warm" in warm or "embedded-warm" in warm:
        table = Table(title=f"Warm engines on realistic-2x (aggregate_day alone, {cores} cores)")
        for col in ("engine", "seconds", "MB/s", "MB/s per core", "CPU seconds", "MB per CPU-second"):
            table.add_column(col, justify="left" if col == "engine" else "right")
        mb = results["corpora"]["realistic-2x"]["corpus"]["uncompressed_bytes"] / MB
        for kind in ("embedded-warm", "spark-warm"):
            m = warm.get(kind)
            if m and "mb_per_s" in m:
                cpu = m.get("cpu_seconds")
                table.add_row(
                    kind,
                    f"{m['seconds']:.2f}",
                    f"{m['mb_per_s']:,.0f}",
                    f"{m['mb_per_s'] / cores:,.0f}",
                    "" if cpu is None else f"{cpu:.2f}",
                    "" if not cpu else f"{mb / cpu:,.0f}",
                )
            elif m:
                table.add_row(kind, "", _fmt(m, "mb_per_s"), "", "", "")
        con.print(table)

    verdict = Table(
        title="Targets (issues 6, 14 and 16)"
        + ("  [yellow]--quick: corpora < 1 GB, indicative only[/]" if results["quick"] else "")
    )
    for col in ("target", "measured", "status"):
        verdict.add_column(col)
    for t in summary["targets"]:
        value = (
            "not measured"
            if t["value"] is None
            else (
                f"{t['value']:+.1%}"
                if t["unit"] == ""
                else f"{t['value']:.2f}x"
                if t["unit"] == "x"
                else f"{t['value']:.0f} MB"
                if t["unit"] == " MB"
                else f"{t['value']:,.0f} B"
                if t["unit"] == " B"
                else f"{t['value']:.3f} s"
            )
        )
        style = {"PASS": "green", "FAIL": "bold red"}.get(t["status"], "dim")
        verdict.add_row(t["target"], value, f"[{style}]{t['status']}[/]")
    con.print(verdict)
    load, others = results["load_after"], results["other_processes_cores"]
    con.print(
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; other processes kept "
        f"{others:.2f} of {cores} cores busy on average during the measurements"
    )
    if others > QUIET_CORES:
        con.print(
            f"[bold yellow]not a verdict: the machine was not quiet (other work above {QUIET_CORES} "
            "core): run again when it is[/]"
        )
    con.print(LEGEND, markup=False)


def _render_agreement(con: Console, summary: dict) -> None:
    """DuckDB and the engine should count the same pings; say so when they don't."""
    table = Table(title="Agreement: engine vs DuckDB (processed main / crash pings, aggregates)")
    for col in ("corpus", "engine", "DuckDB", "note"):
        table.add_column(col)
    keys = ("main_pings_processed", "crash_pings_processed", "aggregates")
    for name, row in summary["rows"].items():
        a = row["medians"].get(summary["engine"], {}).get("result", {})
        b = row["medians"].get("duckdb", {}).get("result", {})
        if not (a and b):
            continue
        va, vb = [tuple(x.get(k) for k in keys) for x in (a, b)]
        note = (
            "same"
            if va == vb
            else "DuckDB: "
            + ", ".join(
                f"{y - x:+,} {k.split('_')[0] if k != 'aggregates' else k}"
                for k, x, y in zip(keys, va, vb, strict=True)
                if x != y
            )
        )
        table.add_row(name, " / ".join(f"{v:,}" for v in va), " / ".join(f"{v:,}" for v in vb), note)
    if table.row_count:
        con.print(table)


def write(results: dict, summary: dict, results_dir: Path, quick: bool) -> Path:
    """``<timestamp>.json`` and ``latest.json`` (quick runs: under ``quick/``, not committed)."""
    folder = results_dir / "quick" if quick else results_dir
    folder.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("-", "")
    doc = json.dumps({**results, "summary": summary, "legend": LEGEND}, indent=1, default=str) + "\n"
    path = folder / f"{stamp}.json"
    path.write_text(doc)
    (folder / "latest.json").write_text(doc)
    return path
