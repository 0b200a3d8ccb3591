"""Map subscripts read from the flat sidecars: which queries are rewritten, and that answers do not change."""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from datetime import date

import pytest
from sqldata import ROWS, _dims, _row, build, strip_sidecars
from test_presto import CASES

import crash_aggregates
from crash_aggregates.sql import connect, plan, prepare
from crash_aggregates.sql.flat_view import use_flat_view
from crash_aggregates.sql.presto import generate

#: The flat columns of the sidecars, as the rewrite is told about them.
COLUMNS = {
    "dimensions['channel']",
    "dimensions['os_name']",
    "dimensions['it''s']",
    "stats['usage_hours']",
    "stats['main_crashes']",
}
W = "crash_aggregates_flat AS crash_aggregates"

# (dialect, query, the DuckDB SQL after the rewrite, or None: left as it is)
REWRITES = [
    # -- rewritten ------------------------------------------------------------------------
    (
        "presto",
        "SELECT dimensions['channel'] AS channel, sum(stats['usage_hours']) AS hours FROM crash_aggregates "
        "WHERE submission_date >= DATE '2016-03-01' GROUP BY dimensions['channel'] ORDER BY 2 DESC",
        f"SELECT \"dimensions['channel']\" AS channel, SUM(\"stats['usage_hours']\") AS hours FROM {W} "
        "WHERE submission_date >= CAST('2016-03-01' AS DATE) GROUP BY \"dimensions['channel']\" ORDER BY 2 DESC",
    ),
    (
        "presto",
        "SELECT element_at(dimensions, 'os_name') FROM crash_aggregates",
        f"SELECT \"dimensions['os_name']\" AS _col0 FROM {W}",
    ),
    (
        "presto",
        "SELECT t.dimensions['channel'], sum(t.stats['main_crashes']) FROM crash_aggregates AS t GROUP BY 1",
        "SELECT t.\"dimensions['channel']\" AS _col0, SUM(t.\"stats['main_crashes']\") AS _col1 FROM crash_aggregates_flat AS t GROUP BY 1",
    ),
    ("presto", "SELECT dimensions['it''s'] FROM crash_aggregates", f"SELECT \"dimensions['it''s']\" AS _col0 FROM {W}"),
    # a key no sidecar has stays a subscript; the table becomes the flat view for the other one
    (
        "presto",
        "SELECT dimensions['country'], dimensions['channel'] FROM crash_aggregates",
        f"SELECT dimensions['country'] AS _col0, \"dimensions['channel']\" AS _col1 FROM {W}",
    ),
    # maps used whole stay maps
    (
        "presto",
        "SELECT cardinality(dimensions) FROM crash_aggregates WHERE dimensions['channel'] = 'beta'",
        f"SELECT CARDINALITY(dimensions) AS _col0 FROM {W} WHERE \"dimensions['channel']\" = 'beta'",
    ),
    # every SELECT that reads the table, wherever it is
    (
        "presto",
        "SELECT channel, hours FROM (SELECT dimensions['channel'] AS channel, sum(stats['usage_hours']) AS hours "
        "FROM crash_aggregates GROUP BY 1) WHERE hours > 0",
        f"SELECT channel, hours FROM (SELECT \"dimensions['channel']\" AS channel, SUM(\"stats['usage_hours']\") AS hours "
        f"FROM {W} GROUP BY 1) WHERE hours > 0",
    ),
    (
        "presto",
        "WITH c AS (SELECT dimensions['channel'] AS ch FROM crash_aggregates) SELECT ch, count(*) FROM c GROUP BY 1",
        f"WITH c AS (SELECT \"dimensions['channel']\" AS ch FROM {W}) SELECT ch, COUNT(*) AS _col1 FROM c GROUP BY 1",
    ),
    (
        "presto",
        "SELECT count(*) FROM crash_aggregates WHERE dimensions['channel'] IN "
        "(SELECT dimensions['channel'] FROM crash_aggregates WHERE stats['usage_hours'] > 10)",
        f"SELECT COUNT(*) AS _col0 FROM {W} WHERE \"dimensions['channel']\" IN "
        f"(SELECT \"dimensions['channel']\" FROM {W} WHERE \"stats['usage_hours']\" > 10)",
    ),
    (
        "presto",
        "SELECT dimensions['channel'] FROM crash_aggregates UNION ALL SELECT dimensions['os_name'] FROM crash_aggregates",
        f"SELECT \"dimensions['channel']\" AS _col0 FROM {W} UNION ALL SELECT \"dimensions['os_name']\" FROM {W}",
    ),
    # other sources whose columns are known not to include the maps
    (
        "presto",
        "SELECT dimensions['channel'], s.x FROM crash_aggregates CROSS JOIN (SELECT 1 AS x) AS s",
        f"SELECT \"dimensions['channel']\" AS _col0, s.x FROM {W} CROSS JOIN (SELECT 1 AS x) AS s",
    ),
    (
        "presto",
        "SELECT x FROM crash_aggregates CROSS JOIN UNNEST(ARRAY['a']) AS t(x) WHERE dimensions['channel'] = 'beta'",
        f"SELECT x FROM {W} CROSS JOIN UNNEST(['a']) AS t(x) WHERE \"dimensions['channel']\" = 'beta'",
    ),
    # a self join: qualified columns say which table
    (
        "presto",
        "SELECT a.dimensions['channel'], b.stats['usage_hours'] FROM crash_aggregates AS a "
        "JOIN crash_aggregates AS b ON a.activity_date = b.activity_date",
        "SELECT a.\"dimensions['channel']\" AS _col0, b.\"stats['usage_hours']\" AS _col1 FROM crash_aggregates_flat AS a "
        "JOIN crash_aggregates_flat AS b ON a.activity_date = b.activity_date",
    ),
    # a nested query with its own table does not hold the outer one back
    (
        "presto",
        "SELECT dimensions['channel'], (SELECT count(*) FROM crash_aggregates) FROM crash_aggregates",
        f"SELECT \"dimensions['channel']\" AS _col0, (SELECT COUNT(*) FROM crash_aggregates) AS _col1 FROM {W}",
    ),
    (
        "duckdb",
        "SELECT dimensions['channel'] AS c FROM crash_aggregates",
        f"SELECT \"dimensions['channel']\" AS c FROM {W}",
    ),
    # -- left as they are ---------------------------------------------------------------------
    ("presto", "SELECT dimensions['country'] FROM crash_aggregates", None),  # no sidecar has the key
    ("presto", "SELECT dimensions['Channel'] FROM crash_aggregates", None),  # keys are case-sensitive
    ("presto", "SELECT dimensions[lower('CHANNEL')] FROM crash_aggregates", None),  # not a constant string
    ("presto", "SELECT count(*) FROM crash_aggregates WHERE submission_date = DATE '2016-03-15'", None),  # no subscript
    (
        "presto",
        "SELECT * FROM crash_aggregates WHERE dimensions['channel'] = 'beta'",
        None,
    ),  # * shows exactly the table
    ("presto", "SELECT t.*, t.dimensions['channel'] FROM crash_aggregates AS t", None),
    ("duckdb", "SELECT * EXCLUDE (stats) FROM crash_aggregates WHERE dimensions['channel'] = 'beta'", None),
    ("duckdb", "SELECT COLUMNS('dim.*'), dimensions['channel'] FROM crash_aggregates", None),
    ("duckdb", "SELECT t, dimensions['channel'] FROM crash_aggregates AS t", None),  # the row as one struct
    ("duckdb", "SELECT element_at(dimensions, 'channel') FROM crash_aggregates", None),  # DuckDB's returns a list
    # a source that has (or may have) a column of the same name: unqualified columns are ambiguous
    ("presto", "SELECT dimensions['channel'] FROM crash_aggregates CROSS JOIN (SELECT 1 AS dimensions) AS s", None),
    (
        "presto",
        "WITH c AS (SELECT stats AS dimensions FROM crash_aggregates) SELECT c.dimensions['usage_hours'] FROM c",
        None,
    ),
    (
        "presto",
        "SELECT dimensions['channel'] FROM crash_aggregates AS a JOIN crash_aggregates AS b ON a.activity_date = b.activity_date",
        None,
    ),
    (
        "presto",
        "SELECT stats AS dimensions, dimensions['channel'] FROM crash_aggregates ORDER BY dimensions['channel']",
        None,
    ),
    ("presto", "SELECT dimensions['channel'] FROM crash_aggregates AS t(sd, ad, dimensions, stats)", None),
    ("presto", "SELECT transform(ARRAY[stats], dimensions -> dimensions['usage_hours']) FROM crash_aggregates", None),
    # a nested query that reads the outer table's maps
    (
        "presto",
        "SELECT k, count(*) FROM crash_aggregates CROSS JOIN UNNEST(dimensions) AS t(k, v) "
        "WHERE dimensions['channel'] = 'beta' GROUP BY k",
        None,
    ),
    (
        "presto",
        "SELECT dimensions['channel'], (SELECT max(x) FROM UNNEST(ARRAY[1]) AS u(x) WHERE x < cardinality(dimensions)) "
        "FROM crash_aggregates GROUP BY dimensions",
        None,
    ),
    # joins whose meaning depends on the columns, samples
    ("duckdb", "SELECT a.dimensions['channel'] FROM crash_aggregates AS a NATURAL JOIN crash_aggregates AS b", None),
    (
        "duckdb",
        "SELECT a.dimensions['channel'] FROM crash_aggregates AS a SEMI JOIN crash_aggregates AS b ON a.activity_date = b.activity_date",
        None,
    ),
    ("duckdb", "SELECT dimensions['channel'] FROM crash_aggregates USING SAMPLE 50 PERCENT (bernoulli, 1)", None),
    # names the rewrite would use are already taken by the query
    ("presto", "SELECT dimensions['channel'] AS \"stats['usage_hours']\" FROM crash_aggregates", None),
    (
        "presto",
        "WITH crash_aggregates_flat AS (SELECT 1 AS x) SELECT dimensions['channel'], x FROM crash_aggregates, crash_aggregates_flat",
        None,
    ),
    ("presto", "DESCRIBE crash_aggregates", None),
]


