"""Questions about crash rates, asked of the aggregates as SQL with bound parameters.

A :class:`Question` names the stats to sum, the dimensions to group by, the
filters, and a date range on one of the two date axes; every name is checked
against the configuration. It becomes one SQL tree, written two ways:

- DuckDB SQL with named parameters (``$p0``, ...) for every value, run on
  the fenced connection of ``crash_aggregates.sql.connect`` and reading the
  flat sidecar columns where it can (``sql.flat_view``), as ``sql`` does;
- Presto SQL with the values written in as literals (:func:`presto_sql`),
  which a user can paste into ``crash-aggregates sql`` for the same numbers.

>>> from datetime import date
>>> q = Question(stats=("main_crashes", "usage_hours"), start=date(2016, 3, 9), end=date(2016, 3, 15),
...              where=(("channel", "nightly"),))
>>> print(presto_sql(q))
SELECT
  activity_date AS day,
  SUM(stats['main_crashes']) AS "main_crashes",
  SUM(stats['usage_hours']) AS "usage_hours"
FROM crash_aggregates
WHERE
  activity_date BETWEEN '2016-03-09' AND '2016-03-15'
  AND dimensions['channel'] = 'nightly'
GROUP BY
  activity_date
ORDER BY
  day
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from sqlglot import exp

from .config import Config
from .errors import CrashAggregatesError, ExitCode

#: The date axes: the client's activity date, or the day the server received the pings.
AXES = ("activity", "submission")
#: The group that collects every group beyond the top N.
OTHER = "other"
#: Activity dates are clamped into [D - 7, D] for submission date D (SPEC section 3).
LATE_DAYS = 7
DEFAULT_TIMEOUT = 60.0


class QuestionError(CrashAggregatesError, ValueError):
    """A question that names what the configuration does not have, or cannot be asked."""

    exit_code = ExitCode.USAGE


def exposure_stat(config: Config) -> str:
    """The stat that counts usage hours (the rates' denominator)."""
    for stat in config.stats:
        if stat.builtin == "usage_hours":
            return stat.name
    raise QuestionError('the configuration has no usage-hours stat (builtin = "usage_hours")')


def count_stat(config: Config) -> str | None:
    """The stat that counts main pings, if the configuration has one."""
    return next((s.name for s in config.stats if s.builtin == "ping_count"), None)


def crash_stats(config: Config) -> list[str]:
    """The stats that count crashes: every configured stat but the ping count and the usage hours.

    >>> from crash_aggregates.config import default_config
    >>> crash_stats(default_config())[:3]
    ['main_crashes', 'content_crashes', 'plugin_crashes']
    """
    return [s.name for s in config.stats if s.builtin not in ("ping_count", "usage_hours")]


@dataclass(frozen=True)
class Question:
    """Sums of ``stats`` per group of ``by`` (and per date), over a date range, for the rows the filters keep."""

    stats: tuple[str, ...]
    start: date
    end: date
    by: tuple[str, ...] = ()
    #: ``(dimension, value)`` pairs: a row is kept when each filtered dimension has one of its values.
    where: tuple[tuple[str, str], ...] = ()
    #: Dimensions that must be absent from the row.
    absent: tuple[str, ...] = ()
    #: The date axis of the range (and of the per-date split).
    axis: str = "activity"
    #: One answer per date of the axis (else totals over the range).
    per_day: bool = True
    #: With one ``by`` dimension: keep the ``top`` groups by ``rank_stat``, sum the others as "other".
    top: int | None = None
    rank_stat: str = "usage_hours"

    def check(self, config: Config) -> None:
        """Raise QuestionError unless every name is configured and the question makes sense."""
        dimensions = [d.name for d in config.dimensions]
        stat_names = config.stat_columns()
        for name in self.stats + ((self.rank_stat,) if self.top is not None else ()):
            if name not in stat_names:
                raise QuestionError(f"unknown stat {name!r} (known: {', '.join(stat_names)})")
        for name in (*self.by, *(d for d, _ in self.where), *self.absent):
            if name not in dimensions:
                raise QuestionError(f"unknown dimension {name!r} (known: {', '.join(dimensions)})")
        if not self.stats:
            raise QuestionError("no stat to sum")
        if self.axis not in AXES:
            raise QuestionError(f"unknown date axis {self.axis!r} (known: {', '.join(AXES)})")
        if self.start > self.end:
            raise QuestionError(f"the range starts ({self.start}) after it ends ({self.end})")
        if len(set(self.by)) != len(self.by):
            raise QuestionError("a dimension is given twice to group by")
        if self.top is not None and (len(self.by) != 1 or self.top < 1):
            raise QuestionError("top N needs exactly one dimension to group by, and N >= 1")
        if self.top is not None and self.rank_stat not in self.stats:
            raise QuestionError(f"top N ranks the groups by {self.rank_stat}, which the question must sum")
        filtered = {d for d, _ in self.where}
        if filtered & set(self.absent):
            raise QuestionError(
                f"a dimension cannot both have a value and be absent: {sorted(filtered & set(self.absent))}"
            )


class Answer(NamedTuple):
    """One row of the answer: the group's values (one per ``by``), the date or None, the sums."""

    group: tuple
    day: str | None
    sums: tuple[float, ...]


# -- the SQL tree ----------------------------------------------------------------


def _subscript(map_name: str, key: str) -> exp.Bracket:
    return exp.Bracket(this=exp.column(map_name), expressions=[exp.Literal.string(key)])


def _name(text: str) -> exp.Identifier:
    return exp.to_identifier(text, quoted=True)


class _Params:
    """The values of a tree's placeholders, by name."""

    def __init__(self):
        self.values: dict[str, object] = {}

    def __call__(self, value) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name)


