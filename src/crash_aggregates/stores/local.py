"""The local store: a folder on a local disk (or anything mounted as one).

Reading: plain input files are memory-mapped by ``sources.py`` (``mappable``),
compressed ones read through ``open``; errors are the ``OSError`` the system
gives.

Publishing: a new version is written into a hidden sibling folder and
swapped in with one ``renameat2(RENAME_EXCHANGE)`` call, so a reader sees the
old version or the new one, never a mix, and a run killed at any point leaves
the old version complete. Hive, Spark and Trino skip hidden folders (leading
``.``), but DuckDB's and polars' globs (``*/*.parquet``) look into them: the
data file is written as ``part-00000.parquet.writing`` and renamed only just
before the swap, so such globs do not count a partition being written, nor
what a killed run left; a later run removes those folders
(:meth:`LocalStore.clean_staging`). Data files keep the name
``part-00000.parquet``, the sidecar ``_flat.parquet.sidecar``. Where the file
system cannot exchange, the old version is moved aside first: a reader may
then find no partition for a moment, never a torn one.

Changes in place (``migrate``) go through one descriptor of the partition
folder: should a run swap in a new version meanwhile, they land in the old
one (which that run then removes) and never touch the new one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .. import flat
from ..layout import PARTITION_RE, REPORT, SUCCESS, Partition, json_bytes, read_manifest, write_parquet
from ..location import partition_name
from . import Listed, WarnFn, is_hidden, pause_before_commit

if TYPE_CHECKING:
    from ..layout import Version
    from ..lock import Lock

STAGING_PREFIX = ".staging-"
#: Ending of a data file while its staging folder is written (not ``.parquet``: globs skip it).
WRITING = ".writing"


class LocalStore:
    """A folder on a local disk (see the module docstring)."""

    mappable = True
    fork_safe = True
    remote = False

    def __init__(self, root: str):
        self.root = root

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    def check(self) -> None:
        pass

    def join(self, *names: str) -> str:
        return str(Path(self.root, *names))

    def root_exists(self) -> bool:
        return os.path.isdir(self.root)

    # -- input

    def list_files(self, folder: str, head: int) -> list[Listed] | None:
        if not os.path.isdir(folder):
            return None
        files = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
            for name in sorted(filenames):
                if is_hidden(name):
                    continue
                path = os.path.join(dirpath, name)
                st = os.stat(path)
                size = st.st_size
                files.append(Listed(path, size, None, _head(path, head) if size else b"", st.st_mtime_ns))
        return files

    def open(self, path: str, size: int, etag: str | None = None) -> IO[bytes]:
        return open(path, "rb", buffering=0)

    def guard(self, items: Iterator, path: str) -> Iterator:
        return items  # OSError says what happened, with the path

    # -- writing files (the generator)

    def makedirs(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)

    @contextmanager
    def open_output(self, path: str) -> Iterator[IO[bytes]]:
        """Written under a hidden temporary name in the same folder, renamed into place at the end."""
        folder, base = os.path.split(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        temp = os.path.join(folder, f".{base}.tmp-{os.getpid()}")
        try:
            with open(temp, "wb") as f:
                yield f
            os.replace(temp, path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def delete_matching(self, folder: str, pattern: str) -> None:
        for old in Path(folder).glob(pattern):
            old.unlink()

    # -- publishing

    def lock(self, wait: bool, notice: WarnFn, warn: WarnFn, ttl: float, poll: float) -> Lock:
        from .local_lock import FileLock

        return FileLock.take(self.root, wait, notice)

    def clean_staging(self, warn: WarnFn | None = None) -> list[str]:
        """The hidden staging folders that dead runs left."""
        root = Path(self.root)
        removed = []
        if root.is_dir():
            for entry in root.iterdir():
                if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry.name)
        return removed

    def publish(self, version: Version, warn: WarnFn) -> Path:
        root = Path(self.root)
        root.mkdir(parents=True, exist_ok=True)
        final = root / partition_name(version.day)
        staging = root / f"{STAGING_PREFIX}{partition_name(version.day)}-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            part, sidecar = "part-00000.parquet", flat.file_name()
            # DuckDB's and polars' globs (*/*.parquet) look into hidden folders too:
            # the data file takes its name only just before the swap, so that a
            # glob meanwhile, or after a run killed here, does not count it.
            write_parquet(version.data, staging / (part + WRITING))
            write_parquet(version.flat, staging / sidecar)
            _write_file(staging / REPORT, json_bytes(version.report))
            pause_before_commit()
            _write_file(staging / SUCCESS, version.success([part], sidecar))
            os.rename(staging / (part + WRITING), staging / part)
            _fsync_dir(staging)
            if final.exists():
                if not _exchange(str(staging), str(final)):
                    # No atomic exchange here: move the old version aside first. A
                    # reader may find no partition for a moment, never a torn one.
                    aside = root / f"{STAGING_PREFIX}old-{uuid.uuid4().hex[:12]}"
                    os.rename(final, aside)
                    os.rename(staging, final)
                    staging = aside
            else:
                os.rename(staging, final)
                staging = None
            _fsync_dir(root)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        return final

    # -- reading what is published

    def read(self, path: str) -> bytes | None:
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None

    def published(self) -> dict[str, Partition]:
        root = Path(self.root)
        found = {}
        if not root.is_dir():
            return found
        for entry in sorted(root.iterdir()):
            m = PARTITION_RE.match(entry.name)
            if m and entry.is_dir():
                partition = self.published_partition(entry)
                if partition is not None:
                    found[m.group(1)] = partition
        return found

    def published_partition(self, folder: str | os.PathLike) -> Partition | None:
        folder = Path(folder)
        text = self.read(folder / SUCCESS)
        if text is None:
            return None
        return read_manifest(text).partition(lambda name: folder / name, lambda: os.listdir(folder))

    def published_version(self) -> tuple:
        """Name, size, inode and modification time of each marker (one ``stat`` each)."""
        found = []
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return ()
        for entry in entries:
            if PARTITION_RE.match(entry.name):
                try:
                    st = os.stat(os.path.join(entry.path, SUCCESS))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                found.append((entry.name, st.st_size, st.st_ino, st.st_mtime_ns))
        return tuple(found)

    def update_published(self, update: Callable[[LocalPartitionFolder], object]) -> Iterator:
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(2, "no such folder", str(root))
        for folder in sorted(root.iterdir()):
            if PARTITION_RE.match(folder.name) and folder.is_dir() and (folder / SUCCESS).exists():
                try:
                    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        result = update(LocalPartitionFolder(folder.name, fd))
                    finally:
                        os.close(fd)
                except OSError as e:  # name the file within the partition, not just its name
                    where = folder / e.filename if isinstance(e.filename, str) else folder
                    raise OSError(e.errno, e.strerror, str(where)) from None
                yield result

    # -- other engines reading the published files

    def register_duckdb(self, conn) -> None:
        pass  # DuckDB reads local files itself

    def arrow_filesystem(self):
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem()

    def arrow_path(self, file: str | os.PathLike) -> str:
        return os.path.abspath(os.fspath(file))

    def reader_path(self, file: str | os.PathLike) -> str:
        return str(Path(file).resolve())

    def known_missing(self, file: str | os.PathLike) -> bool:
        return not Path(file).is_file()


def _head(path: str, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _write_file(path: Path, body: bytes) -> None:
    with open(path, "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux renameat2); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    rc = libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if rc != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system can't
            return False
        raise OSError(errno, os.strerror(errno), b)
    return True


class LocalPartitionFolder:
    """A partition folder open as a descriptor: every step lands in this very folder (see the module docstring)."""

    def __init__(self, name: str, fd: int):
        self.name, self.fd = name, fd

    def _opener(self, mode: int = 0o644):
        return lambda path, flags: os.open(path, flags, mode, dir_fd=self.fd)

    def read(self, name: str) -> bytes | None:
        try:
            with open(name, "rb", opener=self._opener()) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def has(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def copy(self, source: str, target: str) -> None:
        """A hard link (a copy where links are not supported), made under a temporary name and renamed."""
        fd = self.fd
        if self.has(target) and os.path.samestat(os.stat(source, dir_fd=fd), os.stat(target, dir_fd=fd)):
            return  # linked by an interrupted migration (and rename() of a file onto itself does nothing)
        temp = f".{target}.tmp-{os.getpid()}"
        try:
            os.unlink(temp, dir_fd=fd)
        except FileNotFoundError:
            pass
        try:
            os.link(source, temp, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError:
            with open(source, "rb", opener=self._opener()) as src, open(temp, "wb", opener=self._opener()) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
        os.replace(temp, target, src_dir_fd=fd, dst_dir_fd=fd)
        os.fsync(fd)

    def replace(self, name: str, body: bytes) -> None:
        temp = f".{name}.tmp-{os.getpid()}"
        with open(temp, "wb", opener=self._opener()) as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        os.fsync(self.fd)

    def delete(self, names: list[str]) -> None:
        for name in names:
            try:
                os.unlink(name, dir_fd=self.fd)
            except FileNotFoundError:
                pass
        os.fsync(self.fd)

    def deletable(self, name: str) -> bool:
        return True  # runs write into staging folders, never into a published one
