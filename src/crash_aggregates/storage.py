"""Partition layout, Parquet writing, publishing and finding what is published.

The output root is a local folder or an ``s3://bucket/prefix`` URL
(``location.py``). A partition is ``<root>/submission_date=YYYY-MM-DD/``
holding ``part-*.parquet``, the flat sidecar ``_flat*.parquet.sidecar`` (the
same rows with one plain column per map key, for fast queries; named so
that no ``*.parquet`` glob reads it: ``flat.py``),
``_report.json`` and ``_SUCCESS``.

``_SUCCESS`` is written last and is the partition's manifest, the same small
JSON document on a local disk and on S3::

    {"files": ["part-....parquet"], "submission_date": "2016-03-05",
     "version": "<run id>", "report": {... the _report.json of this version ...},
     "flat": {"file": "_flat....parquet.sidecar", "keys": {"dimensions": [...], "stats": [...]}}}

A reader of this project sees a partition only when it has ``_SUCCESS`` and
reads exactly the files it names (an empty ``_SUCCESS``, as Hadoop writes,
means every ``part-*.parquet`` file of the folder), and takes the report from
it (:func:`read_report`), so data and report always belong to one version.
``files`` lists the data files only: they alone are SPEC's layout, and what
a table definition or manifest for another engine should list. The sidecar
is named under ``flat``; partitions published before sidecars existed have
no ``flat`` entry, and readers then use the part files alone.

Local disk: a new version is written into a hidden sibling folder and
swapped in with one ``renameat2(RENAME_EXCHANGE)`` call, so a reader sees the
old version or the new one, never a mix, and a run killed at any point leaves
the old version complete. Hive, Spark and Trino skip hidden folders (leading
``.``), but DuckDB's and polars' globs (``*/*.parquet``) look into them: the
data file is written as ``part-00000.parquet.writing`` and renamed only just
before the swap, so such globs do not count a partition being written, nor
what a killed run left; a later run removes those folders
(:func:`clean_staging`). Data files keep the name ``part-00000.parquet``, the
sidecar ``_flat.parquet.sidecar``.

S3 (no rename there): every run is a version with its own file names,
``part-<version>-00000.parquet`` and ``_flat-<version>.parquet.sidecar``, where the
version is the run's UTC start time and a random suffix. Publishing is

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
by :func:`clean_staging` at the start of every run once they are an hour old
(so that a run still uploading elsewhere is not disturbed). Two runs of the
same date at the same time are not supported, on S3 as on a local disk.

What other engines see on S3: Trino, Hive, Spark or DuckDB reading every
``part-*`` object under the prefix (they ignore ``_`` files, so they don't
read ``_SUCCESS``) see both versions of a partition between steps 3 and 4 —
usually well under a second, longer if the deletes fail (then the job prints
a warning) — and count its rows twice; before step 3 they may already see
the new files beside the old ones. Such engines should read the files
``_SUCCESS`` names (``published_partitions``), or run after the job has
finished, or register partitions from it (docs/object-storage.md).

Readers of this module's output (the ``sql`` command, the dashboard, the
watchdog):

- :func:`published_partitions` returns ``{"YYYY-MM-DD": [data files]}``: each
  file is a ``Path`` under a local root and an ``s3://bucket/key`` string
  under an S3 root; ``str(file)`` is what DuckDB's ``read_parquet`` and
  pyarrow take (the Hive folder gives ``submission_date``);
  :func:`published` returns the same as :class:`Partition` objects, which
  also give the partition's :class:`FlatSidecar` (or None);
- DuckDB reads the S3 ones once :func:`register_duckdb` has given the
  connection this project's S3 filesystem (fsspec; no httpfs extension, no
  separate credentials: the same AWS chain and endpoint as the job). Call it
  before locking the connection's configuration; ``allowed_paths`` may list
  the ``s3://`` URLs as they are;
- pyarrow reads them through :func:`arrow_filesystem` and :func:`arrow_path`;
- :func:`read_report` returns the report of the published version.

Writers of input (the generator) use ``location.open_output`` and
``location.makedirs``, which take a local path or an ``s3://`` URL alike.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from . import flat, location
from .location import StorageError, is_s3, partition_name, s3_errors

if TYPE_CHECKING:  # annotations only: pyarrow is imported where tables are built
    import pyarrow as pa

SUCCESS = "_SUCCESS"
REPORT = "_report.json"
PARTITION_RE = re.compile(r"submission_date=(\d{4}-\d{2}-\d{2})\Z")
STAGING_PREFIX = ".staging-"
#: Ending of a local data file while its staging folder is written (not ``.parquet``: globs skip it).
WRITING = ".writing"
#: Data files of S3 partitions not named by their _SUCCESS are removed at the
#: start of a run once they are this old (the next run of the date removes
#: them at once).
LEFTOVER_AGE = timedelta(hours=1)
#: Test hook: seconds to sleep between uploading a version and writing its
#: _SUCCESS, so that a test can kill a run at that moment.
PAUSE_ENV = "CRASH_AGGREGATES_TEST_PAUSE_BEFORE_SUCCESS"

WarnFn = Callable[[str], None]


@functools.cache
def load_writer():
    """Import pyarrow, which only publishing needs, and return the part files' schema.

    Kept out of the module's imports so that a run starts its workers without
    it (about 0.2 s); the embedded engine calls this while they work.
    """
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401 - aggregates_table and flat.py sort and flatten with it
    import pyarrow.parquet  # noqa: F401

    return pa.schema(
        [
            pa.field("activity_date", pa.string(), nullable=False),
            pa.field("dimensions", pa.map_(pa.string(), pa.string())),
            pa.field("stats", pa.map_(pa.string(), pa.float64())),
        ]
    )


def __getattr__(name: str):
    if name == "SCHEMA":  # storage.SCHEMA, made on first use
        return load_writer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def aggregates_table(aggregates: dict, dimension_names: list[str], stat_columns: list[str]) -> pa.Table:
    """Rows sorted by key, absent dimensions left out of the map (SPEC section 6).

    Rows are ordered by activity date, then by each dimension's value with
    absent ones last; Arrow sorts them (UTF-8 byte order is code point order),
    so no per-row sort key is ever made in Python, and the maps are built from
    flat arrays: the memory this takes stays near the table's own size.

    >>> table = aggregates_table({("2016-03-02", ("b", None)): [1.0], ("2016-03-02", (None, "x")): [2.0],
    ...                           ("2016-03-01", ("c", "y")): [3.0]}, ["channel", "os"], ["ping_count"])
    >>> table["dimensions"].to_pylist()
    [[('channel', 'c'), ('os', 'y')], [('channel', 'b')], [('os', 'x')]]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = load_writer()
    rows = list(aggregates.items())
    columns = {"activity_date": pa.array([key[0] for key, _ in rows], pa.string())}
    for j in range(len(dimension_names)):
        columns[f"d{j}"] = pa.array([key[1][j] for key, _ in rows], pa.string())
    order = pc.sort_indices(
        pa.table(columns), sort_keys=[(name, "ascending", "at_end") for name in columns]
    ).to_pylist()
    del columns

    offsets, keys, values, sums = [0], [], [], []
    for i in order:
        (_, dims), row_sums = rows[i]
        for name, value in zip(dimension_names, dims, strict=False):
            if value is not None:
                keys.append(name)
                values.append(value)
        offsets.append(len(keys))
        sums.extend(row_sums)
    n, k = len(order), len(stat_columns)
    return pa.table(
        [
            pa.array([rows[i][0][0] for i in order], pa.string()),
            pa.MapArray.from_arrays(
                pa.array(offsets, pa.int32()),
                pa.array(keys, pa.string()),
                pa.array(values, pa.string()),
                type=schema[1].type,
            ),
            pa.MapArray.from_arrays(
                pa.array(range(0, n * k + 1, k) if k else [0] * (n + 1), pa.int32()),
                pa.array(stat_columns * n, pa.string()),
                pa.array(sums, pa.float64()),
                type=schema[2].type,
            ),
        ],
        schema=schema,
    )


