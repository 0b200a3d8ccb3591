"""The state file: migrations recorded and applied once, refused when newer, nothing lost when killed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from crash_aggregates import state
from crash_aggregates.state import Migration, StateError, open_state, resolve_path


def test_new_file_gets_every_migration_recorded(tmp_path):
    db = open_state(tmp_path / "sub" / "state.sqlite3")
    rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert [tuple(r) for r in rows] == [(m.version, m.name) for m in state.MIGRATIONS]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alert_findings", "alert_deliveries", "alert_notifications", "check_runs"} <= tables
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_later_migration_is_applied_on_the_next_open_only_once(tmp_path):
    path = tmp_path / "state.sqlite3"
    open_state(path).close()
    extra = [*state.MIGRATIONS, Migration(len(state.MIGRATIONS) + 1, "console", "CREATE TABLE queries (id INTEGER);")]
    db = open_state(path, extra)
    assert state.schema_version(db) == len(extra)
    db.close()
    db = open_state(path, extra)  # a second open applies nothing (the CREATE would fail)
    assert [r[0] for r in db.execute("SELECT version FROM schema_migrations")] == [m.version for m in extra]
    db.close()


def test_a_failing_migration_leaves_nothing_half_done(tmp_path):
    path = tmp_path / "state.sqlite3"
    bad = [*state.MIGRATIONS, Migration(99, "broken", "CREATE TABLE t1 (a); INSERT INTO nowhere VALUES (1);")]
    with pytest.raises(StateError, match="no such table: nowhere"):
        open_state(path, bad)
    db = open_state(path)
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 't1'").fetchone()[0] == 0
    assert state.schema_version(db) == state.MIGRATIONS[-1].version
    db.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "state.sqlite3"
    newer = [*state.MIGRATIONS, Migration(50, "future", "CREATE TABLE future (a);")]
    open_state(path, newer).close()
    with pytest.raises(StateError, match="schema version 50, newer"):
        open_state(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(StateError, match=f"cannot use the state file {path}"):
        open_state(path)


def test_two_processes_opening_a_new_file_at_once(tmp_path):
    path = tmp_path / "state.sqlite3"
    errors = []

    def opener():
        try:
            open_state(path).close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(state.MIGRATIONS)


@pytest.mark.parametrize(
    "option, configured, expected",
    [
        ("/a/cli.sqlite3", "/b/config.sqlite3", "/a/cli.sqlite3"),
        (None, "/b/config.sqlite3", "/b/config.sqlite3"),
        (None, None, "XDG/crash-aggregates/state.sqlite3"),
    ],
)
def test_where_the_state_file_is(option, configured, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "XDG"))
    assert str(resolve_path(option, configured)) == expected.replace("XDG", str(tmp_path / "XDG"))


def test_default_without_xdg_is_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_path(None, None) == tmp_path / ".local" / "share" / "crash-aggregates" / "state.sqlite3"


def test_state_inside_the_data_or_on_s3_is_refused(tmp_path):
    data = tmp_path / "aggregates"
    with pytest.raises(StateError, match="inside the dataset"):
        resolve_path(str(data / "submission_date=2016-03-01" / "x.sqlite3"), None, (str(data),))
    with pytest.raises(StateError, match="inside the dataset"):
        resolve_path(str(data), None, (None, str(data)))
    assert resolve_path(str(tmp_path / "aggregates-state.sqlite3"), None, (str(data),))
    with pytest.raises(StateError, match="must be a local file"):
        resolve_path("s3://bucket/state.sqlite3", None)


def test_backup_is_a_consistent_copy(tmp_path):
    db = open_state(tmp_path / "state.sqlite3")
    db.execute("INSERT INTO check_runs (at, as_of, data, firing, summary) VALUES ('t', 'd', 'x', 0, '{}')")
    state.backup(db, tmp_path / "copy.sqlite3")
    copy = open_state(tmp_path / "copy.sqlite3")
    assert copy.execute("SELECT data FROM check_runs").fetchone()[0] == "x"


WRITER = textwrap.dedent(
    """
    import sys
    from crash_aggregates.state import open_state, transaction
    db = open_state(sys.argv[1])
    i = 0
    while True:
        i += 1
        with transaction(db):
            # several statements per transaction: a kill between them must undo all
            db.execute("INSERT INTO check_runs (at, as_of, data, firing, summary) VALUES (?, 'd', 'x', 0, ?)",
                       (str(i), "y" * 5000))
            db.execute("INSERT INTO check_runs (at, as_of, data, firing, summary) VALUES (?, 'd', 'pair', 0, '')",
                       (str(i),))
        print(i, flush=True)
    """
)


def test_nothing_committed_is_lost_when_killed_mid_save(tmp_path):
    path = tmp_path / "state.sqlite3"
    open_state(path).close()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = 0
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = open_state(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    firsts = {int(r[0]) for r in db.execute("SELECT at FROM check_runs WHERE data = 'x'")}
    pairs = {int(r[0]) for r in db.execute("SELECT at FROM check_runs WHERE data = 'pair'")}
    assert set(range(1, acknowledged + 1)) <= firsts  # every acknowledged save is there
    assert firsts == pairs  # and no transaction is half there