@pytest.mark.parametrize("dialect, query, expected", REWRITES, ids=[f"{d}: {q[:70]}" for d, q, _ in REWRITES])
def test_rewrite(dialect, query, expected):
    got = use_flat_view(prepare(query, dialect).tree, COLUMNS)
    assert (generate(got) if got is not None else None) == expected


def test_no_flat_columns_no_rewrite():
    assert use_flat_view(prepare("SELECT dimensions['channel'] FROM crash_aggregates").tree, set()) is None


def test_the_prepared_statement_is_left_as_it_was():
    prepared = prepare("SELECT dimensions['channel'] FROM crash_aggregates")
    before = prepared.duckdb_sql
    assert use_flat_view(prepared.tree, COLUMNS) is not None
    assert generate(prepared.tree) == before == "SELECT dimensions['channel'] AS _col0 FROM crash_aggregates"


# -- on data: the rewritten query gives the answer of the query as written ---------------------


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture(scope="module")
def with_sidecars(tmp_path_factory):
    return build(tmp_path_factory.mktemp("fast") / "data")


def _reads_map_keys(query: str) -> bool:
    """Whether a query reads map values by key and does not unnest a map (the rewrite then applies)."""
    subscript = any(f in query for f in ("dimensions['", "stats['", "element_at(dimensions", "element_at(stats"))
    return subscript and not any(f in query for f in ("UNNEST(dimensions", "UNNEST(stats", "UNNEST(map_keys"))


