"""The DuckDB side: the ``crash_aggregates`` views, the engine fence, time limit, streaming.

The view reads exactly the data files that the ``_SUCCESS`` markers of the
published partitions name (``storage.published``), with ``submission_date``
taken from the Hive partition folder as a DATE, so DuckDB prunes partitions
on it: a filter on ``submission_date`` never opens the files of other
partitions. The first file of the list is an empty Parquet file with the
project's schema (in a private temporary folder), so binding the view never
depends on a data file: a corrupt file in one partition only disturbs the
queries that read that partition.

A second, internal view, ``crash_aggregates_flat``, has the same rows and
columns plus one flat column per map key that some partition's sidecar has
(``crash_aggregates.flat``): it reads the sidecars, and computes the same
columns from the maps for the partitions that have none (published before
sidecars existed). Queries use it through ``flat_view.py``; ``*`` and the
table as users see it stay ``crash_aggregates``. Sidecars with the same keys
are read together, each group behind its own empty schema file, so binding
this view opens no data file either, and a key that a group lacks is NULL
there, as the map's subscript is.

Once the views exist the connection is fenced: external access off (only
the data files and sidecars themselves are allowed), extension loading off,
the configuration locked.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExitCode
from .errors import QueryError, at

DEFAULT_TIMEOUT = 60.0
BATCH_ROWS = 8192
_GLOB_CHARS = set("*?[]{}")
#: The internal view with the flat columns (flat_view.py points queries at it).
FLAT_VIEW = "crash_aggregates_flat"

_schema_dir: Path | None = None
_schema_lock = threading.Lock()


def schema_file(keys: dict[str, tuple[str, ...]] | None = None) -> Path:
    """An empty Parquet file with the aggregates' schema, or a sidecar's with these keys; made once per process."""
    global _schema_dir
    import pyarrow.parquet as pq

    from .. import flat
    from ..storage import SCHEMA

    name = "aggregates"
    if keys is not None:
        name = "flat-" + hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
    with _schema_lock:
        if _schema_dir is None or not _schema_dir.exists():
            _schema_dir = Path(tempfile.mkdtemp(prefix="crash-aggregates-schema-"))
            atexit.register(shutil.rmtree, _schema_dir, True)
        path = _schema_dir / name / "submission_date=1970-01-01" / "empty.parquet"
        if not path.exists():
            path.parent.mkdir(parents=True)
            schema = SCHEMA if keys is None else flat.schema(SCHEMA, keys)
            pq.write_table(schema.empty_table(), path)
        return path


@dataclass
class Dataset:
    """The files the views read: every data file, and the sidecars where partitions have them."""

    #: The data files of every partition: the ``crash_aggregates`` view.
    files: list[str] = field(default_factory=list)
    #: ``(sidecar, its keys per map)`` of the partitions that have a sidecar.
    sidecars: list[tuple[str, dict[str, tuple[str, ...]]]] = field(default_factory=list)
    #: The data files of the partitions without a sidecar.
    plain: list[str] = field(default_factory=list)


def read_dataset(path) -> Dataset:
    """What is published under ``path``, as DuckDB reads it (absolute paths, or a store's URLs)."""
    from ..location import StorageError
    from ..stores import store_for

    store = store_for(path)
    if not store.root_exists():
        raise QueryError(f"no dataset at {path}: not a folder (pass --data PATH or set [data] output in the config)")
    try:
        partitions = store.published()
    except StorageError as e:
        raise QueryError(str(e), ExitCode.FAILED) from None
    except OSError as e:
        raise QueryError(f"cannot read the dataset at {path}: {e.strerror or e}", ExitCode.FAILED) from None
    dataset = Dataset()
    for day, partition in partitions.items():
        for f in partition.files:
            if store.known_missing(f):
                raise QueryError(
                    f"the dataset is damaged: the _SUCCESS of partition {day} names {Path(f).name}, "
                    "which is missing (re-run that date)",
                    ExitCode.FAILED,
                )
        files = [_duckdb_path(store, f) for f in partition.files]
        dataset.files += files
        sidecar = partition.sidecar
        if sidecar is not None and not store.known_missing(sidecar.file):
            dataset.sidecars.append((_duckdb_path(store, sidecar.file), sidecar.keys))
        else:  # none, or a missing one (it is only a copy): the maps answer, only slower
            dataset.plain += files
    return dataset


def _duckdb_path(store, file) -> str:
    """A file as DuckDB is to read it: an absolute path, or the store's URL as it is.

    DuckDB reads a URL through the store's own filesystem (``storage.register_duckdb``).
    """
    text = store.reader_path(file)
    if _GLOB_CHARS & set(text):
        raise QueryError(
            f"cannot read {text}: DuckDB would take the characters {''.join(sorted(_GLOB_CHARS))} "
            "in a file name for a pattern"
        )
    return text


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _read_parquet(files: list[str]) -> str:
    listing = ", ".join(_literal(f) for f in files)
    return f"read_parquet([{listing}], hive_partitioning = true, hive_types = {{'submission_date': DATE}})"


_COLUMNS = "submission_date, activity_date, dimensions, stats"


def view_sql(files: list[str]) -> str:
    """The ``crash_aggregates`` view over the data files (the first one an empty schema file)."""
    return f"CREATE VIEW crash_aggregates AS SELECT {_COLUMNS} FROM {_read_parquet(files)}"


def flat_view_sql(dataset: Dataset) -> tuple[str | None, list[str]]:
    """The ``crash_aggregates_flat`` view and the schema files it reads; None when no partition has a sidecar."""
    from .. import flat
    from .presto import MAP_VALUE_TYPES

    keys = {m: flat.usable_keys({k for _, found in dataset.sidecars for k in found[m]}) for m in flat.MAPS}
    columns = [(m, k, flat.column_name(m, k)) for m in flat.MAPS for k in keys[m]]
    if not columns:
        return None, []
    groups: dict[str, tuple[dict, list[str]]] = {}
    for sidecar, found in dataset.sidecars:
        groups.setdefault(json.dumps(found, sort_keys=True), (found, []))[1].append(sidecar)
    branches, schemas = [], []
    for found, sidecars in groups.values():
        schemas.append(str(schema_file(found)))
        # A key this group has no column for is in none of its partitions: NULL, as the map says.
        picked = [
            _identifier(name) if k in found[m] else f"CAST(NULL AS {MAP_VALUE_TYPES[m].upper()}) AS {_identifier(name)}"
            for m, k, name in columns
        ]
        branches.append(f"SELECT {_COLUMNS}, {', '.join(picked)} FROM {_read_parquet([schemas[-1], *sidecars])}")
    if dataset.plain:
        computed = [f"{m}[{_literal(k)}] AS {_identifier(name)}" for m, k, name in columns]
        branches.append(
            f"SELECT {_COLUMNS}, {', '.join(computed)} FROM {_read_parquet([str(schema_file()), *dataset.plain])}"
        )
    return f"CREATE VIEW {FLAT_VIEW} AS " + " UNION ALL ".join(branches), schemas


def open_connection(path, *, fenced: bool = True):
    """A DuckDB connection with the ``crash_aggregates`` views of the dataset at ``path``."""
    import duckdb

    from ..storage import register_duckdb

    dataset = read_dataset(path)
    schema = str(schema_file())
    flat_view, flat_schemas = flat_view_sql(dataset)
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("SET enable_progress_bar = false")
        conn.execute("SET TimeZone = 'UTC'")
        register_duckdb(conn, path)
        conn.execute(view_sql([schema, *dataset.files]))
        if flat_view is not None:
            conn.execute(flat_view)
        if fenced:
            readable = [schema, *dataset.files, *flat_schemas, *(sidecar for sidecar, _ in dataset.sidecars)]
            allowed = ", ".join(_literal(f) for f in readable)
            conn.execute(f"SET allowed_paths = [{allowed}]")
            conn.execute("SET enable_external_access = false")
            conn.execute("SET autoinstall_known_extensions = false")
            conn.execute("SET autoload_known_extensions = false")
            conn.execute("SET lock_configuration = true")
    except duckdb.Error as e:
        conn.close()
        raise QueryError(f"cannot open the dataset at {path}: {_first_line(e)}", ExitCode.FAILED) from None
    except Exception:
        conn.close()
        raise
    return conn


def flat_columns(conn) -> set[str]:
    """The flat columns the connection's ``crash_aggregates_flat`` view has (none without sidecars)."""
    from .fence import TABLE_COLUMNS

    rows = conn.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ?", [FLAT_VIEW]
    ).fetchall()
    return {name for (name,) in rows} - set(TABLE_COLUMNS)