def _filters(q: Question, bind: _Params, *, prune: bool) -> list[exp.Expression]:
    column = exp.column("activity_date" if q.axis == "activity" else "submission_date")
    if q.axis == "activity":  # activity_date is a 'YYYY-MM-DD' string
        conditions = [exp.Between(this=column, low=bind(q.start.isoformat()), high=bind(q.end.isoformat()))]
        if prune:
            # Only partitions that can hold these activity dates are opened (the answer is the same).
            late = q.end + timedelta(days=LATE_DAYS)
            conditions.append(exp.Between(this=exp.column("submission_date"), low=bind(q.start), high=bind(late)))
    else:
        conditions = [exp.Between(this=column, low=bind(q.start), high=bind(q.end))]
    values: dict[str, list[str]] = {}
    for dimension, value in q.where:
        values.setdefault(dimension, []).append(value)
    for dimension, wanted in values.items():
        key = _subscript("dimensions", dimension)
        if len(wanted) == 1:
            conditions.append(exp.EQ(this=key, expression=bind(wanted[0])))
        else:
            conditions.append(exp.In(this=key, expressions=[bind(v) for v in wanted]))
    for dimension in q.absent:
        conditions.append(exp.Is(this=_subscript("dimensions", dimension), expression=exp.Null()))
    return conditions