# -- publishing ----------------------------------------------------------------


def new_version() -> str:
    """A run's version: UTC start time (sortable) and a random suffix.

    >>> len(new_version()), new_version()[8]
    (30, 'T')
    """
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:7]}"


def success_document(day: date, files: list[str], version: str, report: dict, sidecar: dict | None = None) -> dict:
    """The content of ``_SUCCESS``: the files, the report and the sidecar (``flat.manifest``) of one version."""
    doc = {"files": files, "submission_date": day.isoformat(), "version": version, "report": report}
    if sidecar is not None:
        doc["flat"] = sidecar
    return doc


def _write_parquet(table: pa.Table, where) -> None:
    """Write a part file or a sidecar (a path or a writable buffer)."""
    import pyarrow.parquet as pq

    pq.write_table(table, where, compression="snappy")


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


def clean_staging(root: str | os.PathLike, warn: WarnFn | None = None) -> list[str]:
    """Remove what dead runs left under ``root``; returns the names removed.

    Local: the hidden staging folders. S3: data files that no ``_SUCCESS``
    names, once older than ``LEFTOVER_AGE``. Raises StorageError when an S3
    root cannot be listed (wrong credentials, no such bucket, no endpoint),
    so it doubles as the job's first check of its output location.
    """
    if is_s3(root):
        return _clean_s3(location.normalize(root), warn)
    root = Path(root)
    removed = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    return removed