def check_statement(conn, duck_sql: str) -> None:
    """The engine's own reading of the translated SQL: exactly one SELECT."""
    import duckdb

    try:
        statements = conn.extract_statements(duck_sql)
    except duckdb.Error as e:
        raise QueryError(f"syntax error: {_first_line(e)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError("only one query (SELECT) can run; the data is read-only")


class _Deadline:
    """Interrupts the connection once the time limit has passed, until told to stop."""

    def __init__(self, conn, timeout: float | None):
        self.conn, self.timeout = conn, timeout
        self.expired = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="query-deadline", daemon=True)

    def _watch(self) -> None:
        if self.done.wait(self.timeout):
            return
        self.expired.set()
        while True:
            self.conn.interrupt()
            if self.done.wait(0.1):
                return

    def __enter__(self):
        if self.timeout is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()

    def check(self) -> None:
        if self.expired.is_set():
            raise QueryError(
                f"the query was stopped after its time limit of {self.timeout:g} s (--timeout)", ExitCode.FAILED
            )


class Result:
    """The schema of a running query and its record batches, one at a time."""

    def __init__(self, reader, deadline: _Deadline, explain):
        self.reader, self.deadline, self.explain = reader, deadline, explain
        self.schema = reader.schema

    def __iter__(self) -> Iterator:
        while True:
            self.deadline.check()
            try:
                batch = self.reader.read_next_batch()
            except StopIteration:
                break
            except Exception as e:  # duckdb errors arrive wrapped by Arrow as well
                self.deadline.check()
                raise self.explain(e) from None
            yield batch
        self.deadline.check()  # an interrupted stream may end as if it were complete


