"""Coverage-guided, differential fuzzing of the C scanner with atheris (libFuzzer).

Run through ``make fuzz`` (``FUZZ_TIME=SECONDS``, ``FUZZ_SEED=N``), which
builds the sanitized scanners (``fuzz/build.py``) and preloads atheris's
runtime (libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer)::

    python fuzz/scanner.py CORPUS_DIR [libFuzzer flags]

Every input is one line: it goes through both configurations of
``tests/differential.py`` with both sanitized builds of the scanner (SSE2 and
portable), and every tier must answer it as the standard library's reference
tier does. A memory error, undefined behaviour or a disagreement stops the
run and leaves the input in ``fuzz/crashes/``; each finding is then fixed and
kept in ``fuzz/findings/`` as a regression case (``tests/test_scanner_safety.py``).

The seeds, written afresh to ``build/fuzz/seeds/`` on each start: the real
fixtures of ``shared/fixtures`` (compact and as published), the tables' base
pings, and the generator's output (every kind of bad line it makes, small and
realistic pings). libFuzzer mutates them and keeps what reaches new code in
CORPUS_DIR, which grows from run to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import atheris  # noqa: E402
from differential import CONFIGS, DAY, Tiers  # noqa: E402
from scanner_builds import load_builds  # noqa: E402

from crash_aggregates.pings import PingRules  # noqa: E402

BUILD = Path(os.environ.get("FUZZ_BUILD", REPO / "build" / "fuzz"))  # where fuzz/build.py put the scanners
DICTIONARY = REPO / "fuzz" / "json.dict"
CRASHES = REPO / "fuzz" / "crashes"
#: The largest input. Big seeds are pruned below it (``prune``): mutating and
#: checking a 200 KB ping costs a hundred times a small one, for code paths
#: that its first few KB already take.
MAX_LEN = 64 << 10
#: Seeds longer than this are pruned.
SEED_LEN = 8 << 10


def prune(value, keep: int = 6):
    """A JSON value with at most ``keep`` items per object and array, the keys the rules read kept first.

    >>> prune({"payload": {str(i): i for i in range(9)}, "a": list(range(9))}, keep=2)
    {'payload': {'0': 0, '1': 1}, 'a': [0, 1]}
    """
    if isinstance(value, list):
        return [prune(v, keep) for v in value[:keep]]
    if isinstance(value, dict):
        needed = [k for k in value if k in NEEDED_KEYS]
        others = [k for k in value if k not in NEEDED_KEYS][: max(keep - len(needed), 0)]
        return {k: prune(value[k], keep) for k in value if k in needed or k in others}
    return value


#: Every key of every path that the rules or a configuration of the fuzzer reads.
NEEDED_KEYS = {key for config in CONFIGS.values() for path in PingRules(config, DAY)._paths for key in path}


def seed_lines() -> list[bytes]:
    """Real, tabled and generated pings: where the mutations start."""
    from helpers import SHARED
    from pingcases import BARE_CRASH, BARE_MAIN, CRASH, HISTOGRAMS, MAIN, encode, mk

    from crash_aggregates import synth

    lines = [encode(d) for d in (MAIN, CRASH, BARE_MAIN, BARE_CRASH)]
    lines.append(encode(mk(MAIN, {"payload.keyedHistograms": HISTOGRAMS})))
    meta = {"submissionDate": DAY.strftime("%Y%m%d"), "geoCountry": "DE"}
    for path in sorted((SHARED / "fixtures").glob("*.pass.json")):
        text = path.read_bytes()
        doc = json.loads(text)
        doc["meta"] = {**meta, "docType": path.name.split(".")[0]}
        lines.append(json.dumps(doc, separators=(",", ":")).encode())
        lines.append(text)  # as published: pretty-printed, no meta
    with tempfile.TemporaryDirectory() as folder:
        for profile, n in (("small", 300), ("realistic", 4)):
            synth.generate(folder, [DAY], n, seed=1, profile=profile, compression="none", files_per_day=1)
            for name in sorted(Path(folder).rglob("*.ndjson")):
                lines.extend(line for line in name.read_bytes().split(b"\n") if line)
    return [line if len(line) <= SEED_LEN else _pruned(line) for line in lines]


def _pruned(line: bytes) -> bytes:
    try:
        doc = json.loads(line)
    except ValueError:  # a bad line of the generator's: its beginning
        return line[:SEED_LEN]
    return json.dumps(prune(doc), separators=(",", ":"), ensure_ascii=False).encode()[:MAX_LEN]


def write_seeds(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    lines = seed_lines()
    for line in lines:
        (folder / hashlib.sha1(line).hexdigest()).write_bytes(line)
    return len(lines)


def main() -> None:
    builds = load_builds(BUILD)
    checks = [Tiers(config, DAY, builds) for config in CONFIGS.values()]
    seeds = BUILD / "seeds"
    print(f"fuzz: {write_seeds(seeds)} seed lines; scanners {', '.join(builds)}; configs {', '.join(CONFIGS)}")

    def test_one_input(data: bytes) -> None:
        for tiers in checks:
            tiers.check(data)

    CRASHES.mkdir(exist_ok=True)
    args = sys.argv[1:]
    corpus = [a for a in args if not a.startswith("-")]
    flags = [a for a in args if a.startswith("-")]
    defaults = {
        "-max_len": MAX_LEN,
        "-dict": DICTIONARY,
        "-artifact_prefix": f"{CRASHES}/",
        "-timeout": 20,
        "-rss_limit_mb": 6144,
        "-use_value_profile": 1,
        "-print_final_stats": 1,
    }
    given = {f.split("=", 1)[0] for f in flags}
    flags += [f"{k}={v}" for k, v in defaults.items() if k not in given]
    # libFuzzer runs argv[0] through the shell for the child processes of
    # -merge=1 (and -fork, -jobs): the interpreter and the script, then.
    program = f"{sys.executable} {Path(__file__).resolve()}"
    atheris.Setup([program, *flags, *corpus, str(seeds)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