def publish_partition(
    root: str | os.PathLike, day: date, table: pa.Table, report: dict, warn: WarnFn | None = None
) -> Path | str:
    """Publish a partition as a whole; returns where it is (a Path, or an S3 URL).

    Raises OSError (StorageError on S3) with the previous version in place.
    ``warn`` hears of trouble after the commit point (old files that could not
    be deleted); the new version is published all the same.
    """
    if is_s3(root):
        return _publish_s3(location.normalize(root), day, table, report, warn or (lambda message: None))
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / partition_name(day)
    staging = root / f"{STAGING_PREFIX}{partition_name(day)}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        part, sidecar = "part-00000.parquet", flat.file_name()
        # DuckDB's and polars' globs (*/*.parquet) look into hidden folders too:
        # the data file takes its name only just before the swap, so that a
        # glob meanwhile, or after a run killed here, does not count it.
        _write_parquet(table, staging / (part + WRITING))
        flat_rows, keys = flat.flat_table(table)
        _write_parquet(flat_rows, staging / sidecar)
        _write_json(staging / REPORT, report)
        _test_pause()
        doc = success_document(day, [part], new_version(), report, flat.manifest(sidecar, keys))
        _write_json(staging / SUCCESS, doc)
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


def _test_pause() -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if seconds:
        time.sleep(float(seconds))


def _json_bytes(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _write_json(path: Path, doc: dict) -> None:
    with open(path, "wb") as f:
        f.write(_json_bytes(doc))
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    _write_parquet(table, sink)
    return sink.getvalue().to_pybytes()


def _publish_s3(root: str, day: date, table: pa.Table, report: dict, warn: WarnFn) -> str:
    fs = location.s3_filesystem()
    folder = location.join(root, partition_name(day))
    version = new_version()
    files, sidecar = [f"part-{version}-00000.parquet"], flat.file_name(version)
    flat_rows, keys = flat.flat_table(table)
    bodies = {files[0]: _parquet_bytes(table), sidecar: _parquet_bytes(flat_rows)}
    doc = success_document(day, files, version, report, flat.manifest(sidecar, keys))
    uploaded: list[str] = []
    committing = False
    try:
        with s3_errors(folder, "publish to"):
            for name, body in bodies.items():
                fs.pipe_file(location.join(folder, name), body)
                uploaded.append(name)
            fs.pipe_file(location.join(folder, REPORT), _json_bytes(report))
            _test_pause()
            committing = True
            fs.pipe_file(location.join(folder, SUCCESS), _json_bytes(doc))
    except BaseException:
        # Before the commit point our files are unnamed: remove them. If the
        # _SUCCESS upload itself failed it may still have landed, so they stay
        # (a later run removes them if they are not named).
        if not committing and uploaded:
            _delete(fs, folder, uploaded, lambda message: None)
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
        if _is_data_name(n)
        and n not in bodies
        and info.get("LastModified") is not None
        and info["LastModified"] <= since
    ]
    _delete(fs, folder, sorted(stale), warn)
    return folder


