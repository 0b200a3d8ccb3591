"""What the engine is compared with: DuckDB, the parse-only, scan-only and inflate-only limits.

Each runs in its own process, started by the harness as
``python -m benchmarks.baselines KIND --date D FILE...``, and prints one JSON
line whose ``seconds`` is the time of the work alone (interpreter start and
imports excluded, which favours the baseline over the engine, whose time is
the whole command). The Spark engine is not here: it is the project's own
``crash-aggregates run --engine spark``, run like the embedded one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# -- b. DuckDB: the same grouping and sums in SQL -----------------------------------

_COUNT = 'STRUCT("values" STRUCT("0" JSON))'  # a count histogram's bucket "0"
# Only the paths the job reads, typed. Fields whose JSON type matters to the rules
# (a build id that is a number, a subsession length that is a string...) are read
# as JSON and checked with json_type, like SPEC sections 2-5 ask.
COLUMNS = {
    "type": "VARCHAR",
    "creationDate": "JSON",
    "application": "STRUCT(channel VARCHAR, name VARCHAR)",
    "environment": "STRUCT(build STRUCT(version VARCHAR, buildId JSON, architecture VARCHAR), "
    "system STRUCT(os STRUCT(name VARCHAR, version VARCHAR)), "
    "addons STRUCT(activeExperiment STRUCT(id VARCHAR, branch VARCHAR)), "
    "settings STRUCT(e10sEnabled JSON, e10sCohort VARCHAR))",
    "meta": "STRUCT(submissionDate JSON, docType VARCHAR, geoCountry VARCHAR)",
    "payload": "STRUCT(processType VARCHAR, crashDate JSON, "
    "info STRUCT(subsessionStartDate JSON, subsessionLength JSON), "
    f"keyedHistograms STRUCT(SUBPROCESS_CRASHES_WITH_DUMP STRUCT(content {_COUNT}, plugin {_COUNT}, "
    f"gmplugin {_COUNT}, gpu {_COUNT}), SUBPROCESS_KILL_HARD STRUCT(ShutDownKill {_COUNT})))",
}

DIMENSIONS = {
    "build_version": "environment.build.version",
    "build_id": "environment.build.buildId ->> '$'",
    "channel": "application.channel",
    "application": "application.name",
    "os_name": "environment.system.os.name",
    "os_version": "environment.system.os.version",
    "architecture": "environment.build.architecture",
    "country": "meta.geoCountry",
    "experiment_id": "environment.addons.activeExperiment.id",
    "experiment_branch": "environment.addons.activeExperiment.branch",
    "e10s_enabled": "CASE json_type(environment.settings.e10sEnabled) WHEN 'BOOLEAN' THEN "
    "CASE WHEN environment.settings.e10sEnabled::BOOLEAN THEN 'True' ELSE 'False' END "
    "WHEN 'VARCHAR' THEN environment.settings.e10sEnabled ->> '$' "
    "WHEN 'BIGINT' THEN environment.settings.e10sEnabled ->> '$' END",
    "e10s_cohort": "environment.settings.e10sCohort",
}
HISTOGRAMS = {
    "content_crashes": "SUBPROCESS_CRASHES_WITH_DUMP.content",
    "plugin_crashes": "SUBPROCESS_CRASHES_WITH_DUMP.plugin",
    "gmplugin_crashes": "SUBPROCESS_CRASHES_WITH_DUMP.gmplugin",
    "gpu_crashes": "SUBPROCESS_CRASHES_WITH_DUMP.gpu",
    "content_shutdown_crashes": "SUBPROCESS_KILL_HARD.ShutDownKill",
}


def _date_of(json_expr: str) -> str:
    """SPEC 3: a JSON string whose first 10 characters are a valid YYYY-MM-DD, as a DATE, else NULL."""
    text = f"left({json_expr} ->> '$', 10)"
    return (
        f"CASE WHEN json_type({json_expr}) = 'VARCHAR' "
        f"AND regexp_full_match({text}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
        f"THEN try_cast({text} AS DATE) END"
    )


def _number(json_expr: str) -> str:
    """A finite JSON number (not a boolean) as DOUBLE, else NULL."""
    return (
        f"CASE WHEN json_type({json_expr}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') AND isfinite({json_expr}::DOUBLE) "
        f"THEN {json_expr}::DOUBLE END"
    )


def duckdb_query(files: list[str], day: str) -> str:
    """SPEC sections 2-5 as one SELECT: one row per activity date and dimensions, with the sums."""
    compact = day.replace("-", "")
    read = (
        f"read_json({files!r}, columns={COLUMNS!r}, format='newline_delimited', ignore_errors=true, "
        f"maximum_object_size={64 << 20})"
    )
    counts = {name: _number(f'payload.keyedHistograms.{path}."values"."0"') for name, path in HISTOGRAMS.items()}
    hist = ",\n".join(f"coalesce(greatest({expr}, 0), 0) AS {name}" for name, expr in counts.items())
    dims = ",\n".join(f"{expr} AS {name}" for name, expr in DIMENSIONS.items())
    stats = [
        "sum(1 - is_crash) AS ping_count",
        "sum(usage_hours) AS usage_hours",
        "sum(usage_hours * usage_hours) AS usage_hours_squared",
        "sum(is_crash) AS main_crashes",
        "sum(is_crash) AS main_crashes_squared",
    ]
    stats += [f"sum({n}) AS {n}, sum({n} * {n}) AS {n}_squared" for n in HISTOGRAMS]
    return f"""
