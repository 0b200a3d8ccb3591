"""What the command modules share: the edge's errors and the parsing of dates, locations and configs.

``cli.py``, ``cli_team.py`` and ``cli_watch.py`` turn the library's
``errors.CrashAggregatesError``s into these (one line on stderr, the exit
status of ``errors.ExitCode``), and read their arguments with these helpers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import click

from .errors import CrashAggregatesError, ExitCode


def exit_codes_help(meanings: dict[ExitCode, str]) -> str:
    """The epilog of a command's ``--help`` that says what its exit statuses mean."""
    return "\b\nExit codes:\n" + "\n".join(f"  {code:d}  {meaning}" for code, meaning in meanings.items())


class UsageError(click.UsageError):
    """A bad argument: the usage, then one line on stderr; exit status 2."""

    exit_code = ExitCode.USAGE


class Failed(click.ClickException):
    """A library error at the edge: ``Error: <message>`` on stderr, the error's exit status."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILED):
        super().__init__(message)
        self.exit_code = int(exit_code)

    @classmethod
    def of(cls, error: CrashAggregatesError, suffix: str = "") -> Failed:
        return cls(f"{error}{suffix}", error.exit_code)


class JobFailed(Failed):
    """The same in the style of the job's other lines (``warning: ...``): ``error: <message>``."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


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
    return datetime.now(UTC).date() - timedelta(days=1)


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


def check_location(what: str, location: str) -> str:
    """A local path or the URL of a store (with its extra installed), else a usage error."""
    from .stores import StoreUnavailable, check

    try:
        return check(location)
    except (ValueError, StoreUnavailable) as e:
        raise UsageError(f"{what}: {e}") from None


def is_folder(location: str) -> bool:
    """Whether a checked location can be read from: a local folder that exists, or any URL prefix."""
    from .stores import store_for

    return store_for(location).root_exists()


def load_config_or_fail(path: str | None):
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        raise UsageError(str(e)) from None


def data_option(command):
    """The ``--data PATH`` option of the commands that read the aggregates."""
    return click.option(
        "--data",
        "data_path",
        metavar="PATH",
        help="Root of the aggregates: a folder or s3://bucket/prefix. Default: [data] output of the config.",
    )(command)
