"""Who is asking, and may they: sessions, API tokens, CSRF, sign-in and its rate limit, roles.

Every request is identified, in this order, by

1. ``Authorization: Bearer TOKEN``: a user's API token (``users.new_token``);
   a wrong or revoked token, or a disabled user's, is refused (401);
2. the trusted reverse proxy's user header, when ``serve --trust-user-header``
   names one (off by default): the user it names must exist and be enabled;
3. the session cookie of a signed-in browser;
4. nobody: then, if the server has no users and listens on loopback only, it
   is the *local user* (an admin; one person on their own machine), else the
   request is refused (401, or a redirect to the sign-in page).

A browser always carries a cookie with a random id (a session's, once signed
in); the CSRF token is an HMAC of that id with a key kept in the state file.
Every request that is not GET, HEAD or OPTIONS must send it back, in the
``X-CSRF-Token`` header or a ``csrf_token`` form field, unless it came with an
API token (a browser never adds one on its own). In the local mode a script
that shows no sign of a browser (no cookie, no ``Origin``, no
``Sec-Fetch-Site``) needs none either; and then the server answers only to
loopback host names, so a web page cannot reach it by DNS rebinding.

For the views: :func:`current_user`, :func:`csrf_token` (also ``csrf_token``
and ``current_user`` in every template), and :func:`requires` /
:data:`editor_required` / :data:`admin_required` around a handler.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import ipaddress
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import users
from ..state import Shared
from ..users import User

COOKIE = "crash_aggregates_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Pages anyone may open: the sign-in page needs its style sheet.
OPEN_PATHS = ("/login", "/static/", "/favicon.ico")
#: The largest form body read to find its CSRF field.
MAX_FORM_BYTES = 10 * 1024 * 1024

#: Whoever uses a server that has no users and listens on loopback only.
LOCAL_USER = User(0, "local", "admin")


@dataclass(frozen=True)
class Identity:
    """Who a request is from (``user`` None: nobody yet), how it said so, and its CSRF token."""

    user: User | None
    via: str  # "token", "proxy", "session", "local" or "anonymous"
    csrf_token: str | None


class LoginLimiter:
    """At most ``per_name`` failed sign-ins per user name and ``per_address`` per client address in ``window`` s.

    >>> limiter = LoginLimiter(per_name=2, per_address=3, window=60)
    >>> limiter.failed("alice", "10.0.0.1", now=0); limiter.failed("alice", "10.0.0.2", now=1)
    >>> limiter.wait("alice", "10.0.0.3", now=2), limiter.wait("bob", "10.0.0.1", now=2)
    (58, 0)
    >>> limiter.wait("alice", "10.0.0.3", now=61)
    0
    """

    def __init__(self, per_name: int = 5, per_address: int = 20, window: float = 15 * 60):
        self.per_name, self.per_address, self.window = per_name, per_address, window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def wait(self, name: str, address: str, now: float | None = None) -> int:
        """Seconds to wait before the next attempt may be tried (0: now)."""
        now = time.monotonic() if now is None else now
        waits = []
        with self._lock:
            for key, limit in ((("name", name.lower()), self.per_name), (("address", address), self.per_address)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(max(1, math.ceil(times[len(times) - limit] + self.window - now)))
        return max(waits, default=0)

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:  # many names tried: forget those whose failures are old
                for key in [k for k, times in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[key]
            self._recent(("name", name.lower()), now).append(now)
            self._recent(("address", address), now).append(now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(("name", name.lower()), None)


LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback_host(host_header: str) -> bool:
    """Whether a ``Host`` header names this machine.

    >>> [is_loopback_host(h) for h in ("localhost:8000", "127.0.0.1", "[::1]:80", "evil.example", "")]
    [True, True, True, False, False]
    """
    host = urlsplit("//" + host_header).hostname or ""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Auth:
    """The server's side of signing in: the state file's users, the CSRF key, the rate limit, the settings."""

    def __init__(
        self, state: Shared, *, loopback: bool = True, check_host: bool = False, trust_user_header: str | None = None
    ):
        self.state = state
        #: Listening on loopback only: with no users, the local user may use it.
        self.loopback = loopback
        #: In the local mode, answer only requests whose Host is a loopback name (``serve`` sets it).
        self.check_host = check_host
        self.trust_user_header = trust_user_header.lower() if trust_user_header else None
        self.limiter = LoginLimiter()
        with state.use() as db:
            self._key = users.server_key(db, "csrf")

    def local_mode(self) -> bool:
        if not self.loopback:
            return False
        with self.state.use() as db:
            return users.count(db) == 0

    def csrf_for(self, browser_id: str) -> str:
        return hmac.new(self._key, b"csrf:" + browser_id.encode(), hashlib.sha256).hexdigest()

    def identify(self, request: Request, browser_id: str | None) -> Identity:
        """Who the request is from; raises HTTPException(401/403) for a wrong token or an unknown proxy user."""
        csrf = self.csrf_for(browser_id) if browser_id else None
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            with self.state.use() as db:
                user = users.user_for_token(db, header[7:].strip())
            if user is None:
                raise HTTPException(401, "this API token is not valid (wrong, revoked, or its user is disabled)")
            return Identity(user, "token", None)
        if self.trust_user_header and (name := request.headers.get(self.trust_user_header)):
            with self.state.use() as db:
                user = users.get(db, name)
            if user is None or user.disabled:
                raise HTTPException(403, f"the proxy's user {name!r} has no enabled account here")
            return Identity(user, "proxy", csrf)
        if browser_id:
            with self.state.use() as db:
                user = users.user_for_session(db, browser_id)
            if user is not None:
                return Identity(user, "session", csrf)
        if self.local_mode():
            return Identity(LOCAL_USER, "local", csrf)
        return Identity(None, "anonymous", csrf)


# -- what views use --------------------------------------------------------------------------


def identity(request: Request) -> Identity:
    return request.scope.get("crash_aggregates.identity") or Identity(None, "anonymous", None)


def current_user(request: Request) -> User | None:
    """The user of the request (``LOCAL_USER`` in the local mode), None on the open pages for nobody."""
    return identity(request).user


def csrf_token(request: Request) -> str:
    """The token a page puts in its forms (``csrf_token`` field) and scripts send as ``X-CSRF-Token``."""
    return identity(request).csrf_token or ""


def template_context(request: Request) -> dict:
    """What every template sees: ``current_user`` and ``csrf_token``."""
    return {"current_user": current_user(request), "csrf_token": csrf_token(request)}


def check_role(request: Request, role: str) -> User:
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "sign in first")
    if not user.can(role):
        who = {"editor": "editors and admins", "admin": "admins"}.get(role, role)
        raise HTTPException(403, f"only {who} may do this; {user.name} is a {user.role}")
    return user


def requires(role: str):
    """A handler only users of ``role`` (or higher) may call: others get 403 (401 if nobody)."""
    users.check_role(role)

    def decorate(handler):
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def checked(request: Request, *args, **kwargs):
                check_role(request, role)
                return await handler(request, *args, **kwargs)

        else:

            @functools.wraps(handler)
            def checked(request: Request, *args, **kwargs):
                check_role(request, role)
                return handler(request, *args, **kwargs)

        return checked

    return decorate


editor_required = requires("editor")
admin_required = requires("admin")


# -- the gate: every request passes it ----------------------------------------------------------


def _origin_is_foreign(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


class Gate:
    """ASGI middleware: identifies each request, refuses the unknown and the CSRF-less, sets the cookie."""

    def __init__(self, app, auth: Auth, refuse):
        #: ``refuse(request, status, message)`` -> the error response (JSON for the API, a page otherwise).
        self.app, self.auth, self.refuse = app, auth, refuse

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        path = scope.get("path", "")
        browser_id = request.cookies.get(COOKIE) or None
        new_cookie = None
        bearer = request.headers.get("authorization", "")[:7].lower() == "bearer "
        if browser_id is None and not bearer:
            browser_id = new_cookie = secrets.token_urlsafe(32)
        try:
            who = await run_in_threadpool(self.auth.identify, request, browser_id)
        except HTTPException as e:
            return await self.refuse(request, e.status_code, e.detail)(scope, receive, send)
        if who.via == "local" and self.auth.check_host and not is_loopback_host(request.headers.get("host", "")):
            message = "this server has no users and answers only to localhost, 127.0.0.1 or [::1]"
            return await self.refuse(request, 403, message)(scope, receive, send)
        if who.user is None and not path.startswith(OPEN_PATHS):
            return await self._unknown(request)(scope, receive, send)
        if request.method not in SAFE_METHODS and who.via != "token":
            if _origin_is_foreign(request):
                message = "refused: the request was sent from another site"
                return await self.refuse(request, 403, message)(scope, receive, send)
            local_script = (
                who.via == "local"
                and new_cookie
                and not (request.headers.get("origin") or request.headers.get("sec-fetch-site"))
            )
            if not local_script:
                given, receive = await _csrf_given(request, receive)
                if not given or not who.csrf_token or not hmac.compare_digest(given, who.csrf_token):
                    message = "refused: the CSRF token is missing or wrong (reload the page and try again)"
                    return await self.refuse(request, 403, message)(scope, receive, send)
        scope["crash_aggregates.identity"] = who

        async def send_with_cookie(message):
            if message["type"] == "http.response.start" and new_cookie and not _sets_cookie(message):
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", browser_cookie(request, new_cookie))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _unknown(self, request: Request) -> Response:
        if request.url.path.startswith("/api/") or request.method != "GET":
            return JSONResponse(
                {"error": "sign in, or send Authorization: Bearer TOKEN (crash-aggregates users token NAME)"},
                status_code=401,
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + _encode({"next": target}), status_code=303)


def _sets_cookie(message) -> bool:
    return any(k.lower() == b"set-cookie" and v.startswith(COOKIE.encode() + b"=") for k, v in message["headers"])


def _encode(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


async def _csrf_given(request: Request, receive):
    """The CSRF token the request sends (header, else form field), and a ``receive`` that replays the body."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header, receive
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None, receive
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_FORM_BYTES:
            return None, receive
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    if kind == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD, [])
        return (values[0] if values else None), replay
    # multipart: let Starlette parse a copy of the body
    copy_sent = False

    async def copy():
        nonlocal copy_sent
        if not copy_sent:
            copy_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    form = await Request(request.scope, copy).form()
    value = form.get(CSRF_FIELD)
    await form.close()
    return (value if isinstance(value, str) else None), replay


