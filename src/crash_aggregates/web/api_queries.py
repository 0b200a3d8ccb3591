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


def _version_number(request: Request) -> int:
    return request.path_params["number"]  # an int: the route's convertor checked it


def _base_version(body: dict) -> int | None:
    base = body.pop("version", None)
    if base is not None and (isinstance(base, bool) or not isinstance(base, int)):
        raise queries.InvalidItem("version must be the number of the version the change was made on")
    return base


def _filters(request: Request) -> dict:
    return {k: request.query_params.get(k) or None for k in ("search", "tag", "author")}


# -- saved queries -------------------------------------------------------------------------------


async def list_queries(request: Request) -> Response:
    found = _filters(request)
    return await _run(request, lambda db: {"queries": [q.as_json() for q in queries.list_queries(db, **found)]})


@editor_required
@_with_body
async def create_query(request: Request, body: dict) -> Response:
    author = _author(request)
    return await _run(request, lambda db: queries.create_query(db, body, author).as_json(), 201)


async def get_query(request: Request) -> Response:
    ref = request.path_params["ref"]
    return await _run(request, lambda db: queries.get_query(db, ref).as_json())


@editor_required
@_with_body
async def update_query(request: Request, body: dict) -> Response:
    ref, author = request.path_params["ref"], _author(request)

    def work(db):
        return queries.update_query(db, ref, body, author, base_version=_base_version(body)).as_json()

    return await _run(request, work)


@editor_required
@_with_body
async def fork_query(request: Request, body: dict) -> Response:
    ref, author, name = request.path_params["ref"], _author(request), body.get("name")
    return await _run(request, lambda db: queries.fork_query(db, ref, author, name).as_json(), 201)


async def query_versions(request: Request) -> Response:
    ref = request.path_params["ref"]
    return await _run(request, lambda db: {"versions": [v.as_json() for v in queries.query_versions(db, ref)]})


async def query_version(request: Request) -> Response:
    ref, number = request.path_params["ref"], _version_number(request)
    return await _run(request, lambda db: queries.query_version(db, ref, number).as_json())


@editor_required
async def restore_query(request: Request) -> Response:
    ref, number, author = request.path_params["ref"], _version_number(request), _author(request)
    return await _run(request, lambda db: queries.restore_query(db, ref, number, author).as_json())


# -- dashboards -------------------------------------------------------------------------------------


async def list_dashboards(request: Request) -> Response:
    found = _filters(request)
    return await _run(request, lambda db: {"dashboards": [d.as_json() for d in queries.list_dashboards(db, **found)]})


@editor_required
@_with_body
async def create_dashboard(request: Request, body: dict) -> Response:
    author = _author(request)
    return await _run(request, lambda db: queries.create_dashboard(db, body, author).as_json(), 201)


async def get_dashboard(request: Request) -> Response:
    ref = request.path_params["ref"]
    return await _run(request, lambda db: queries.get_dashboard(db, ref).as_json())


@editor_required
@_with_body
async def update_dashboard(request: Request, body: dict) -> Response:
    ref, author = request.path_params["ref"], _author(request)

    def work(db):
        return queries.update_dashboard(db, ref, body, author, base_version=_base_version(body)).as_json()

    return await _run(request, work)


async def dashboard_versions(request: Request) -> Response:
    ref = request.path_params["ref"]
    return await _run(request, lambda db: {"versions": [v.as_json() for v in queries.dashboard_versions(db, ref)]})


async def dashboard_version(request: Request) -> Response:
    ref, number = request.path_params["ref"], _version_number(request)
    return await _run(request, lambda db: queries.dashboard_version(db, ref, number).as_json())


@editor_required
async def restore_dashboard(request: Request) -> Response:
    ref, number, author = request.path_params["ref"], _version_number(request), _author(request)
    return await _run(request, lambda db: queries.restore_dashboard(db, ref, number, author).as_json())


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
    number = "{number:int}"
    return [
        Route("/api/queries", list_queries, methods=["GET"]),
        Route("/api/queries", create_query, methods=["POST"]),
        Route("/api/queries/{ref}", get_query, methods=["GET"]),
        Route("/api/queries/{ref}", update_query, methods=["PUT"]),
        Route("/api/queries/{ref}/fork", fork_query, methods=["POST"]),
        Route("/api/queries/{ref}/versions", query_versions, methods=["GET"]),
        Route(f"/api/queries/{{ref}}/versions/{number}", query_version, methods=["GET"]),
        Route(f"/api/queries/{{ref}}/versions/{number}/restore", restore_query, methods=["POST"]),
        Route("/api/dashboards", list_dashboards, methods=["GET"]),
        Route("/api/dashboards", create_dashboard, methods=["POST"]),
        Route("/api/dashboards/{ref}", get_dashboard, methods=["GET"]),
        Route("/api/dashboards/{ref}", update_dashboard, methods=["PUT"]),
        Route("/api/dashboards/{ref}/versions", dashboard_versions, methods=["GET"]),
        Route(f"/api/dashboards/{{ref}}/versions/{number}", dashboard_version, methods=["GET"]),
        Route(f"/api/dashboards/{{ref}}/versions/{number}/restore", restore_dashboard, methods=["POST"]),
        Route("/api/users", list_users, methods=["GET"]),
        Route("/api/users", create_user, methods=["POST"]),
        Route("/api/users/{name}", update_user, methods=["PUT"]),
    ]
