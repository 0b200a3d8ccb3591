"""Reading input: byte ranges own each line exactly once; compression by content."""

from __future__ import annotations

import gzip
import random
from datetime import date

import pytest
import zstandard

from crash_aggregates import sources
from crash_aggregates.sources import CorruptInput, InputFile, NoInput, list_input, plan_splits, read_batches, read_lines


@pytest.mark.parametrize("seed", range(6))
def test_byte_ranges_cover_every_line_once(tmp_path, seed):
    rng = random.Random(seed)
    lines = [b"x" * rng.choice([0, 1, 5, 50, 300]) + str(i).encode() for i in range(500)]
    data = b"\n".join(lines) + (b"\n" if seed % 2 else b"")  # with and without final newline
    path = tmp_path / "f.ndjson"
    path.write_bytes(data)
    file = InputFile(str(path), len(data), "none")
    split_bytes = rng.choice([1, 7, 64, 1000, 4096])
    splits = plan_splits([file], split_bytes)
    assert splits[0].start == 0 and splits[-1].end == len(data)
    got = [line for split in splits for line in read_lines(split)]
    assert got == lines


@pytest.mark.parametrize("reader", ["read_batches", "_plain_batches"])
@pytest.mark.parametrize("seed", range(12))
def test_lines_are_cut_alike_whatever_the_block_size(tmp_path, monkeypatch, seed, reader):
    """Lines longer than a block, straddling blocks, blank, non-ASCII: the same lines
    for any block size and byte range, and a batch said ASCII holds only ASCII lines.

    Local files are memory-mapped (read_batches); ``_plain_batches``, which reads
    blocks as S3 objects are read, must cut them the same."""
    rng = random.Random(seed)
    pieces = [b"", b" ", b"x" * 37, "\u00e9t\u00e9".encode(), b"\xff\xfe", b"{}" * 300]
    lines = [rng.choice(pieces) + str(i).encode() * rng.choice([0, 1]) for i in range(300)]
    data = b"\n".join(lines) + (b"\n" if seed % 2 else b"")
    path = tmp_path / "f.ndjson"
    path.write_bytes(data)
    monkeypatch.setattr(sources, "BLOCK", rng.choice([1, 2, 3, 16, 100, 1000]))
    file = InputFile(str(path), len(data), "none")
    splits = plan_splits([file], rng.choice([1, 50, 999, 1 << 20]))
    got = []
    for split in splits:
        batches = read_batches(split) if reader == "read_batches" else sources._plain_batches(split, None, 1 << 20)
        for batch in batches:
            got.extend(bytes(line) for line in batch.lines)
            assert not batch.ascii or all(bytes(line).isascii() for line in batch.lines)
    # A file that does not end in a newline has no empty last line.
    assert got == (lines if seed % 2 or lines[-1] else lines[:-1])


@pytest.mark.parametrize("block", [1 << 20, 100])
def test_progress_reports_every_byte(tmp_path, monkeypatch, block):
    monkeypatch.setattr(sources, "BLOCK", block)
    data = b"".join(b'{"n": %d}\n' % i for i in range(1000))
    path = tmp_path / "f.ndjson"
    path.write_bytes(data)
    seen = []
    for split in plan_splits([InputFile(str(path), len(data), "none")], 997):
        list(read_lines(split, seen.append))
    assert sum(seen) == len(data) and all(n > 0 for n in seen)


def test_empty_and_shrunk_files(tmp_path):
    """An empty file has no lines; a file shorter than when it was listed is read as it is now."""
    empty, shrunk = tmp_path / "empty.ndjson", tmp_path / "shrunk.ndjson"
    empty.write_bytes(b"")
    shrunk.write_bytes(b"a\nb\n")
    assert list(read_lines(sources.Split(InputFile(str(empty), 0, "none"), 0, 0))) == []
    listed = InputFile(str(shrunk), 100, "none")
    assert [line for split in plan_splits([listed], 3) for line in read_lines(split)] == [b"a", b"b"]


@pytest.mark.parametrize(
    "compress, kind",
    [
        (lambda d: gzip.compress(d, mtime=0), "gzip"),
        (lambda d: gzip.compress(d[:5000]) + gzip.compress(d[5000:]), "gzip"),  # two members
        (lambda d: zstandard.ZstdCompressor().compress(d), "zstd"),
        (
            lambda d: zstandard.ZstdCompressor().compress(d[:5000]) + zstandard.ZstdCompressor().compress(d[5000:]),
            "zstd",
        ),
        (lambda d: d, "none"),
    ],
)
def test_compression_is_sniffed_not_named(tmp_path, compress, kind):
    data = b"".join(b'{"n": %d}\n' % i for i in range(2000))
    folder = tmp_path / "submission_date=2016-03-05"
    folder.mkdir()
    (folder / "misleading.txt").write_bytes(compress(data))
    (folder / "_SUCCESS").write_bytes(b"")  # an upstream marker is not input
    (folder / ".hidden").write_bytes(b"junk")
    [file] = list_input(tmp_path, date(2016, 3, 5))
    assert file.compression == kind
    lines = [line for split in plan_splits([file]) for line in read_lines(split)]
    assert lines == data.split(b"\n")[:-1]


@pytest.mark.parametrize(
    "compress, kind",
    [
        (lambda d: gzip.compress(d, mtime=0), "gzip"),
        (lambda d: zstandard.ZstdCompressor().compress(d), "zstd"),
    ],
)
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_compressed_file_raises_with_offset(tmp_path, compress, kind, damage):
    data = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"%d" % (i * 7919) * 20) for i in range(20000))
    blob = bytearray(compress(data))
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        mid = len(blob) // 2
        blob[mid : mid + 8] = bytes(b ^ 0xFF for b in blob[mid : mid + 8])
    path = tmp_path / "f.gz"
    path.write_bytes(bytes(blob))
    file = InputFile(str(path), len(blob), kind)
    read = []
    with pytest.raises(CorruptInput) as info:
        for split in plan_splits([file]):
            read.extend(read_lines(split))
    assert str(path) in str(info.value) and "at byte" in str(info.value)
    assert 0 < info.value.offset <= len(blob)
    assert read, "the lines before the damage are still delivered"


def test_no_input(tmp_path):
    with pytest.raises(NoInput):
        list_input(tmp_path, date(2016, 3, 5))
    (tmp_path / "submission_date=2016-03-05").mkdir()
    with pytest.raises(NoInput):
        list_input(tmp_path, date(2016, 3, 5))
