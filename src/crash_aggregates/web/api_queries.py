"""The JSON API of saved queries, dashboards and users: thin handlers over ``queries.py`` and ``users.py``.

GET  /api/queries[?search=&tag=&author=]       saved queries, the last changed first
POST /api/queries                              {"name", "sql", ...} -> the new query (editors)
GET  /api/queries/{id or slug}                 one query
PUT  /api/queries/{id or slug}                 the fields to change [+ "version": the one edited] (editors)
POST /api/queries/{id or slug}/fork            {"name"?} -> the copy (editors)
GET  /api/queries/{id or slug}/versions        every version
GET  /api/queries/{id or slug}/versions/{n}    one version
POST /api/queries/{id or slug}/versions/{n}/restore   (editors)
... and the same under /api/dashboards (without fork);
GET /api/users, POST /api/users, PUT /api/users/{name} for admins.

Errors are ``{"error": "one line"}`` with 400 (invalid), 403 (role), 404
(unknown), 409 (saved meanwhile, or a name taken).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import queries, users
from .auth import admin_required, current_user, editor_required
from .params import BadRequest

STATUS = {queries.InvalidItem: 400, users.UserError: 400, queries.NotFound: 404, queries.Conflict: 409}
MAX_BODY = 1024 * 1024


async def _run(request: Request, work: Callable, status: int = 200) -> Response:
    """``work(db)`` off the event loop, its answer as JSON; a library error as a one-line error."""
    state = request.app.state.dashboard.state

    def call():
        with state.use() as db:
            return work(db)

    try:
        answer = await run_in_threadpool(call)
    except tuple(STATUS) as e:
        code = next(code for kind, code in STATUS.items() if isinstance(e, kind))
        if isinstance(e, users.UserError) and "already" in str(e):
            code = 409
        return JSONResponse({"error": str(e)}, status_code=code)
    return JSONResponse(answer, status_code=status)


async def _body(request: Request) -> dict:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"the request body is larger than {MAX_BODY:,} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise BadRequest("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _with_body(handler):
    """The handler gets the JSON object of the body (anything else: 400)."""

    async def read(request: Request) -> Response:
        return await handler(request, await _body(request))

    read.__name__ = handler.__name__
    return read


def _author(request: Request) -> str:
    return current_user(request).name


def _base_version(body: dict) -> int | None:
    base = body.pop("version", None)
    if base is not None and (isinstance(base, bool) or not isinstance(base, int)):
        raise queries.InvalidItem("version must be the number of the version the change was made on")
    return base


def _filters(request: Request) -> dict:
    return {k: request.query_params.get(k) or None for k in ("search", "tag", "author")}


# -- saved queries and dashboards: the same calls over each collection ---------------------------


@dataclass(frozen=True)
class Collection:
    """A kind of saved item as the API serves it: its name in JSON and URLs, and its library calls."""

    name: str  # "queries": /api/queries, {"queries": [...]}
    list: Callable
    create: Callable
    get: Callable
    update: Callable
    versions: Callable
    version: Callable
    restore: Callable


QUERIES = Collection(
    "queries", queries.list_queries, queries.create_query, queries.get_query, queries.update_query,
    queries.query_versions, queries.query_version, queries.restore_query,
)  # fmt: skip
DASHBOARDS = Collection(
    "dashboards", queries.list_dashboards, queries.create_dashboard, queries.get_dashboard, queries.update_dashboard,
    queries.dashboard_versions, queries.dashboard_version, queries.restore_dashboard,
)  # fmt: skip


def collection_routes(c: Collection) -> list[Route]:
    """``GET/POST /api/NAME``, ``GET/PUT /api/NAME/{ref}``, its versions, one version, and restore."""

    async def list_items(request: Request) -> Response:
        found = _filters(request)
        return await _run(request, lambda db: {c.name: [item.as_json() for item in c.list(db, **found)]})

    @editor_required
    @_with_body
    async def create(request: Request, body: dict) -> Response:
        author = _author(request)
        return await _run(request, lambda db: c.create(db, body, author).as_json(), 201)

    async def get(request: Request) -> Response:
        ref = request.path_params["ref"]
        return await _run(request, lambda db: c.get(db, ref).as_json())

    @editor_required
    @_with_body
    async def update(request: Request, body: dict) -> Response:
        ref, author = request.path_params["ref"], _author(request)
        return await _run(
            request, lambda db: c.update(db, ref, body, author, base_version=_base_version(body)).as_json()
        )

    async def versions(request: Request) -> Response:
        ref = request.path_params["ref"]
        return await _run(request, lambda db: {"versions": [v.as_json() for v in c.versions(db, ref)]})

    async def version(request: Request) -> Response:
        ref, number = request.path_params["ref"], request.path_params["number"]
        return await _run(request, lambda db: c.version(db, ref, number).as_json())

    @editor_required
    async def restore(request: Request) -> Response:
        ref, number, author = request.path_params["ref"], request.path_params["number"], _author(request)
        return await _run(request, lambda db: c.restore(db, ref, number, author).as_json())

    base = f"/api/{c.name}"
    return [
        Route(base, list_items, methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(base + "/{ref}", get, methods=["GET"]),
        Route(base + "/{ref}", update, methods=["PUT"]),
        Route(base + "/{ref}/versions", versions, methods=["GET"]),
        Route(base + "/{ref}/versions/{number:int}", version, methods=["GET"]),
        Route(base + "/{ref}/versions/{number:int}/restore", restore, methods=["POST"]),
    ]


@editor_required
@_with_body
async def fork_query(request: Request, body: dict) -> Response:
    ref, author, name = request.path_params["ref"], _author(request), body.get("name")
    return await _run(request, lambda db: queries.fork_query(db, ref, author, name).as_json(), 201)


# -- users (admins) ------------------------------------------------------------------------------------


@admin_required
async def list_users(request: Request) -> Response:
    return await _run(request, lambda db: {"users": [u.as_json() for u in users.all_users(db)]})


@admin_required
@_with_body
async def create_user(request: Request, body: dict) -> Response:
    """``{"name", "role", "password"?}`` -> the user and its first API token (shown once)."""
    if set(body) - {"name", "role", "password"}:
        return JSONResponse({"error": "expected name, role and optionally password"}, status_code=400)

    def work(db):
        user = users.add(db, str(body.get("name", "")), str(body.get("role", "")), body.get("password"))
        return {**user.as_json(), "token": users.new_token(db, user.name)}

    return await _run(request, work, 201)


@admin_required
@_with_body
async def update_user(request: Request, body: dict) -> Response:
    """``{"role"?, "disabled"?}``."""
    name = request.path_params["name"]
    if set(body) - {"role", "disabled"} or not isinstance(body.get("disabled", False), bool):
        return JSONResponse({"error": "expected role and/or disabled (true or false)"}, status_code=400)

    def work(db):
        if name == _author(request) and (body.get("disabled") or body.get("role", "admin") != "admin"):
            raise users.UserError("an admin cannot disable or demote itself here (crash-aggregates users does)")
        user = users.require(db, name)
        if "role" in body:
            user = users.set_role(db, name, str(body["role"]))
        if "disabled" in body:
            user = users.disable(db, name) if body["disabled"] else users.enable(db, name)
        return user.as_json()

    return await _run(request, work)


def routes() -> list[Route]:
    return [
        *collection_routes(QUERIES),
        Route("/api/queries/{ref}/fork", fork_query, methods=["POST"]),
        *collection_routes(DASHBOARDS),
        Route("/api/users", list_users, methods=["GET"]),
        Route("/api/users", create_user, methods=["POST"]),
        Route("/api/users/{name}", update_user, methods=["PUT"]),
    ]
