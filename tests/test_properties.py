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
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

import zstandard
from differential import CONFIGS, Tiers
from hypothesis import given, settings
from hypothesis import strategies as st
from pingstrategies import D, blank_lines, ping_files, pings

from crash_aggregates import sources
from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.config import default_config
from crash_aggregates.pings import PingRules
from crash_aggregates.sources import InputFile, Split, read_batches, read_lines

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
            streamed = [bytes(line) for split in splits for b in sources._plain_batches(split, None) for line in b.lines]
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
