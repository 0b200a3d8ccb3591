"""The S3 store's lock: a lease object ``<root>/.lock`` written with conditional writes.

S3 has no locks; a lease made with its conditional writes does the work:

- take: ``PutObject`` with ``If-None-Match: *``, which the store accepts only
  if ``.lock`` does not exist (else 412 PreconditionFailed);
- keep: a thread rewrites the lease every ``ttl/3`` with ``If-Match: <its
  ETag>``, so it stays valid while the run is alive; should that fail with
  412 the lease was taken over, the run is told (:meth:`S3Lease.held`) and
  publishes nothing more;
- a lease not renewed for ``ttl`` seconds (its ``LastModified`` is older) was
  left by a dead run: the next run takes it over with ``If-Match`` on the
  stale lease's ETag, so of two runs doing so at once only one succeeds; so
  is at once a lease whose holder was a process of this same machine (host,
  boot and pid namespace) that no longer runs (``lock.holder_is_gone``): a
  run killed by hand or by cron's timeout does not hold up the next one;
- give back: ``DeleteObject`` with ``If-Match`` (never someone else's lease).

This needs a store with conditional writes: AWS S3 (``If-None-Match`` since
August 2024, ``If-Match`` since November 2024), MinIO, Cloudflare R2 and
moto have them. The expiry compares the store's ``LastModified`` with this
machine's clock, so clocks must agree to well within the TTL.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

from .. import location
from ..lock import LOCK_NAME, Lock, LockBusy, NoticeFn, describe, holder_is_gone, owner, parse, who
from . import s3_client

#: Error codes meaning "the condition did not hold": someone else's lease.
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def _code(error: BaseException) -> str | None:
    return s3_client.error_code(error)


class S3Lease(Lock):
    """A lease object ``<root>/.lock`` written with conditional writes (the S3 store's lock)."""

    def __init__(self, url: str, doc: dict, etag: str, ttl: float, warn: NoticeFn):
        self.url, self.doc, self.etag, self.ttl, self.warn = url, doc, etag, ttl, warn
        self.bucket, self.key = s3_client.split(url)
        self.lost = threading.Event()
        self.stop = threading.Event()
        self.guard = threading.Lock()
        self.thread = threading.Thread(target=self._renew, name="lock-lease", daemon=True)
        self.thread.start()

    @classmethod
    def take(cls, root: str, wait: bool, notice: NoticeFn, ttl: float, poll: float, warn: NoticeFn) -> S3Lease:
        url = location.join(root, LOCK_NAME)
        bucket, key = s3_client.split(url)
        fs = s3_client.s3_filesystem()
        told = False
        while True:
            doc = owner(ttl)
            body = json.dumps(doc).encode()
            with s3_client.s3_errors(root, "take the lock on"):
                try:
                    answer = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
                    return cls(url, doc, answer["ETag"], ttl, warn)
                except s3_client.s3_failures() as e:
                    if _code(e) not in _CONFLICT_CODES:
                        raise
                holder, etag, modified = cls._read(fs, bucket, key)
                if etag is None:
                    continue  # given back meanwhile: try again at once
                # +1 s: LastModified comes in whole seconds.
                stale_after = float((holder or {}).get("ttl_seconds") or ttl) + 1
                lapsed = modified is not None and datetime.now(UTC) - modified > timedelta(seconds=stale_after)
                if lapsed or holder_is_gone(holder):
                    why = "stopped renewing it" if lapsed else "no longer runs on this machine"
                    try:  # a dead run's lease: take it over, unless another run just did
                        answer = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, IfMatch=etag)
                        notice(f"took over the lock on {root}, left by a run that {why}: {who(holder)}")
                        return cls(url, doc, answer["ETag"], ttl, warn)
                    except s3_client.s3_failures() as e:
                        if _code(e) not in _CONFLICT_CODES and _code(e) != "NoSuchKey":
                            raise
                        continue
            message = describe(root, holder)
            if not wait:
                raise LockBusy(message)
            if not told:
                notice(f"{message}: waiting for it")
                told = True
            time.sleep(poll)

    @staticmethod
    def _read(fs, bucket: str, key: str) -> tuple[dict | None, str | None, datetime | None]:
        """The lease's holder, ETag and LastModified; Nones when there is none.

        ETag and time come from one HEAD; the holder (for messages only) from
        a GET after it. A renewal in between makes a takeover's If-Match fail,
        which is what it should do.
        """
        try:
            head = fs.call_s3("head_object", Bucket=bucket, Key=key)
            text = fs.cat_file(f"{bucket}/{key}")
        except s3_client.s3_failures() as e:
            if _code(e) in ("NoSuchKey", "404") or isinstance(e, FileNotFoundError):
                return None, None, None
            raise
        return parse(text), head.get("ETag"), head.get("LastModified")

    def held(self) -> bool:
        return not self.lost.is_set()

    def _renew(self) -> None:
        fs = s3_client.s3_filesystem()
        while not self.stop.wait(self.ttl / 3):
            with self.guard:
                if self.stop.is_set():
                    return
                # A new body each time, so a new ETag: a run that saw the lease
                # stale cannot take it over with the ETag it read then.
                self.doc["renewals"] = self.doc.get("renewals", 0) + 1
                self.doc["renewed_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
                try:
                    answer = fs.call_s3(
                        "put_object",
                        Bucket=self.bucket,
                        Key=self.key,
                        Body=json.dumps(self.doc).encode(),
                        IfMatch=self.etag,
                    )
                    self.etag = answer["ETag"]
                except s3_client.s3_failures() as e:
                    if _code(e) in _CONFLICT_CODES or _code(e) in ("NoSuchKey", "404"):
                        self.lost.set()
                        return
                    # A transient failure: the next renewal tries again, well within the TTL.

    def release(self) -> None:
        """Give the lease back; a failure is a warning (the lease lapses by itself)."""
        if self.stop.is_set():
            return
        with self.guard:
            self.stop.set()
        self.thread.join()
        if self.lost.is_set():
            return
        fs = s3_client.s3_filesystem()
        try:
            fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except s3_client.s3_failures() as e:
            if _code(e) in _CONFLICT_CODES or _code(e) in ("NoSuchKey", "404"):
                return  # not ours any more: leave it
            if _code(e) in ("NotImplemented", "InvalidArgument", "InvalidRequest"):
                # A store without conditional deletes: delete only if it still names us.
                holder, _, _ = self._read(fs, self.bucket, self.key)
                if holder and holder.get("token") == self.doc["token"]:
                    fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key)
                return
            # The work is done; the lease lapses by itself. Say so, don't fail the run.
            self.warn(
                f"could not give back the lock {self.url}: {s3_client.explain(e, self.url)}; "
                f"it lapses {self.ttl:g} s after its last renewal (other runs wait or skip until then)"
            )
