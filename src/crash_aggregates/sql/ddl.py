"""DDL for reading the aggregates from Trino, Hive or Spark SQL.

Each flavour prints two statements: the table over the dataset's location,
with the Parquet files' three columns and ``submission_date`` (DATE) as the
partition column taken from the ``submission_date=YYYY-MM-DD`` folders, and
the statement that registers partitions added since (run it after each
day's job, in place of the original system's import cron job).

Those engines read every data file of a registered partition folder; they
skip names starting with ``_`` or ``.`` (``_SUCCESS``, ``_report.json``, the
job's hidden staging folders). Because the job swaps a partition folder in
as a whole, a partition folder only ever holds the files of one published
version.

>>> print(ddl("hive", "s3://bucket/crash-aggregates/v1"))  # doctest: +NORMALIZE_WHITESPACE
CREATE EXTERNAL TABLE IF NOT EXISTS crash_aggregates (
  activity_date STRING,
  dimensions MAP<STRING, STRING>,
  stats MAP<STRING, DOUBLE>
)
PARTITIONED BY (submission_date DATE)
STORED AS PARQUET
LOCATION 's3://bucket/crash-aggregates/v1';
<BLANKLINE>
MSCK REPAIR TABLE crash_aggregates;
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import QueryError

DDL_DIALECTS = ("trino", "hive", "spark")
DEFAULT_TABLE = "crash_aggregates"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def location_url(location: str) -> str:
    """A URL as given (``s3://``, ``hdfs://``, ``file:``...); a local path becomes a ``file:`` URL.

    >>> location_url("s3://b/p/")
    's3://b/p/'
    >>> location_url("/data/aggregates")
    'file:///data/aggregates'
    """
    location = location.strip()
    if not location:
        raise QueryError("--location is empty: give the dataset's URL, e.g. s3://bucket/crash-aggregates/v1")
    if "'" in location or any(ord(c) < 32 for c in location):
        raise QueryError(f"--location {location!r} contains a quote or a control character")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", location):
        return location
    return Path(location).expanduser().resolve().as_uri()


def _name_parts(table: str, max_parts: int) -> list[str]:
    parts = table.split(".")
    if len(parts) > max_parts or not all(_IDENT.match(p) for p in parts):
        shapes = ["table", "schema.table", "catalog.schema.table"][:max_parts]
        raise QueryError(
            f"--table {table!r} is not a valid name here: use {' or '.join(shapes)}, "
            "each made of letters, digits and underscores"
        )
    return parts


def ddl(dialect: str, location: str, table: str = DEFAULT_TABLE) -> str:
    url = location_url(location)
    if dialect == "trino":
        return _trino(url, table)
    if dialect == "hive":
        name = ".".join(_name_parts(table, 2))
        return (
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n"
            "  activity_date STRING,\n"
            "  dimensions MAP<STRING, STRING>,\n"
            "  stats MAP<STRING, DOUBLE>\n"
            ")\n"
            "PARTITIONED BY (submission_date DATE)\n"
            "STORED AS PARQUET\n"
            f"LOCATION '{url}';\n"
            "\n"
            f"MSCK REPAIR TABLE {name};\n"
        )
    if dialect == "spark":
        # A data source table: runs in any Spark SQL session, with or without
        # Hive support; a table with a LOCATION is external (DROP TABLE keeps the files).
        name = ".".join(_name_parts(table, 2))
        return (
            f"CREATE TABLE IF NOT EXISTS {name} (\n"
            "  activity_date STRING,\n"
            "  dimensions MAP<STRING, STRING>,\n"
            "  stats MAP<STRING, DOUBLE>,\n"
            "  submission_date DATE\n"
            ")\n"
            "USING PARQUET\n"
            "PARTITIONED BY (submission_date)\n"
            f"LOCATION '{url}';\n"
            "\n"
            f"MSCK REPAIR TABLE {name};\n"
        )
    raise QueryError(f"unknown DDL dialect {dialect!r} (known: {', '.join(DDL_DIALECTS)})")


def _trino(url: str, table: str) -> str:
    parts = _name_parts(table, 3)
    catalog = parts[0] if len(parts) == 3 else None
    schema = parts[-2] if len(parts) >= 2 else "default"
    name = parts[-1]
    full = ".".join([*([catalog] if catalog else []), schema, name])
    procedure = f"{catalog}.system.sync_partition_metadata" if catalog else "system.sync_partition_metadata"
    return (
        f"CREATE TABLE IF NOT EXISTS {full} (\n"
        "  activity_date VARCHAR,\n"
        "  dimensions MAP(VARCHAR, VARCHAR),\n"
        "  stats MAP(VARCHAR, DOUBLE),\n"
        "  submission_date DATE\n"
        ")\n"
        "WITH (\n"
        f"  external_location = '{url}',\n"
        "  format = 'PARQUET',\n"
        "  partitioned_by = ARRAY['submission_date']\n"
        ");\n"
        "\n"
        f"CALL {procedure}('{schema}', '{name}', 'FULL');\n"
    )
