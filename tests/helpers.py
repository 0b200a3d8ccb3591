"""Shared test helpers: where shared/ is, writing input days, running the CLI, reading partitions."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
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
