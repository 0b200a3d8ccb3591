"""What ``crash-aggregates sql`` does, apart from reading its options."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ..errors import ExitCode
from . import prepare, run
from .errors import QueryError


def read_query(query: str | None, query_file: str | None, stdin=None) -> str:
    """The SQL from exactly one of QUERY, --file F, or ``-`` (standard input)."""
    stdin = stdin or sys.stdin
    if query is not None and query_file is not None:
        raise QueryError("give the query once: either QUERY or --file F, not both")
    if query is None and query_file is None:
        raise QueryError("no query: give QUERY, --file F, or - to read standard input")
    if query == "-" or query_file == "-":
        return stdin.read()
    if query_file is not None:
        try:
            return Path(query_file).read_text(encoding="utf-8")
        except OSError as e:
            raise QueryError(f"cannot read {query_file}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise QueryError(f"cannot read {query_file}: not UTF-8 text") from None
    return query


def sql_command(
    sql: str,
    *,
    data,
    dialect: str = "presto",
    fmt: str = "table",
    output: str | None = None,
    timeout: float | None = 60.0,
    limit: int | None = None,
    stdout=None,
) -> int:
    """Run one query and write its answer; returns the number of rows written."""
    from . import formats

    stdout = stdout or sys.stdout
    if fmt == "parquet" and not output:
        raise QueryError("--format parquet writes a file: give --output FILE")
    prepared = prepare(sql, dialect)
    with run(prepared, data, timeout=timeout) as result:
        if output:
            return _to_file(result, fmt, output, limit)
        try:
            if fmt == "csv":
                return formats.write_csv(result.schema, result, stdout, limit)
            if fmt == "json":
                return formats.write_json(result.schema, result, stdout, limit)
            shown, _ = formats.write_table(result.schema, result, stdout, limit, terminal=stdout.isatty())
            return shown
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            finally:
                os.close(devnull)
            return 0


def _to_file(result, fmt: str, output: str, limit: int | None) -> int:
    """Write next to the target and rename at the end: a failed query leaves no half file."""
    from . import formats

    target = Path(output)
    if target.is_dir():
        raise QueryError(f"--output {output} is a folder; give a file name")
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise QueryError(f"cannot write {output}: {e.strerror or e}", ExitCode.USAGE) from None
    os.close(fd)
    try:
        if fmt == "parquet":
            n = formats.write_parquet(result.schema, result, tmp, limit)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                if fmt == "csv":
                    n = formats.write_csv(result.schema, result, f, limit)
                elif fmt == "json":
                    n = formats.write_json(result.schema, result, f, limit)
                else:
                    n, _ = formats.write_table(result.schema, result, f, limit)
        os.replace(tmp, target)
        return n
    except OSError as e:
        raise QueryError(f"cannot write {output}: {e.strerror or e}", ExitCode.FAILED) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
