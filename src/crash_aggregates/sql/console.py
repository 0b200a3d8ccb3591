"""The SQL console's queries: parameters bound, the ``sql`` command's checks, answers in pages within limits.

The pipeline is the ``sql`` command's (``prepare``: Presto translated, or
DuckDB on request; the fences; the time limit; its error messages), with
``{{ name }}`` parameters bound first (``parameters``) and two bounds on what
one answer may hold: a row cap and a memory bound. An answer that reaches one
stops there and says so. Downloads (CSV, JSON, Parquet) stream to a file with
a cap of their own.

Nothing here knows of the web: ``web/views/console.py`` calls it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import Prepared, parameters, prepare, run
from .errors import QueryError, at

#: What ``Limits`` allow unless the configuration says otherwise.
MAX_ROWS = 10_000
MAX_BYTES = 64 * 2**20
DOWNLOAD_ROWS = 1_000_000
PAGE_ROWS = 500


@dataclass(frozen=True)
class Limits:
    """How long a query may run and how much of its answer is kept."""

    timeout: float | None = 60.0
    #: Rows an answer shows (the rest is cut, and the answer says so).
    max_rows: int = MAX_ROWS
    #: Bytes of Arrow data an answer may hold in memory.
    max_bytes: int = MAX_BYTES
    #: Rows a download writes.
    download_rows: int = DOWNLOAD_ROWS
    #: Rows per page of a streamed answer.
    page_rows: int = PAGE_ROWS


@dataclass
class Statement:
    """A console query made ready: the user's SQL, the SQL that runs, the bound values."""

    sql: str
    prepared: Prepared
    values: dict = field(default_factory=dict)
    #: (offset in the bound SQL, offset in the user's SQL) where the two texts start to agree again.
    _shifts: list = field(default_factory=list, repr=False)

    def where(self, message: str) -> str:
        """A message's "line L, column C" moved from the bound SQL to the user's."""
        bound = self.prepared.sql

        def move(m: re.Match) -> str:
            offset = _offset(bound, int(m.group(1)), int(m.group(2)))
            for b, u in reversed(self._shifts):
                if offset >= b:
                    offset = u + (offset - b)
                    break
            return at(self.sql, offset)

        return re.sub(r"line (\d+), column (\d+)", move, message)


