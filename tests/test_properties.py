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

Examples are drawn deterministically (``derandomize``). ``make test`` (the ``ci``
profile) runs 2,000 examples of each cheap property ((a), (b), (d)) and fewer of
the whole-day ones ((c), (e)); ``make test-properties`` (``HYPOTHESIS_PROFILE=full``,
run by CI) at least 2,000 of every property; ``HYPOTHESIS_PROFILE=deep`` at least
20,000. A shrunk counterexample becomes a table case in test_pings.py or
test_scanner_safety.py (docs/reliability.md says how).
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path
from unittest import mock

import zstandard
from differential import CONFIGS, Tiers
from helpers import run
from hypothesis import given, settings
from hypothesis import strategies as st
from pingstrategies import D, blank_lines, ping_files, pings

from crash_aggregates import sources
from crash_aggregates.aggregate import DayAggregate, Sums
from crash_aggregates.config import DEFAULT_MAX_LINE_SIZE, default_config
from crash_aggregates.engines import embedded
from crash_aggregates.pings import PingRules
from crash_aggregates.sources import InputFile, Split, list_input, plan_splits, read_batches

TIERS = [Tiers(config, D) for config in CONFIGS.values()]
RULES = PingRules(default_config(), D)


def examples(n: int) -> settings:
    """``n`` examples, or the profile's floor if higher (conftest.py: ``full``, ``deep``)."""
    return settings(max_examples=max(n, settings.default.max_examples))


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


@examples(2000)
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


#: The line-length limit a file-level property runs with: the default (no generated
#: line reaches it), or one that generated lines fall on both sides of.
line_limits = st.one_of(st.just(DEFAULT_MAX_LINE_SIZE), st.integers(1, 400))


def is_blank(line: bytes) -> bool:
    return not line.strip(b" \t\r")


def expected_reading(data: bytes, limit: int) -> tuple[list[bytes], list[tuple[int, int]]]:
    """What a reader with line limit ``limit`` gives, by hand: the lines of at most
    ``limit`` bytes, and (offset, length) of each longer one (a blank line is never oversized)."""
    kept, oversized, offset = [], [], 0
    for line in whole_lines(data) if data else []:
        if len(line) <= limit:
            kept.append(line)
        elif not is_blank(line):
            oversized.append((offset, len(line)))
        offset += len(line) + 1
    return kept, oversized


def expected_file_counters(lines, limit: int) -> tuple[Counter, Counter]:
    """SPEC's counters for a file of generated lines read with line limit ``limit``."""
    processed, ignored = expected_counters(
        [line for line in lines if not isinstance(line, bytes) and len(line.line) <= limit]
    )
    oversized = sum(1 for line in lines if not isinstance(line, bytes) and len(line.line) > limit)
    if oversized:
        ignored["main", "oversized"] += oversized
    return processed, ignored


def read_all(batches) -> tuple[list[bytes], list[tuple[int, int]], list]:
    batches = list(batches)
    lines = [bytes(line) for batch in batches for line in batch.lines]
    return lines, [(o.offset, o.length) for batch in batches for o in batch.oversized], batches


@examples(2000)
@given(
    lines=ping_files,
    trailing_newline=st.booleans(),
    cuts=st.lists(st.floats(0, 1), max_size=6),
    block=st.integers(1, 200),
    limit=line_limits,
)
def test_any_split_reads_like_the_whole_file(lines, trailing_newline, cuts, block, limit):
    """Byte ranges at any boundaries, read by the local reader (a memory map) and by the
    one S3 uses (blocks of ``BLOCK`` bytes, here tiny so that lines straddle them), with
    a line limit: the same lines, the same oversized ones, the same aggregates and counters."""
    data = file_bytes(lines, trailing_newline)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pings.ndjson"
        path.write_bytes(data)
        file = InputFile(str(path), len(data), "none")
        bounds = sorted({0, len(data), *(round(c * len(data)) for c in cuts)})
        splits = [Split(file, a, b) for a, b in zip(bounds, bounds[1:], strict=False)] or [Split(file, 0, 0)]
        with mock.patch.object(sources, "BLOCK", block):
            mapped = read_all(batch for split in splits for batch in read_batches(split, None, limit))
            streamed = read_all(batch for split in splits for batch in sources._plain_batches(split, None, limit))
            expected_lines, expected_oversized = expected_reading(data, limit)
            for got_lines, got_oversized, batches in (mapped, streamed):
                assert got_lines == expected_lines
                assert got_oversized == expected_oversized
                agg = DayAggregate()
                agg.add_batches(RULES, batches)
                assert agg.aggregates == aggregate(expected_lines).aggregates
                assert (agg.processed, agg.ignored) == expected_file_counters(lines, limit)


