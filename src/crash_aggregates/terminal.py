"""How ``crash-aggregates run`` shows a run: a line per date, the summary, the progress bar.

The job (``job.py``) prints nothing; it tells a :class:`job.Reporter` what
happens, and this module's :class:`TerminalReporter` writes it: published
dates and the summary on stdout, everything else on stderr.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from datetime import date

import click

from .catchup import NO_INPUT_YET, Plan
from .job import DayResult, Reporter, RunResult
from .sources import CorruptInput


class TerminalReporter(Reporter):
    """Prints a run as it goes; ``progress``: a progress bar on stderr while a date is read."""

    def __init__(self, progress: bool = False):
        self.progress = progress

    def removed(self, name: str) -> None:
        click.echo(f"removed {name}, left behind by an interrupted run", err=True)

    def warning(self, message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    def reading(self, day: date, total_bytes: int):
        return ProgressBar(day, total_bytes) if self.progress else nullcontext()

    def day_done(self, result: DayResult) -> None:
        click.echo(day_line(result), err=result.status != "published")

    def notice(self, message: str) -> None:
        click.echo(message, err=True)

    def planned(self, window: list[date], plans: list[Plan]) -> None:
        """A catch-up's decision: each date to run with its reason, then one line for the window."""
        for p in plans:
            if p.run:
                click.echo(f"{p.day}: to run: {p.reason}", err=True)
        click.echo(plan_line(window, plans), err=True)

    def run_done(self, run: RunResult) -> None:
        """The last lines: the dates a stopped run left, then the summary."""
        if run.skipped:
            click.echo(f"{run.skipped}: this catch-up skips (the other run is publishing)", err=True)
            return
        if not run.dates:
            return  # a catch-up with nothing to run said so in its plan line
        if run.days and run.days[-1].status == "stopped" and run.not_run:
            click.echo(f"stopping: the {run.not_run} later date(s) were not run", err=True)
        click.echo(summary_line(run))


def day_line(result: DayResult) -> str:
    """The line that tells what became of a date."""
    day, error = result.day, result.error
    if result.status == "published":
        report = result.report
        corrupt = len(report["corrupt_files"])
        return (
            f"{day}: main {report['main_pings_processed']:,} processed / {report['main_pings_ignored']:,} ignored, "
            f"crash {report['crash_pings_processed']:,} processed / {report['crash_pings_ignored']:,} ignored, "
            f"{report['aggregates']:,} aggregates, {report['input_bytes'] / 1e6:,.1f} MB in {result.seconds:.2f} s"
            f"{f', {corrupt} corrupt file(s) used in part' if corrupt else ''} -> {result.location}"
        )
    if result.status == "no input":
        return f"{day}: no input ({error}); nothing written"
    if isinstance(error, CorruptInput):
        reason = f"corrupt input {error} (--allow-corrupt-files uses its readable lines)"
    else:
        reason = str(error)
    return f"{day}: failed: {reason}; the previous partition is left in place"


def plan_line(window: list[date], plans: list[Plan]) -> str:
    """What a catch-up found in its window.

    >>> plans = [Plan(date(2016, 3, 1), True, "not published"), Plan(date(2016, 3, 2), False, "no input yet")]
    >>> plan_line([date(2016, 3, 1), date(2016, 3, 2)], plans)
    'catch-up 2016-03-01..2016-03-02: 1 to run, 0 up to date, 1 without input yet'
    """
    todo = sum(p.run for p in plans)
    waiting = sum(p.reason == NO_INPUT_YET for p in plans)
    span = f"{window[0]}..{window[-1]}" if window else "(no dates)"
    return f"catch-up {span}: {todo} to run, {len(plans) - todo - waiting} up to date, {waiting} without input yet"


def summary_line(run: RunResult) -> str:
    not_run = f", {run.not_run} not run" if run.not_run else ""
    return (
        f"done: {len(run.dates)} date(s): {run.count('published')} published, {run.count('no input')} without "
        f"input, {run.failed} failed{not_run}, in {run.seconds:.1f} s"
    )


class ProgressBar:
    """A rich progress bar on stderr while a date is read: bytes of total, MB/s, pings/s."""

    def __init__(self, day: date, total_bytes: int):
        self.day, self.total = day, total_bytes

    def __enter__(self):
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
        self.bar.stop()
        return False
