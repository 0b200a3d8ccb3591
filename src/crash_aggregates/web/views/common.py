"""What every view shares: the app, its parameters, checked questions, links, rendering."""

from __future__ import annotations

import shlex
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ... import rates
from ...rates import Question
from ..params import BadRequest, Params

BUILD_DIMENSIONS = ("build_id", "build_version")
#: Explore, Builds and Compare show this many days by default.
DEFAULT_RANGE_DAYS = 30


def _app(request: Request):
    return request.app.state.dashboard


def _params(request: Request) -> Params:
    return Params(request.query_params, _app(request).config)


def _question(request: Request, **fields) -> Question:
    """A question checked against the configuration (a bad one is the request's fault)."""
    q = Question(**fields)
    try:
        q.check(_app(request).config)
    except rates.QuestionError as e:
        raise BadRequest(str(e)) from None
    return q


def _cache_key(request: Request) -> tuple:
    return tuple(sorted((k, v) for k, v in request.query_params.multi_items() if v.strip()))


def _render(request: Request, template: str, page: str, **context) -> Response:
    app = _app(request)
    dates = app.data.dates()
    context.update(page=page, dataset=app.data.path, published=dates, request=request)
    return app.templates.TemplateResponse(request, template, context)


def _link(path: str, params: list[tuple[str, object]]) -> str:
    query = urlencode([(k, v) for k, v in params if v is not None and v != ""])
    return f"{path}?{query}" if query else path


def _filter_params(where, absent) -> list[tuple[str, str]]:
    return [("where", f"{d}:{v}") for d, v in where] + [("absent", d) for d in absent]


def _sql_command(request: Request, sql: str) -> str:
    return f"crash-aggregates sql --data {shlex.quote(str(_app(request).data.path))} {shlex.quote(sql)}"
