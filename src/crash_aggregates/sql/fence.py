"""What a query may touch: the ``crash_aggregates`` table and nothing else.

This is the first of two fences. It reads the parsed statement and refuses,
with a message naming what was refused and where:

- every statement that is not a query (CREATE, INSERT, COPY, ATTACH, INSTALL,
  LOAD, SET, PRAGMA, CALL, EXPORT, ...): the data is read-only;
- table functions (``read_csv('/etc/passwd')``, ``read_parquet``, ``glob``,
  ``query``, ``duckdb_settings()``, ...) and file paths used as tables;
- tables other than ``crash_aggregates`` and the query's own WITH queries,
  and any schema- or catalog-qualified name (``information_schema.tables``);
- functions that read files, settings or the environment, wherever they are.

The second fence is DuckDB itself (``engine.py``): external access disabled,
only the dataset's data files allowed, configuration locked, and the
translated statement checked to be a single SELECT.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from .errors import QueryError, at

TABLE = "crash_aggregates"

#: Function names refused anywhere (lower case); prefixes end with "*".
DENIED_FUNCTIONS = (
    "read_*", "*_scan", "glob", "sniff_csv", "parquet_*", "query", "query_table",
    "current_setting", "getenv", "getvariable", "duckdb_*", "pragma_*", "sqlite_*",
    "postgres_*", "mysql_*", "iceberg_*", "delta_*", "which_secret", "load_aws_credentials",
    "json_execute_serialized_sql", "txid_current", "current_schema", "current_schemas",
    "current_database", "current_catalog", "has_*_privilege", "pg_*", "test_*", "checkpoint",
    "force_checkpoint", "enable_*", "disable_*",
)  # fmt: skip

_QUERY_TYPES = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)


def _denied(name: str) -> bool:
    """Whether a function name is refused.

    >>> _denied("read_csv"), _denied("READ_PARQUET"), _denied("sum"), _denied("parquet_scan")
    (True, True, False, True)
    """
    name = name.lower()
    for pattern in DENIED_FUNCTIONS:
        if pattern.startswith("*") and name.endswith(pattern[1:]):
            return True
        if pattern.endswith("*") and name.startswith(pattern[:-1]):
            return True
        if "*" in pattern[1:-1]:
            head, tail = pattern.split("*", 1)
            if name.startswith(head) and name.endswith(tail):
                return True
        if name == pattern:
            return True
    return False


def _where(node: exp.Expression, sql: str) -> str:
    if not node.meta and isinstance(node.this, exp.Expression) and node.this.meta:
        node = node.this  # a table or column: its first identifier has the position
    while node is not None:
        start = node.meta.get("start") if node.meta else None
        if start is not None:
            return " at " + at(sql, start)
        node = node.parent
    return ""


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name
    if isinstance(node, exp.Func):
        return node.sql_name()
    return ""


#: Words a statement may start with: queries only.
QUERY_KEYWORDS = {"SELECT", "WITH", "VALUES", "DESCRIBE", "DESC", "FROM", "(", "TABLE"}


def check_tokens(sql: str, tokens: list[Token]) -> None:
    """Refuse what can be refused before parsing: non-queries, file-reading functions, paths."""
    first = tokens[0].text.upper()
    if first not in QUERY_KEYWORDS:
        raise QueryError(
            f"{first} statements are refused: the data is read-only and only queries "
            f"(SELECT, WITH ... SELECT, VALUES, DESCRIBE {TABLE}) can run"
        )
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if (
            nxt is not None
            and nxt.token_type == TokenType.L_PAREN
            and tok.token_type != TokenType.STRING
            and _denied(tok.text)
        ):
            raise QueryError(
                f"{tok.text.lower()}() at {at(sql, tok.start)} is refused: queries can only read the {TABLE} table"
            )
        if (
            tok.token_type in (TokenType.FROM, TokenType.JOIN)
            and nxt is not None
            and nxt.token_type == TokenType.STRING
        ):
            raise QueryError(
                f"the file path '{nxt.text}' at {at(sql, nxt.start)} is refused: "
                f"queries can only read the {TABLE} table"
            )


def check(tree: exp.Expression, sql: str, tokens: list[Token], parameters: Collection[str] = ()) -> None:
    """Raise QueryError unless the statement only reads ``crash_aggregates``.

    ``parameters``: the names of the bound parameters the statement may use (the console's ``{{ name }}``).
    """
    if isinstance(tree, exp.Describe):
        target = tree.this
        if not (isinstance(target, exp.Table) and target.name.lower() == TABLE and not target.args.get("db")):
            raise QueryError(f"DESCRIBE works on the {TABLE} table only")
        return
    if not isinstance(tree, _QUERY_TYPES):
        keyword = tokens[0].text.upper() if tokens else type(tree).__name__.upper()
        raise QueryError(
            f"{keyword} statements are refused: the data is read-only and only queries "
            f"(SELECT, WITH ... SELECT, VALUES, DESCRIBE {TABLE}) can run"
        )
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for node in tree.walk():
        if isinstance(
            node, (exp.Command, exp.Into, exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Drop, exp.Copy, exp.Merge)
        ):
            raise QueryError(f"{type(node).__name__.upper()}{_where(node, sql)} is refused: the data is read-only")
        if isinstance(node, exp.Placeholder) and node.name in parameters:
            continue
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            raise QueryError(f"query parameters{_where(node, sql)} are not supported: write the values into the query")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name and _denied(name):
                raise QueryError(
                    f"{name.lower()}(){_where(node, sql)} is refused: queries can only read the {TABLE} table"
                )
        if isinstance(node, exp.Table):
            _check_table(node, sql, ctes)


def _check_table(node: exp.Table, sql: str, ctes: set[str]) -> None:
    target = node.this
    if not isinstance(target, exp.Identifier):
        name = _function_name(target) or target.sql()
        raise QueryError(
            f"the table function {name.lower()}(){_where(node, sql)} is refused: "
            f"queries can only read the {TABLE} table"
        )
    parts = [p.name for p in node.parts]
    full = ".".join(parts)
    if len(parts) > 1:
        raise QueryError(
            f"unknown table {full}{_where(node, sql)}: other schemas and catalogs are not visible; the table is {TABLE}"
        )
    if target.quoted and ("/" in target.name or "." in target.name):
        raise QueryError(
            f"the file path {target.name!r}{_where(node, sql)} is refused: queries can only read the {TABLE} table"
        )
    if target.name.lower() not in ctes and target.name.lower() != TABLE:
        extra = f" (or the WITH queries {', '.join(sorted(ctes))})" if ctes else ""
        raise QueryError(f"unknown table {target.name}{_where(node, sql)}: the table is {TABLE}{extra}")


TABLE_COLUMNS = ("submission_date", "activity_date", "dimensions", "stats")


def visible_columns(tree: exp.Expression) -> set[str]:
    """Names a query can refer to: the table's columns and those of its WITH queries and subqueries."""
    names: set[str] = set()
    if any(isinstance(t, exp.Table) and t.name.lower() == TABLE for t in tree.find_all(exp.Table)):
        names.update(TABLE_COLUMNS)
    for source in [*tree.find_all(exp.CTE), *tree.find_all(exp.Subquery)]:
        query = source.this
        if isinstance(query, exp.SetOperation):
            query = query.this
        if isinstance(query, exp.Select):
            names.update(e.alias_or_name for e in query.expressions if e.alias_or_name and e.alias_or_name != "*")
        alias = source.args.get("alias")
        if isinstance(alias, exp.TableAlias):
            names.update(c.name for c in alias.columns)
    return names
