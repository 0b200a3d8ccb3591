"""Presto SQL → DuckDB SQL: sqlglot's translation plus this project's fixes.

sqlglot parses the Presto statement and writes DuckDB SQL. Where its output
would give a different answer from Presto, the tree is rewritten first:

==========================  ==========================================================
Presto                      DuckDB written here (why)
==========================  ==========================================================
``m['k']``                  ``m['k']``: NULL when the key is absent. The Presto the
                            original system ran (2016) returned NULL there; newer
                            Presto raises an error and offers ``element_at``. Absent
                            dimensions are left out of the map (SPEC 4), so NULL is
                            what ``dimensions['experiment_id'] IS NULL`` needs.
``element_at(m, k)``        ``m[k]`` (sqlglot; NULL when absent, as in Presto)
``parse_datetime(s, j)``    ``strptime(s, f)`` with the Joda pattern ``j`` turned into
``format_datetime(t, j)``   a strftime pattern (sqlglot passes Joda patterns through)
``date_parse(s, p)``        ``strptime`` / ``strftime`` with the MySQL-style specifiers
``date_format(t, p)``       mapped one by one (``%i`` minutes, ``%M`` month name, ...)
``date_diff(u, a, b)``      ``date_sub(u, a, b)``: whole units elapsed, as Presto;
                            DuckDB's ``date_diff`` counts unit boundaries crossed
``date_add(u, n, d)``       ``d + INTERVAL (n) u``, cast back to DATE when ``d`` is a
                            date (DuckDB would return a TIMESTAMP)
``date_trunc(u, d)``        ``time_bucket(INTERVAL 1 u, d)``: a DATE stays a DATE
``a / b``                   ``a // b`` when both sides are integers (Presto truncates);
                            otherwise ``/``
``regexp_extract``          NULL when nothing matches (DuckDB returns '')
``regexp_replace``          ``$1`` group references become ``\\1``; replaces all
``split_part(s, d, i)``     NULL when there are fewer than ``i`` parts (DuckDB: '')
``cardinality(x)``          ``cardinality(x)`` (works on maps and arrays in DuckDB)
``approx_percentile``       ``approx_quantile``; the weighted form is refused
``format(f, ...)``          ``printf(f, ...)`` (Java-style specifiers; DuckDB's format uses {})
``sum(int)``, ``count_if``  cast to BIGINT, Presto's type (DuckDB answers a 128-bit integer)
``CROSS JOIN UNNEST(m)``    a lateral ``SELECT unnest(map_keys(m)), unnest(map_values(m))``
  ``AS u(k, v)``            (DuckDB cannot unnest a map into two columns)
unnamed output columns      ``_col0``, ``_col1``, ... as Presto names them
==========================  ==========================================================

Types are needed for two of these (integer division, dates after
``date_add``); they are inferred from the table's schema, literals, casts
and functions, through aliases of WITH queries and subqueries. Where a type
cannot be inferred the DuckDB default is kept (``/`` divides as doubles, a
date plus an interval is a timestamp).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import NamedTuple

from sqlglot import exp
from sqlglot.dialects.presto import Presto
from sqlglot.errors import ErrorLevel, UnsupportedError

from .errors import QueryError, at

#: The table's columns and their types (SPEC section 7).
TABLE_TYPES = {
    "submission_date": "date",
    "activity_date": "varchar",
    "dimensions": "map",
    "stats": "map",
}
MAP_VALUE_TYPES = {"dimensions": "varchar", "stats": "double"}

# -- Joda (parse_datetime / format_datetime) -----------------------------------

_JODA = {
    # letter: {count: strftime} ; the largest count <= n applies
    "y": {1: "%Y", 2: "%y", 3: "%Y"},
    "Y": {1: "%Y", 2: "%y", 3: "%Y"},
    "x": {1: "%G"},
    "w": {1: "%V"},
    "e": {1: "%u"},
    "E": {1: "%a", 4: "%A"},
    "M": {1: "%-m", 2: "%m", 3: "%b", 4: "%B"},
    "d": {1: "%-d", 2: "%d"},
    "D": {1: "%-j", 3: "%j"},
    "H": {1: "%-H", 2: "%H"},
    "h": {1: "%-I", 2: "%I"},
    "m": {1: "%-M", 2: "%M"},
    "s": {1: "%-S", 2: "%S"},
    "S": {1: "%g", 4: "%f", 7: "%n"},
    "a": {1: "%p"},
    "z": {1: "%Z"},
    "Z": {1: "%z"},
}


def joda_to_strftime(pattern: str) -> str:
    """Translate a Joda-Time pattern (Presto's parse_datetime/format_datetime).

    >>> joda_to_strftime("yyyyMMddHHmmss")
    '%Y%m%d%H%M%S'
    >>> joda_to_strftime("yyyy-MM-dd'T'HH:mm:ss.SSS Z")
    '%Y-%m-%dT%H:%M:%S.%g %z'
    >>> joda_to_strftime("EEEE, d MMMM yy 'at' h a, 100%")
    '%A, %-d %B %y at %-I %p, 100%%'
    """
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            if pattern.startswith("''", i):
                out.append("'")
                i += 2
                continue
            j = i + 1
            text = []
            while j < n:
                if pattern.startswith("''", j):
                    text.append("'")
                    j += 2
                elif pattern[j] == "'":
                    break
                else:
                    text.append(pattern[j])
                    j += 1
            else:
                raise ValueError(f"unclosed quote in Joda pattern {pattern!r}")
            out.append("".join(text).replace("%", "%%"))
            i = j + 1
            continue
        if c.isascii() and c.isalpha():
            j = i
            while j < n and pattern[j] == c:
                j += 1
            count = j - i
            table = _JODA.get(c)
            if table is None:
                raise ValueError(f"the Joda pattern letter {c!r} in {pattern!r} is not supported")
            out.append(table[max(k for k in table if k <= count)])
            i = j
            continue
        out.append("%%" if c == "%" else c)
        i += 1
    return "".join(out)


# -- MySQL-style specifiers (date_parse / date_format) -------------------------

_MYSQL = {
    "a": "%a", "b": "%b", "c": "%-m", "d": "%d", "e": "%-d", "f": "%f", "H": "%H",
    "h": "%I", "I": "%I", "i": "%M", "j": "%j", "k": "%-H", "l": "%-I", "M": "%B",
    "m": "%m", "p": "%p", "r": "%I:%M:%S %p", "S": "%S", "s": "%S", "T": "%H:%M:%S",
    "v": "%V", "W": "%A", "x": "%G", "Y": "%Y", "y": "%y", "%": "%%",
}  # fmt: skip
_MYSQL_UNSUPPORTED = set("DUuVwX")  # Presto itself rejects these


def mysql_to_strftime(pattern: str) -> str:
    """Translate Presto's date_parse/date_format specifiers.

    >>> mysql_to_strftime("%Y-%m-%d %H:%i:%s")
    '%Y-%m-%d %H:%M:%S'
    >>> mysql_to_strftime("%W %M %e, %r")
    '%A %B %-d, %I:%M:%S %p'
    """
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        if i + 1 == n:
            out.append("%%")
            break
        spec = pattern[i + 1]
        if spec in _MYSQL_UNSUPPORTED:
            raise ValueError(f"the specifier %{spec} in {pattern!r} is not supported by Presto")
        out.append(_MYSQL.get(spec, spec.replace("%", "%%")))
        i += 2
    return "".join(out)


def java_replacement_to_re2(text: str) -> str:
    r"""Presto's regexp_replace replacement (Java: ``$1``, ``\$``) in RE2 form (``\1``).

    >>> java_replacement_to_re2("<$1>")
    '<\\1>'
    >>> java_replacement_to_re2(r"\$5, a\\b")
    '$5, a\\\\b'
    """
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append("\\\\" if nxt == "\\" else nxt)
            i += 2
        elif c == "$":
            m = re.match(r"\$(\d)", text[i:])
            if not m:
                raise ValueError(
                    f"the replacement {text!r}: only $0-$9 group references are supported (write \\$ for a dollar)"
                )
            out.append("\\" + m.group(1))
            i += 2
        elif c == "\\":
            out.append("\\\\")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


# -- type inference ------------------------------------------------------------

_INT_TYPES = {
    exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT, exp.DataType.Type.INT128,
}  # fmt: skip
_FLOAT_TYPES = {
    exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL,
}  # fmt: skip
_INT_FUNCS = (
    exp.Count, exp.CountIf, exp.ApproxDistinct, exp.RowNumber, exp.Length, exp.StrPosition,
    exp.Year, exp.Month, exp.Day, exp.DayOfWeek, exp.DayOfMonth, exp.DayOfYear,
    exp.WeekOfYear, exp.Quarter, exp.Extract, exp.ArraySize,
)  # fmt: skip
_DOUBLE_FUNCS = (exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop)
_PASS_THROUGH = (exp.Sum, exp.Min, exp.Max, exp.AnyValue, exp.Abs, exp.Paren, exp.Neg, exp.Window, exp.Alias)


class Types:
    """Infer a coarse type ('int', 'double', 'varchar', 'date', 'timestamp', 'map',
    'array', 'bool') of an expression of the original tree, or None."""

    def __init__(self, tree: exp.Expression):
        self.memo: dict[int, str | None] = {}
        self.aliases: dict[str, list[exp.Expression]] = {}
        for alias in tree.find_all(exp.Alias):
            self.aliases.setdefault(alias.alias.lower(), []).append(alias.this)
        self._resolving: set[str] = set()

    def of(self, node: exp.Expression | None) -> str | None:
        if node is None:
            return None
        key = id(node)
        if key not in self.memo:
            self.memo[key] = None  # cycles resolve to "unknown"
            self.memo[key] = self._infer(node)
        return self.memo[key]

    def _column(self, name: str) -> str | None:
        name = name.lower()
        defs = self.aliases.get(name, [])
        if not defs:
            return TABLE_TYPES.get(name)
        if name in self._resolving:
            return None
        self._resolving.add(name)
        try:
            found = {self.of(d) for d in defs}
            if name in TABLE_TYPES:
                found.add(TABLE_TYPES[name])
        finally:
            self._resolving.discard(name)
        return found.pop() if len(found) == 1 else None

    def _infer(self, node: exp.Expression) -> str | None:
        if isinstance(node, exp.Literal):
            if node.is_string:
                return "varchar"
            return "int" if re.fullmatch(r"\d+", node.this) else "double"
        if isinstance(node, exp.Boolean):
            return "bool"
        if isinstance(node, (exp.Cast, exp.TryCast)):
            to = node.to
            if to.this in _INT_TYPES:
                return "int"
            if to.this in _FLOAT_TYPES:
                return "double"
            if to.is_type(*exp.DataType.TEXT_TYPES):
                return "varchar"
            if to.this == exp.DataType.Type.DATE:
                return "date"
            if to.is_type(*exp.DataType.TEMPORAL_TYPES):
                return "timestamp"
            return None
        if isinstance(node, exp.Column):
            return self._column(node.name)
        if isinstance(node, exp.Bracket):
            base = node.this
            if isinstance(base, exp.Column) and self._column(base.name) == "map":
                return MAP_VALUE_TYPES.get(base.name.lower())
            return None
        if isinstance(node, _PASS_THROUGH):
            return self.of(node.this)
        if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Mod, exp.Div)):
            left, right = self.of(node.left), self.of(node.right)
            if isinstance(node, (exp.Add, exp.Sub)) and left == "date" and isinstance(node.right, exp.Interval):
                return "date" if _date_unit(node.right) else "timestamp"
            if left == right == "int":
                return "int"
            if "double" in (left, right) or (isinstance(node, exp.Div) and {left, right} <= {"int", "double"}):
                return "double"
            return None
        if isinstance(node, exp.IntDiv):
            return "int"
        if isinstance(node, _INT_FUNCS):
            return "int"
        if isinstance(node, _DOUBLE_FUNCS):
            return "double"
        if isinstance(node, (exp.CurrentDate, exp.TsOrDsToDate, exp.Date, exp.DateFromParts)):
            return "date"
        if isinstance(node, (exp.CurrentTimestamp, exp.StrToTime, exp.UnixToTime)):
            return "timestamp"
        if isinstance(node, (exp.Case, exp.If, exp.Coalesce, exp.Greatest, exp.Least, exp.Nullif)):
            branches = [node.args.get("true"), node.args.get("false")] if isinstance(node, exp.If) else []
            if isinstance(node, exp.Case):
                branches = [w.args.get("true") for w in node.args.get("ifs", [])] + [node.args.get("default")]
            elif isinstance(node, (exp.Coalesce, exp.Greatest, exp.Least)):
                branches = [node.this, *node.expressions]
            elif isinstance(node, exp.Nullif):
                branches = [node.this]
            kinds = {self.of(b) for b in branches if b is not None and not isinstance(b, exp.Null)}
            if kinds == {"int", "double"}:
                return "double"
            return kinds.pop() if len(kinds) == 1 else None
        if isinstance(node, exp.Subquery):
            inner = node.this
            if isinstance(inner, exp.Select) and len(inner.expressions) == 1:
                return self.of(inner.expressions[0])
            return None
        if isinstance(node, (exp.Map, exp.VarMap)):
            return "map"
        if isinstance(node, exp.Array):
            return "array"
        if isinstance(node, exp.Anonymous):
            function = FUNCTIONS.get(node.name.upper())
            returns = function.returns if function else None
            if isinstance(returns, int):  # FIRST_ARG or LAST_ARG
                return self.of(node.expressions[returns]) if node.expressions else None
            return returns
        return None


def _date_unit(interval: exp.Interval) -> bool:
    unit = interval.args.get("unit")
    name = (unit.name if unit is not None else "").upper()
    return name in {"DAY", "DAYS", "WEEK", "WEEKS", "MONTH", "MONTHS", "QUARTER", "QUARTERS", "YEAR", "YEARS"}


# -- the rewrite ---------------------------------------------------------------

_UNITS = {"millisecond", "second", "minute", "hour", "day", "week", "month", "quarter", "year"}


def _unit(node: exp.Expression, func: str, sql: str) -> str:
    if not (isinstance(node, exp.Literal) and node.is_string and node.this.lower() in _UNITS):
        raise QueryError(
            f"{func}() at {_where(node, sql)}: the unit must be one of "
            f"{', '.join(sorted(_UNITS))} in quotes, e.g. 'day'"
        )
    return node.this.lower()


def _where(node: exp.Expression, sql: str) -> str:
    while node is not None:
        start = node.meta.get("start") if node.meta else None
        if start is not None:
            return at(sql, start)
        node = node.parent
    return "an unknown position"


def _pattern(node: exp.Expression, func: str, convert, sql: str) -> exp.Literal:
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise QueryError(f"{func}() at {_where(node, sql)}: the pattern must be a string literal")
    try:
        return exp.Literal.string(convert(node.this))
    except ValueError as e:
        raise QueryError(f"{func}(): {e}") from None


def _call(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _nargs(node: exp.Anonymous, allowed: tuple[int, ...], sql: str) -> list[exp.Expression]:
    args = node.expressions
    if len(args) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise QueryError(f"{node.name.lower()}() at {_where(node, sql)} takes {want} arguments, got {len(args)}")
    return args


# -- the functions -------------------------------------------------------------
# Each rewrite takes the call (parsed as anonymous), the inferred type of its
# last argument and the query's text (for error positions).


def _pattern_call(duckdb_name: str, convert) -> Callable:
    """``f(x, pattern)`` -> ``duckdb_name(x, converted pattern)``."""

    def rewrite(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
        x, fmt = _nargs(node, (2,), sql)
        return _call(duckdb_name, x, _pattern(fmt, node.name.lower(), convert, sql))

    return rewrite


def _date_diff(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    unit, a, b = _nargs(node, (3,), sql)
    return _call("DATE_SUB", exp.Literal.string(_unit(unit, node.name.lower(), sql)), a, b)


def _date_add(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    unit, n, d = _nargs(node, (3,), sql)
    u = _unit(unit, node.name.lower(), sql)
    if u == "millisecond":
        u, n = "microsecond", exp.Mul(this=exp.Paren(this=n), expression=exp.Literal.number(1000))
    added = exp.Add(this=d, expression=exp.Interval(this=exp.Paren(this=n), unit=exp.var(u.upper())))
    if last_arg_type == "date" and u in ("day", "week", "month", "quarter", "year"):
        return exp.Cast(this=exp.Paren(this=added), to=exp.DataType.build("DATE"))
    return exp.Paren(this=added)


def _date_trunc(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    unit, d = _nargs(node, (2,), sql)
    u = _unit(unit, node.name.lower(), sql)
    if u == "millisecond":
        return _call("DATE_TRUNC", exp.Literal.string(u), d)
    width = exp.Interval(
        this=exp.Literal.number(3 if u == "quarter" else 1), unit=exp.var("MONTH" if u == "quarter" else u.upper())
    )
    return _call("TIME_BUCKET", width, d)


def _regexp_extract(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    args = _nargs(node, (2, 3), sql)
    s, p = args[0], args[1]
    return exp.Case(ifs=[exp.If(this=_call("REGEXP_MATCHES", s.copy(), p.copy()), true=_call("REGEXP_EXTRACT", *args))])


def _regexp_replace(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    args = _nargs(node, (2, 3), sql)
    s, p = args[0], args[1]
    r = args[2] if len(args) == 3 else exp.Literal.string("")
    if isinstance(r, exp.Literal) and r.is_string:
        try:
            r = exp.Literal.string(java_replacement_to_re2(r.this))
        except ValueError as e:
            raise QueryError(f"regexp_replace(): {e}") from None
    return _call("REGEXP_REPLACE", s, p, r, exp.Literal.string("g"))


def _split_part(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    s, d, i = _nargs(node, (3,), sql)
    parts = _call("LEN", _call("STRING_SPLIT", s.copy(), d.copy()))
    return exp.Case(ifs=[exp.If(this=exp.GTE(this=parts, expression=i.copy()), true=_call("SPLIT_PART", s, d, i))])


def _cardinality(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    (x,) = _nargs(node, (1,), sql)
    return _call("CARDINALITY", x)


def _format(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    # Presto's format() is Java's String.format; DuckDB's printf() reads the
    # same %s, %d, %.2f, %x, %05d... specifiers (DuckDB's format() uses {}).
    return _call("PRINTF", *node.expressions)


def _approx_distinct(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    args = _nargs(node, (1, 2), sql)
    return _call("APPROX_COUNT_DISTINCT", args[0])


def _approx_percentile(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression:
    args = _nargs(node, (2, 3, 4), sql)
    if len(args) != 2:
        raise QueryError(
            f"approx_percentile() at {_where(node, sql)}: the weighted and accuracy forms are not "
            "supported; use approx_percentile(x, p) or approx_percentile(x, ARRAY[p1, p2])"
        )
    return _call("APPROX_QUANTILE", *args)


class Function(NamedTuple):
    """What this module knows of a Presto function that sqlglot leaves as an anonymous call."""

    #: The DuckDB form, or None to keep the call as it is.
    rewrite: Callable[[exp.Anonymous, str | None, str], exp.Expression] | None
    #: The result type ('int', 'varchar', ...), FIRST_ARG or LAST_ARG (the
    #: type of that argument), or None (unknown).
    returns: str | int | None


#: The type of a call is that of its first (last) argument.
FIRST_ARG, LAST_ARG = 0, -1

#: The Presto functions translated or typed here, by upper-case name. Those
#: with a rewrite are functions that sqlglot would translate wrongly: they
#: are parsed as plain (anonymous) calls and rewritten here. The others are
#: anonymous in sqlglot already; only their result type is known here.
FUNCTIONS = {
    "PARSE_DATETIME": Function(_pattern_call("STRPTIME", joda_to_strftime), "timestamp"),
    "FORMAT_DATETIME": Function(_pattern_call("STRFTIME", joda_to_strftime), "varchar"),
    "DATE_PARSE": Function(_pattern_call("STRPTIME", mysql_to_strftime), "timestamp"),
    "DATE_FORMAT": Function(_pattern_call("STRFTIME", mysql_to_strftime), "varchar"),
    "DATE_DIFF": Function(_date_diff, "int"),
    "DATE_ADD": Function(_date_add, LAST_ARG),
    "DATE_TRUNC": Function(_date_trunc, LAST_ARG),
    "REGEXP_EXTRACT": Function(_regexp_extract, "varchar"),
    "REGEXP_REPLACE": Function(_regexp_replace, "varchar"),
    "SPLIT_PART": Function(_split_part, "varchar"),
    "CARDINALITY": Function(_cardinality, "int"),
    "APPROX_PERCENTILE": Function(_approx_percentile, FIRST_ARG),
    "APPROX_DISTINCT": Function(_approx_distinct, "int"),
    "FORMAT": Function(_format, None),
    **dict.fromkeys(
        "RANK DENSE_RANK NTILE HOUR MINUTE SECOND MILLISECOND DAY_OF_WEEK DOW DAY_OF_YEAR DOY WEEK WEEK_OF_YEAR "
        "YEAR_OF_WEEK YOW BIT_COUNT LEVENSHTEIN_DISTANCE".split(),
        Function(None, "int"),
    ),
    "FROM_ISO8601_TIMESTAMP": Function(None, "timestamp"),
    "FROM_UNIXTIME": Function(None, "timestamp"),
}


#: The functions parsed as plain (anonymous) calls, to be rewritten here.
REWRITTEN = frozenset(name for name, function in FUNCTIONS.items() if function.rewrite)


class CrashPresto(Presto):
    """Presto as sqlglot reads it, minus the functions this module translates itself."""

    class Parser(Presto.Parser):
        FUNCTIONS = {k: v for k, v in Presto.Parser.FUNCTIONS.items() if k not in REWRITTEN}


def _rewrite_function(node: exp.Anonymous, last_arg_type: str | None, sql: str) -> exp.Expression | None:
    """The DuckDB form of a call parsed as anonymous; ``last_arg_type`` is the inferred type of its last argument."""
    function = FUNCTIONS.get(node.name.upper())
    if function is None or function.rewrite is None:
        return None
    return function.rewrite(node, last_arg_type, sql)


def _name_output_columns(tree: exp.Expression) -> None:
    """Presto names an output column that has no alias ``_col<position>``."""
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if isinstance(select, exp.Subquery):
        select = select.unnest()
    if not isinstance(select, exp.Select):
        return
    for i, e in enumerate(select.expressions):
        if isinstance(e, (exp.Alias, exp.Column, exp.Star)) or (isinstance(e, exp.Dot) and e.is_star):
            continue
        e.replace(exp.alias_(e.copy(), f"_col{i}"))


def _unnest_map(node: exp.Unnest, arg_types: list) -> exp.Expression | None:
    """Presto's UNNEST(map) AS u(k, v) and UNNEST(a, b) AS u(x, y) as a lateral subquery."""
    alias = node.args.get("alias")
    columns = [c.name for c in alias.columns] if alias is not None else []
    args = node.expressions
    offset = node.args.get("offset")
    if not columns:
        return None
    if isinstance(offset, exp.Identifier):
        columns.append(offset.name)
    elif offset:
        return None
    arrays: list[exp.Expression] = []
    for arg, kind in zip(args, arg_types, strict=False):
        if kind == "map" or (kind is None and len(args) == 1 and len(columns) - bool(offset) == 2):
            arrays += [_call("MAP_KEYS", arg.copy()), _call("MAP_VALUES", arg.copy())]
        else:
            arrays.append(arg.copy())
    if len(args) == 1 and len(arrays) == 1:
        return None  # a plain array: DuckDB reads it like Presto
    if offset:
        arrays.append(
            _call(
                "RANGE",
                exp.Literal.number(1),
                exp.Add(this=_call("LEN", arrays[0].copy()), expression=exp.Literal.number(1)),
            )
        )
    if len(columns) != len(arrays):
        raise QueryError(
            f"UNNEST produces {len(arrays)} columns here "
            f"but the alias {alias.name}({', '.join(columns)}) names {len(columns)}"
        )
    select = exp.select(*[exp.alias_(_call("UNNEST", a), c) for a, c in zip(arrays, columns, strict=False)])
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias.name or "_unnest")))


