"""One run at a time per output: the lock that keeps two runs from publishing the same date.

Every ``run`` holds the lock of its output root while it cleans up, plans and
publishes. The lock is the file or object ``.lock`` at the root (readers,
Hive, Spark and Trino skip hidden names), holding who has it::

    {"token": "...", "host": "build-3", "pid": 4242, "since": "2016-03-16T01:00:03+00:00", "ttl_seconds": 900}

Local disk: an advisory ``flock`` on that file, which the holder deletes
when it is done. The kernel drops the flock when the process ends however it
ends, so a killed run leaves at most an unlocked file, never a stale lock.

S3 (no locks there): a *lease*, made with S3's conditional writes.

- take: ``PutObject`` with ``If-None-Match: *``, which the store accepts only
  if ``.lock`` does not exist (else 412 PreconditionFailed);
- keep: a thread rewrites the lease every ``ttl/3`` with ``If-Match: <its
  ETag>``, so it stays valid while the run is alive; should that fail with
  412 the lease was taken over, the run is told (:meth:`Lock.held`) and
  publishes nothing more;
- a lease not renewed for ``ttl`` seconds (its ``LastModified`` is older) was
  left by a dead run: the next run takes it over with ``If-Match`` on the
  stale lease's ETag, so of two runs doing so at once only one succeeds;
- give back: ``DeleteObject`` with ``If-Match`` (never someone else's lease).

This needs a store with conditional writes: AWS S3 (``If-None-Match`` since
August 2024, ``If-Match`` since November 2024), MinIO, Cloudflare R2 and
moto have them. The expiry compares the store's ``LastModified`` with this
machine's clock, so clocks must agree to well within the TTL.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from .errors import CrashAggregatesError, ExitCode

LOCK_NAME = ".lock"
#: Seconds an S3 lease lasts without renewal (renewed every third of it).
LEASE_TTL = 900.0
#: Seconds between two looks at a busy S3 lease while waiting for it.
POLL_SECONDS = 5.0

NoticeFn = Callable[[str], None]


class LockBusy(CrashAggregatesError):
    """Another run holds the lock (``str()`` says who, since when); a catch-up then skips."""

    exit_code = ExitCode.OK


class LockError(CrashAggregatesError):
    """The lock of a local output cannot be taken (the folder cannot be made or written)."""


class Lock:
    """The held lock of one output root; a context manager that releases it."""

    def held(self) -> bool:
        """False once the lock was lost (an S3 lease taken over): publish nothing more."""
        return True

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def acquire(
    root: str,
    wait: bool = True,
    notice: NoticeFn | None = None,
    ttl: float = LEASE_TTL,
    poll: float = POLL_SECONDS,
    warn: NoticeFn | None = None,
) -> Lock:
    """Take the lock of an output root (a folder or ``s3://`` URL).

    Busy: with ``wait`` wait for it (``notice`` hears once who holds it),
    else raise LockBusy. S3 trouble raises StorageError, a local folder that
    cannot hold the lock LockError. ``warn`` hears of a lease that could not
    be given back.
    """
    from .stores import store_for

    notice = notice or (lambda message: None)
    return store_for(root).lock(wait, notice, warn or notice, ttl, poll)


def owner(ttl: float | None = None) -> dict:
    doc = {
        "token": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if ttl is not None:
        doc["ttl_seconds"] = ttl
    return doc


def describe(root: str, holder: dict | None) -> str:
    """Who holds the lock, in one sentence.

    >>> describe("/data/out", {"host": "h", "pid": 7, "since": "2016-03-16T01:00:00+00:00"})
    'another run holds the lock on /data/out (pid 7 on h, since 2016-03-16T01:00:00+00:00)'
    """
    if not holder:
        return f"another run holds the lock on {root}"
    return (
        f"another run holds the lock on {root} "
        f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')})"
    )


def parse(text: bytes | str) -> dict | None:
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


# -- local disk --------------------------------------------------------------------


class FileLock(Lock):
    """An advisory flock on ``<root>/.lock`` (the local store's lock)."""

    def __init__(self, fd: int, path: str):
        self.fd, self.path = fd, path

    @classmethod
    def take(cls, root: str, wait: bool, notice: NoticeFn) -> FileLock:
        """Raises LockBusy (busy, not waiting) or LockError (the folder cannot hold the lock)."""
        try:
            return cls._take(root, wait, notice)
        except OSError as e:
            raise LockError(f"cannot take the lock of {root}: {e.strerror or e}") from None

    @classmethod
    def _take(cls, root: str, wait: bool, notice: NoticeFn) -> FileLock:
        os.makedirs(root, exist_ok=True)
        path = os.path.join(root, LOCK_NAME)
        told = False
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    message = describe(root, parse(os.pread(fd, 4096, 0)))
                    if not wait:
                        raise LockBusy(message) from None
                    if not told:
                        notice(f"{message}: waiting for it")
                        told = True
                    fcntl.flock(fd, fcntl.LOCK_EX)
                # The holder removes the file when it is done: if ours was
                # removed meanwhile, another run may lock a new one; start over.
                try:
                    same = os.stat(path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(owner()).encode(), 0)
            except BaseException:
                os.close(fd)
                raise
            return cls(fd, path)

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.path)  # while still locked: nothing is left behind
            except FileNotFoundError:
                pass
            os.close(self.fd)  # closing the file drops the flock
            self.fd = None


__all__ = ["LOCK_NAME", "FileLock", "Lock", "LockBusy", "LockError", "acquire", "describe", "owner", "parse"]
