"""The S3 store: an ``s3://bucket/prefix`` URL (``s3_client.py`` holds the connection and its errors).

Reading: an input file's path is the object's URL; its byte ranges are read
with ranged GETs of about ``s3_client.S3_BLOCK`` bytes, each asking for the
version that was listed (``If-Match`` its ETag), and compressed objects are
streamed the same way, so nothing is downloaded whole nor written to local
disk. Each process (a worker of the embedded engine, a Spark Python worker)
opens its own connection; workers are spawned, not forked (``fork_safe``).
Every failure raises ``StorageError``, which names the URL.

Publishing (no rename on S3): every run is a version with its own file
names, ``part-<version>-00000.parquet`` and ``_flat-<version>.parquet.sidecar``,
where the version is the run's UTC start time and a random suffix.
Publishing is

1. upload the data files and the sidecar (new names: nothing a reader uses changes);
2. upload ``_report.json`` (a copy for people and external tools);
3. upload ``_SUCCESS`` naming the new files: the commit point. A PUT of one
   object is atomic, so a reader gets either the old manifest or the new one;
4. delete the data files and sidecars that ``_SUCCESS`` does not name and
   that are not newer than this run's first file: the previous version, and
   what killed runs left.

A run killed before step 3 leaves the previous ``_SUCCESS`` and its files
untouched (its own uploads are unnamed leftovers); one killed after it has
published. Leftovers are deleted by the next run of that date (step 4), and
by :meth:`S3Store.clean_staging` at the start of every run once they are an
hour old (so that a run still uploading elsewhere is not disturbed). Two runs
of the same date at the same time are not supported, on S3 as on a local disk.

What other engines see on S3: Trino, Hive, Spark or DuckDB reading every
``part-*`` object under the prefix (they ignore ``_`` files, so they don't
read ``_SUCCESS``) see both versions of a partition between steps 3 and 4 —
usually well under a second, longer if the deletes fail (then the job prints
a warning) — and count its rows twice; before step 3 they may already see
the new files beside the old ones. Such engines should read the files
``_SUCCESS`` names (``storage.published_partitions``), or run after the job
has finished, or register partitions from it (docs/object-storage.md).

Readers: DuckDB reads the published ``s3://`` URLs once :meth:`S3Store.register_duckdb`
has given the connection this project's S3 filesystem (fsspec; no httpfs
extension, no separate credentials: the same AWS chain and endpoint as the
job); ``allowed_paths`` may list the URLs as they are. pyarrow reads them
through :meth:`S3Store.arrow_filesystem`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING

from .. import flat
from ..layout import (
    PARTITION_RE,
    REPORT,
    SUCCESS,
    Manifest,
    Partition,
    is_data_name,
    is_part_file,
    json_bytes,
    parquet_bytes,
    read_manifest,
)
from ..location import StorageError, partition_name
from . import Listed, WarnFn, is_hidden, no_warning, pause_before_commit, s3_client
from .s3_client import (
    SCHEME,
    error_code,
    explain,
    list_objects,
    normalize,
    require_s3,
    s3_errors,
    s3_failures,
    s3_filesystem,
    split,
    storage_error,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..layout import Version
    from ..lock import Lock

#: Data files of partitions not named by their _SUCCESS are removed at the
#: start of a run once they are this old (the next run of the date removes
#: them at once).
LEFTOVER_AGE = timedelta(hours=1)


def configure(config: Config) -> None:
    """The endpoint of the config's ``[s3]`` table, for this process and the workers it starts."""
    s3_client.configure(config.s3_endpoint_url)