def to_duckdb(tree: exp.Expression, sql: str) -> str:
    """The DuckDB SQL for a parsed Presto statement (the tree is changed in place)."""
    _name_output_columns(tree)
    types = Types(tree)
    # Decide everything on the original tree first: once a child is rewritten
    # its type can no longer be read from it. Holding ``originals`` keeps the
    # nodes alive, so their ids stay unique while the plan is used.
    originals = list(tree.walk())
    plan: dict[int, object] = {}
    for node in reversed(originals):  # children before their parents
        if isinstance(node, exp.Div):
            plan[id(node)] = types.of(node.left) == "int" and types.of(node.right) == "int"
        elif isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.right, exp.Interval):
            plan[id(node)] = types.of(node.left) == "date" and _date_unit(node.right)
        elif isinstance(node, (exp.Sum, exp.CountIf)):
            plan[id(node)] = isinstance(node, exp.CountIf) or types.of(node.this) == "int"
        elif isinstance(node, exp.Anonymous):
            plan[id(node)] = types.of(node.expressions[-1]) if node.expressions else None
        elif isinstance(node, exp.Unnest):
            plan[id(node)] = [types.of(a) for a in node.expressions]
    for node in reversed(originals):
        decision = plan.get(id(node))
        new = None
        if isinstance(node, exp.Anonymous):
            new = _rewrite_function(node, decision, sql)
        elif isinstance(node, exp.Div):
            if decision:
                new = exp.IntDiv(this=node.left, expression=node.right)
            else:
                node.set("typed", False)
        elif isinstance(node, (exp.Add, exp.Sub)) and decision:
            new = exp.Cast(this=exp.Paren(this=node.copy()), to=exp.DataType.build("DATE"))
        elif isinstance(node, exp.Unnest):
            new = _unnest_map(node, decision)
        elif isinstance(node, (exp.Sum, exp.CountIf)) and decision:
            # DuckDB sums integers into a 128-bit HUGEINT; Presto answers a BIGINT.
            target = node
            while isinstance(target.parent, (exp.Filter, exp.Window)):
                target = target.parent
            target.replace(exp.Cast(this=target.copy(), to=exp.DataType.build("BIGINT")))
        if new is not None and new is not node:
            node.replace(new)
    del originals
    return generate(tree)


def generate(tree: exp.Expression) -> str:
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as e:
        raise QueryError(f"cannot translate this query to DuckDB: {e}") from None
