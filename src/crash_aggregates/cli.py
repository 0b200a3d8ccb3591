"""The ``crash-aggregates`` command line: thin wrappers over the library.

The library raises ``errors.CrashAggregatesError``s and returns results; here
they become one line on stderr and the exit status of ``errors.ExitCode``
(which ``--help`` and docs/operations.md explain).
"""

from __future__ import annotations

import gc
import sys
from datetime import date, timedelta

import click

from . import engines
from .cli_common import (
    Failed,
    JobFailed,
    UsageError,
    check_location,
    data_option,
    date_range,
    exit_codes_help,
    is_folder,
    load_config_or_fail,
    parse_date,
    yesterday,
)
from .errors import CrashAggregatesError, ExitCode

EXIT_CODES_HELP = exit_codes_help(
    {
        ExitCode.OK: "all dates processed and published",
        ExitCode.FAILED: "a date failed (corrupt input, I/O error, too many aggregates); its old partition is kept",
        ExitCode.USAGE: "bad arguments or configuration",
        ExitCode.NO_INPUT: "a date had no input; nothing written for it (and no date failed)",
    }
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(package_name="crash-aggregates")
def cli():
    """Crash-rate aggregates from telemetry pings.

    `run` turns one day of main and crash pings into aggregates (one row per
    activity date and combination of dimensions) written as Hive-partitioned
    Parquet; `generate` writes realistic synthetic pings to try it on;
    `config` shows the dimensions and stats in force; `sql` queries the
    aggregates (Presto SQL); `ddl` prints the table for Trino, Hive or Spark;
    `migrate` brings partitions of earlier versions to the current layout;
    `serve` shows crash rates in a browser (the dashboard); `users`, `queries`
    and `state` manage its accounts, saved queries and state file. From cron,
    `run --catch-up` runs whatever dates need it, `check` says when data is
    missing or odd or a crash rate jumps (and notifies), and `report` emails
    a digest.
    """


@cli.command()
@click.option(
    "--input",
    "input_path",
    metavar="PATH",
    help=(
        "Root of the pings, a folder or s3://bucket/prefix: PATH/submission_date=YYYY-MM-DD/*.ndjson[.gz|.zst]. "
        "Default: [data] input of the config."
    ),
)
@click.option(
    "--output",
    "output_path",
    metavar="PATH",
    help=(
        "Root of the aggregates, a folder or s3://bucket/prefix: one partition per date is written under it. "
        "Default: [data] output of the config."
    ),
)
@click.option(
    "--min-submission-date",
    metavar="D",
    help="First date to process, YYYYMMDD or YYYY-MM-DD. Default: yesterday (UTC).",
)
@click.option("--max-submission-date", metavar="D", help="Last date to process (inclusive). Default: yesterday (UTC).")
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="TOML file with dimensions and stats (default: $CRASH_AGGREGATES_CONFIG, else the built-in SPEC defaults).",
)
@click.option(
    "--engine",
    type=click.Choice(engines.names()),
    default="embedded",
    show_default=True,
    help="Where the job runs: local worker processes, or Spark (needs the spark extra and Java 17+).",
)
@click.option(
    "--spark-master",
    metavar="URL",
    help=(
        "Spark master for --engine spark (local[4], yarn, spark://host:7077, k8s://...). "
        "Default: what spark-submit or the Spark configuration gives, else local[*]."
    ),
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Worker processes for the embedded engine. Default: all cores.",
)
@click.option(
    "--allow-corrupt-files",
    is_flag=True,
    help=(
        "Use the readable lines of a truncated or corrupt compressed file instead of failing the date; "
        "such files are listed under corrupt_files in _report.json."
    ),
)
@click.option(
    "--max-aggregates",
    type=click.IntRange(min=1),
    metavar="N",
    help=(
        "Most distinct aggregates (output rows) a date may have: past N the date fails before they fill "
        "the memory, naming the dimensions with the most distinct values. "
        "Default: [limits] max_aggregates of the config, else sized for this machine's memory "
        "(see `crash-aggregates config`)."
    ),
)
@click.option(
    "--max-line-size",
    metavar="SIZE",
    help=(
        "Longest line read, e.g. 16MiB, 64M or bytes: a longer line is skipped unread and counted as ignored "
        "(reason oversized; _report.json says where). Default: [limits] max_line_size of the config, else 16MiB."
    ),
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
@click.option(
    "--catch-up",
    is_flag=True,
    help=(
        "Run only the dates of a window that have input but no partition, or whose input changed since "
        "it was published (late files, a re-delivery); prints each with its reason. Safe from cron every hour: "
        "if another run holds the output's lock, this one skips."
    ),
)
@click.option(
    "--since",
    metavar="D",
    help=(
        "With --catch-up: the window's first date (YYYY-MM-DD). Default: [watchdog] window_days (14) back; "
        "the window ends yesterday."
    ),
)
def run(
    input_path,
    output_path,
    min_submission_date,
    max_submission_date,
    config_path,
    engine,
    spark_master,
    workers,
    allow_corrupt_files,
    max_aggregates,
    max_line_size,
    progress,
    catch_up,
    since,
):
    """Aggregate the pings of each submission date into a partition.

    Every date from --min-submission-date to --max-submission-date is read from
    INPUT/submission_date=YYYY-MM-DD/ and written to
    OUTPUT/submission_date=YYYY-MM-DD/ (part-*.parquet, the flat sidecar
    _flat.parquet.sidecar that makes queries fast, _report.json, then _SUCCESS). A
    partition is replaced atomically: a run that dies leaves the previous
    version in place.

    INPUT and OUTPUT may be s3://bucket/prefix URLs (the s3 extra), with
    credentials from the standard AWS chain and the endpoint from [s3]
    endpoint_url in the config or AWS_ENDPOINT_URL.
    """
    from .job import run_job
    from .location import StorageError
    from .terminal import TerminalReporter

    config = load_config_or_fail(config_path)
    from dataclasses import replace

    if max_aggregates is not None:
        config = replace(config, max_aggregates=max_aggregates)
    if max_line_size is not None:
        from .config import ConfigError, parse_size

        try:
            config = replace(config, max_line_size=parse_size(max_line_size))
        except ConfigError as e:
            raise UsageError(f"--max-line-size: {e}") from None
    if catch_up:
        dates = catch_up_window(since, min_submission_date, max_submission_date, config.watch.watchdog.window_days)
    elif since:
        raise UsageError("--since goes with --catch-up")
    else:
        dates = date_range(min_submission_date, max_submission_date)
    input_path = input_path or config.input
    output_path = output_path or config.output
    if not input_path:
        raise UsageError("no input: pass --input PATH or set [data] input in the config")
    if not output_path:
        raise UsageError("no output: pass --output PATH or set [data] output in the config")
    input_path = check_location("input", input_path)
    output_path = check_location("output", output_path)
    if not is_folder(input_path):
        raise UsageError(f"input {input_path} is not a folder")
    if spark_master and engine != "spark":
        raise UsageError("--spark-master goes with --engine spark")
    if workers and engine != "embedded":
        raise UsageError(
            "--workers is for the embedded engine; Spark's parallelism comes from its master (local[N], executors)"
        )
    reporter = TerminalReporter(progress=sys.stderr.isatty() if progress is None else progress)
    try:
        result = run_job(
            config,
            input_path,
            output_path,
            dates,
            engine=engine,
            workers=workers,
            allow_corrupt=allow_corrupt_files,
            spark_master=spark_master,
            reporter=reporter,
            catch_up=catch_up,
        )
    except StorageError as e:  # the output cannot be used (raised before the first date)
        raise JobFailed.of(e, "; nothing was run") from None
    except CrashAggregatesError as e:  # the engine cannot start
        raise JobFailed.of(e) from None
    reporter.run_done(result)
    sys.exit(result.exit_code)


def catch_up_window(since: str | None, min_date: str | None, max_date: str | None, days: int) -> list[date]:
    """The dates ``run --catch-up`` looks at: --since (default ``days`` back) to yesterday (UTC)."""
    from .catchup import window

    if min_date or max_date:
        raise UsageError("--catch-up picks its dates: give --since D instead of --min/--max-submission-date")
    try:
        first = parse_date(since) if since else None
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None
    today = yesterday() + timedelta(days=1)
    if first is not None and first > today - timedelta(days=1):
        raise UsageError(f"--since {first} is after yesterday ({today - timedelta(days=1)}): nothing to catch up")
    return window(today, first, days)


@cli.command("config")
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="TOML file to read (default: $CRASH_AGGREGATES_CONFIG, else the built-in defaults).",
)
def config_cmd(config_path):
    """Print the effective configuration as TOML.

    Save the output to a file, edit it (add, remove or rename dimensions and
    stats) and pass it back with --config.
    """
    from .config import to_toml

    click.echo(to_toml(load_config_or_fail(config_path)), nl=False)


