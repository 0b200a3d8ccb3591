"""The daily job: for each submission date, read, aggregate, publish, report.

This is the library entry point behind ``crash-aggregates run``; it returns
the process exit status and prints one summary line per date plus a final one.

Input and output are local folders or ``s3://`` URLs. A location that cannot
be used at all (wrong credentials, no such bucket, unreachable endpoint,
permission denied) stops the run at the first date that meets it, with one
message naming the URL: the following dates would only fail the same way.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import click

from . import __version__, location
from .config import Config
from .engines import EngineError
from .location import StorageError
from .sources import CorruptInput, NoInput, list_input, plan_splits
from .storage import aggregates_table, clean_staging, load_writer, publish_partition

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_INPUT = 0, 1, 2, 3


@dataclass
class DayResult:
    day: date
    status: str  # "published" | "no input" | "failed" | "stopped" (a StorageError: the run stops)
    message: str = ""
    report: dict = field(default_factory=dict)


def run_job(
    config: Config,
    input_path: str,
    output_path: str,
    dates: list[date],
    engine: str = "embedded",
    workers: int | None = None,
    allow_corrupt: bool = False,
    progress: bool = False,
    spark_master: str | None = None,
) -> int:
    """Process every date; returns 0, 1 (a date failed), 2 (the engine cannot start) or 3 (a date had no input)."""
    started = time.perf_counter()
    if engine == "spark":
        from .engines import spark

        try:  # one session for every date of the run (stopped at exit)
            spark.start(spark_master)
            workers = spark.parallelism()
        except EngineError as e:
            click.echo(f"error: {e}", err=True)
            return EXIT_USAGE
    if engine == "embedded" and not workers:
        from .engines.embedded import default_workers

        workers = default_workers()
    location.configure(config.s3_endpoint_url)
    try:
        for name in clean_staging(output_path, warn=_warn):
            click.echo(f"removed {name}, left behind by an interrupted run", err=True)
    except StorageError as e:
        click.echo(f"error: {e}; nothing was run", err=True)
        return EXIT_FAILED
    results = []
    for day in dates:
        result = run_day(config, input_path, output_path, day, engine, workers, allow_corrupt, progress)
        results.append(result)
        if result.status == "stopped":
            left = len(dates) - len(results)
            if left:
                click.echo(f"stopping: the {left} later date(s) were not run", err=True)
            break
    counts = {s: sum(r.status == s for r in results) for s in ("published", "no input", "failed", "stopped")}
    failed = counts["failed"] + counts["stopped"]
    not_run = len(dates) - len(results)
    click.echo(
        f"done: {len(dates)} date(s): {counts['published']} published, {counts['no input']} without input, "
        f"{failed} failed{f', {not_run} not run' if not_run else ''}, in {time.perf_counter() - started:.1f} s"
    )
    if failed:
        return EXIT_FAILED
    if counts["no input"]:
        return EXIT_NO_INPUT
    return EXIT_OK


def run_day(config, input_path, output_path, day, engine, workers, allow_corrupt, progress) -> DayResult:
    started = time.perf_counter()
    try:
        files = list_input(input_path, day)
    except NoInput as e:
        click.echo(f"{day}: no input ({e}); nothing written", err=True)
        return DayResult(day, "no input", str(e))
    except StorageError as e:
        return _stopped(day, e)
    splits = plan_splits(files)
    total_bytes = sum(f.size for f in files)
    try:
        with _progress_bar(day, total_bytes, progress) as advance:
            partial = _aggregate(config, day, splits, engine, workers, allow_corrupt, advance)
    except CorruptInput as e:
        click.echo(
            f"{day}: failed: corrupt input {e} (--allow-corrupt-files uses its readable lines); "
            "the previous partition is left in place",
            err=True,
        )
        return DayResult(day, "failed", str(e))
    except StorageError as e:
        return _stopped(day, e)
    except BrokenProcessPool:
        message = "a worker process died (killed, or out of memory?)"
        click.echo(f"{day}: failed: {message}; the previous partition is left in place", err=True)
        return DayResult(day, "failed", message)
    except EngineError as e:  # a Spark job that failed (after Spark's own retries)
        click.echo(f"{day}: failed: {e}; the previous partition is left in place", err=True)
        return DayResult(day, "failed", str(e))
    except OSError as e:
        click.echo(f"{day}: failed: cannot read input: {e}; the previous partition is left in place", err=True)
        return DayResult(day, "failed", str(e))

    counters = partial.counters()
    report = {
        "submission_date": day.isoformat(),
        **counters,
        "aggregates": len(partial.aggregates),
        "input_files": len(files),
        "input_bytes": total_bytes,
        "corrupt_files": partial.corrupt_files,
        "engine": engine,
        "workers": workers,
        "dimensions": [d.name for d in config.dimensions],
        "stats": config.stat_columns(),
        "version": __version__,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - started, 3),
    }
    table = aggregates_table(partial.aggregates, [d.name for d in config.dimensions], config.stat_columns())
    try:
        where = publish_partition(output_path, day, table, report, warn=lambda message: _warn(f"{day}: {message}"))
    except StorageError as e:
        return _stopped(day, e, report)
    except OSError as e:
        click.echo(
            f"{day}: failed: cannot publish to {output_path}: {e}; the previous partition is left in place", err=True
        )
        return DayResult(day, "failed", str(e), report)
    seconds = time.perf_counter() - started
    corrupt = f", {len(partial.corrupt_files)} corrupt file(s) used in part" if partial.corrupt_files else ""
    click.echo(
        f"{day}: main {counters['main_pings_processed']:,} processed / {counters['main_pings_ignored']:,} ignored, "
        f"crash {counters['crash_pings_processed']:,} processed / {counters['crash_pings_ignored']:,} ignored, "
        f"{len(partial.aggregates):,} aggregates, {total_bytes / 1e6:,.1f} MB in {seconds:.2f} s{corrupt} -> {where}"
    )
    return DayResult(day, "published", report=report)


def _stopped(day: date, error: StorageError, report: dict | None = None) -> DayResult:
    click.echo(f"{day}: failed: {error}; the previous partition is left in place", err=True)
    return DayResult(day, "stopped", str(error), report or {})


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _aggregate(config, day, splits, engine, workers, allow_corrupt, advance):
    if engine == "embedded":
        from .engines.embedded import aggregate_day
    elif engine == "spark":
        from .engines.spark import aggregate_day
    else:
        raise ValueError(f"unknown engine {engine!r}")
    # pyarrow, for the Parquet writer, is imported while the workers read.
    return aggregate_day(
        config, day, splits, workers=workers, allow_corrupt=allow_corrupt, progress=advance, prepare=load_writer
    )


class _progress_bar:
    """A rich progress bar on stderr (bytes of total, MB/s, pings/s), or nothing."""

    def __init__(self, day: date, total_bytes: int, enabled: bool):
        self.day, self.total, self.enabled = day, total_bytes, enabled

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.pings = 0
        self.started = time.perf_counter()
        self.bar = Progress(
            TextColumn(f"{self.day}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("read", total=self.total, rate="")
        return self.advance

    def advance(self, nbytes: int, pings: int) -> None:
        self.pings += pings
        rate = self.pings / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(self.task, advance=nbytes, rate=f"{rate:,.0f} pings/s")

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False
