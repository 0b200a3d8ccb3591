"""Lines longer than the limit: skipped as they stream by, counted as ``oversized``, located in the report.

Every reader (a memory-mapped plain file cut into byte ranges, the ranged
reader that S3 objects use, gzip and zstd, with several members or frames)
must give the same lines and the same oversized lines as the input's bytes
split on ``\\n`` say, whatever the block sizes and wherever a long line falls
(across blocks, byte ranges, members, frames). Memory itself is measured by
``python -m benchmarks.long_line``, not here.
"""

from __future__ import annotations

import gzip
import io
import json
import random

import pytest
import zstandard
from helpers import read_partition, read_report, run, run_process, write_day

from crash_aggregates import sources
from crash_aggregates.config import ConfigError, parse_size
from crash_aggregates.sources import InputFile, plan_splits, read_batches

DAY = "2016-03-05"
LIMIT = 100


def expected(data: bytes, limit: int) -> tuple[list[bytes], list[tuple[int, int]]]:
    """(the lines kept, (offset, length) of each longer one), from the whole input split on \\n.

    A line longer than the limit but blank (only whitespace) is neither: blank lines are not counted.
    """
    pieces = data.split(b"\n")
    if pieces[-1] == b"":  # a final \n ends the last line; it does not start an empty one
        pieces.pop()
    kept, oversized, offset = [], [], 0
    for piece in pieces:
        if len(piece) > limit:
            if piece.strip():
                oversized.append((offset, len(piece)))
        else:
            kept.append(piece)
        offset += len(piece) + 1
    return kept, oversized


def _gzip_members(data: bytes, rng: random.Random) -> bytes:
    cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
    return b"".join(gzip.compress(data[a:b]) for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True))


def _zstd_frames(data: bytes, rng: random.Random) -> bytes:
    cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
    c = zstandard.ZstdCompressor()
    return b"".join(c.compress(data[a:b]) for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True))


#: How each input form is written, and which reader reads it.
FORMS = {
    "mapped": lambda data, rng: data,  # a local plain file: memory-mapped byte ranges
    "ranged": lambda data, rng: data,  # the reader of S3 objects' byte ranges
    "gzip": lambda data, rng: gzip.compress(data),
    "gzip-members": _gzip_members,  # members cut anywhere, inside long lines too
    "zstd": lambda data, rng: zstandard.ZstdCompressor().compress(data),
    "zstd-frames": _zstd_frames,
}


def read_all(tmp_path, form: str, data: bytes, limit: int, split_bytes: int, seed: int = 0):
    """(lines, [(offset, length)], paths) read back from ``data`` written in ``form``."""
    path = tmp_path / f"input-{form}"
    blob = FORMS[form](data, random.Random(seed))
    path.write_bytes(blob)
    kind = {"mapped": "none", "ranged": "none"}.get(form, form.split("-")[0])
    file = InputFile(str(path), len(blob), kind)
    lines, oversized, paths = [], [], set()
    for split in plan_splits([file], split_bytes):
        batches = (
            sources._plain_batches(split, None, limit) if form == "ranged" else read_batches(split, max_line=limit)
        )
        for batch in batches:
            lines.extend(bytes(line) for line in batch.lines)
            oversized.extend((o.offset, o.length) for o in batch.oversized)
            paths.update(o.path for o in batch.oversized)
    return lines, oversized, paths


def _small_blocks(monkeypatch, block: int, decoded: int, window: int = 1 << 20) -> None:
    monkeypatch.setattr(sources, "BLOCK", block)
    monkeypatch.setattr(sources, "DECODED_BLOCK", decoded)
    monkeypatch.setattr(sources, "SKIP_WINDOW", window)


def line(n: int, fill: bytes = b"x") -> bytes:
    """A line of exactly n bytes (a JSON string when n >= 2, which does not matter here)."""
    return (b'"' + fill * (n - 2) + b'"') if n >= 2 else fill * n


