"""The layout of a published dataset, the same in every store: partition folders, their files, ``_SUCCESS``.

A partition is ``<root>/submission_date=YYYY-MM-DD/`` holding ``part-*.parquet``,
the flat sidecar (``flat.py``), ``_report.json`` and ``_SUCCESS``, written
last: the partition's manifest, one small JSON document::

    {"files": ["part-....parquet"], "submission_date": "2016-03-05",
     "version": "<run id>", "report": {... the _report.json of this version ...},
     "flat": {"file": "_flat....parquet.sidecar", "keys": {"dimensions": [...], "stats": [...]}}}

A reader of this project sees a partition only when it has ``_SUCCESS`` and
reads exactly the files it names (an empty ``_SUCCESS``, as Hadoop writes,
means every ``part-*.parquet`` file of the folder), and takes the report
from it, so data and report always belong to one version. ``files`` lists
the data files only: they alone are SPEC's layout, and what a table
definition or manifest for another engine should list. The sidecar is named
under ``flat``; partitions published before sidecars existed have no
``flat`` entry, and readers then use the part files alone.

How a store gets a new version there without a reader ever seeing a mix is
the store's own protocol (``stores/``); this module holds what they share:
the names, the document, and the encoding of a version's files. No I/O.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import flat

if TYPE_CHECKING:  # annotations only: pyarrow is imported where tables are written
    import pyarrow as pa

SUCCESS = "_SUCCESS"
REPORT = "_report.json"
PARTITION_RE = re.compile(r"submission_date=(\d{4}-\d{2}-\d{2})\Z")


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


@dataclass(frozen=True)
class Version:
    """One version of a partition, ready to publish: its rows, their flat sidecar, its report."""

    day: date
    id: str  # new_version(): the S3 store puts it in its file names
    data: pa.Table
    flat: pa.Table
    flat_keys: dict[str, list[str]]
    report: dict

    def success(self, files: list[str], sidecar: str) -> bytes:
        """This version's ``_SUCCESS``, naming its data files and its sidecar as the store named them."""
        return json_bytes(
            success_document(self.day, files, self.id, self.report, flat.manifest(sidecar, self.flat_keys))
        )


def write_parquet(table: pa.Table, where) -> None:
    """Write a part file or a sidecar (a path or a writable buffer)."""
    import pyarrow.parquet as pq

    pq.write_table(table, where, compression="snappy")


def parquet_bytes(table: pa.Table) -> bytes:
    """A part file or a sidecar as bytes (for stores that upload whole objects)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    write_parquet(table, sink)
    return sink.getvalue().to_pybytes()


def json_bytes(doc: dict) -> bytes:
    """``_SUCCESS`` and ``_report.json`` as written (indented, keys sorted)."""
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def is_data_name(name: str) -> bool:
    """Files of a version, which a replace or a cleanup deletes when unnamed: data files and sidecars."""
    return name.startswith("part-") or flat.is_file_name(name)


def is_part_file(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")


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
class Manifest:
    """What a _SUCCESS document names: data files (None: an empty Hadoop marker) and the sidecar."""

    files: list[str] | None
    sidecar: tuple[str, dict[str, tuple[str, ...]]] | None

    def names(self) -> list[str]:
        """Every file of the version: the data files and the sidecar."""
        return [*(self.files or []), *([self.sidecar[0]] if self.sidecar else [])]

    def partition(self, join: Callable[[str], Path | str], folder_names: Callable[[], list[str]]) -> Partition:
        """The Partition, with ``join`` making a file name a Path or URL.

        ``folder_names`` lists the partition folder, asked only for a
        Hadoop-style empty marker (then every part file counts).
        """
        if self.files is None:
            return Partition([join(n) for n in sorted(n for n in folder_names() if is_part_file(n))])
        sidecar = FlatSidecar(join(self.sidecar[0]), self.sidecar[1]) if self.sidecar else None
        return Partition([join(n) for n in self.files], sidecar)


def read_manifest(text: bytes | str) -> Manifest:
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
        return Manifest(None, None)
    files = [n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]
    return Manifest(files, flat.read_manifest(doc.get("flat")))


def embedded_report(marker: bytes) -> dict | None:
    """The report a ``_SUCCESS`` document carries, if it carries one."""
    try:
        report = json.loads(marker).get("report")
    except (ValueError, AttributeError):
        return None
    return report if isinstance(report, dict) else None
