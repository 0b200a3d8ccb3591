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
import threading
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
    Migration(
        2,
        "console users, sessions and API tokens",
        """
        -- The people of the console (users.py). A password is an argon2id hash
        -- (NULL: API tokens only); a disabled user's sessions and tokens stop working.
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
            password_hash TEXT,
            disabled_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        -- API tokens for scripts: only a SHA-256 of each token is kept (a token
        -- is 256 random bits, so a fast hash is as good as a slow one).
        CREATE TABLE user_tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        -- Browser sessions (web/auth.py): the SHA-256 of the cookie's value.
        CREATE TABLE user_sessions (
            id_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX user_sessions_by_user ON user_sessions (user_id);
        -- Keys the server signs with (the CSRF tokens' key), made on first use.
        CREATE TABLE server_keys (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        3,
        "console saved queries and dashboards, with every version",
        """
        -- Saved queries (queries.py): the current version of each; slug is the
        -- stable name files and links use, kept when the query is renamed.
        CREATE TABLE saved_queries (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            sql TEXT NOT NULL,
            dialect TEXT NOT NULL CHECK (dialect IN ('presto', 'duckdb')),
            parameters TEXT NOT NULL,       -- JSON object: name -> {type, default, ...}
            chart TEXT NOT NULL,            -- JSON object: the chart builder's settings
            tags TEXT NOT NULL,             -- JSON array of strings
            author TEXT,
            forked_from INTEGER REFERENCES saved_queries(id) ON DELETE SET NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT
        );
        -- Every version of every query, the current one included: what an edit
        -- or a restore wrote, by whom, when.
        CREATE TABLE saved_query_versions (
            query_id INTEGER NOT NULL REFERENCES saved_queries(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            sql TEXT NOT NULL,
            dialect TEXT NOT NULL,
            parameters TEXT NOT NULL,
            chart TEXT NOT NULL,
            tags TEXT NOT NULL,
            author TEXT,
            note TEXT NOT NULL,             -- "created", "edited", "restored version 2", "imported"
            created_at TEXT NOT NULL,
            PRIMARY KEY (query_id, version)
        );
        CREATE TABLE dashboards (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            parameters TEXT NOT NULL,       -- JSON object: the dashboard's parameters
            widgets TEXT NOT NULL,          -- JSON array: charts of saved queries (by id) and text blocks
            tags TEXT NOT NULL,
            author TEXT,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT
        );
        CREATE TABLE dashboard_versions (
            dashboard_id INTEGER NOT NULL REFERENCES dashboards(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            parameters TEXT NOT NULL,
            widgets TEXT NOT NULL,
            tags TEXT NOT NULL,
            author TEXT,
            note TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (dashboard_id, version)
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
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the block raises.

    Inside another transaction it is a savepoint: the outer one commits or
    rolls back everything (an import of many queries is all or nothing).
    """
    if db.in_transaction:
        db.execute("SAVEPOINT nested")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK TO nested")
            db.execute("RELEASE nested")
            raise
        db.execute("RELEASE nested")
        return
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


def backup_file(source: str | os.PathLike, target: str | os.PathLike) -> int:
    """Copy the state file ``source`` to ``target`` while others may write to it; returns its size in bytes.

    The copy is of the last committed state (an open transaction is not in
    it), read without taking the write lock, so a server that saves
    meanwhile is not held up. ``target`` is written beside itself and then
    renamed: it is always a whole database.
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise StateError(f"no state file at {source}")
    partial = target.with_name(target.name + ".partial")
    try:
        db = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
        try:
            partial.unlink(missing_ok=True)
            backup(db, partial)
        finally:
            db.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as e:
        partial.unlink(missing_ok=True)
        raise StateError(f"cannot back up {source} to {target}: {getattr(e, 'strerror', None) or e}") from None
    return target.stat().st_size


def now_text(moment: datetime | None = None) -> str:
    """A UTC time as stored in the state file (ISO 8601, seconds)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")


class Shared:
    """One connection to the state file for the threads of a server, used by one thread at a time.

    ``with shared.use() as db:`` holds it for a read or a transaction
    (statements are quick; a thread never waits long).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._db = open_state(path)
        self._lock = threading.RLock()

    @contextmanager
    def use(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()
