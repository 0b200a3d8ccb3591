"""The state file: one SQLite database for what the project remembers between runs.

The watchdog keeps its findings and the notifications it sent here; the SQL
console (saved queries, dashboards, users) adds its tables to the same file.
Where it is: ``--state FILE``, else ``[state] path`` in the config, else
``crash-aggregates/state.sqlite3`` in the user's data directory
(``$XDG_DATA_HOME``, by default ``~/.local/share``). It is never inside the
aggregates: a dataset is data that readers and other engines list, and may
be read-only or on S3.

The schema is built by *migrations*: numbered SQL scripts, applied in order
when the file is opened, each in its own transaction together with the row
that records it in ``schema_migrations``. A part of the project that needs
tables appends a :class:`Migration` with the next number to
:data:`MIGRATIONS`; a file written by a newer version (a number this one does
not know) is refused rather than guessed at.

Nothing is lost if a process is killed mid-save: the database is in WAL mode
with ``synchronous = FULL``, so a committed transaction is on disk and an
interrupted one is rolled back when the file is next opened. Two processes
may use the file at once (a ``check`` from cron while the server runs);
writers wait for each other up to :data:`BUSY_TIMEOUT` seconds.

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d:
...     db = open_state(os.path.join(d, "state.sqlite3"))
...     version = schema_version(db)
...     db.close()
>>> version == MIGRATIONS[-1].version
True
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import location
from .errors import CrashAggregatesError

FILE_NAME = "state.sqlite3"
#: Seconds a writer waits for another process's transaction to end.
BUSY_TIMEOUT = 30.0


class StateError(CrashAggregatesError):
    """The state file cannot be used (unwritable, not a database, from a newer version, inside the data)."""


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number, a name for people, and the SQL script."""

    version: int
    name: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "watchdog findings and notifications",
        """
        -- One row per finding the watchdog has seen firing: a check or a rule's
        -- group (the key), its latest numbers, and whether it still fires.
        CREATE TABLE alert_findings (
            key TEXT PRIMARY KEY,           -- e.g. volume:2016-03-12, rule:<name>:build_id=2016...
            title TEXT NOT NULL,            -- one line for people
            state TEXT NOT NULL CHECK (state IN ('firing', 'resolved', 'expired')),
            severity REAL NOT NULL,         -- larger is worse; compared to decide "worse"
            details TEXT NOT NULL,          -- JSON: the numbers of the latest evaluation
            first_fired_at TEXT NOT NULL,   -- ISO 8601 UTC, clock of the check (see watch/dispatch.py)
            last_seen_at TEXT NOT NULL,
            resolved_at TEXT
        );
        -- What each destination was last told about each finding, so that a
        -- destination that failed is told on the next check and the others
        -- are not told twice.
        CREATE TABLE alert_deliveries (
            finding_key TEXT NOT NULL REFERENCES alert_findings(key) ON DELETE CASCADE,
            destination TEXT NOT NULL,
            event TEXT NOT NULL CHECK (event IN ('firing', 'worse', 'reminder', 'resolved')),
            severity REAL NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (finding_key, destination)
        );
        -- Every delivery attempted (sent or failed), for the record.
        CREATE TABLE alert_notifications (
            id INTEGER PRIMARY KEY,
            finding_key TEXT NOT NULL,
            destination TEXT NOT NULL,
            event TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sent', 'failed')),
            attempts INTEGER NOT NULL,
            error TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX alert_notifications_by_finding ON alert_notifications (finding_key, at);
        -- One row per `check` run: when, as of which date, and its outcome.
        CREATE TABLE check_runs (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            as_of TEXT NOT NULL,
            data TEXT NOT NULL,
            firing INTEGER NOT NULL,
            summary TEXT NOT NULL           -- JSON: every check and rule group with its state
        );
        """,
    ),
]