@contextmanager
def execute(
    conn,
    duck_sql: str,
    *,
    timeout: float | None,
    sql: str = "",
    tokens=(),
    names=(),
    batch_rows: int = BATCH_ROWS,
    fallback: str | None = None,
    params: dict | None = None,
):
    """Run the query; yields a Result that streams record batches.

    ``fallback``: an equivalent query to run instead if DuckDB cannot bind
    ``duck_sql`` (errors are then the fallback's). ``params``: the values of
    the query's named parameters (``$name``).
    """

    def explain(e: Exception) -> QueryError:
        return describe_error(e, sql, tokens, names)

    reader = None
    with _Deadline(conn, timeout) as deadline:
        try:
            try:
                rel = _relation(conn, duck_sql, fallback, deadline, params)
                if rel is None:
                    raise QueryError("the statement returned no result")
                reader = rel.to_arrow_reader(batch_rows)
            except QueryError:
                raise
            except Exception as e:
                deadline.check()
                raise explain(e) from None
            yield Result(reader, deadline, explain)
        finally:
            if reader is not None:
                reader.close()


def _relation(conn, duck_sql: str, fallback: str | None, deadline: _Deadline, params: dict | None = None):
    """DuckDB's relation for the query, or for the fallback if the query cannot be bound."""
    import duckdb

    try:
        return conn.sql(duck_sql, params=params)
    except duckdb.Error:
        if fallback is None:
            raise
    deadline.check()
    return conn.sql(fallback, params=params)


# -- messages ------------------------------------------------------------------

_PREFIX_RE = re.compile(
    r"^(Binder|Catalog|Parser|Conversion|Invalid Input|Out of Range|IO|Permission|Not implemented|INTERRUPT"
    r"|Invalid Error) Error: "
)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _lines(e: Exception) -> list[str]:
    return [line for line in str(e).strip().splitlines() if line.strip()]


def _find_token(tokens, name: str, sql: str, function: bool = False) -> str:
    wanted = name.lower()
    for i, tok in enumerate(tokens):
        if tok.text.lower() == wanted:
            if function and not (i + 1 < len(tokens) and tokens[i + 1].text == "("):
                continue
            return " at " + at(sql, tok.start)
    return ""


def describe_error(e: Exception, sql: str, tokens, names=()) -> QueryError:
    """One clear line for a DuckDB error, with positions in the user's SQL."""
    import duckdb

    if isinstance(e, QueryError):
        return e
    lines = _lines(e)
    first = lines[0] if lines else type(e).__name__
    rest = " ".join(lines[1:])
    if isinstance(e, duckdb.InterruptException) or first.startswith("INTERRUPT"):
        return QueryError("the query was interrupted", ExitCode.FAILED)
    if m := re.search(r'Referenced column "([^"]+)" not found', first) or re.search(
        r'does not have a column named "([^"]+)"', first
    ):
        name = m.group(1)
        cands = (
            re.findall(r'"([^"]+)"', rest.split("Candidate bindings:", 1)[-1]) if "Candidate bindings" in rest else []
        )
        seen = sorted({c.split(".")[-1] for c in cands} | set(names))
        known = f"; columns here: {', '.join(seen)}" if seen else ""
        return QueryError(f"unknown column {name}{_find_token(tokens, name, sql)}{known}")
    if m := re.search(r"(Scalar|Aggregate|Table) Function with name (\S+) does not exist", first):
        name = m.group(2)
        hint = re.search(r'Did you mean "([^"]+)"', rest)
        suffix = f" (did you mean {hint.group(1)}?)" if hint else ""
        return QueryError(f"unknown function {name}(){_find_token(tokens, name, sql, function=True)}{suffix}")
    if m := re.search(r"Table with name (\S+) does not exist", first):
        return QueryError(
            f"unknown table {m.group(1)}{_find_token(tokens, m.group(1), sql)}: the table is crash_aggregates"
        )
    text = _PREFIX_RE.sub("", first)
    if isinstance(e, (duckdb.ParserException,)):
        return QueryError(f"syntax error: {text}")
    if isinstance(e, duckdb.PermissionException):
        return QueryError(f"refused: {text}")
    if isinstance(e, (duckdb.BinderException, duckdb.CatalogException, duckdb.NotImplementedException)):
        return QueryError(f"invalid query: {text}", ExitCode.USAGE)
    return QueryError(f"the query failed: {first}", ExitCode.FAILED)
