"""The console's queries as a library: parameters bound (never pasted), limits, downloads, errors and fences.

Answers are checked against `crash-aggregates sql` run on the same demo week
with the values written into the SQL by hand.
"""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from helpers import run

from crash_aggregates.sql import QueryError, connect, console, parameters

# (SQL with placeholders, values) -> (SQL with bound parameters, bound values)
BIND_CASES = [
    ("SELECT {{ n }}", {"n": 3}, "SELECT $n", {"n": 3}),
    ("SELECT {{n}} + {{ n }}", {"n": 1.5}, "SELECT $n + $n", {"n": 1.5}),
    ("WHERE c = '{{ c }}'", {"c": "beta"}, "WHERE c = $c", {"c": "beta"}),
    ("WHERE c IN ({{ c }})", {"c": ["a", "b", "c"]}, "WHERE c IN ($c__0, $c__1, $c__2)", {"c__0": "a", "c__1": "b", "c__2": "c"}),
    ("WHERE d BETWEEN {{ r.start }} AND {{ r.end }}", {"r": ("2016-03-01", "2016-03-07")}, "WHERE d BETWEEN $r__start AND $r__end", {"r__start": "2016-03-01", "r__end": "2016-03-07"}),
    # Not placeholders: inside a string, a quoted name, a comment.
    ("SELECT 'x {{ a }}', \"{{ a }}\" -- {{ a }}", {}, "SELECT 'x {{ a }}', \"{{ a }}\" -- {{ a }}", {}),
    ("SELECT /* {{ a }} */ 'it''s {{ a }}'", {}, "SELECT /* {{ a }} */ 'it''s {{ a }}'", {}),
    # Injection attempts stay values.
    ("WHERE c = {{ c }}", {"c": "x' OR '1'='1"}, "WHERE c = $c", {"c": "x' OR '1'='1"}),
    ("WHERE c = {{ c }}", {"c": "1; DROP TABLE t --"}, "WHERE c = $c", {"c": "1; DROP TABLE t --"}),
    ("WHERE c IN ({{ c }})", {"c": ["') OR 1=1 --", "{{ c }}"]}, "WHERE c IN ($c__0, $c__1)", {"c__0": "') OR 1=1 --", "c__1": "{{ c }}"}),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "values", "bound_sql", "bound"), BIND_CASES)
def test_bind(sql, values, bound_sql, bound):
    assert parameters.bind(sql, values) == (bound_sql, bound)


# (SQL, declared, given) -> typed values, or the error's words
VALUE_CASES = [
    ("{{ a }}", {}, {"a": "x"}, {"a": "x"}),
    ("{{ a }}", {"a": {"type": "number", "default": "7"}}, {}, {"a": 7}),
    ("{{ a }}", {"a": {"type": "number"}}, {"a": "2.5"}, {"a": 2.5}),
    ("{{ a }}", {"a": {"type": "date"}}, {"a": "2016-03-09"}, {"a": "2016-03-09"}),
    ("{{ a }}", {}, {"a": {"type": "date", "value": "2016-03-09"}}, {"a": "2016-03-09"}),
    ("{{ a }}", {"a": {"type": "list", "default": ["x"]}}, {}, {"a": ["x"]}),
    ("{{ r.start }}{{ r.end }}", {}, {"r": {"start": "2016-03-01", "end": "2016-03-02"}}, {"r": ("2016-03-01", "2016-03-02")}),
    ("{{ a }}", {}, {}, "parameter a has no value"),
    ("{{ a }}", {"a": {"type": "number"}}, {"a": "1 OR 1=1"}, "is not a number"),
    ("{{ a }}", {"a": {"type": "date"}}, {"a": "2016-03-09' --"}, "is not a date"),
    ("{{ a }}", {"a": {"type": "list"}}, {"a": []}, "at least one value"),
    ("{{ r.start }}", {}, {"r": {"start": "2016-03-02", "end": "2016-03-01"}}, "starts (2016-03-02) after it ends"),
    ("{{ r }}", {}, {"r": {"start": "2016-03-01", "end": "2016-03-02"}}, "a date range is used as"),
    ("{{ a }}", {"a": {"type": "colour"}}, {"a": "red"}, "unknown type"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "declared", "given", "expected"), VALUE_CASES)
