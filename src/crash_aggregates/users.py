"""The console's users: accounts with a role, argon2 password hashes, API tokens, browser sessions.

Roles are ordered: a *viewer* runs and views queries, an *editor* also saves
them, an *admin* also manages users. Passwords are kept as argon2id hashes
(argon2-cffi), API tokens and session ids as SHA-256 hashes: the state file
never holds a secret that would let its reader in. A disabled user's sessions
end and its tokens stop working (until it is enabled again).

>>> import tempfile, os
>>> from crash_aggregates.state import open_state
>>> with tempfile.TemporaryDirectory() as d:
...     db = open_state(os.path.join(d, "state.sqlite3"))
...     alice = add(db, "alice", "editor")
...     token = new_token(db, "alice")
...     found = user_for_token(db, token).name
...     _ = disable(db, "alice")
...     after = user_for_token(db, token)
...     db.close()
>>> alice.can("viewer"), alice.can("admin"), found, after
(True, False, 'alice', None)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import CrashAggregatesError, ExitCode
from .state import now_text, transaction

ROLES = ("viewer", "editor", "admin")
#: What each role may do, for ``--help`` and the docs.
ROLE_HELP = "viewer: run and view queries; editor: also save them; admin: also manage users"
MIN_PASSWORD_LENGTH = 8
#: API tokens start with this, so that secret scanners and people recognise one.
TOKEN_PREFIX = "ca_"
SESSION_LIFETIME = timedelta(days=14)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class UserError(CrashAggregatesError):
    """A user cannot be added or changed as asked (unknown, taken, bad role or password)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool = False
    has_password: bool = False
    created_at: str = ""

    def can(self, role: str) -> bool:
        """Whether this user has ``role`` or a higher one.

        >>> User(1, "v", "viewer").can("editor"), User(2, "a", "admin").can("editor")
        (False, True)
        """
        return ROLES.index(self.role) >= ROLES.index(role)

    def as_json(self) -> dict:
        return {"name": self.name, "role": self.role, "disabled": self.disabled, "created_at": self.created_at}


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current recommended costs


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    """A user name: letters, digits and ``._@-``, at most 64 characters.

    >>> check_name("alice.b@example.org")
    'alice.b@example.org'
    >>> check_name("bad name")
    Traceback (most recent call last):
    ...
    crash_aggregates.users.UserError: invalid user name 'bad name': letters, digits and . _ @ - (at most 64)
    """
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UserError(f"invalid user name {name!r}: letters, digits and . _ @ - (at most 64)")
    return name


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password


def _user(row: sqlite3.Row | None) -> User | None:
    if row is None:
        return None
    return User(
        row["id"],
        row["name"],
        row["role"],
        row["disabled_at"] is not None,
        row["password_hash"] is not None,
        row["created_at"],
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add(db: sqlite3.Connection, name: str, role: str, password: str | None = None) -> User:
    """A new user (without a password it signs in with API tokens only)."""
    check_name(name)
    check_role(role)
    hashed = _hasher().hash(_check_password(password)) if password is not None else None
    now = now_text()
    try:
        with transaction(db):
            db.execute(
                "INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (name, role, hashed, now, now),
            )
    except sqlite3.IntegrityError:
        raise UserError(f"there is already a user named {name!r}") from None
    return require(db, name)


def get(db: sqlite3.Connection, name: str) -> User | None:
    return _user(db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone())


def require(db: sqlite3.Connection, name: str) -> User:
    user = get(db, name)
    if user is None:
        raise UserError(f"no user named {name!r} (crash-aggregates users list shows them)")
    return user


def all_users(db: sqlite3.Connection) -> list[User]:
    return [_user(row) for row in db.execute("SELECT * FROM users ORDER BY name")]


def count(db: sqlite3.Connection) -> int:
    """How many users exist, disabled ones included (any at all: every request must say who it is)."""
    return db.execute("SELECT count(*) FROM users").fetchone()[0]


def set_role(db: sqlite3.Connection, name: str, role: str) -> User:
    user = require(db, name)
    with transaction(db):
        db.execute("UPDATE users SET role = ?, updated_at = ? WHERE id = ?", (check_role(role), now_text(), user.id))
    return require(db, name)


def disable(db: sqlite3.Connection, name: str) -> User:
    """Disable a user: its sessions end now, its tokens are refused while it stays disabled."""
    user = require(db, name)
    with transaction(db):
        db.execute("UPDATE users SET disabled_at = ?, updated_at = ? WHERE id = ?", (now_text(), now_text(), user.id))
        db.execute("DELETE FROM user_sessions WHERE user_id = ?", (user.id,))
    return require(db, name)


def enable(db: sqlite3.Connection, name: str) -> User:
    user = require(db, name)
    with transaction(db):
        db.execute("UPDATE users SET disabled_at = NULL, updated_at = ? WHERE id = ?", (now_text(), user.id))
    return require(db, name)


def set_password(db: sqlite3.Connection, name: str, password: str | None) -> User:
    """A new password (None: none, API tokens only); the user's sessions end."""
    user = require(db, name)
    hashed = _hasher().hash(_check_password(password)) if password is not None else None
    with transaction(db):
        db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", (hashed, now_text(), user.id))
        db.execute("DELETE FROM user_sessions WHERE user_id = ?", (user.id,))
    return require(db, name)


# A hash of a random password, verified when the name is unknown, so that an
# unknown name takes as long to refuse as a wrong password.
_DECOY: list[str] = []


def password_record(db: sqlite3.Connection, name: str) -> tuple[User | None, str | None]:
    """The enabled user of that name and its password hash (None, None: no such user, or no password)."""
    row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone() if NAME.fullmatch(name or "") else None
    user = _user(row)
    if user is None or user.disabled or row["password_hash"] is None:
        return None, None
    return user, row["password_hash"]


def verify_password(hashed: str | None, password: str) -> bool:
    """Whether ``password`` matches the argon2 hash (None: checked against a decoy, for the same time, and False).

    Slow on purpose (tens of milliseconds): call it without holding the state file.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    if hashed is None:
        if not _DECOY:
            _DECOY.append(hasher.hash(secrets.token_urlsafe(16)))
        hashed = _DECOY[0]  # a random password: it never matches
    try:
        return hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def rehash_if_needed(db: sqlite3.Connection, user: User, hashed: str, password: str) -> None:
    """Keep the password hashed with the library's current costs (after a successful sign-in)."""
    hasher = _hasher()
    if hasher.check_needs_rehash(hashed):
        with transaction(db):
            db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (hasher.hash(password), user.id))