L = LIMIT
#: name -> the input's bytes; lengths just under, at and over the limit, where it matters.
CASES = {
    "under": line(L - 1) + b"\n",
    "at": line(L) + b"\n",
    "over": line(L + 1) + b"\n",
    "under-at-over-between-short": b"a\n" + line(L - 1) + b"\nb\n" + line(L) + b"\nc\n" + line(L + 1) + b"\nd\n",
    "far-over-first": line(50 * L) + b"\nshort\n",
    "far-over-last-no-newline": b"short\n" + line(50 * L),
    "at-last-no-newline": b"short\n" + line(L),
    "over-last-no-newline": b"short\n" + line(L + 1),
    "consecutive-over": line(L + 1) + b"\n" + line(3 * L) + b"\n" + line(L + 1) + b"\n",
    "over-then-blank": line(2 * L) + b"\n\n \n" + line(L) + b"\n",
    "whitespace-over": b" " * (L + 1) + b"\n{}\n",  # blank, however long: not counted
    "whitespace-far-over": b"\t \r" * (20 * L) + b"\n{}\n" + b" " * (20 * L) + b"x" + b" " * (20 * L) + b"\n",
    "crlf-at": line(L - 1) + b"\r\n",  # the \r is part of the line
    "crlf-over": line(L) + b"\r\n",
    "only-newlines": b"\n\n\n",
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("blocks", [(1 << 20, 1 << 20, 1 << 20), (7, 13, 4096), (64, 1, 4096)], ids=str)
def test_lines_just_under_at_and_over_the_limit(tmp_path, monkeypatch, form, case, blocks):
    _small_blocks(monkeypatch, *blocks)
    data = CASES[case]
    lines, oversized, paths = read_all(tmp_path, form, data, LIMIT, split_bytes=1 << 20)
    assert (lines, oversized) == expected(data, LIMIT)
    assert paths <= {str(tmp_path / f"input-{form}")}


@pytest.mark.parametrize("form", ["mapped", "ranged"])
@pytest.mark.parametrize("split_bytes", [1, 7, 50, 99, 100, 101, 333])
def test_a_long_line_straddling_byte_ranges_is_owned_once(tmp_path, monkeypatch, form, split_bytes):
    """Ranges cut inside, at the start and at the end of long lines: each line is counted by one range."""
    _small_blocks(monkeypatch, 16, 16, 4096)
    data = b"a\n" + line(5 * L) + b"\n" + line(L + 1) + b"\n" + line(L) + b"\nb\n" + line(3 * L)
    lines, oversized, _ = read_all(tmp_path, form, data, LIMIT, split_bytes)
    assert (lines, oversized) == expected(data, LIMIT)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("seed", range(8))
def test_random_lines_around_the_limit(tmp_path, monkeypatch, form, seed):
    rng = random.Random(seed)
    limit = rng.choice([1, 10, 100, 1000])
    lengths = [0, 1, limit - 1, limit, limit + 1, 2 * limit, 20 * limit, 5]
    data = b"\n".join(line(max(0, rng.choice(lengths)), rng.choice([b"x", b"\xc3\xa9"])) for _ in range(200))
    data += rng.choice([b"", b"\n"])
    _small_blocks(monkeypatch, rng.choice([1, 3, 64, 4096]), rng.choice([1, 5, 100, 1 << 20]), 4096)
    lines, oversized, _ = read_all(tmp_path, form, data, limit, rng.choice([1, 17, 500, 1 << 20]), seed)
    assert (lines, oversized) == expected(data, limit)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_decoders_return_bounded_blocks(tmp_path, monkeypatch, kind):
    """However well the input compresses (20 MB of one byte: ~20 KB of gzip), no decoded block is larger."""
    monkeypatch.setattr(sources, "DECODED_BLOCK", 64 << 10)
    data = b"a" * (20 << 20) + b"\nend\n"
    blob = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    path = tmp_path / "f"
    path.write_bytes(blob)
    sizes, total = [], 0
    for block in sources._compressed_blocks(InputFile(str(path), len(blob), kind), None):
        sizes.append(len(block))
        total += len(block)
    assert total == len(data) and max(sizes) <= 64 << 10


class CountingFile(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n=-1):
        out = super().read(n)
        self.bytes_read += len(out)
        return out


def test_a_range_that_no_line_starts_in_is_left_at_once():
    """A range inside a long line reads no further than its own end, not to that line's end
    (else each of a 3 GB line's ~100 ranges would search the rest of it)."""
    data = b"a\n" + b"x" * 100_000 + b"\nb\n"
    f = CountingFile(data)
    assert sources._first_line_start(f, 1000, 2000) is None
    assert f.bytes_read <= 1000
    f = CountingFile(data)
    assert sources._first_line_start(f, 1000, None) == 100_003  # without an end: to the next line
    for start, end, want in [
        (1, 2, None),
        (1, 3, 2),
        (2, 3, 2),
        (100_002, 100_004, 100_003),
        (100_003, 100_005, 100_003),
        (100_004, 100_005, None),
    ]:
        assert sources._first_line_start(CountingFile(data), start, end) == want, (start, end)


# -- the job: counters, report, configuration -------------------------------------------


def ping(n: int, doc_type: str = "main", **extra) -> dict:
    payload = {"info": {"subsessionLength": 3600, "subsessionStartDate": "2016-03-04T00:00:00.0+01:00"}}
    if doc_type == "crash":
        payload = {"crashDate": "2016-03-04", "processType": "main"}
    return {
        "type": doc_type,
        "meta": {"submissionDate": "20160305", "docType": doc_type, "geoCountry": ["US", "DE"][n % 2]},
        "environment": {"build": {"buildId": "20160301000000"}},
        "payload": payload,
        **extra,
    }


def padded(doc: dict, length: int) -> bytes:
    """``doc`` as JSON of exactly ``length`` bytes (a "pad" string field makes up the difference)."""
    text = json.dumps({**doc, "pad": ""}).encode()
    assert len(text) <= length
    return json.dumps({**doc, "pad": "p" * (length - len(text))}).encode()


LIMIT_ARG = "2KiB"
LIMIT_BYTES = 2048


def day_lines(seed: int) -> list[bytes]:
    """Ordinary pings, blank lines, and lines at and over the limit of every kind."""
    lines = [json.dumps(ping(i, "crash" if i % 5 == 0 else "main")).encode() for i in range(60)]
    lines += [b"", b"  "]
    lines += [
        padded(ping(100), LIMIT_BYTES),  # at the limit: processed
        padded(ping(101, "crash"), LIMIT_BYTES - 1),  # under: processed
        padded(ping(102), LIMIT_BYTES + 1),  # over: oversized, not processed
        padded(ping(103, "crash"), 3 * LIMIT_BYTES),  # an oversized crash ping counts as a main ping
        b"{not json" + b"x" * LIMIT_BYTES,  # malformed and oversized: oversized comes first
        padded(ping(104, "event"), 5 * LIMIT_BYTES),  # other doc type and oversized: oversized
        b" " * (3 * LIMIT_BYTES),  # blank however long: skipped, not counted (SPEC 2)
    ]
    random.Random(seed).shuffle(lines)
    return lines


def write_input(root, compression: str, seed: int = 1):
    suffix = {"gzip": ".ndjson.gz", "zstd": ".ndjson.zst", "none": ".ndjson"}[compression]
    lines = day_lines(seed)
    path = write_day(root, DAY, lines, f"pings{suffix}", compression=compression)
    return path, lines


def run_day(root, out, *extra):
    return run(
        "run", "--input", root, "--output", out, "--min-submission-date", DAY, "--max-submission-date", DAY, *extra
    )


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_job_counts_and_locates_oversized_lines(tmp_path, monkeypatch, compression, workers):
    monkeypatch.setattr(sources, "SPLIT_BYTES", 4096)  # plain input: byte ranges cut through long lines
    path, lines = write_input(tmp_path / "in", compression)
    result = run_day(tmp_path / "in", tmp_path / "out", "--max-line-size", LIMIT_ARG, "--workers", workers)
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "out", DAY)

    data = b"".join(line + b"\n" for line in lines)
    _, where = expected(data, LIMIT_BYTES)
    assert len(where) == 4
    assert report["ignored_by_reason"]["oversized"] == 4
    assert report["ignored_by_doc_type"]["main"]["oversized"] == 4  # doc type unknown: main (SPEC 2)
    assert "oversized" not in report["ignored_by_doc_type"]["crash"]
    assert report["ignored_by_reason"]["malformed_json"] == 0 and report["ignored_by_reason"]["other_doc_type"] == 0
    assert report["oversized_lines"] == [{"path": str(path), "offset": o, "length": n} for o, n in where]
    non_blank = sum(1 for line in lines if line.strip())
    counted = sum(report[f"{t}_pings_{s}"] for t in ("main", "crash") for s in ("processed", "ignored"))
    assert counted == non_blank
    assert f"4 line(s) longer than {LIMIT_ARG}" in result.stderr

    # The rest is aggregated as if the long lines were not there at all.
    kept = [line for line in lines if len(line) <= LIMIT_BYTES]
    write_day(tmp_path / "kept", DAY, kept, "pings.ndjson")
    assert run_day(tmp_path / "kept", tmp_path / "kept-out").exit_code == 0
    assert read_partition(tmp_path / "out", DAY) == read_partition(tmp_path / "kept-out", DAY)
    kept_report = read_report(tmp_path / "kept-out", DAY)
    assert report["crash_pings_processed"] == kept_report["crash_pings_processed"]
    assert report["main_pings_processed"] == kept_report["main_pings_processed"]


