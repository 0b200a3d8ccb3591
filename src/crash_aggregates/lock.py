"""One run at a time per output: the lock that keeps two runs from publishing the same date.

Every ``run`` holds the lock of its output root while it cleans up, plans and
publishes. The lock is the file or object ``.lock`` at the root (readers,
Hive, Spark and Trino skip hidden names), holding who has it::

    {"token": "...", "host": "build-3", "pid": 4242, "since": "2016-03-16T01:00:03+00:00", "ttl_seconds": 900}

Each store takes its own kind of lock (``Store.lock``): the local store an
advisory ``flock`` (``stores/local_lock.py``), the S3 store a lease object
written with conditional writes (``stores/s3_lease.py``). This module holds
what they share: the holder's document, the messages, the errors, and
:func:`acquire`, which asks the output's store.
"""

from __future__ import annotations

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
    """The holder's document: a token, who (host, pid, and where that pid means something), since when."""
    doc = {
        "token": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        **_process_space(),
    }
    if ttl is not None:
        doc["ttl_seconds"] = ttl
    return doc


def _process_space() -> dict:
    """What makes a pid unambiguous on Linux: the boot and the pid namespace (empty elsewhere)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return {}
    return {"boot_id": boot, "pid_namespace": namespace}


def holder_is_gone(holder: dict | None) -> bool:
    """Whether the holder was a process of this machine, boot and pid namespace that no longer runs.

    Such a lock was left by a killed run and can be taken over at once (the
    S3 lease would otherwise wait for its TTL). Anything unsure (another
    host, another container, no record of them, a pid now reused) is False.

    >>> holder_is_gone({"host": "elsewhere", "pid": 1})
    False
    """
    if not holder or holder.get("host") != socket.gethostname():
        return False
    space = _process_space()
    if not space or any(holder.get(k) != v for k, v in space.items()):
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's): alive
        return False
    return False


def describe(root: str, holder: dict | None) -> str:
    """Who holds the lock, in one sentence.

    >>> describe("/data/out", {"host": "h", "pid": 7, "since": "2016-03-16T01:00:00+00:00"})
    'another run holds the lock on /data/out (pid 7 on h, since 2016-03-16T01:00:00+00:00)'
    """
    if not holder:
        return f"another run holds the lock on {root}"
    return f"another run holds the lock on {root} ({who(holder)})"


def who(holder: dict | None) -> str:
    """The holder in a few words: ``pid 7 on h, since 2016-03-16T01:00:00+00:00``."""
    holder = holder or {}
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}"


def parse(text: bytes | str) -> dict | None:
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


__all__ = [
    "LOCK_NAME",
    "Lock",
    "LockBusy",
    "LockError",
    "acquire",
    "describe",
    "holder_is_gone",
    "owner",
    "parse",
    "who",
]
