"""Writing a query's answer: table, csv, json (one object per line) or parquet.

Rows arrive as Arrow record batches and leave one batch at a time, so a huge
answer never has to fit in memory (``table`` keeps at most its row limit).

Values in text formats (csv and table):

- NULL is an empty field in csv (an empty string is written as ``""``), and
  ``NULL`` in a table;
- dates are ``YYYY-MM-DD``, timestamps ``YYYY-MM-DD HH:MM:SS[.ffffff]``;
- doubles use the shortest form that reads back to the same number, with
  ``NaN``, ``Infinity`` and ``-Infinity`` as Presto prints them;
- maps, arrays and rows are JSON text (``{"channel":"release"}``).

In json, each row is one JSON object on its own line (NDJSON) with the
column names as keys; maps are objects, dates and timestamps ISO strings,
and non-finite doubles (which JSON cannot represent) are ``null``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable
from typing import IO

import pyarrow as pa

FORMATS = ("table", "csv", "json", "parquet")
#: Rows a terminal table shows when no --limit is given.
TABLE_ROWS = 1000


def _number_text(x: float) -> str:
    """The shortest text that reads back as ``x``; non-finite values as Presto prints them.

    >>> [_number_text(v) for v in (0.1, 2.0, float("nan"), float("-inf"), 1e-07)]
    ['0.1', '2.0', 'NaN', '-Infinity', '1e-07']
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def _interval_text(months: int, days: int, nanoseconds: int) -> str:
    """DuckDB's way of writing an interval.

    >>> _interval_text(0, 1, 0), _interval_text(14, 0, 0), _interval_text(0, 2, 5_400_000_000_000)
    ('1 day', '1 year 2 months', '2 days 01:30:00')
    """
    parts = []
    years, months = divmod(months, 12)
    for n, unit in ((years, "year"), (months, "month"), (days, "day")):
        if n:
            parts.append(f"{n} {unit}{'' if abs(n) == 1 else 's'}")
    if nanoseconds or not parts:
        sign = "-" if nanoseconds < 0 else ""
        micros = abs(nanoseconds) // 1000
        seconds, micros = divmod(micros, 1_000_000)
        h, rem = divmod(seconds, 3600)
        m, sec = divmod(rem, 60)
        parts.append(f"{sign}{h:02d}:{m:02d}:{sec:02d}" + (f".{micros:06d}" if micros else ""))
    return " ".join(parts)


def _plain(value, typ: pa.DataType, finite_only: bool):
    """A value of Arrow type ``typ`` as plain JSON-able Python data."""
    if value is None:
        return None
    if pa.types.is_map(typ):
        return {str(_plain(k, typ.key_type, finite_only)): _plain(v, typ.item_type, finite_only) for k, v in value}
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return [_plain(v, typ.value_type, finite_only) for v in value]
    if pa.types.is_struct(typ):
        return {f.name: _plain(value.get(f.name), f.type, finite_only) for f in typ}
    if isinstance(value, float):
        if finite_only and not math.isfinite(value):
            return None
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if pa.types.is_interval(typ):
        return _interval_text(value.months, value.days, value.nanoseconds)
    if isinstance(value, bytes):
        return value.hex()
    return value


def text(value, typ: pa.DataType) -> str | None:
    """The csv/table text of one value; None for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number_text(value)
    plain = _plain(value, typ, finite_only=False)
    if isinstance(plain, (dict, list)):
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=True)
    return str(plain)


def _rows(batch: pa.RecordBatch) -> Iterable[list]:
    columns = [(col.to_pylist(), field.type) for col, field in zip(batch.columns, batch.schema, strict=False)]
    for i in range(batch.num_rows):
        yield [(values[i], typ) for values, typ in columns]


def _limited(batches: Iterable[pa.RecordBatch], limit: int | None) -> Iterable[pa.RecordBatch]:
    if limit is None:
        yield from batches
        return
    left = limit
    for batch in batches:
        if left <= 0:
            return
        if batch.num_rows > left:
            batch = batch.slice(0, left)
        left -= batch.num_rows
        yield batch


def json_rows(batch: pa.RecordBatch) -> list[list]:
    """A batch's rows as lists of JSON values (maps as objects, dates as ISO text, non-finite numbers as null)."""
    return [[_plain(v, t, finite_only=True) for v, t in row] for row in _rows(batch)]


def csv_field(s: str | None) -> str:
    r'''RFC 4180 quoting; NULL is an empty field, an empty string is two quotes.

    >>> [csv_field(v) for v in (None, '', 'a', 'say "hi"', 'a,b', 'x\ny')]
    ['', '""', 'a', '"say ""hi"""', '"a,b"', '"x\ny"']
    '''
    if s is None:
        return ""
    if s == "" or any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def write_csv(schema: pa.Schema, batches, out: IO[str], limit: int | None = None) -> int:
    out.write(",".join(csv_field(n) for n in schema.names) + "\r\n")
    n = 0
    for batch in _limited(batches, limit):
        out.write("".join(",".join(csv_field(text(v, t)) for v, t in row) + "\r\n" for row in _rows(batch)))
        n += batch.num_rows
    return n


def write_json(schema: pa.Schema, batches, out: IO[str], limit: int | None = None) -> int:
    names = schema.names
    n = 0
    for batch in _limited(batches, limit):
        lines = []
        for row in _rows(batch):
            obj = {name: _plain(v, t, finite_only=True) for name, (v, t) in zip(names, row, strict=False)}
            lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str))
        out.write("".join(line + "\n" for line in lines))
        n += batch.num_rows
    return n


def write_parquet(schema: pa.Schema, batches, path, limit: int | None = None) -> int:
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for batch in _limited(batches, limit):
            writer.write_batch(batch)
            n += batch.num_rows
    return n


_NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


def write_table(
    schema: pa.Schema,
    batches,
    out: IO[str],
    limit: int | None = None,
    *,
    terminal: bool = False,
    width: int | None = None,
) -> tuple[int, bool]:
    """A terminal table of at most ``limit`` rows (default TABLE_ROWS); (rows shown, more rows exist)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    limit = TABLE_ROWS if limit is None else limit
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False)
    for field in schema:
        right = any(check(field.type) for check in _NUMERIC)
        table.add_column(field.name, justify="right" if right else "left", overflow="fold")
    shown, more = 0, False
    for batch in batches:
        for row in _rows(batch):
            if shown >= limit:
                more = True
                break
            cells = []
            for v, t in row:
                s = text(v, t)
                cells.append(Text("NULL", style="dim") if s is None else Text(s))
            table.add_row(*cells)
            shown += 1
        if more:
            break
    console = Console(
        file=out,
        width=width or (None if terminal else 100_000),
        no_color=not terminal,
        highlight=False,
        soft_wrap=False,
        force_terminal=terminal,
    )
    console.print(table)
    suffix = "" if shown == 1 else "s"
    console.print(f"({shown} row{suffix}{', more not shown: raise --limit or use --format csv' if more else ''})")
    return shown, more
