"""The benchmark's input: synthetic days written once by the project's generator and cached.

A corpus lives in ``<corpus dir>/<name>-<key>/`` where ``key`` hashes the
generator's parameters and the source of ``synth.py``: changing either writes
the corpus anew (and removes the stale copy of the same name). ``corpus.json``
in the folder is written last, so a half-written corpus is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
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
    distinct: bool = False  # every ping its own build id and country (``make_distinct``)


# The same seed and ping count give the same JSON whatever the compression, so
# "realistic" and "realistic-gz" hold the same lines (and so do the small ones).
# Realistic pings average ~118 KB (main 100-200 KB, crash pings ~3 KB): 9,500 of
# them make ~1.1 GB; "realistic-2x" doubles that for the memory-growth check.
# "scan" (the project's own parser alone) runs on the plain corpora, "inflate"
# (decompression alone) on the compressed ones: together, in the same run,
# they make the composed limit of a compressed corpus (report.composed_limit).
CORPORA = (
    CorpusSpec(
        "realistic", "realistic", "none", 9_500, 400, ("engine-1", "engine-N", "duckdb", "parse", "scan", "spark")
    ),
    CorpusSpec("realistic-gz", "realistic", "gzip", 9_500, 400, ("engine-N", "duckdb", "inflate")),
    CorpusSpec("realistic-zst", "realistic", "zstd", 9_500, 400, ("engine-N", "duckdb", "inflate")),
    # It also holds issue 16's Spark target: a realistic day of at least 2 GB.
    CorpusSpec("realistic-2x", "realistic", "none", 19_000, 800, ("engine-N", "embedded-warm", "spark-warm")),
    CorpusSpec(
        "small", "small", "none", 1_500_000, 30_000, ("engine-1", "engine-N", "duckdb", "parse", "scan", "spark")
    ),
    CorpusSpec("small-gz", "small", "gzip", 1_500_000, 30_000, ("engine-N", "duckdb", "inflate")),
    CorpusSpec("small-zst", "small", "zstd", 1_500_000, 30_000, ("engine-N", "duckdb", "inflate")),
    # Issue 14: a day whose dimensions were misconfigured (one build id and country per ping),
    # ~400,000 distinct aggregates: the engine's memory per aggregate, against its targets.
    CorpusSpec("distinct", "small", "none", 410_000, 20_000, ("engine-N", "few-aggregates"), distinct=True),
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
    if spec.distinct:  # (absent otherwise, so that the other corpora keep their keys)
        params["distinct"] = hashlib.sha256(_DISTINCT_VERSION.encode()).hexdigest()
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
    if spec.distinct:
        make_distinct(folder / f"submission_date={DAY.isoformat()}")
        summary.bytes = summary.uncompressed_bytes = sum(
            f.stat().st_size for f in (folder / f"submission_date={DAY.isoformat()}").glob("pings-*")
        )
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


#: Changes whenever ``make_distinct`` writes other bytes (part of the corpus key).
_DISTINCT_VERSION = "1: buildId 2016 + ping number, geoCountry 4 letters of the ping number"
_BUILD_ID = re.compile(rb'"buildId":"[0-9]{14}"')
_COUNTRY = re.compile(rb'"geoCountry":"[^"]*"')


def make_distinct(folder: Path) -> int:
    """Give every ping of the plain ``pings-*`` files under ``folder`` its own build id and country.

    As a dimension that should not be one would (a client id, an IP address):
    each ping becomes its own aggregate. Only the bytes of those two values
    change: a valid build id (both of its copies in the ping) becomes
    ``2016`` and the ping's number in ten digits, still a valid build id; the
    country becomes four letters that spell the ping's number. Bad lines stay
    bad (an invalid build id does not match and is kept). Returns the lines
    rewritten.
    """
    n = 0
    for path in sorted(folder.glob("pings-*.ndjson")):
        out = path.with_name(path.name + ".tmp")
        with open(path, "rb") as src, open(out, "wb") as dst:
            for line in src:
                build_id = b'"buildId":"2016%010d"' % n
                line, found = _BUILD_ID.subn(build_id, line)
                line = _COUNTRY.sub(b'"geoCountry":"%s"' % _letters(n), line)
                n += found > 0
                dst.write(line)
        os.replace(out, path)
    return n


def _letters(n: int, width: int = 4) -> bytes:
    """``n`` in base 26, as capital letters.

    >>> _letters(0), _letters(27), _letters(26**4 - 1)
    (b'AAAA', b'AABB', b'ZZZZ')
    """
    out = bytearray()
    for _ in range(width):
        n, digit = divmod(n, 26)
        out.append(65 + digit)
    return bytes(reversed(out))


def warm(corpus: Corpus) -> None:
    """Read every file once so that all measurements start from a warm page cache."""
    for path in corpus.paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(8 << 20):
                pass
