"""Finding one day's input files and reading their lines (plain, gzip, zstd, byte ranges).

Compression is recognised by the file's first bytes, not its name, so a
mislabelled file is still read correctly. Plain files are cut into byte
ranges so that one large file is shared by several workers: a range owns the
lines whose first byte lies inside it. Compressed files are read whole, as a
stream, decoded a bounded block at a time.

No line is held in memory longer than the configured limit
(``Config.max_line_size``): a longer one is skipped as it streams by (plain
files: its pages are handed back as they are searched) and reported in its
batch's ``oversized`` with where it was, for the ``oversized`` ignore reason
(SPEC section 2). What the readers hold is then about a block plus one line
of at most the limit, however long the input's lines are.

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
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from isal import isal_zlib

from .config import DEFAULT_MAX_LINE_SIZE
from .errors import CrashAggregatesError, ExitCode
from .location import partition_name
from .stores import store_for

try:  # the standard library's from Python 3.14, the same module before
    from compression import zstd
except ImportError:
    from backports import zstd

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 1 << 20
#: Plain files are split into ranges of about this size.
SPLIT_BYTES = 32 << 20
COMPRESSED_READ = 64 << 10
#: Decoders return at most this much at a time, however well the input
#: compresses (a 3 MB gzip file can hold a 3 GB line).
DECODED_BLOCK = 1 << 20
#: An oversized line of a memory-mapped file is searched for its end this
#: much at a time, the pages searched then handed back.
SKIP_WINDOW = 8 << 20
#: A byte that is not whitespace (``bytes.isspace``'s): a line without one is
#: blank, skipped and not counted (SPEC section 2), however long it is.
_TEXT = re.compile(rb"[^ \t\n\r\x0b\x0c]")


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


class Oversized(NamedTuple):
    """A line longer than the limit, skipped unread (SPEC section 2: ``oversized``)."""

    path: str
    offset: int  # of its first byte in the file's content (decompressed, for a compressed file)
    length: int  # in bytes, without its \n


class LineBatch(NamedTuple):
    """The lines that end in one block read, without their ``\\n``.

    The lines are memoryviews into the block (no copy), which ``texts`` holds
    (with the line begun in an earlier block, if any). ``oversized`` lists
    the lines skipped for their length, in input order, after ``lines``
    (a blank one, all whitespace, is in neither, however long).
    """

    lines: list[memoryview]
    texts: tuple
    oversized: list[Oversized] | tuple = ()

    @property
    def ascii(self) -> bool:
        """Whether every line is ASCII, so that none needs a UTF-8 check.

        Checked on demand: the C scanner checks UTF-8 as it goes and never asks.
        """
        return all((text if isinstance(text, (bytes, bytearray)) else bytes(text)).isascii() for text in self.texts)


def read_batches(
    split: Split, progress: ProgressFn | None = None, max_line: int = DEFAULT_MAX_LINE_SIZE
) -> Iterator[LineBatch]:
    """The lines of a split, a block at a time; raises CorruptInput on damage.

    A line longer than ``max_line`` bytes is not among the lines: it is in
    its batch's ``oversized``.
    """
    store = store_for(split.file.path)
    if split.file.compression == "none":
        read = _mapped_batches if store.mappable else _plain_batches
        batches = read(split, progress, max_line)
    else:
        batches = _line_batches(_compressed_blocks(split.file, progress), split.file.path, max_line)
    return store.guard(batches, split.file.path)


def read_lines(
    split: Split, progress: ProgressFn | None = None, max_line: int = DEFAULT_MAX_LINE_SIZE
) -> Iterator[bytes]:
    """The lines of a split as bytes, without their ``\\n`` (oversized ones left out); raises CorruptInput on damage."""
    for batch in read_batches(split, progress, max_line):
        yield from map(bytes, batch.lines)


def _line_batches(
    blocks: Iterator[bytes], path: str, max_line: int, start: int = 0, stop: int | None = None
) -> Iterator[LineBatch]:
    """Cut blocks into lines: views into the blocks, so a 200 KB ping is never copied.

    Only a line that straddles two blocks is copied (into ``carry``), and
    only while it is at most ``max_line`` bytes long: past that its bytes
    are dropped as they come, up to its end, and it is reported as
    oversized. The first block starts at offset ``start`` of the file; with
    ``stop``, the lines starting at or after that offset are left out and
    reading stops there.
    """
    carry: bytearray | None = None  # the beginning of a line that ends in a later block
    skipping: int | None = None  # the offset of an oversized line whose end is still to come
    text = False  # whether the line being skipped has a byte other than whitespace so far
    reach = max_line + 1  # a line's \n is at most this far from its first byte
    base = start  # offset of the current block
    for block in blocks:
        view, texts, lines, oversized, pos, size = memoryview(block), (block,), [], [], 0, len(block)
        if carry is not None or skipping is not None:
            cut = block.find(b"\n")
            part = size if cut < 0 else cut
            if carry is not None and len(carry) + part > max_line:
                skipping, text, carry = base - len(carry), _TEXT.search(carry) is not None, None
            if skipping is not None and not text:
                text = _TEXT.search(block, 0, part) is not None
            if cut < 0:
                if carry is not None:
                    carry += block
                base += size
                continue
            if skipping is not None:
                if text:
                    oversized.append(Oversized(path, skipping, base + cut - skipping))
                skipping = None
            else:
                carry += view[:cut]
                lines.append(memoryview(carry))
                texts = (block, carry)
                carry = None
            pos = cut + 1
        end = size if stop is None else min(size, stop - base)
        while pos < end:
            cut = block.find(b"\n", pos, pos + reach)
            if cut >= 0:
                lines.append(view[pos:cut])
                pos = cut + 1
            elif size - pos <= max_line:  # no \n in the rest of the block: the line goes on in the next
                carry = bytearray(view[pos:])
                break
            else:
                cut = block.find(b"\n", pos + reach)
                text = _TEXT.search(block, pos, size if cut < 0 else cut) is not None
                if cut < 0:
                    skipping = base + pos
                    break
                if text:
                    oversized.append(Oversized(path, base + pos, cut - pos))
                pos = cut + 1
        yield LineBatch(lines, texts, oversized)
        if carry is None and skipping is None and stop is not None and base + pos >= stop:
            return
        base += size
    if carry:
        yield LineBatch([memoryview(carry)], (carry,))
    elif skipping is not None and text:
        yield LineBatch([], (), [Oversized(path, skipping, base - skipping)])


def _open_input(file: InputFile):
    """A seekable binary file: a local file, or (S3) an object read in ranged GETs."""
    return store_for(file.path).open(file.path, file.size, file.etag)


def _plain_batches(split: Split, progress: ProgressFn | None, max_line: int) -> Iterator[LineBatch]:
    start, end = split.start, split.end
    with _open_input(split.file) as f:
        first = _first_line_start(f, start, end)
        if first is None:
            if progress and end > start:
                progress(end - start)
            return
        f.seek(first)
        reported = start
        # A range owns the lines that start inside it: its last one is read to its end.
        blocks = iter(lambda: f.read(BLOCK), b"")
        for batch in _line_batches(blocks, split.file.path, max_line, start=first, stop=end):
            if progress and (now := min(f.tell(), end)) > reported:
                progress(now - reported)
                reported = now
            yield batch
        if progress and end > reported:
            progress(end - reported)


def _mapped_batches(split: Split, progress: ProgressFn | None, max_line: int) -> Iterator[LineBatch]:
    """A local plain file's range, its lines cut straight from a memory map of the file.

    The lines are views into the page cache: no ``read`` copies them into a
    buffer first (about 4% less CPU on realistic pings; no madvise: a
    sequential hint lets the kernel drop the pages from its cache behind the
    reader). Only the pages of the range and of its last line are
    touched, so the memory this holds is about one range, and it is released
    with the last line; an oversized line's pages are handed back as they
    are searched for its end. (A file truncated while it is read gets the
    reading process killed by SIGBUS: with worker processes the date fails
    and its previous partition stays; with ``--workers 1`` the whole run dies.)
    """
    start, end, path = split.start, split.end, split.file.path
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) if size > start else None
    reported = start
    if data is not None:
        view = memoryview(data)
        stop = min(end, size)
        pos = _first_line_start(data, start, stop)  # a map reads like a file
        if pos is None:
            pos = stop
        reach = max_line + 1  # a line's \n is at most this far from its first byte
        while pos < stop:
            lines, oversized, first, block_end = [], (), pos, min(pos + BLOCK, stop)
            while pos < block_end:  # a range owns the lines that start inside it
                cut = data.find(b"\n", pos, pos + reach)
                if cut < 0:
                    if size - pos > max_line:  # the batch ends before it, so that its texts leave it out
                        cut, text = _mapped_line_end(data, pos, pos + reach, size)
                        oversized = [Oversized(path, pos, cut - pos)] if text else ()
                        last, pos = pos, cut + 1
                        break
                    cut = size
                lines.append(view[pos:cut])
                pos = cut + 1
            else:
                last = min(pos, size)
            yield LineBatch(lines, (view[first:last],), oversized)
            if progress and (now := min(pos, end)) > reported:
                progress(now - reported)
                reported = now
    if progress and end > reported:
        progress(end - reported)


def _mapped_line_end(data: mmap.mmap, start: int, pos: int, size: int) -> tuple[int, bool]:
    """Where the line from ``start`` that runs through ``pos`` ends (its \\n, else the
    end of the map), and whether it has a byte other than whitespace.

    Searched a window at a time; the pages of each window, all inside the
    line, are then handed back (the page cache keeps them), so that a line
    of gigabytes never stays in this process's memory.
    """
    text = _TEXT.search(data, start, pos) is not None
    while pos < size:
        window_end = min(pos + SKIP_WINDOW, size)
        cut = data.find(b"\n", pos, window_end)
        end = window_end if cut < 0 else cut
        if not text:
            text = _TEXT.search(data, pos, end) is not None
        page_start = -(-pos // mmap.PAGESIZE) * mmap.PAGESIZE
        page_end = end // mmap.PAGESIZE * mmap.PAGESIZE
        if page_end > page_start and hasattr(mmap, "MADV_DONTNEED"):
            data.madvise(mmap.MADV_DONTNEED, page_start, page_end - page_start)
        if cut >= 0:
            return cut, text
        pos = window_end
    return size, text


def _first_line_start(f, start: int, end: int | None = None) -> int | None:
    """Where the first line starting at or after ``start`` (and before ``end``) begins; None: no such line.

    Reads no further than ``end``: a range that a long line crosses whole is
    left at once, not searched to that line's end.
    """
    if start == 0:
        return 0 if end is None or end > 0 else None
    # The line that straddles `start` belongs to the previous range.
    f.seek(start - 1)
    pos = start - 1
    while end is None or pos < end - 1:
        block = f.read(BLOCK if end is None else min(BLOCK, end - 1 - pos))
        if not block:
            return None
        cut = block.find(b"\n")
        if cut >= 0:
            return pos + cut + 1
        pos += len(block)
    return None


def _compressed_blocks(file: InputFile, progress: ProgressFn | None) -> Iterator[bytes]:
    """The decoded content of a gzip or zstd file, in blocks of at most ``DECODED_BLOCK``."""
    gzip = file.compression == "gzip"
    if gzip:
        new_decoder, errors = (lambda: isal_zlib.decompressobj(wbits=31)), isal_zlib.error
    else:
        new_decoder, errors = zstd.ZstdDecompressor, zstd.ZstdError
    with _open_input(file) as raw:
        reported = 0
        try:
            # Members (gzip) or frames (zstd) are decoded one by one, each
            # decoder telling where its own ends (``eof``): a truncated one is
            # told apart from a complete one. Reads are small so that, on
            # damage, what came before it is still delivered.
            decoder, fed = new_decoder(), False
            while data := raw.read(COMPRESSED_READ):
                while True:
                    out = decoder.decompress(data, DECODED_BLOCK)
                    fed = True
                    if out:
                        yield out
                    if decoder.eof:
                        data = decoder.unused_data
                        decoder, fed = new_decoder(), False
                        if not data:
                            break
                    else:  # input left over (gzip), or a full block: more output may be waiting
                        data = decoder.unconsumed_tail if gzip else b""
                        if not data and len(out) < DECODED_BLOCK:
                            break
                if progress:
                    progress(raw.tell() - reported)
                    reported = raw.tell()
        except errors as e:
            raise CorruptInput(file.path, raw.tell(), f"{file.compression} stream corrupt ({e})") from None
        if fed and not decoder.eof:
            raise CorruptInput(file.path, raw.tell(), f"{file.compression} stream truncated")
