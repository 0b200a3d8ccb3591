"""What the figures were measured on: CPU, cores, memory, load, versions, commit."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

PACKAGES = ("crash-aggregates", "msgspec", "isal", "pyarrow", "duckdb", "pysimdjson", "pyspark", "psutil")
ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _parser_tier() -> str:
    """Which fast tier the engine parses with: the C scanner, or msgspec where it wasn't built."""
    try:
        from crash_aggregates import _scan  # noqa: F401
    except ImportError:
        return "msgspec (the C scanner is not built)"
    return "C scanner (_scan)"


def _run(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or done.stderr).strip()


def info(cores: int) -> dict:
    java = _run(["java", "-version"]).splitlines()
    return {
        "cpu": _cpu_model(),
        "cores": cores,
        "logical_cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "java": java[0] if java else None,
        "packages": {p: _version(p) for p in PACKAGES},
        "parser": _parser_tier(),
        "commit": _run(["git", "rev-parse", "HEAD"]),
        "dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"])),
    }


def cpu_snapshot() -> dict:
    """Busy CPU seconds of the whole machine and of this process with everything it reaped."""
    t = psutil.cpu_times()
    ours = sum(
        getattr(resource.getrusage(who), f)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for f in ("ru_utime", "ru_stime")
    )
    return {"wall": time.monotonic(), "busy": sum(t) - t.idle - getattr(t, "iowait", 0.0), "ours": ours}


def others_cores(before: dict, after: dict) -> float:
    """How many cores, on average, processes other than the benchmark's kept busy in between."""
    others = (after["busy"] - before["busy"]) - (after["ours"] - before["ours"])
    return max(others, 0.0) / max(after["wall"] - before["wall"], 1e-9)
