"""Faults during a run (issue 15, item 3): a worker killed, the disk full, the output
read-only, and two runs of a date at once.

The S3 cases are beside the moto server they need: 500s and dropped
connections mid-upload in test_s3.py (``test_upload_faults_keep_the_previous_version``;
a run killed mid-upload: ``test_killed_upload_leaves_previous_version_and_next_run_cleans``).
In every case:

- the date fails with one clear line on stderr and exit code 1;
- the previous partition stays whole: ``crash-aggregates sql`` answers what
  it answered before, and the visible files are the ones there were;
- the next run (the fault repaired) cleans up what the failed one left and
  publishes what a run on a healthy disk publishes.

The disk is real: a small tmpfs, filled to the last byte or remounted
read-only, in a private mount namespace (``unshare``; tests/faultfs.py).
Where ``unshare --map-root-user --mount`` does not work the tests fail with
the reason, never skip.

Runs at once: ``test_two_runs_of_a_date_at_once`` (here, local and S3: two
plain ``run``s, one waits, the partition is exactly one run's output); the
output's lock with ``run --catch-up`` in test_catchup.py
(``test_a_catch_up_skips_while_another_run_holds_the_lock_and_a_run_waits``,
``test_s3_two_catch_ups_at_once_one_publishes_the_other_skips_and_a_run_waits``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from helpers import run, sql_totals, totals_query

from crash_aggregates import location, lock, storage, synth

DAY = "2016-03-15"
DATES = ("--min-submission-date", DAY, "--max-submission-date", DAY)
FAULTFS = Path(__file__).with_name("faultfs.py")


def generate(folder: Path, pings: int, seed: int) -> Path:
    synth.generate(folder, [date.fromisoformat(DAY)], pings, seed=seed, profile="small", files_per_day=4)
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """An old and a new version of the date's input, and what a healthy run publishes from each."""
    root = tmp_path_factory.mktemp("inputs")
    found = {}
    for name, pings, seed in (("old", 2000, 1), ("new", 6000, 2)):
        generate(root / name, pings, seed)
        out = root / f"{name}-healthy"
        result = run("run", "--input", root / name, "--output", out, *DATES, "--workers", "2", "--no-progress")
        assert result.exit_code == 0, result.output
        found[name] = (root / name, sql_totals(out), visible(files(out)))
    assert found["old"][1] != found["new"][1]
    return found


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def visible(names: list[str]) -> list[str]:
    """What a reader may see: nothing with a hidden (dot) component."""
    return [n for n in names if not any(part.startswith(".") for part in n.split("/"))]


