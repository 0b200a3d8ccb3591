"""The benchmark's input: synthetic days written once by the project's generator and cached.

A corpus lives in ``<corpus dir>/<name>-<key>/`` where ``key`` hashes the
generator's parameters and the source of ``synth.py``: changing either writes
the corpus anew (and removes the stale copy of the same name). ``corpus.json``
in the folder is written last, so a half-written corpus is never reused.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import crash_aggregates.synth as synth

DAY = date(2016, 3, 15)
SEED = 1


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    profile: str  # "realistic" | "small"
    compression: str  # "none" | "gzip"
    pings: int  # per day, full run
    quick_pings: int  # per day, --quick
    measurements: tuple[str, ...]  # see measure.MEASUREMENTS


# The same seed and ping count give the same JSON whatever the compression, so
# "realistic" and "realistic-gz" hold the same lines (and so do the small ones).
# Realistic pings average ~118 KB (main 100-200 KB, crash pings ~3 KB): 9,500 of
# them make ~1.1 GB; "realistic-2x" doubles that for the memory-growth check.
CORPORA = (
    CorpusSpec("realistic", "realistic", "none", 9_500, 400, ("engine-1", "engine-N", "duckdb", "parse", "spark")),
    CorpusSpec("realistic-gz", "realistic", "gzip", 9_500, 400, ("engine-N", "duckdb", "inflate")),
    CorpusSpec("realistic-2x", "realistic", "none", 19_000, 800, ("engine-N",)),
    CorpusSpec("small", "small", "none", 1_500_000, 30_000, ("engine-1", "engine-N", "duckdb", "parse", "spark")),
    CorpusSpec("small-gz", "small", "gzip", 1_500_000, 30_000, ("engine-N", "duckdb", "inflate")),
)


@dataclass(frozen=True)
class Corpus:
    name: str
    root: str  # the --input of the job: root/submission_date=DAY/pings-*
    day: str  # YYYY-MM-DD
    profile: str
    compression: str
    pings: int  # non-blank lines, bad ones included
    files: int
    bytes_on_disk: int
    uncompressed_bytes: int
    generator_key: str

    @property
    def paths(self) -> list[str]:
        return sorted(str(p) for p in (Path(self.root) / f"submission_date={self.day}").glob("pings-*"))


def _key(spec: CorpusSpec, pings: int) -> str:
    params = {
        "profile": spec.profile,
        "compression": spec.compression,
        "pings": pings,
        "seed": SEED,
        "day": DAY.isoformat(),
        "synth": hashlib.sha256(Path(synth.__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def ensure(spec: CorpusSpec, corpus_dir: Path, quick: bool, log=print) -> Corpus:
    """The corpus of ``spec``, generated unless a copy with the same key is there."""
    pings = spec.quick_pings if quick else spec.pings
    name = f"{spec.name}-quick" if quick else spec.name
    key = _key(spec, pings)
    folder = corpus_dir / f"{name}-{key}"
    manifest = folder / "corpus.json"
    if manifest.exists():
        return Corpus(**json.loads(manifest.read_text()))
    for stale in corpus_dir.glob(f"{name}-*"):
        if stale.is_dir() and re.fullmatch(re.escape(name) + "-[0-9a-f]{12}", stale.name):
            log(f"removing stale corpus {stale.name}")
            shutil.rmtree(stale)
    if folder.exists():
        shutil.rmtree(folder)
    log(f"generating corpus {name}: {pings:,} {spec.profile} pings, compression {spec.compression} ...")
    started = time.perf_counter()
    summary = synth.generate(str(folder), [DAY], pings, seed=SEED, profile=spec.profile, compression=spec.compression)
    corpus = Corpus(
        name=name,
        root=str(folder),
        day=DAY.isoformat(),
        profile=spec.profile,
        compression=spec.compression,
        pings=summary.pings,
        files=summary.files,
        bytes_on_disk=summary.bytes,
        uncompressed_bytes=summary.uncompressed_bytes,
        generator_key=key,
    )
    manifest.write_text(json.dumps(asdict(corpus), indent=2) + "\n")
    log(
        f"  {summary.uncompressed_bytes / 1e6:,.0f} MB uncompressed, {summary.bytes / 1e6:,.0f} MB on disk, "
        f"{summary.files} files, {time.perf_counter() - started:.0f} s"
    )
    return corpus


def warm(corpus: Corpus) -> None:
    """Read every file once so that all measurements start from a warm page cache."""
    for path in corpus.paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(8 << 20):
                pass