SQL_EXIT_CODES_HELP = exit_codes_help(
    {
        ExitCode.OK: "the answer was written",
        ExitCode.FAILED: "the query started but failed "
        "(time limit, unreadable data file, a value that cannot be converted)",
        ExitCode.USAGE: "the query was refused or is wrong (syntax, unknown column/function/table, writing,\n"
        "     files outside the dataset), or bad arguments",
    }
)


@cli.command("sql", epilog=SQL_EXIT_CODES_HELP)
@click.argument("query", required=False, metavar="[QUERY]")
@click.option("--file", "-f", "query_file", metavar="F", help="Read the query from file F ('-' for standard input).")
@data_option
@click.option("--config", "config_path", metavar="FILE", help="TOML config whose [data] output is the default --data.")
@click.option(
    "--dialect",
    type=click.Choice(["presto", "duckdb"]),
    default="presto",
    show_default=True,
    help="SQL dialect of the query.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="table: for a terminal; csv: RFC 4180 with a header row; json: one object per line; parquet: needs --output.",
)
@click.option(
    "--output",
    "-o",
    "output_path",
    metavar="FILE",
    help="Write the answer to FILE instead of standard output (replaced only when the query succeeds).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="S",
    help="Stop the query after S seconds.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), metavar="N", help="Write at most N rows (table format default: 1000)."
)
def sql_cmd(query, query_file, data_path, config_path, dialect, fmt, output_path, timeout, limit):
    """Query the aggregates with SQL: the table crash_aggregates.

    \b
    Columns: submission_date DATE, activity_date VARCHAR,
             dimensions MAP(VARCHAR, VARCHAR), stats MAP(VARCHAR, DOUBLE).
    Only published partitions (with _SUCCESS) are visible; the data is read-only.

    \b
    QUERY is the SQL text, or '-' to read it from standard input:
      crash-aggregates sql "SELECT dimensions['channel'], sum(stats['usage_hours'])
                            FROM crash_aggregates GROUP BY 1"
    """
    from .sql import QueryError
    from .sql.command import read_query, sql_command

    try:
        text = read_query(query, query_file)
        if not data_path:
            data_path = load_config_or_fail(config_path).output
        if not data_path:
            raise QueryError("no data: pass --data PATH or set [data] output in the config")
        sql_command(text, data=data_path, dialect=dialect, fmt=fmt, output=output_path, timeout=timeout, limit=limit)
    except QueryError as e:
        raise Failed.of(e) from None


