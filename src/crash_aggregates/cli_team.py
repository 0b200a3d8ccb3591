"""The team's commands: ``users`` (accounts of the console), ``queries`` (saved queries as files), ``state``.

Thin wrappers over ``users.py``, ``queries.py``, ``queryfiles.py`` and
``state.py``; every one takes ``--state FILE`` (else ``[state] path`` of the
config, else the default in the user's data directory). ``cli.py`` adds these
groups to its own.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .cli_common import Failed, UsageError, load_config_or_fail
from .errors import CrashAggregatesError

STATE_HELP = "SQLite state file. Default: [state] path of the config, else the user's data directory."


def state_options(command):
    command = click.option("--config", "config_path", metavar="FILE", help="TOML config whose [state] path is used.")(
        command
    )
    return click.option("--state", "state_path", metavar="FILE", help=STATE_HELP)(command)


def state_file(state_path: str | None, config_path: str | None) -> Path:
    """Where the state file is (``--state``, ``[state] path``, the default), never inside the dataset."""
    from .state import StateError, resolve_path

    config = load_config_or_fail(config_path)
    try:
        return resolve_path(state_path, config.state_path, (config.output, config.input))
    except StateError as e:
        raise UsageError(str(e)) from None


@contextmanager
def state_db(state_path: str | None, config_path: str | None) -> Iterator[sqlite3.Connection]:
    """The state file, open; a library error inside the block becomes ``Error: <message>`` and its exit status."""
    from .state import open_state

    try:
        db = open_state(state_file(state_path, config_path))
    except CrashAggregatesError as e:
        raise Failed.of(e) from None
    try:
        yield db
    except CrashAggregatesError as e:
        raise Failed.of(e) from None
    finally:
        db.close()


def read_password() -> str:
    """The first line of standard input, without its line end."""

    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageError("--password-stdin: standard input is empty")
    return line


# -- users ---------------------------------------------------------------------------------------


@click.group("users")
def users_group():
    """Accounts of the console: add, list, change role, disable, enable, reset, tokens.

    \b
    Roles: viewer (run and view queries), editor (also save them),
           admin (also manage users).
    Once a user exists, every request to `serve` must sign in or send
    Authorization: Bearer TOKEN; without users, `serve` runs on 127.0.0.1 only.
    """


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "editor", "admin"]), required=True, help="What the user may do.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password (at least 8 characters) from the first line of standard input. "
    "Without it the user has no password and uses API tokens only.",
)
@state_options
def users_add(name, role, password_stdin, state_path, config_path):
    """Add a user; prints a new API token for it on the last line (shown once).

    \b
      printf '%s\\n' "$PASSWORD" | crash-aggregates users add alice --role editor --password-stdin
    """
    from . import users

    password = read_password() if password_stdin else None
    with state_db(state_path, config_path) as db:
        user = users.add(db, name, role, password)
        token = users.new_token(db, name)
    how = "a password and an API token" if user.has_password else "an API token only (no password)"
    click.echo(f"added {user.name} ({user.role}) with {how}; the token is shown only now:", err=True)
    click.echo(token)


@users_group.command("list")
@state_options
def users_list(state_path, config_path):
    """List the users: name, role, enabled or disabled, password, number of API tokens, created."""
    from . import users

    with state_db(state_path, config_path) as db:
        rows = [(u, users.token_count(db, u)) for u in users.all_users(db)]
    if not rows:
        click.echo("no users (serve runs as the local user, on 127.0.0.1 only)", err=True)
        return
    width = max(len(u.name) for u, _ in rows)
    for user, tokens in rows:
        status = "disabled" if user.disabled else "enabled"
        password = "password" if user.has_password else "no password"
        click.echo(f"{user.name:<{width}}  {user.role:<6}  {status:<8}  {password:<11}  {tokens} token(s)  "
                   f"since {user.created_at}")  # fmt: skip


def _change(state_path, config_path, change, done: str):

    with state_db(state_path, config_path) as db:
        user = change(db)
    click.echo(done.format(user=user))


@users_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["viewer", "editor", "admin"]))
@state_options
def users_role(name, role, state_path, config_path):
    """Give a user another role (viewer, editor or admin)."""
    from . import users

    _change(state_path, config_path, lambda db: users.set_role(db, name, role), "{user.name} is now a {user.role}")


@users_group.command("disable")
@click.argument("name")
@state_options
def users_disable(name, state_path, config_path):
    """Disable a user: its sessions end and its API tokens are refused (until `users enable`)."""
    from . import users

    _change(state_path, config_path, lambda db: users.disable(db, name), "disabled {user.name}")


@users_group.command("enable")
@click.argument("name")
@state_options
def users_enable(name, state_path, config_path):
    """Enable a disabled user again (its API tokens work again)."""
    from . import users

    _change(state_path, config_path, lambda db: users.enable(db, name), "enabled {user.name}")


@users_group.command("reset")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="The new password, from the first line of standard input. Without it the password is removed.",
)
@state_options
def users_reset(name, password_stdin, state_path, config_path):
    """Reset a user who lost a password or a token: new password, every token revoked, sessions ended.

    Prints the user's new API token on the last line (shown once).
    """
    from . import users

    password = read_password() if password_stdin else None
    with state_db(state_path, config_path) as db:
        users.set_password(db, name, password)
        revoked = users.revoke_tokens(db, name)
        token = users.new_token(db, name)
    how = "a new password" if password else "no password"
    click.echo(f"reset {name}: {how}, {revoked} token(s) revoked, sessions ended; the new token is shown only now:",
               err=True)  # fmt: skip
    click.echo(token)


@users_group.command("token")
@click.argument("name")
@state_options
def users_token(name, state_path, config_path):
    """Print a new API token for a user (shown once; send it as Authorization: Bearer TOKEN)."""
    from . import users

    with state_db(state_path, config_path) as db:
        token = users.new_token(db, name)
    click.echo(token)


# -- the state file ---------------------------------------------------------------------------------


@click.group("state")
def state_group():
    """The state file: users, saved queries and dashboards, the watchdog's memory."""