def build(q: Question, *, prune: bool = False) -> tuple[exp.Query, dict[str, object]]:
    """The question's SQL tree (values as placeholders) and the values."""
    bind = _Params()
    day = exp.column("activity_date" if q.axis == "activity" else "submission_date")
    keys = [_subscript("dimensions", d) for d in q.by]
    sums = [exp.Sum(this=_subscript("stats", s)) for s in q.stats]
    where = exp.and_(*_filters(q, bind, prune=prune))
    group = [k.copy() for k in keys] + ([day.copy()] if q.per_day else [])
    if q.top is None:
        select = exp.select(
            *(exp.alias_(k, _name(d)) for k, d in zip(keys, q.by, strict=True)),
            *([exp.alias_(day, "day")] if q.per_day else []),
            *(exp.alias_(s, _name(n)) for s, n in zip(sums, q.stats, strict=True)),
        ).from_("crash_aggregates")
        select = select.where(where)
        if group:
            select = select.group_by(*group).order_by(*_order(q, [_name(d) for d in q.by]))
        return select, bind.values
    # The top N groups by the rank stat over the whole range; the rest summed as one group.
    inner = [f"s{i}" for i in range(len(q.stats))]
    daily = (
        exp.select(
            exp.alias_(keys[0], "grp"),
            *([exp.alias_(day, "day")] if q.per_day else []),
            *(exp.alias_(s, n) for s, n in zip(sums, inner, strict=True)),
        )
        .from_("crash_aggregates")
        .where(where)
        .group_by(*group)
    )
    rank_sum = exp.Sum(this=exp.column(inner[q.stats.index(q.rank_stat)]))
    order = exp.Order(
        expressions=[exp.Ordered(this=rank_sum, desc=True), exp.Ordered(this=exp.column("grp"), nulls_first=False)]
    )
    ranked = (
        exp.select(exp.column("grp"), exp.alias_(exp.Window(this=exp.RowNumber(), order=order), "n"))
        .from_("daily")
        .group_by(exp.column("grp"))
    )
    label = exp.Case(
        ifs=[exp.If(this=exp.LTE(this=exp.column("n", table="ranked"), expression=bind(q.top)),
                    true=exp.column("grp", table="daily"))],
        default=exp.Literal.string(OTHER),
    )  # fmt: skip
    outer = (
        exp.select(
            exp.alias_(label, _name(q.by[0])),
            *([exp.column("day", table="daily")] if q.per_day else []),
            *(
                exp.alias_(exp.Sum(this=exp.column(n, table="daily")), _name(s))
                for n, s in zip(inner, q.stats, strict=True)
            ),
        )
        .from_("daily")
        .join(
            "ranked",
            on=exp.NullSafeEQ(this=exp.column("grp", table="daily"), expression=exp.column("grp", table="ranked")),
        )
        .group_by(label.copy(), *([exp.column("day", table="daily")] if q.per_day else []))
        .order_by(*_order(q, [_name(q.by[0])]))
        .with_("daily", as_=daily)
        .with_("ranked", as_=ranked)
    )
    return outer, bind.values


def _order(q: Question, names: list[exp.Identifier]) -> list[exp.Ordered]:
    keys = [exp.Ordered(this=exp.column(n.copy()), nulls_first=False) for n in names]
    return keys + ([exp.Ordered(this=exp.column("day"))] if q.per_day else [])


def _literal(value) -> exp.Expression:
    if isinstance(value, date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("date"))
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def presto_sql(q: Question) -> str:
    """The question as Presto SQL, values written in: what ``crash-aggregates sql`` answers the same."""
    tree, values = build(q)
    tree = tree.transform(lambda n: _literal(values[n.name]) if isinstance(n, exp.Placeholder) else n)
    return tree.sql(dialect="presto", pretty=True)


def duckdb_sql(q: Question, flat_columns: set[str]) -> tuple[str, dict[str, object]]:
    """The question as DuckDB SQL with named parameters, reading the flat columns where it can."""
    from .sql.flat_view import use_flat_view
    from .sql.presto import generate

    tree, values = build(q, prune=True)
    fast = use_flat_view(tree, flat_columns)
    return generate(fast if fast is not None else tree), values


def ask(q: Question, conn, *, timeout: float | None = DEFAULT_TIMEOUT) -> list[Answer]:
    """Run the question on a connection of ``crash_aggregates.sql.connect``."""
    from .sql.engine import check_statement, execute, flat_columns

    sql, values = duckdb_sql(q, flat_columns(conn))
    check_statement(conn, sql)
    width = len(q.by)
    rows = []
    with execute(conn, sql, timeout=timeout, params=values) as result:
        for batch in result:
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                day = row[width] if q.per_day else None
                if isinstance(day, date):
                    day = day.isoformat()
                rows.append(Answer(tuple(row[:width]), day, tuple(row[width + q.per_day :])))
    return rows
