"""SQL over the aggregates: the ``crash_aggregates`` table, in Presto or DuckDB SQL.

>>> from crash_aggregates.sql import prepare
>>> prepare("SELECT count(*) / 2 FROM crash_aggregates").duckdb_sql
'SELECT COUNT(*) // 2 AS _col0 FROM crash_aggregates'

Python API for notebooks::

    import crash_aggregates
    table = crash_aggregates.query("SELECT ... FROM crash_aggregates", "path/to/aggregates")
    conn = crash_aggregates.connect("path/to/aggregates")   # DuckDB, DuckDB SQL
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import QueryError

__all__ = [
    "connect",
    "query",
    "prepare",
    "plan",
    "run",
    "Prepared",
    "QueryError",
    "DIALECTS",
]

DIALECTS = ("presto", "duckdb")


@dataclass
class Prepared:
    """A checked statement: the user's SQL, its tokens and the DuckDB SQL to run."""

    sql: str
    dialect: str
    duckdb_sql: str
    tokens: list = field(default_factory=list, repr=False)
    #: Column names the statement can see (for "unknown column" messages).
    names: set = field(default_factory=set, repr=False)
    #: The statement's tree in DuckDB form (what ``duckdb_sql`` was written from).
    tree: object = field(default=None, repr=False)


def prepare(sql: str, dialect: str = "presto", parameters=()) -> Prepared:
    """Parse, fence and translate a statement; a QueryError says what is wrong and where.

    ``parameters``: names of bound parameters the statement may use (``:name`` in Presto, ``$name`` in DuckDB).
    """
    from . import fence, syntax

    if dialect not in DIALECTS:
        raise QueryError(f"unknown dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    tokens = syntax.tokenize(sql, dialect)
    fence.check_tokens(sql, tokens)
    tree = syntax.parse(sql, tokens, dialect)
    fence.check(tree, sql, tokens, parameters)
    names = fence.visible_columns(tree)
    if dialect == "presto":
        from .presto import to_duckdb

        duck = to_duckdb(tree, sql)
    else:
        from .presto import generate

        duck = generate(tree)
    return Prepared(sql=sql, dialect=dialect, duckdb_sql=duck, tokens=tokens, names=names, tree=tree)


def connect(path, *, fenced: bool = True):
    """A DuckDB connection (DuckDB SQL) with the ``crash_aggregates`` view of the dataset at ``path``.

    Only published partitions are visible. With ``fenced=True`` (the default)
    the connection can read the dataset's files and nothing else, and its
    settings are locked; pass ``fenced=False`` to keep DuckDB's usual access,
    e.g. to join the aggregates with other files in a notebook.
    """
    from .engine import open_connection

    return open_connection(path, fenced=fenced)


def plan(prepared: Prepared, conn) -> str:
    """The DuckDB SQL to run on ``conn``: reading the flat sidecars' columns where the query allows it."""
    from .engine import flat_columns
    from .flat_view import use_flat_view
    from .presto import generate

    fast = use_flat_view(prepared.tree, flat_columns(conn)) if prepared.tree is not None else None
    return generate(fast) if fast is not None else prepared.duckdb_sql


def run(prepared: Prepared, path, *, timeout: float | None = None, conn=None, params: dict | None = None):
    """Run a prepared statement; a context manager yielding a streaming Result.

    ``params``: the values of the statement's named parameters (``$name``), bound, never written into the SQL.
    """
    from .engine import check_statement, execute

    own = conn is None
    if own:
        conn = connect(path)
    try:
        duck_sql = plan(prepared, conn)
        check_statement(conn, prepared.duckdb_sql)
        if duck_sql != prepared.duckdb_sql:
            check_statement(conn, duck_sql)
    except BaseException:
        if own:
            conn.close()
        raise
    # Should DuckDB refuse the rewritten query, the query as written runs: its
    # answer is the same, and so are its error messages.
    fallback = prepared.duckdb_sql if duck_sql != prepared.duckdb_sql else None
    return _Run(
        conn,
        own,
        execute(
            conn,
            duck_sql,
            timeout=timeout,
            sql=prepared.sql,
            tokens=prepared.tokens,
            names=prepared.names,
            fallback=fallback,
            params=params,
        ),
    )


class _Run:
    def __init__(self, conn, own, inner):
        self.conn, self.own, self.inner = conn, own, inner

    def __enter__(self):
        try:
            return self.inner.__enter__()
        except BaseException:
            self._close()
            raise

    def __exit__(self, *exc):
        try:
            return self.inner.__exit__(*exc)
        finally:
            self._close()

    def _close(self):
        if self.own:
            self.conn.close()


def query(sql: str, path, dialect: str = "presto", *, timeout: float | None = None):
    """Run one query over the dataset at ``path``; the answer as a ``pyarrow.Table``."""
    import pyarrow as pa

    prepared = prepare(sql, dialect)
    with run(prepared, path, timeout=timeout) as result:
        batches = list(result)
        return pa.Table.from_batches(batches, schema=result.schema)