@state_group.command("backup")
@click.argument("target", metavar="FILE")
@state_options
def state_backup(target, state_path, config_path):
    """Copy the state file to FILE: a consistent snapshot, even while `serve` or `check` write to it.

    FILE is written beside itself first and then renamed, so it is always a
    whole database; an existing FILE is replaced.
    """
    from .state import StateError, backup_file

    source = state_file(state_path, config_path)
    if Path(target).resolve() == source.resolve():
        raise UsageError("the backup must be another file than the state file")
    try:
        size = backup_file(source, target)
    except StateError as e:
        raise (Failed if source.exists() else UsageError)(str(e)) from None
    click.echo(f"backed up {source} to {target} ({size:,} bytes)")


# -- saved queries as files ------------------------------------------------------------------------


@click.group("queries")
def queries_group():
    """Saved queries and dashboards as files, to keep in git and review like code.

    `export DIR` writes DIR/queries/<slug>.sql (SQL with a header of TOML in
    comments: name, description, dialect, parameters, chart, tags) and
    DIR/dashboards/<slug>.toml; `import DIR` loads them back.
    """


@queries_group.command("export")
@click.argument("folder", metavar="DIR")
@state_options
def queries_export(folder, state_path, config_path):
    """Write every saved query and dashboard under DIR (files already equal are left untouched)."""
    from .queryfiles import export

    with state_db(state_path, config_path) as db:
        done = export(db, folder)
    for path in done.written:
        click.echo(f"wrote {path}")
    click.echo(f"{len(done.written)} file(s) written, {done.unchanged} unchanged, in {folder}")


@queries_group.command("import")
@click.argument("folder", metavar="DIR")
@click.option(
    "--author",
    default="import",
    show_default=True,
    metavar="NAME",
    help="Recorded as the author of what the import creates or changes.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be created or updated, and change nothing.")
@state_options
def queries_import(folder, author, dry_run, state_path, config_path):
    """Load the queries and dashboards of DIR: new ones are created, changed ones get a new version.

    DIR is a folder that `queries export` wrote, or a folder of plain .sql
    files (the repository's examples/: `crash-aggregates queries import
    examples` is a starter set). All or nothing: a file that cannot be read
    changes nothing. Importing the same files again changes nothing, and says so.
    """
    from .queryfiles import import_folder

    with state_db(state_path, config_path) as db:
        done = import_folder(db, folder, author, dry_run=dry_run)
    verb = ("would create", "would update") if dry_run else ("created", "updated")
    for (kind, slug), what in [*((c, verb[0]) for c in done.created), *((u, verb[1]) for u in done.updated)]:
        click.echo(f"{what} {kind} {slug}")
    summary = f"{len(done.created)} {verb[0]}, {len(done.updated)} {verb[1]}, {len(done.unchanged)} unchanged"
    if not done.changed:
        summary += ": nothing to change, the state already matches the files"
    click.echo(summary + (" (dry run: nothing was changed)" if dry_run else ""))
