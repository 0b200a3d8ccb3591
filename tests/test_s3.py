"""Object storage: the job reads pings from and publishes aggregates to S3.

Against a real S3 API on loopback (moto's standalone server, IAM enforced,
see s3server.py): the same partitions as a local run, reading back through
``published_partitions``/DuckDB, a run killed mid-upload, leftovers, ranged
reads in worker processes, retries of transient errors, and one clear
message for each way a location can be unusable. No request leaves
127.0.0.1: the endpoint is always set, instance metadata is disabled and no
AWS config file is read.
"""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from helpers import (  # noqa: E402
    READER_DAYS,
    REPO,
    check_sidecar,
    doubled,
    duckdb_totals,
    part_file_totals,
    publish_with_job,
    read_partition,
    read_report,
    read_split_lines,
    run,
    run_process,
    run_snippet,
    same_totals,
    snippets,
    sql_totals,
    write_day,
)
from s3server import DROP, REGION, S3, FaultProxy, free_port, make_user, use_keys  # noqa: E402

from crash_aggregates import location, storage  # noqa: E402
from crash_aggregates.sources import list_input, plan_splits, read_lines  # noqa: E402
from crash_aggregates.stores import s3 as s3_store  # noqa: E402
from crash_aggregates.stores import s3_client, store_for  # noqa: E402

DAY = "2016-03-05"
DATES = ("--min-submission-date", DAY, "--max-submission-date", DAY)


def ping(n: int, doc_type: str = "main", channel: str = "release") -> dict:
    payload = {
        "info": {"subsessionLength": 600 * (n % 7), "subsessionStartDate": f"2016-03-0{n % 5 + 1}T00:00:00.0+01:00"}
    }
    if doc_type == "crash":
        payload = {"crashDate": "2016-03-04", "processType": "main"}
    return {
        "type": doc_type,
        "creationDate": "2016-03-04T12:00:00Z",
        "meta": {"submissionDate": "20160305", "docType": doc_type, "geoCountry": ["US", "DE", "FR", "JP"][n % 4]},
        "application": {"name": "Firefox", "channel": channel},
        "environment": {
            "build": {"version": "45.0", "buildId": f"2016030{n % 3 + 1}000000"},
            "system": {"os": {"name": ["Windows_NT", "Linux", "Darwin"][n % 3]}},
        },
        "payload": payload,
    }


def pings(n: int, channel: str = "release", offset: int = 0) -> list:
    return [ping(i + offset, "crash" if i % 9 == 0 else "main", channel) for i in range(n)] + ["{broken", ""]


# -- fixtures ----------------------------------------------------------------------


def s3_rows(root: str, day: str = DAY) -> dict:
    """Like helpers.read_partition, for the files _SUCCESS names under an S3 root."""
    fs = storage.arrow_filesystem(root)
    rows = {}
    for f in storage.published_partitions(root)[day]:
        for row in pq.read_table(storage.arrow_path(f), filesystem=fs).to_pylist():
            key = (row["activity_date"], frozenset(row["dimensions"]))
            assert key not in rows, f"duplicate aggregate {key}"
            rows[key] = dict(row["stats"])
    return rows


COUNTERS = (
    "main_pings_processed",
    "main_pings_ignored",
    "crash_pings_processed",
    "crash_pings_ignored",
    "ignored_by_reason",
    "aggregates",
    "input_files",
    "input_bytes",
    "corrupt_files",
)


def counters(report: dict) -> dict:
    return {k: report[k] for k in COUNTERS}


def write_inputs(root: Path) -> None:
    """Plain (split in many ranges), two-member gzip, zstd, a nested file; markers to skip."""
    lines = pings(3000)
    write_day(root, DAY, lines[:1500], "a.ndjson")
    path = write_day(root, DAY, lines[1500:2200], "b.ndjson.gz", compression="gzip")
    path.write_bytes(
        path.read_bytes() + gzip.compress(b"".join(json.dumps(p).encode() + b"\n" for p in lines[2200:2500]))
    )
    write_day(root, DAY, lines[2500:2900], "c.log", compression="zstd")  # compression sniffed, not named
    write_day(root / f"submission_date={DAY}", "x", lines[2900:], "d.ndjson")  # nested: sub/submission_date=x/
    (root / f"submission_date={DAY}" / "_SUCCESS").write_bytes(b"")
    (root / f"submission_date={DAY}" / ".hidden").write_bytes(b"{junk")


# -- round trip --------------------------------------------------------------------