def test_default_limit_is_16_mib_and_the_config_file_sets_it(tmp_path):
    big = padded(ping(1), (16 << 20) + 1)
    path = write_day(tmp_path / "in", DAY, [json.dumps(ping(2)), big, padded(ping(3), 16 << 20)], "p.ndjson.gz", "gzip")
    assert run_day(tmp_path / "in", tmp_path / "out").exit_code == 0
    report = read_report(tmp_path / "out", DAY)
    assert report["ignored_by_reason"]["oversized"] == 1 and report["main_pings_processed"] == 2
    assert report["oversized_lines"] == [
        {"path": str(path), "offset": len(json.dumps(ping(2))) + 1, "length": len(big)}
    ]

    config = tmp_path / "c.toml"
    config.write_text('[limits]\nmax_line_size = "1KiB"\n')
    assert run_day(tmp_path / "in", tmp_path / "out", "--config", config).exit_code == 0
    assert read_report(tmp_path / "out", DAY)["ignored_by_reason"]["oversized"] == 2
    # The command line wins over the file.
    assert run_day(tmp_path / "in", tmp_path / "out", "--config", config, "--max-line-size", "64MiB").exit_code == 0
    assert read_report(tmp_path / "out", DAY)["ignored_by_reason"]["oversized"] == 0
    shown = run("config", "--config", config)
    assert shown.exit_code == 0
    limits = shown.output.split("[limits]\n", 1)[1].split("\n[", 1)[0]  # the table, up to the next one
    assert '\nmax_line_size = "1KiB"\n' in limits


