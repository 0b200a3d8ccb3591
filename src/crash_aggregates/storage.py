"""Partitions: the aggregates as Parquet, published, found and read back, in any store.

What a published partition is made of (``part-*.parquet``, the flat sidecar,
``_report.json`` and the ``_SUCCESS`` manifest naming them) is ``layout.py``;
how a store gets a new version there atomically is the store's own protocol
(``stores/local.py``: a ``renameat2`` exchange of a staging folder;
``stores/s3.py``: versioned file names committed by ``_SUCCESS``). This
module is the one door to both: each function takes a root (a local folder
or a URL) and asks its store (``stores.store_for``).

Readers of this module's output (the ``sql`` command, the dashboard, the
watchdog):

- :func:`published_partitions` returns ``{"YYYY-MM-DD": [data files]}``: each
  file is a ``Path`` under a local root and a URL (``scheme://...``)
  under a store's URL; ``str(file)`` is what DuckDB's ``read_parquet`` and
  pyarrow take (the Hive folder gives ``submission_date``);
  :func:`published` returns the same as :class:`Partition` objects, which
  also give the partition's :class:`FlatSidecar` (or None);
- DuckDB reads the URLs once :func:`register_duckdb` has given the
  connection the store's filesystem (the same credentials and endpoint as
  the job). Call it before locking the connection's configuration;
  ``allowed_paths`` may list the URLs as they are;
- pyarrow reads them through :func:`arrow_filesystem` and :func:`arrow_path`;
- :func:`read_report` returns the report of the published version.
"""

from __future__ import annotations

import functools
import json
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from . import flat
from .layout import (  # noqa: F401 - the names readers of this module know them by
    PARTITION_RE,
    REPORT,
    SUCCESS,
    FlatSidecar,
    Partition,
    Version,
    embedded_report,
    new_version,
    success_document,
)
from .location import partition_name
from .stores import PAUSE_ENV, WarnFn, no_warning, store_for  # noqa: F401 - PAUSE_ENV: the test hook

if TYPE_CHECKING:  # annotations only: pyarrow is imported where tables are built
    import pyarrow as pa


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


def clean_staging(root: str | os.PathLike, warn: WarnFn | None = None) -> list[str]:
    """Remove what dead runs left under ``root``; returns the names removed.

    Local: the hidden staging folders. S3: data files that no ``_SUCCESS``
    names, once old. Raises StorageError when the root cannot be used (wrong
    credentials, no such bucket, no endpoint), so it doubles as the job's
    first check of its output location.
    """
    return store_for(root).clean_staging(warn)


def publish_partition(
    root: str | os.PathLike, day: date, table: pa.Table, report: dict, warn: WarnFn | None = None
) -> Path | str:
    """Publish a partition as a whole; returns where it is (a Path, or a URL).

    Raises OSError (StorageError for a store that cannot be used) with the
    previous version in place. ``warn`` hears of trouble after the commit
    point (old files that could not be deleted); the new version is
    published all the same.
    """
    flat_rows, keys = flat.flat_table(table)
    version = Version(day, new_version(), table, flat_rows, keys, report)
    return store_for(root).publish(version, warn or no_warning)


# -- reading -------------------------------------------------------------------


def success_files(partition: str | os.PathLike) -> list[Path] | list[str] | None:
    """The data files a published partition names, or None if it is not published.

    ``partition`` is a local folder (files are Paths) or a URL (files are URLs).
    """
    found = published_partition(partition)
    return found.files if found is not None else None


def published_partition(partition: str | os.PathLike) -> Partition | None:
    """What the ``_SUCCESS`` of a partition folder (local or URL) names; None if it is not published."""
    store = store_for(partition)
    return store.published_partition(store.root)


def published_partitions(root: str | os.PathLike) -> dict[str, list[Path] | list[str]]:
    """``{"YYYY-MM-DD": [data files]}`` for every partition that has ``_SUCCESS``.

    Local root: Paths, ``{}`` if the folder does not exist. URL: URLs (see
    the module docstring for reading them), ``{}`` if nothing is under the
    prefix; StorageError if the bucket or the store cannot be used.
    """
    return {day: partition.files for day, partition in published(root).items()}


def published(root: str | os.PathLike) -> dict[str, Partition]:
    """``{"YYYY-MM-DD": Partition}`` for every partition that has ``_SUCCESS`` (see :func:`published_partitions`)."""
    return store_for(root).published()


def published_version(root: str | os.PathLike) -> tuple:
    """What identifies the published dataset: each partition's ``_SUCCESS`` marker, as cheaply as it can be seen.

    Publishing, replacing or removing a partition changes it. Local: name,
    size, inode and modification time of each marker (one ``stat`` each);
    S3: the markers' ETags and dates from one listing.
    """
    return store_for(root).published_version()


def read_report(root: str | os.PathLike, day: date) -> dict | None:
    """The report of the published version of a date (from its _SUCCESS), else _report.json."""
    store = store_for(root)
    folder = partition_name(day)
    marker = store.read(store.join(folder, SUCCESS))
    if marker is not None and (embedded := embedded_report(marker)) is not None:
        return embedded
    text = store.read(store.join(folder, REPORT))
    return json.loads(text) if text is not None else None


# -- other engines reading the published files ------------------------------------


def register_duckdb(conn, root: str | os.PathLike) -> None:
    """Let a DuckDB connection read the files of ``root`` (nothing to do locally).

    For S3, this project's S3 filesystem (same credentials chain, endpoint and
    retries as the job); call it before ``SET lock_configuration = true``.
    """
    store_for(root).register_duckdb(conn)


def arrow_filesystem(root: str | os.PathLike):
    """A pyarrow filesystem for the files of ``root``: use it with :func:`arrow_path`.

    ``pq.read_table(arrow_path(f), filesystem=arrow_filesystem(root))`` reads a
    file that :func:`published_partitions` returned, local or in a store.
    """
    return store_for(root).arrow_filesystem()


def arrow_path(file: str | os.PathLike) -> str:
    """The path of a data file as :func:`arrow_filesystem` wants it (no URL scheme)."""
    return store_for(file).arrow_path(file)
