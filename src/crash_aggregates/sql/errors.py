"""The one exception of the query layer: a message of one line and an exit status."""

from __future__ import annotations

from ..errors import CrashAggregatesError, ExitCode


class QueryError(CrashAggregatesError):
    """A query that cannot run; ``str(error)`` is one line meant for a person.

    ``exit_code``: ``ExitCode.USAGE`` (the default) when the query was refused
    or cannot be understood (syntax, unknown names, statements that write or
    reach outside the dataset) and nothing ran; ``ExitCode.FAILED`` when it
    started but could not finish (time limit, unreadable file, a value that
    cannot be converted while running).
    """

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE):
        super().__init__(" ".join(message.split()), exit_code)


def position(sql: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset.

    >>> position("SELECT 1\\n  FROM t", 11)
    (2, 3)
    """
    line = sql.count("\n", 0, offset) + 1
    col = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return line, col


def at(sql: str, offset: int) -> str:
    """'line L, column C' for an offset.

    >>> at("SELECT (", 7)
    'line 1, column 8'
    """
    line, col = position(sql, offset)
    return f"line {line}, column {col}"
