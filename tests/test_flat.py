"""The flat sidecar: written with every partition, the same rows as the part files, named in _SUCCESS."""

from __future__ import annotations

import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import check_sidecar, run, write_day

from crash_aggregates import flat, storage
from crash_aggregates.storage import SCHEMA

DAY = "2016-03-05"


def table(rows) -> pa.Table:
    """rows: (activity_date, dimensions as a list of pairs or None, stats as a list of pairs or None)."""
    activity, dims, stats = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table(
        [pa.array(activity, pa.string()), pa.array(dims, SCHEMA[1].type), pa.array(stats, SCHEMA[2].type)],
        schema=SCHEMA,
    )


# (rows, expected flat columns: {name: values}); the expected values are written by hand.
FLAT_CASES = {
    "every row has every key": (
        [
            ("d1", [("channel", "release"), ("os", "Linux")], [("usage_hours", 2.0)]),
            ("d2", [("channel", "beta"), ("os", "Darwin")], [("usage_hours", 3.5)]),
        ],
        {
            "dimensions['channel']": ["release", "beta"],
            "dimensions['os']": ["Linux", "Darwin"],
            "stats['usage_hours']": [2.0, 3.5],
        },
    ),
    "a key absent from some rows is NULL there": (
        [
            ("d1", [("channel", "release")], [("usage_hours", 1.0)]),
            ("d2", [("channel", "beta"), ("experiment_id", "x@exp")], [("usage_hours", 2.0), ("main_crashes", 4.0)]),
            ("d3", [], []),
        ],
        {
            "dimensions['channel']": ["release", "beta", None],
            "dimensions['experiment_id']": [None, "x@exp", None],
            "stats['main_crashes']": [None, 4.0, None],
            "stats['usage_hours']": [1.0, 2.0, None],
        },
    ),
    "NULL maps and NULL values": (
        [("d1", None, [("usage_hours", None)]), ("d2", [("channel", None)], None)],
        {"dimensions['channel']": [None, None], "stats['usage_hours']": [None, None]},
    ),
    "keys equal but for case get no column": (
        [("d1", [("Channel", "a"), ("os", "x")], []), ("d2", [("channel", "b")], [])],
        {"dimensions['os']": ["x", None]},
    ),
    "a quote in a key is doubled in the column name": (
        [("d1", [("it's", "yes")], [])],
        {"dimensions['it''s']": ["yes"]},
    ),
    "no rows": ([], {}),
}


@pytest.mark.parametrize("rows, expected", FLAT_CASES.values(), ids=FLAT_CASES.keys())
def test_flat_table(rows, expected):
    source = table(rows)
    got, keys = flat.flat_table(source)
    assert got.column_names == ["activity_date", "dimensions", "stats", *expected]
    assert got.select([0, 1, 2]).equals(source)
    assert {name: got.column(name).to_pylist() for name in got.column_names[3:]} == expected
    assert [flat.column_name(m, k) for m in flat.MAPS for k in keys[m]] == list(expected)


def test_flat_table_of_sliced_and_chunked_input():
    rows = [
        ("d1", [("a", "1")], [("s", 1.0)]),
        ("d2", None, []),
        ("d3", [("b", "2"), ("a", "3")], None),
        ("d4", [("a", "4")], [("s", 2.0)]),
    ]
    whole = table(rows)
    pieces = pa.concat_tables([whole.slice(2), whole.slice(0, 2)])  # two chunks, each a slice
    got, _ = flat.flat_table(pieces)
    assert got.column("dimensions['a']").to_pylist() == ["3", "4", "1", None]
    assert got.column("dimensions['b']").to_pylist() == ["2", None, None, None]
    assert got.column("stats['s']").to_pylist() == [None, 2.0, 1.0, None]


def ping(n: int, doc_type: str = "main") -> dict:
    payload = {"info": {"subsessionLength": 600 * (n % 5), "subsessionStartDate": "2016-03-04T00:00:00.0+01:00"}}
    if doc_type == "crash":
        payload = {"crashDate": "2016-03-04", "processType": "main"}
    return {
        "type": doc_type,
        "creationDate": "2016-03-04T12:00:00Z",
        "meta": {"submissionDate": "20160305", "docType": doc_type, "geoCountry": ["US", "DE"][n % 2]},
        "application": {"name": "Firefox", "channel": ["release", "beta", "nightly"][n % 3]},
        # an OS on some pings only: a dimension that some aggregates lack
        "environment": {
            "build": {"version": "45.0", "buildId": f"2016030{n % 4}000000"},
            **({"system": {"os": {"name": "Linux"}}} if n % 5 else {}),
        },
        "payload": payload,
    }


