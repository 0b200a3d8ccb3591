"""Saved-query pages: the list and search, one query in the console, its versions, one version.

Reading only: saving, forking and restoring go through the JSON API of
``api_queries`` (the page's script calls it with the CSRF token), so each rule
lives in one place. Everything comes from ``queries.py``.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ... import queries
from ...sql import DIALECTS
from ..auth import current_user
from .common import _app, _render


def _db(request: Request):
    return _app(request).state.use()


def _can_edit(request: Request) -> bool:
    user = current_user(request)
    return user is not None and user.can("editor")


def _limits(request: Request) -> dict:
    settings = _app(request).config.dashboard
    return {"max_rows": settings.console_max_rows, "timeout": settings.console_timeout}


def query_list(request: Request) -> Response:
    """``GET /queries?search=&tag=``: the saved queries, the last changed first."""
    search = request.query_params.get("search") or None
    tag = request.query_params.get("tag") or None
    with _db(request) as db:
        found = queries.list_queries(db, search=search, tag=tag)
        boards = queries.list_dashboards(db)
    return _render(
        request, "queries.html", "queries", queries=found, dashboards=boards, search=search or "", tag=tag or "",
        can_edit=_can_edit(request),
    )  # fmt: skip


def found(get, db, ref: str):
    """``get(db, ref)`` with ``ref`` an id or a slug; an unknown one is a 404 page."""
    try:
        return get(db, int(ref) if ref.isdigit() else ref)
    except queries.NotFound as e:
        raise HTTPException(404, str(e)) from None


def _query(request: Request) -> queries.SavedQuery:
    with _db(request) as db:
        return found(queries.get_query, db, request.path_params["ref"])


def query_page(request: Request) -> Response:
    """``GET /queries/{id or slug}``: the query in the console, ready to run, chart and save."""
    query = _query(request)
    with _db(request) as db:
        boards = queries.list_dashboards(db)
    return _render(
        request, "saved_query.html", "queries", query=query, sql=query.sql, dialect=query.dialect, dialects=DIALECTS,
        limits=_limits(request), dashboards=boards, can_edit=_can_edit(request),
    )  # fmt: skip


def query_versions(request: Request) -> Response:
    """``GET /queries/{ref}/versions``: every version, the newest first."""
    query = _query(request)
    with _db(request) as db:
        versions = queries.query_versions(db, query.id)
    return _render(request, "query_versions.html", "queries", query=query, versions=list(reversed(versions)))


def query_version(request: Request) -> Response:
    """``GET /queries/{ref}/versions/{n}``: one version as it was, with a restore button for editors."""
    query = _query(request)
    with _db(request) as db:
        try:
            version = queries.query_version(db, query.id, request.path_params["number"])
        except queries.NotFound as e:
            raise HTTPException(404, str(e)) from None
    return _render(request, "query_version.html", "queries", query=query, version=version, can_edit=_can_edit(request))