def test_values(sql, declared, given, expected):
    if isinstance(expected, str):
        with pytest.raises(QueryError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            parameters.values_of(sql, declared, given)
    else:
        assert parameters.values_of(sql, declared, given) == expected


@pytest.fixture(scope="module")
def conn(demo_data):
    with connect(demo_data) as c:
        yield c


def sql_command(data, query: str) -> list[list]:
    result = run("sql", "--data", data, "--format", "json", query)
    assert result.exit_code == 0, result.output
    return [list(json.loads(line).values()) for line in result.stdout.splitlines() if line.strip()]


FIRST_QUERY = (
    "SELECT dimensions['channel'] AS channel, sum(stats['main_crashes']) AS crashes, sum(stats['usage_hours']) AS hours "
    "FROM crash_aggregates WHERE submission_date BETWEEN {{ days.start }} AND {{ days.end }} "
    "AND dimensions['channel'] IN ({{ channels }}) AND activity_date >= {{ since }} GROUP BY 1 ORDER BY 1"
)


@pytest.mark.parametrize("dialect", ["presto", "duckdb"])
def test_parameters_give_what_sql_gives_with_the_values_written_in(demo_data, conn, dialect):
    given = {
        "days": {"start": "2016-03-10", "end": "2016-03-12"},
        "channels": ["beta", "nightly"],
        "since": "2016-03-09",
    }
    found = console.answer(console.statement(FIRST_QUERY, dialect, {"since": {"type": "date"}}, given), conn)
    written = (
        FIRST_QUERY.replace("{{ days.start }}", "DATE '2016-03-10'").replace("{{ days.end }}", "DATE '2016-03-12'")
        .replace("{{ channels }}", "'beta', 'nightly'").replace("{{ since }}", "'2016-03-09'")
    )  # fmt: skip
    expected = sql_command(demo_data, written)
    assert [r[:2] for r in found.rows] == [r[:2] for r in expected]
    assert [r[2] for r in found.rows] == pytest.approx([r[2] for r in expected], rel=1e-12)
    assert [r[0] for r in found.rows] == ["beta", "nightly"] and found.cut is None


def test_an_injection_attempt_matches_nothing(conn):
    query = "SELECT count(*) FROM crash_aggregates WHERE dimensions['channel'] = {{ c }}"
    assert console.answer(console.statement(query, given={"c": "beta"}), conn).rows[0][0] > 0
    for attempt in ("beta' OR '1'='1", "beta'; DROP TABLE crash_aggregates; --"):
        assert console.answer(console.statement(query, given={"c": attempt}), conn).rows == [[0]]


def test_row_cap_and_memory_bound_say_where_they_cut(conn):
    everything = console.statement("SELECT * FROM crash_aggregates")
    total = conn.execute("SELECT count(*) FROM crash_aggregates").fetchone()[0]
    assert total > 1000
    capped = console.answer(everything, conn, console.Limits(max_rows=1000, page_rows=300))
    assert len(capped.rows) == 1000 and "first 1,000 rows" in capped.cut and "row cap" in capped.cut
    small = console.answer(everything, conn, console.Limits(max_bytes=200_000))
    assert 0 < len(small.rows) < 1000 and "memory bound" in small.cut and f"first {len(small.rows):,} rows" in small.cut
    assert console.answer(console.statement("SELECT 1 AS one"), conn).cut is None


def test_pages_stream_in_order(conn):
    stmt = console.statement(
        "SELECT row_number() OVER (ORDER BY activity_date, dimensions['build_id']) AS i FROM crash_aggregates LIMIT 2500"
    )
    with console.pages(stmt, conn, console.Limits(page_rows=1000)) as found:
        sizes = [len(page) for page in found]
    assert sizes == [1000, 1000, 500]


ERROR_CASES = [
    # (SQL, values, the error's words, (line, column) in the user's SQL or None)
    ("SELECT {{ a }} + ({{ a }}", {"a": 1}, "is never closed", (1, 18)),
    ("SELECT {{ channels }}, nosuch\nFROM crash_aggregates", {"channels": ["a", "b", "c"]}, "unknown column nosuch", (1, 24)),
    ("SELECT *\nFROM read_csv('/etc/passwd')", {}, "read_csv() at line 2, column 6 is refused", (2, 6)),
    ("COPY crash_aggregates TO '/tmp/out.csv'", {}, "COPY statements are refused", None),
    ("ATTACH '/tmp/other.db' AS other", {}, "ATTACH statements are refused", None),
    ("SELECT * FROM '/etc/passwd'", {}, "the file path '/etc/passwd' at line 1, column 15 is refused", (1, 15)),
    ("SELECT :x", {}, "query parameters", None),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "given", "words", "where"), ERROR_CASES)
def test_errors_point_into_the_users_sql(conn, sql, given, words, where):
    with pytest.raises(QueryError) as caught:
        console.answer(console.statement(sql, given=given), conn)
    message = str(caught.value)
    assert words in message and "\n" not in message
    assert console.error_position(message) == where


def test_time_limit(conn):
    slow = console.statement("SELECT count(*) FROM crash_aggregates a, crash_aggregates b, crash_aggregates c")
    with pytest.raises(QueryError, match="time limit of 0.5 s"):
        console.answer(slow, conn, console.Limits(timeout=0.5))


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_downloads_read_back_as_the_answer(tmp_path, demo_data, conn, fmt):
    query = "SELECT dimensions['channel'] AS channel, sum(stats['main_crashes']) AS crashes FROM crash_aggregates GROUP BY 1 ORDER BY 1"
    expected = sql_command(demo_data, query)
    target = tmp_path / f"answer.{fmt}"
    with open(target, "wb") as f:
        assert console.download(console.statement(query), conn, fmt, f) == len(expected)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(target.read_text())))
        assert rows[0] == ["channel", "crashes"]
        assert [[r[0], float(r[1])] for r in rows[1:]] == expected
    elif fmt == "json":
        assert [list(json.loads(line).values()) for line in target.read_text().splitlines()] == expected
    else:
        assert [list(r.values()) for r in pq.read_table(target).to_pylist()] == expected
    with open(tmp_path / "capped.csv", "wb") as f:
        assert console.download(console.statement(query), conn, "csv", f, console.Limits(download_rows=2)) == 2


def test_schema_lists_columns_dimension_values_and_stats(demo_data, conn):
    found = console.schema(conn, "2016-03-09", ["usage_hours", "main_crashes"])
    assert [c["name"] for c in found["columns"]] == ["submission_date", "activity_date", "dimensions", "stats"]
    channels = next(d for d in found["dimensions"] if d["key"] == "channel")["values"]
    expected = sql_command(
        demo_data,
        "SELECT dimensions['channel'], count(*) FROM crash_aggregates WHERE submission_date >= DATE '2016-03-09' "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    assert [[v["value"], v["aggregates"]] for v in channels] == expected
    assert found["stats"] == ["usage_hours", "main_crashes"]
    assert all(len(d["values"]) <= console.TOP_VALUES for d in found["dimensions"])
