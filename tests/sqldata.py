"""A small fixed dataset for the SQL tests, whose answers are known without SQL.

Every row is written out here by hand; the tests compute what a query must
answer from these rows in plain Python (or state it as a constant), never
by running the translation under test.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from crash_aggregates.storage import SCHEMA, publish_partition

STATS = ("usage_hours", "main_crashes", "content_crashes", "plugin_crashes", "gmplugin_crashes", "ping_count")


def _row(submission, activity, dims, usage, main, content, plugin, gmplugin, pings):
    return {
        "submission_date": submission,
        "activity_date": activity,
        "dimensions": dims,
        "stats": dict(zip(STATS, map(float, (usage, main, content, plugin, gmplugin, pings)), strict=True)),
    }


_BASE = {
    "build_version": "45.0",
    "application": "Firefox",
    "os_name": "Windows_NT",
    "country": "US",
    "e10s_enabled": "True",
}


def _dims(**kw):
    d = dict(_BASE)
    d.update({k: v for k, v in kw.items() if v is not None})
    for k in [k for k, v in kw.items() if v is None]:
        d.pop(k, None)
    return d


#: The published rows. Names r1..r11 are used in comments of the tests.
ROWS = [
    # submission 2016-03-14
    _row(
        "2016-03-14",
        "2016-03-14",
        _dims(channel="release", build_id="20160301000000", e10s_cohort="test"),
        60000,
        120,
        30,
        12,
        3,
        500,
    ),  # r1
    _row(
        "2016-03-14",
        "2016-03-13",
        _dims(channel="release", build_id="20160301000000", e10s_cohort="control", os_name="Linux"),
        50000,
        40,
        10,
        5,
        1,
        400,
    ),  # r2
    _row(
        "2016-03-14",
        "2016-03-14",
        _dims(channel="beta", build_id="20160305000000", e10s_cohort="test", build_version="46.0b1"),
        30000,
        90,
        20,
        6,
        0,
        300,
    ),  # r3
    _row(
        "2016-03-14",
        "2016-03-14",
        _dims(
            channel="nightly",
            build_id="20160310030000",
            e10s_cohort="test",
            experiment_id="e10s-nightly@experiments.mozilla.org",
            experiment_branch="control",
            build_version="48.0a1",
        ),
        20000,
        100,
        8,
        4,
        2,
        200,
    ),  # r4
    _row(
        "2016-03-14",
        "2016-03-12",
        _dims(channel="release", build_id="2016030100000x", e10s_cohort="test"),
        200000,
        5,
        1,
        1,
        0,
        900,
    ),  # r5
    # submission 2016-03-15
    _row(
        "2016-03-15",
        "2016-03-15",
        _dims(channel="release", build_id="20160301000000", e10s_cohort="test"),
        70000,
        130,
        35,
        10,
        4,
        600,
    ),  # r6
    _row(
        "2016-03-15",
        "2016-03-14",
        _dims(channel="release", build_id="20160301000000", e10s_cohort="control"),
        40000,
        20,
        5,
        2,
        0,
        350,
    ),  # r7
    _row(
        "2016-03-15",
        "2016-03-15",
        _dims(channel="beta", build_id="20160305000000", e10s_cohort=None, build_version="46.0b1"),
        150000,
        300,
        60,
        20,
        5,
        1000,
    ),  # r8
    _row(
        "2016-03-15",
        "2016-03-15",
        _dims(channel="nightly", build_id="20160115000000", e10s_cohort="test", build_version="47.0a1"),
        500000,
        10,
        2,
        1,
        0,
        2000,
    ),  # r9
    _row(
        "2016-03-15",
        "2016-03-15",
        _dims(channel="aurora", build_id=None, e10s_cohort=None, country=None, build_version="47.0a2"),
        0,
        3,
        0,
        0,
        0,
        0,
    ),  # r10
    _row(
        "2016-03-15",
        "2016-03-15",
        _dims(channel="beta", build_id="20160305000000", e10s_cohort="test", build_version="46.0b1"),
        90000,
        45,
        9,
        3,
        1,
        700,
    ),  # r11
]

#: A partition that exists on disk but has no _SUCCESS: never visible.
UNPUBLISHED = _row(
    "2016-03-16",
    "2016-03-16",
    _dims(channel="unpublished", build_id="20160301000000", e10s_cohort="test"),
    999999,
    999,
    9,
    9,
    9,
    9,
)
#: A stale data file in a published partition that _SUCCESS does not name: never visible.
STALE = _row(
    "2016-03-15",
    "2016-03-15",
    _dims(channel="stale", build_id="20160301000000", e10s_cohort="test"),
    888888,
    888,
    8,
    8,
    8,
    8,
)


def table(rows) -> pa.Table:
    return pa.table(
        [
            pa.array([r["activity_date"] for r in rows], pa.string()),
            pa.array([list(r["dimensions"].items()) for r in rows], SCHEMA[1].type),
            pa.array([list(r["stats"].items()) for r in rows], SCHEMA[2].type),
        ],
        schema=SCHEMA,
    )


def build(root: Path, rows=ROWS) -> Path:
    """Write rows in the storage layout (published, with sidecars), plus the invisible extras."""
    root = Path(root)
    for day in sorted({r["submission_date"] for r in rows}):
        some = [r for r in rows if r["submission_date"] == day]
        publish_partition(root, date.fromisoformat(day), table(some), {"submission_date": day, "aggregates": len(some)})
    stale = root / "submission_date=2016-03-15" / "part-00001.parquet"
    pq.write_table(table([STALE]), stale)
    unpublished = root / "submission_date=2016-03-16"
    unpublished.mkdir()
    pq.write_table(table([UNPUBLISHED]), unpublished / "part-00000.parquet")
    return root


def strip_sidecar(folder: Path) -> None:
    """Make a published partition look as published before sidecars existed (no _flat file, no "flat" entry)."""
    success = json.loads((folder / "_SUCCESS").read_text())
    (folder / success.pop("flat")["file"]).unlink()
    (folder / "_SUCCESS").write_text(json.dumps(success))


def strip_sidecars(root: Path, days=None) -> Path:
    """strip_sidecar on the published partitions of ``days`` (default: all)."""
    for folder in sorted(Path(root).glob("submission_date=*")):
        if (folder / "_SUCCESS").exists() and "flat" in (folder / "_SUCCESS").read_text():
            if days is None or folder.name.split("=", 1)[1] in days:
                strip_sidecar(folder)
    return Path(root)


def add_corrupt_partition(root: Path, day: str = "2016-03-17") -> Path:
    """A published partition whose data file is not Parquet at all."""
    folder = Path(root) / f"submission_date={day}"
    folder.mkdir()
    (folder / "part-00000.parquet").write_bytes(b"this is not a parquet file\n" * 10)
    (folder / "_SUCCESS").write_text(json.dumps({"files": ["part-00000.parquet"], "submission_date": day}))
    return folder


def add_corrupt_sidecar(root: Path, day: str = "2016-03-17") -> Path:
    """A published partition whose data file is fine and whose sidecar is not Parquet at all."""
    folder = Path(root) / f"submission_date={day}"
    row = dict(ROWS[0], submission_date=day, activity_date=day)
    publish_partition(root, date.fromisoformat(day), table([row]), {"submission_date": day, "aggregates": 1})
    (folder / json.loads((folder / "_SUCCESS").read_text())["flat"]["file"]).write_bytes(
        b"this is not a parquet file\n" * 10
    )
    return folder


def shared_dir() -> Path:
    env = os.environ.get("CRASH_AGGREGATES_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def original_queries() -> list[str]:
    """The ```sql blocks of the original README, read at test time (never copied)."""
    path = shared_dir() / "seed" / "original-README.md"
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3, f"expected three ```sql blocks in {path}, found {len(blocks)}"
    return blocks


def ratio(a: float, b: float) -> float:
    """a / b with IEEE 754 semantics (Presto's double division)."""
    if b == 0:
        return float("nan") if a == 0 else float("inf") * (1 if a > 0 else -1)
    return a / b
