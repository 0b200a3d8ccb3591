"""Shared test helpers: where shared/ is, writing input days, running the CLI, reading partitions."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard
from click.testing import CliRunner

from crash_aggregates.cli import cli

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRASH_AGGREGATES_SHARED", REPO.parent / "shared"))


def write_day(root: Path, day: str, lines: list, name: str = "pings.ndjson", compression: str = "none") -> Path:
    """Write lines (dicts become JSON, bytes/str as they are) under root/submission_date=day/."""
    folder = Path(root) / f"submission_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    data = b"".join(
        (line if isinstance(line, bytes) else line.encode() if isinstance(line, str) else json.dumps(line).encode())
        + b"\n"
        for line in lines
    )
    if compression == "gzip":
        data = gzip.compress(data, mtime=0)
    elif compression == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    path = folder / name
    path.write_bytes(data)
    return path


def run(*args: str):
    """Run the CLI in-process; returns click's Result (exit_code, output, stderr)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@contextmanager
def serving(data, *options: str) -> Iterator[str]:
    """`crash-aggregates serve --data DATA [options]` on a free loopback port; yields its base URL (no slash)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", "serve", "--data", str(data), "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
    if not match:
        process.kill()
        pytest.fail(f"serve printed no URL: {line!r} {process.stderr.read()}")
    try:
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def run_process(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run the CLI as a real process (for exit codes as the shell sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "crash_aggregates.cli", *map(str, args)], capture_output=True, text=True, **kwargs
    )


def read_partition(root: Path, day: str) -> dict:
    """{(activity_date, frozenset(dimensions)): stats dict} for one published partition."""
    folder = Path(root) / f"submission_date={day}"
    rows = {}
    for part in sorted(folder.glob("part-*.parquet")):
        for row in pq.read_table(part).to_pylist():
            key = (row["activity_date"], frozenset(row["dimensions"]))
            assert key not in rows, f"duplicate aggregate {key}"
            rows[key] = dict(row["stats"])
    return rows


def read_report(root: Path, day: str) -> dict:
    return json.loads((Path(root) / f"submission_date={day}" / "_report.json").read_text())


def check_sidecar(part, sidecar, keys: dict) -> None:
    """The sidecar (a pyarrow Table) holds the part file's rows in order, plus one column per map key.

    ``keys`` is the ``flat.keys`` entry of ``_SUCCESS``. Expected values are
    worked out here in plain Python from the part file's rows.
    """
    assert sidecar.column_names[:3] == ["activity_date", "dimensions", "stats"]
    assert sidecar.select([0, 1, 2]).to_pylist() == part.to_pylist()
    rows = part.to_pylist()
    expected_columns = []
    for name in ("dimensions", "stats"):
        present = {k for r in rows for k, _ in (r[name] or [])}
        usable = sorted(k for k in present if sum(o.lower() == k.lower() for o in present) == 1)
        assert keys[name] == usable
        expected_columns += [(f"{name}['{k}']", name, k) for k in usable]
    assert sidecar.column_names[3:] == [c for c, _, _ in expected_columns]
    for column, name, key in expected_columns:
        assert sidecar.column(column).to_pylist() == [dict(r[name] or []).get(key) for r in rows], column


def read_split_lines(split) -> list[bytes]:
    """Every line of a split, for a pool of spawned processes (this module is importable there)."""
    from crash_aggregates.sources import read_lines

    return list(read_lines(split))


# -- a dataset published by the job, and what `crash-aggregates sql` says of it ---------

READER_DAYS = ("2016-03-09", "2016-03-10", "2016-03-11")


def publish_with_job(folder: Path, days=READER_DAYS, pings_per_day: int = 1500, output: str | None = None):
    """Synthetic pings for ``days`` in ``folder/pings``, aggregated by the job into ``output``.

    ``output`` defaults to ``folder/aggregates``; returns it (a Path, or the URL given).
    """
    dates = ("--min-submission-date", days[0], "--max-submission-date", days[-1])
    pings = Path(folder) / "pings"
    if not pings.exists():
        result = run("generate", "--output", pings, *dates, "--pings-per-day", pings_per_day, "--seed", 14)
        assert result.exit_code == 0, result.output
    root = output or Path(folder) / "aggregates"
    result = run("run", "--input", pings, "--output", root, *dates, "--workers", 1, "--no-progress")
    assert result.exit_code == 0, result.output
    return root


def stat_names() -> list[str]:
    from crash_aggregates.config import default_config

    return default_config().stat_columns()


def totals_query() -> str:
    """Per submission date: the aggregates and the sum of every stat (``sql_totals``)."""
    sums = ", ".join(f"sum(stats['{s}']) AS \"{s}\"" for s in stat_names())
    return (
        f"SELECT CAST(submission_date AS VARCHAR) AS day, count(*) AS aggregates, {sums} "
        "FROM crash_aggregates GROUP BY 1 ORDER BY 1"
    )


def sql_totals(data: str | Path) -> dict[str, dict[str, float]]:
    """``{submission date: {"aggregates": rows, stat: sum, ...}}`` as ``crash-aggregates sql`` answers."""
    result = run("sql", "--data", data, "--format", "json", totals_query())
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row.pop("day"): row for row in rows}


def part_file_totals(root: Path) -> dict[str, dict[str, float]]:
    """The same totals, worked out in Python from the part files that each ``_SUCCESS`` names."""
    totals = {}
    for folder in sorted(Path(root).glob("submission_date=*")):
        names = json.loads((folder / "_SUCCESS").read_text())["files"]
        rows = [row for name in names for row in pq.read_table(folder / name).to_pylist()]
        day = {"aggregates": len(rows)}
        for stat in stat_names():
            day[stat] = sum(dict(row["stats"])[stat] for row in rows)
        totals[folder.name.split("=", 1)[1]] = day
    return totals


def same_totals(got: dict, expected: dict) -> bool:
    """Equal counts per date, and sums equal but for the order of float additions."""
    import pytest

    return got.keys() == expected.keys() and all(
        got[d]["aggregates"] == expected[d]["aggregates"]
        and {k: v for k, v in got[d].items() if k != "aggregates"}
        == pytest.approx({k: v for k, v in expected[d].items() if k != "aggregates"}, rel=1e-9)
        for d in expected
    )


def duckdb_totals(source: str, conn=None) -> dict[str, dict[str, float]]:
    """The same totals as DuckDB reads ``source`` (a glob) with Hive partitioning: a plain reader's view."""
    import duckdb

    sums = ", ".join(f"sum(stats['{s}'])" for s in stat_names())
    rows = (
        (conn or duckdb)
        .sql(
            f"SELECT CAST(submission_date AS VARCHAR), count(*), {sums} "
            f"FROM read_parquet('{source}', hive_partitioning = true) GROUP BY 1"
        )
        .fetchall()
    )
    return {row[0]: dict(zip(["aggregates", *stat_names()], row[1:], strict=True)) for row in rows}


