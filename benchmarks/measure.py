"""Running one command the way the benchmark measures it: wall time and peak memory.

``run(cmd)`` starts a fresh wrapper, ``python -m benchmarks.measure CMD...``,
which runs the command, times it from start to exit and then reads
``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak RSS of the largest single
process of the command's tree (every descendant is reaped inside the wrapper,
and only the command's tree is). Meanwhile the caller samples the tree every
50 ms with psutil, for the peak of the *sum* over its processes and for any
process that escapes getrusage because nobody reaps it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent  # so that "-m benchmarks..." imports from anywhere
SAMPLE_SECONDS = 0.05
TAIL = 4000  # characters of the command's stdout/stderr kept


@dataclass
class Sample:
    seconds: float  # wall time of the command, start to exit
    peak_rss: int  # bytes, the largest single process (getrusage, or a sample if larger)
    peak_tree_rss: int  # bytes, the sum over the tree (sampled every 50 ms)
    returncode: int
    stdout: str = ""
    stderr: str = ""
    result: dict = field(default_factory=dict)  # the last stdout line, when it is a JSON object

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(cmd: list[str], timeout: float = 3600, env: dict | None = None) -> Sample:
    """Run ``cmd`` under the wrapper and return what was measured."""
    wrapper = psutil.Popen(
        [sys.executable, "-m", "benchmarks.measure", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + timeout
    peak_tree = peak_single = 0
    while wrapper.poll() is None:
        total = 0
        try:
            for p in wrapper.children(recursive=True):
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                peak_single = max(peak_single, rss)
        except psutil.Error:
            pass
        peak_tree = max(peak_tree, total)
        if time.monotonic() > deadline:
            for p in wrapper.children(recursive=True):
                p.kill()
            wrapper.kill()
            wrapper.wait()
            return Sample(timeout, 0, peak_tree, -9, stderr=f"timed out after {timeout:.0f} s")
        time.sleep(SAMPLE_SECONDS)
    report = json.loads(wrapper.stdout.read())
    result = {}
    lines = report["stdout"].strip().splitlines()
    if lines:
        try:
            result = json.loads(lines[-1])
        except ValueError:
            pass
    # A process that its parent never reaps (a JVM killed at exit) escapes getrusage: the samples see it.
    peak = max(report["maxrss_kb"] * 1024, peak_single)
    return Sample(
        report["seconds"],
        peak,
        peak_tree,
        report["returncode"],
        report["stdout"],
        report["stderr"],
        result if isinstance(result, dict) else {},
    )


def _wrapper(cmd: list[str]) -> None:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    print(
        json.dumps(
            {
                "seconds": seconds,
                "maxrss_kb": maxrss_kb,
                "returncode": done.returncode,
                "stdout": done.stdout.decode(errors="replace")[-TAIL:],
                "stderr": done.stderr.decode(errors="replace")[-TAIL:],
            }
        )
    )


if __name__ == "__main__":
    _wrapper(sys.argv[1:])
