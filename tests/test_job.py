"""The run command end to end: exit codes, bad input, reruns, workers, atomic replacement."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import read_partition, read_report, run, run_process, write_day

DAY = "2016-03-05"


def ping(n: int, doc_type: str = "main", channel: str = "release", **extra) -> dict:
    payload = {"info": {"subsessionLength": 3600 * (n % 5), "subsessionStartDate": "2016-03-04T00:00:00.0+01:00"}}
    if doc_type == "crash":
        payload = {"crashDate": "2016-03-04", "processType": "main"}
    return {
        "type": doc_type,
        "creationDate": "2016-03-04T12:00:00Z",
        "meta": {"submissionDate": "20160305", "docType": doc_type, "geoCountry": ["US", "DE", "FR"][n % 3]},
        "application": {"name": "Firefox", "channel": channel},
        "environment": {"build": {"version": "45.0", "buildId": f"2016030{n % 3 + 1}000000"}},
        "payload": payload,
        **extra,
    }


def corpus(n: int = 300) -> list:
    lines = [ping(i, "crash" if i % 7 == 0 else "main", ["release", "beta"][i % 2]) for i in range(n)]
    lines += ["", "   ", "{not json", "[1, 2]", b'{"bad utf8": "\xff"}']
    lines.append(ping(1, "event"))
    return lines


def run_day(tmp_path, *extra):
    return run(
        "run",
        "--input",
        tmp_path / "in",
        "--output",
        tmp_path / "out",
        "--min-submission-date",
        DAY,
        "--max-submission-date",
        DAY,
        *extra,
    )


def test_report_counts_every_line(tmp_path):
    write_day(tmp_path / "in", DAY, corpus())
    result = run_day(tmp_path)
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "out", DAY)
    crash = sum(1 for i in range(300) if i % 7 == 0)
    assert report["crash_pings_processed"] == crash
    assert report["main_pings_processed"] == 300 - crash
    assert report["main_pings_ignored"] == 4  # 3 malformed + 1 other doc type; blanks are not pings
    assert report["ignored_by_reason"]["malformed_json"] == 3
    assert report["ignored_by_reason"]["other_doc_type"] == 1
    assert report["aggregates"] == sum(1 for _ in read_partition(tmp_path / "out", DAY))
    assert report["engine"] == "embedded" and report["input_files"] == 1
    assert report["duration_seconds"] >= 0
    assert f"{DAY}: main {300 - crash:,} processed / 4 ignored" in result.output
    assert "done: 1 date(s): 1 published" in result.output
    assert (tmp_path / "out" / f"submission_date={DAY}" / "_SUCCESS").exists()


def test_usage_and_crash_sums(tmp_path):
    write_day(tmp_path / "in", DAY, corpus())
    assert run_day(tmp_path).exit_code == 0
    rows = read_partition(tmp_path / "out", DAY)
    total = lambda name: sum(stats[name] for stats in rows.values())  # noqa: E731
    mains = [i for i in range(300) if i % 7]
    assert total("usage_hours") == sum(i % 5 for i in mains)
    assert total("usage_hours_squared") == sum((i % 5) ** 2 for i in mains)
    assert total("main_crashes") == 300 - len(mains)
    assert total("ping_count") == len(mains)
    assert {dict(d)["channel"] for _, d in rows} == {"release", "beta"}
    assert {activity for activity, _ in rows} == {"2016-03-04"}


def test_same_partition_for_any_workers_and_splits(tmp_path, monkeypatch):
    lines = corpus(2000)
    write_day(tmp_path / "in", DAY, lines[:1000], "a.ndjson")
    write_day(tmp_path / "in", DAY, lines[1000:], "b.ndjson.gz", compression="gzip")
    assert run_day(tmp_path, "--workers", "1").exit_code == 0
    reference = read_partition(tmp_path / "out", DAY)
    part = tmp_path / "out" / f"submission_date={DAY}" / "part-00000.parquet"
    reference_bytes = part.read_bytes()
    monkeypatch.setattr("crash_aggregates.sources.SPLIT_BYTES", 4096)  # many byte ranges
    for workers in ("1", "2"):
        assert run_day(tmp_path, "--workers", workers).exit_code == 0
        assert read_partition(tmp_path / "out", DAY) == reference
    assert part.read_bytes() == reference_bytes  # a rerun replaces the partition with the same bytes


def test_no_input_exit_3(tmp_path):
    (tmp_path / "in").mkdir()
    result = run_day(tmp_path)
    assert result.exit_code == 3
    assert "no input" in result.output
    assert not (tmp_path / "out" / f"submission_date={DAY}").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min-submission-date", "2016-13-01"], "invalid date"),
        (["--min-submission-date", "20160310", "--max-submission-date", "20160301"], "is after"),
        (["--config", "/nonexistent/config.toml"], "cannot read config file"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, args, message):
    (tmp_path / "in").mkdir()
    result = run_process("run", "--input", tmp_path / "in", "--output", tmp_path / "out", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_input_path_exit_2(tmp_path):
    result = run_process("run", "--input", tmp_path / "missing", "--output", tmp_path / "out")
    assert result.returncode == 2 and "is not a folder" in result.stderr and "Traceback" not in result.stderr


def test_exit_codes_are_documented():
    result = run("--help")
    assert "Exit codes" in result.output and "3  a date had no input" in result.output


def _truncated_gzip_day(tmp_path) -> Path:
    good = [ping(i) for i in range(3000)]
    path = write_day(tmp_path / "in", DAY, good, "broken.ndjson.gz", compression="gzip")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    write_day(tmp_path / "in", DAY, [ping(i) for i in range(10)], "fine.ndjson")
    return path


def test_corrupt_file_fails_the_date_and_keeps_old_partition(tmp_path):
    write_day(tmp_path / "in", DAY, corpus())
    assert run_day(tmp_path).exit_code == 0
    before = read_partition(tmp_path / "out", DAY)
    (tmp_path / "in" / f"submission_date={DAY}" / "pings.ndjson").unlink()
    broken = _truncated_gzip_day(tmp_path)
    result = run_process(
        "run",
        "--input",
        tmp_path / "in",
        "--output",
        tmp_path / "out",
        "--min-submission-date",
        DAY,
        "--max-submission-date",
        DAY,
    )
    assert result.returncode == 1
    assert str(broken) in result.stderr and "at byte" in result.stderr and "Traceback" not in result.stderr
    assert read_partition(tmp_path / "out", DAY) == before


def test_allow_corrupt_files_uses_readable_lines(tmp_path):
    broken = _truncated_gzip_day(tmp_path)
    result = run_day(tmp_path, "--allow-corrupt-files")
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "out", DAY)
    [corrupt] = report["corrupt_files"]
    assert corrupt["path"] == str(broken) and corrupt["offset"] > 0
    pings = report["main_pings_processed"] + report["main_pings_ignored"]
    assert 10 < pings < 3010
    # Only the last, cut line can be malformed: every other line read was a whole ping.
    assert report["ignored_by_reason"]["malformed_json"] <= 1


def test_killed_run_leaves_previous_partition(tmp_path):
    """kill -9 at several moments of a replace: readers always see one whole version."""
    write_day(tmp_path / "in", DAY, corpus(50))
    assert run_day(tmp_path).exit_code == 0
    old = read_partition(tmp_path / "out", DAY)
    big = [ping(i, channel="nightly") for i in range(60000)]
    write_day(tmp_path / "in", DAY, big)
    out = tmp_path / "out"
    new = None
    for delay in (0.3, 0.8, 1.5, 2.5):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crash_aggregates.cli",
                "run",
                "--input",
                tmp_path / "in",
                "--output",
                out,
                "--min-submission-date",
                DAY,
                "--max-submission-date",
                DAY,
                "--workers",
                "2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rows = read_partition(out, DAY)
        if rows != old:
            new = new or rows
            assert rows == new  # the complete new version, never a mix
            assert sum(s["ping_count"] for s in rows.values()) == 60000
        visible = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        assert visible == [f"submission_date={DAY}"]
        names = sorted(p.name for p in (out / f"submission_date={DAY}").iterdir())
        assert names == ["_SUCCESS", "_flat.parquet.sidecar", "_report.json", "part-00000.parquet"]
    # The next run removes what the killed ones left aside and publishes.
    result = run_day(tmp_path)
    assert result.exit_code == 0
    assert [p.name for p in out.iterdir()] == [f"submission_date={DAY}"]
    assert sum(s["ping_count"] for s in read_partition(out, DAY).values()) == 60000


def test_failed_publish_keeps_previous_partition(tmp_path, monkeypatch):
    write_day(tmp_path / "in", DAY, corpus(50))
    assert run_day(tmp_path).exit_code == 0
    old = read_partition(tmp_path / "out", DAY)
    write_day(tmp_path / "in", DAY, corpus(80))

    def broken_writer(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pyarrow.parquet.write_table", broken_writer)
    result = run_day(tmp_path)
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert read_partition(tmp_path / "out", DAY) == old
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"submission_date={DAY}"]


def test_parquet_schema(tmp_path):
    write_day(tmp_path / "in", DAY, corpus(20))
    assert run_day(tmp_path).exit_code == 0
    schema = pq.read_schema(tmp_path / "out" / f"submission_date={DAY}" / "part-00000.parquet")
    assert schema.names == ["activity_date", "dimensions", "stats"]
    assert str(schema.field("activity_date").type) == "string" and not schema.field("activity_date").nullable
    for name, value_type in (("dimensions", "string"), ("stats", "double")):
        kind = schema.field(name).type
        assert kind.id == pa.map_(pa.string(), pa.string()).id
        assert (str(kind.key_type), str(kind.item_type)) == ("string", value_type)
    success = json.loads((tmp_path / "out" / f"submission_date={DAY}" / "_SUCCESS").read_text())
    assert success["files"] == ["part-00000.parquet"]


def test_tasks_take_every_split_once_in_order():
    """plan_tasks groups consecutive splits: nothing lost, repeated or reordered,
    whatever the sizes."""
    import random

    from crash_aggregates.engines.embedded import MAX_TASK_BYTES, plan_tasks
    from crash_aggregates.sources import InputFile, Split

    rng = random.Random(7)
    for _ in range(50):
        splits = [
            Split(InputFile(f"{i}.ndjson", size, "none"), 0, size)
            for i, size in enumerate(rng.choice([1, 1 << 20, 40 << 20, 300 << 20]) for _ in range(rng.randint(1, 80)))
        ]
        tasks = plan_tasks(splits)
        assert [s for task in tasks for s in task] == splits
        assert all(tasks)
        sizes = [sum(s.size for s in task) for task in tasks]
        assert all(size <= MAX_TASK_BYTES or len(task) == 1 for size, task in zip(sizes, tasks, strict=True))


def test_plain_file_truncated_while_read_fails_the_date(tmp_path, monkeypatch):
    """A plain file cut short while a worker reads it through its memory map: the
    worker is killed (SIGBUS), the date fails with exit code 1, its previous partition stays."""
    import faulthandler

    from crash_aggregates import sources

    write_day(tmp_path / "in", DAY, corpus(3000), "a.ndjson")
    assert run_day(tmp_path, "--workers", "2").exit_code == 0
    before = read_partition(tmp_path / "out", DAY)
    mapped = sources._mapped_batches

    def truncated_after_one_batch(split, progress, max_line):
        for i, batch in enumerate(mapped(split, progress, max_line)):
            yield batch
            if i == 0:  # the next batch is read from pages the file no longer has
                faulthandler.disable()  # in this worker: its SIGBUS is expected, no dump on the test's output
                os.truncate(split.file.path, 0)

    monkeypatch.setattr(sources, "SPLIT_BYTES", 64 << 10)  # several tasks, so worker processes read them
    monkeypatch.setattr(sources, "BLOCK", 4096)
    monkeypatch.setattr(sources, "_mapped_batches", truncated_after_one_batch)  # the workers are forked
    result = run_day(tmp_path, "--workers", "2")
    assert result.exit_code == 1, result.output
    assert "a worker process died" in result.output
    assert read_partition(tmp_path / "out", DAY) == before