@examples(2000)
@given(lines=ping_files, compression=st.sampled_from(["gzip", "zstd"]), members=st.integers(1, 3), limit=line_limits)
def test_compressed_files_read_like_plain_ones(lines, compression, members, limit):
    """gzip members and zstd frames, one or several per file: the same lines and oversized
    lines (offsets in the decompressed content) as the plain text."""
    data = file_bytes(lines, trailing_newline=True)
    step = -(-len(data) // members) or 1
    pieces = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    compress = (lambda b: gzip.compress(b, mtime=0)) if compression == "gzip" else zstandard.compress
    with tempfile.TemporaryDirectory() as folder:
        day = Path(folder) / f"submission_date={D.isoformat()}"
        day.mkdir()
        (day / "pings.ndjson.x").write_bytes(b"".join(compress(piece) for piece in pieces))
        [file] = list_input(folder, D)  # the compression found from the file's first bytes
        assert file.compression == compression
        got_lines, got_oversized, _ = read_all(read_batches(Split(file), None, limit))
    assert (got_lines, got_oversized) == expected_reading(data, limit)


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


def close_stats(a: dict, b: dict) -> bool:
    """The same keys, and stats equal to 1e-9 relative (sums of floats added in another order
    may differ in the last bits)."""
    if a.keys() != b.keys():
        return False
    return all(
        len(x) == len(y) and all(u == v or math.isclose(u, v, rel_tol=1e-9) for u, v in zip(x, y, strict=True))
        for key in a
        for x, y in [(a[key], b[key])]
    )


def day_counters(files, limit: int) -> tuple[Counter, Counter]:
    """SPEC's counters for a day of generated files read with line limit ``limit``."""
    processed, ignored = Counter(), Counter()
    for lines in files:
        p, i = expected_file_counters(lines, limit)
        processed.update(p)
        ignored.update(i)
    return processed, ignored


def one_pass(files, limit: int) -> DayAggregate:
    """One pass over the lines of every file that are within the limit."""
    return aggregate([line for lines in files for line in expected_reading(file_bytes(lines, True), limit)[0]])


day_files = st.lists(ping_files, min_size=1, max_size=3)
compression_lists = st.lists(st.sampled_from(["none", "none", "gzip", "zstd"]), min_size=3, max_size=3)


@examples(100)
@given(files=day_files, compressions=compression_lists, split_bytes=st.integers(1, 4096), limit=line_limits)
def test_one_and_two_workers_agree_with_one_pass(files, compressions, split_bytes, limit):
    """The embedded engine with 1 and 2 worker processes, on splits of any size (lines straddle
    them), sums what one pass over the lines finds. (The Spark engine: tests/test_spark.py.)"""
    config = replace(RULES.config, max_line_size=limit)
    with tempfile.TemporaryDirectory() as folder:
        write_day_files(Path(folder), files, compressions)
        splits = plan_splits(list_input(folder, D), split_bytes)
        one = embedded.aggregate_day(config, D, splits, workers=1)
        two = embedded.aggregate_day(config, D, splits, workers=2)
    assert same_aggregate(one, two)
    assert one.oversized_lines == two.oversized_lines
    assert (one.processed, one.ignored) == day_counters(files, limit)
    assert close_stats(one.aggregates, one_pass(files, limit).aggregates)


def test_sums_past_the_largest_double_are_inf_without_a_warning():
    """Found by (c) with 2 workers: counts of 1e308 merged from two workers overflowed in
    numpy's addition, which warned on stderr; the sum is inf, as ``a + b`` gives it."""
    sums = Sums.of({("2016-03-15", ("x",)): [1e308, 1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sums.merge({("2016-03-15", ("x",)): [1e308, 2.0]})
    assert list(sums.values) == [math.inf, 3.0]


# What differs between two runs of the same input, and nothing else: the report's
# clock (``finished_at``, ``duration_seconds``) and the publish stamp of ``_SUCCESS``
# (``version``: the time of publishing and a random suffix, so that readers can tell
# two publications apart). The package version (``report.version``), the input listing,
# every counter and every data file must be the same.
RUN_DEPENDENT_REPORT_FIELDS = ("finished_at", "duration_seconds")
RUN_DEPENDENT_SUCCESS_FIELDS = ("version",)


def without_clock(report: dict) -> dict:
    assert set(RUN_DEPENDENT_REPORT_FIELDS) <= report.keys(), sorted(report)
    return {k: v for k, v in report.items() if k not in RUN_DEPENDENT_REPORT_FIELDS}


def published(root: Path) -> dict:
    """Every file of the output, by relative path: its bytes, or for ``_report.json`` and
    ``_SUCCESS`` the parsed document without the fields named above."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "_report.json":
                data = without_clock(json.loads(data))
            elif path.name == "_SUCCESS":
                doc = json.loads(data)
                assert set(RUN_DEPENDENT_SUCCESS_FIELDS) <= doc.keys(), sorted(doc)
                data = {k: v for k, v in doc.items() if k not in RUN_DEPENDENT_SUCCESS_FIELDS}
                data["report"] = without_clock(data["report"])
            out[path.relative_to(root).as_posix()] = data
    return out


@examples(100)
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
