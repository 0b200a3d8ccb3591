"""The daily job: for each submission date, read, aggregate, publish, report.

This is the library entry point behind ``crash-aggregates run``. It prints
nothing and exits nothing: ``run_job`` returns a :class:`RunResult` (what
became of each date, and the exit status that follows) and tells a
:class:`Reporter` what happens while it happens; the command line's reporter
(``terminal.py``) prints the lines and the progress bar.

Input and output are local folders or URLs of a store (``stores/``). A
location that cannot be used at all (wrong credentials, no such bucket,
unreachable endpoint, permission denied) stops the run at the first date
that meets it: the following dates would only fail the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from . import __version__, catchup, engines, lock, memory, stores
from .config import Config, format_size
from .engines import Engine, ProgressFn
from .errors import CrashAggregatesError, ExitCode
from .location import StorageError
from .sources import NoInput, list_input, plan_splits
from .storage import clean_staging, load_writer, partition_rows, publish_partition


class DateIOError(CrashAggregatesError):
    """A date's input could not be read, or its partition not published (a local I/O error)."""


class Reporter:
    """What a run tells while it runs; this one tells nothing (a library caller's default)."""

    def removed(self, name: str) -> None:
        """A folder that an interrupted run left in the output was removed."""

    def warning(self, message: str) -> None:
        """Trouble the run got past, such as old files it could not delete."""

    def reading(self, day: date, total_bytes: int) -> AbstractContextManager[ProgressFn | None]:
        """Around the reading of a date: gives the engine its progress callback, or None."""
        return nullcontext()

    def day_done(self, result: DayResult) -> None:
        """A date was published, had no input, or failed."""

    def notice(self, message: str) -> None:
        """Something worth a line that is not trouble: waiting for the output's lock."""

    def planned(self, window: list[date], plans: list[catchup.Plan]) -> None:
        """A catch-up decided which dates of its window to run, and why."""


@dataclass
class DayResult:
    day: date
    status: str  # "published" | "no input" | "failed" | "stopped" (a StorageError: the run stops)
    error: CrashAggregatesError | None = None  # why, unless published
    report: dict = field(default_factory=dict)  # _report.json, once the date was read
    location: Path | str = ""  # where the partition was published
    seconds: float = 0.0  # from listing the input to publishing


@dataclass
class RunResult:
    dates: list[date]  # the dates asked for (a catch-up: those it decided to run)
    days: list[DayResult]  # those run, in order: a stopped run ends early
    seconds: float
    #: Why nothing was run: a catch-up found the output's lock held by another run.
    skipped: str | None = None

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.days)

    @property
    def failed(self) -> int:
        return self.count("failed") + self.count("stopped")

    @property
    def not_run(self) -> int:
        return len(self.dates) - len(self.days)

    @property
    def exit_code(self) -> ExitCode:
        if self.failed:
            return ExitCode.FAILED
        if self.count("no input"):
            return ExitCode.NO_INPUT
        return ExitCode.OK


def run_job(
    config: Config,
    input_path: str,
    output_path: str,
    dates: list[date],
    engine: str = "embedded",
    workers: int | None = None,
    allow_corrupt: bool = False,
    spark_master: str | None = None,
    reporter: Reporter | None = None,
    catch_up: bool = False,
) -> RunResult:
    """Run every date, in order, until one stops the run; returns what became of each.

    ``engine`` is a name of ``engines.ENGINES``. The run holds the output's
    lock (``lock.py``) throughout: another run on the same output waits for
    it, except a catch-up, which skips (its result says so in ``skipped``:
    the run holding the lock is doing the work). With ``catch_up`` the dates
    are a window, of which only the dates that need a run are run
    (``catchup.plan``).

    Raises before the first date: an EngineError when the engine is unknown
    or cannot start here, a StorageError when the output cannot be used,
    ``lock.LockError`` when its lock cannot be taken.
    """
    reporter = reporter or Reporter()
    started = time.perf_counter()
    chosen = engines.get(engine)
    # Before the lock, which creates a local output's folder: an engine that cannot run here leaves nothing.
    workers = chosen.start(workers=workers, master=spark_master)
    stores.configure(config)
    try:
        held = lock.acquire(output_path, wait=not catch_up, notice=reporter.notice, warn=reporter.warning)
    except lock.LockBusy as e:
        return RunResult([], [], time.perf_counter() - started, skipped=str(e))
    with held:
        memory.return_freed_memory()  # this process merges and builds tables; its workers read
        for name in clean_staging(output_path, warn=reporter.warning):
            reporter.removed(name)
        if catch_up:
            plans = catchup.plan(input_path, output_path, dates)
            reporter.planned(dates, plans)
            dates = [p.day for p in plans if p.run]
            if not dates:
                return RunResult([], [], time.perf_counter() - started)
        days = []
        for day in dates:
            result = run_day(config, input_path, output_path, day, chosen, workers, allow_corrupt, reporter, held)
            days.append(result)
            reporter.day_done(result)
            if result.status == "stopped":
                break
    return RunResult(dates, days, time.perf_counter() - started)