def doubled(totals: dict) -> dict:
    """Totals with every aggregate counted twice."""
    return {day: {k: 2 * v for k, v in found.items()} for day, found in totals.items()}


def legacy_layout(root: Path) -> Path:
    """Give each published partition the layout of earlier versions: the sidecar named ``_flat.parquet``."""
    for folder in sorted(Path(root).glob("submission_date=*")):
        success = json.loads((folder / "_SUCCESS").read_text())
        current = success["flat"]["file"]
        legacy = current.removesuffix(".sidecar")
        assert legacy.endswith(".parquet") and legacy != current
        (folder / current).rename(folder / legacy)
        success["flat"]["file"] = legacy
        (folder / "_SUCCESS").write_text(json.dumps(success, indent=2, sort_keys=True) + "\n")
    return Path(root)


# -- the snippets of docs/readers.md ------------------------------------------------------


def snippets(section: str, language: str) -> list[str]:
    """The ```language blocks under the ``## section`` heading of docs/readers.md."""
    found, heading, block = [], None, None
    for line in (REPO / "docs" / "readers.md").read_text().splitlines():
        if block is not None:
            if line.startswith("```"):
                found.append("\n".join(block))
                block = None
            else:
                block.append(line)
        elif line.startswith("## "):
            heading = line[3:].strip()
        elif line == f"```{language}" and heading == section:
            block = []
    assert found, f"docs/readers.md has no {language} block under ## {section}"
    return found


def run_snippet(code: str, **names) -> tuple[list, dict]:
    """Run a Python snippet with ``names`` defined: what it printed (the objects, not their text), its names."""
    printed: list = []
    namespace = {"print": lambda *a: printed.append(a), **names}
    exec(compile(code, "docs/readers.md", "exec"), namespace)
    return printed, namespace
