"""`crash-aggregates ddl`: the external table for Trino, Hive and Spark SQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from crash_aggregates.cli import cli


def ddl(*args):
    result = CliRunner().invoke(cli, ["ddl", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_hive():
    result = ddl("--dialect", "hive", "--location", "s3://bucket/crash-aggregates/v1/")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "CREATE EXTERNAL TABLE IF NOT EXISTS crash_aggregates (\n"
        "  activity_date STRING,\n"
        "  dimensions MAP<STRING, STRING>,\n"
        "  stats MAP<STRING, DOUBLE>\n"
        ")\n"
        "PARTITIONED BY (submission_date DATE)\n"
        "STORED AS PARQUET\n"
        "LOCATION 's3://bucket/crash-aggregates/v1/';\n"
        "\n"
        "MSCK REPAIR TABLE crash_aggregates;\n"
    )


def test_spark_uses_a_data_source_table_that_any_spark_sql_session_runs():
    result = ddl("--dialect", "spark", "--location", "s3a://bucket/agg", "--table", "telemetry.crash_aggregates")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "CREATE TABLE IF NOT EXISTS telemetry.crash_aggregates (\n"
        "  activity_date STRING,\n"
        "  dimensions MAP<STRING, STRING>,\n"
        "  stats MAP<STRING, DOUBLE>,\n"
        "  submission_date DATE\n"
        ")\n"
        "USING PARQUET\n"
        "PARTITIONED BY (submission_date)\n"
        "LOCATION 's3a://bucket/agg';\n"
        "\n"
        "MSCK REPAIR TABLE telemetry.crash_aggregates;\n"
    )


def test_trino_uses_the_hive_connector_properties_and_syncs_partitions():
    result = ddl("--dialect", "trino", "--location", "s3://bucket/agg", "--table", "hive.telemetry.crash_aggregates")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "CREATE TABLE IF NOT EXISTS hive.telemetry.crash_aggregates (\n"
        "  activity_date VARCHAR,\n"
        "  dimensions MAP(VARCHAR, VARCHAR),\n"
        "  stats MAP(VARCHAR, DOUBLE),\n"
        "  submission_date DATE\n"
        ")\n"
        "WITH (\n"
        "  external_location = 's3://bucket/agg',\n"
        "  format = 'PARQUET',\n"
        "  partitioned_by = ARRAY['submission_date']\n"
        ");\n"
        "\n"
        "CALL hive.system.sync_partition_metadata('telemetry', 'crash_aggregates', 'FULL');\n"
    )


def test_trino_default_schema():
    out = ddl("--dialect", "trino", "--location", "s3://b/a").stdout
    assert "CREATE TABLE IF NOT EXISTS default.crash_aggregates (" in out
    assert "CALL system.sync_partition_metadata('default', 'crash_aggregates', 'FULL');" in out


def test_a_local_path_becomes_a_file_url(tmp_path):
    out = ddl("--dialect", "hive", "--location", str(tmp_path)).stdout
    assert f"LOCATION '{tmp_path.as_uri()}';" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dialect", "hive", "--location", "s3://b/a", "--table", "a.b.c"], "not a valid name"),
        (["--dialect", "spark", "--location", "s3://b/a", "--table", "x; DROP TABLE y"], "not a valid name"),
        (["--dialect", "trino", "--location", "s3://b/it's"], "quote"),
        (["--dialect", "hive", "--location", " "], "empty"),
        (["--dialect", "postgres", "--location", "s3://b/a"], "postgres"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    result = ddl(*args)
    assert result.exit_code == 2
    assert message in result.stderr
