"""The ``crash-aggregates`` command line: thin wrappers over the library.

Exit codes (also in ``crash-aggregates --help`` and the README):

  0  every requested date was processed and published
  1  at least one date failed (corrupt input, I/O error); its partition was left as it was
  2  bad arguments or configuration (nothing was run)
  3  at least one date had no input (nothing was written for it); no date failed
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, timedelta, timezone

import click

EXIT_USAGE = 2  # the other exit codes are set by job.run_job

EXIT_CODES_HELP = """\b
Exit codes:
  0  all dates processed and published
  1  a date failed (corrupt input, I/O error); its old partition is kept
  2  bad arguments or configuration
  3  a date had no input; nothing written for it (and no date failed)"""


class UsageError(click.UsageError):
    """A bad argument: one line on stderr, exit status 2."""

    exit_code = EXIT_USAGE


def parse_date(text: str) -> date:
    """``YYYYMMDD`` or ``YYYY-MM-DD``.

    >>> parse_date("20160305"), parse_date("2016-03-05")
    (datetime.date(2016, 3, 5), datetime.date(2016, 3, 5))
    """
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if len(text) == (8 if fmt == "%Y%m%d" else 10):
            return parsed
    raise ValueError(f"invalid date {text!r}: expected YYYYMMDD or YYYY-MM-DD")


def yesterday() -> date:
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def date_range(min_date: str | None, max_date: str | None) -> list[date]:
    """Every date from min to max inclusive; each defaults to yesterday (UTC)."""
    try:
        lo = parse_date(min_date) if min_date else yesterday()
        hi = parse_date(max_date) if max_date else yesterday()
    except ValueError as e:
        raise UsageError(str(e)) from None
    if lo > hi:
        raise UsageError(f"--min-submission-date {lo} is after --max-submission-date {hi}")
    return [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def check_location(what: str, location: str) -> str:
    """A local path or an s3:// URL (with the s3 extra installed), else a usage error."""
    from .location import S3Unavailable, check, normalize, require_s3

    try:
        location = check(location)
        if is_s3(location):
            require_s3()
            location = normalize(location)
    except (ValueError, S3Unavailable) as e:
        raise UsageError(f"{what}: {e}") from None
    return location


def load_config_or_fail(path: str | None):
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        raise UsageError(str(e)) from None


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
    `config` shows the dimensions and stats in force.
    """


@cli.command()
@click.option("--input", "input_path", metavar="PATH", help="Root of the pings, a folder or s3://bucket/prefix: PATH/submission_date=YYYY-MM-DD/*.ndjson[.gz|.zst]. Default: [data] input of the config.")
@click.option("--output", "output_path", metavar="PATH", help="Root of the aggregates, a folder or s3://bucket/prefix: one partition per date is written under it. Default: [data] output of the config.")
@click.option("--min-submission-date", metavar="D", help="First date to process, YYYYMMDD or YYYY-MM-DD. Default: yesterday (UTC).")
@click.option("--max-submission-date", metavar="D", help="Last date to process (inclusive). Default: yesterday (UTC).")
@click.option("--config", "config_path", metavar="FILE", help="TOML file with dimensions and stats (default: $CRASH_AGGREGATES_CONFIG, else the built-in SPEC defaults).")
@click.option("--engine", type=click.Choice(["embedded"]), default="embedded", show_default=True, help="Where the job runs.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N", help="Worker processes for the embedded engine. Default: all cores.")
@click.option("--allow-corrupt-files", is_flag=True, help="Use the readable lines of a truncated or corrupt compressed file instead of failing the date; such files are listed under corrupt_files in _report.json.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal).")
def run(input_path, output_path, min_submission_date, max_submission_date, config_path, engine, workers, allow_corrupt_files, progress):
    """Aggregate the pings of each submission date into a partition.

    Every date from --min-submission-date to --max-submission-date is read from
    INPUT/submission_date=YYYY-MM-DD/ and written to
    OUTPUT/submission_date=YYYY-MM-DD/ (part-*.parquet, _report.json, then
    _SUCCESS). A partition is replaced atomically: a run that dies leaves the
    previous version in place.

    INPUT and OUTPUT may be s3://bucket/prefix URLs (the s3 extra), with
    credentials from the standard AWS chain and the endpoint from [s3]
    endpoint_url in the config or AWS_ENDPOINT_URL.
    """
    from .job import run_job

    config = load_config_or_fail(config_path)
    dates = date_range(min_submission_date, max_submission_date)
    input_path = input_path or config.input
    output_path = output_path or config.output
    if not input_path:
        raise UsageError("no input: pass --input PATH or set [data] input in the config")
    if not output_path:
        raise UsageError("no output: pass --output PATH or set [data] output in the config")
    input_path = check_location("input", input_path)
    output_path = check_location("output", output_path)
    if not is_s3(input_path) and not os.path.isdir(input_path):
        raise UsageError(f"input {input_path} is not a folder")
    code = run_job(
        config,
        input_path,
        output_path,
        dates,
        engine=engine,
        workers=workers,
        allow_corrupt=allow_corrupt_files,
        progress=sys.stderr.isatty() if progress is None else progress,
    )
    sys.exit(code)


@cli.command("config")
@click.option("--config", "config_path", metavar="FILE", help="TOML file to read (default: $CRASH_AGGREGATES_CONFIG, else the built-in defaults).")
def config_cmd(config_path):
    """Print the effective configuration as TOML.

    Save the output to a file, edit it (add, remove or rename dimensions and
    stats) and pass it back with --config.
    """
    from .config import to_toml

    click.echo(to_toml(load_config_or_fail(config_path)), nl=False)


@cli.command()
@click.option("--output", "output_path", required=True, metavar="PATH", help="Root folder to write PATH/submission_date=YYYY-MM-DD/pings-*.ndjson.gz into.")
@click.option("--min-submission-date", required=True, metavar="D", help="First date, YYYYMMDD or YYYY-MM-DD.")
@click.option("--max-submission-date", required=True, metavar="D", help="Last date (inclusive).")
@click.option("--pings-per-day", type=click.IntRange(min=1), default=10_000, show_default=True, metavar="N", help="Pings written per submission date (main and crash).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--profile", type=click.Choice(["realistic", "small"]), default="small", show_default=True, help="realistic: 100-200 KB main pings with many histograms, like real ones; small: 1-2 KB pings.")
def generate(output_path, min_submission_date, max_submission_date, pings_per_day, seed, profile):
    """Write synthetic telemetry pings in the job's input layout (gzip NDJSON)."""
    from .synth import generate as generate_pings

    dates = date_range(min_submission_date, max_submission_date)
    generate_pings(output_path, dates, pings_per_day, seed=seed, profile=profile)


def main():
    cli(prog_name="crash-aggregates")


if __name__ == "__main__":
    main()
