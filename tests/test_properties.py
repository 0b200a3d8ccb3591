"""Properties of the whole pipeline on generated pings (Hypothesis; tests/pingstrategies.py).

(a) every parsing tier gives every line the same outcome, and it is the one
    SPEC gives the damage the generator made (the first reason of SPEC's
    table among those applied, or processed);
(b) processed + ignored equals the non-blank lines, reason by reason;
(c) the embedded engine with 1 and 2 workers and the Spark engine publish the
    same partition (tests/test_spark.py holds the Spark part);
(d) reading a file cut at any byte boundaries gives the lines and the
    aggregates of reading it whole;
(e) running a date again gives the same partition.

Examples are drawn deterministically (``derandomize``), with the profile
that conftest.py loads: ``ci`` (the default: a few thousand examples for the
cheap properties) or ``deep`` (``HYPOTHESIS_PROFILE=deep``, ten times more).
A shrunk counterexample becomes a table case in test_pings.py or
test_scanner_safety.py.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

import zstandard
from differential import CONFIGS, Tiers
from helpers import run
from hypothesis import given, settings
from hypothesis import strategies as st
from pingstrategies import D, blank_lines, ping_files, pings

from crash_aggregates import sources
from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.config import default_config
from crash_aggregates.engines import embedded
from crash_aggregates.pings import PingRules
from crash_aggregates.sources import InputFile, Split, list_input, plan_splits, read_batches, read_lines

TIERS = [Tiers(config, D) for config in CONFIGS.values()]
RULES = PingRules(default_config(), D)


def examples(n: int) -> settings:
    """``n`` examples under the ci profile (2000 by default), scaled with the profile loaded."""
    return settings(max_examples=max(1, round(n * settings.default.max_examples / 2000)))


def expected_counters(generated) -> tuple[Counter, Counter]:
    """What SPEC counts for generated lines: (processed per doc type, ignored per (doc type, reason))."""
    processed, ignored = Counter(), Counter()
    for ping in generated:
        doc_type = "crash" if ping.is_crash else "main"
        if ping.reason is None:
            processed[doc_type] += 1
        else:
            ignored[doc_type, ping.reason] += 1
    return processed, ignored


# -- (a) -------------------------------------------------------------------------


@examples(2000)
@given(pings())
def test_tiers_agree_and_give_the_damage_its_reason(ping):
    for tiers in TIERS:
        tiers.check(ping.line)  # the scanner, msgspec and json: one outcome
    outcome = RULES.evaluate(ping.line)
    assert (outcome.reason, outcome.is_crash) == (ping.reason, ping.is_crash), ping.line[:300]


# -- (b) -------------------------------------------------------------------------


@examples(400)
@given(st.lists(st.one_of(pings(), blank_lines), max_size=20))
def test_every_non_blank_line_is_counted_once(lines):
    generated = [line for line in lines if not isinstance(line, bytes)]
    agg = DayAggregate()
    agg.add_lines(RULES, [line if isinstance(line, bytes) else line.line for line in lines])
    processed, ignored = expected_counters(generated)
    assert agg.processed == processed
    assert agg.ignored == ignored
    assert agg.pings == len(generated) == sum(processed.values()) + sum(ignored.values())


# -- (d) -------------------------------------------------------------------------


def file_bytes(lines, trailing_newline: bool) -> bytes:
    data = b"\n".join(line if isinstance(line, bytes) else line.line for line in lines)
    return data + b"\n" if trailing_newline and lines else data


def whole_lines(data: bytes) -> list[bytes]:
    """The lines of a file, by hand: cut at every newline; a final newline ends the last line."""
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def aggregate(lines) -> DayAggregate:
    agg = DayAggregate()
    agg.add_lines(RULES, lines)
    return agg


def same_aggregate(a: DayAggregate, b: DayAggregate) -> bool:
    return (a.aggregates, a.processed, a.ignored) == (b.aggregates, b.processed, b.ignored)


@examples(300)
@given(
    lines=ping_files,
    trailing_newline=st.booleans(),
    cuts=st.lists(st.floats(0, 1), max_size=6),
    block=st.integers(1, 200),
)
def test_any_split_reads_like_the_whole_file(lines, trailing_newline, cuts, block):
    """Byte ranges at any boundaries, read by the local reader (a memory map) and by the
    one S3 uses (blocks of ``BLOCK`` bytes, here tiny so that lines straddle them)."""
    data = file_bytes(lines, trailing_newline)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pings.ndjson"
        path.write_bytes(data)
        file = InputFile(str(path), len(data), "none")
        bounds = sorted({0, len(data), *(round(c * len(data)) for c in cuts)})
        splits = [Split(file, a, b) for a, b in zip(bounds, bounds[1:], strict=False)] or [Split(file, 0, 0)]
        with mock.patch.object(sources, "BLOCK", block):
            mapped = [line for split in splits for line in read_lines(split)]
            streamed = [
                bytes(line) for split in splits for b in sources._plain_batches(split, None) for line in b.lines
            ]
    expected = whole_lines(data) if data else []
    assert mapped == expected
    assert streamed == expected
    whole = aggregate(expected)
    assert same_aggregate(aggregate(mapped), whole)


@examples(150)
@given(lines=ping_files, compression=st.sampled_from(["gzip", "zstd"]), members=st.integers(1, 3))
def test_compressed_files_read_like_plain_ones(lines, compression, members):
    """gzip members and zstd frames, one or several per file: the same lines as the plain text."""
    data = file_bytes(lines, trailing_newline=True)
    step = -(-len(data) // members) or 1
    pieces = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    compress = (lambda b: gzip.compress(b, mtime=0)) if compression == "gzip" else zstandard.compress
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pings.ndjson.x"
        path.write_bytes(b"".join(compress(piece) for piece in pieces))
        file = InputFile(str(path), path.stat().st_size, sources.sniff_compression(str(path)))
        assert file.compression == compression
        got = [line for batch in read_batches(Split(file)) for line in map(bytes, batch.lines)]
    assert got == (whole_lines(data) if data else [])


# -- (c) and (e): whole days through the engine and the job ---------------------------


def write_day_files(root: Path, files, compressions) -> None:
    """One submission date's files under ``root`` (each a list of generated lines), compressed as drawn."""
    folder = root / f"submission_date={D.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (lines, compression) in enumerate(zip(files, compressions, strict=False)):
        data = file_bytes(lines, trailing_newline=True)
        if compression == "gzip":
            data = gzip.compress(data, mtime=0)
        elif compression == "zstd":
            data = zstandard.compress(data)
        (folder / f"part-{i}.ndjson").write_bytes(data)