@pytest.mark.parametrize("query", [q for q, _ in CASES], ids=[q[:60] for q, _ in CASES])
def test_presto_cases_rewritten_answer_as_written(with_sidecars, query):
    """Each query of test_presto's table, as written and as rewritten, on one connection: the same rows."""
    conn = connect(with_sidecars)
    try:
        prepared = prepare(query)
        fast = plan(prepared, conn)
        assert (fast != prepared.duckdb_sql) == _reads_map_keys(query), fast
        slow_rows, fast_rows = conn.sql(prepared.duckdb_sql).fetchall(), conn.sql(fast).fetchall()
    finally:
        conn.close()
    assert _same(sorted(fast_rows, key=repr), sorted(slow_rows, key=repr)), (fast_rows, slow_rows)


def test_the_fast_path_is_taken_exactly_when_there_are_sidecars(dataset):
    from crash_aggregates import storage

    with_sidecars = all(p.sidecar is not None for p in storage.published(dataset).values())
    assert with_sidecars or all(p.sidecar is None for p in storage.published(dataset).values())
    conn = connect(dataset)
    try:
        fast = plan(
            prepare("SELECT dimensions['channel'], sum(stats['usage_hours']) FROM crash_aggregates GROUP BY 1"), conn
        )
    finally:
        conn.close()
    assert ("crash_aggregates_flat" in fast) == with_sidecars