class S3Store:
    """An ``s3://bucket/prefix`` URL (see the module docstring)."""

    mappable = False
    #: Forking a parent whose S3 layer already runs an I/O thread (s3fs's event loop) can kill the child.
    fork_safe = False
    remote = True

    def __init__(self, root: str):
        self.given = root
        self.root = normalize(root)

    def __repr__(self) -> str:
        return f"S3Store({self.root!r})"

    def check(self) -> None:
        bucket, _ = split(self.given)
        if not bucket:
            raise ValueError(f"invalid location {self.given}: no bucket (expected s3://bucket/prefix)")
        require_s3()

    def join(self, *names: str) -> str:
        return "/".join([self.root, *names])

    def root_exists(self) -> bool:
        return True  # a prefix needs no folder; listing it says whether the bucket is there

    # -- input

    def list_files(self, folder: str, head: int) -> list[Listed]:
        fs = s3_filesystem()
        prefix = folder + "/"
        objects = []
        for url, info in sorted(list_objects(folder).items()):
            relative = url[len(prefix) :] if url.startswith(prefix) else ""
            parts = relative.split("/")
            if not relative or any(is_hidden(p) or not p for p in parts):
                continue  # hidden, _SUCCESS-like, or a "folder" placeholder object
            objects.append((url, info["size"], info["ETag"]))
        # The first bytes of every non-empty object, fetched concurrently.
        sized = [url for url, size, _ in objects if size]
        heads = {}
        if sized:
            with s3_errors(folder, "read"):
                got = fs.cat_ranges(sized, [0] * len(sized), [head] * len(sized), on_error="return")
            for url, first in zip(sized, got, strict=False):
                if isinstance(first, BaseException):
                    raise storage_error(url, first, "read")
                heads[url] = first
        return [Listed(url, size, etag, heads.get(url, b"")) for url, size, etag in objects]

    def open(self, path: str, size: int, etag: str | None = None) -> IO[bytes]:
        """Ranged GETs of about ``S3_BLOCK`` bytes, each of the listed version."""
        with s3_errors(path, "read"):
            f = s3_filesystem().open(path, "rb", block_size=s3_client.S3_BLOCK, cache_type="readahead", size=size)
        # What the listing said, so that s3fs needs no HEAD request per split.
        f.details = {"name": path, "size": size, "type": "file", **({"ETag": etag} if etag else {})}
        if etag and isinstance(getattr(f, "read_kw", None), dict):
            f.read_kw = {**f.read_kw, "IfMatch": etag}
        return f

    def guard(self, items: Iterator, path: str) -> Iterator:
        """Re-raise an S3 failure while reading as a StorageError naming the object."""
        try:
            yield from items
        except StorageError:
            raise
        except s3_failures() as e:
            raise storage_error(path, e, "read") from None

    # -- writing files (the generator)

    def makedirs(self, folder: str) -> None:
        pass  # no folders on S3

    @contextmanager
    def open_output(self, path: str) -> Iterator[IO[bytes]]:
        """A (multipart) upload completed at the end, and aborted if the block raises."""
        fs = s3_filesystem()
        with s3_errors(path, "write"):
            f = fs.open(path, "wb", autocommit=False)
        try:
            yield f
            with s3_errors(path, "write"):
                f.close()
                f.commit()
        except BaseException:
            try:
                f.discard()  # aborts the multipart upload, if one was started
            except Exception:
                pass
            f.closed = True  # or the file would upload its buffer when garbage-collected
            raise

    def size(self, path: str) -> int:
        with s3_errors(path, "read"):
            return s3_filesystem().size(path)

    def delete_matching(self, folder: str, pattern: str) -> None:
        fs = s3_filesystem()
        with s3_errors(folder, "write"):
            for old in fs.glob(folder.removeprefix(SCHEME) + "/" + pattern):
                fs.rm(old)

    # -- publishing

    def lock(self, wait: bool, notice: WarnFn, warn: WarnFn, ttl: float, poll: float) -> Lock:
        from .s3_lease import S3Lease

        return S3Lease.take(self.root, wait, notice, ttl, poll, warn)

    def clean_staging(self, warn: WarnFn | None = None) -> list[str]:
        """Data files that no ``_SUCCESS`` names, once older than ``LEFTOVER_AGE``."""
        fs = s3_filesystem()
        root = self.root
        partitions = _partitions(root, list_objects(root))
        manifests = _read_markers(fs, root, partitions)
        cutoff = datetime.now(UTC) - LEFTOVER_AGE
        removed = []
        for part, objects in sorted(partitions.items()):
            keep = manifests[part].names() if part in manifests else None
            stale = [
                n
                for n, info in objects.items()
                if is_data_name(n)
                and ((keep is not None and n not in keep) or (keep is None and SUCCESS not in objects))
                and info.get("LastModified") is not None
                and info["LastModified"] < cutoff
            ]
            folder = self.join(part)
            gone = _delete(fs, folder, sorted(stale), warn or no_warning)
            removed.extend(f"{part}/{n}" for n in gone)
        return removed

    def publish(self, version: Version, warn: WarnFn) -> str:
        fs = s3_filesystem()
        folder = self.join(partition_name(version.day))
        files, sidecar = [f"part-{version.id}-00000.parquet"], flat.file_name(version.id)
        bodies = {files[0]: parquet_bytes(version.data), sidecar: parquet_bytes(version.flat)}
        uploaded: list[str] = []
        committing = False
        try:
            with s3_errors(folder, "publish to"):
                for name, body in bodies.items():
                    fs.pipe_file(f"{folder}/{name}", body)
                    uploaded.append(name)
                fs.pipe_file(f"{folder}/{REPORT}", json_bytes(version.report))
                pause_before_commit()
                committing = True
                fs.pipe_file(f"{folder}/{SUCCESS}", version.success(files, sidecar))
        except BaseException:
            # Before the commit point our files are unnamed: remove them. If the
            # _SUCCESS upload itself failed it may still have landed, so they stay
            # (a later run removes them if they are not named).
            if not committing and uploaded:
                _delete(fs, folder, uploaded, no_warning)
            raise
        try:
            listing = _children(folder)
        except StorageError as e:
            warn(f"published {folder}, but could not look for its old files: {e.reason}")
            return folder
        # The server's time of this version's first file (as listed, like the
        # others): what is not newer and not named by the new _SUCCESS is the old
        # version or a leftover; anything newer belongs to a later run.
        since = listing.get(files[0], {}).get("LastModified")
        if since is None:
            warn(f"published {folder}, but its new files are not listed yet: old files are left for a later run")
            return folder
        stale = [
            n
            for n, info in listing.items()
            if is_data_name(n)
            and n not in bodies
            and info.get("LastModified") is not None
            and info["LastModified"] <= since
        ]
        _delete(fs, folder, sorted(stale), warn)
        return folder

    # -- reading what is published

    def read(self, path: str) -> bytes | None:
        return _read(path)

    def published(self) -> dict[str, Partition]:
        """One listing of the root, then every ``_SUCCESS`` read at once."""
        root = self.root
        partitions = _partitions(root, list_objects(root))
        manifests = _read_markers(s3_filesystem(), root, partitions)
        return {
            PARTITION_RE.match(part).group(1): manifests[part].partition(
                lambda name, part=part: f"{root}/{part}/{name}", lambda part=part: list(partitions[part])
            )
            for part in sorted(manifests)
        }

    def published_partition(self, folder: str) -> Partition | None:
        folder = normalize(folder)
        text = self.read(f"{folder}/{SUCCESS}")
        if text is None:
            return None
        return read_manifest(text).partition(lambda name: f"{folder}/{name}", lambda: list(_children(folder)))

    def published_version(self) -> tuple:
        """The markers' ETags and dates, from one listing."""
        listing = _partitions(self.root, list_objects(self.root))
        return tuple(
            (part, str(objects[SUCCESS].get("ETag")), str(objects[SUCCESS].get("LastModified")))
            for part, objects in sorted(listing.items())
            if SUCCESS in objects
        )

    def update_published(self, update: Callable[[S3PartitionFolder], object]) -> Iterator:
        root = self.root
        for part, objects in sorted(_partitions(root, list_objects(root)).items()):
            if SUCCESS in objects:
                yield update(S3PartitionFolder(part, f"{root}/{part}", objects))

    # -- other engines reading the published files

    def register_duckdb(self, conn) -> None:
        """This project's S3 filesystem for DuckDB (same credentials chain, endpoint and retries as the job)."""
        fs = s3_filesystem()
        if "s3" not in conn.list_filesystems():
            conn.register_filesystem(fs)

    def arrow_filesystem(self):
        import pyarrow.fs as pafs

        return pafs.PyFileSystem(pafs.FSSpecHandler(s3_filesystem()))

    def arrow_path(self, file) -> str:
        return str(file)[len(SCHEME) :]

    def reader_path(self, file) -> str:
        return str(file)

    def known_missing(self, file) -> bool:
        return False  # not checked: that would cost a request per file