def _is_data_name(name: str) -> bool:
    """Files of a version, which a replace or the cleanup deletes when unnamed: data files and sidecars."""
    return name.startswith("part-") or flat.is_file_name(name)


def _delete(fs, folder: str, names: list[str], warn: WarnFn) -> list[str]:
    """Delete objects of one folder; returns the names deleted, warns about the rest.

    One DeleteObject request per file (a partition has a few to delete):
    unlike the batch DeleteObjects it needs no Content-MD5 or checksum header,
    which some S3-compatible stores reject, and each refusal is reported.
    """
    bucket, prefix = location.split_s3(folder)
    deleted, reasons = [], set()
    for n in names:
        try:
            fs.call_s3("delete_object", Bucket=bucket, Key=f"{prefix}/{n}" if prefix else n)
            deleted.append(n)
        except location.s3_failures() as e:
            reasons.add(location.explain(e, folder))
    if reasons:
        warn(
            f"could not delete {len(names) - len(deleted)} old file(s) of {folder}: {'; '.join(sorted(reasons))}. "
            "Readers of this project ignore them; engines that read every part-* file count them "
            "until a later run removes them"
        )
    return deleted


def _clean_s3(root: str, warn: WarnFn | None) -> list[str]:
    fs = location.s3_filesystem()
    partitions = _partitions(root, location.list_objects(root))
    manifests = _read_markers(fs, root, partitions)
    cutoff = datetime.now(UTC) - LEFTOVER_AGE
    removed = []
    for part, objects in sorted(partitions.items()):
        keep = manifests[part].names() if part in manifests else None
        stale = [
            n
            for n, info in objects.items()
            if _is_data_name(n)
            and ((keep is not None and n not in keep) or (keep is None and SUCCESS not in objects))
            and info.get("LastModified") is not None
            and info["LastModified"] < cutoff
        ]
        folder = location.join(root, part)
        gone = _delete(fs, folder, sorted(stale), warn or (lambda message: None))
        removed.extend(location.join(part, n) for n in gone)
    return removed


def _children(folder: str) -> dict[str, dict]:
    """``{name: object info}`` of the objects directly in an S3 folder."""
    prefix = folder + "/"
    return {
        url[len(prefix) :]: info
        for url, info in location.list_objects(folder).items()
        if url.startswith(prefix) and url[len(prefix) :] and "/" not in url[len(prefix) :]
    }


def _partitions(root: str, listing: dict) -> dict[str, dict[str, dict]]:
    """``{"submission_date=D": {name: object info}}`` from ``location.list_objects(root)``."""
    prefix = root + "/"
    found: dict[str, dict[str, dict]] = {}
    for url, info in listing.items():
        if not url.startswith(prefix):
            continue
        parts = url[len(prefix) :].split("/")
        if len(parts) == 2 and PARTITION_RE.match(parts[0]) and parts[1]:
            found.setdefault(parts[0], {})[parts[1]] = info
    return found


