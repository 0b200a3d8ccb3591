"""Run commands against a small real filesystem that the test can fill up or make read-only.

    unshare --map-root-user --mount python tests/faultfs.py PLAN.json

In a private mount namespace (no privilege needed beyond user namespaces),
a tmpfs of ``plan["size"]`` bytes is mounted at ``plan["mount"]``; then the
plan's steps run in order and their results are printed as one JSON list:

- ``["cli", args...]``: ``crash-aggregates`` as a process: ``{"rc", "stdout", "stderr"}``;
- ``["fill"]``: a file fills the tmpfs to the last byte (the next write gets ENOSPC);
- ``["unfill"]``: that file is removed;
- ``["readonly"]`` / ``["readwrite"]``: the tmpfs is remounted so;
- ``["files", folder]``: every file and folder under ``folder``, relative, sorted.

The mount goes away with the namespace when the plan ends, so each fault's
whole story (publish, break, check, repair, run again) is one plan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FILLER = ".filler"


def fill(mount: Path) -> dict:
    """Write until ENOSPC; returns the bytes written."""
    written = 0
    with open(mount / FILLER, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    written += f.write(b"\0" * size)
            except OSError as e:
                if e.errno != 28:  # ENOSPC
                    raise
    return {"filled": written}


def step(mount: Path, kind: str, *args: str):
    if kind == "cli":
        done = subprocess.run([sys.executable, "-m", "crash_aggregates.cli", *args], capture_output=True, text=True)
        return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    if kind == "fill":
        return fill(mount)
    if kind == "unfill":
        os.remove(mount / FILLER)
        return {}
    if kind in ("readonly", "readwrite"):
        option = "remount,ro" if kind == "readonly" else "remount,rw"
        subprocess.run(["mount", "-o", option, str(mount)], check=True)
        return {}
    if kind == "files":
        root = Path(args[0])
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    raise ValueError(f"unknown step {kind!r}")


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    mount = Path(plan["mount"])
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={plan['size']}", "tmpfs", str(mount)], check=True)
    print(json.dumps([step(mount, *s) for s in plan["steps"]]))


if __name__ == "__main__":
    main()
