"""Finding one day's input files and reading their lines (plain, gzip, zstd, byte ranges).

Compression is recognised by the file's first bytes, not its name, so a
mislabelled file is still read correctly. Plain files are cut into byte
ranges so that one large file is shared by several workers: a range owns the
lines whose first byte lies inside it. Compressed files are read whole, as a
stream.

The input root is a local folder or a URL, listed and opened by its store
(``stores/``): an :class:`InputFile`'s path is what the store listed (a
local path, or the object's URL). A local plain file is read through a
memory map; elsewhere the store opens files for reading in ranges, so
nothing is downloaded whole nor written to local disk. A store that cannot
be used (credentials, missing bucket, unreachable endpoint, denied reads)
raises ``location.StorageError``, which names the URL.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import zstandard
from isal import isal_zlib

from .errors import CrashAggregatesError, ExitCode
from .location import partition_name
from .stores import store_for

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 1 << 20
#: Plain files are split into ranges of about this size.
SPLIT_BYTES = 32 << 20
COMPRESSED_READ = 64 << 10


class NoInput(CrashAggregatesError):
    """The date has no input folder, or no files in it."""

    exit_code = ExitCode.NO_INPUT


class CorruptInput(CrashAggregatesError):
    """A compressed file is truncated or damaged."""

    def __init__(self, path: str, offset: int, detail: str):
        super().__init__(f"{path}: {detail} at byte {offset}")
        self.path, self.offset, self.detail = path, offset, detail

    def __reduce__(self):  # crosses process boundaries intact
        return CorruptInput, (self.path, self.offset, self.detail)


@dataclass(frozen=True)
class InputFile:
    path: str  # as its store listed it: a local path, or a URL
    size: int
    compression: str  # "none" | "gzip" | "zstd"
    #: The object's version when listed (S3: its ETag); every ranged read asks
    #: for that version (If-Match), so an object replaced during a run fails
    #: the date instead of mixing two versions.
    etag: str | None = None
    #: Local: the modification time when listed (nanoseconds), recorded in
    #: the report so that ``run --catch-up`` sees a file rewritten in place.
    mtime_ns: int | None = None


@dataclass(frozen=True)
class Split:
    """A byte range of one file; ``end`` is None for a whole compressed file."""

    file: InputFile
    start: int = 0
    end: int | None = None

    @property
    def size(self) -> int:
        return (self.end if self.end is not None else self.file.size) - self.start


def _kind(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def list_input(root: str | os.PathLike, day: date) -> list[InputFile]:
    """Every file under ``root/submission_date=D/``, hidden and ``_`` files aside.

    ``root`` is a local folder or the URL of a store (``stores/``).
    """
    store = store_for(root)
    folder = store.join(partition_name(day))
    listed = store.list_files(folder, head=len(ZSTD_MAGIC))
    if listed is None:
        raise NoInput(f"no input folder {folder}")
    if not listed:
        raise NoInput(f"no files in {folder}")
    return [InputFile(f.path, f.size, _kind(f.head) if f.size else "none", f.etag, f.mtime_ns) for f in listed]


def plan_splits(files: list[InputFile], split_bytes: int | None = None) -> list[Split]:
    """Cut plain files into ranges of about ``split_bytes``; keep compressed files whole."""
    split_bytes = split_bytes or SPLIT_BYTES
    splits = []
    for f in files:
        if f.compression != "none" or f.size <= split_bytes:
            splits.append(Split(f, 0, None if f.compression != "none" else f.size))
            continue
        count = -(-f.size // split_bytes)
        step = -(-f.size // count)
        splits.extend(Split(f, s, min(s + step, f.size)) for s in range(0, f.size, step))
    return splits


ProgressFn = Callable[[int], None]


class LineBatch(NamedTuple):
    """The lines that end in one block read, without their ``\\n``.

    The lines are memoryviews into the block (no copy), which ``texts`` holds
    (with the line begun in an earlier block, if any).
    """

    lines: list[memoryview]
    texts: tuple

    @property
    def ascii(self) -> bool:
        """Whether every line is ASCII, so that none needs a UTF-8 check.

        Checked on demand: the C scanner checks UTF-8 as it goes and never asks.
        """
        return all((text if isinstance(text, (bytes, bytearray)) else bytes(text)).isascii() for text in self.texts)


def read_batches(split: Split, progress: ProgressFn | None = None) -> Iterator[LineBatch]:
    """The lines of a split, a block at a time; raises CorruptInput on damage."""
    store = store_for(split.file.path)
    if split.file.compression == "none":
        batches = _mapped_batches(split, progress) if store.mappable else _plain_batches(split, progress)
    else:
        batches = _line_batches(_compressed_blocks(split.file, progress))
    return store.guard(batches, split.file.path)


def read_lines(split: Split, progress: ProgressFn | None = None) -> Iterator[bytes]:
    """The lines of a split as bytes, without their ``\\n``; raises CorruptInput on damage."""
    for batch in read_batches(split, progress):
        yield from map(bytes, batch.lines)


def _line_batches(blocks: Iterator[bytes], limit: int | None = None) -> Iterator[LineBatch]:
    """Cut blocks into lines: views into the blocks, so a 200 KB ping is never copied.

    Only a line that straddles two blocks is copied (into ``carry``). With
    ``limit``, the lines starting at or after that offset (counted from the
    first block's first byte) are left out and reading stops there.
    """
    carry: bytearray | None = None  # the beginning of a line that ends in a later block
    base = 0  # offset of the current block
    for block in blocks:
        view, texts, lines, pos = memoryview(block), (block,), [], 0
        if carry is not None:
            cut = block.find(b"\n")
            if cut < 0:
                carry += block
                base += len(block)
                continue
            carry += view[:cut]
            lines.append(memoryview(carry))
            texts = (block, carry)
            carry, pos = None, cut + 1
        stop = len(block) if limit is None else min(len(block), limit - base)
        while pos < stop:
            cut = block.find(b"\n", pos)
            if cut < 0:
                carry = bytearray(view[pos:])
                break
            lines.append(view[pos:cut])
            pos = cut + 1
        yield LineBatch(lines, texts)
        if carry is None and limit is not None and base + pos >= limit:
            return
        base += len(block)
    if carry:
        yield LineBatch([memoryview(carry)], (carry,))


def _open_input(file: InputFile):
    """A seekable binary file: a local file, or (S3) an object read in ranged GETs."""
    return store_for(file.path).open(file.path, file.size, file.etag)


def _plain_batches(split: Split, progress: ProgressFn | None) -> Iterator[LineBatch]:
    start, end = split.start, split.end
    with _open_input(split.file) as f:
        first = _first_line_start(f, start)
        if first is None:
            return
        f.seek(first)
        reported = start
        # A range owns the lines that start inside it: its last one is read to its end.
        for batch in _line_batches(iter(lambda: f.read(BLOCK), b""), limit=end - first):
            if progress and (now := min(f.tell(), end)) > reported:
                progress(now - reported)
                reported = now
            yield batch
        if progress and end > reported:
            progress(end - reported)


def _mapped_batches(split: Split, progress: ProgressFn | None) -> Iterator[LineBatch]:
    """A local plain file's range, its lines cut straight from a memory map of the file.

    The lines are views into the page cache: no ``read`` copies them into a
    buffer first (about 4% less CPU on realistic pings; no madvise: a
    sequential hint lets the kernel drop the pages from its cache behind the
    reader). Only the pages of the range and of its last line are
    touched, so the memory this holds is about one range, and it is released
    with the last line. (A file truncated while it is read gets the reading
    process killed by SIGBUS: with worker processes the date fails and its
    previous partition stays; with ``--workers 1`` the whole run dies.)
    """
    start, end = split.start, split.end
    with open(split.file.path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) if size > start else None
    reported = start
    if data is not None:
        view = memoryview(data)
        pos = _first_line_start(data, start)  # a map reads like a file
        if pos is None:
            pos = size
        stop = min(end, size)
        while pos < stop:
            lines, first, block_end = [], pos, min(pos + BLOCK, stop)
            while pos < block_end:  # a range owns the lines that start inside it
                cut = data.find(b"\n", pos)
                if cut < 0:
                    cut = size
                lines.append(view[pos:cut])
                pos = cut + 1
            yield LineBatch(lines, (view[first : min(pos, size)],))
            if progress and (now := min(pos, end)) > reported:
                progress(now - reported)
                reported = now
    if progress and end > reported:
        progress(end - reported)


def _first_line_start(f, start: int) -> int | None:
    """Where the first line starting at or after ``start`` begins (None: no such line)."""
    if start == 0:
        return 0
    # The line that straddles `start` belongs to the previous range.
    f.seek(start - 1)
    skipped = 0
    while block := f.read(BLOCK):
        cut = block.find(b"\n")
        if cut >= 0:
            return start - 1 + skipped + cut + 1
        skipped += len(block)
    return None


def _compressed_blocks(file: InputFile, progress: ProgressFn | None) -> Iterator[bytes]:
    if file.compression == "gzip":
        new_decoder, errors = (lambda: isal_zlib.decompressobj(wbits=31)), isal_zlib.error
    else:
        new_decoder, errors = zstandard.ZstdDecompressor().decompressobj, zstandard.ZstdError
    with _open_input(file) as raw:
        reported = 0
        try:
            # Members (gzip) or frames (zstd) are decoded one by one: zstandard's
            # stream reader would end silently on a truncated frame. Reads are
            # small so that, on damage, what came before it is still delivered.
            decoder, fed = new_decoder(), False
            while data := raw.read(COMPRESSED_READ):
                while data:
                    out = decoder.decompress(data)
                    fed = True
                    if out:
                        yield out
                    if decoder.eof:
                        data = decoder.unused_data
                        decoder, fed = new_decoder(), False
                    else:
                        data = b""
                if progress:
                    progress(raw.tell() - reported)
                    reported = raw.tell()
        except errors as e:
            raise CorruptInput(file.path, raw.tell(), f"{file.compression} stream corrupt ({e})") from None
        if fed and not decoder.eof:
            raise CorruptInput(file.path, raw.tell(), f"{file.compression} stream truncated")
