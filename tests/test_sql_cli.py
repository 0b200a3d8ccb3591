"""`crash-aggregates sql` output formats and ways to give the query."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
from click.testing import CliRunner

from crash_aggregates.cli import cli

QUERY = (
    "SELECT activity_date, dimensions['e10s_cohort'] AS cohort, '' AS empty, "
    "stats['usage_hours'] AS usage, submission_date, dimensions "
    "FROM crash_aggregates WHERE dimensions['channel'] = 'aurora' OR stats['usage_hours'] = 60000 "
    "ORDER BY usage DESC"
)


def run(*args, input=None):
    result = CliRunner().invoke(cli, ["sql", *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def out(result) -> str:
    """Standard output as written (click's ``result.stdout`` turns CRLF into LF)."""
    return result.stdout_bytes.decode("utf-8")


def test_csv_is_rfc4180_with_a_header_and_null_as_an_empty_field(dataset):
    result = run("--data", str(dataset), "--format", "csv", QUERY)
    assert result.exit_code == 0, result.output
    assert out(result).endswith("\r\n") and "\n" not in out(result).replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(out(result), newline="")))
    assert rows[0] == ["activity_date", "cohort", "empty", "usage", "submission_date", "dimensions"]
    assert rows[1][:5] == ["2016-03-14", "test", "", "60000.0", "2016-03-14"]  # r1
    assert rows[2][:5] == ["2016-03-15", "", "", "0.0", "2016-03-15"]  # r10: no cohort
    assert json.loads(rows[2][5]) == {
        "build_version": "47.0a2",
        "application": "Firefox",
        "os_name": "Windows_NT",
        "e10s_enabled": "True",
        "channel": "aurora",
    }
    # NULL is an empty field, an empty string is quoted
    assert out(result).splitlines()[2].startswith('2016-03-15,,"",0.0,')


def test_json_is_one_object_per_line(dataset):
    result = run("--data", str(dataset), "--format", "json", QUERY)
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 2
    assert objects[1]["cohort"] is None and objects[1]["empty"] == ""
    assert objects[1]["submission_date"] == "2016-03-15" and objects[1]["dimensions"]["channel"] == "aurora"
    assert objects[0]["usage"] == 60000.0


def test_json_writes_non_finite_numbers_as_null(dataset):
    result = run("--data", str(dataset), "--format", "json", "SELECT 1.0E0 / 0 AS inf, 0.0E0 / 0 AS nan")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"inf": None, "nan": None}


def test_table_is_readable(dataset):
    result = run("--data", str(dataset), QUERY)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["activity_date", "cohort", "empty", "usage", "submission_date", "dimensions"]
    assert "NULL" in lines[3] and "60000.0" in lines[2]
    assert lines[-1] == "(2 rows)"


def test_parquet_needs_an_output_file(dataset, tmp_path):
    result = run("--data", str(dataset), "--format", "parquet", QUERY)
    assert result.exit_code == 2 and "--output" in result.stderr
    out = tmp_path / "answer.parquet"
    result = run("--data", str(dataset), "--format", "parquet", "--output", str(out), QUERY)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == ["activity_date", "cohort", "empty", "usage", "submission_date", "dimensions"]
    assert table.column("usage").to_pylist() == [60000.0, 0.0]
    assert dict(table.column("dimensions").to_pylist()[1])["channel"] == "aurora"


def test_output_file_is_only_replaced_by_a_query_that_succeeds(corrupt_dataset, tmp_path):
    target = tmp_path / "answer.csv"
    target.write_text("previous answer\n")
    result = run(
        "--data", str(corrupt_dataset), "--format", "csv", "--output", str(target), "SELECT * FROM crash_aggregates"
    )
    assert result.exit_code == 1
    assert target.read_text() == "previous answer\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer.csv", "data"]
    result = run(
        "--data",
        str(corrupt_dataset),
        "--format",
        "csv",
        "--output",
        str(target),
        "SELECT count(*) AS n FROM crash_aggregates WHERE submission_date = DATE '2016-03-14'",
    )
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_bytes() == b"n\r\n5\r\n"


def test_limit(dataset):
    result = run(
        "--data",
        str(dataset),
        "--format",
        "csv",
        "--limit",
        "2",
        "SELECT activity_date FROM crash_aggregates ORDER BY 1",
    )
    assert out(result) == "activity_date\r\n2016-03-12\r\n2016-03-13\r\n"


def test_query_from_a_file_or_standard_input(dataset, tmp_path):
    query_file = tmp_path / "q.sql"
    query_file.write_text("-- how many\nSELECT count(*) AS n\nFROM crash_aggregates\n")
    assert out(run("--data", str(dataset), "--format", "csv", "--file", str(query_file))) == "n\r\n11\r\n"
    assert out(run("--data", str(dataset), "--format", "csv", "-", input=query_file.read_text())) == "n\r\n11\r\n"
    assert out(run("--data", str(dataset), "--format", "csv", "--file", "-", input="SELECT 1 AS one")) == "one\r\n1\r\n"
    both = run("--data", str(dataset), "--file", str(query_file), "SELECT 1")
    assert both.exit_code == 2 and "either QUERY or --file" in both.stderr
    missing = run("--data", str(dataset), "--file", str(tmp_path / "nope.sql"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr


def test_data_defaults_to_the_configured_output(dataset, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[data]\noutput = "{dataset}"\n')
    result = run("--config", str(config), "--format", "csv", "SELECT count(*) AS n FROM crash_aggregates")
    assert result.exit_code == 0, result.output
    assert out(result) == "n\r\n11\r\n"
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    assert run("--config", str(bad), "SELECT 1").exit_code == 2


def test_the_example_queries_of_the_repository_run(dataset):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    for path in sorted(examples.glob("*.sql")):
        result = run("--data", str(dataset), "--format", "csv", "--file", str(path))
        assert result.exit_code == 0, (path.name, result.output)
