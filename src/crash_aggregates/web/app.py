"""The dashboard's ASGI application: routes, templates, security headers, access control, error pages."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..config import Config
from ..sql.errors import QueryError
from ..state import Shared
from . import api_queries, auth, views
from .dataset import ServedData
from .params import BadRequest

HERE = Path(__file__).parent
LOG = logging.getLogger("crash_aggregates.web")

#: No script but the app's own files, no inline script or style, no framing, no plugins.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


@dataclass
class Dashboard:
    """What the views share: the dataset, the configuration, the templates, the state file, who may do what."""

    data: ServedData
    config: Config
    templates: Jinja2Templates
    state: Shared
    auth: auth.Auth


# -- template helpers ----------------------------------------------------------------


def _number(value, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _rate(value) -> str:
    """Rates with three significant figures at least (0.0123, 1.23, 12.3, 123)."""
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞"
    if value == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:,.{min(digits, 4)}f}"


def _p_value(value) -> str:
    if value is None or math.isnan(value):
        return "–"
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3f}"


def _ratio(value) -> str:
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "×∞"
    return f"×{value:.2f}"


def _group(value) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, (tuple, list)):
        return " · ".join(_group(v) for v in value)
    return str(value)


def templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    env.filters.update(number=_number, rate=_rate, p_value=_p_value, ratio=_ratio, group=_group)
    return Jinja2Templates(env=env, context_processors=[auth.template_context])


# -- middleware ----------------------------------------------------------------------


class Guard:
    """Security headers on every answer (refusals included); no traceback ever."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False
        path = scope.get("path", "")

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in dict(SECURITY_HEADERS)]
                headers += SECURITY_HEADERS
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    # Answers change with every new partition; the app's own files only with a new version.
                    static = path.startswith("/static/") and message.get("status") == 200
                    headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            LOG.exception("request failed: %s", path)
            if not started:
                response = _error(Request(scope), 500, "internal error: the server log has the details")
                await response(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    dashboard: Dashboard = request.app.state.dashboard if "app" in request.scope else None
    if dashboard is None:
        return PlainTextResponse(message, status_code=status)
    return dashboard.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message, "page": None, "published": []}, status_code=status
    )


# -- routes ---------------------------------------------------------------------------


async def _bad_request(request: Request, exc: BadRequest) -> Response:
    return _error(request, 400, str(exc))


async def _query_failed(request: Request, exc: QueryError) -> Response:
    return _error(request, 503, f"the dataset cannot be read: {exc}")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _error(request, exc.status_code, exc.detail if isinstance(exc.detail, str) else "error")


def create_app(
    data_path: str,
    config: Config,
    *,
    state: Shared | None = None,
    host: str | None = None,
    trust_user_header: str | None = None,
) -> Starlette:
    """The dashboard over the aggregates at ``data_path`` (a folder or the URL of a store).

    ``state``: the state file (users, saved queries); None: an empty one in
    memory. ``host``: the address ``serve`` listens on (None: not served, as in
    tests: loopback, any Host header).
    """
    from .serve import is_loopback

    state = state or Shared(":memory:")
    gate = auth.Auth(
        state,
        loopback=host is None or is_loopback(host),
        check_host=host is not None,
        trust_user_header=trust_user_header,
    )
    dashboard = Dashboard(ServedData(data_path, config), config, templates(), state, gate)
    routes = [
        Route("/", views.home),
        Route("/overview", views.overview),
        Route("/explore", views.explore),
        Route("/builds", views.builds),
        Route("/compare", views.compare),
        Route("/health", views.health),
        Route("/api/rates", views.api_rates),
        Route("/api/health", views.api_health),
        Route("/console", views.console_page),
        Route("/api/sql", views.api_sql, methods=["POST"]),
        Route("/api/sql/download", views.api_sql_download, methods=["POST"]),
        Route("/api/schema", views.api_schema),
        Route("/queries", views.query_list),
        Route("/queries/{ref}", views.query_page),
        Route("/queries/{ref}/versions", views.query_versions),
        Route("/queries/{ref}/versions/{number:int}", views.query_version),
        Route("/dashboards", views.dashboard_list),
        Route("/dashboards/{ref}", views.dashboard_page),
        *auth.routes(),
        *api_queries.routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={BadRequest: _bad_request, QueryError: _query_failed, HTTPException: _http_error},
        middleware=[],
    )
    app.state.dashboard = dashboard
    app.add_middleware(auth.Gate, auth=gate, refuse=_error)
    app.add_middleware(Guard)  # outermost: its headers go on the gate's refusals too
    return app
