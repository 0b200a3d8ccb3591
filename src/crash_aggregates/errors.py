"""The error model: the exit codes, and the base of every exception the library raises.

The library raises a :class:`CrashAggregatesError` (or returns a result
that says what failed); it never prints and never exits. ``cli.py`` turns
an error into one line on stderr and exits with the error's
:attr:`~CrashAggregatesError.exit_code`. Exit codes are defined here only.

>>> from crash_aggregates.sources import NoInput
>>> error = NoInput("no input folder in/submission_date=2016-03-07")
>>> isinstance(error, CrashAggregatesError), int(error.exit_code), str(error)
(True, 3, 'no input folder in/submission_date=2016-03-07')
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit status of every command (``crash-aggregates run`` uses all four)."""

    #: Everything asked for was done: every date published, the answer written.
    OK = 0
    #: Work started and failed: a date failed (its previous partition is left
    #: as it was), a storage location cannot be used, a query failed while running.
    FAILED = 1
    #: Refused before anything ran: bad arguments, configuration or query, an
    #: engine that cannot start.
    USAGE = 2
    #: A date had no input (nothing was written for it) and no date failed.
    NO_INPUT = 3
    #: ``crash-aggregates check``: a check or rule fires (the same status as FAILED:
    #: a scheduler sees "needs a human" either way).
    FIRING = 1


class CrashAggregatesError(Exception):
    """An error of the library: ``str(error)`` is one line for a person, ``exit_code`` its status.

    Subclasses set a class-wide ``exit_code``; one that depends on the
    instance (``sql.QueryError``) passes it to the constructor.

    >>> CrashAggregatesError("cannot read the file").exit_code
    <ExitCode.FAILED: 1>
    >>> CrashAggregatesError("the query is wrong", ExitCode.USAGE).exit_code
    <ExitCode.USAGE: 2>
    """

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, exit_code: ExitCode | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = ExitCode(exit_code)