def test_report_lists_a_bounded_number_of_lines_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SPLIT_BYTES", 2000)
    long = b"y" * 30
    paths = [
        write_day(tmp_path / "in", DAY, [long, b"{}"] * 80, "b.ndjson"),
        write_day(tmp_path / "in", DAY, [b"{}", long] * 80, "a.ndjson.gz", compression="gzip"),
    ]
    result = run_day(tmp_path / "in", tmp_path / "out", "--max-line-size", "29", "--workers", "2")
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "out", DAY)
    assert report["ignored_by_reason"]["oversized"] == 160 and report["ignored_by_reason"]["malformed_json"] == 0
    listed = [(entry["path"], entry["offset"]) for entry in report["oversized_lines"]]
    every = sorted([(str(paths[1]), 3 + 34 * i) for i in range(80)] + [(str(paths[0]), 34 * i) for i in range(80)])
    assert listed == every[:100]
    assert {entry["length"] for entry in report["oversized_lines"]} == {30}


@pytest.mark.parametrize("value", ["0", "abc", "16 XB", "-5", "1.5.2M"])
def test_bad_sizes_are_usage_errors(tmp_path, value):
    write_day(tmp_path / "in", DAY, [json.dumps(ping(1))])
    args = ["--input", tmp_path / "in", "--output", tmp_path / "out", "--min-submission-date", DAY]
    done = run_process("run", *args, "--max-line-size", value)
    assert done.returncode == 2 and "--max-line-size" in done.stderr and "Traceback" not in done.stderr
    config = tmp_path / "c.toml"
    config.write_text(f'[limits]\nmax_line_size = "{value}"\n')
    done = run_process("run", *args, "--config", config)
    assert done.returncode == 2 and "max_line_size" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text, size",
    [("1", 1), ("16MiB", 16 << 20), ("16M", 16 << 20), ("16 mib", 16 << 20), ("2KB", 2000), ("1GiB", 1 << 30)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


def test_unknown_limits_key_is_refused(tmp_path):
    from crash_aggregates.config import load_config

    config = tmp_path / "c.toml"
    config.write_text("[limits]\nmax_line = 5\n")
    with pytest.raises(ConfigError, match=r"\[limits\]: unknown keys \['max_line'\]"):
        load_config(config)