def _offset(sql: str, line: int, column: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = sql.index("\n", start) + 1
    return start + column - 1


def statement(sql: str, dialect: str = "presto", declared: dict | None = None, given: dict | None = None) -> Statement:
    """Bind the parameters, then parse, fence and translate: a QueryError says what is wrong and where.

    >>> s = statement("SELECT count(*) FROM crash_aggregates WHERE dimensions['channel'] = {{ channel }}",
    ...               given={"channel": "beta"})
    >>> s.prepared.duckdb_sql, s.values
    ("SELECT COUNT(*) AS _col0 FROM crash_aggregates WHERE dimensions['channel'] = $channel", {'channel': 'beta'})
    """
    values = parameters.values_of(sql, declared, given)
    bound_sql, bound, shifts = parameters.bind_mapped(sql, values, ":" if dialect == "presto" else "$")
    try:
        prepared = prepare(bound_sql, dialect, parameters=bound)
    except QueryError as e:
        unprepared = Statement(sql, Prepared(bound_sql, dialect, ""), bound, shifts)
        raise QueryError(unprepared.where(str(e)), e.exit_code) from None
    return Statement(sql, prepared, bound, shifts)


@dataclass
class Answer:
    """An answer as the console shows it: columns, rows as JSON values, and whether (and why) it was cut."""

    columns: list[dict]
    rows: list[list]
    cut: str | None = None

    def as_json(self) -> dict:
        return {"columns": [c["name"] for c in self.columns], "types": [c["type"] for c in self.columns],
                "rows": self.rows, "cut": self.cut, "row_count": len(self.rows)}  # fmt: skip


class Pages:
    """A running query's columns, then its rows page by page, stopping at the row cap or the memory bound."""

    def __init__(self, result, statement: Statement, limits: Limits):
        self.result, self.statement, self.limits = result, statement, limits
        self.columns = [{"name": f.name, "type": str(f.type)} for f in result.schema]
        self.rows = 0
        self.cut: str | None = None

    def __iter__(self) -> Iterator[list[list]]:
        from .formats import json_rows

        held, page = 0, []
        try:
            for batch in self.result:
                if self.rows + batch.num_rows > self.limits.max_rows:
                    batch = batch.slice(0, self.limits.max_rows - self.rows)
                    self.cut = f"only the first {self.limits.max_rows:,} rows are shown (the row cap)"
                if batch.num_rows and held + batch.nbytes > self.limits.max_bytes:
                    # Keep the rows that fit (at this batch's mean row size), then stop.
                    fit = int((self.limits.max_bytes - held) / (batch.nbytes / batch.num_rows))
                    batch = batch.slice(0, max(0, fit))
                    self.cut = (
                        f"only the first {self.rows + batch.num_rows:,} rows are shown: the answer reached its "
                        f"memory bound of {self.limits.max_bytes / 2**20:g} MiB"
                    )
                held += batch.nbytes
                for row in json_rows(batch):
                    page.append(row)
                    self.rows += 1
                    if len(page) >= self.limits.page_rows:
                        yield page
                        page = []
                if self.cut:
                    break
        except QueryError as e:
            raise QueryError(self.statement.where(str(e)), e.exit_code) from None
        if page:
            yield page


@contextmanager
def pages(stmt: Statement, conn, limits: Limits = Limits()):
    """Run on a fenced connection (``sql.connect``); yields ``Pages``."""
    try:
        running = run(stmt.prepared, None, timeout=limits.timeout, conn=conn, params=stmt.values)
        with running as result:
            yield Pages(result, stmt, limits)
    except QueryError as e:
        raise QueryError(stmt.where(str(e)), e.exit_code) from None


def answer(stmt: Statement, conn, limits: Limits = Limits()) -> Answer:
    """The whole answer (within the limits) at once."""
    with pages(stmt, conn, limits) as found:
        rows = [row for page in found for row in page]
        return Answer(found.columns, rows, found.cut)


DOWNLOADS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def download(stmt: Statement, conn, fmt: str, target, limits: Limits = Limits()) -> int:
    """Write the answer to ``target`` (a binary file): CSV, JSON (one object per line) or Parquet; rows written."""
    import io

    from . import formats

    if fmt not in DOWNLOADS:
        raise QueryError(f"unknown download format {fmt!r} (one of {', '.join(DOWNLOADS)})")
    with pages(stmt, conn, limits) as found:
        result = found.result
        if fmt == "parquet":
            return formats.write_parquet(result.schema, result, target, limits.download_rows)
        text = io.TextIOWrapper(target, encoding="utf-8", newline="", write_through=True)
        try:
            write = formats.write_csv if fmt == "csv" else formats.write_json
            return write(result.schema, result, text, limits.download_rows)
        finally:
            text.detach()


def error_position(message: str) -> tuple[int, int] | None:
    """The (line, column) a message points at, if it does.

    >>> error_position("unknown column x at line 2, column 8; columns here: a"), error_position("refused")
    ((2, 8), None)
    """
    m = re.search(r"line (\d+), column (\d+)", message)
    return (int(m.group(1)), int(m.group(2))) if m else None


#: The schema sidebar's most common values per dimension key.
TOP_VALUES = 10

SCHEMA_SQL = """
SELECT key, value, count(*) AS aggregates
FROM (
  SELECT unnest(map_keys(dimensions)) AS key, unnest(map_values(dimensions)) AS value
  FROM crash_aggregates WHERE submission_date >= CAST({{ since }} AS DATE)
) GROUP BY key, value
"""


def schema(conn, since: str, stat_keys: list[str], top: int = TOP_VALUES) -> dict:
    """The sidebar: the columns, each dimension key's most common values since ``since``, the stat keys.

    Values are ranked by the number of aggregates that have them (over the recent days, so a
    sidebar costs one scan of those partitions, not of the whole history).
    """
    columns = conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ?",
        ["crash_aggregates"],
    ).fetchall()
    found = answer(statement(SCHEMA_SQL, "duckdb", given={"since": since}), conn, Limits(max_rows=1_000_000))
    values: dict[str, list] = {}
    for key, value, count in sorted(found.rows, key=lambda r: (r[0], -r[2], str(r[1]))):
        values.setdefault(key, [])
        if len(values[key]) < top:
            values[key].append({"value": value, "aggregates": count})
    return {
        "table": "crash_aggregates",
        "columns": [{"name": n, "type": t} for n, t in columns],
        "dimensions": [{"key": k, "values": v} for k, v in sorted(values.items())],
        "stats": list(stat_keys),
        "since": since,
    }
