"""Dashboard pages: the list, and one dashboard: a grid of saved queries' charts and text blocks.

A dashboard's parameters are fields at its top; their values are in the URL
(``?channel=beta``, a date range as ``days.start``/``days.end``, a list as the
name repeated or its values separated by commas), so the URL of what is on screen can be shared. Each query runs
with ``queries.widget_parameters``: the URL's value, else the dashboard's
default, else its own. The page's script runs them through ``POST /api/sql``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ... import queries
from .common import _render
from .saved import _can_edit, _db, found


def dashboard_list(request: Request) -> Response:
    """``GET /dashboards``: every dashboard, the last changed first."""
    with _db(request) as db:
        boards = queries.list_dashboards(db, search=request.query_params.get("search") or None)
    return _render(request, "dashboards.html", "dashboards", dashboards=boards, can_edit=_can_edit(request))


def url_values(parameters: dict, params) -> dict:
    """The dashboard parameters' values given in the URL (``params``: a query string's multi-dict).

    >>> from starlette.datastructures import QueryParams
    >>> url_values({"c": {"type": "list"}, "d": {"type": "date_range"}, "n": {}},
    ...            QueryParams("c=beta&c=nightly,%20aurora&d.start=2016-03-09&d.end=2016-03-10&n=&x=1"))
    {'c': ['beta', 'nightly', 'aurora'], 'd': {'start': '2016-03-09', 'end': '2016-03-10'}}
    """
    values = {}
    for name, spec in parameters.items():
        kind = spec.get("type", "text")
        if kind == "date_range":
            start, end = params.get(f"{name}.start"), params.get(f"{name}.end")
            if start and end:
                values[name] = {"start": start, "end": end}
        elif kind == "list":
            chosen = [v.strip() for given in params.getlist(name) for v in given.split(",") if v.strip()]
            if chosen:
                values[name] = chosen
        elif params.get(name):
            values[name] = params.get(name)
    return values


def dashboard_page(request: Request) -> Response:
    """``GET /dashboards/{id or slug}``: the grid, its parameters' fields filled from the URL."""
    with _db(request) as db:
        board = found(queries.get_dashboard, db, request.path_params["ref"])
        given = url_values(board.parameters, request.query_params)
        widgets = []
        for widget in board.widgets:
            item = {**widget}
            if widget["type"] == "query":
                query = queries.get_query(db, widget["query"])
                item["query"] = {
                    "id": query.id, "slug": query.slug, "name": query.name, "sql": query.sql, "dialect": query.dialect,
                    "chart": query.chart, "declarations": query.parameters,
                    "parameters": queries.widget_parameters(query, board, given),
                }  # fmt: skip
            widgets.append(item)
        saved = queries.list_queries(db)
    values = {name: given.get(name, spec.get("default")) for name, spec in board.parameters.items()}
    return _render(
        request, "dashboard.html", "dashboards", board=board, widgets=widgets, values=values,
        saved=saved, can_edit=_can_edit(request),
    )  # fmt: skip
