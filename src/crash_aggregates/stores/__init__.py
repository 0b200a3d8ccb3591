"""Stores: what the job and the readers do with a location, one implementation per kind of location.

A :class:`Store` is a root (a local folder, or a URL) and everything this
project does there: list a day's input and read it in byte ranges, publish
a partition, find what is published and read its report, clean up after
killed runs, let DuckDB and pyarrow read the published files, write the
generator's input, and change partitions in place (``migrate``). The rest of
the code asks :func:`store_for` for the store of a location and never which
kind of location it is.

Two stores exist:

- ``local.py``: a folder on a local disk. Plain files are memory-mapped; a
  partition is published with one ``renameat2(RENAME_EXCHANGE)`` of a hidden
  staging folder; errors are the ``OSError`` the system gives.
- ``s3.py``: an ``s3://bucket/prefix`` URL (the ``s3`` extra), through
  ``s3_client.py``. Ranged GETs; every run publishes a version with its own
  file names and commits it by writing ``_SUCCESS``; every failure becomes a
  :class:`~crash_aggregates.location.StorageError` that names the URL.

A location whose scheme has no store here is a local path, as it always was
(``sql --data`` then says there is no such folder); the command line rejects
it first with :func:`check`. A new kind of location (``hdfs://``...) is a new
module here with a class following :class:`Store`, and one entry in
:data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple, Protocol

from .. import location
from ..errors import CrashAggregatesError, ExitCode

if TYPE_CHECKING:
    from ..config import Config
    from ..layout import Partition, Version
    from ..lock import Lock


class Backend(NamedTuple):
    """A store for the URLs of one scheme: its module in this package, its class, the form of its URLs."""

    module: str
    store: str
    form: str  # for messages: "use a local path or s3://bucket/prefix"


#: The stores of URLs, by scheme (a location that is no URL is the local store's).
BACKENDS = {"s3": Backend("s3", "S3Store", "s3://bucket/prefix")}

#: Test hook: seconds a publish sleeps between uploading a version and writing
#: its _SUCCESS, so that a test can kill a run at that moment.
PAUSE_ENV = "CRASH_AGGREGATES_TEST_PAUSE_BEFORE_SUCCESS"

WarnFn = Callable[[str], None]


class StoreUnavailable(CrashAggregatesError, RuntimeError):
    """A location's store needs an extra that is not installed; the message says how to install it."""

    exit_code = ExitCode.USAGE


class Listed(NamedTuple):
    """A file of a day's input, as listed: where, how big, its version (S3's ETag), its first bytes."""

    path: str
    size: int
    etag: str | None
    head: bytes
    #: Its modification time in nanoseconds, where the store has no ETag (``run --catch-up`` compares it).
    mtime_ns: int | None = None


class PartitionFolder(Protocol):
    """A published partition's folder, for changes made in place (``migrate.py``)."""

    #: ``submission_date=YYYY-MM-DD``
    name: str

    def read(self, name: str) -> bytes | None:
        """A file's bytes; None if it is not there (any more)."""

    def has(self, name: str) -> bool:
        """Whether the folder has a file of that name."""

    def names(self) -> list[str]:
        """The files in the folder."""

    def copy(self, source: str, target: str) -> None:
        """``target`` becomes a copy of ``source``, appearing whole or not at all."""

    def replace(self, name: str, body: bytes) -> None:
        """Replace a file's content at once: a reader gets the old bytes or the new."""

    def delete(self, names: list[str]) -> None:
        """Delete files (one already gone is no error)."""

    def deletable(self, name: str) -> bool:
        """Whether a file that ``_SUCCESS`` does not name may be deleted (not one a run may still be writing)."""