def one_line(stderr: str, *words: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def totals(stdout: str) -> dict:
    rows = [json.loads(line) for line in stdout.splitlines()]
    return {row.pop("day"): row for row in rows}


def run_args(input_folder: Path, out: Path) -> list[str]:
    return ["run", "--input", str(input_folder), "--output", str(out), *DATES, "--workers", "2", "--no-progress"]


def unshare_works() -> str | None:
    """None where unprivileged mount namespaces work, else why not."""
    if not shutil.which("unshare"):
        return "no unshare command (util-linux)"
    done = subprocess.run(["unshare", "--map-root-user", "--mount", "true"], capture_output=True, text=True)
    return None if done.returncode == 0 else done.stderr.strip()


@pytest.mark.parametrize(
    "fault, repair, message",
    [
        pytest.param("fill", "unfill", "No space left on device", id="disk-full"),
        pytest.param("readonly", "readwrite", "Read-only file system", id="read-only"),
    ],
)
def test_filesystem_fault(tmp_path, inputs, fault, repair, message):
    problem = unshare_works()
    assert problem is None, f"the fault tests need a private mount namespace (unshare): {problem}"
    (old, old_totals, old_files), (new, new_totals, new_files) = inputs["old"], inputs["new"]
    mount = tmp_path / "disk"
    mount.mkdir()
    out = mount / "aggregates"
    sql = ["cli", "sql", "--data", str(out), "--format", "json", totals_query()]
    steps = [
        ["cli", *run_args(old, out)],
        sql,
        [fault],
        ["cli", *run_args(new, out)],
        sql,
        ["files", str(out)],
        [repair],
        ["cli", *run_args(new, out)],
        sql,
        ["files", str(out)],
    ]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"mount": str(mount), "size": 8 << 20, "steps": steps}))
    done = subprocess.run(
        ["unshare", "--map-root-user", "--mount", sys.executable, str(FAULTFS), str(plan)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    first, before, _, failed, during, files_during, _, again, after, files_after = json.loads(done.stdout)

    assert first["rc"] == 0, first["stderr"]
    assert totals(before["stdout"]) == old_totals
    # The date fails in one line that says why.
    assert failed["rc"] == 1, failed
    one_line(failed["stderr"], message)  # the date, or (disk full before it starts) the lock: one line
    # The previous partition is whole: the same answers, the same visible files.
    assert during["rc"] == 0, during["stderr"]
    assert totals(during["stdout"]) == old_totals
    assert visible(files_during) == old_files
    # Repaired, the next run publishes the new version and leaves nothing behind.
    assert again["rc"] == 0, again["stderr"]
    assert totals(after["stdout"]) == new_totals
    assert files_after == new_files


def workers_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def test_killed_worker(tmp_path, inputs):
    """SIGKILL one of the embedded engine's worker processes while they read."""
    (old, old_totals, old_files), (new, new_totals, new_files) = inputs["old"], inputs["new"]
    out = tmp_path / "out"
    assert run(*run_args(old, out)).exit_code == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", *run_args(new, out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (children := workers_of(proc.pid)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert children, "the run ended before its workers could be seen"
    os.kill(children[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    one_line(stderr, DAY, "a worker process died")
    assert sql_totals(out) == old_totals
    assert visible(files(out)) == old_files
    # The next run publishes and cleans up.
    result = run(*run_args(new, out))
    assert result.exit_code == 0, result.output
    assert sql_totals(out) == new_totals
    assert files(out) == new_files


@pytest.mark.parametrize("store", ["local", "s3"])
def test_two_runs_of_a_date_at_once(request, tmp_path, inputs, store):
    """Two plain ``run``s of the same date into the same output at the same time, each from
    its own input: the first publishes while the second waits for the output's lock (saying
    whom for), then the second publishes; the partition is exactly the second input's healthy
    output (the same data files, byte for byte, and the same sql totals), nothing of the
    first's left beside it."""
    (old, _, _), (new, new_totals, new_files) = inputs["old"], inputs["new"]
    healthy = new.with_name("new-healthy") / f"submission_date={DAY}"
    if store == "s3":
        s3 = request.getfixturevalue("s3")
        out = s3.url("out")

        def lock_taken() -> bool:
            return lock.LOCK_NAME in [k.rsplit("/", 1)[-1] for k in s3.keys("out")]
    else:
        out = str(tmp_path / "out")

        def lock_taken() -> bool:
            return (tmp_path / "out" / lock.LOCK_NAME).exists()

    def start(input_folder: Path, **env: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "crash_aggregates.cli", *run_args(input_folder, out)]
        return subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip

    # The first pauses just before its commit (_SUCCESS), holding the lock: the second
    # starts while the first is surely mid-run, however slow the machine.
    first = start(old, **{storage.PAUSE_ENV: "15"})
    deadline = time.monotonic() + 120
    while not lock_taken():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = start(new)
    _, first_err = first.communicate(timeout=300)
    _, second_err = second.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert "waiting" not in first_err
    assert f"another run holds the lock on {out} (pid {first.pid} on " in second_err
    assert "waiting for it" in second_err
    # One run's output, whole: the second's, as a healthy run of its input publishes it.
    assert sql_totals(out) == new_totals
    sidecar, data_files = "_flat.parquet.sidecar", sorted(p.name for p in healthy.glob("part-*"))
    if store == "s3":
        [published] = storage.published_partitions(out)[DAY]
        names = s3.keys(f"out/submission_date={DAY}")
        parts = [k for k in names if location.name(k).startswith("part-")]
        sidecars = [k for k in names if location.name(k).startswith("_flat-")]
        assert [location.name(k) for k in parts] == [location.name(published)]
        assert len(sidecars) == 1
        got = [s3.fs.cat_file(f"{s3.bucket}/{k}") for k in [*sidecars, *parts]]
    else:
        assert files(Path(out)) == new_files
        got = [(Path(out) / f"submission_date={DAY}" / name).read_bytes() for name in [sidecar, *data_files]]
    assert got == [(healthy / name).read_bytes() for name in [sidecar, *data_files]]