@cli.command("ddl")
@click.option(
    "--dialect",
    type=click.Choice(["trino", "hive", "spark"]),
    required=True,
    help="Engine that will read the aggregates.",
)
@click.option(
    "--location",
    required=True,
    metavar="URL",
    help="Where the aggregates are: s3://..., hdfs://..., or a local path (printed as a file: URL).",
)
@click.option(
    "--table",
    default="crash_aggregates",
    show_default=True,
    metavar="NAME",
    help="Table name, optionally schema-qualified (catalog.schema.table for Trino).",
)
def ddl_cmd(dialect, location, table):
    """Print the DDL that makes the aggregates a table in Trino, Hive or Spark SQL.

    Two statements: CREATE the external table (three Parquet columns and the
    submission_date partition column), then the statement that registers
    partitions added since; run that one after every day's job.
    """
    from .sql import QueryError
    from .sql.ddl import ddl

    try:
        click.echo(ddl(dialect, location, table), nl=False)
    except QueryError as e:
        raise Failed.of(e) from None


@cli.command("migrate")
@data_option
@click.option("--config", "config_path", metavar="FILE", help="TOML config whose [data] output is the default --data.")
@click.option("--dry-run", is_flag=True, help="Print what would change, and change nothing.")
def migrate_cmd(data_path, config_path, dry_run):
    """Bring partitions published by earlier versions to the current layout.

    Renames their flat sidecars from _flat.parquet (_flat-VERSION.parquet on
    S3), which DuckDB and polars globs such as */*.parquet read as data,
    counting every aggregate twice, to _flat.parquet.sidecar. Each partition
    is switched by its _SUCCESS, so readers see it before or after, never in
    between; running it again changes nothing. Prints one line per change
    and a summary; do not run it while `run` writes to the same dates.
    """
    from .location import StorageError
    from .migrate import migrate

    if not data_path:
        data_path = load_config_or_fail(config_path).output
    if not data_path:
        raise UsageError("no data: pass --data PATH or set [data] output in the config")
    data_path = check_location("--data", data_path)
    if not is_folder(data_path):
        raise UsageError(f"no dataset at {data_path}: not a folder")

    def progress(change):
        for line in change.lines(dry_run):
            click.echo(line)

    try:
        summary = migrate(data_path, dry_run=dry_run, progress=progress)
    except StorageError as e:
        raise Failed.of(e) from None
    except OSError as e:
        raise Failed(f"cannot migrate {e.filename or data_path}: {e.strerror or e}") from None
    done = "to migrate" if dry_run else "migrated"
    click.echo(
        f"{'dry run' if dry_run else 'done'}: {summary.migrated} partition(s) {done}, "
        f"{summary.current} already in the current layout" + ("; nothing was changed" if dry_run else "")
    )
    if summary.skipped:
        raise Failed(f"{summary.skipped} partition(s) changed while migrating: run migrate again")