def test_s3_round_trip_equals_local(s3, tmp_path, monkeypatch):
    monkeypatch.setattr("crash_aggregates.sources.SPLIT_BYTES", 16384)  # many byte ranges per object
    write_inputs(tmp_path / "in")
    assert run("run", "--input", tmp_path / "in", "--output", tmp_path / "out", *DATES, "--workers", "2").exit_code == 0
    reference, report = read_partition(tmp_path / "out", DAY), read_report(tmp_path / "out", DAY)
    local_bytes = (tmp_path / "out" / f"submission_date={DAY}" / "part-00000.parquet").read_bytes()

    s3.upload(tmp_path / "in", "pings")
    result = run("run", "--input", s3.url("pings"), "--output", s3.url("aggregates") + "/", *DATES, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert f"-> {s3.url('aggregates', f'submission_date={DAY}')}" in result.output

    root = s3.url("aggregates")
    assert s3_rows(root) == reference
    s3_report = storage.read_report(root, date(2016, 3, 5))
    assert counters(s3_report) == counters(report)
    assert s3_report["input_files"] == 4 and report["input_files"] == 4
    [part] = storage.published_partitions(root)[DAY]
    assert s3.fs.cat_file(part) == local_bytes  # the very same Parquet bytes
    # The sidecar is versioned like the data file and named in _SUCCESS.
    success = json.loads(s3.fs.cat_file(s3.url("aggregates", f"submission_date={DAY}", "_SUCCESS")))
    sidecar = f"_flat-{success['version']}.parquet.sidecar"
    assert location.name(part) == f"part-{success['version']}-00000.parquet"
    names = s3.keys("aggregates")
    assert names == sorted(
        [f"aggregates/submission_date={DAY}/{n}" for n in ("_SUCCESS", "_report.json", location.name(part), sidecar)]
    )
    assert success["files"] == [location.name(part)] and success["report"] == s3_report
    assert success["flat"]["file"] == sidecar
    assert storage.published(root)[DAY].sidecar.file == s3.url("aggregates", f"submission_date={DAY}", sidecar)
    local_sidecar = tmp_path / "out" / f"submission_date={DAY}" / "_flat.parquet.sidecar"
    assert s3.fs.cat_file(s3.url("aggregates", f"submission_date={DAY}", sidecar)) == local_sidecar.read_bytes()
    check_sidecar(pq.read_table(io.BytesIO(local_bytes)), pq.read_table(local_sidecar), success["flat"]["keys"])
    assert json.loads(s3.fs.cat_file(s3.url("aggregates", f"submission_date={DAY}", "_report.json"))) == s3_report

    # The local _SUCCESS has the same format.
    local_success = json.loads((tmp_path / "out" / f"submission_date={DAY}" / "_SUCCESS").read_text())
    assert sorted(local_success) == sorted(success) and local_success["files"] == ["part-00000.parquet"]

    # S3 input, local output: the same partition again.
    assert (
        run("run", "--input", s3.url("pings"), "--output", tmp_path / "out2", *DATES, "--workers", "1").exit_code == 0
    )
    assert read_partition(tmp_path / "out2", DAY) == reference

    # DuckDB reads the published files from S3 on a fenced connection, as the sql command does.
    import duckdb

    files = [str(f) for f in storage.published_partitions(root)[DAY]]
    conn = duckdb.connect(":memory:")
    storage.register_duckdb(conn, root)
    listing = ", ".join(f"'{f}'" for f in files)
    conn.execute(f"SET allowed_paths = [{listing}]")
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")
    got = conn.execute(
        f"SELECT submission_date, count(*), sum(stats['ping_count']), sum(stats['usage_hours']) "
        f"FROM read_parquet([{listing}], hive_partitioning = true, hive_types = {{'submission_date': DATE}}) GROUP BY 1"
    ).fetchall()
    assert got == [
        (
            date(2016, 3, 5),
            len(reference),
            sum(s["ping_count"] for s in reference.values()),
            pytest.approx(sum(s["usage_hours"] for s in reference.values())),
        )
    ]

    # The sql command over s3:// gives what it gives over the local copy.
    query = (
        "SELECT dimensions['channel'] AS channel, count(*) AS n, sum(stats['usage_hours']) AS hours "
        "FROM crash_aggregates GROUP BY 1 ORDER BY 1"
    )
    over_s3 = run("sql", "--data", root, "--format", "csv", query)
    assert over_s3.exit_code == 0, over_s3.output
    assert over_s3.stdout == run("sql", "--data", tmp_path / "out", "--format", "csv", query).stdout
    assert over_s3.stdout.count("\n") > 1
    # ... reading the sidecar, on a fenced connection that allows it.
    from crash_aggregates.sql import connect, plan, prepare

    conn = connect(root)
    try:
        assert "crash_aggregates_flat" in plan(prepare(query), conn)
        assert conn.sql(plan(prepare(query), conn)).fetchall() == conn.sql(prepare(query).duckdb_sql).fetchall()
    finally:
        conn.close()
    missing = run_process("sql", "--data", "s3://no-such-bucket-here/x", "SELECT 1 FROM crash_aggregates")
    assert missing.returncode == 1 and "s3://no-such-bucket-here" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_generate_to_s3_then_run_equals_local(s3, tmp_path):
    dates = ("--min-submission-date", DAY, "--max-submission-date", DAY)
    args = ("--pings-per-day", "400", "--seed", "3")
    assert run("generate", "--output", tmp_path / "pings", *dates, *args).exit_code == 0
    assert run("generate", "--output", s3.url("gen"), *dates, *args).exit_code == 0
    local = sorted(p.name for p in (tmp_path / "pings" / f"submission_date={DAY}").iterdir())
    assert s3.keys("gen") == [f"gen/submission_date={DAY}/{n}" for n in local]
    for name in local:  # the very same bytes
        assert (
            s3.fs.cat_file(s3.url("gen", f"submission_date={DAY}", name))
            == (tmp_path / "pings" / f"submission_date={DAY}" / name).read_bytes()
        )
    result = run("run", "--input", s3.url("gen"), "--output", s3.url("agg"), *dates)
    assert result.exit_code == 0, result.output
    assert run("run", "--input", tmp_path / "pings", "--output", tmp_path / "agg", *dates).exit_code == 0
    assert s3_rows(s3.url("agg")) == read_partition(tmp_path / "agg", DAY)
    missing = run_process("generate", "--output", "s3://no-such-bucket-here/x", *dates, *args)
    assert missing.returncode == 1 and "s3://no-such-bucket-here" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_s3_ranges_read_in_fresh_worker_processes(s3, tmp_path):
    """Splits of one object read in spawned processes (as Spark's workers would): each line once."""
    lines = [json.dumps({"n": i, "pad": "x" * (i % 97)}).encode() for i in range(4000)]
    write_day(tmp_path / "in", DAY, lines, "big.ndjson")
    write_day(tmp_path / "in", DAY, lines[:500], "small.ndjson.zst", compression="zstd")
    s3.upload(tmp_path / "in", "in")
    files = list_input(s3.url("in"), date(2016, 3, 5))
    assert [(location.name(f.path), f.compression) for f in files] == [
        ("big.ndjson", "none"),
        ("small.ndjson.zst", "zstd"),
    ]
    assert all(f.path.startswith("s3://") for f in files)
    splits = plan_splits(files, 20000)
    assert len(splits) > 10
    # The function lives in helpers (on the spawned children's path however pytest
    # was started), and an executor raises, where a Pool would hang, if a child dies.
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        got = list(pool.map(read_split_lines, splits))
    assert [line for part in got[:-1] for line in part] == lines
    assert got[-1] == lines[:500]
    # An object replaced after it was listed is not read as a mix of two versions.
    s3.fs.pipe_file(files[0].path, b"\n".join(reversed(lines)) + b"\n")
    with pytest.raises(location.StorageError, match="changed while it was being read"):
        list(read_lines(splits[3]))


# -- publish protocol -------------------------------------------------------------------


def test_killed_upload_leaves_previous_version_and_next_run_cleans(s3, tmp_path):
    write_day(tmp_path / "in", DAY, pings(200))
    s3.upload(tmp_path / "in", "in")
    out = s3.url("out")
    assert run("run", "--input", s3.url("in"), "--output", out, *DATES, "--workers", "1").exit_code == 0
    old_rows, old_report = s3_rows(out), storage.read_report(out, date(2016, 3, 5))
    [old_file] = storage.published_partitions(out)[DAY]

    write_day(tmp_path / "in2", DAY, pings(500, channel="beta"))
    s3.upload(tmp_path / "in2", "in")  # replaces the day's input object
    env = {**os.environ, storage.PAUSE_ENV: "120"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crash_aggregates.cli",
            "run",
            "--input",
            s3.url("in"),
            "--output",
            out,
            *DATES,
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    report_url = s3.url("out", f"submission_date={DAY}", "_report.json")
    deadline = time.monotonic() + 60
    try:
        # The new data file and _report.json are uploaded; the run now waits before _SUCCESS.
        while json.loads(s3.fs.cat_file(report_url))["main_pings_processed"] == old_report["main_pings_processed"]:
            assert proc.poll() is None and time.monotonic() < deadline, "the run never reached its upload"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partition = s3.keys(f"out/submission_date={DAY}")
    assert len([k for k in partition if location.name(k).startswith("part-")]) == 2  # the killed run's files are there
    assert len([k for k in partition if location.name(k).startswith("_flat-")]) == 2
    # ... but readers still get the previous version, data and report alike.
    assert storage.published_partitions(out) == {DAY: [old_file]}
    assert s3_rows(out) == old_rows
    assert storage.read_report(out, date(2016, 3, 5)) == old_report

    result = run("run", "--input", s3.url("in"), "--output", out, *DATES, "--workers", "1")
    assert result.exit_code == 0, result.output
    [new_file] = storage.published_partitions(out)[DAY]
    assert new_file != old_file
    assert [k for k in s3.keys(f"out/submission_date={DAY}") if location.name(k).startswith("part-")] == [
        new_file.split("/", 3)[3]
    ]
    # The old version's sidecar and the killed run's are gone as well.
    new_sidecar = storage.published(out)[DAY].sidecar.file
    assert [k for k in s3.keys(f"out/submission_date={DAY}") if location.name(k).startswith("_flat-")] == [
        new_sidecar.split("/", 3)[3]
    ]
    rows = s3_rows(out)
    assert {dict(d)["channel"] for _, d in rows} == {"beta"}
    assert storage.read_report(out, date(2016, 3, 5))["main_pings_processed"] == sum(
        s["ping_count"] for s in rows.values()
    )


UPLOADS, WRITES = ("PUT", "POST"), ("PUT", "POST", "DELETE")


@pytest.mark.parametrize(
    "fault, first_failed, methods",
    [
        pytest.param(500, 2, UPLOADS, id="500s-from-the-data-file"),
        pytest.param(500, 4, UPLOADS, id="500s-from-the-report"),
        pytest.param(DROP, 2, UPLOADS, id="dropped-connections-from-the-data-file"),
        pytest.param(DROP, 4, UPLOADS, id="dropped-connections-from-the-report"),
        pytest.param(500, 4, WRITES, id="store-down-from-the-report"),
    ],
)
def test_upload_faults_keep_the_previous_version(s3, tmp_path, fault, first_failed, methods):
    """The store answers 500, or drops the connection halfway through the body, from an upload of
    the run on: the second (the data file; the first is the output's lock) or the fourth
    (the report, after the data file and the sidecar went up). The date fails in one line,
    readers keep the previous version, the failed run removes what it uploaded, and the
    next run publishes. With the store down (deletes failing too) the failed run's files
    and its lock stay: a second line warns about the lock, and the next run (same host,
    the holder dead) takes the lock over, publishes and removes them."""
    write_day(tmp_path / "old", DAY, pings(200))
    write_day(tmp_path / "new", DAY, pings(500, channel="beta"))
    out = s3.url("out")
    assert run("run", "--input", tmp_path / "old", "--output", out, *DATES, "--workers", "1").exit_code == 0
    old_rows, old_totals, old_report = s3_rows(out), sql_totals(out), storage.read_report(out, date(2016, 3, 5))
    [old_file] = storage.published_partitions(out)[DAY]
    old_keys = s3.keys(f"out/submission_date={DAY}")

    uploads = []

    def failing_from_the_nth_write(method: str, path: str):
        if method in methods and "/out/" in path:
            uploads.append((method, path))
            if len(uploads) >= first_failed:
                return fault
        return None

    with FaultProxy(s3.endpoint) as proxy:
        proxy.fault = failing_from_the_nth_write
        # A real process: its stderr and exit code as the shell sees them.
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "AWS_MAX_ATTEMPTS": "2"}
        failed = run_process("run", "--input", tmp_path / "new", "--output", out, *DATES, "--workers", "1", env=env)
        assert proxy.failures >= 1
    # The upload that first failed: the data file, or the report after the data file and sidecar.
    first = location.name(uploads[first_failed - 1][1])
    assert first.startswith("part-") if first_failed == 2 else first == "_report.json", uploads
    assert failed.returncode == 1, failed.stderr
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert "Traceback" not in failed.stderr, failed.stderr
    assert lines[0].startswith(f"{DAY}: failed: cannot publish to {out}/submission_date={DAY}: "), lines
    assert lines[0].endswith("; the previous partition is left in place"), lines
    if methods == UPLOADS:
        assert len(lines) == 1, lines
    else:
        assert len(lines) == 2 and lines[1].startswith(f"warning: could not give back the lock {out}/.lock: "), lines
    # Readers still get the previous version, data and report alike.
    assert storage.published_partitions(out) == {DAY: [old_file]}
    assert s3_rows(out) == old_rows
    assert sql_totals(out) == old_totals
    assert storage.read_report(out, date(2016, 3, 5)) == old_report
    partition = s3.keys(f"out/submission_date={DAY}")
    if methods == UPLOADS:  # what the failed run uploaded, it removed
        assert partition == old_keys
    else:  # its data file and sidecar are left, unpublished
        assert len(partition) == len(old_keys) + 2 and set(old_keys) <= set(partition), partition

    result = run("run", "--input", tmp_path / "new", "--output", out, *DATES, "--workers", "1")
    assert result.exit_code == 0, result.output
    [new_file] = storage.published_partitions(out)[DAY]
    assert new_file != old_file
    names = [location.name(k) for k in s3.keys(f"out/submission_date={DAY}")]
    assert [n for n in names if n.startswith("part-")] == [location.name(new_file)]
    assert [n for n in names if n.startswith("_flat-")] == [location.name(storage.published(out)[DAY].sidecar.file)]
    assert {dict(d)["channel"] for _, d in s3_rows(out)} == {"beta"}


def test_leftovers_of_other_dates_are_cleaned_when_old(s3, tmp_path, monkeypatch):
    write_day(tmp_path / "in", DAY, pings(50))
    write_day(tmp_path / "in", "2016-03-06", [])
    s3.upload(tmp_path / "in", "in")
    out = s3.url("out")
    assert run("run", "--input", s3.url("in"), "--output", out, *DATES, "--workers", "1").exit_code == 0
    [named] = storage.published_partitions(out)[DAY]
    body = s3.fs.cat_file(named)
    dead = s3.url("out", f"submission_date={DAY}", "part-20160101T000000000000Z-dead000-00000.parquet")
    orphan = s3.url("out", "submission_date=2016-03-01", "part-20160101T000000000000Z-dead000-00000.parquet")
    dead_sidecar = s3.url("out", f"submission_date={DAY}", "_flat-20160101T000000000000Z-dead000.parquet.sidecar")
    # A leftover of a run of an earlier version, which named sidecars *.parquet.
    dead_legacy = s3.url("out", f"submission_date={DAY}", "_flat-20160101T000000000000Z-dead001.parquet")
    named_sidecar = storage.published(out)[DAY].sidecar.file
    for url in (dead, orphan, dead_sidecar, dead_legacy):
        s3.fs.pipe_file(url, body)
    assert storage.published_partitions(out) == {DAY: [named]}  # readers ignore them
    assert storage.published(out)[DAY].sidecar.file == named_sidecar

    other = ("--min-submission-date", "2016-03-06", "--max-submission-date", "2016-03-06", "--workers", "1")
    result = run("run", "--input", s3.url("in"), "--output", out, *other)
    assert result.exit_code == 0, result.output
    assert (
        s3.fs.exists(dead) and s3.fs.exists(orphan) and s3.fs.exists(dead_sidecar) and s3.fs.exists(dead_legacy)
    )  # too recent: may belong to a run still uploading
    monkeypatch.setattr(s3_store, "LEFTOVER_AGE", timedelta(0))
    result = run("run", "--input", s3.url("in"), "--output", out, *other)
    assert result.exit_code == 0, result.output
    assert "left behind by an interrupted run" in result.output
    assert not s3.fs.exists(dead) and not s3.fs.exists(orphan) and not s3.fs.exists(dead_sidecar)
    assert not s3.fs.exists(dead_legacy)
    assert storage.published_partitions(out) == {
        DAY: [named],
        "2016-03-06": storage.published_partitions(out)["2016-03-06"],
    }
    assert s3.fs.exists(named) and s3.fs.exists(named_sidecar)


def test_published_partitions_on_s3(s3):
    root = s3.url("agg")
    assert storage.published_partitions(root) == {}
    s3.fs.pipe_file(s3.url("agg", "submission_date=2016-03-01", "part-0.parquet"), b"x")  # no _SUCCESS: unpublished
    s3.fs.pipe_file(s3.url("agg", "submission_date=2016-03-02", "part-1.parquet"), b"x")
    s3.fs.pipe_file(s3.url("agg", "submission_date=2016-03-02", "part-0.parquet"), b"x")
    s3.fs.pipe_file(s3.url("agg", "submission_date=2016-03-02", "_SUCCESS"), b"")  # Hadoop: every part file
    s3.fs.pipe_file(s3.url("agg", "submission_date=2016-03-03", "part-9.parquet"), b"x")
    s3.fs.pipe_file(
        s3.url("agg", "submission_date=2016-03-03", "_SUCCESS"),
        json.dumps({"files": ["part-9.parquet", "../x"]}).encode(),
    )
    s3.fs.pipe_file(s3.url("agg", "not-a-partition", "_SUCCESS"), b"")
    assert storage.published_partitions(root + "/") == {
        "2016-03-02": [s3.url("agg", "submission_date=2016-03-02", n) for n in ("part-0.parquet", "part-1.parquet")],
        "2016-03-03": [s3.url("agg", "submission_date=2016-03-03", "part-9.parquet")],
    }
    assert storage.success_files(s3.url("agg", "submission_date=2016-03-01")) is None
    assert storage.success_files(s3.url("agg", "submission_date=2016-03-03")) == [
        s3.url("agg", "submission_date=2016-03-03", "part-9.parquet")
    ]
    with pytest.raises(location.StorageError, match="bucket no-such-bucket-here does not exist"):
        storage.published_partitions("s3://no-such-bucket-here/agg")


def test_open_output_appears_only_when_complete(s3, tmp_path):
    for target in (s3.url("gen", "submission_date=2016-03-05", "p.ndjson.gz"), str(tmp_path / "gen" / "p.ndjson.gz")):
        store = store_for(target)
        exists = s3.fs.exists if location.is_url(target) else os.path.exists
        store.makedirs(target.rsplit("/", 1)[0])
        with pytest.raises(RuntimeError):
            with store.open_output(target) as f:
                f.write(b"partial")
                raise RuntimeError("generator failed")
        assert not exists(target)
        with store.open_output(target) as f:
            f.write(b"complete")
            assert not exists(target)
        assert exists(target)
    assert s3.fs.cat_file(s3.url("gen", "submission_date=2016-03-05", "p.ndjson.gz")) == b"complete"
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["p.ndjson.gz"]
    # A large file goes up in parts; a failure aborts the multipart upload.
    big = s3.url("gen", "big.bin")
    with pytest.raises(RuntimeError):
        with store_for(big).open_output(big) as f:
            f.write(os.urandom(s3_client.S3_BLOCK + 1000))
            assert s3.fs.call_s3("list_multipart_uploads", Bucket=s3.bucket).get("Uploads")
            raise RuntimeError("generator failed")
    assert not s3.fs.exists(big)
    assert not s3.fs.call_s3("list_multipart_uploads", Bucket=s3.bucket).get("Uploads")
    data = os.urandom(s3_client.S3_BLOCK + 1000)
    with store_for(big).open_output(big) as f:
        f.write(data)
    assert s3.fs.cat_file(big) == data


# -- configuration -------------------------------------------------------------------


def test_config_data_defaults_and_endpoint_key(s3, tmp_path, monkeypatch):
    write_day(tmp_path / "in", DAY, pings(100))
    s3.upload(tmp_path / "in", "in")
    config = tmp_path / "job.toml"
    config.write_text(
        f'[data]\ninput = "{s3.url("in")}"\noutput = "{s3.url("out")}"\n\n[s3]\nendpoint_url = "{s3.endpoint}"\n'
    )
    # The config's endpoint wins over AWS_ENDPOINT_URL (here a closed port).
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    result = run("run", "--config", config, *DATES, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert sum(s["ping_count"] for s in s3_rows(s3.url("out")).values()) == sum(1 for i in range(100) if i % 9)


def test_local_runs_never_import_the_s3_layer(tmp_path):
    write_day(tmp_path / "in", DAY, pings(20))
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from crash_aggregates.cli import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
        "assert CliRunner().invoke(cli, ['run', '--help']).exit_code == 0\n"
        f"r = CliRunner().invoke(cli, ['run', '--input', {str(tmp_path / 'in')!r},"
        f" '--output', {str(tmp_path / 'out')!r},"
        f" '--min-submission-date', '{DAY}', '--max-submission-date', '{DAY}', '--workers', '1'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('s3fs', 'fsspec', 'botocore', 'aiobotocore', 'boto3') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_unusable_locations_are_usage_errors(tmp_path, monkeypatch):
    result = run("run", "--input", "gs://bucket/in", "--output", tmp_path / "out", *DATES)
    assert result.exit_code == 2 and "unsupported location gs://bucket/in" in result.output
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if the s3 extra were not installed
    result = run("run", "--input", tmp_path, "--output", "s3://bucket/out", *DATES)
    assert result.exit_code == 2 and "pip install 'crash-aggregates[s3]'" in result.output


def documented_policy(bucket: str) -> dict:
    """The minimal IAM policy of the docs (docs/object-storage.md), for one bucket."""
    text = (REPO / "docs" / "object-storage.md").read_text()
    block = text.split("## Permissions", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block.replace("INPUT_BUCKET", bucket).replace("OUTPUT_BUCKET", bucket))


def test_documented_minimal_policy_is_enough(s3, tmp_path, monkeypatch):
    import boto3

    policy = documented_policy(s3.bucket)
    for statement in policy["Statement"]:
        # moto evaluates actions and resources, not the s3:prefix condition
        # (it would deny every request that has one), so it is left out here.
        statement.pop("Condition", None)
    iam = boto3.client("iam", endpoint_url=s3.endpoint, region_name=REGION)
    keys = make_user(iam, f"job-{s3.bucket}", policy)
    write_day(tmp_path / "in", DAY, pings(100))
    s3.upload(tmp_path / "in", "pings")
    s3.fs.pipe_file(s3.url("private", "x"), b"secret")
    use_keys(monkeypatch, keys)
    for _ in range(2):  # the second run replaces the partition: deletes the old version
        result = run("run", "--input", s3.url("pings"), "--output", s3.url("aggregates"), *DATES, "--workers", "1")
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output
    assert len(s3.keys("aggregates")) == 4  # _SUCCESS, _report.json, the data file and the sidecar
    assert sum(s["ping_count"] for s in s3_rows(s3.url("aggregates")).values()) == sum(1 for i in range(100) if i % 9)
    # ... and no more than that.
    with pytest.raises(location.StorageError, match="access denied"):
        storage.read_report(s3.url("private"), date(2016, 3, 5))
    with pytest.raises(PermissionError):
        s3.fs.pipe_file(s3.url("pings", "new.ndjson"), b"{}")

    # Without s3:DeleteObject the job publishes all the same, and says what it left.
    [statement] = [st for st in policy["Statement"] if st["Sid"] == "PublishAggregates"]
    statement["Action"].remove("s3:DeleteObject")
    use_keys(monkeypatch, make_user(iam, f"nodelete-{s3.bucket}", policy))  # iam still signs as the writer
    [old] = storage.published_partitions(s3.url("aggregates"))[DAY]
    result = run("run", "--input", s3.url("pings"), "--output", s3.url("aggregates"), *DATES, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "warning: 2016-03-05: could not delete 2 old file(s)" in result.output and "AccessDenied" in result.output
    assert f"warning: could not give back the lock {s3.url('aggregates', '.lock')}: access denied" in result.output
    [new] = storage.published_partitions(s3.url("aggregates"))[DAY]
    assert new != old and s3.fs.exists(old)


# -- errors --------------------------------------------------------------------------------


ERROR_CASES = {
    "wrong access key": (
        "in",
        "out",
        {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"},
        "the credentials were refused (InvalidAccessKeyId",
    ),
    "wrong secret key": (
        "in",
        "out",
        {"AWS_SECRET_ACCESS_KEY": "not-the-secret"},
        "the credentials were refused (SignatureDoesNotMatch",
    ),
    "no credentials": (
        "in",
        "out",
        {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
        "no AWS credentials found",
    ),
    "missing input bucket": ("s3://no-such-bucket-in/pings", "out", {}, "the bucket no-such-bucket-in does not exist"),
    "missing output bucket": ("in", "s3://no-such-bucket-out/agg", {}, "the bucket no-such-bucket-out does not exist"),
    "unreachable endpoint": (
        "in",
        "out",
        {"AWS_ENDPOINT_URL": "closed"},
        "cannot reach the S3 endpoint http://127.0.0.1:",
    ),
    "permission denied on write": ("in", "out", {"reader": True}, "access denied (AccessDenied on PutObject)"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_storage_errors_one_clear_message(s3, tmp_path, case):
    write_day(tmp_path / "in", DAY, pings(60))
    write_day(tmp_path / "in", "2016-03-06", pings(60))
    s3.upload(tmp_path / "in", "in")
    assert run("run", "--input", s3.url("in"), "--output", s3.url("out"), *DATES, "--workers", "1").exit_code == 0
    before = {k: s3.fs.cat_file(f"{s3.bucket}/{k}") for k in s3.keys("out")}
    [published] = storage.published_partitions(s3.url("out"))[DAY]

    input_url, output_url, changes, message = ERROR_CASES[case]
    input_url = input_url if input_url.startswith("s3://") else s3.url(input_url)
    output_url = output_url if output_url.startswith("s3://") else s3.url(output_url)
    env = dict(os.environ, AWS_MAX_ATTEMPTS="2")
    for name, value in changes.items():
        if name == "reader":
            env.update(AWS_ACCESS_KEY_ID=s3.server.reader.access_key, AWS_SECRET_ACCESS_KEY=s3.server.reader.secret_key)
        elif value is None:
            env.pop(name)
        else:
            env[name] = f"http://127.0.0.1:{free_port()}" if value == "closed" else value
    started = time.monotonic()
    result = run_process(
        "run",
        "--input",
        input_url,
        "--output",
        output_url,
        "--min-submission-date",
        DAY,
        "--max-submission-date",
        "2016-03-06",
        "--workers",
        "1",
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    named = [line for line in result.stderr.splitlines() if "s3://" in line and message in line]
    assert len(named) == 1, result.stderr  # one message, naming the URL...
    assert (input_url in named[0]) or (output_url in named[0])
    assert "2016-03-06: " not in result.stderr  # ...and the run stops there
    assert time.monotonic() - started < 60
    # Nothing half-published: the bucket's output is byte for byte what it was.
    assert {k: s3.fs.cat_file(f"{s3.bucket}/{k}") for k in s3.keys("out")} == before
    assert storage.published_partitions(s3.url("out")) == {DAY: [published]}


def test_transient_errors_are_retried_and_reads_are_ranged(s3, tmp_path, monkeypatch):
    lines = pings(3000)
    write_day(tmp_path / "in", DAY, lines[:2500], "big.ndjson")
    write_day(tmp_path / "in", DAY, lines[2500:], "small.ndjson.gz", compression="gzip")
    s3.upload(tmp_path / "in", "in")
    assert run("run", "--input", s3.url("in"), "--output", tmp_path / "ref", *DATES, "--workers", "1").exit_code == 0
    reference = read_partition(tmp_path / "ref", DAY)
    size = (tmp_path / "in" / f"submission_date={DAY}" / "big.ndjson").stat().st_size
    # Small reads and blocks, so that this 1 MB object takes many ranged GETs.
    block, read = 128 << 10, 32 << 10
    monkeypatch.setattr(s3_client, "S3_BLOCK", block)
    monkeypatch.setattr("crash_aggregates.sources.BLOCK", read)

    with FaultProxy(s3.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
        proxy.fail_first_of_each = True  # a 503 SlowDown or a 500 for every third request's first attempt
        result = run("run", "--input", s3.url("in"), "--output", s3.url("out"), *DATES, "--workers", "1")
        assert result.exit_code == 0, result.output
        assert proxy.failures >= 5, proxy.failures
        # Input sizes and ETags come from the listing: no HEAD request per object or split.
        assert not [p for m, p, *_ in proxy.log if m == "HEAD" and "/in/" in p]
        assert s3_rows(s3.url("out")) == reference
        # The big object was read in ranges of about the block size, never whole.
        gets = [
            (r, status) for method, path, r, status in proxy.log if method == "GET" and path.endswith("/big.ndjson")
        ]
        assert len(gets) >= size // (block + read) >= 5
        for byte_range, status in gets:
            assert byte_range and status == 206, gets
            lo, hi = map(int, byte_range.removeprefix("bytes=").split("-"))
            assert hi - lo < block + read + 4  # readahead: the read asked for, plus one block

        # A store that keeps failing: the run gives up with one message.
        proxy.fail_first_of_each, proxy.always = False, 503
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # s3fs still retries a SlowDown 3 times: quick
        result = run("run", "--input", s3.url("in"), "--output", s3.url("out"), *DATES, "--workers", "1")
        assert result.exit_code == 1
        # (the first request of a run takes the output's lock)
        assert f"cannot take the lock on {s3.url('out')}: the store kept failing (SlowDown" in result.output


def test_spark_engine_reads_s3_input(s3, tmp_path):
    """The Spark engine reads s3:// through the project's readers: same partition as the embedded one."""
    from crash_aggregates.engines.spark import java_problem

    problem = java_problem()
    if problem:
        if os.environ.get("CRASH_AGGREGATES_REQUIRE_SPARK") == "1":
            pytest.fail(f"CRASH_AGGREGATES_REQUIRE_SPARK=1 but Spark cannot run: {problem}")
        pytest.skip(f"no usable Java: {problem}")
    write_inputs(tmp_path / "in")
    s3.upload(tmp_path / "in", "pings")
    assert run("run", "--input", tmp_path / "in", "--output", tmp_path / "embedded", *DATES).exit_code == 0
    # A real process, so that the JVM and its Python workers inherit the test's AWS environment.
    done = run_process(
        "run",
        "--engine",
        "spark",
        "--spark-master",
        "local[2]",
        "--input",
        s3.url("pings"),
        "--output",
        s3.url("spark"),
        *DATES,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected, got = read_partition(tmp_path / "embedded", DAY), s3_rows(s3.url("spark"))
    assert got.keys() == expected.keys()
    for key, stats in expected.items():
        assert stats.keys() == got[key].keys()
        for name, value in stats.items():
            assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-12)
    report = storage.read_report(s3.url("spark"), date(2016, 3, 5))
    assert report["engine"] == "spark"
    assert counters(report) == counters(read_report(tmp_path / "embedded", DAY))


# -- the layout of earlier versions, and `crash-aggregates migrate` ------------------------


def s3_glob_totals(root: str) -> dict:
    """What DuckDB makes of ``root/*/*.parquet`` on S3 (through the project's S3 filesystem)."""
    import duckdb

    conn = duckdb.connect(":memory:")
    storage.register_duckdb(conn, root)
    return duckdb_totals(f"{root}/*/*.parquet", conn)


def s3_legacy_layout(s3: S3, root: str, dead: str | None = None) -> dict[str, dict]:
    """Each partition's sidecar named as earlier versions named it (``_flat-<version>.parquet``).

    ``dead``: a date that also gets a sidecar a killed run of such a version
    left, older than its ``_SUCCESS``. Returns each date's ``_SUCCESS`` document.
    """
    docs = {}
    for day in READER_DAYS:
        folder = s3.url(root.split("/", 3)[3], f"submission_date={day}")
        doc = json.loads(s3.fs.cat_file(f"{folder}/_SUCCESS"))
        legacy = doc["flat"]["file"].removesuffix(".sidecar")
        s3.fs.copy(f"{folder}/{doc['flat']['file']}", f"{folder}/{legacy}")
        s3.fs.rm(f"{folder}/{doc['flat']['file']}")
        if day == dead:
            s3.fs.pipe_file(
                f"{folder}/_flat-20160101T000000000000Z-dead000.parquet", s3.fs.cat_file(f"{folder}/{legacy}")
            )
        doc["flat"]["file"] = legacy
        s3.fs.pipe_file(f"{folder}/_SUCCESS", (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
        docs[day] = doc
    return docs


def test_migrate_on_s3(s3, tmp_path, monkeypatch):
    local = publish_with_job(tmp_path)
    expected = part_file_totals(local)
    root = publish_with_job(tmp_path, output=s3.url("aggregates"))
    assert same_totals(sql_totals(root), expected)
    assert same_totals(s3_glob_totals(root), expected)  # the current layout: invisible to globs on S3 too

    docs = s3_legacy_layout(s3, root, dead=READER_DAYS[2])
    sidecars = {
        day: s3.fs.cat_file(s3.url("aggregates", f"submission_date={day}", doc["flat"]["file"]))
        for day, doc in docs.items()
    }
    assert same_totals(sql_totals(root), expected)
    globbed = s3_glob_totals(root)
    assert same_totals({d: globbed[d] for d in READER_DAYS[:2]}, doubled({d: expected[d] for d in READER_DAYS[:2]}))
    assert globbed[READER_DAYS[2]]["aggregates"] == 3 * expected[READER_DAYS[2]]["aggregates"]  # and the dead one

    # Running the job again for a date publishes the current layout, and deletes the old sidecar.
    again = ("--min-submission-date", READER_DAYS[0], "--max-submission-date", READER_DAYS[0])
    result = run("run", "--input", tmp_path / "pings", "--output", root, *again, "--workers", 1)
    assert result.exit_code == 0, result.output
    sidecar = location.name(storage.published(root)[READER_DAYS[0]].sidecar.file)
    assert sidecar.endswith(".parquet.sidecar")
    names = [location.name(k) for k in s3.keys(f"aggregates/submission_date={READER_DAYS[0]}")]
    assert [n for n in names if n.startswith("_flat")] == [sidecar]

    keys = s3.keys("aggregates")
    result = run("migrate", "--data", root, "--dry-run")
    assert result.exit_code == 0, result.output
    assert s3.keys("aggregates") == keys
    rename = [
        f"submission_date={d}: renamed {docs[d]['flat']['file']} to {docs[d]['flat']['file']}.sidecar"
        for d in READER_DAYS[1:]
    ]
    dead = (
        f"submission_date={READER_DAYS[2]}: deleted _flat-20160101T000000000000Z-dead000.parquet, "
        "which _SUCCESS does not name"
    )
    assert result.stdout.splitlines() == [
        rename[0].replace("renamed", "would rename"),
        rename[1].replace("renamed", "would rename"),
        dead.replace("deleted", "would delete"),
        "dry run: 2 partition(s) to migrate, 1 already in the current layout; nothing was changed",
    ]

    # With no more permissions than the documented policy gives the job.
    import boto3

    policy = documented_policy(s3.bucket)
    for statement in policy["Statement"]:
        statement.pop("Condition", None)  # moto does not evaluate s3:prefix (see above)
    iam = boto3.client("iam", endpoint_url=s3.endpoint, region_name=REGION)
    use_keys(monkeypatch, make_user(iam, f"migrate-{s3.bucket}", policy))
    result = run("migrate", "--data", root)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        *rename,
        dead,
        "done: 2 partition(s) migrated, 1 already in the current layout",
    ]
    for day in READER_DAYS[1:]:
        folder = s3.url("aggregates", f"submission_date={day}")
        legacy = docs[day]["flat"]["file"]
        assert sorted(location.name(k) for k in s3.keys(f"aggregates/submission_date={day}")) == sorted(
            ["_SUCCESS", "_report.json", *docs[day]["files"], legacy + ".sidecar"]
        )
        doc = json.loads(s3.fs.cat_file(f"{folder}/_SUCCESS"))
        assert doc == {**docs[day], "flat": {**docs[day]["flat"], "file": legacy + ".sidecar"}}
        assert s3.fs.cat_file(f"{folder}/{legacy}.sidecar") == sidecars[day]
    assert same_totals(sql_totals(root), expected)
    result = run("migrate", "--data", root)
    assert result.exit_code == 0 and result.stdout == "done: 0 partition(s) migrated, 3 already in the current layout\n"
    # The files _SUCCESS names, read as docs/readers.md shows.
    [code] = snippets("While the job writes, and on S3", "python")
    [(relation,)] = run_snippet(code.replace('"s3://bucket/aggregates"', repr(root)))[0]
    assert {str(day): n for day, n in relation.fetchall()} == {d: found["aggregates"] for d, found in expected.items()}
    # (fsspec's glob, under DuckDB, asks for more than the job's policy grants.)
    use_keys(monkeypatch, s3.server.writer)
    assert same_totals(s3_glob_totals(root), expected)

    # A sidecar of the old name newer than _SUCCESS may belong to a run still uploading: it stays.
    time.sleep(1.1)  # S3 times have a resolution of one second
    newer = s3.url("aggregates", f"submission_date={READER_DAYS[1]}", "_flat-20990101T000000000000Z-busy000.parquet")
    s3.fs.pipe_file(newer, b"PAR1")
    result = run("migrate", "--data", root)
    assert result.exit_code == 0 and result.stdout == "done: 0 partition(s) migrated, 3 already in the current layout\n"
    assert s3.fs.exists(newer)


def test_migrate_on_s3_without_permission_changes_nothing(s3, tmp_path, monkeypatch):
    root = publish_with_job(tmp_path, output=s3.url("aggregates"))
    expected = sql_totals(root)
    s3_legacy_layout(s3, root)
    keys = s3.keys("aggregates")
    use_keys(monkeypatch, s3.server.reader)  # GetObject and ListBucket only
    result = run("migrate", "--data", root)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: cannot migrate {s3.url('aggregates', f'submission_date={READER_DAYS[0]}')}: "
        "access denied (AccessDenied on CopyObject): the credentials in use lack the permission "
        "(see docs/object-storage.md, section Permissions, for the policy), or are invalid"
    ]
    assert s3.keys("aggregates") == keys
    assert same_totals(sql_totals(root), expected)


def test_oversized_lines_in_s3_objects_as_in_local_files(s3, tmp_path, monkeypatch):
    """Long lines in ranged plain objects, gzip and zstd: skipped, counted and located as in local files."""
    monkeypatch.setattr("crash_aggregates.sources.SPLIT_BYTES", 4096)  # ranges cut through the long lines
    long = [json.dumps({**ping(n), "pad": "x" * (3000 * (n % 4))}).encode() for n in range(1, 13)]
    lines = [json.dumps(ping(n)).encode() for n in range(40)]
    day = lines[:10] + long[:4] + lines[10:20] + long[4:8] + lines[20:] + long[8:]
    write_day(tmp_path / "in", DAY, day, "a.ndjson")
    write_day(tmp_path / "in", DAY, day, "b.ndjson.gz", compression="gzip")
    write_day(tmp_path / "in", DAY, day, "c.ndjson.zst", compression="zstd")
    s3.upload(tmp_path / "in", "in")
    args = ("--max-line-size", "2KiB", "--workers", "2", *DATES)
    assert run("run", "--input", tmp_path / "in", "--output", tmp_path / "out", *args).exit_code == 0
    result = run("run", "--input", s3.url("in"), "--output", s3.url("out"), *args)
    assert result.exit_code == 0, result.output
    local, remote = read_report(tmp_path / "out", DAY), storage.read_report(s3.url("out"), date(2016, 3, 5))
    assert counters(remote) == counters(local)
    too_long = sum(len(line) > 2048 for line in day)
    assert too_long == 9 and remote["ignored_by_reason"]["oversized"] == 3 * too_long
    assert [(location.name(e["path"]), e["offset"], e["length"]) for e in remote["oversized_lines"]] == [
        (Path(e["path"]).name, e["offset"], e["length"]) for e in local["oversized_lines"]
    ]
    assert all(e["path"].startswith(s3.url("in")) for e in remote["oversized_lines"])
    assert s3_rows(s3.url("out")) == read_partition(tmp_path / "out", DAY)