def default_path() -> Path:
    """``$XDG_DATA_HOME/crash-aggregates/state.sqlite3`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "crash-aggregates" / FILE_NAME


def resolve_path(option: str | None, configured: str | None, data_roots: tuple[str | None, ...] = ()) -> Path:
    """The state file to use: ``--state``, else the config's ``[state] path``, else :func:`default_path`.

    ``data_roots`` are the dataset locations in use (input, output): a state
    file inside one of them is refused.

    >>> resolve_path("/tmp/s.sqlite3", "/etc/other.sqlite3")
    PosixPath('/tmp/s.sqlite3')
    >>> resolve_path(None, "/srv/aggregates/state.sqlite3", ("/srv/aggregates",))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    crash_aggregates.state.StateError: the state file /srv/aggregates/state.sqlite3 is inside the dataset ...
    """
    chosen = option or configured
    if chosen and location.is_url(chosen):
        raise StateError(f"the state file must be a local file, not {chosen}")
    path = Path(os.path.expanduser(chosen)) if chosen else default_path()
    resolved = path.resolve()
    for root in data_roots:
        if not root or location.is_url(root):
            continue
        root_path = Path(root).resolve()
        if resolved == root_path or root_path in resolved.parents:
            raise StateError(
                f"the state file {path} is inside the dataset {root}: "
                "keep it outside the aggregates (--state FILE or [state] path)"
            )
    return path


def open_state(path: str | os.PathLike, migrations: list[Migration] | None = None) -> sqlite3.Connection:
    """Open (creating it and its folder if needed) and migrate the state file.

    The connection is in autocommit mode: use :func:`transaction` for a
    change of several statements. Rows come back as ``sqlite3.Row``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise StateError(f"cannot open the state file {path}: {e}") from None
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        migrate(db, MIGRATIONS if migrations is None else migrations)
    except sqlite3.DatabaseError as e:
        db.close()
        raise StateError(f"cannot use the state file {path}: {e}") from None
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection, migrations: list[Migration]) -> list[int]:
    """Apply the migrations the file lacks, each atomically; returns the versions applied."""
    numbers = [m.version for m in migrations]
    if numbers != sorted(set(numbers)) or (numbers and numbers[0] < 1):
        raise ValueError(f"migrations must have increasing numbers from 1, got {numbers}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    applied = []
    for migration in migrations:
        # BEGIN IMMEDIATE takes the write lock first: two processes opening a
        # new file at once apply each step once, the second one sees it done.
        with transaction(db):
            done = db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)).fetchone()
            if done:
                continue
            for statement in _statements(migration.sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_text()),
            )
            applied.append(migration.version)
    newest = schema_version(db)
    if numbers and newest > numbers[-1]:
        raise StateError(
            f"the state file has schema version {newest}, newer than this version of crash-aggregates knows "
            f"({numbers[-1]}): upgrade crash-aggregates"
        )
    return applied


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one at a time (so that each runs inside our transaction).

    >>> list(_statements("CREATE TABLE a (x); INSERT INTO a VALUES (';'); -- a comment; still one"))
    ['CREATE TABLE a (x);', "INSERT INTO a VALUES (';');"]
    """
    start = 0
    for i, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : i + 1]):
            yield script[start : i + 1].strip()
            start = i + 1
    rest = "\n".join(line for line in script[start:].splitlines() if not line.strip().startswith("--"))
    if rest.strip():
        raise ValueError(f"incomplete SQL statement in migration: {rest.strip()[:80]}")


def schema_version(db: sqlite3.Connection) -> int:
    """The highest migration applied (0 for a new file)."""
    row = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return row[0] or 0


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the block raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def backup(db: sqlite3.Connection, target: str | os.PathLike) -> None:
    """Copy the state to ``target``: a consistent snapshot even while other processes write."""
    out = sqlite3.connect(target)
    try:
        db.backup(out)
    finally:
        out.close()


def now_text(moment: datetime | None = None) -> str:
    """A UTC time as stored in the state file (ISO 8601, seconds)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