def authenticate(db: sqlite3.Connection, name: str, password: str) -> User | None:
    """The user if ``password`` is its password and it is enabled, else None."""
    user, hashed = password_record(db, name)
    if not verify_password(hashed, password) or user is None:
        return None
    rehash_if_needed(db, user, hashed, password)
    return user


# -- API tokens -----------------------------------------------------------------------


def new_token(db: sqlite3.Connection, name: str) -> str:
    """A new API token for the user: returned once, only its hash is kept."""
    user = require(db, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(db):
        db.execute(
            "INSERT INTO user_tokens (user_id, token_hash, created_at) VALUES (?, ?, ?)",
            (user.id, _digest(token), now_text()),
        )
    return token


def revoke_tokens(db: sqlite3.Connection, name: str) -> int:
    """Revoke every API token of the user; returns how many there were."""
    user = require(db, name)
    with transaction(db):
        return db.execute("DELETE FROM user_tokens WHERE user_id = ?", (user.id,)).rowcount


def token_count(db: sqlite3.Connection, user: User) -> int:
    return db.execute("SELECT count(*) FROM user_tokens WHERE user_id = ?", (user.id,)).fetchone()[0]


def user_for_token(db: sqlite3.Connection, token: str) -> User | None:
    """The enabled user the API token belongs to, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = db.execute(
        "SELECT users.* FROM user_tokens JOIN users ON users.id = user_tokens.user_id WHERE token_hash = ?",
        (_digest(token),),
    ).fetchone()
    user = _user(row)
    return None if user is None or user.disabled else user


# -- browser sessions -----------------------------------------------------------------


def new_session(db: sqlite3.Connection, user: User, lifetime: timedelta = SESSION_LIFETIME) -> str:
    """A session for the user: the returned id goes in the cookie, its hash in the state file."""
    session = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with transaction(db):
        db.execute("DELETE FROM user_sessions WHERE expires_at < ?", (now_text(now),))
        db.execute(
            "INSERT INTO user_sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (_digest(session), user.id, now_text(now), now_text(now + lifetime)),
        )
    return session


def user_for_session(db: sqlite3.Connection, session: str) -> User | None:
    """The enabled user of a session that has not expired, else None."""
    row = db.execute(
        "SELECT users.* FROM user_sessions JOIN users ON users.id = user_sessions.user_id "
        "WHERE id_hash = ? AND expires_at > ?",
        (_digest(session), now_text()),
    ).fetchone()
    user = _user(row)
    return None if user is None or user.disabled else user


def end_session(db: sqlite3.Connection, session: str) -> None:
    with transaction(db):
        db.execute("DELETE FROM user_sessions WHERE id_hash = ?", (_digest(session),))


def server_key(db: sqlite3.Connection, name: str) -> bytes:
    """A random key of the server (made on first use, the same after a restart)."""
    with transaction(db):
        row = db.execute("SELECT value FROM server_keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            key = secrets.token_bytes(32)
            db.execute("INSERT INTO server_keys (name, value, created_at) VALUES (?, ?, ?)", (name, key, now_text()))
            return key
    return bytes(row[0])