# -- a mixed dataset: some partitions with sidecars, some without, a key only some have ------------

_EXTRA = [
    # 2016-03-18, with a sidecar: gfx on one row only
    _row(
        "2016-03-18",
        "2016-03-18",
        _dims(channel="release", build_id="20160301000000", gfx="d3d11"),
        1000,
        4,
        0,
        0,
        0,
        10,
    ),
    _row("2016-03-18", "2016-03-18", _dims(channel="beta", build_id="20160305000000"), 2000, 6, 1, 0, 0, 20),
    # 2016-03-19, without a sidecar: gfx too
    _row(
        "2016-03-19",
        "2016-03-19",
        _dims(channel="release", build_id="20160301000000", gfx="opengl"),
        3000,
        8,
        0,
        0,
        0,
        30,
    ),
    _row(
        "2016-03-19",
        "2016-03-18",
        _dims(channel="nightly", build_id="20160310030000", gfx="d3d11"),
        4000,
        10,
        2,
        1,
        0,
        40,
    ),
]
MIXED_ROWS = ROWS + _EXTRA
WITHOUT_SIDECAR = {"2016-03-15", "2016-03-19"}

MIXED_QUERIES = [
    "SELECT dimensions['gfx'] AS gfx, count(*) AS n, sum(stats['usage_hours']) AS hours FROM crash_aggregates GROUP BY 1",
    "SELECT submission_date, dimensions['channel'] AS channel, sum(stats['main_crashes']) AS crashes FROM crash_aggregates GROUP BY 1, 2",
    "SELECT count(*) AS n FROM crash_aggregates WHERE dimensions['gfx'] IS NULL AND dimensions['channel'] = 'release'",
    "SELECT dimensions['gfx'] AS gfx, dimensions['experiment_id'] AS e, activity_date FROM crash_aggregates "
    "WHERE submission_date >= DATE '2016-03-18'",
]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The mixed dataset, and the same rows without any sidecar (the slow path)."""
    base = tmp_path_factory.mktemp("mixed")
    root = strip_sidecars(build(base / "mixed", MIXED_ROWS), WITHOUT_SIDECAR)
    slow = base / "slow"
    shutil.copytree(root, slow)
    return root, strip_sidecars(slow)


def _rows(table) -> list:
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def test_the_mixed_dataset_is_mixed(mixed):
    from crash_aggregates import storage

    root, slow = mixed
    has = {day: p.sidecar is not None for day, p in storage.published(root).items()}
    assert has == {"2016-03-14": True, "2016-03-15": False, "2016-03-18": True, "2016-03-19": False}
    assert "gfx" in storage.published(root)["2016-03-18"].sidecar.keys["dimensions"]
    assert "gfx" not in storage.published(root)["2016-03-14"].sidecar.keys["dimensions"]
    assert all(p.sidecar is None for p in storage.published(slow).values())


@pytest.mark.parametrize("query", MIXED_QUERIES)
def test_a_mixed_dataset_answers_as_the_slow_path(mixed, query):
    root, slow = mixed
    conn = connect(root)
    try:
        assert "crash_aggregates_flat" in plan(prepare(query), conn)
    finally:
        conn.close()
    assert _rows(crash_aggregates.query(query, root)) == _rows(crash_aggregates.query(query, slow))


def test_a_mixed_dataset_gives_the_known_answer(mixed):
    root, _ = mixed
    expected = defaultdict(lambda: [0, 0.0])
    for r in MIXED_ROWS:
        e = expected[r["dimensions"].get("gfx")]
        e[0] += 1
        e[1] += r["stats"]["usage_hours"]
    # by hand: ROWS have 1,210,000 usage hours and no gfx, nor has the beta row of 2016-03-18
    assert dict(expected) == {None: [12, 1212000.0], "d3d11": [2, 5000.0], "opengl": [1, 3000.0]}
    got = crash_aggregates.query(MIXED_QUERIES[0], root)
    assert {r["gfx"]: [r["n"], r["hours"]] for r in got.to_pylist()} == dict(expected)
    got = crash_aggregates.query(MIXED_QUERIES[2], root).to_pylist()
    assert got == [{"n": 5}]  # r1, r2, r5, r6, r7; the release rows of 2016-03-18 and -19 have gfx


def test_the_engine_fence_allows_the_named_sidecars_and_nothing_more(with_sidecars, tmp_path):
    import duckdb

    from crash_aggregates import storage

    root = tmp_path / "data"
    shutil.copytree(with_sidecars, root)
    named = storage.published(root)["2016-03-15"].sidecar.file
    leftover = named.with_name("_flat-leftover.parquet.sidecar")
    shutil.copyfile(named, leftover)
    conn = connect(root)
    try:
        assert conn.sql(f"SELECT count(*) FROM read_parquet('{named.resolve()}')").fetchall() == [(6,)]
        with pytest.raises(duckdb.PermissionException):
            conn.sql(f"SELECT count(*) FROM read_parquet('{leftover.resolve()}')").fetchall()
        with pytest.raises(duckdb.PermissionException):
            conn.sql(f"SELECT * FROM read_text('{(named.parent / '_report.json').resolve()}')").fetchall()
    finally:
        conn.close()


def test_a_query_duckdb_cannot_bind_falls_back_to_the_query_as_written(with_sidecars):
    from crash_aggregates.sql.engine import execute

    conn = connect(with_sidecars)
    try:
        with execute(
            conn,
            "SELECT no_such_column FROM crash_aggregates_flat",
            timeout=10,
            fallback="SELECT count(*) AS n FROM crash_aggregates",
        ) as result:
            assert [b.to_pylist() for b in result] == [[{"n": len(ROWS)}]]
    finally:
        conn.close()


def test_keys_equal_but_for_case_in_two_partitions_are_left_to_the_maps(tmp_path):
    # DuckDB matches column names regardless of case: "dimensions['gfx']" and
    # "dimensions['GFX']" cannot both be columns of the view.
    rows = [
        _row("2016-03-14", "2016-03-14", _dims(channel="release", gfx="d3d11"), 10, 1, 0, 0, 0, 1),
        _row("2016-03-15", "2016-03-15", _dims(channel="beta", GFX="opengl"), 20, 2, 0, 0, 0, 2),
    ]
    root = build(tmp_path / "data", rows)
    query = "SELECT submission_date, dimensions['gfx'] AS a, dimensions['GFX'] AS b, dimensions['channel'] AS c FROM crash_aggregates"
    conn = connect(root)
    try:
        fast = plan(prepare(query), conn)
    finally:
        conn.close()
    assert (
        "dimensions['gfx'] AS a" in fast
        and "dimensions['GFX'] AS b" in fast
        and "\"dimensions['channel']\" AS c" in fast
    )
    assert _rows(crash_aggregates.query(query, root)) == [
        (date(2016, 3, 14), "d3d11", None, "release"),
        (date(2016, 3, 15), None, "opengl", "beta"),
    ]
