"""``run --catch-up``: late files, re-deliveries and new dates are run, the rest is left; one run at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from helpers import read_partition, read_report, run, run_process, write_day

from crash_aggregates import catchup, lock

TODAY = datetime.now(UTC).date()


def day(n: int) -> str:
    """The date n days before today (UTC), as catch-up's window counts."""
    return (TODAY - timedelta(days=n)).isoformat()


def ping(i: int, submission: str, doc_type: str = "main") -> dict:
    payload = {"info": {"subsessionLength": 3600, "subsessionStartDate": f"{submission}T00:00:00.0+00:00"}}
    if doc_type == "crash":
        payload = {"crashDate": submission, "processType": "main"}
    return {
        "type": doc_type,
        "creationDate": f"{submission}T12:00:00Z",
        "application": {"name": "Firefox", "channel": ["release", "nightly"][i % 2]},
        "environment": {"build": {"version": "45.0", "buildId": "20160301000000"}},
        "payload": payload,
    }


def pings(n: int, submission: str) -> list[dict]:
    return [ping(i, submission, "crash" if i % 5 == 0 else "main") for i in range(n)]


def total_pings(root, d: str) -> int:
    report = read_report(root, d)
    return report["main_pings_processed"] + report["crash_pings_processed"]


def catch_up(tmp_path, *extra):
    return run("run", "--catch-up", "--since", day(4), "--input", tmp_path / "in", "--output", tmp_path / "out", *extra)