class Store(Protocol):
    """What the job and the readers do with a location: implemented by ``local.py`` and ``s3.py``.

    Paths and URLs given to a store are those it returned (``join``,
    ``list_files``, ``published``). Methods raise ``OSError``: a
    ``StorageError`` naming the URL when the store itself cannot be used.
    """

    #: The location as given (a local path), or normalized (a URL).
    root: str
    #: Whether a plain input file can be memory-mapped (else it is read in ranges through ``open``).
    mappable: bool
    #: Whether worker processes may be forked once the store has been used in the parent.
    fork_safe: bool
    #: Whether every look at the store is a network request (who polls it looks less often).
    remote: bool

    def check(self) -> None:
        """Raise ValueError if the root is malformed for this store, StoreUnavailable if its extra is missing."""

    def join(self, *names: str) -> str:
        """A path or URL under the root."""

    def root_exists(self) -> bool:
        """Whether the root can be read from: a local folder must exist, a URL prefix always can."""

    # -- input

    def list_files(self, folder: str, head: int) -> list[Listed] | None:
        """Every file under ``folder``, sorted, with its first ``head`` bytes.

        Files and folders whose names start with ``.`` or ``_`` are left out
        (:func:`is_hidden`). None if the folder does not exist.
        """

    def open(self, path: str, size: int, etag: str | None = None) -> IO[bytes]:
        """A listed file to read, seekable (on S3 each read is a ranged GET of that version)."""

    def guard(self, items: Iterator, path: str) -> Iterator:
        """``items`` (read from ``path``) with the store's failures raised as StorageError."""

    # -- writing files (the generator)

    def makedirs(self, folder: str) -> None:
        """Create a folder and its parents (nothing to do where there are no folders)."""

    def open_output(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """A binary file to write, there only if the ``with`` block succeeds."""

    def size(self, path: str) -> int:
        """A file's size in bytes."""

    def delete_matching(self, folder: str, pattern: str) -> None:
        """Delete the files of ``folder`` whose names match a glob ``pattern``."""

    # -- publishing

    def lock(self, wait: bool, notice: WarnFn, warn: WarnFn, ttl: float, poll: float) -> Lock:
        """Take the root's lock (``lock.py``): one run at a time publishes here.

        Busy: wait (``notice`` hears who holds it), or raise ``lock.LockBusy``.
        """

    def clean_staging(self, warn: WarnFn | None = None) -> list[str]:
        """Remove what dead runs left under the root; returns the names removed.

        Also the job's first check of its output location: raises
        StorageError when the root cannot be used.
        """

    def publish(self, version: Version, warn: WarnFn) -> Path | str:
        """Publish a partition as a whole; returns where it is. Raises with the previous version in place.

        ``warn`` hears of trouble after the commit point; the new version is
        published all the same.
        """

    # -- reading what is published

    def read(self, path: str) -> bytes | None:
        """A file's bytes, or None if there is no such file (an unusable store raises)."""

    def published(self) -> dict[str, Partition]:
        """``{"YYYY-MM-DD": Partition}`` for every partition under the root that has ``_SUCCESS``."""

    def published_partition(self, folder: str) -> Partition | None:
        """What the ``_SUCCESS`` of one partition folder names; None if it is not published."""

    def published_version(self) -> tuple:
        """What identifies the published dataset, as cheaply as it can be seen: one entry per ``_SUCCESS``.

        Publishing, replacing or removing a partition changes it.
        """

    def update_published(self, update: Callable[[PartitionFolder], object]) -> Iterator:
        """``update(folder)`` for each published partition, in date order, yielding what it returns."""

    # -- other engines reading the published files

    def register_duckdb(self, conn) -> None:
        """Let a DuckDB connection read the store's files (before its configuration is locked)."""

    def arrow_filesystem(self):
        """A pyarrow filesystem for the store's files: use it with :meth:`arrow_path`."""

    def arrow_path(self, file: str | os.PathLike) -> str:
        """A published file as :meth:`arrow_filesystem` wants it."""

    def reader_path(self, file: str | os.PathLike) -> str:
        """A published file as DuckDB reads it (an absolute path, or the URL)."""

    def known_missing(self, file: str | os.PathLike) -> bool:
        """Whether a published file is known to be missing (a store may not look: a request per file)."""


def store_for(where: str | os.PathLike) -> Store:
    """The store of a location: by the scheme of its URL, else the local disk.

    A URL whose scheme has no store is taken as a local path, as it always
    was; :func:`check` refuses it.
    """
    text = os.fspath(where)
    backend = BACKENDS.get(location.scheme(text))
    if backend is None:
        from .local import LocalStore

        return LocalStore(text)
    return getattr(importlib.import_module(f"{__name__}.{backend.module}"), backend.store)(text)


def check(where: str | os.PathLike) -> str:
    """The location as the job is to use it; for the command line, which turns the errors into usage errors.

    Raises ValueError for a URL no store serves (or malformed for its store),
    StoreUnavailable when the store's extra is not installed.

    >>> check("gs://bucket/x")
    Traceback (most recent call last):
    ...
    ValueError: unsupported location gs://bucket/x: use a local path or s3://bucket/prefix
    """
    text = os.fspath(where)
    kind = location.scheme(text)
    if kind is not None and kind not in BACKENDS:
        forms = " or ".join(backend.form for backend in BACKENDS.values())
        raise ValueError(f"unsupported location {text}: use a local path or {forms}")
    store = store_for(text)
    store.check()
    return store.root


def configure(config: Config) -> None:
    """Give every store its settings from the configuration (the S3 endpoint).

    Worker processes started after this inherit them; Spark executors call it themselves.
    """
    for backend in BACKENDS.values():
        module = importlib.import_module(f"{__name__}.{backend.module}")
        if hasattr(module, "configure"):
            module.configure(config)


def is_hidden(name: str) -> bool:
    """Input files and folders left out of a day: hidden ones, and ``_SUCCESS``-like markers."""
    return name.startswith((".", "_"))


def pause_before_commit() -> None:
    """The test hook of :data:`PAUSE_ENV`."""
    seconds = os.environ.get(PAUSE_ENV)
    if seconds:
        time.sleep(float(seconds))


def no_warning(message: str) -> None:
    """A ``warn`` that says nothing."""
