"""The DuckDB side: the ``crash_aggregates`` view, the engine fence, time limit, streaming.

The view reads exactly the data files that the ``_SUCCESS`` markers of the
published partitions name (``storage.published_partitions``), with
``submission_date`` taken from the Hive partition folder as a DATE, so
DuckDB prunes partitions on it: a filter on ``submission_date`` never opens
the files of other partitions. The first file of the list is an empty
Parquet file with the project's schema (in a private temporary folder), so
binding the view never depends on a data file: a corrupt file in one
partition only disturbs the queries that read that partition.

Once the view exists the connection is fenced: external access off (only
the data files themselves are allowed), extension loading off, the
configuration locked.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import EXIT_FAILED, EXIT_INVALID, QueryError, at

DEFAULT_TIMEOUT = 60.0
BATCH_ROWS = 8192
_GLOB_CHARS = set("*?[]{}")

_schema_dir: Path | None = None
_schema_lock = threading.Lock()


def schema_file() -> Path:
    """An empty Parquet file with the aggregates' schema, made once per process."""
    global _schema_dir
    with _schema_lock:
        if _schema_dir is None or not _schema_dir.exists():
            import pyarrow.parquet as pq

            from ..storage import SCHEMA

            _schema_dir = Path(tempfile.mkdtemp(prefix="crash-aggregates-schema-"))
            atexit.register(shutil.rmtree, _schema_dir, True)
            folder = _schema_dir / "submission_date=1970-01-01"
            folder.mkdir()
            pq.write_table(SCHEMA.empty_table(), folder / "empty.parquet")
        return _schema_dir / "submission_date=1970-01-01" / "empty.parquet"


def data_files(path) -> list[str]:
    """Absolute paths of the files of every published partition under ``path``."""
    from .. import location
    from ..storage import published_partitions

    if location.is_s3(path):
        # The URLs are kept as they are: DuckDB reads them through the
        # project's own S3 filesystem (storage.register_duckdb).
        try:
            partitions = published_partitions(path)
        except location.StorageError as e:
            raise QueryError(str(e), EXIT_FAILED) from None
        files = [f for names in partitions.values() for f in names]
        if bad := next((f for f in files if _GLOB_CHARS & set(f)), None):
            raise QueryError(f"cannot read {bad}: DuckDB would take the characters {''.join(sorted(_GLOB_CHARS))} in a file name for a pattern")
        return files
    root = Path(path)
    if not root.is_dir():
        raise QueryError(f"no dataset at {path}: not a folder (pass --data PATH or set [data] output in the config)")
    files = []
    try:
        partitions = published_partitions(root)
    except OSError as e:
        raise QueryError(f"cannot read the dataset at {path}: {e.strerror or e}", EXIT_FAILED) from None
    for day, names in partitions.items():
        for f in names:
            if not Path(f).is_file():
                raise QueryError(
                    f"the dataset is damaged: the _SUCCESS of partition {day} names {Path(f).name}, "
                    "which is missing (re-run that date)",
                    EXIT_FAILED,
                )
            f = str(Path(f).resolve())
            if _GLOB_CHARS & set(f):
                raise QueryError(f"cannot read {f}: DuckDB would take the characters {''.join(sorted(_GLOB_CHARS))} in a file name for a pattern")
            files.append(f)
    return files


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(files: list[str]) -> str:
    listing = ", ".join(_literal(f) for f in files)
    return (
        "CREATE VIEW crash_aggregates AS "
        "SELECT submission_date, activity_date, dimensions, stats "
        f"FROM read_parquet([{listing}], hive_partitioning = true, "
        "hive_types = {'submission_date': DATE})"
    )


def open_connection(path, *, fenced: bool = True):
    """A DuckDB connection with the ``crash_aggregates`` view of the dataset at ``path``."""
    import duckdb

    from ..storage import register_duckdb

    files = data_files(path)
    schema = str(schema_file())
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("SET enable_progress_bar = false")
        conn.execute("SET TimeZone = 'UTC'")
        register_duckdb(conn, path)
        conn.execute(view_sql([schema, *files]))
        if fenced:
            allowed = ", ".join(_literal(f) for f in [schema, *files])
            conn.execute(f"SET allowed_paths = [{allowed}]")
            conn.execute("SET enable_external_access = false")
            conn.execute("SET autoinstall_known_extensions = false")
            conn.execute("SET autoload_known_extensions = false")
            conn.execute("SET lock_configuration = true")
    except duckdb.Error as e:
        conn.close()
        raise QueryError(f"cannot open the dataset at {path}: {_first_line(e)}", EXIT_FAILED) from None
    except Exception:
        conn.close()
        raise
    return conn


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
                f"the query was stopped after its time limit of {self.timeout:g} s (--timeout)", EXIT_FAILED
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
def execute(conn, duck_sql: str, *, timeout: float | None, sql: str = "", tokens=(), names=(), batch_rows: int = BATCH_ROWS):
    """Run the query; yields a Result that streams record batches."""

    def explain(e: Exception) -> QueryError:
        return describe_error(e, sql, tokens, names)

    reader = None
    with _Deadline(conn, timeout) as deadline:
        try:
            try:
                rel = conn.sql(duck_sql)
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


# -- messages ------------------------------------------------------------------

_PREFIX_RE = re.compile(r"^(Binder|Catalog|Parser|Conversion|Invalid Input|Out of Range|IO|Permission|Not implemented|INTERRUPT|Invalid Error) Error: ")


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
        return QueryError("the query was interrupted", EXIT_FAILED)
    if m := re.search(r'Referenced column "([^"]+)" not found', first) or re.search(
        r'does not have a column named "([^"]+)"', first
    ):
        name = m.group(1)
        cands = re.findall(r'"([^"]+)"', rest.split("Candidate bindings:", 1)[-1]) if "Candidate bindings" in rest else []
        seen = sorted({c.split(".")[-1] for c in cands} | set(names))
        known = f"; columns here: {', '.join(seen)}" if seen else ""
        return QueryError(f"unknown column {name}{_find_token(tokens, name, sql)}{known}")
    if m := re.search(r"(Scalar|Aggregate|Table) Function with name (\S+) does not exist", first):
        name = m.group(2)
        hint = re.search(r'Did you mean "([^"]+)"', rest)
        suffix = f" (did you mean {hint.group(1)}?)" if hint else ""
        return QueryError(f"unknown function {name}(){_find_token(tokens, name, sql, function=True)}{suffix}")
    if m := re.search(r"Table with name (\S+) does not exist", first):
        return QueryError(f"unknown table {m.group(1)}{_find_token(tokens, m.group(1), sql)}: the table is crash_aggregates")
    text = _PREFIX_RE.sub("", first)
    if isinstance(e, (duckdb.ParserException,)):
        return QueryError(f"syntax error: {text}")
    if isinstance(e, duckdb.PermissionException):
        return QueryError(f"refused: {text}")
    if isinstance(e, (duckdb.BinderException, duckdb.CatalogException, duckdb.NotImplementedException)):
        return QueryError(f"invalid query: {text}", EXIT_INVALID)
    return QueryError(f"the query failed: {first}", EXIT_FAILED)

