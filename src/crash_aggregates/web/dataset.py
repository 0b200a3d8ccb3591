"""The dataset a dashboard serves: its published version, one fenced connection to it, answers cached per version.

The version is the set of ``_SUCCESS`` markers (``storage.published_version``):
publishing, replacing or removing a partition changes it, and with it the
connection (a new view over the new files) and the cache (every answer is
keyed by the version it was computed on). Locally the markers are looked at
on every request (a ``stat`` each); in a remote store (S3) at most every
``REMOTE_CHECK_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

from .. import location, storage
from ..config import Config
from ..rates import Answer, Question, ask
from ..stores import store_for

#: How long a remote store's listing of the markers (S3) is trusted (a listing costs a request or more).
REMOTE_CHECK_SECONDS = 30.0
#: Answers kept per process (all versions together; the oldest go first).
CACHE_ENTRIES = 512
#: Idle console connections kept per version.
CONSOLE_SPARES = 8


class _Version:
    """One published version: its markers, and the connection that reads it (opened on first use)."""

    def __init__(self, key: tuple):
        self.key = key
        self.lock = threading.Lock()  # one query at a time per connection
        self.conn = None
        self.retired = False
        #: The console's idle connections to this version (each query holds one of its own while it runs).
        self.spare: list = []

    @property
    def dates(self) -> list[date]:
        return [date.fromisoformat(entry[0].split("=", 1)[1]) for entry in self.key]


class ServedData:
    """What the views read: published dates, reports, and answers to questions, cached per version."""

    def __init__(self, path: str, config: Config, *, timeout: float | None = 60.0):
        self.path, self.config, self.timeout = path, config, timeout
        self.store = store_for(path)
        self._lock = threading.Lock()
        self._current: _Version | None = None
        self._checked = 0.0
        self._cache: OrderedDict = OrderedDict()

    # -- the version ----------------------------------------------------------

    def version(self) -> _Version:
        """The version published now (looked at again unless a remote store's listing is recent)."""
        now = time.monotonic()
        with self._lock:
            current = self._current
            if current is not None and self.store.remote and now - self._checked < REMOTE_CHECK_SECONDS:
                return current
        key = storage.published_version(self.path)
        with self._lock:
            self._checked = now
            if self._current is None or self._current.key != key:
                old, self._current = self._current, _Version(key)
                if old is not None:
                    self._retire(old)
                    self._cache.clear()  # answers of other versions can never be asked for again
            return self._current

    def _retire(self, old: _Version) -> None:
        """Close an old version's connection now, or let the query running on it close it when done."""
        old.retired = True
        while old.spare:
            old.spare.pop().close()
        if old.lock.acquire(blocking=False):
            try:
                if old.conn is not None:
                    old.conn.close()
                    old.conn = None
            finally:
                old.lock.release()

    def dates(self) -> list[date]:
        """The published submission dates, oldest first."""
        return self.version().dates

    # -- answers ----------------------------------------------------------------

    def cached(self, name: str, key, compute: Callable[[_Version], object]):
        """``compute(version)``, remembered for this version under ``(name, key)``."""
        version = self.version()
        full = (version.key, name, key)
        with self._lock:
            if full in self._cache:
                self._cache.move_to_end(full)
                return self._cache[full]
        value = compute(version)
        with self._lock:
            self._cache[full] = value
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return value

    def ask(self, question: Question) -> list[Answer]:
        """The answer to a (checked) question, from the cache or the dataset."""
        return self.cached("question", question, lambda version: self._ask(version, question))

    def _ask(self, version: _Version, question: Question) -> list[Answer]:
        from ..sql import connect

        with version.lock:
            if version.retired:  # a newer version arrived meanwhile: answer from what is published now
                with connect(self.path) as conn:
                    return ask(question, conn, timeout=self.timeout)
            if version.conn is None:
                version.conn = connect(self.path)
            try:
                return ask(question, version.conn, timeout=self.timeout)
            finally:
                if version.retired and version.conn is not None:  # retired while this query ran
                    version.conn.close()
                    version.conn = None

    @contextmanager
    def connection(self) -> Iterator:
        """A fenced connection of the current version for one console query (kept for the next one)."""
        from ..sql import connect

        version = self.version()
        with self._lock:
            conn = version.spare.pop() if version.spare else None
        if conn is None:
            conn = connect(self.path)
        try:
            yield conn
        finally:
            with self._lock:
                keep = not version.retired and len(version.spare) < CONSOLE_SPARES
                if keep:
                    version.spare.append(conn)
            if not keep:
                conn.close()

    def open(self) -> None:
        """Open the connection to the current version now (``serve`` does, before it takes requests).

        The first connection of a process also pays for importing DuckDB and
        writing the empty schema file: about a second the first request would
        otherwise wait for.
        """
        from ..sql import connect

        version = self.version()
        with version.lock:
            if version.conn is None and not version.retired and version.key:
                version.conn = connect(self.path)

    def reports(self) -> dict[date, dict | None]:
        """Each published date's ``_report.json`` (None where it cannot be read)."""

        def read(version: _Version) -> dict[date, dict | None]:
            found = {}
            for day in version.dates:
                try:
                    found[day] = storage.read_report(self.path, day)
                except (OSError, ValueError, location.StorageError):
                    found[day] = None
            return found

        return self.cached("reports", None, read)

    def close(self) -> None:
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            with self._lock:
                current.retired = True
                while current.spare:
                    current.spare.pop().close()
            with current.lock:
                current.retired = True
                if current.conn is not None:
                    current.conn.close()
                    current.conn = None