def run_day(
    config: Config,
    input_path: str,
    output_path: str,
    day: date,
    engine: Engine,
    workers: int,
    allow_corrupt: bool,
    reporter: Reporter,
    held: lock.Lock | None = None,
) -> DayResult:
    """Read, aggregate and publish one date; a failure is a DayResult, the previous partition left in place."""
    started = time.perf_counter()
    report: dict = {}
    try:
        files = list_input(input_path, day)
        splits = plan_splits(files)
        total_bytes = sum(f.size for f in files)
        with reporter.reading(day, total_bytes) as progress, _failing("cannot read input"):
            # pyarrow, for the Parquet writer, is imported while the workers read (prepare).
            partial = engine.aggregate_day(
                config,
                day,
                splits,
                workers=workers,
                allow_corrupt=allow_corrupt,
                progress=progress,
                prepare=load_writer,
            )
        report = {
            "submission_date": day.isoformat(),
            **partial.counters(),
            "aggregates": len(partial.aggregates),
            "input_files": len(files),
            "input_bytes": total_bytes,
            "input_listing": catchup.listing(files, input_path, day),
            "corrupt_files": partial.corrupt_files,
            "oversized_lines": [line._asdict() for line in partial.oversized_lines],
            "engine": engine.name,
            "workers": workers,
            "dimensions": [d.name for d in config.dimensions],
            "stats": config.stat_columns(),
            "version": __version__,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_seconds": round(time.perf_counter() - started, 3),
        }
        if partial.oversized_lines:
            first = partial.oversized_lines[0]
            reporter.warning(
                f"{day}: {report['ignored_by_reason']['oversized']:,} line(s) longer than "
                f"{format_size(config.max_line_size)} skipped (ignored as oversized; _report.json lists where), "
                f"the first at byte {first.offset:,} of {first.path} (uncompressed)"
            )
        # The sums are freed as the table is built: a day's two biggest things are never held at once.
        memory.return_freed_memory(arrow=True)  # (with --workers 1 this process read, keeping what it freed)
        names = [d.name for d in config.dimensions]
        rows = partition_rows(partial.aggregates, names, config.stat_columns(), clear=True)
        del partial
        if held is not None and not held.held():
            raise StorageError(output_path, "the lock was taken over by another run", "publish to")
        with _failing(f"cannot publish to {output_path}"):
            where = publish_partition(
                output_path, day, rows, report, warn=lambda message: reporter.warning(f"{day}: {message}")
            )
    except CrashAggregatesError as e:
        return DayResult(day, _status(e), e, report)
    return DayResult(day, "published", report=report, location=where, seconds=time.perf_counter() - started)


def _status(error: CrashAggregatesError) -> str:
    if isinstance(error, NoInput):
        return "no input"
    if isinstance(error, StorageError):
        return "stopped"  # the location cannot be used: every later date would fail the same way
    return "failed"


@contextmanager
def _failing(action: str) -> Iterator[None]:
    """An OSError of a local file becomes a DateIOError, ``action: error``; the library's own errors pass."""
    try:
        yield
    except CrashAggregatesError:  # StorageError is an OSError too
        raise
    except OSError as e:
        raise DateIOError(f"{action}: {e}") from e