def test_catch_up_runs_new_late_and_redelivered_dates_only(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    write_day(inp, day(4), pings(20, day(4)))
    write_day(inp, day(3), pings(30, day(3)))
    write_day(inp, day(2), pings(10, day(2)))
    # day(1) (yesterday) has no input yet

    first = catch_up(tmp_path)
    assert first.exit_code == 0, first.output
    for d in (day(4), day(3), day(2)):
        assert f"{d}: to run: not published" in first.stderr
    assert f"catch-up {day(4)}..{day(1)}: 3 to run, 0 up to date, 1 without input yet" in first.stderr
    assert [total_pings(out, d) for d in (day(4), day(3), day(2))] == [20, 30, 10]
    listing = read_report(out, day(3))["input_listing"]
    stat = (inp / f"submission_date={day(3)}" / "pings.ndjson").stat()
    assert listing == [{"name": "pings.ndjson", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}]

    again = catch_up(tmp_path)
    assert again.exit_code == 0
    assert ": to run:" not in again.stderr
    assert f"catch-up {day(4)}..{day(1)}: 0 to run, 3 up to date, 1 without input yet" in again.stderr

    # Late files for an already published date, and a re-delivery of another.
    write_day(inp, day(3), pings(7, day(3)), name="late.ndjson")
    redelivered = inp / f"submission_date={day(2)}" / "pings.ndjson"
    write_day(inp, day(2), pings(12, day(2)))
    os.utime(redelivered, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime even on a coarse clock
    write_day(inp, day(1), pings(5, day(1)))
    before = read_partition(out, day(4))
    third = catch_up(tmp_path)
    assert third.exit_code == 0, third.output
    assert f"{day(3)}: to run: input changed since published: 1 new file" in third.stderr
    assert f"{day(2)}: to run: input changed since published: 1 changed" in third.stderr
    assert f"{day(1)}: to run: not published" in third.stderr
    assert f"{day(4)}: to run" not in third.stderr
    assert [total_pings(out, d) for d in (day(4), day(3), day(2), day(1))] == [20, 37, 12, 5]
    assert read_partition(out, day(4)) == before

    # A removed file counts as a change too.
    (inp / f"submission_date={day(3)}" / "late.ndjson").unlink()
    fourth = catch_up(tmp_path)
    assert f"{day(3)}: to run: input changed since published: 1 removed" in fourth.stderr
    assert total_pings(out, day(3)) == 30


def test_default_window_is_the_last_14_days_up_to_yesterday(tmp_path):
    inp = tmp_path / "in"
    for n in (15, 14, 1, 0):  # 15 days back is outside the window, today is not complete
        write_day(inp, day(n), pings(3, day(n)))
    result = run("run", "--catch-up", "--input", inp, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"catch-up {day(14)}..{day(1)}: 2 to run, 0 up to date, 12 without input yet" in result.stderr
    published = sorted(p.name for p in (tmp_path / "out").glob("submission_date=*"))
    assert published == [f"submission_date={day(14)}", f"submission_date={day(1)}"]


def test_partitions_without_a_listing_are_compared_by_count_and_bytes(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    write_day(inp, day(2), pings(8, day(2)))
    assert catch_up(tmp_path).exit_code == 0
    # As published by a version that did not record the listing:
    folder = out / f"submission_date={day(2)}"
    marker = json.loads((folder / "_SUCCESS").read_text())
    del marker["report"]["input_listing"]
    (folder / "_SUCCESS").write_text(json.dumps(marker))
    assert "0 to run, 1 up to date" in catch_up(tmp_path).stderr
    write_day(inp, day(2), pings(2, day(2)), name="late.ndjson")
    result = catch_up(tmp_path)
    assert f"{day(2)}: to run: input is 2 files" in result.stderr
    assert total_pings(out, day(2)) == 10


@pytest.mark.parametrize(
    "args, message",
    [
        (("--since", "2016-03-01"), "--since goes with --catch-up"),
        (("--catch-up", "--min-submission-date", "2016-03-01"), "give --since D instead"),
        (("--catch-up", "--since", "yesterday"), "--since: invalid date"),
        (("--catch-up", "--since", (TODAY + timedelta(days=3)).isoformat()), "is after yesterday"),
    ],
)
def test_catch_up_usage_errors(tmp_path, args, message):
    (tmp_path / "in").mkdir()
    result = run("run", "--input", tmp_path / "in", "--output", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output


HOLDER = textwrap.dedent(
    """
    import sys
    from crash_aggregates import lock
    with lock.acquire(sys.argv[1]):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin (or kills us)
    """
)


def hold_lock(root) -> subprocess.Popen:
    """A process holding the lock of ``root`` until its stdin is closed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_catch_up_skips_while_another_run_holds_the_lock_and_a_run_waits(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    write_day(inp, day(2), pings(8, day(2)))
    holder = hold_lock(out)
    try:
        skipped = run_process("run", "--catch-up", "--since", day(2), "--input", inp, "--output", out)
        assert skipped.returncode == 0, skipped.stderr
        assert f"another run holds the lock on {out} (pid {holder.pid} on " in skipped.stderr
        assert "this catch-up skips" in skipped.stderr
        assert not list(out.glob("submission_date=*"))
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's lock: nothing stale is left behind.
    assert run_process("run", "--catch-up", "--since", day(2), "--input", inp, "--output", out).returncode == 0
    assert total_pings(out, day(2)) == 8

    holder = hold_lock(out)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", "run", "--input", inp, "--output", out,
         "--min-submission-date", day(2), "--max-submission-date", day(2)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # It says once whom it waits for, and waits (however slow the machine) until the holder lets go.
    assert "waiting for it" in waiting.stderr.readline()
    assert waiting.poll() is None
    holder.stdin.close()
    holder.wait()
    assert waiting.wait(timeout=120) == 0, waiting.stderr.read()
    assert f"{day(2)}: main" in waiting.stdout.read()


def test_local_lock_excludes_and_says_who(tmp_path):
    with lock.acquire(str(tmp_path)) as held:
        assert held.held()
        holder = json.loads((tmp_path / lock.LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(lock.LockBusy, match=f"pid {os.getpid()}"):
            lock.acquire(str(tmp_path), wait=False)
    with lock.acquire(str(tmp_path), wait=False):
        pass


def test_listing_names_nested_files_relative_to_the_date(tmp_path):
    from crash_aggregates.sources import list_input

    write_day(tmp_path, "2016-03-05", [ping(1, "2016-03-05")], name="a.ndjson")
    write_day(tmp_path / "submission_date=2016-03-05", "x", [ping(2, "2016-03-05")], name="b.ndjson")
    files = list_input(str(tmp_path), date(2016, 3, 5))
    names = [e["name"] for e in catchup.listing(files, str(tmp_path), date(2016, 3, 5))]
    assert names == ["a.ndjson", "submission_date=x/b.ndjson"]


# -- S3: the lease ---------------------------------------------------------------------


def lease_body(s3, root: str) -> dict:
    return json.loads(s3.fs.cat_file(f"{root.removeprefix('s3://')}/{lock.LOCK_NAME}"))


def test_s3_lease_excludes_renews_and_is_given_back(s3):
    root = s3.url("aggregates")
    notices = []
    held = lock.acquire(root, ttl=1.0, notice=notices.append)
    try:
        assert lease_body(s3, root)["pid"] == os.getpid()
        first_etag = held.etag
        time.sleep(2.5)  # past the TTL (and the second LastModified is rounded to): only renewals keep it
        with pytest.raises(lock.LockBusy, match=f"another run holds the lock on {root} \\(pid {os.getpid()}"):
            lock.acquire(root, wait=False)
        assert held.held() and held.etag != first_etag
    finally:
        held.release()
    assert lock.LOCK_NAME not in [k.rsplit("/", 1)[-1] for k in s3.keys("aggregates")]
    with lock.acquire(root, wait=False):
        pass
    assert notices == []


def test_s3_lease_of_a_dead_run_is_taken_over_once(s3):
    root = s3.url("aggregates")
    dead = lock.acquire(root, ttl=0.5)
    dead.stop.set()  # as if the process died: no more renewals, no release
    dead.thread.join()
    time.sleep(2.6)
    notices = []
    alive = lock.acquire(root, wait=False, notice=notices.append)
    try:
        assert notices and notices[0].startswith(f"took over the lock on {root}")
        assert lease_body(s3, root)["token"] == alive.doc["token"]
        dead.stop.clear()
        dead.release()  # the dead run's release must not remove the new lease (If-Match)
        assert lease_body(s3, root)["token"] == alive.doc["token"]
    finally:
        alive.release()


def test_s3_lease_taken_over_is_noticed_by_its_holder(s3):
    root = s3.url("aggregates")
    held = lock.acquire(root, ttl=0.6)
    try:
        bucket, key = s3.bucket, f"aggregates/{lock.LOCK_NAME}"
        s3.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=b'{"token": "other"}')  # another run took it
        deadline = time.monotonic() + 5
        while held.held() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not held.held()
    finally:
        held.release()
    assert lease_body(s3, root) == {"token": "other"}  # not deleted: it is not ours


def test_s3_catch_up_late_file_and_busy_lease(s3, tmp_path):
    local = tmp_path / "in"
    write_day(local, day(3), pings(20, day(3)))
    s3.upload(local, "pings")
    args = ("run", "--catch-up", "--since", day(3), "--input", s3.url("pings"), "--output", s3.url("aggregates"))
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert f"{day(3)}: to run: not published" in first.stderr
    report = catchup_report(s3, day(3))
    assert [set(e) for e in report["input_listing"]] == [{"name", "size", "etag"}]
    assert "0 to run, 1 up to date" in run(*args).stderr

    write_day(local, day(3), pings(4, day(3)), name="late.ndjson.gz", compression="gzip")
    s3.upload(local, "pings")  # the same bytes again for pings.ndjson: its ETag is unchanged
    with lock.acquire(s3.url("aggregates")):
        busy = run(*args)
    assert busy.exit_code == 0 and "this catch-up skips" in busy.stderr
    late = run(*args)
    assert f"{day(3)}: to run: input changed since published: 1 new file" in late.stderr
    report = catchup_report(s3, day(3))
    assert report["main_pings_processed"] + report["crash_pings_processed"] == 24


def catchup_report(s3, d: str) -> dict:
    from crash_aggregates.storage import read_report as read_published

    return read_published(s3.url("aggregates"), date.fromisoformat(d))


def test_a_holder_is_gone_only_when_surely_dead_here():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid runs nothing now (until reused, which only makes it look alive)
    me = lock.owner()
    assert not lock.holder_is_gone({**me, "pid": os.getppid()})  # alive
    assert lock.holder_is_gone({**me, "pid": child.pid})
    assert not lock.holder_is_gone({**me, "pid": child.pid, "host": "another-host"})
    assert not lock.holder_is_gone({**me, "pid": child.pid, "pid_namespace": 1})  # another container's pid
    assert not lock.holder_is_gone({**me, "pid": child.pid, "boot_id": "before-a-reboot"})
    assert not lock.holder_is_gone({"host": me["host"], "pid": child.pid})  # an older lock: not sure


def test_s3_lease_of_a_killed_run_on_this_machine_is_taken_over_at_once(s3):
    root = s3.url("aggregates")
    holder = hold_lock(root)
    holder.kill()  # SIGKILL: no release, and the lease would last its TTL (15 minutes)
    holder.wait()
    notices = []
    with lock.acquire(root, wait=False, notice=notices.append):
        assert lease_body(s3, root)["pid"] == os.getpid()
    assert notices == [
        f"took over the lock on {root}, left by a run that no longer runs on this machine: pid {holder.pid} on "
        + notices[0].split(f"pid {holder.pid} on ", 1)[1]
    ]


@pytest.mark.slow
def test_s3_two_catch_ups_at_once_one_publishes_the_other_skips_and_a_run_waits(s3, tmp_path):
    from crash_aggregates.stores import PAUSE_ENV

    write_day(tmp_path / "in", day(2), pings(30, day(2)))
    s3.upload(tmp_path / "in", "pings")
    out = s3.url("aggregates")
    catch_up_args = ["run", "--catch-up", "--since", day(2), "--input", s3.url("pings"), "--output", out]
    run_args = ["run", "--input", s3.url("pings"), "--output", out, "--min-submission-date", day(2),
                "--max-submission-date", day(2)]  # fmt: skip

    def start(args, **env):
        command = [sys.executable, "-m", "crash_aggregates.cli", *args]
        return subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip

    # The first pauses just before its commit (_SUCCESS), holding the lease meanwhile: long
    # enough for the others to start and look, even on a busy machine.
    first = start(catch_up_args, **{PAUSE_ENV: "30"})
    deadline = time.monotonic() + 60
    while lock.LOCK_NAME not in [k.rsplit("/", 1)[-1] for k in s3.keys("aggregates")]:
        assert first.poll() is None and time.monotonic() < deadline, "the first catch-up never took the lock"
        time.sleep(0.1)
    second, waiting = start(catch_up_args), start(run_args)
    results = {name: (p.wait(timeout=180), p.stderr.read()) for name, p in
               [("first", first), ("second", second), ("waiting", waiting)]}  # fmt: skip
    assert results["first"][0] == 0 and f"{day(2)}: to run: not published" in results["first"][1]
    assert results["second"][0] == 0, results["second"][1]
    assert f"another run holds the lock on {out} (pid {first.pid} on " in results["second"][1]
    assert "this catch-up skips" in results["second"][1]
    # The plain run waited for the lease, then published the date again.
    assert results["waiting"][0] == 0 and "waiting for it" in results["waiting"][1], results["waiting"][1]
    report = catchup_report(s3, day(2))
    assert report["main_pings_processed"] + report["crash_pings_processed"] == 30
    assert "0 to run, 1 up to date" in run_process(*catch_up_args).stderr