@cli.command("serve")
@data_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any address but loopback needs users (crash-aggregates users add).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="TOML config: dimensions and stats, [data] output, [state] path, and the [dashboard] table (defaults of the "
    "views).",
)
@click.option(
    "--state",
    "state_path",
    metavar="FILE",
    help="SQLite state file (users, saved queries). Default: [state] path, else the user's data directory.",
)
@click.option(
    "--trust-user-header",
    metavar="HEADER",
    help="Take the signed-in user's name from this request header, set by an authenticating reverse proxy "
    "(e.g. X-Forwarded-User). Off by default; only when nothing but the proxy can reach the server.",
)
def serve_cmd(data_path, host, port, config_path, state_path, trust_user_header):
    """Serve the dashboard and SQL console: crash rates in a browser, with exact intervals.

    Overview, Explore, Builds, Compare and Data health pages; a SQL console with
    saved queries and dashboards (kept in the state file); a JSON API under /api/
    (rates, health, sql, queries, dashboards). Over the published partitions,
    read as the sql command reads them. Prints the URL to open; Ctrl-C stops it.
    """
    config = load_config_or_fail(config_path)
    data_path = data_path or config.output
    if not data_path:
        raise UsageError("no data: pass --data PATH or set [data] output in the config")
    data_path = check_location("--data", data_path)
    if not is_folder(data_path):
        raise UsageError(f"no dataset at {data_path}: not a folder")
    try:
        from .web.serve import ServeError, serve
    except ImportError as e:
        raise UsageError(f"the dashboard needs the web extra: pip install 'crash-aggregates[web]' ({e})") from None
    from .state import StateError, resolve_path

    try:
        state = resolve_path(state_path, config.state_path, (data_path, config.input))
    except StateError as e:
        raise UsageError(str(e)) from None
    try:
        serve(
            data_path,
            config,
            state_path=state,
            host=host,
            port=port,
            trust_user_header=trust_user_header,
            echo=click.echo,
        )
    except ServeError as e:
        raise UsageError(str(e)) from None
    except KeyboardInterrupt:
        pass


@cli.command()
@click.option(
    "--output",
    "output_path",
    required=True,
    metavar="PATH",
    help="Root folder to write PATH/submission_date=YYYY-MM-DD/pings-*.ndjson.gz into.",
)
@click.option("--min-submission-date", required=True, metavar="D", help="First date, YYYYMMDD or YYYY-MM-DD.")
@click.option("--max-submission-date", required=True, metavar="D", help="Last date (inclusive).")
@click.option(
    "--pings-per-day",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    metavar="N",
    help="Pings written per submission date (main and crash).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option(
    "--profile",
    type=click.Choice(["realistic", "small"]),
    default="small",
    show_default=True,
    help="realistic: 100-200 KB main pings with many histograms, like real ones; small: 1-2 KB pings.",
)
@click.option(
    "--compression",
    type=click.Choice(["gzip", "none", "zstd"]),
    default="gzip",
    show_default=True,
    help="File format: .ndjson.gz, .ndjson or .ndjson.zst.",
)
def generate(output_path, min_submission_date, max_submission_date, pings_per_day, seed, profile, compression):
    """Write synthetic telemetry pings in the job's input layout (NDJSON, gzip by default)."""
    import time

    from .synth import generate as generate_pings

    dates = date_range(min_submission_date, max_submission_date)
    output_path = check_location("--output", output_path)
    started = time.monotonic()
    from .location import StorageError

    try:
        summary = generate_pings(output_path, dates, pings_per_day, seed=seed, profile=profile, compression=compression)
    except StorageError as e:
        raise JobFailed.of(e) from None
    click.echo(
        f"generated {summary.pings:,} pings ({sum(summary.bad.values()):,} deliberately bad) in "
        f"{summary.files} files, {summary.bytes / 1e6:,.1f} MB on disk "
        f"({summary.uncompressed_bytes / 1e6:,.1f} MB uncompressed), {time.monotonic() - started:.1f} s",
        err=True,
    )


# The team's commands (users, queries, state) and the watchdog's (check, report) live in their own modules.
from .cli_team import queries_group, state_group, users_group  # noqa: E402
from .cli_watch import check_cmd, report_cmd  # noqa: E402

cli.add_command(check_cmd)
cli.add_command(report_cmd)
cli.add_command(users_group)
cli.add_command(queries_group)
cli.add_command(state_group)


def main():
    try:
        cli(prog_name="crash-aggregates")
    finally:
        # The interpreter's last garbage collection would walk every object
        # left, most of them pyarrow's (~0.07 s of a run); frozen, it skips them.
        gc.freeze()


if __name__ == "__main__":
    main()
