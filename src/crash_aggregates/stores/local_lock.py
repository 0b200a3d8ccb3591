"""The local store's lock: an advisory ``flock`` on ``<root>/.lock``.

The holder deletes the file when it is done. The kernel drops the flock when
the process ends however it ends, so a killed run leaves at most an unlocked
file, never a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os

from ..lock import LOCK_NAME, Lock, LockBusy, LockError, NoticeFn, describe, owner, parse


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
