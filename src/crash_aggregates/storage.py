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
import itertools
import json
import os
from array import array
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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


def aggregates_table(aggregates: Mapping, dimension_names: list[str], stat_columns: list[str]) -> pa.Table:
    """Rows sorted by key, absent dimensions left out of the map (SPEC section 6).

    ``aggregates`` maps (activity_date, dimension values) to stat sums.
    Rows are ordered by activity date, then by each dimension's value with
    absent ones last; Arrow sorts them (UTF-8 byte order is code point order).

    >>> table = aggregates_table({("2016-03-02", ("b", None)): [1.0], ("2016-03-02", (None, "x")): [2.0],
    ...                           ("2016-03-01", ("c", "y")): [3.0]}, ["channel", "os"], ["ping_count"])
    >>> table["dimensions"].to_pylist()
    [[('channel', 'c'), ('os', 'y')], [('channel', 'b')], [('os', 'x')]]
    """
    return partition_rows(aggregates, dimension_names, stat_columns).table


class PartitionRows(NamedTuple):
    """A partition's rows: the part files' table, and each map key's values as a column (the flat sidecar's)."""

    table: pa.Table
    by_key: dict[str, dict[str, pa.Array]]  # map name -> key -> its value in each row, or null


#: Rows of the dimension map laid out per block (bounds the index arrays made at a time).
_BLOCK_ROWS = 1 << 16


def partition_rows(
    aggregates: Mapping, dimension_names: list[str], stat_columns: list[str], clear: bool = False
) -> PartitionRows:
    """``aggregates_table``, and the flat columns with it (``flat.flat_table`` takes them).

    Every column is built from flat arrays (numpy and Arrow), never a Python
    object per map entry: a day of 400,000 aggregates has 11 million entries.
    ``aggregates`` may be an ``aggregate.Sums`` (anything with its
    ``columns(clear)``); ``clear`` lets it free its keys as their columns are made.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = load_writer()
    if hasattr(aggregates, "columns"):
        key_columns, values = aggregates.columns(clear=clear)
    else:
        keys = list(aggregates)
        key_columns = list(zip(*((key[0], *key[1]) for key in keys), strict=True))
        values = array("d", itertools.chain.from_iterable(aggregates[key] for key in keys))
        del keys
    n, k, d = len(key_columns[0]) if key_columns else 0, len(stat_columns), len(dimension_names)
    if not key_columns:
        key_columns = [()] * (1 + d)

    # Sort: activity date, then each dimension, absent values last.
    names = [f"k{j}" for j in range(1 + d)]
    columns = []
    for j in range(1 + d):
        columns.append(_strings(key_columns[j]))
        key_columns[j] = None  # its strings are freed as soon as Arrow holds a copy
    del key_columns
    order = pc.sort_indices(pa.table(columns, names=names), sort_keys=[(c, "ascending", "at_end") for c in names])
    columns = [column.take(order) for column in columns]
    sums = np.frombuffer(values, np.float64).reshape(n, k) if n and k else np.zeros((n, k))
    sums = sums[_as_numpy(order, "u8")]
    del values, order
    activity, dims = columns[0], columns[1:]

    # Dimensions map: each row's present dimensions, in the configured order.
    present = np.zeros((n, d), bool)
    for j, column in enumerate(dims):
        present[:, j] = _as_numpy(column.is_valid().cast(pa.uint8()), "u1")
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(present.sum(axis=1, dtype=np.int32), out=offsets[1:])
    which = np.empty(offsets[-1], np.int32)  # the dimension of each entry
    where = np.empty(offsets[-1], np.int64)  # and its row in the dimension columns laid end to end
    for start in range(0, n if d else 0, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        rows, dimension = np.divmod(np.flatnonzero(present[start:stop]), d)
        which[offsets[start] : offsets[stop]] = dimension
        where[offsets[start] : offsets[stop]] = dimension * n + rows + start
    del present
    dimension_keys = _strings(dimension_names).take(_numbers(which))
    dimension_values = pa.chunked_array(dims, pa.string()).take(_numbers(where)).combine_chunks() if d else _strings([])
    del which, where
    dimensions = pa.MapArray.from_arrays(_numbers(offsets), dimension_keys, dimension_values, type=schema[1].type)
    del dimension_keys, dimension_values

    # Stats map: every stat in every row, in the configured order.
    stat_keys = _strings(stat_columns).take(_numbers(np.tile(np.arange(k, dtype=np.int32), n)))
    stats = pa.MapArray.from_arrays(
        _numbers(np.arange(0, n * k + 1, k, dtype=np.int32) if k else np.zeros(n + 1, np.int32)),
        stat_keys,
        _numbers(sums.reshape(-1)),
        type=schema[2].type,
    )
    del stat_keys

    table = pa.table([activity, dimensions, stats], schema=schema)
    by_key = {
        "dimensions": {
            name: column for name, column in zip(dimension_names, dims, strict=True) if column.null_count < n
        },
        "stats": {name: _numbers(sums[:, i]) for i, name in enumerate(stat_columns)} if n else {},
    }
    return PartitionRows(table, by_key)


def _strings(values) -> pa.Array:
    """A string array of Python strings (or None).

    Not ``pa.array``: given anything, it imports pandas (when installed) to
    ask whether it is a pandas object, ~40 MB for nothing.
    """
    import pyarrow as pa

    builder = getattr(pa.lib, "StringBuilder", None)
    if builder is None:  # (not in every pyarrow)
        return pa.array(values, pa.string())
    strings = builder()
    strings.append_values(values)
    return strings.finish()


def _numbers(values) -> pa.Array:
    """A numpy array of int32, int64 or float64 as an Arrow array, without a copy (nor pandas: ``_strings``)."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    arrow_type = {"i4": pa.int32(), "i8": pa.int64(), "f8": pa.float64()}[values.dtype.str[1:]]
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def _as_numpy(values: pa.Array, dtype: str):
    """An Arrow array of fixed-width numbers without nulls, as a numpy view (``to_numpy`` imports pandas)."""
    import numpy as np

    dtype = np.dtype(dtype)
    assert values.type.bit_width == 8 * dtype.itemsize and not values.null_count
    return np.frombuffer(values.buffers()[1], dtype, len(values), values.offset * dtype.itemsize)


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
    root: str | os.PathLike, day: date, table: pa.Table | PartitionRows, report: dict, warn: WarnFn | None = None
) -> Path | str:
    """Publish a partition as a whole; returns where it is (a Path, or a URL).

    ``table``: the part files' rows, or ``partition_rows``' answer (which
    saves working out the flat sidecar's columns again).
    Raises OSError (StorageError for a store that cannot be used) with the
    previous version in place. ``warn`` hears of trouble after the commit
    point (old files that could not be deleted); the new version is
    published all the same.
    """
    by_key = None
    if isinstance(table, PartitionRows):
        table, by_key = table
    flat_rows, keys = flat.flat_table(table, by_key)
    del by_key
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