def _read(url: str) -> bytes | None:
    """An object's bytes, or None if there is no such object (a missing bucket raises)."""
    try:
        return s3_filesystem().cat_file(url)
    except FileNotFoundError as e:
        if error_code(e) == "NoSuchBucket":
            raise storage_error(url, e, "read") from None
        return None
    except s3_failures() as e:
        raise storage_error(url, e, "read") from None


def _delete(fs, folder: str, names: list[str], warn: WarnFn) -> list[str]:
    """Delete objects of one folder; returns the names deleted, warns about the rest.

    One DeleteObject request per file (a partition has a few to delete):
    unlike the batch DeleteObjects it needs no Content-MD5 or checksum header,
    which some S3-compatible stores reject, and each refusal is reported.
    """
    bucket, prefix = split(folder)
    deleted, reasons = [], set()
    for n in names:
        try:
            fs.call_s3("delete_object", Bucket=bucket, Key=f"{prefix}/{n}" if prefix else n)
            deleted.append(n)
        except s3_failures() as e:
            reasons.add(explain(e, folder))
    if reasons:
        warn(
            f"could not delete {len(names) - len(deleted)} old file(s) of {folder}: {'; '.join(sorted(reasons))}. "
            "Readers of this project ignore them; engines that read every part-* file count them "
            "until a later run removes them"
        )
    return deleted


