"""Faults during a run (issue 15, item 3): a worker killed, the disk full, the output read-only.

The S3 cases (500s and dropped connections mid-upload) are in test_s3.py,
beside the moto server they need. In every case:

- the date fails with one clear line on stderr and exit code 1;
- the previous partition stays whole: ``crash-aggregates sql`` answers what
  it answered before, and the visible files are the ones there were;
- the next run (the fault repaired) cleans up what the failed one left and
  publishes what a run on a healthy disk publishes.

The disk is real: a small tmpfs, filled to the last byte or remounted
read-only, in a private mount namespace (``unshare``; tests/faultfs.py).
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

from crash_aggregates import synth

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
