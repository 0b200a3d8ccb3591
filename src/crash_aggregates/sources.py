"""Finding one day's input files and reading their lines (plain, gzip, zstd, byte ranges).

Compression is recognised by the file's first bytes, not its name, so a
mislabelled file is still read correctly. Plain files are cut into byte
ranges so that one large file is shared by several workers: a range owns the
lines whose first byte lies inside it. Compressed files are read whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import zstandard
from isal import isal_zlib

from .storage import partition_name

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 1 << 20
#: Plain files are split into ranges of about this size.
SPLIT_BYTES = 32 << 20
COMPRESSED_READ = 64 << 10


class NoInput(Exception):
    """The date has no input folder, or no files in it."""


class CorruptInput(Exception):
    """A compressed file is truncated or damaged."""

    def __init__(self, path: str, offset: int, detail: str):
        super().__init__(f"{path}: {detail} at byte {offset}")
        self.path, self.offset, self.detail = path, offset, detail

    def __reduce__(self):  # crosses process boundaries intact
        return CorruptInput, (self.path, self.offset, self.detail)


@dataclass(frozen=True)
class InputFile:
    path: str
    size: int
    compression: str  # "none" | "gzip" | "zstd"


@dataclass(frozen=True)
class Split:
    """A byte range of one file; ``end`` is None for a whole compressed file."""

    file: InputFile
    start: int = 0
    end: int | None = None

    @property
    def size(self) -> int:
        return (self.end if self.end is not None else self.file.size) - self.start


def sniff_compression(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def list_input(root: str | os.PathLike, day: date) -> list[InputFile]:
    """Every file under ``root/submission_date=D/``, hidden and ``_`` files aside."""
    folder = Path(root) / partition_name(day)
    if not folder.is_dir():
        raise NoInput(f"no input folder {folder}")
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            if name.startswith((".", "_")):
                continue
            path = os.path.join(dirpath, name)
            size = os.path.getsize(path)
            files.append(InputFile(path, size, sniff_compression(path) if size else "none"))
    if not files:
        raise NoInput(f"no files in {folder}")
    return files


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


def read_lines(split: Split, progress: ProgressFn | None = None) -> Iterator[bytes]:
    """The lines of a split, without their ``\\n``; raises CorruptInput on damage."""
    if split.file.compression == "none":
        return _plain_lines(split, progress)
    return _split_lines(_compressed_blocks(split.file, progress))


def _split_lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for block in blocks:
        if rest:
            block = rest + block
        lines = block.split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _plain_lines(split: Split, progress: ProgressFn | None) -> Iterator[bytes]:
    start, end = split.start, split.end
    with open(split.file.path, "rb", buffering=0) as f:
        pos = start
        if start > 0:
            # The line that straddles `start` belongs to the previous range.
            f.seek(start - 1)
            skipped = 0
            while True:
                block = f.read(BLOCK)
                if not block:
                    return
                cut = block.find(b"\n")
                if cut >= 0:
                    pos = start - 1 + skipped + cut + 1
                    f.seek(pos)
                    break
                skipped += len(block)
        reported = start
        rest = b""
        while pos < end:
            block = f.read(BLOCK)
            if not block:
                if rest:
                    yield rest
                break
            if rest:
                block = rest + block
            lines = block.split(b"\n")
            rest = lines.pop()
            for line in lines:
                if pos >= end:
                    break
                yield line
                pos += len(line) + 1
            if progress:
                now = min(pos, end)
                progress(now - reported)
                reported = now
        if progress and end > reported:
            progress(end - reported)


def _compressed_blocks(file: InputFile, progress: ProgressFn | None) -> Iterator[bytes]:
    if file.compression == "gzip":
        new_decoder, errors = (lambda: isal_zlib.decompressobj(wbits=31)), isal_zlib.error
    else:
        new_decoder, errors = zstandard.ZstdDecompressor().decompressobj, zstandard.ZstdError
    with open(file.path, "rb") as raw:
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
