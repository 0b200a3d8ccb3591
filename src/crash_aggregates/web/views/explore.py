"""Explore: one crash stat over time, split and filtered; and ``/api/rates``, the same series as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json

from starlette.requests import Request
from starlette.responses import Response

from ... import rates
from ...rates import Question
from .. import analysis
from ..params import Params
from .common import (
    DEFAULT_RANGE_DAYS,
    _app,
    _filter_params,
    _link,
    _params,
    _question,
    _render,
    _sql_command,
)


def _rates_question(request: Request, p: Params, *, page: bool) -> tuple[Question, float]:
    """The question of ``/api/rates`` (stat required, every group) or of the Explore page (defaults for all)."""
    app = _app(request)
    config = app.config
    crash = rates.crash_stats(config)
    stat = p.stat("stat", crash[0] if crash and page else None)
    by = p.dimension("by")
    top = p.integer("top", config.dashboard.top if page else 0, 0, 100) if by else 0
    start, end = p.date_range(app.data.dates(), DEFAULT_RANGE_DAYS)
    exposure = rates.exposure_stat(config)
    q = _question(
        request,
        stats=(stat, exposure),
        start=start,
        end=end,
        by=(by,) if by else (),
        where=p.filters(),
        absent=p.absent(),
        axis=p.choice("date", rates.AXES, "activity"),
        top=top or None,
        rank_stat=exposure,
    )
    min_hours = p.number("min_hours", config.dashboard.min_usage_hours, 0, 1e12)
    return q, min_hours


def api_rates(request: Request) -> Response:
    """``GET /api/rates``: one row per group and date, rates per 1,000 usage hours with exact intervals."""
    p = _params(request)
    fmt = p.choice("format", ("json", "csv"), "json")
    q, min_hours = _rates_question(request, p, page=False)
    data = _app(request).data
    points = data.cached("series", (q, min_hours), lambda _: analysis.series(data.ask(q), q.start, q.end, min_hours))
    if fmt == "csv":
        return _csv(points, q)
    body = {"rows": [pt.as_json() for pt in points], "sql": rates.presto_sql(q)}
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")


def _csv(points, q: Question) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["group", "date", "events", "usage_hours", "rate", "lower", "upper"])
    for pt in points:
        row = pt.as_json()
        writer.writerow([_csv_text(row["group"]), *(("" if row[k] is None else row[k]) for k in list(row)[1:])])
    name = f"crash-rates-{q.stats[0]}-{q.start}-{q.end}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _csv_text(value) -> str:
    """A group value for a spreadsheet: no formula can start it (a ' is put first)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def explore(request: Request) -> Response:
    app = _app(request)
    p = _params(request)
    q, min_hours = _rates_question(request, p, page=True)
    data = app.data
    points = data.cached("series", (q, min_hours), lambda _: analysis.series(data.ask(q), q.start, q.end, min_hours))
    sql = rates.presto_sql(q)
    by = q.by[0] if q.by else None
    api_params = [
        ("stat", q.stats[0]),
        ("by", by),
        ("from", q.start.isoformat()),
        ("to", q.end.isoformat()),
        ("date", q.axis),
        *_filter_params(q.where, q.absent),
        ("top", q.top),
        ("min_hours", p.one("min_hours")),
    ]
    groups = list(dict.fromkeys(pt.group for pt in points))
    return _render(
        request,
        "explore.html",
        "explore",
        q=q,
        by=by,
        points=points,
        groups=groups,
        min_hours=min_hours,
        top=q.top or app.config.dashboard.top,
        sql=sql,
        sql_command=_sql_command(request, sql),
        api_url=_link("/api/rates", api_params),
        csv_url=_link("/api/rates", [*api_params, ("format", "csv")]),
        crash_stats=rates.crash_stats(app.config),
        stat_names=app.config.stat_columns(),
        dimensions=[d.name for d in app.config.dimensions],
    )
