"""Query parameters: ``{{ name }}`` placeholders whose values are bound, never pasted into the SQL.

A placeholder becomes a named parameter of DuckDB (``$name``) and its value
travels beside the SQL, so no value can change what the query says:

>>> bind("SELECT * FROM t WHERE channel = {{ channel }}", {"channel": "nightly' OR 1=1 --"})
('SELECT * FROM t WHERE channel = $channel', {'channel': "nightly' OR 1=1 --"})

Types (the ``type`` of a declaration, as saved queries keep them):

- ``text``: a string; ``number``: an int or a float; ``date``: ``YYYY-MM-DD``,
  checked, then bound as that text (it compares with ``submission_date``, a
  DATE, and ``activity_date``, text, alike);
- ``date_range``: ``{"start": ..., "end": ...}``, used as ``{{ name.start }}``
  and ``{{ name.end }}``;
- ``list``: one or more values, used where a list goes: ``IN ({{ name }})``
  (one bound parameter per value). Its choices may come from a query
  (``options_query``: the first column of its answer).

A placeholder written between quotes, ``'{{ name }}'`` (the way re:dash users
write them), is the parameter itself: the quotes go, the value is still bound.
Anywhere else inside a string, a quoted name or a comment, ``{{`` is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from .errors import QueryError

TYPES = ("text", "number", "date", "date_range", "list")
#: Values a list parameter may have (each is one bound parameter).
MAX_LIST = 1000
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _NAME + r")(?:\.(start|end))?\s*\}\}")
_QUOTED = re.compile(r"'" + _PLACEHOLDER.pattern + r"'")


@dataclass(frozen=True)
class Placeholder:
    """One ``{{ name }}`` (or ``{{ name.start }}``) in the SQL: where it is and what it names."""

    name: str
    part: str | None  # "start" or "end" of a date range
    start: int
    end: int


def placeholders(sql: str) -> list[Placeholder]:
    """The placeholders of ``sql`` outside strings, quoted names and comments (a quoted one included).

    >>> [(p.name, p.part) for p in placeholders("SELECT {{ a }}, '{{ b }}', {{r.start}} -- {{ c }}")]
    [('a', None), ('b', None), ('r', 'start')]
    >>> placeholders("SELECT 'x {{ a }}'")
    []
    """
    found = []
    i, n = 0, len(sql)
    while i < n:
        m = (_QUOTED if sql[i] == "'" else _PLACEHOLDER).match(sql, i)
        if m:
            found.append(Placeholder(m.group(1), m.group(2), m.start(), m.end()))
            i = m.end()
            continue
        c = sql[i]
        if c in "'\"":
            close = sql.find(c, i + 1)
            while close != -1 and sql[close + 1 : close + 2] == c:  # '' inside a string
                close = sql.find(c, close + 2)
            i = n if close == -1 else close + 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline == -1 else newline + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close == -1 else close + 2
        else:
            i += 1
    return found


def names(sql: str) -> list[str]:
    """The parameters a query declares, in order of first use.

    >>> names("SELECT {{ b }}, {{ a }}, {{ b }}, {{ r.end }}")
    ['b', 'a', 'r']
    """
    return list(dict.fromkeys(p.name for p in placeholders(sql)))


def kinds(sql: str) -> dict[str, str]:
    """What each parameter's use says of its type: ``date_range`` where a ``.start``/``.end`` is used, else ``value``.

    >>> kinds("SELECT {{ a }} WHERE d BETWEEN {{ r.start }} AND {{ r.end }}")
    {'a': 'value', 'r': 'date_range'}
    """
    found: dict[str, str] = {}
    for p in placeholders(sql):
        if p.part is not None or found.get(p.name) != "date_range":
            found[p.name] = "date_range" if p.part else found.get(p.name, "value")
    return found


def _date(value, name: str) -> str:
    """A checked date as ISO text: DuckDB compares that with DATE columns and with dates kept as text alike."""
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise QueryError(f"parameter {name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _number(value, name: str) -> int | float:
    if isinstance(value, bool):
        raise QueryError(f"parameter {name}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise QueryError(f"parameter {name}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise QueryError(f"parameter {name}: {value!r} is not a finite number")
    return number


def _scalar(value, name: str):
    if isinstance(value, (dict, list)) or value is None:
        raise QueryError(f"parameter {name}: one value expected, not {value!r}")
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else str(value)


def typed(name: str, kind: str, value):
    """A value as its type makes it: str, int/float, a checked date (ISO text), (start, end) or a list of values.

    >>> typed("d", "date", "2016-03-10"), typed("n", "number", "2.5"), typed("r", "date_range", {"start": "2016-03-01", "end": "2016-03-02"})
    ('2016-03-10', 2.5, ('2016-03-01', '2016-03-02'))
    >>> typed("c", "list", ["release", "beta"])
    ['release', 'beta']
    """  # noqa: E501
    if kind not in TYPES:
        raise QueryError(f"parameter {name}: unknown type {kind!r} (one of {', '.join(TYPES)})")
    if kind == "text":
        return str(_scalar(value, name))
    if kind == "number":
        return _number(_scalar(value, name), name)
    if kind == "date":
        return _date(_scalar(value, name), name)
    if kind == "date_range":
        if not isinstance(value, dict) or not {"start", "end"} <= set(value):
            raise QueryError(f'parameter {name}: a date range is {{"start": DATE, "end": DATE}}')
        start, end = _date(value["start"], f"{name}.start"), _date(value["end"], f"{name}.end")
        if start > end:
            raise QueryError(f"parameter {name}: the range starts ({start}) after it ends ({end})")
        return start, end
    values = value if isinstance(value, list) else [value]
    if not values:
        raise QueryError(f"parameter {name}: choose at least one value")
    if len(values) > MAX_LIST:
        raise QueryError(f"parameter {name}: at most {MAX_LIST} values")
    return [_scalar(v, name) for v in values]


def infer(value) -> str:
    """The type of a value given without a declaration.

    >>> [infer(v) for v in ("x", 3, 2.5, ["a"], {"start": "2016-03-01", "end": "2016-03-02"})]
    ['text', 'number', 'number', 'list', 'date_range']
    """
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "date_range"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return "text"


def values_of(sql: str, declared: dict | None, given: dict | None) -> dict[str, object]:
    """Each parameter of ``sql`` typed: the value given, else the declared default; a missing one is an error.

    ``declared``: ``{name: {"type": ..., "default": ...}}`` (a saved query's);
    ``given``: ``{name: value}``, or ``{name: {"type": ..., "value": ...}}``.
    """
    declared, given = declared or {}, given or {}
    out = {}
    for name, use in kinds(sql).items():
        spec = declared.get(name) or {}
        value = given.get(name, spec.get("default"))
        kind = spec.get("type")
        if isinstance(value, dict) and "value" in value:
            kind, value = value.get("type", kind), value["value"]
        if value is None or value == "":
            raise QueryError(f"parameter {name} has no value: fill in its field")
        kind = kind or ("date_range" if use == "date_range" else infer(value))
        if (use == "date_range") != (kind == "date_range"):
            form = "{{ NAME.start }} and {{ NAME.end }}".replace("NAME", name)
            raise QueryError(f"parameter {name}: a date range is used as {form}, and only it is")
        out[name] = typed(name, kind, value)
    return out


def bind(sql: str, values: dict[str, object], marker: str = "$") -> tuple[str, dict[str, object]]:
    """The SQL with each placeholder turned into named parameters, and their values.

    ``values`` as ``values_of`` gives them (untyped values are taken as they are).
    ``marker``: ``$`` for DuckDB SQL, ``:`` for Presto SQL (translation makes it ``$``).

    >>> bind("SELECT 1 WHERE c IN ({{ c }}) AND d >= {{ r.start }}", {"c": ["a", "b"], "r": ("2016-03-01", "2016-03-07")})
    ('SELECT 1 WHERE c IN ($c__0, $c__1) AND d >= $r__start', {'c__0': 'a', 'c__1': 'b', 'r__start': '2016-03-01'})
    """  # noqa: E501
    bound_sql, bound, _ = bind_mapped(sql, values, marker)
    return bound_sql, bound


def bind_mapped(
    sql: str, values: dict[str, object], marker: str = "$"
) -> tuple[str, dict[str, object], list[tuple[int, int]]]:
    """``bind``, and where each placeholder ends: (offset in the bound SQL, offset in ``sql``).

    >>> bind_mapped("SELECT {{ a }} + 1", {"a": 2})
    ('SELECT $a + 1', {'a': 2}, [(9, 14)])
    """
    out, bound, ends, last, length = [], {}, [], 0, 0
    for p in placeholders(sql):
        if p.name not in values:
            raise QueryError(f"parameter {p.name} has no value")
        value = values[p.name]
        if p.part is not None:
            key = f"{p.name}__{p.part}"
            bound[key] = value[0 if p.part == "start" else 1]
            text = f"{marker}{key}"
        elif isinstance(value, list):
            keys = [f"{p.name}__{i}" for i in range(len(value))]
            bound.update(zip(keys, value, strict=True))
            text = ", ".join(f"{marker}{k}" for k in keys)
        else:
            bound[p.name] = value
            text = f"{marker}{p.name}"
        out += [sql[last : p.start], text]
        length += p.start - last + len(text)
        ends.append((length, p.end))
        last = p.end
    out.append(sql[last:])
    return "".join(out), bound, ends
