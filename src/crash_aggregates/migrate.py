"""Bring partitions published by earlier versions to the current layout.

The one change so far: earlier versions named the flat sidecar
``_flat.parquet`` (``_flat-<version>.parquet`` on S3), which ``*.parquet``
globs read as data, counting every aggregate twice (``flat.py``). Migrating
a partition gives its sidecar the current name (the old one plus
``.sidecar``) the way a version is published (``storage.py``), so that a
reader sees the partition before or after, never between:

1. the sidecar gets its new name beside the old one: a hard link on a local
   disk (a copy where links are not supported), a server-side copy on S3;
   nothing a reader uses has changed, and the new name is invisible to globs;
2. ``_SUCCESS`` is replaced by the same document naming the new file (a
   rename over it locally, one PUT on S3): the commit point for this
   project's readers, which open the files ``_SUCCESS`` names;
3. the old name is deleted: from now on globs see the part files alone.

A migration stopped at any step leaves a partition that reads right, and
running it again finishes the work: it is idempotent, and partitions
already in the current layout are left as they are. Sidecars under the old
name that ``_SUCCESS`` does not name (left by an interrupted migration or a
killed run) are deleted too; on S3 only those not newer than ``_SUCCESS``,
as a run still uploading elsewhere may own a newer one.

As for ``run``, a migration must not overlap a run writing the same dates:
each partition's ``_SUCCESS`` is compared with what was read just before
the commit, and a partition that changed meanwhile is left for the next
migration, but that check cannot close the window entirely. Re-running
``run`` for a date also writes the current layout.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import flat, location
from .location import is_s3, s3_errors
from .storage import PARTITION_RE, SUCCESS, _json_bytes, _partitions, _read_s3_text


@dataclass
class Change:
    """What migrating one partition did (or, in a dry run, would do)."""

    partition: str  # submission_date=YYYY-MM-DD
    #: ``(old name, new name)`` of the sidecar that ``_SUCCESS`` names, if it was renamed.
    renamed: tuple[str, str] | None = None
    #: Sidecars under an old name that ``_SUCCESS`` does not name, deleted.
    removed: list[str] = field(default_factory=list)
    #: Something the user should know that needs no migration (one line).
    note: str = ""
    #: Why the partition was left in the old layout, if it was (one line): migrate again.
    skipped: str = ""

    def lines(self, dry_run: bool = False) -> list[str]:
        """What to tell the user, one line per action.

        >>> Change("submission_date=2016-03-05", ("_flat.parquet", "_flat.parquet.sidecar")).lines(dry_run=True)
        ['submission_date=2016-03-05: would rename _flat.parquet to _flat.parquet.sidecar']
        """
        rename, remove = ("would rename", "would delete") if dry_run else ("renamed", "deleted")
        said = []
        if self.renamed:
            said.append(f"{self.partition}: {rename} {self.renamed[0]} to {self.renamed[1]}")
        said += [f"{self.partition}: {remove} {name}, which _SUCCESS does not name" for name in self.removed]
        if self.note:
            said.append(f"{self.partition}: {self.note}")
        if self.skipped:
            said.append(f"{self.partition}: not migrated: {self.skipped}")
        return said


@dataclass
class Summary:
    """The partitions of a migration: changed, already current, left as they were."""

    changes: list[Change] = field(default_factory=list)
    current: int = 0

    @property
    def migrated(self) -> int:
        return sum(1 for c in self.changes if (c.renamed or c.removed) and not c.skipped)

    @property
    def skipped(self) -> int:
        return sum(1 for c in self.changes if c.skipped)


def migrate(
    root: str | os.PathLike, *, dry_run: bool = False, progress: Callable[[Change], None] | None = None
) -> Summary:
    """Migrate every published partition under ``root`` (a folder or an ``s3://`` URL).

    ``progress`` hears of each partition that changed (or would, with
    ``dry_run``) as soon as it has. Raises StorageError (S3) or OSError (a
    local file that cannot be read or written) at the first partition that
    cannot be migrated; the partitions before it are migrated.
    """
    summary = Summary()
    for change in _migrate_s3(root, dry_run) if is_s3(root) else _migrate_local(Path(root), dry_run):
        if change is None:
            summary.current += 1
            continue
        summary.changes.append(change)
        if progress is not None:
            progress(change)
    return summary


def _document(text: bytes) -> dict | None:
    """A ``_SUCCESS`` document as JSON, or None (an empty Hadoop marker, or not ours)."""
    try:
        doc = json.loads(text) if text.strip() else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _named(doc: dict | None) -> str | None:
    """The sidecar a ``_SUCCESS`` document names, if it names one."""
    entry = flat.read_manifest(doc.get("flat")) if doc is not None else None
    return entry[0] if entry is not None else None


def _renamed(doc: dict, new: str) -> bytes:
    """The ``_SUCCESS`` document naming ``new`` as its sidecar, written as ``storage`` writes it."""
    doc = dict(doc, flat=dict(doc["flat"], file=new))
    return _json_bytes(doc)


# -- local disk ------------------------------------------------------------------


def _migrate_local(root: Path, dry_run: bool):
    if not root.is_dir():
        raise FileNotFoundError(2, "no such folder", str(root))
    for folder in sorted(root.iterdir()):
        if PARTITION_RE.match(folder.name) and folder.is_dir() and (folder / SUCCESS).exists():
            try:
                change = _migrate_local_partition(folder, dry_run)
            except OSError as e:  # name the file within the partition, not just its name
                where = folder / e.filename if isinstance(e.filename, str) else folder
                raise OSError(e.errno, e.strerror, str(where)) from None
            yield change


def _migrate_local_partition(folder: Path, dry_run: bool) -> Change | None:
    # Every step goes through one descriptor of the folder: should a run swap
    # in a new version meanwhile, the steps land in the old one (which that
    # run then removes) and never touch the new one.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return _migrate_in(folder.name, fd, dry_run)
    finally:
        os.close(fd)


def _migrate_in(part: str, fd: int, dry_run: bool) -> Change | None:
    """Migrate the partition folder open as ``fd``, named ``part``."""
    text = _read(SUCCESS, fd)
    doc = _document(text)
    named = _named(doc)
    change = Change(part)
    if named is not None and flat.is_legacy_name(named):
        new = flat.current_name(named)
        if not _exists(named, fd):
            # Readers answer from the maps without it; only a new run can rebuild it.
            change.note = f"_SUCCESS names {named}, which is missing: queries read the part files (slower)"
        else:
            if not dry_run:
                _link(named, new, fd)
                if _read(SUCCESS, fd) != text:
                    change.skipped = "_SUCCESS changed while migrating (a run of this date?): migrate again"
                    return change
                _replace(SUCCESS, _renamed(doc, new), fd)
            change.renamed, named = (named, new), new
    stale = sorted(n for n in os.listdir(fd) if flat.is_legacy_name(n) and n != named)
    if stale and not dry_run:
        for name in stale:
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                pass
        os.fsync(fd)
    if change.renamed:
        stale.remove(change.renamed[0])
    change.removed = stale
    return change if change.renamed or change.removed or change.note else None


def _exists(name: str, fd: int) -> bool:
    try:
        os.stat(name, dir_fd=fd)
    except FileNotFoundError:
        return False
    return True


def _read(name: str, fd: int) -> bytes:
    with open(name, "rb", opener=lambda path, flags: os.open(path, flags, dir_fd=fd)) as f:
        return f.read()


def _link(source: str, target: str, fd: int) -> None:
    """``target`` becomes another name of ``source`` (a copy where hard links are not supported)."""
    if _exists(target, fd) and os.path.samestat(os.stat(source, dir_fd=fd), os.stat(target, dir_fd=fd)):
        return  # linked by an interrupted migration (and rename() of a file onto itself does nothing)
    temp = f".{target}.tmp-{os.getpid()}"
    try:
        os.unlink(temp, dir_fd=fd)
    except FileNotFoundError:
        pass
    try:
        os.link(source, temp, src_dir_fd=fd, dst_dir_fd=fd)
    except OSError:
        with (
            open(source, "rb", opener=lambda path, flags: os.open(path, flags, dir_fd=fd)) as src,
            open(temp, "wb", opener=lambda path, flags: os.open(path, flags, 0o644, dir_fd=fd)) as dst,
        ):
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
    os.replace(temp, target, src_dir_fd=fd, dst_dir_fd=fd)
    os.fsync(fd)


def _replace(name: str, body: bytes, fd: int) -> None:
    """Replace a file's content at once: readers get the old bytes or the new, never a mix."""
    temp = f".{name}.tmp-{os.getpid()}"
    with open(temp, "wb", opener=lambda path, flags: os.open(path, flags, 0o644, dir_fd=fd)) as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
    os.fsync(fd)


# -- S3 --------------------------------------------------------------------------


def _migrate_s3(root: str, dry_run: bool):
    root = location.normalize(root)
    for part, objects in sorted(_partitions(root, location.list_objects(root)).items()):
        if SUCCESS in objects:
            yield _migrate_s3_partition(location.join(root, part), part, objects, dry_run)


def _migrate_s3_partition(folder: str, part: str, objects: dict[str, dict], dry_run: bool) -> Change | None:
    fs = location.s3_filesystem()
    success = location.join(folder, SUCCESS)
    text = _read_s3_text(success)
    if text is None:  # deleted since the listing
        return None
    doc = _document(text)
    named = _named(doc)
    change = Change(part)
    # Sidecars under an old name are ours to delete when not newer than this
    # _SUCCESS: the published version's, or what runs before it left.
    since: datetime | None = objects[SUCCESS].get("LastModified")
    if named is not None and flat.is_legacy_name(named):
        new = flat.current_name(named)
        if named not in objects:
            change.note = f"_SUCCESS names {named}, which is missing: queries read the part files (slower)"
        else:
            if not dry_run:
                with s3_errors(folder, "migrate"):
                    fs.copy(location.join(folder, named), location.join(folder, new))
                    if _read_s3_text(success) != text:
                        change.skipped = "_SUCCESS changed while migrating (a run of this date?): migrate again"
                        return change
                    fs.pipe_file(success, _renamed(doc, new))
            change.renamed, named = (named, new), new
    stale = sorted(
        n
        for n, info in objects.items()
        if flat.is_legacy_name(n)
        and n != named
        and (
            (change.renamed and n == change.renamed[0])
            or (since is not None and info.get("LastModified") is not None and info["LastModified"] <= since)
        )
    )
    if stale and not dry_run:
        bucket, prefix = location.split_s3(folder)
        with s3_errors(folder, "migrate"):
            for name in stale:
                fs.call_s3("delete_object", Bucket=bucket, Key=f"{prefix}/{name}" if prefix else name)
    if change.renamed:
        stale.remove(change.renamed[0])
    change.removed = stale
    return change if change.renamed or change.removed or change.note else None
