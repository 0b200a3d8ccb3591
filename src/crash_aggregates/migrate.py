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
from collections.abc import Callable
from dataclasses import dataclass, field

from . import flat
from .layout import SUCCESS, json_bytes
from .stores import PartitionFolder, store_for


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
    """Migrate every published partition under ``root`` (a folder or the URL of a store).

    ``progress`` hears of each partition that changed (or would, with
    ``dry_run``) as soon as it has. Raises StorageError (S3) or OSError (a
    local file that cannot be read or written) at the first partition that
    cannot be migrated; the partitions before it are migrated.
    """
    summary = Summary()
    for change in store_for(root).update_published(lambda folder: migrate_partition(folder, dry_run)):
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
    return json_bytes(doc)


def migrate_partition(folder: PartitionFolder, dry_run: bool) -> Change | None:
    """Migrate one published partition (None: it is in the current layout), through its store's folder."""
    text = folder.read(SUCCESS)
    if text is None:  # gone since it was listed: replaced by a run, in the current layout
        return None
    doc = _document(text)
    named = _named(doc)
    change = Change(folder.name)
    if named is not None and flat.is_legacy_name(named):
        new = flat.current_name(named)
        if not folder.has(named):
            # Readers answer from the maps without it; only a new run can rebuild it.
            change.note = f"_SUCCESS names {named}, which is missing: queries read the part files (slower)"
        else:
            if not dry_run:
                folder.copy(named, new)
                if folder.read(SUCCESS) != text:
                    change.skipped = "_SUCCESS changed while migrating (a run of this date?): migrate again"
                    return change
                folder.replace(SUCCESS, _renamed(doc, new))
            change.renamed, named = (named, new), new
    stale = sorted(
        n
        for n in folder.names()
        if flat.is_legacy_name(n)
        and n != named
        and ((change.renamed is not None and n == change.renamed[0]) or folder.deletable(n))
    )
    if stale and not dry_run:
        folder.delete(stale)
    if change.renamed:
        stale.remove(change.renamed[0])
    change.removed = stale
    return change if change.renamed or change.removed or change.note else None