WITH raw AS (
  SELECT *, coalesce(meta.docType, type) AS doc_type FROM {read}
), typed AS (
  SELECT *, CASE WHEN doc_type = 'crash' THEN 1.0 ELSE 0.0 END AS is_crash,
         coalesce({_date_of("CASE WHEN doc_type = 'crash' THEN payload.crashDate ELSE payload.info.subsessionStartDate END")},
                  {_date_of("creationDate")}) AS activity,
         {_number("payload.info.subsessionLength")} AS length
  FROM raw WHERE doc_type IN ('main', 'crash')
), valid AS (
  SELECT
    greatest(least(activity, DATE '{day}'), DATE '{day}' - INTERVAL 7 DAY)::DATE::VARCHAR AS activity_date,
    {dims},
    is_crash,
    CASE WHEN doc_type = 'crash' THEN 0.0 ELSE least(greatest(length, 0) / 3600, 25) END AS usage_hours,
    {hist}
  FROM typed
  WHERE (doc_type = 'main' OR payload.processType IS NULL OR payload.processType = 'main')
    AND (coalesce(json_type(meta.submissionDate), 'NULL') = 'NULL'
         OR (json_type(meta.submissionDate) = 'VARCHAR' AND meta.submissionDate ->> '$' = '{compact}'))
    AND activity IS NOT NULL
    AND json_type(environment.build.buildId) = 'VARCHAR'
    AND regexp_full_match(environment.build.buildId ->> '$', '[0-9]{{14}}')
    AND (doc_type = 'crash' OR length IS NOT NULL)
)
SELECT activity_date, {", ".join(DIMENSIONS)}, {", ".join(stats)}
FROM valid GROUP BY ALL
"""


def run_duckdb(files: list[str], day: str, out: str) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {CORES}")
    started = time.perf_counter()
    con.execute(f"COPY ({duckdb_query(files, day)}) TO '{out}' (FORMAT parquet)")
    seconds = time.perf_counter() - started
    rows, main, crash, hours = con.execute(
        f"SELECT count(*), sum(ping_count), sum(main_crashes), sum(usage_hours) FROM '{out}'"
    ).fetchone()
    return {
        "seconds": seconds,
        "threads": CORES,
        "aggregates": rows,
        "main_pings_processed": int(main or 0),
        "crash_pings_processed": int(crash or 0),
        "usage_hours": hours or 0.0,
        "duckdb": duckdb.__version__,
    }


# -- c. parse-only: simdjson on every line, one process per core --------------------


def _parse_file(path: str) -> tuple[int, int]:
    import simdjson

    parser, lines, bad = simdjson.Parser(), 0, 0
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            if line.isspace():
                continue
            lines += 1
            try:
                parser.parse(line)  # the whole document is parsed; nothing is kept
            except ValueError:
                bad += 1
    return lines, bad


def _pool_map(fn, files: list[str], *extra) -> tuple[float, list]:
    """``fn`` over ``files`` (largest first) in one process per core; wall seconds and results.

    With ``extra``, ``fn`` gets ``(file, *extra)``.
    """
    files = sorted(files, key=os.path.getsize, reverse=True)
    started = time.perf_counter()
    with mp.get_context("fork").Pool(min(CORES, len(files))) as pool:
        results = list(pool.imap_unordered(fn, [(f, *extra) for f in files] if extra else files))
    return time.perf_counter() - started, results


def run_parse(files: list[str]) -> dict:
    import simdjson

    seconds, results = _pool_map(_parse_file, files)
    return {
        "seconds": seconds,
        "processes": min(CORES, len(files)),
        "lines": sum(r[0] for r in results),
        "unparsable": sum(r[1] for r in results),
        "pysimdjson": _version("pysimdjson"),
        "simdjson": getattr(simdjson, "__version__", ""),
    }


# -- c'. scan-only: the project's own parser on every line, one process per core -----


def _scan_file(args: tuple[str, str]) -> tuple[int, int]:
    """Every line through ``PingRules.leaves`` (the C scanner: each byte validated, the leaves made)."""
    from datetime import date

    from crash_aggregates.config import default_config
    from crash_aggregates.pings import PingRules

    path, day = args
    leaves = PingRules(default_config(), date.fromisoformat(day)).leaves
    lines = bad = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            if line.isspace():
                continue
            lines += 1
            bad += leaves(line[:-1] if line.endswith(b"\n") else line) is None
    return lines, bad


def run_scan(files: list[str], day: str) -> dict:
    seconds, results = _pool_map(_scan_file, files, day)
    return {
        "seconds": seconds,
        "processes": min(CORES, len(files)),
        "lines": sum(r[0] for r in results),
        "unparsable": sum(r[1] for r in results),
    }


# -- d. inflate-only: gzip or zstd decompressed to nowhere, one process per core ----


def _inflate_file(path: str) -> int:
    from isal import isal_zlib

    with open(path, "rb") as f:
        zstd = f.read(4) == b"\x28\xb5\x2f\xfd"
    if zstd:
        import zstandard

        new = zstandard.ZstdDecompressor().decompressobj
    else:
        new = lambda: isal_zlib.decompressobj(31)  # noqa: E731
    out, inflater = 0, new()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(128 << 10):  # small chunks: the output stays in cache
            while chunk:
                out += len(inflater.decompress(chunk))
                chunk = b""
                if inflater.eof:  # the next gzip member or zstd frame, if any
                    chunk, inflater = inflater.unused_data, new()
    return out


def run_inflate(files: list[str]) -> dict:
    seconds, results = _pool_map(_inflate_file, files)
    return {
        "seconds": seconds,
        "processes": min(CORES, len(files)),
        "uncompressed_bytes": sum(results),
        "inflater": f"isal_zlib {_version('isal')}, zstandard {_version('zstandard')}",
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines")
    parser.add_argument("kind", choices=("duckdb", "parse", "scan", "inflate"))
    parser.add_argument("--date", help="submission date YYYY-MM-DD (duckdb, scan)")
    parser.add_argument("--out", help="Parquet file to write (duckdb)")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    if args.kind == "duckdb":
        result = run_duckdb(args.files, args.date, args.out)
    elif args.kind == "parse":
        result = run_parse(args.files)
    elif args.kind == "scan":
        result = run_scan(args.files, args.date)
    else:
        result = run_inflate(args.files)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