def browser_cookie(request: Request, value: str, max_age: int | None = None) -> str:
    """The ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure when the request came over TLS."""
    response = Response()
    response.set_cookie(
        COOKIE, value, max_age=max_age, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
    )
    return response.headers["set-cookie"]


# -- sign in, sign out, who am I ------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (``//evil``, ``https://...``, ``\\\\evil``).

    >>> [_safe_next(t) for t in ("/builds?x=1", "//evil.example", "https://evil.example/", "/\\\\evil", None)]
    ['/builds?x=1', '/', '/', '/', '/']
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _auth(request: Request) -> Auth:
    return request.app.state.dashboard.auth


def _login_page(request: Request, target: str, message: str | None = None, status: int = 200) -> Response:
    dashboard = request.app.state.dashboard
    return dashboard.templates.TemplateResponse(
        request,
        "login.html",
        {"next": target, "page": None, "published": [], "message": message, "local": _auth(request).local_mode()},
        status_code=status,
    )


async def login(request: Request) -> Response:
    auth = _auth(request)
    target = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if current_user(request) is not None and identity(request).via != "local":
            return RedirectResponse(target, status_code=303)
        return _login_page(request, target)
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    address = request.client.host if request.client else "?"
    wait = auth.limiter.wait(name, address)
    if wait:
        minutes = max(1, round(wait / 60))
        response = _login_page(request, target, f"Too many failed sign-ins: try again in {minutes} min.", 429)
        response.headers["retry-after"] = str(wait)
        return response

    def check():
        with auth.state.use() as db:
            user, hashed = users.password_record(db, name)
        if not users.verify_password(hashed, password) or user is None:  # slow: the state file is not held
            return None, None
        with auth.state.use() as db:
            users.rehash_if_needed(db, user, hashed, password)
            return user, users.new_session(db, user)

    user, session = await run_in_threadpool(check)
    if user is None:
        auth.limiter.failed(name, address)
        return _login_page(request, target, "Wrong user name or password.", 401)
    auth.limiter.succeeded(name)
    response = RedirectResponse(target, status_code=303)
    # A new id at sign-in: a cookie planted before cannot become a session.
    response.headers.append("set-cookie", browser_cookie(request, session, int(users.SESSION_LIFETIME.total_seconds())))
    return response


async def logout(request: Request) -> Response:
    auth = _auth(request)
    browser_id = request.cookies.get(COOKIE)
    if browser_id:

        def end():
            with auth.state.use() as db:
                users.end_session(db, browser_id)

        await run_in_threadpool(end)
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("set-cookie", browser_cookie(request, secrets.token_urlsafe(32)))
    return response


def me(request: Request) -> Response:
    """``GET /api/me``: who the request is from, its role, and the CSRF token a script in a browser sends."""
    who = identity(request)
    return JSONResponse({"name": who.user.name, "role": who.user.role, "via": who.via, "csrf_token": who.csrf_token})


def routes() -> list[Route]:
    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/me", me),
    ]
