"""Other tools read the published aggregates as they are and count every aggregate once.

A dataset published by the job is read the ways docs/readers.md shows (DuckDB
and polars globs, polars and pyarrow.dataset on the folder, pandas), and each
must give, per submission date, the number of aggregates and the sum of
every stat that ``crash-aggregates sql`` gives, which in turn equals what
the part files named by ``_SUCCESS`` hold. The flat sidecars beside the part
files are Parquet too: a reader that took one for data would count every
aggregate twice (Spark: test_spark.py; the layout of earlier versions:
test_migrate.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import (
    READER_DAYS,
    duckdb_totals,
    part_file_totals,
    publish_with_job,
    run_snippet,
    same_totals,
    snippets,
    sql_totals,
    stat_names,
)

from crash_aggregates import flat, storage
from crash_aggregates.stores.local import STAGING_PREFIX


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """``(root, totals)``: a dataset published by the job, and what ``sql`` says of it."""
    root = publish_with_job(tmp_path_factory.mktemp("readers"))
    totals = sql_totals(root)
    assert same_totals(totals, part_file_totals(root))
    # The sidecars are there (the tests would prove nothing without them).
    assert all(any(flat.is_file_name(p.name) for p in folder.iterdir()) for folder in root.iterdir())
    return root, totals


@pytest.mark.parametrize("pattern", ["*/*.parquet", "**/*.parquet", "submission_date=*/*.parquet"])
def test_duckdb_globs(published, pattern):
    root, totals = published
    assert same_totals(duckdb_totals(f"{root}/{pattern}"), totals)


def polars_totals(lazy) -> dict:
    import polars as pl

    frame = (
        lazy.group_by(pl.col("submission_date").cast(pl.String))
        .agg(pl.len().alias("aggregates"), *[pl.col("stats").map.get(s).sum().alias(s) for s in stat_names()])
        .collect()
    )
    return {row.pop("submission_date"): row for row in frame.to_dicts()}


@pytest.mark.parametrize("pattern", ["*/*.parquet", "**/*.parquet"])
def test_polars_globs(published, pattern):
    import polars as pl

    root, totals = published
    assert same_totals(polars_totals(pl.scan_parquet(f"{root}/{pattern}", hive_partitioning=True)), totals)


def test_polars_folder(published):
    import polars as pl

    root, totals = published
    lazy = pl.scan_parquet(root, hive_partitioning=True, hidden_file_prefix="_")
    assert same_totals(polars_totals(lazy), totals)
    # Without hidden_file_prefix polars refuses the folder (_SUCCESS and _report.json are
    # not Parquet), or, should a later version read it, it must not count anything twice.
    try:
        got = polars_totals(pl.scan_parquet(root, hive_partitioning=True))
    except pl.exceptions.PolarsError as e:
        assert "different file extensions" in str(e) or "_SUCCESS" in str(e)
    else:
        assert same_totals(got, totals)


def arrow_totals(table) -> dict:
    import pyarrow.compute as pc

    totals = {}
    for day in pc.unique(table["submission_date"]).to_pylist():
        rows = table.filter(pc.equal(table["submission_date"], day))
        found = {"aggregates": rows.num_rows}
        for stat in stat_names():
            found[stat] = pc.sum(pc.map_lookup(rows["stats"], stat, "first")).as_py()
        totals[str(day)] = found
    return totals


def test_pyarrow_dataset_folder(published):
    import pyarrow.dataset as ds

    root, totals = published
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert same_totals(arrow_totals(table), totals)


def pandas_totals(frame) -> dict:
    stats = frame["stats"].map(dict)  # a map arrives as a list of (key, value) pairs
    columns = {s: stats.map(lambda m, s=s: m[s]) for s in stat_names()}
    by_day = frame[["submission_date"]].astype(str).assign(aggregates=1, **columns).groupby("submission_date").sum()
    return {day: {k: row[k] for k in ["aggregates", *stat_names()]} for day, row in by_day.iterrows()}


def test_pandas_folder_and_glob(published):
    import glob

    import pandas as pd

    root, totals = published
    assert same_totals(pandas_totals(pd.read_parquet(root)), totals)
    # A glob of the part files, as a notebook might do it (the date from the folder name).
    files = sorted(glob.glob(f"{root}/*/*.parquet"))
    frames = [pd.read_parquet(f).assign(submission_date=f.split("submission_date=")[1][:10]) for f in files]
    assert same_totals(pandas_totals(pd.concat(frames)), totals)


# -- the snippets of docs/readers.md, run as they are written ----------------------------


def expected_pings(totals: dict) -> dict:
    return {day: (found["aggregates"], found["ping_count"]) for day, found in totals.items()}


@pytest.fixture
def in_docs_folder(published, monkeypatch):
    """The snippets read ``aggregates`` in the current folder: the dataset."""
    root, totals = published
    assert root.name == "aggregates"
    monkeypatch.chdir(root.parent)
    return totals


def test_docs_duckdb_snippet(in_docs_folder):
    import duckdb

    [sql] = snippets("DuckDB", "sql")
    rows = duckdb.sql(sql).fetchall()
    assert {str(day): (n, pings) for day, n, pings in rows} == expected_pings(in_docs_folder)
    assert [day for day, _, _ in rows] == sorted(day for day, _, _ in rows)


def test_docs_polars_snippet(in_docs_folder):
    [code] = snippets("polars", "python")
    [(frame,)] = run_snippet(code)[0]
    assert frame.columns == ["submission_date", "aggregates", "pings"]
    assert {str(d): (n, p) for d, n, p in frame.iter_rows()} == expected_pings(in_docs_folder)


def test_docs_pandas_and_pyarrow_snippets(in_docs_folder):
    pandas_code, arrow_code = snippets("pandas and pyarrow", "python")
    [(frame,)] = run_snippet(pandas_code)[0]
    got = {str(day): (row["size"], row["sum"]) for day, row in frame.iterrows()}
    assert got == expected_pings(in_docs_folder)
    [(rows, pings)] = run_snippet(arrow_code)[0]
    assert rows == sum(n for n, _ in expected_pings(in_docs_folder).values())
    assert pings.as_py() == sum(p for _, p in expected_pings(in_docs_folder).values())


def test_docs_published_files_snippet(published):
    root, totals = published
    [code] = snippets("While the job writes, and on S3", "python")
    code = code.replace('"s3://bucket/aggregates"', repr(str(root)))
    [(relation,)] = run_snippet(code)[0]
    got = {str(day): n for day, n in relation.fetchall()}
    assert got == {day: found["aggregates"] for day, found in totals.items()}


def test_globs_count_once_while_the_job_writes_and_after_it_is_killed(published, tmp_path):
    """DuckDB's and polars' globs look into the job's hidden staging folders: nothing there may match."""
    import polars as pl

    source, totals = published
    root = tmp_path / "aggregates"
    shutil.copytree(source, root)
    day = READER_DAYS[1]
    env = dict(os.environ, **{storage.PAUSE_ENV: "60"})  # the run waits before its _SUCCESS
    args = ("run", "--input", source.parent / "pings", "--output", root, "--workers", 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", *map(str, args)]
        + ["--min-submission-date", day, "--max-submission-date", day],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(root.glob(f".staging-*/{storage.REPORT}")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run never reached its pause"
            time.sleep(0.1)
        [staging] = [p for p in root.iterdir() if p.name.startswith(STAGING_PREFIX)]  # not the .lock
        assert any(p.name.startswith("part-") for p in staging.iterdir())  # the new version is being written
        for state in ("while the job writes", "after it was killed"):
            for pattern in ("*/*.parquet", "**/*.parquet"):
                assert same_totals(duckdb_totals(f"{root}/{pattern}"), totals), (state, pattern)
                lazy = pl.scan_parquet(f"{root}/{pattern}", hive_partitioning=True)
                assert same_totals(polars_totals(lazy), totals), (state, pattern)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert staging.is_dir()  # left for the next run to remove
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
