"""users.py against a real state file: roles, argon2 hashes, tokens, sessions, disabling, the CLI."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner
from helpers import run

from crash_aggregates import users
from crash_aggregates.cli import cli
from crash_aggregates.state import open_state


@pytest.fixture
def db(tmp_path):
    connection = open_state(tmp_path / "state.sqlite3")
    yield connection
    connection.close()


@pytest.mark.parametrize(
    "role, viewer, editor, admin",
    [("viewer", True, False, False), ("editor", True, True, False), ("admin", True, True, True)],
)
def test_roles_are_ordered(db, role, viewer, editor, admin):
    user = users.add(db, f"someone-{role}", role)
    assert (user.can("viewer"), user.can("editor"), user.can("admin")) == (viewer, editor, admin)


def test_only_an_argon2_hash_of_the_password_is_kept(db):
    users.add(db, "alice", "editor", "correct horse")
    stored = db.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()[0]
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert users.authenticate(db, "alice", "correct horse").name == "alice"
    assert users.authenticate(db, "ALICE", "correct horse").name == "alice"  # names ignore case
    for name, password in [("alice", "wrong horse"), ("bob", "correct horse"), ("alice", ""), ("", "")]:
        assert users.authenticate(db, name, password) is None


def test_tokens_are_kept_as_hashes_and_die_with_the_user_disabled(db):
    users.add(db, "alice", "viewer")
    first, second = users.new_token(db, "alice"), users.new_token(db, "alice")
    assert first != second and first.startswith("ca_") and len(first) > 40
    dump = "\n".join(db.iterdump())
    assert first not in dump and second not in dump
    assert users.user_for_token(db, first).name == users.user_for_token(db, second).name == "alice"
    users.disable(db, "alice")
    assert users.user_for_token(db, first) is None
    users.enable(db, "alice")
    assert users.user_for_token(db, first).name == "alice"
    assert users.revoke_tokens(db, "alice") == 2
    assert users.user_for_token(db, first) is None


def test_sessions_end_with_a_new_password_or_disabling(db):
    alice = users.add(db, "alice", "editor", "password-1")
    session = users.new_session(db, alice)
    assert session not in "\n".join(db.iterdump())
    assert users.user_for_session(db, session).name == "alice"
    users.set_password(db, "alice", "password-2")
    assert users.user_for_session(db, session) is None
    assert users.authenticate(db, "alice", "password-1") is None
    session = users.new_session(db, alice)
    users.disable(db, "alice")
    assert users.user_for_session(db, session) is None
    assert users.authenticate(db, "alice", "password-2") is None  # disabled: cannot sign in


def test_an_expired_session_is_refused(db):
    from datetime import timedelta

    alice = users.add(db, "alice", "viewer")
    assert users.user_for_session(db, users.new_session(db, alice, lifetime=timedelta(seconds=-1))) is None


@pytest.mark.parametrize(
    "name, role, password, message",
    [
        ("bad name", "viewer", None, "invalid user name"),
        ("alice", "owner", None, "unknown role 'owner'"),
        ("alice", "viewer", "short", "at least 8 characters"),
        ("x" * 65, "viewer", None, "invalid user name"),
    ],
)
def test_bad_users_are_refused(db, name, role, password, message):
    with pytest.raises(users.UserError, match=message):
        users.add(db, name, role, password)
    assert users.count(db) == 0


def test_a_name_is_taken_once_whatever_its_case(db):
    users.add(db, "alice", "viewer")
    with pytest.raises(users.UserError, match="already a user named 'Alice'"):
        users.add(db, "Alice", "admin")


def test_the_server_key_is_made_once(db):
    assert users.server_key(db, "csrf") == users.server_key(db, "csrf") != users.server_key(db, "other")


# -- the commands ----------------------------------------------------------------------------------


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def test_users_commands_end_to_end(tmp_path):
    state = tmp_path / "state.sqlite3"
    added = invoke("users", "add", "alice", "--role", "editor", "--password-stdin", "--state", state,
                   input="a long password\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("ca_") and "shown only now" in added.stderr
    assert "a long password" not in added.output
    db = open_state(state)
    try:
        assert users.user_for_token(db, token).role == "editor"
        assert users.authenticate(db, "alice", "a long password").name == "alice"
    finally:
        db.close()
    assert invoke("users", "add", "bob", "--role", "viewer", "--state", state).exit_code == 0
    listed = invoke("users", "list", "--state", state).stdout.splitlines()
    assert [line.split()[:4] for line in listed] == [
        ["alice", "editor", "enabled", "password"],
        ["bob", "viewer", "enabled", "no"],
    ]
    assert invoke("users", "role", "bob", "admin", "--state", state).stdout == "bob is now a admin\n"
    assert invoke("users", "disable", "alice", "--state", state).exit_code == 0
    assert "disabled" in invoke("users", "list", "--state", state).stdout.splitlines()[0]
    reset = invoke("users", "reset", "alice", "--password-stdin", "--state", state, input="another password\n")
    new_token = reset.stdout.strip().splitlines()[-1]
    assert "1 token(s) revoked" in reset.stderr and new_token != token
    assert invoke("users", "enable", "alice", "--state", state).exit_code == 0
    third = invoke("users", "token", "alice", "--state", state).stdout.strip()
    db = open_state(state)
    try:
        assert users.user_for_token(db, token) is None  # revoked by the reset
        assert users.user_for_token(db, new_token).name == users.user_for_token(db, third).name == "alice"
        assert users.authenticate(db, "alice", "another password") is not None
    finally:
        db.close()


@pytest.mark.parametrize(
    "args, input, message",
    [
        (["users", "add", "alice", "--role", "viewer"], None, "already a user named 'alice'"),
        (["users", "add", "carol", "--role", "viewer", "--password-stdin"], "", "standard input is empty"),
        (["users", "add", "carol", "--role", "viewer", "--password-stdin"], "short\n", "at least 8 characters"),
        (["users", "disable", "nobody"], None, "no user named 'nobody'"),
        (["users", "token", "nobody"], None, "no user named 'nobody'"),
        (["users", "add", "dave", "--role", "root"], None, "'root' is not one of"),
    ],
)
def test_users_commands_refuse_with_one_line(tmp_path, args, input, message):
    state = tmp_path / "state.sqlite3"
    assert invoke("users", "add", "alice", "--role", "viewer", "--state", state).exit_code == 0
    result = invoke(*args, "--state", state, input=input)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_the_state_file_must_be_outside_the_dataset(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\noutput = "{tmp_path / "aggregates"}"\n')
    result = run("users", "list", "--config", config, "--state", tmp_path / "aggregates" / "state.sqlite3")
    assert result.exit_code == 2 and "inside the dataset" in result.output


def test_state_backup_is_a_whole_database_while_another_connection_writes(tmp_path):
    state = tmp_path / "state.sqlite3"
    writer = open_state(state)
    try:
        users.add(writer, "alice", "viewer")
        writer.execute("BEGIN IMMEDIATE")  # a save in progress, not committed
        writer.execute(
            "INSERT INTO users (name, role, created_at, updated_at) VALUES ('uncommitted', 'viewer', '', '')"
        )
        result = run("state", "backup", tmp_path / "backup.sqlite3", "--state", state)
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert result.exit_code == 0, result.output
    copy = sqlite3.connect(tmp_path / "backup.sqlite3")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [r[0] for r in copy.execute("SELECT name FROM users")] == ["alice"]
    copy.close()
    assert not (tmp_path / "backup.sqlite3.partial").exists()
    missing = run("state", "backup", tmp_path / "b2", "--state", tmp_path / "none.sqlite3")
    assert missing.exit_code == 2 and "no state file" in missing.output