def close_aggregates(a: DayAggregate, b: DayAggregate) -> bool:
    """The same counters, keys and stats (sums of floats added in another order may differ in the last bits)."""
    if (a.processed, a.ignored) != (b.processed, b.ignored) or a.aggregates.keys() != b.aggregates.keys():
        return False
    return all(
        len(x) == len(y) and all(u == v or math.isclose(u, v, rel_tol=1e-9) for u, v in zip(x, y, strict=True))
        for key in a.aggregates
        for x, y in [(a.aggregates[key], b.aggregates[key])]
    )


day_files = st.lists(ping_files, min_size=1, max_size=3)
compression_lists = st.lists(st.sampled_from(["none", "none", "gzip", "zstd"]), min_size=3, max_size=3)


@examples(60)
@given(files=day_files, compressions=compression_lists, split_bytes=st.integers(1, 4096))
def test_one_and_two_workers_agree_with_one_pass(files, compressions, split_bytes):
    """The embedded engine with 1 and 2 worker processes, on splits of any size (lines straddle
    them), sums what one pass over the lines finds. (The Spark engine: tests/test_spark.py.)"""
    with tempfile.TemporaryDirectory() as folder:
        write_day_files(Path(folder), files, compressions)
        splits = plan_splits(list_input(folder, D), split_bytes)
        one = embedded.aggregate_day(RULES.config, D, splits, workers=1)
        two = embedded.aggregate_day(RULES.config, D, splits, workers=2)
    whole = aggregate([line for lines in files for line in whole_lines(file_bytes(lines, True))])
    assert same_aggregate(one, two)
    assert close_aggregates(one, whole)


def published(root: Path) -> dict:
    """Every file of the output, by relative path: its bytes, or for the report its counters."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name in ("_report.json", "_SUCCESS"):  # times and the version stamp differ from run to run
                doc = json.loads(data)
                data = {
                    k: v for k, v in doc.items() if not any(t in k for t in ("time", "seconds", "duration", "version"))
                }
            out[path.relative_to(root).as_posix()] = data
    return out


@examples(25)
@given(files=day_files, compressions=compression_lists, workers=st.sampled_from(["1", "2"]))
def test_running_a_date_again_changes_nothing(files, compressions, workers):
    """(e) ``run`` twice on the same input: the same files, byte for byte (bar the report's clock)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_day_files(root / "in", files, compressions)
        args = ("run", "--input", root / "in", "--output", root / "out", "--min-submission-date", D.isoformat())
        args += ("--max-submission-date", D.isoformat(), "--workers", workers, "--no-progress")
        first = run(*args)
        assert first.exit_code == 0, first.output
        before = published(root / "out")
        again = run(*args)
        assert again.exit_code == 0, again.output
        assert published(root / "out") == before
