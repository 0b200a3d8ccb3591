"""`crash-aggregates sql`: the original README's queries, visibility, pruning, fencing, errors, time limit."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime

import duckdb
import pytest
from click.testing import CliRunner
from sqldata import ROWS, add_corrupt_sidecar, original_queries, ratio

import crash_aggregates
from crash_aggregates.cli import cli


def sql(*args, input=None):
    result = CliRunner().invoke(cli, ["sql", *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def one_line_error(result, code=2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9)


# -- the original README's queries, read from shared/ at test time -------------------


def test_first_original_query_gives_crash_rates_per_channel(dataset):
    query = original_queries()[0]
    totals = defaultdict(lambda: defaultdict(float))
    for r in ROWS:
        for k, v in r["stats"].items():
            totals[r["dimensions"].get("channel")][k] += v
    kinds = ["main_crashes", "content_crashes", "plugin_crashes", "gmplugin_crashes"]
    expected = sorted(
        ([ch, t["usage_hours"]] + [ratio(1000 * t[k], t["usage_hours"]) for k in kinds] for ch, t in totals.items()),
        key=lambda row: -row[1],
    )
    result = sql("--data", str(dataset), "--format", "csv", query)
    assert result.exit_code == 0, result.output
    header, *body = csv_rows(result.stdout)
    assert header == [
        "channel",
        "usage_hours",
        "main_crash_rate",
        "content_crash_rate",
        "plugin_crash_rate",
        "gmplugin_crash_rate",
    ]
    assert [row[0] for row in body] == ["nightly", "release", "beta", "aurora"]
    for got, want in zip(body, expected, strict=True):
        assert got[0] == want[0]
        assert all(close(float(g), w) for g, w in zip(got[1:], want[1:], strict=True)), (got, want)
    # numbers stated by hand: release has 315 main crashes in 420,000 hours
    assert close(float(body[1][2]), 0.75)
    assert body[3][2:4] == ["Infinity", "NaN"]  # aurora: crashes but no usage hours, as Presto's doubles


def test_third_original_query_gives_crash_rates_by_build_and_cohort(dataset):
    query = original_queries()[2]
    groups = defaultdict(lambda: [0.0, 0.0])
    for r in ROWS:
        d = r["dimensions"]
        build = d.get("build_id")
        if (
            "experiment_id" in d
            or build is None
            or not (len(build) == 14 and build.isdigit())
            or build <= "20160201000000"
        ):
            continue
        g = groups[(build, d.get("e10s_cohort"))]
        g[0] += r["stats"]["main_crashes"]
        g[1] += r["stats"]["usage_hours"]
    expected = sorted(
        [
            (datetime.strptime(b, "%Y%m%d%H%M%S"), usage / 1000, cohort, crashes / (usage / 1000))
            for (b, cohort), (crashes, usage) in groups.items()
            if usage / 1000 > 100
        ],
        key=lambda row: (row[0], str(row[2])),
    )
    # by hand: (20160301000000, test) r1+r6, (20160305000000, test) r3+r11, (20160305000000, NULL) r8
    assert [(e[0].day, e[1], e[2]) for e in expected] == [(1, 130.0, "test"), (5, 150.0, None), (5, 120.0, "test")]

    table = crash_aggregates.query(query, dataset)
    assert table.column_names == ["build_id", "usage_kilohours", "e10s_cohort", "main_crash_rate"]
    got = [tuple(r.values()) for r in table.to_pylist()]
    assert [g[0] for g in got] == sorted(g[0] for g in got)  # ORDER BY build_id
    got.sort(key=lambda row: (row[0], str(row[2])))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g[0] == e[0] and g[2] == e[2]
        assert close(g[1], e[1]) and close(g[3], e[3])
    assert close(got[0][3], 250 / 130)


def test_second_original_query_is_refused_with_what_and_where(dataset):
    query = original_queries()[1]
    message = one_line_error(sql("--data", str(dataset), query))
    assert "syntax error" in message
    assert "line 1, column 11: '(' is never closed" in message
    assert "'->>' is not a Presto operator" in message and "line 2, column 17" in message


def test_second_original_query_in_a_real_process(dataset):
    query = original_queries()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "crash_aggregates.cli", "sql", "--data", str(dataset), "-"],
        input=query,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "never closed" in proc.stderr


# -- what is visible ------------------------------------------------------------------


def test_only_published_partitions_and_named_files_are_visible(dataset):
    # on disk: an unpublished partition 2016-03-16 (no _SUCCESS) and a stale part
    # file in 2016-03-15 that its _SUCCESS does not name
    assert (dataset / "submission_date=2016-03-16" / "part-00000.parquet").exists()
    assert (dataset / "submission_date=2016-03-15" / "part-00001.parquet").exists()
    table = crash_aggregates.query(
        "SELECT count(*) AS n, count(DISTINCT submission_date) AS days, "
        "count(*) FILTER (WHERE dimensions['channel'] IN ('unpublished', 'stale')) AS hidden FROM crash_aggregates",
        dataset,
    )
    assert table.to_pylist() == [{"n": len(ROWS), "days": 2, "hidden": 0}]


def test_schema_of_the_table(dataset):
    table = crash_aggregates.query("DESCRIBE crash_aggregates", dataset)
    assert [(r["column_name"], r["column_type"]) for r in table.to_pylist()] == [
        ("submission_date", "DATE"),
        ("activity_date", "VARCHAR"),
        ("dimensions", "MAP(VARCHAR, VARCHAR)"),
        ("stats", "MAP(VARCHAR, DOUBLE)"),
    ]


def test_an_empty_dataset_has_an_empty_table(tmp_path):
    table = crash_aggregates.query("SELECT count(*) AS n FROM crash_aggregates", tmp_path)
    assert table.to_pylist() == [{"n": 0}]


@pytest.mark.parametrize(
    "where",
    [
        "submission_date = DATE '2016-03-15'",
        "submission_date = '2016-03-15'",
        "submission_date BETWEEN DATE '2016-03-14' AND DATE '2016-03-15'",
        "submission_date < DATE '2016-03-17'",
        "submission_date IN (DATE '2016-03-14', DATE '2016-03-15')",
    ],
)
@pytest.mark.parametrize(
    "what", ["count(*)", "sum(stats['usage_hours'])"]
)  # the second one reads the sidecars where there are
def test_a_filter_on_submission_date_does_not_open_other_partitions(corrupt_dataset, where, what):
    result = sql(
        "--data", str(corrupt_dataset), "--format", "csv", f"SELECT {what} AS n FROM crash_aggregates WHERE {where}"
    )
    assert result.exit_code == 0, result.output
    days = {"2016-03-15"} | ({"2016-03-14"} if "2016-03-14" in where or "<" in where or "IN" in where else set())
    rows = [r for r in ROWS if r["submission_date"] in days]
    n = len(rows) if what == "count(*)" else sum(r["stats"]["usage_hours"] for r in rows)
    assert csv_rows(result.stdout) == [["n"], [str(n)]]


def test_a_corrupt_sidecar_only_disturbs_the_queries_that_read_it(dataset, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(dataset, root)
    add_corrupt_sidecar(root, "2016-03-17")
    # The maps of the part files answer queries without subscripts; a filter keeps the sidecar unread.
    result = sql("--data", str(root), "--format", "csv", "SELECT count(*) AS n FROM crash_aggregates")
    assert csv_rows(result.stdout) == [["n"], [str(len(ROWS) + 1)]]
    pruned = "SELECT count(dimensions['channel']) AS n FROM crash_aggregates WHERE submission_date < DATE '2016-03-17'"
    assert csv_rows(sql("--data", str(root), "--format", "csv", pruned).stdout) == [["n"], [str(len(ROWS))]]
    message = one_line_error(
        sql("--data", str(root), "SELECT count(dimensions['channel']) FROM crash_aggregates"), code=1
    )
    assert (
        message.startswith("Error: the query failed:")
        and "submission_date=2016-03-17" in message
        and "_flat.parquet.sidecar" in message
    )


def test_a_query_that_reads_a_corrupt_partition_fails_in_one_line(corrupt_dataset):
    message = one_line_error(sql("--data", str(corrupt_dataset), "SELECT count(*) FROM crash_aggregates"), code=1)
    assert message.startswith("Error: the query failed:") and "submission_date=2016-03-17" in message


def test_a_published_partition_with_a_missing_file_is_reported(dataset, tmp_path):
    import json
    import shutil

    root = tmp_path / "data"
    shutil.copytree(dataset, root)
    broken = root / "submission_date=2016-03-18"
    broken.mkdir()
    (broken / "_SUCCESS").write_text(json.dumps({"files": ["part-00000.parquet"]}))
    message = one_line_error(sql("--data", str(root), "SELECT count(*) FROM crash_aggregates"), code=1)
    assert "partition 2016-03-18 names part-00000.parquet, which is missing" in message


# -- fencing ----------------------------------------------------------------------------

REFUSED = [
    ("CREATE TABLE t AS SELECT * FROM crash_aggregates", "CREATE statements are refused"),
    ("INSERT INTO crash_aggregates SELECT * FROM crash_aggregates", "INSERT statements are refused"),
    ("DELETE FROM crash_aggregates", "DELETE statements are refused"),
    ("DROP VIEW crash_aggregates", "DROP statements are refused"),
    ("COPY (SELECT * FROM crash_aggregates) TO '/tmp/out.csv'", "COPY statements are refused"),
    ("ATTACH '/tmp/other.db' AS other", "ATTACH statements are refused"),
    ("INSTALL httpfs", "INSTALL statements are refused"),
    ("LOAD httpfs", "LOAD statements are refused"),
    ("SET enable_external_access = true", "SET statements are refused"),
    ("PRAGMA database_list", "PRAGMA statements are refused"),
    ("CALL pragma_version()", "CALL statements are refused"),
    ("EXPORT DATABASE '/tmp/export'", "EXPORT statements are refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() at line 1, column 15 is refused"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "is refused"),
    ("SELECT * FROM read_text('/etc/passwd')", "is refused"),
    ("SELECT * FROM read_parquet('/tmp/x.parquet')", "is refused"),
    ("SELECT * FROM glob('/etc/*')", "glob() at line 1, column 15 is refused"),
    ("SELECT * FROM '/etc/passwd'", "the file path '/etc/passwd' at line 1, column 15 is refused"),
    ('SELECT * FROM "/etc/passwd"', "is refused"),
    ("SELECT * FROM information_schema.tables", "other schemas and catalogs are not visible"),
    ("SELECT * FROM memory.main.crash_aggregates", "other schemas and catalogs are not visible"),
    ("SELECT * FROM duckdb_settings()", "is refused"),
    ("SELECT current_setting('allowed_paths')", "is refused"),
    ("SELECT (SELECT count(*) FROM read_text('/etc/passwd')) FROM crash_aggregates", "is refused"),
    ("WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x", "is refused"),
    ("SELECT 1; DROP VIEW crash_aggregates", "only one statement at a time"),
]


@pytest.mark.parametrize("dialect", ["presto", "duckdb"])
@pytest.mark.parametrize("query, message", REFUSED, ids=[q for q, _ in REFUSED])
def test_statements_that_write_or_reach_outside_are_refused(dataset, dialect, query, message):
    result = sql("--data", str(dataset), "--dialect", dialect, "--format", "csv", query)
    line = one_line_error(result)
    assert message in line
    assert "root:" not in result.output


def test_the_engine_itself_cannot_reach_files_or_change_settings(dataset):
    """The second fence, without the statement checks: DuckDB's own settings."""
    conn = crash_aggregates.connect(dataset)
    try:
        with pytest.raises(duckdb.PermissionException):
            conn.sql("SELECT * FROM read_csv('/etc/passwd')").fetchall()
        hidden = dataset / "submission_date=2016-03-16" / "part-00000.parquet"
        with pytest.raises(duckdb.PermissionException):
            conn.sql(f"SELECT * FROM read_parquet('{hidden}')").fetchall()
        with pytest.raises(duckdb.Error, match="locked"):
            conn.execute("SET enable_external_access = true")
        assert conn.sql("SELECT count(*) FROM crash_aggregates").fetchall() == [(len(ROWS),)]
    finally:
        conn.close()


