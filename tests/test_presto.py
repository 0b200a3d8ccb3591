"""Presto SQL → expected rows, on the fixed dataset of sqldata.py.

Each expected answer is what Presto answers, worked out by hand from the rows
written in sqldata.py (comments name the rows: r1..r11), or from literals.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
import sqlglot
from sqldata import ROWS
from sqlglot import exp

import crash_aggregates
from crash_aggregates.sql import QueryError, prepare, presto
from crash_aggregates.sql.presto import joda_to_strftime, mysql_to_strftime

CA = "crash_aggregates"


def rows(table) -> list[tuple]:
    return [tuple(r.values()) for r in table.to_pylist()]


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) and math.isnan(b):
            return True
        return a == pytest.approx(b, rel=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return (
        a == b
        and type(a) is type(b)
        or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b and not isinstance(a, bool))
    )


def assert_rows(actual, expected):
    assert len(actual) == len(expected), f"{actual} != {expected}"
    for got, want in zip(actual, expected, strict=True):
        assert same(list(got), list(want)), f"{got} != {want}"


CASES = [
    # -- map subscripts and element_at: an absent key is NULL ----------------
    (
        f"SELECT dimensions['channel'], dimensions['os_name'] FROM {CA} WHERE activity_date = '2016-03-13'",
        [("release", "Linux")],
    ),  # r2
    (f"SELECT count(*) FROM {CA} WHERE dimensions['experiment_id'] IS NULL", [(10,)]),  # all but r4
    (f"SELECT dimensions['e10s_cohort'] FROM {CA} WHERE dimensions['channel'] = 'aurora'", [(None,)]),  # r10
    (
        f"SELECT element_at(dimensions, 'experiment_branch'), element_at(dimensions, 'no such key') FROM {CA} WHERE dimensions['channel'] = 'nightly' AND submission_date = DATE '2016-03-14'",
        [("control", None)],
    ),  # r4
    (
        "SELECT element_at(ARRAY[10, 20, 30], 2), element_at(ARRAY[10, 20, 30], -1), element_at(ARRAY[10, 20], 5)",
        [(20, 30, None)],
    ),
    # -- map_keys / map_values / cardinality ----------------------------------
    (
        f"SELECT array_sort(map_keys(dimensions)) FROM {CA} WHERE dimensions['channel'] = 'aurora'",
        [(["application", "build_version", "channel", "e10s_enabled", "os_name"],)],
    ),  # r10
    (
        f"SELECT array_sort(map_values(stats)) FROM {CA} WHERE dimensions['channel'] = 'aurora'",
        [([0.0, 0.0, 0.0, 0.0, 0.0, 3.0],)],
    ),
    (
        f"SELECT cardinality(dimensions), cardinality(stats), cardinality(ARRAY['a', 'b']) FROM {CA} WHERE dimensions['channel'] = 'aurora'",
        [(5, 6, 2)],
    ),
    # -- regular expressions --------------------------------------------------
    (
        f"SELECT count(*) FROM {CA} WHERE regexp_like(dimensions['build_id'], '^\\d{{14}}$')",
        [(9,)],
    ),  # not r5 (x), not r10 (absent)
    (
        f"SELECT count(*) FROM {CA} WHERE regexp_like(dimensions['build_version'], 'a\\d')",
        [(3,)],
    ),  # r4 48.0a1, r9 47.0a1, r10 47.0a2
    (
        "SELECT regexp_extract('build 20160301000000 ok', '\\d{8}'), regexp_extract('abc', '\\d+'), regexp_extract('v45.0a1', '(\\d+)\\.(\\d+)', 2)",
        [("20160301", None, "0")],
    ),
    (
        "SELECT regexp_replace('a1b22', '\\d+', '#'), regexp_replace('2016-03-14', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1'), regexp_replace('a1b2', '\\d')",
        [("a#b#", "14/03/2016", "ab")],
    ),
    ("SELECT regexp_replace('cost: 5', '(\\d)', '\\$$1')", [("cost: $5",)]),
    # -- split_part -----------------------------------------------------------
    (
        f"SELECT DISTINCT split_part(dimensions['build_version'], '.', 1) FROM {CA} WHERE dimensions['channel'] = 'beta'",
        [("46",)],
    ),
    ("SELECT split_part('a.b', '.', 2), split_part('a.b', '.', 3)", [("b", None)]),
    # -- MySQL-style date_parse / date_format ----------------------------------
    ("SELECT date_parse('2016-03-14 13:05:09', '%Y-%m-%d %H:%i:%s')", [(datetime(2016, 3, 14, 13, 5, 9),)]),
    ("SELECT date_parse('3/7/16', '%c/%e/%y')", [(datetime(2016, 3, 7),)]),
    (
        "SELECT date_format(TIMESTAMP '2016-03-14 13:05:09', '%Y/%m/%d %H:%i'), date_format(DATE '2016-03-06', '%W %M %e'), date_format(TIMESTAMP '2016-03-14 13:05:09', '%T %p %j')",
        [("2016/03/14 13:05", "Sunday March 6", "13:05:09 PM 074")],
    ),
    # -- Joda parse_datetime / format_datetime ---------------------------------
    ("SELECT parse_datetime('20160301123456', 'yyyyMMddHHmmss')", [(datetime(2016, 3, 1, 12, 34, 56),)]),
    ("SELECT parse_datetime('2016-03-01T12:34', 'yyyy-MM-dd''T''HH:mm')", [(datetime(2016, 3, 1, 12, 34),)]),
    (
        "SELECT format_datetime(TIMESTAMP '2016-03-01 12:34:56', 'yyyy-MM-dd HH:mm'), format_datetime(TIMESTAMP '2016-03-01 12:34:56', 'EEEE d MMMM yyyy')",
        [("2016-03-01 12:34", "Tuesday 1 March 2016")],
    ),
    (
        f"SELECT min(parse_datetime(dimensions['build_id'], 'yyyyMMddHHmmss')) FROM {CA} WHERE dimensions['channel'] = 'nightly'",
        [(datetime(2016, 1, 15),)],
    ),  # r9
    # -- dates ----------------------------------------------------------------
    ("SELECT from_iso8601_date('2016-03-14')", [(date(2016, 3, 14),)]),
    (
        "SELECT date_trunc('month', DATE '2016-03-14'), date_trunc('week', DATE '2016-03-13'), date_trunc('year', DATE '2016-03-13'), date_trunc('quarter', DATE '2016-05-17')",
        [(date(2016, 3, 1), date(2016, 3, 7), date(2016, 1, 1), date(2016, 4, 1))],
    ),
    (
        "SELECT date_trunc('hour', TIMESTAMP '2016-03-14 13:45:10'), date_trunc('day', TIMESTAMP '2016-03-14 13:45:10')",
        [(datetime(2016, 3, 14, 13), datetime(2016, 3, 14))],
    ),
    (f"SELECT DISTINCT date_trunc('month', submission_date) FROM {CA}", [(date(2016, 3, 1),)]),
    (
        "SELECT date_diff('day', DATE '2016-03-01', DATE '2016-03-14'), date_diff('hour', TIMESTAMP '2016-03-01 23:00:00', TIMESTAMP '2016-03-02 01:00:00'), date_diff('day', TIMESTAMP '2016-03-01 23:00:00', TIMESTAMP '2016-03-02 01:00:00'), date_diff('month', DATE '2016-01-15', DATE '2016-03-14'), date_diff('week', DATE '2016-03-01', DATE '2016-03-14')",
        [(13, 2, 0, 1, 1)],
    ),
    (
        "SELECT date_add('day', -7, DATE '2016-03-14'), date_add('month', 1, DATE '2016-01-31'), date_add('hour', 2, TIMESTAMP '2016-03-14 23:00:00'), date_add('week', 2, DATE '2016-03-14')",
        [(date(2016, 3, 7), date(2016, 2, 29), datetime(2016, 3, 15, 1), date(2016, 3, 28))],
    ),
    (
        f"SELECT DISTINCT date_add('day', 1, submission_date) FROM {CA} WHERE submission_date = DATE '2016-03-15'",
        [(date(2016, 3, 16),)],
    ),
    (
        "SELECT date_diff('day', DATE '2016-03-01', DATE '2016-03-14') / 7, date_add('day', 1, date_trunc('month', DATE '2016-03-14'))",
        [(1, date(2016, 3, 2))],
    ),
    (f"SELECT count(*) FROM {CA} WHERE submission_date >= date_add('day', -1, DATE '2016-03-16')", [(6,)]),  # r6..r11
    (
        "SELECT DATE '2016-03-14' - INTERVAL '7' DAY, DATE '2016-03-14' + INTERVAL '1' MONTH",
        [(date(2016, 3, 7), date(2016, 4, 14))],
    ),
    (
        f"SELECT count(*) FROM {CA} WHERE date_diff('day', date(activity_date), submission_date) >= 1",
        [(3,)],
    ),  # r2, r5, r7
    # -- approximate aggregates (exact on so few values) -----------------------
    (
        f"SELECT approx_distinct(dimensions['channel']), approx_distinct(dimensions['build_id'], 0.01) FROM {CA}",
        [(4, 5)],
    ),
    ("SELECT approx_percentile(x, 0.5) FROM UNNEST(ARRAY[1, 2, 3, 4, 5]) AS t(x)", [(3,)]),
    # -- try_cast / if / coalesce / case ---------------------------------------
    (
        "SELECT try_cast('12' AS integer), try_cast('x' AS integer), try_cast('2016-03-14' AS date)",
        [(12, None, date(2016, 3, 14))],
    ),
    (
        "SELECT if(1 > 2, 'a', 'b'), if(1 > 2, 'a'), coalesce(NULL, 'c'), CASE WHEN 1 = 1 THEN 'yes' ELSE 'no' END",
        [("b", None, "c", "yes")],
    ),
    (
        f"SELECT coalesce(dimensions['e10s_cohort'], 'none') AS cohort, count(*) FROM {CA} GROUP BY 1 ORDER BY 1",
        [("control", 2), ("none", 2), ("test", 7)],
    ),
    (
        f"SELECT sum(if(dimensions['channel'] = 'release', stats['main_crashes'], 0)) FROM {CA}",
        [(315.0,)],
    ),  # r1 120 + r2 40 + r5 5 + r6 130 + r7 20
    # -- integer division truncates, as in Presto ------------------------------
    ("SELECT 7 / 2, -7 / 2, 7 % 3, 7.0 / 2, CAST(7 AS double) / 2", [(3, -3, 1, 3.5, 3.5)]),
    (
        f"SELECT count(*) / 2, count(*) / 2.0, sum(stats['main_crashes']) / 2 FROM {CA}",
        [(5, 5.5, 431.5)],
    ),  # 11 rows, 863 crashes
    (f"WITH c AS (SELECT count(*) AS n FROM {CA}) SELECT n / 3, n * 1.0 / 3 FROM c", [(3, 11 / 3)]),
    (
        f"SELECT 1000 * sum(stats['main_crashes']) / sum(stats['usage_hours']) FROM {CA} WHERE dimensions['channel'] = 'aurora'",
        [(math.inf,)],
    ),  # r10: no usage
    (
        f"SELECT sum(cardinality(dimensions)), count_if(stats['main_crashes'] >= 100), sum(1) FILTER (WHERE dimensions['channel'] = 'beta') FROM {CA}",
        [(86, 4, 3)],
    ),  # 8 keys in 8 rows, r4 10 (experiment), r8 7 (no cohort), r10 5
    ("SELECT format('%s has %d crashes, %.2f per hour', 'beta', 45, 0.5)", [("beta has 45 crashes, 0.50 per hour",)]),
    # -- window functions -------------------------------------------------------
    (
        f"SELECT channel, usage, rank() OVER (ORDER BY usage DESC) FROM (SELECT dimensions['channel'] AS channel, sum(stats['usage_hours']) AS usage FROM {CA} GROUP BY 1) ORDER BY 3",
        [("nightly", 520000.0, 1), ("release", 420000.0, 2), ("beta", 270000.0, 3), ("aurora", 0.0, 4)],
    ),
    (
        f"SELECT submission_date, sum(stats['main_crashes']), sum(sum(stats['main_crashes'])) OVER (ORDER BY submission_date) FROM {CA} GROUP BY 1 ORDER BY 1",
        [(date(2016, 3, 14), 355.0, 355.0), (date(2016, 3, 15), 508.0, 863.0)],
    ),
    (
        f"SELECT activity_date, row_number() OVER (PARTITION BY activity_date ORDER BY stats['usage_hours'] DESC) AS n FROM {CA} WHERE submission_date = DATE '2016-03-14' ORDER BY 1, 2",
        [("2016-03-12", 1), ("2016-03-13", 1), ("2016-03-14", 1), ("2016-03-14", 2), ("2016-03-14", 3)],
    ),
    # -- FILTER clauses ---------------------------------------------------------
    (
        f"SELECT count(*) FILTER (WHERE stats['main_crashes'] > 100), sum(stats['usage_hours']) FILTER (WHERE dimensions['channel'] = 'beta') FROM {CA}",
        [(3, 270000.0)],
    ),  # r1, r6, r8
    # -- CROSS JOIN UNNEST --------------------------------------------------------
    (
        f"SELECT k, count(*) FROM {CA} CROSS JOIN UNNEST(dimensions) AS t(k, v) WHERE k IN ('channel', 'experiment_id', 'country') GROUP BY k ORDER BY k",
        [("channel", 11), ("country", 10), ("experiment_id", 1)],
    ),
    (f"SELECT sum(v) FROM {CA} CROSS JOIN UNNEST(stats) AS t(k, v) WHERE k = 'main_crashes'", [(863.0,)]),
    (f"SELECT count(*) FROM {CA} CROSS JOIN UNNEST(ARRAY['a', 'b']) AS t(x)", [(22,)]),
    (
        f"SELECT x, n FROM {CA} CROSS JOIN UNNEST(ARRAY['a', 'b']) WITH ORDINALITY AS t(x, n) WHERE dimensions['channel'] = 'aurora' ORDER BY n",
        [("a", 1), ("b", 2)],
    ),
    (
        f"SELECT count(*) FROM {CA} CROSS JOIN UNNEST(map_keys(dimensions)) AS t(k) WHERE dimensions['channel'] = 'aurora'",
        [(5,)],
    ),
    ("SELECT x, y FROM UNNEST(ARRAY[1, 2], ARRAY['a', 'b']) AS t(x, y) ORDER BY x", [(1, "a"), (2, "b")]),
    # -- WITH, UNION ALL, subqueries --------------------------------------------
    ("WITH a AS (SELECT 'x' AS k, 1 AS n UNION ALL SELECT 'y', 2) SELECT k, n FROM a ORDER BY n", [("x", 1), ("y", 2)]),
    (
        f"SELECT 'published' AS what, count(*) FROM {CA} UNION ALL SELECT 'days', count(DISTINCT submission_date) FROM {CA}",
        [("published", 11), ("days", 2)],
    ),
    (
        f"SELECT count(*) FROM {CA} WHERE dimensions['channel'] IN (SELECT dimensions['channel'] FROM {CA} WHERE stats['usage_hours'] > 100000)",
        [(10,)],
    ),  # release r5, beta r8, nightly r9: 5 + 3 + 2 rows
    # -- the table itself --------------------------------------------------------
    (
        f"SELECT submission_date, count(*) FROM {CA} GROUP BY 1 ORDER BY 1",
        [(date(2016, 3, 14), 5), (date(2016, 3, 15), 6)],
    ),
    (f"SELECT count(*) FROM {CA} WHERE submission_date = '2016-03-15'", [(6,)]),
]


@pytest.mark.parametrize("sql, expected", CASES, ids=[c[0][:60] for c in CASES])
def test_presto_query(dataset, sql, expected):
    assert_rows(rows(crash_aggregates.query(sql, dataset)), expected)


def test_expected_values_agree_with_the_rows():
    """The hand-written totals above, checked against sqldata.ROWS in plain Python."""
    assert sum(r["stats"]["main_crashes"] for r in ROWS) == 863
    assert sum(r["stats"]["main_crashes"] for r in ROWS if r["dimensions"]["channel"] == "release") == 315
    by_channel = {}
    for r in ROWS:
        by_channel[r["dimensions"]["channel"]] = (
            by_channel.get(r["dimensions"]["channel"], 0) + r["stats"]["usage_hours"]
        )
    assert by_channel == {"release": 420000, "beta": 270000, "nightly": 520000, "aurora": 0}
    assert len({r["dimensions"].get("build_id") for r in ROWS} - {None}) == 5


def test_unnamed_columns_are_named_as_presto_names_them(dataset):
    table = crash_aggregates.query(
        f"SELECT dimensions['channel'], count(*), activity_date, count(*) AS n FROM {CA} GROUP BY 1, 3", dataset
    )
    assert table.column_names == ["_col0", "_col1", "activity_date", "n"]


def test_duckdb_dialect_runs_duckdb_sql(dataset):
    table = crash_aggregates.query(
        f"SELECT 7 / 2 AS d, list_sort(map_keys(dimensions))[1] AS k FROM {CA} LIMIT 1", dataset, dialect="duckdb"
    )
    assert rows(table) == [(3.5, "application")]


@pytest.mark.parametrize(
    "joda, strftime",
    [
        ("yyyyMMddHHmmss", "%Y%m%d%H%M%S"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSSZ", "%Y-%m-%dT%H:%M:%S.%g%z"),
        ("d/M/yy h:mm a", "%-d/%-m/%y %-I:%M %p"),
        ("EEE, dd MMM yyyy", "%a, %d %b %Y"),
        ("'it''s' 100%", "it's 100%%"),
        ("xxxx-'W'ww-e", "%G-W%V-%u"),
    ],
)
def test_joda_patterns(joda, strftime):
    assert joda_to_strftime(joda) == strftime


@pytest.mark.parametrize(
    "mysql, strftime",
    [
        ("%Y-%m-%d %H:%i:%s", "%Y-%m-%d %H:%M:%S"),
        ("%c/%e/%y %k:%i", "%-m/%-d/%y %-H:%M"),
        ("%a %b %W %M %p %r %T %f %j %v %x", "%a %b %A %B %p %I:%M:%S %p %H:%M:%S %f %j %V %G"),
        ("100%%", "100%%"),
    ],
)
def test_mysql_patterns(mysql, strftime):
    assert mysql_to_strftime(mysql) == strftime


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT parse_datetime('2016', 'GGGG')", "letter 'G'"),
        ("SELECT date_format(DATE '2016-03-01', '%D')", "%D"),
        ("SELECT date_add('fortnight', 1, DATE '2016-03-01')", "unit must be one of"),
        ("SELECT approx_percentile(x, 1, 0.5) FROM UNNEST(ARRAY[1]) AS t(x)", "weighted"),
        ("SELECT regexp_replace('a', 'a', '${name}')", "group references"),
    ],
)
def test_untranslatable_calls_are_refused_clearly(sql, message):
    with pytest.raises(QueryError) as info:
        prepare(sql)
    assert message in str(info.value) and info.value.exit_code == 2


@pytest.mark.parametrize("name", sorted(presto.REWRITTEN))
def test_every_rewritten_function_is_parsed_as_a_plain_call(name):
    """The one table of functions decides what sqlglot leaves to this module."""
    call = sqlglot.parse_one(f"SELECT {name.lower()}(a, b, c) FROM t", read=presto.CrashPresto).expressions[0]
    assert isinstance(call, exp.Anonymous) and call.name.upper() == name


@pytest.mark.parametrize(
    "sql, kind",
    [
        ("date_diff('day', submission_date, submission_date)", "int"),
        ("date_add('day', 1, submission_date)", "date"),
        ("date_trunc('month', activity_date)", "varchar"),
        ("approx_percentile(stats['usage_hours'], 0.5)", "double"),
        ("parse_datetime(activity_date, 'yyyy')", "timestamp"),
        ("split_part(activity_date, '-', 1)", "varchar"),
        ("bit_count(5, 64)", "int"),
        ("format('%d', 1)", None),
        ("no_such_function(1)", None),
    ],
)
def test_result_types_come_from_the_table(sql, kind):
    tree = sqlglot.parse_one(f"SELECT {sql} FROM crash_aggregates", read=presto.CrashPresto)
    assert presto.Types(tree).of(tree.expressions[0]) == kind
