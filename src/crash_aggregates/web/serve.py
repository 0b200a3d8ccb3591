"""What ``crash-aggregates serve`` does: check where it may listen, bind, print the URL, serve until stopped."""

from __future__ import annotations

import ipaddress
import os
import socket

from ..errors import CrashAggregatesError, ExitCode

TOKEN_ENV_VAR = "CRASH_AGGREGATES_TOKEN"


class ServeError(CrashAggregatesError):
    """The dashboard cannot start: one line for the user."""

    exit_code = ExitCode.USAGE


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_no_shared_token(config) -> None:
    """The shared access token of the first dashboard is replaced by users: say so rather than ignore it."""
    if os.environ.get(TOKEN_ENV_VAR) or config.dashboard.token:
        raise ServeError(
            f"the shared access token ([dashboard] token, ${TOKEN_ENV_VAR}) is replaced by user accounts: "
            "add one (crash-aggregates users add NAME --role admin --password-stdin), then remove the token"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host} port {port}: {e.strerror or e}") from None
    sock.listen(128)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    data: str,
    config,
    *,
    state_path,
    host: str = "127.0.0.1",
    port: int = 8000,
    trust_user_header: str | None = None,
    echo=print,
) -> None:
    """Serve the dashboard over ``data`` until interrupted, with users from the state file at ``state_path``."""
    import uvicorn

    from .. import users
    from ..sql.errors import QueryError
    from ..state import Shared, StateError
    from .app import create_app

    check_no_shared_token(config)
    try:
        state = Shared(state_path)
    except StateError as e:
        raise ServeError(str(e)) from None
    try:
        with state.use() as db:
            accounts = users.count(db)
        if not is_loopback(host) and accounts == 0:
            raise ServeError(
                f"refusing to listen on {host} without users: add one with crash-aggregates users add NAME "
                f"--role admin --state {state_path}, or keep the default --host 127.0.0.1"
            )
        app = create_app(data, config, state=state, host=host, trust_user_header=trust_user_header)
        sock = bind(host, port)
        try:
            app.state.dashboard.data.open()
        except QueryError as e:
            sock.close()
            raise ServeError(str(e)) from None
        dates = app.state.dashboard.data.dates()
        span = f"{len(dates)} submission dates, {dates[0]} to {dates[-1]}" if dates else "no published partition yet"
        who = f"{accounts} user(s), sign-in required" if accounts else "no users: you are its local user"
        echo(f"Dashboard of {data} ({span}) at {url(sock)} ({who}; state {state_path})")
        echo("Press Ctrl-C to stop.")
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=True, server_header=False)
        )
        try:
            server.run(sockets=[sock])
        finally:
            app.state.dashboard.data.close()
            sock.close()
    finally:
        state.close()