def _read_markers(fs, root: str, partitions: dict[str, dict[str, dict]]) -> dict[str, _Manifest]:
    """What each partition's _SUCCESS names (an empty one: every part file; absent: no _SUCCESS)."""
    paths = {location.join(root, part, SUCCESS): part for part, objects in partitions.items() if SUCCESS in objects}
    if not paths:
        return {}
    with s3_errors(root, "read"):
        texts = fs.cat(list(paths), on_error="return")
    named = {}
    for path, text in texts.items():
        part = paths.get(path) or paths.get(location.S3_SCHEME + path)
        if part is None:
            continue
        if isinstance(text, FileNotFoundError) and location._error_code(text) != "NoSuchBucket":
            continue  # deleted since the listing
        if isinstance(text, BaseException):
            raise location.storage_error(path if is_s3(path) else location.S3_SCHEME + path, text, "read")
        manifest = _manifest(text)
        if manifest.files is None:
            manifest = _Manifest(sorted(n for n in partitions[part] if _is_part_file(n)), None)
        named[part] = manifest
    return named


# -- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class FlatSidecar:
    """A partition's flat sidecar (``flat.py``): its file, and the map keys it has a column for."""

    file: Path | str
    keys: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Partition:
    """A published partition: the data files its ``_SUCCESS`` names, and its sidecar if it names one."""

    files: list[Path] | list[str]
    sidecar: FlatSidecar | None = None


@dataclass(frozen=True)
class _Manifest:
    """What a _SUCCESS document names: data files (None: an empty Hadoop marker) and the sidecar."""

    files: list[str] | None
    sidecar: tuple[str, dict[str, tuple[str, ...]]] | None

    def names(self) -> list[str]:
        """Every file of the version: the data files and the sidecar."""
        return [*(self.files or []), *([self.sidecar[0]] if self.sidecar else [])]

    def partition(self, join: Callable[[str], Path | str]) -> Partition:
        """The Partition, with ``join`` making a file name a Path or URL."""
        sidecar = FlatSidecar(join(self.sidecar[0]), self.sidecar[1]) if self.sidecar else None
        return Partition([join(n) for n in self.files or []], sidecar)