def _children(folder: str) -> dict[str, dict]:
    """``{name: object info}`` of the objects directly in a folder."""
    prefix = folder + "/"
    return {
        url[len(prefix) :]: info
        for url, info in list_objects(folder).items()
        if url.startswith(prefix) and url[len(prefix) :] and "/" not in url[len(prefix) :]
    }


def _partitions(root: str, listing: dict) -> dict[str, dict[str, dict]]:
    """``{"submission_date=D": {name: object info}}`` from ``list_objects(root)``."""
    prefix = root + "/"
    found: dict[str, dict[str, dict]] = {}
    for url, info in listing.items():
        if not url.startswith(prefix):
            continue
        parts = url[len(prefix) :].split("/")
        if len(parts) == 2 and PARTITION_RE.match(parts[0]) and parts[1]:
            found.setdefault(parts[0], {})[parts[1]] = info
    return found


def _read_markers(fs, root: str, partitions: dict[str, dict[str, dict]]) -> dict[str, Manifest]:
    """What each partition's _SUCCESS names (an empty one: every part file; absent: no _SUCCESS)."""
    paths = {f"{root}/{part}/{SUCCESS}": part for part, objects in partitions.items() if SUCCESS in objects}
    if not paths:
        return {}
    with s3_errors(root, "read"):
        texts = fs.cat(list(paths), on_error="return")
    named = {}
    for path, text in texts.items():
        part = paths.get(path) or paths.get(SCHEME + path)
        if part is None:
            continue
        if isinstance(text, FileNotFoundError) and error_code(text) != "NoSuchBucket":
            continue  # deleted since the listing
        if isinstance(text, BaseException):
            raise storage_error(path if path.startswith(SCHEME) else SCHEME + path, text, "read")
        manifest = read_manifest(text)
        if manifest.files is None:
            manifest = Manifest(sorted(n for n in partitions[part] if is_part_file(n)), None)
        named[part] = manifest
    return named


class S3PartitionFolder:
    """A published partition's folder as listed, for changes in place (``migrate``).

    Files that ``_SUCCESS`` does not name are deleted only when not newer than
    it: a run still uploading elsewhere may own a newer one.
    """

    def __init__(self, name: str, url: str, objects: dict[str, dict]):
        self.name, self.url, self.objects = name, url, objects
        self.since: datetime | None = objects[SUCCESS].get("LastModified")

    def read(self, name: str) -> bytes | None:
        return _read(f"{self.url}/{name}")

    def has(self, name: str) -> bool:
        return name in self.objects

    def names(self) -> list[str]:
        return list(self.objects)

    def copy(self, source: str, target: str) -> None:
        """A server-side copy."""
        with s3_errors(self.url, "migrate"):
            s3_filesystem().copy(f"{self.url}/{source}", f"{self.url}/{target}")

    def replace(self, name: str, body: bytes) -> None:
        with s3_errors(self.url, "migrate"):
            s3_filesystem().pipe_file(f"{self.url}/{name}", body)

    def delete(self, names: list[str]) -> None:
        fs = s3_filesystem()
        bucket, prefix = split(self.url)
        with s3_errors(self.url, "migrate"):
            for name in names:
                fs.call_s3("delete_object", Bucket=bucket, Key=f"{prefix}/{name}" if prefix else name)

    def deletable(self, name: str) -> bool:
        modified = self.objects.get(name, {}).get("LastModified")
        return self.since is not None and modified is not None and modified <= self.since