def test_an_unfenced_connection_for_notebooks(dataset, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("channel,owner\nrelease,alice\n")
    conn = crash_aggregates.connect(dataset, fenced=False)
    try:
        joined = conn.sql(
            f"SELECT o.owner, count(*) FROM crash_aggregates a JOIN read_csv('{other}') o "
            "ON a.dimensions['channel'] = o.channel GROUP BY 1"
        ).fetchall()
    finally:
        conn.close()
    assert joined == [("alice", 5)]


# -- errors: one line, exit 2, with positions and the names that exist -------------------

ERRORS = [
    (
        "SELECT dimensions['channel']\nFROM crash_aggregates\nWHERE",
        "syntax error at line 3, column 1: incomplete WHERE clause",
    ),
    ("SELECT count(* FROM crash_aggregates", "line 1, column 13: '(' is never closed"),
    (
        "SELECT stats['usage_hours') FROM crash_aggregates",
        "line 1, column 27: found ')' but the '[' opened at line 1, column 13 is still open",
    ),
    ("SELECT 'abc FROM crash_aggregates", "line 1, column 8: the string starting with ' is never closed"),
    (
        "SELECT channel FROM crash_aggregates",
        "unknown column channel at line 1, column 8; columns here: activity_date, dimensions, stats, submission_date",
    ),
    # the same with a subscript that the flat sidecars answer: the message does not show their columns
    (
        "SELECT channel, dimensions['os_name'] FROM crash_aggregates",
        "unknown column channel at line 1, column 8; columns here: activity_date, dimensions, stats, submission_date",
    ),
    ("WITH t AS (SELECT 1 AS a, 2 AS b) SELECT c FROM t", "unknown column c at line 1, column 42; columns here: a, b"),
    ("SELECT sum_of(stats['usage_hours']) FROM crash_aggregates", "unknown function sum_of() at line 1, column 8"),
    ("SELECT count(*) FROM aggregates", "unknown table aggregates at line 1, column 22: the table is crash_aggregates"),
    ("SELECT x FROM t", "unknown table t at line 1, column 15"),
    ("", "empty query"),
]


@pytest.mark.parametrize("query, message", ERRORS, ids=[q.replace("\n", " ")[:40] for q, _ in ERRORS])
def test_errors_are_one_clear_line(dataset, query, message):
    line = one_line_error(sql("--data", str(dataset), query))
    assert message in line, line


def test_no_query_and_no_data_are_usage_errors(dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("CRASH_AGGREGATES_CONFIG", raising=False)
    assert "no query" in one_line_error(sql("--data", str(dataset)))
    assert "no data" in one_line_error(sql("SELECT 1"))
    assert "no dataset at" in one_line_error(sql("--data", str(tmp_path / "missing"), "SELECT 1"))


# -- time limit and huge results ----------------------------------------------------------

SLOW = (
    "SELECT count(*) FROM UNNEST(sequence(1, 3000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 3000)) AS b(y) "
    "CROSS JOIN UNNEST(sequence(1, 3000)) AS c(z) WHERE (x * y + z) % 7 = 3"
)
HUGE = "SELECT x, y FROM UNNEST(sequence(1, 100000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 100000)) AS b(y)"


def test_a_query_is_stopped_at_its_time_limit(dataset):
    started = time.monotonic()
    message = one_line_error(sql("--data", str(dataset), "--timeout", "1", SLOW), code=1)
    assert "time limit of 1 s" in message
    assert time.monotonic() - started < 15


def test_a_huge_streaming_result_is_stopped_at_its_time_limit(dataset):
    started = time.monotonic()
    result = sql("--data", str(dataset), "--timeout", "1", "--format", "csv", HUGE)
    assert result.exit_code == 1 and "time limit" in result.stderr
    assert time.monotonic() - started < 15


def test_first_rows_of_a_huge_result_without_holding_it(dataset):
    # 10^10 rows: only streaming can answer this in seconds
    started = time.monotonic()
    result = sql("--data", str(dataset), "--format", "csv", "--limit", "3", HUGE)
    assert result.exit_code == 0, result.output
    assert csv_rows(result.stdout)[0] == ["x", "y"] and len(csv_rows(result.stdout)) == 4
    table = sql("--data", str(dataset), HUGE)
    assert table.exit_code == 0
    assert "(1000 rows, more not shown" in table.stdout
    assert time.monotonic() - started < 30


def test_python_api_time_limit(dataset):
    with pytest.raises(crash_aggregates.sql.QueryError, match="time limit"):
        crash_aggregates.query(SLOW, dataset, timeout=0.5)


def test_the_cli_and_the_package_start_without_the_query_engine():
    code = (
        "import sys, crash_aggregates, crash_aggregates.cli; "
        "heavy = [m for m in ('duckdb', 'sqlglot', 'pyarrow') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert callable(crash_aggregates.query) and callable(crash_aggregates.connect)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