def test_the_job_writes_a_sidecar_that_matches_its_part_file(tmp_path):
    write_day(tmp_path / "in", DAY, [ping(i, "crash" if i % 6 == 0 else "main") for i in range(400)])
    result = run(
        "run",
        "--input",
        tmp_path / "in",
        "--output",
        tmp_path / "out",
        "--min-submission-date",
        DAY,
        "--max-submission-date",
        DAY,
        "--workers",
        "1",
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / f"submission_date={DAY}"
    success = json.loads((folder / "_SUCCESS").read_text())
    assert success["files"] == ["part-00000.parquet"]  # the data files alone, as before
    assert success["flat"]["file"] == "_flat.parquet.sidecar"
    part, sidecar = pq.read_table(folder / "part-00000.parquet"), pq.read_table(folder / "_flat.parquet.sidecar")
    assert part.num_rows > 10
    check_sidecar(part, sidecar, success["flat"]["keys"])
    assert (
        "os_name" in success["flat"]["keys"]["dimensions"]
        and None in sidecar.column("dimensions['os_name']").to_pylist()
    )
    assert "usage_hours" in success["flat"]["keys"]["stats"]
    [partition] = storage.published(tmp_path / "out").values()
    assert partition.files == [folder / "part-00000.parquet"]
    assert partition.sidecar == storage.FlatSidecar(
        folder / "_flat.parquet.sidecar", {m: tuple(success["flat"]["keys"][m]) for m in flat.MAPS}
    )


MARKERS = {
    "as published before sidecars": ({"files": ["part-00000.parquet"], "submission_date": DAY}, None),
    "an empty Hadoop marker": ("", None),
    "a sidecar that is not a sidecar's name": (
        {"files": ["part-00000.parquet"], "flat": {"file": "part-00000.parquet", "keys": {}}},
        None,
    ),
    "a sidecar in another folder": (
        {"files": ["part-00000.parquet"], "flat": {"file": "../_flat.parquet", "keys": {}}},
        None,
    ),
    "keys that are not strings": (
        {"files": ["part-00000.parquet"], "flat": {"file": "_flat.parquet", "keys": {"stats": [1]}}},
        None,
    ),
    "a sidecar": (
        {
            "files": ["part-00000.parquet"],
            "flat": {"file": "_flat.parquet.sidecar", "keys": {"dimensions": ["channel"]}},
        },
        ("_flat.parquet.sidecar", {"dimensions": ("channel",), "stats": ()}),
    ),
    "a sidecar as earlier versions named it": (
        {"files": ["part-00000.parquet"], "flat": {"file": "_flat.parquet", "keys": {"dimensions": ["channel"]}}},
        ("_flat.parquet", {"dimensions": ("channel",), "stats": ()}),
    ),
}


@pytest.mark.parametrize("marker, sidecar", MARKERS.values(), ids=MARKERS.keys())
def test_what_a_success_marker_says_about_the_sidecar(tmp_path, marker, sidecar):
    folder = tmp_path / f"submission_date={DAY}"
    folder.mkdir()
    pq.write_table(table([]), folder / "part-00000.parquet")
    (folder / "_SUCCESS").write_text(marker if isinstance(marker, str) else json.dumps(marker))
    partition = storage.published(tmp_path)[DAY]
    assert partition.files == [folder / "part-00000.parquet"]
    expected = storage.FlatSidecar(folder / sidecar[0], sidecar[1]) if sidecar else None
    assert partition.sidecar == expected
    assert storage.published_partitions(tmp_path) == {DAY: partition.files}


def test_a_replaced_partition_has_the_new_sidecar(tmp_path):
    one = table([("d1", [("channel", "release")], [("usage_hours", 1.0)])])
    two = table([("d1", [("os", "Linux")], [("usage_hours", 5.0)])])
    for rows in (one, two):
        storage.publish_partition(tmp_path, date(2016, 3, 5), rows, {})
    [partition] = storage.published(tmp_path).values()
    assert partition.sidecar.keys == {"dimensions": ("os",), "stats": ("usage_hours",)}
    assert pq.read_table(partition.sidecar.file).column_names[3:] == ["dimensions['os']", "stats['usage_hours']"]
