"""Partition layout, Parquet writing, atomic publishing and finding what is published.

A partition is ``<root>/submission_date=YYYY-MM-DD/`` holding ``part-*.parquet``,
``_report.json`` and ``_SUCCESS``. ``_SUCCESS`` is written last and is a small
JSON document naming the data files of the current version; a reader of this
project sees a partition only when it has ``_SUCCESS`` and reads exactly the
files it names (an empty ``_SUCCESS``, as Hadoop writes, means every
``part-*.parquet`` file of the folder).

On a local disk a new version is written into a hidden sibling folder and
swapped in with one ``renameat2(RENAME_EXCHANGE)`` call, so a reader sees the
old version or the new one, never a mix, and a run killed at any point leaves
the old version complete. Hidden folders (leading ``.``) are skipped by Hive,
Spark, Trino and DuckDB globs alike; a later run removes the ones a dead run
left behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import shutil
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SUCCESS = "_SUCCESS"
REPORT = "_report.json"
PARTITION_RE = re.compile(r"submission_date=(\d{4}-\d{2}-\d{2})\Z")
STAGING_PREFIX = ".staging-"

SCHEMA = pa.schema(
    [
        pa.field("activity_date", pa.string(), nullable=False),
        pa.field("dimensions", pa.map_(pa.string(), pa.string())),
        pa.field("stats", pa.map_(pa.string(), pa.float64())),
    ]
)


def partition_name(day: date) -> str:
    """The Hive partition folder of a date.

    >>> partition_name(date(2016, 3, 5))
    'submission_date=2016-03-05'
    """
    return f"submission_date={day.isoformat()}"


def aggregates_table(aggregates: dict, dimension_names: list[str], stat_columns: list[str]) -> pa.Table:
    """Rows sorted by key, absent dimensions left out of the map (SPEC section 6)."""
    activity, dims, stats = [], [], []
    for (activity_date, values), sums in sorted(aggregates.items(), key=_row_order):
        activity.append(activity_date)
        dims.append([(n, v) for n, v in zip(dimension_names, values) if v is not None])
        stats.append(list(zip(stat_columns, map(float, sums))))
    return pa.table(
        [pa.array(activity, pa.string()), pa.array(dims, SCHEMA[1].type), pa.array(stats, SCHEMA[2].type)],
        schema=SCHEMA,
    )


def _row_order(item):
    """Sort by activity date, then dimension values with absent ones last."""
    (activity_date, values), _ = item
    return activity_date, [(v is None, v or "") for v in values]


# -- publishing ----------------------------------------------------------------


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux renameat2); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    rc = libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if rc != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system can't
            return False
        raise OSError(errno, os.strerror(errno), b)
    return True


def clean_staging(root: str | os.PathLike) -> list[str]:
    """Remove hidden folders that dead runs left under ``root``; returns their names."""
    root = Path(root)
    removed = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    return removed


def publish_partition(root: str | os.PathLike, day: date, table: pa.Table, report: dict) -> Path:
    """Write a partition aside, then swap it in as a whole."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / partition_name(day)
    staging = root / f"{STAGING_PREFIX}{partition_name(day)}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        part = "part-00000.parquet"
        pq.write_table(table, staging / part, compression="snappy")
        _write_json(staging / REPORT, report)
        _write_json(staging / SUCCESS, {"files": [part], "submission_date": day.isoformat()})
        _fsync_dir(staging)
        if final.exists():
            if not _exchange(str(staging), str(final)):
                # No atomic exchange here: move the old version aside first. A
                # reader may find no partition for a moment, never a torn one.
                aside = root / f"{STAGING_PREFIX}old-{uuid.uuid4().hex[:12]}"
                os.rename(final, aside)
                os.rename(staging, final)
                staging = aside
        else:
            os.rename(staging, final)
            staging = None
        _fsync_dir(root)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _write_json(path: Path, doc: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading -------------------------------------------------------------------


def success_files(partition: Path) -> list[Path] | None:
    """The data files a published partition names, or None if it is not published."""
    marker = partition / SUCCESS
    try:
        text = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    names = None
    if text.strip():
        try:
            names = json.loads(text).get("files")
        except (ValueError, AttributeError):
            names = None
    if names is None:  # a Hadoop-style empty marker: every part file counts
        return sorted(p for p in partition.glob("part-*.parquet"))
    return [partition / n for n in names if "/" not in n and n not in ("", ".", "..")]


def published_partitions(root: str | os.PathLike) -> dict[str, list[Path]]:
    """``{"YYYY-MM-DD": [data files]}`` for every partition that has ``_SUCCESS``."""
    root = Path(root)
    found = {}
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        m = PARTITION_RE.match(entry.name)
        if m and entry.is_dir():
            files = success_files(entry)
            if files is not None:
                found[m.group(1)] = files
    return found


def read_report(root: str | os.PathLike, day: date) -> dict | None:
    try:
        return json.loads((Path(root) / partition_name(day) / REPORT).read_text())
    except FileNotFoundError:
        return None
