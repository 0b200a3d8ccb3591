"""Build the C scanner (src/crash_aggregates/_scan.c) for fuzzing and for its coverage report.

    python fuzz/build.py OUT_DIR

Writes one copy of the extension per variant, each in its own folder
(``OUT_DIR/<variant>/_scan<EXT_SUFFIX>``), loaded by ``tests/scanner_builds.py``:

- ``sse2``: clang, AddressSanitizer + UndefinedBehaviorSanitizer, and
  libFuzzer's coverage hooks (``fuzzer-no-link``: atheris's runtime, preloaded,
  supplies libFuzzer and the sanitizers' runtime). What x86-64 users run: the
  string scanner takes 16 bytes at a time with SSE2.
- ``portable``: the same without SSE2 (``-U__SSE2__``), so the 8-byte and the
  byte-at-a-time loops that other processors run are fuzzed as well.
- ``gcov``: gcc with ``--coverage`` and no sanitizer, for the line and branch
  coverage that the corpus reaches (``fuzz/coverage.py``).

Any UndefinedBehaviorSanitizer report aborts (``-fno-sanitize-recover``), so
it is a finding like a memory error.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "src" / "crash_aggregates" / "_scan.c"

SANITIZED = [
    "clang",
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined,fuzzer-no-link",
    "-fno-sanitize-recover=all",
]
VARIANTS = {
    "sse2": SANITIZED,
    "portable": [*SANITIZED, "-U__SSE2__"],
    "gcov": ["gcc", "-O0", "-g", "--coverage"],
}


def build(out: Path, variant: str) -> Path:
    """Compile one variant; returns the extension's path."""
    folder = out / variant
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    target = folder / ("_scan" + sysconfig.get_config_var("EXT_SUFFIX"))
    command = [
        *VARIANTS[variant],
        "-shared",
        "-fPIC",
        "-Wall",
        "-Werror",
        f"-I{sysconfig.get_paths()['include']}",
        str(SOURCE),
        "-o",
        str(target),
    ]
    # gcov names its .gcno/.gcda files after the object: build in the folder.
    subprocess.run(command, check=True, cwd=folder)
    return target


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    for variant in VARIANTS:
        print(f"built {build(out, variant)}")


if __name__ == "__main__":
    main()
