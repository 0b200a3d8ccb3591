"""The flat sidecar of a partition: the same rows, plus one plain column per map key.

Why it exists: a query such as ``GROUP BY dimensions['channel']`` over a month
of aggregates spends 85-90 % of its time in DuckDB decoding every key and
value of the two MAP columns from Parquet, to look up two or three of them.
SPEC section 6 fixes the part files to exactly three columns, so the plain
columns cannot go there; they go to a second file of the partition folder,
written by ``storage.publish_partition`` beside the part files and published
with them (named in ``_SUCCESS``).

The sidecar holds ``activity_date``, ``dimensions`` and ``stats`` (so it can
answer any query on its own), in the order of the part files, then one
column per key of each map that occurs in the partition, named as the
subscript reads in SQL (``dimensions['channel']``, ``stats['usage_hours']``:
no such name can clash with a real column) and holding the map's value for
that key, or NULL where the row's map lacks the key, i.e. exactly what the
subscript answers.

Its name is ``_flat.parquet.sidecar`` (on S3 ``_flat-<version>.parquet.sidecar``):
Parquet inside, and seen by no reader that finds a partition's data files by
listing its folder, so that such readers count every aggregate once:

- it starts with ``_``, which readers of a folder skip as metadata (Hive,
  Trino, Spark, Athena, ``pyarrow.dataset`` and pandas; polars with
  ``hidden_file_prefix="_"``), as they skip ``_SUCCESS`` and ``_report.json``;
- it does not end in ``.parquet``, so globs such as ``*/*.parquet`` or
  ``**/*.parquet`` (DuckDB's ``read_parquet``, polars' ``scan_parquet``, a
  ``glob`` fed to pandas) do not match it.

The name still says what the file is: the flat copy (``_flat``), in Parquet,
riding along with the part files (``sidecar``). Our own readers open it by
the name ``_SUCCESS`` records, never by a pattern.

Earlier versions named it ``_flat.parquet`` (``_flat-<version>.parquet`` on
S3), which those globs read as data: every aggregate counted twice. Their
partitions still read right through ``_SUCCESS``; ``crash-aggregates
migrate`` (``migrate.py``) renames their flat files to the current name,
which is the old one plus ``.sidecar``.

One concept, one name: ``_SUCCESS`` names the file under ``flat``,
``storage.FlatSidecar`` is a published partition's, the internal view
``crash_aggregates_flat`` reads them (``sql/engine.py``) and
``sql/flat_view.py`` points queries at that view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pyarrow is imported where tables are built
    import pyarrow as pa

# pyarrow is imported where the tables are built, so that the names and
# manifests here cost no import (storage reads them before any publish).

#: The map columns that get flat columns, in the order the flat columns follow.
MAPS = ("dimensions", "stats")
PREFIX = "_flat"
#: Parquet inside, but not ``.parquet`` at the end: globs for data files skip it.
SUFFIX = ".parquet.sidecar"
#: The ending earlier versions used, which ``*.parquet`` globs read as data.
LEGACY_SUFFIX = ".parquet"


def file_name(version: str | None = None) -> str:
    """The sidecar's file name: fixed on a local disk, one per version on S3.

    >>> file_name(), file_name("20160305T000000000000Z-abc1234")
    ('_flat.parquet.sidecar', '_flat-20160305T000000000000Z-abc1234.parquet.sidecar')
    """
    return f"{PREFIX}-{version}{SUFFIX}" if version else PREFIX + SUFFIX


def is_file_name(name: str) -> bool:
    """Whether a file name is a sidecar's, as this version names them or as earlier ones did.

    >>> [is_file_name(n) for n in ("_flat.parquet.sidecar", "_flat-v1.parquet", "_flatten.parquet", "part-0.parquet")]
    [True, True, False, False]
    """
    for suffix in (SUFFIX, LEGACY_SUFFIX):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem == PREFIX or stem.startswith(PREFIX + "-")
    return False


def is_legacy_name(name: str) -> bool:
    """Whether a file name is a sidecar's as earlier versions named them (``*.parquet``, read by globs).

    >>> is_legacy_name("_flat.parquet"), is_legacy_name("_flat-v1.parquet"), is_legacy_name("_flat.parquet.sidecar")
    (True, True, False)
    """
    return name.endswith(LEGACY_SUFFIX) and is_file_name(name)


def current_name(legacy: str) -> str:
    """The name this version gives the sidecar an earlier one named ``legacy``.

    >>> current_name("_flat.parquet"), current_name("_flat-20160305T000000000000Z-abc1234.parquet")
    ('_flat.parquet.sidecar', '_flat-20160305T000000000000Z-abc1234.parquet.sidecar')
    """
    return legacy[: -len(LEGACY_SUFFIX)] + SUFFIX


def column_name(map_name: str, key: str) -> str:
    """The flat column of a map key: the subscript as SQL writes it.

    >>> column_name("dimensions", "channel"), column_name("stats", "it's")
    ("dimensions['channel']", "stats['it''s']")
    """
    quoted = key.replace("'", "''")
    return f"{map_name}['{quoted}']"


def usable_keys(keys) -> list[str]:
    """The keys that may have a flat column, sorted: those no other key equals but for case.

    DuckDB matches column names regardless of case, so ``Channel`` and
    ``channel`` could not both be columns; such keys are left to the map.

    >>> usable_keys(["os", "channel", "Country", "country", "channel"])
    ['channel', 'os']
    """
    folded: dict[str, set[str]] = {}
    for key in keys:
        folded.setdefault(key.lower(), set()).add(key)
    return sorted(next(iter(same)) for same in folded.values() if len(same) == 1)


def schema(base: pa.Schema, keys: dict[str, list[str]]) -> pa.Schema:
    """The sidecar's schema: the part files' columns, then the flat columns of ``keys`` (per map)."""
    import pyarrow as pa

    fields = list(base)
    for map_name in MAPS:
        value_type = base.field(map_name).type.item_type
        fields += [pa.field(column_name(map_name, k), value_type) for k in keys.get(map_name, ())]
    return pa.schema(fields)


def flat_table(table: pa.Table, by_key: dict | None = None) -> tuple[pa.Table, dict[str, list[str]]]:
    """The sidecar of a partition's rows, and the keys it has a column for (per map).

    ``by_key``: for the maps it names, what ``_values_by_key`` would find,
    known already to the caller that built the maps (``storage.partition_rows``).
    """
    import pyarrow as pa

    keys: dict[str, list[str]] = {}
    columns = list(table.columns)
    for map_name in MAPS:
        values = by_key[map_name] if by_key and map_name in by_key else _values_by_key(table.column(map_name))
        keys[map_name] = usable_keys(values)
        columns += [values[k] for k in keys[map_name]]
    return pa.Table.from_arrays(columns, schema=schema(table.schema, keys)), keys


def _values_by_key(column: pa.ChunkedArray) -> dict[str, pa.Array]:
    """``{key: the value of that key in each row, or null}`` for every key of a map column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    maps = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    # As a list of (key, value) structs, the entries can be flattened with the
    # row each one belongs to (pyarrow has no such kernels for maps).
    entries_type = pa.list_(pa.struct([maps.type.key_field, maps.type.item_field]))
    lists = maps.cast(entries_type)
    entries = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists).cast(pa.int64())
    # Fields by position (key, value), whatever the writer called them.
    keys = pc.struct_field(entries, [0]).dictionary_encode()
    # One stable sort by key, then each key's entries are a contiguous run,
    # still in row order: one pass for all keys instead of one per key.
    order = pc.sort_indices(keys.indices)
    rows, values = rows.take(order), pc.struct_field(entries, [1]).take(order)
    counts = {c["values"]: c["counts"] for c in pc.value_counts(keys.indices).to_pylist()}
    every_row = pc.indices_nonzero(pa.repeat(True, len(maps))).cast(pa.int64())
    found, start = {}, 0
    for code, key in enumerate(keys.dictionary.to_pylist()):
        n = counts.get(code, 0)
        run_rows, run_values = rows.slice(start, n), values.slice(start, n)
        if run_rows.equals(every_row):  # the common case: every row has the key once
            found[key] = run_values
        else:
            # Where each row's value sits in this key's run (null: the row lacks
            # the key); of a key that occurs twice in one map the first counts.
            found[key] = run_values.take(pc.index_in(every_row, value_set=run_rows))
        start += n
    return found


def manifest(file: str, keys: dict[str, list[str]]) -> dict:
    """The ``flat`` entry of ``_SUCCESS``: the sidecar's name and the keys it has a column for.

    Readers build their view of the sidecars from it without opening them.
    """
    return {"file": file, "keys": {m: list(keys.get(m, ())) for m in MAPS}}


def read_manifest(entry) -> tuple[str, dict[str, tuple[str, ...]]] | None:
    """The sidecar's name and keys from a ``flat`` entry of ``_SUCCESS``; None if absent or malformed."""
    if not isinstance(entry, dict):
        return None
    name, keys = entry.get("file"), entry.get("keys")
    if not (isinstance(name, str) and is_file_name(name) and "/" not in name and isinstance(keys, dict)):
        return None
    found = {}
    for map_name in MAPS:
        listed = keys.get(map_name, [])
        if not (isinstance(listed, list) and all(isinstance(k, str) for k in listed)):
            return None
        found[map_name] = tuple(listed)
    return name, found
