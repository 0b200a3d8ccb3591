"""Map subscripts with a constant key, read from the flat sidecars instead of the maps.

DuckDB spends most of a query over the aggregates decoding the two MAP
columns; the flat sidecars (``crash_aggregates.flat``) hold the value of each
key as a plain column, which is read in a fraction of the time. This module
rewrites a translated query (a sqlglot tree in DuckDB form) so that it reads
them:

- in every SELECT that reads the table ``crash_aggregates`` (aliased or
  not), each ``dimensions['k']`` / ``stats['k']`` with a constant string key
  (``element_at(m, 'k')`` has become this form in the translation) that
  certainly means that table's map becomes the flat column
  ``"dimensions['k']"``, and the table becomes the internal view
  ``crash_aggregates_flat AS <its alias>``, which has the table's four
  columns and the flat ones (``engine.py``);
- a key that no sidecar has a column for is left to the map (the answer is
  NULL either way, or comes from partitions without sidecars).

Leaving a query untouched is always correct, just slower, so anything that
could change its meaning is left alone: a SELECT with ``*`` or ``t.*`` (the
answer must have exactly the table's columns), a NATURAL, SEMI or ANTI join,
a sample, a table alias with column names, an output column aliased
``dimensions`` or ``stats``, a table referred to as a whole (``SELECT t``),
a subquery that refers to the maps of the outer SELECT (it would see the map
while the outer SELECT groups by the flat column), an unqualified
``dimensions`` that another source of the SELECT could also provide, and any
query that already names a flat column or the internal view.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope, walk_in_scope

from .. import flat
from .engine import FLAT_VIEW
from .fence import TABLE, TABLE_COLUMNS


def use_flat_view(tree: exp.Expression, columns: set[str]) -> exp.Expression | None:
    """A copy of the tree reading the flat ``columns`` where it safely can; None if nowhere."""
    if not columns or not isinstance(tree, exp.Query):
        return None
    tree = tree.copy()
    taken = {c.lower() for c in columns} | {FLAT_VIEW}
    if any(i.name.lower() in taken for i in tree.find_all(exp.Identifier)):
        return None  # the query itself uses such a name: it could mean something else
    try:
        scopes = [s for s in traverse_scope(tree) if isinstance(s.expression, exp.Select)]
        plans = [(scope, _plan(scope, columns)) for scope in scopes]
    except SqlglotError:
        return None  # a tree sqlglot cannot resolve: leave it as it is
    changed = False
    # Change the tree only after every scope was planned on the original one.
    for _scope, (brackets, tables) in plans:
        for bracket, column in brackets:
            bracket.replace(column)
        for table in tables:
            # Keep the name the query uses for the table: the alias, or else its name.
            if table.args.get("alias") is None:
                table.set("alias", exp.TableAlias(this=table.this.copy()))
            table.set("this", exp.to_identifier(FLAT_VIEW))
        changed = changed or bool(brackets)
    return tree if changed else None


def _plan(scope: Scope, columns: set[str]) -> tuple[list[tuple[exp.Bracket, exp.Column]], list[exp.Table]]:
    """The subscripts of one SELECT to replace (with their flat columns), and the tables to point at the flat view."""
    select = scope.expression
    try:
        sources = scope.selected_sources
    except SqlglotError:
        return [], []
    tables = {
        name.lower(): source
        for name, (_, source) in sources.items()
        if isinstance(source, exp.Table) and source.name.lower() == TABLE and not source.args.get("db")
    }
    if not tables or not _can_use_flat_view(scope, select, tables):
        return [], []
    others = [_source_columns(source) for name, (_, source) in sources.items() if name.lower() not in tables]
    unqualified_ok = len(tables) == 1 and all(known is not None and not known & set(flat.MAPS) for known in others)
    brackets, pointed = [], {}
    for node in walk_in_scope(select):
        target = _map_subscript(node)
        if target is None:
            continue
        column, key = target
        name = flat.column_name(column.name.lower(), key)
        if name not in columns:
            continue  # no sidecar has this key: the map answers (NULL, or from old partitions)
        qualifier = column.table.lower()
        if qualifier:
            table = tables.get(qualifier)
        else:
            table = next(iter(tables.values())) if unqualified_ok else None
        if table is None:
            continue
        reference = exp.column(name, table=column.args.get("table").copy() if qualifier else None, quoted=True)
        brackets.append((node, reference))
        pointed[id(table)] = table
    return brackets, list(pointed.values())


def _map_subscript(node: exp.Expression) -> tuple[exp.Column, str] | None:
    """``(column, key)`` if the node reads a constant string key of a map column: ``dimensions['k']``."""
    if not (isinstance(node, exp.Bracket) and len(node.expressions) == 1):
        return None
    column, key = node.this, node.expressions[0]
    if not (isinstance(column, exp.Column) and column.name.lower() in flat.MAPS and not column.args.get("db")):
        return None
    if not (isinstance(key, exp.Literal) and key.is_string):
        return None
    return column, key.this


def _can_use_flat_view(scope: Scope, select: exp.Select, tables: dict[str, exp.Table]) -> bool:
    """Whether this SELECT would mean the same if its tables had more columns."""
    aliases = set(tables)
    for table in tables.values():
        alias = table.args.get("alias")
        if (alias is not None and alias.columns) or table.args.get("sample") or table.args.get("pivots"):
            return False
    for join in select.args.get("joins") or []:
        if join.method.upper() == "NATURAL" or join.kind.upper() in ("SEMI", "ANTI"):
            return False
    if select.find(exp.TableSample):
        return False
    for lam in select.find_all(exp.Lambda):
        if any(p.name.lower() in flat.MAPS for p in lam.expressions):
            return False  # a lambda parameter named like a map hides the column
    if any(isinstance(e, exp.Alias) and e.alias.lower() in flat.MAPS for e in select.expressions):
        return False  # ORDER BY or GROUP BY could mean the output column, not the table's
    for node in walk_in_scope(select):
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            return False  # *, t.*, * EXCLUDE (...): the answer would show the flat columns
        if node.key == "columns" or (isinstance(node, exp.Anonymous) and node.name.upper() in ("COLUMNS", "UNPACK")):
            return False  # DuckDB's COLUMNS(...) expands to the table's columns
    for node in select.find_all(exp.Column):
        if not node.table and node.name.lower() in aliases and node.name.lower() not in TABLE_COLUMNS:
            return False  # the table as one value (a struct of all its columns)
    # A nested query that reads this SELECT's maps would still read the map
    # where this SELECT, once grouped by the flat column, no longer has it.
    for child in scope.traverse():
        if child is scope:
            continue
        for column in walk_in_scope(child.expression):
            if not isinstance(column, exp.Column):
                continue
            name, qualifier = column.name.lower(), column.table.lower()
            if (
                qualifier in aliases or (not qualifier and (name in flat.MAPS or name in aliases))
            ) and not _resolved_below(child, scope, column):
                return False
    return True


def _resolved_below(inner: Scope, outer: Scope, column: exp.Column) -> bool:
    """Whether a column of a nested scope certainly resolves before reaching the outer scope."""
    level = inner
    while level is not None and level is not outer:
        found = _provides(level, column)
        if found is not False:
            return bool(found)  # True: resolved here; None: perhaps outside
        level = level.parent
    return False


def _provides(scope: Scope, column: exp.Column) -> bool | None:
    """Whether a source of the scope certainly has the column (True), certainly not (False), or perhaps (None)."""
    try:
        sources = scope.selected_sources
    except SqlglotError:
        return None
    if column.table:
        return column.table.lower() in {name.lower() for name in sources}
    if scope.semi_or_anti_join_tables:
        return None
    known = [_source_columns(source) for _, source in sources.values()]
    if any(names is not None and column.name.lower() in names for names in known):
        return True
    return None if any(names is None for names in known) else False


def _source_columns(source) -> set[str] | None:
    """The column names (lower case) a source of a SELECT has, or None when they are not known."""
    if isinstance(source, exp.Table):
        return set(TABLE_COLUMNS) if source.name.lower() == TABLE and not source.args.get("db") else None
    if not isinstance(source, Scope):
        return None
    expression = source.expression
    alias = expression.args.get("alias") if isinstance(expression, (exp.Unnest, exp.UDTF)) else None
    if alias is None and isinstance(expression.parent, (exp.Subquery, exp.CTE)):
        alias = expression.parent.args.get("alias")
    if alias is not None and alias.columns:
        return {c.name.lower() for c in alias.columns}
    if isinstance(expression, exp.Query) and not any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star) for e in expression.selects
    ):
        return {n.lower() for n in expression.named_selects}
    return None