def _manifest(text: bytes | str) -> _Manifest:
    """The safe file names a _SUCCESS document gives (None for an empty Hadoop marker) and its sidecar."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    doc = None
    if text.strip():
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
    names = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(names, list):
        return _Manifest(None, None)
    files = [n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]
    return _Manifest(files, flat.read_manifest(doc.get("flat")))


def _is_part_file(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")


def success_files(partition: str | os.PathLike) -> list[Path] | list[str] | None:
    """The data files a published partition names, or None if it is not published.

    ``partition`` is a local folder (files are Paths) or an S3 URL (files are
    ``s3://`` URLs).
    """
    found = published_partition(partition)
    return found.files if found is not None else None


def published_partition(partition: str | os.PathLike) -> Partition | None:
    """What the ``_SUCCESS`` of a partition folder (local or S3 URL) names; None if it is not published."""
    if is_s3(partition):
        partition = location.normalize(partition)
        text = _read_s3_text(location.join(partition, SUCCESS))
        if text is None:
            return None
        manifest = _manifest(text)
        if manifest.files is None:  # a Hadoop-style empty marker: every part file counts
            return Partition(
                [location.join(partition, n) for n in sorted(n for n in _children(partition) if _is_part_file(n))]
            )
        return manifest.partition(lambda name: location.join(partition, name))
    partition = Path(partition)
    try:
        text = (partition / SUCCESS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    manifest = _manifest(text)
    if manifest.files is None:  # a Hadoop-style empty marker: every part file counts
        return Partition(sorted(partition.glob("part-*.parquet")))
    return manifest.partition(lambda name: partition / name)


def _read_s3_text(url: str) -> bytes | None:
    """An object's bytes, or None if there is no such object (a missing bucket raises)."""
    fs = location.s3_filesystem()
    try:
        return fs.cat_file(url)
    except FileNotFoundError as e:
        if location._error_code(e) == "NoSuchBucket":
            raise location.storage_error(url, e, "read") from None
        return None
    except location.s3_failures() as e:
        raise location.storage_error(url, e, "read") from None


def published_partitions(root: str | os.PathLike) -> dict[str, list[Path] | list[str]]:
    """``{"YYYY-MM-DD": [data files]}`` for every partition that has ``_SUCCESS``.

    Local root: Paths, ``{}`` if the folder does not exist. S3 root:
    ``s3://`` URLs (see the module docstring for reading them), ``{}`` if
    nothing is under the prefix; StorageError if the bucket or the store
    cannot be used.
    """
    return {day: partition.files for day, partition in published(root).items()}


def published(root: str | os.PathLike) -> dict[str, Partition]:
    """``{"YYYY-MM-DD": Partition}`` for every partition that has ``_SUCCESS`` (see :func:`published_partitions`)."""
    if is_s3(root):
        root = location.normalize(root)
        partitions = _partitions(root, location.list_objects(root))
        manifests = _read_markers(location.s3_filesystem(), root, partitions)
        return {
            PARTITION_RE.match(part).group(1): manifests[part].partition(
                lambda name, part=part: location.join(root, part, name)
            )
            for part in sorted(manifests)
        }
    root = Path(root)
    found = {}
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        m = PARTITION_RE.match(entry.name)
        if m and entry.is_dir():
            partition = published_partition(entry)
            if partition is not None:
                found[m.group(1)] = partition
    return found


def published_version(root: str | os.PathLike) -> tuple:
    """What identifies the published dataset: each partition's ``_SUCCESS`` marker, as cheaply as it can be seen.

    Publishing, replacing or removing a partition changes it. Local: name,
    size, inode and modification time of each marker (one ``stat`` each);
    S3: the markers' ETags and dates from one listing.
    """
    if is_s3(root):
        root = location.normalize(root)
        listing = _partitions(root, location.list_objects(root))
        return tuple(
            (part, str(objects[SUCCESS].get("ETag")), str(objects[SUCCESS].get("LastModified")))
            for part, objects in sorted(listing.items())
            if SUCCESS in objects
        )
    found = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
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


def read_report(root: str | os.PathLike, day: date) -> dict | None:
    """The report of the published version of a date (from its _SUCCESS), else _report.json."""
    folder = location.join(root, partition_name(day))
    if is_s3(root):
        marker, report_text = _read_s3_text(location.join(folder, SUCCESS)), None
        if marker is None or _embedded_report(marker) is None:
            report_text = _read_s3_text(location.join(folder, REPORT))
    else:
        marker = _read_local(Path(folder) / SUCCESS)
        report_text = _read_local(Path(folder) / REPORT)
    if marker is not None and (embedded := _embedded_report(marker)) is not None:
        return embedded
    return json.loads(report_text) if report_text is not None else None


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _embedded_report(marker: bytes) -> dict | None:
    try:
        report = json.loads(marker).get("report")
    except (ValueError, AttributeError):
        return None
    return report if isinstance(report, dict) else None


# -- readers' access to S3 -------------------------------------------------------


def register_duckdb(conn, root: str | os.PathLike) -> None:
    """Let a DuckDB connection read the ``s3://`` files of ``root`` (nothing to do locally).

    Uses this project's S3 filesystem (same credentials chain, endpoint and
    retries as the job); call it before ``SET lock_configuration = true``.
    """
    if not is_s3(root):
        return
    fs = location.s3_filesystem()
    if "s3" not in conn.list_filesystems():
        conn.register_filesystem(fs)


def arrow_filesystem(root: str | os.PathLike):
    """A pyarrow filesystem for the files of ``root``: use it with :func:`arrow_path`.

    ``pq.read_table(arrow_path(f), filesystem=arrow_filesystem(root))`` reads a
    file that :func:`published_partitions` returned, local or on S3.
    """
    import pyarrow.fs as pafs

    if is_s3(root):
        return pafs.PyFileSystem(pafs.FSSpecHandler(location.s3_filesystem()))
    return pafs.LocalFileSystem()


def arrow_path(file: str | os.PathLike) -> str:
    """The path of a data file as :func:`arrow_filesystem` wants it (no ``s3://``)."""
    text = os.fspath(file)
    return text[len(location.S3_SCHEME) :] if is_s3(text) else os.path.abspath(text)
