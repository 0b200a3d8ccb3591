"""The line and branch coverage of _scan.c that a fuzzing corpus reaches (gcov).

    python fuzz/coverage.py BUILD_DIR CORPUS_DIR [MORE_DIRS...]

Replays every input of the folders through the ``gcov`` build of
``fuzz/build.py`` (no sanitizer: gcc's ``--coverage``), checking each against
the reference tier as the fuzzer does, then prints gcov's summary and the
lines of ``_scan.c`` that no input ran. The annotated source is left in
``BUILD_DIR/coverage/_scan.c.gcov``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

SOURCE = REPO / "src" / "crash_aggregates" / "_scan.c"


def replay(build: Path, folders: list[Path]) -> int:
    """Every input through the gcov build (in this process, whose exit writes the counts)."""
    from differential import CONFIGS, Tiers
    from scanner_builds import load_builds

    checks = [Tiers(config, builds=load_builds(build, ("gcov",))) for config in CONFIGS.values()]
    n = 0
    for folder in folders:
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            data = path.read_bytes()
            for tiers in checks:
                tiers.check(data)
            n += 1
    return n


def report(build: Path) -> str:
    """gcov's summary of the counts, and the never-run lines."""
    gcov = build / "gcov"
    [notes] = gcov.glob("*.gcno")
    out = build / "coverage"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    result = subprocess.run(
        ["gcov", "--branch-probabilities", "--object-file", str(notes.resolve()), str(SOURCE)],
        cwd=out,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("File") and "_scan.c" in line)
    summary = [line for line in lines[start + 1 : start + 6] if line and not line.startswith("Creating")]
    missed = []
    for line in (out / "_scan.c.gcov").read_text().splitlines():
        m = re.match(r"\s*#####:\s*(\d+):(.*)", line)
        if m:
            missed.append(f"  {m.group(1):>4}: {m.group(2).strip()}")
    return "\n".join(["coverage of _scan.c by the corpus (gcov):", *(f"  {s}" for s in summary), "never run:", *missed])


def main() -> None:
    if sys.argv[1] == "--replay":  # the child process
        print(replay(Path(sys.argv[2]), [Path(a) for a in sys.argv[3:]]))
        return
    build = Path(sys.argv[1]).resolve()
    for stale in (build / "gcov").glob("*.gcda"):
        stale.unlink()
    # A child process replays, so that its exit writes the .gcda file before gcov reads it.
    child = subprocess.run(
        [sys.executable, __file__, "--replay", *sys.argv[1:]], check=True, capture_output=True, text=True
    )
    print(f"replayed {child.stdout.strip()} inputs, each agreeing with the reference tier")
    print(report(build))


if __name__ == "__main__":
    main()
