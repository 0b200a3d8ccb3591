"""The pages and the JSON API: read the parameters, ask the dataset, hand the answer to a template.

Every control is a URL parameter, so any view can be bookmarked and shared.
Answers are cached per dataset version (``dataset.ServedData``); what a view
concludes from them (``analysis``) is cached with them.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from datetime import date, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .. import rates
from ..rates import Question
from . import analysis
from .params import BadRequest, Params

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


# -- the JSON API ------------------------------------------------------------------


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


def api_health(request: Request) -> Response:
    """``GET /api/health``: each published date's report counters, and the dates missing between them."""
    rows, missing = _health(request)
    return JSONResponse({"dates": [r for r in rows if r is not None], "missing": missing})


REPORT_KEYS = (
    "main_pings_processed",
    "main_pings_ignored",
    "crash_pings_processed",
    "crash_pings_ignored",
    "ignored_by_reason",
    "aggregates",
    "input_files",
    "input_bytes",
    "engine",
    "duration_seconds",
)


def _health(request: Request) -> tuple[list[dict | None], list[str]]:
    data = _app(request).data
    reports = data.reports()
    dates = sorted(reports)
    rows: list[dict | None] = []
    missing = []
    if dates:
        day = dates[0]
        while day <= dates[-1]:
            if day in reports:
                report = reports[day] or {}
                row = {"submission_date": day.isoformat(), **{k: report.get(k) for k in REPORT_KEYS}}
                row["report"] = reports[day] is not None
                rows.append(row)
            else:
                missing.append(day.isoformat())
                rows.append(None)
            day += timedelta(days=1)
    return rows, missing


# -- pages -------------------------------------------------------------------------


def home(request: Request) -> Response:
    return RedirectResponse("/overview", status_code=302)


def _windows(end: date, length: int, first: date | None):
    """The window of ``length`` days up to ``end`` and the one before, each cut to the published data (None: empty).

    Dates before the first published submission date have only the pings that
    came late (activity dates) or none at all (submission dates): a window
    there would compare biased or missing data.
    """
    now = (end - timedelta(days=length - 1), end)
    before = (now[0] - timedelta(days=length), now[0] - timedelta(days=1))

    def cut(window):
        if first is None or window[1] < first:
            return None
        return (max(window[0], first), window[1])

    return cut(now), cut(before)


def overview(request: Request) -> Response:
    app = _app(request)
    config, settings = app.config, app.config.dashboard
    p = _params(request)
    published = app.data.dates()
    end = p.day("to", published[-1] if published else date.today())
    length = p.integer("days", settings.days, 1, 183)
    by = p.dimensions("by", ["channel"])
    if len(by) > 2:
        raise BadRequest("by: at most two dimensions")
    axis = p.choice("date", rates.AXES, "activity")
    where, absent = p.filters(), p.absent()
    min_hours = p.number("min_hours", settings.min_usage_hours, 0, 1e12)
    min_change = p.number("min_change", settings.min_change, 0, 10)
    crash = rates.crash_stats(config)
    exposure, pings = rates.exposure_stat(config), rates.count_stat(config)
    now, before = _windows(end, length, published[0] if published else None)
    rows = []
    if now is not None:
        q = _question(
            request,
            stats=(*crash, exposure, *([pings] if pings else [])),
            start=(before or now)[0],
            end=end,
            by=tuple(by),
            where=where,
            absent=absent,
            axis=axis,
        )

        def compute(_):
            return analysis.overview(
                app.data.ask(q),
                crash,
                now,
                before,
                exposure=len(crash),
                pings=len(crash) + 1 if pings else None,
                min_hours=min_hours,
                min_change=min_change,
                fdr=settings.false_discovery_rate,
            )

        rows = app.data.cached("overview", _cache_key(request), compute)
    base = [("to", end.isoformat()), ("date", axis), *_filter_params(where, absent)]
    span = (end - published[0]).days + 1 if published else 0
    shorter = None
    if published and (before is None or (before[1] - before[0]).days + 1 < length) and span >= 2:
        shorter = _link("/overview", [*base, ("days", span // 2), *(("by", b) for b in by)])
    return _render(
        request,
        "overview.html",
        "overview",
        rows=rows,
        by=by,
        crash_stats=crash,
        end=end,
        now=now,
        before=before,
        shorter=shorter,
        shorter_days=span // 2,
        axis=axis,
        length=length,
        min_hours=min_hours,
        min_change=min_change,
        fdr=settings.false_discovery_rate,
        where=where,
        absent=absent,
        split_links={
            "channel": _link("/overview", [*base, ("days", length), ("by", "channel")]),
            "channel and OS": _link("/overview", [*base, ("days", length), ("by", "channel"), ("by", "os_name")]),
        },
        explore=lambda group, stat: _link(
            "/explore",
            [
                ("stat", stat),
                ("from", (before or now)[0].isoformat()),
                ("to", end.isoformat()),
                ("date", axis),
                *_filter_params((*where, *((d, v) for d, v in zip(by, group, strict=True) if v is not None)), absent),
            ],
        ),
    )


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


def _allowed(filters, absent=()) -> dict:
    """``rollup``'s form of filters: each dimension's values (any of them), None for absent ones."""
    allowed: dict = {}
    for dimension, value in filters:
        allowed.setdefault(dimension, set()).add(value)
    allowed.update({dimension: {None} for dimension in absent})
    return allowed


def builds(request: Request) -> Response:
    app = _app(request)
    config, settings = app.config, app.config.dashboard
    p = _params(request)
    names = {d.name for d in config.dimensions}
    if not {"channel", "build_id"} <= names:
        raise BadRequest("the Builds view needs the dimensions channel and build_id in the configuration")
    crash = rates.crash_stats(config)
    exposure = rates.exposure_stat(config)
    stat = p.stat("stat", crash[0] if crash else None, crash)
    start, end = p.date_range(app.data.dates(), DEFAULT_RANGE_DAYS)
    axis = p.choice("date", rates.AXES, "activity")
    previous = p.integer("previous", settings.previous_builds, 1, 100)
    min_hours = p.number("min_hours", settings.min_usage_hours, 0, 1e12)
    min_change = p.number("min_change", settings.min_change, 0, 10)
    fdr = settings.false_discovery_rate
    filters, absent = p.filters(), p.absent()
    # One pass over the data answers the channel list, the builds of the channel and the cohort chart.
    cohorts = {"e10s_cohort", "experiment_id"} <= names
    by = ("channel", "build_id", *(("e10s_cohort", "experiment_id") if cohorts else ()))
    everything = _question(
        request, stats=(stat, exposure), start=start, end=end, by=by, where=filters, absent=absent, axis=axis,
        per_day=False,
    )  # fmt: skip
    answers = app.data.ask(everything)
    channels = app.data.cached(
        "channels",
        everything,
        lambda _: [
            g[0] for g in analysis.group_order(analysis.rollup(answers, by, ("channel",)), 1) if g[0] is not None
        ],
    )
    channel = p.one("channel", "nightly" if "nightly" in channels or not channels else channels[0])
    # The question the page answers, as a user would ask it (what "open as SQL" shows).
    q = _question(
        request, stats=(stat, exposure), start=start, end=end, by=("build_id",), where=(("channel", channel), *filters),
        absent=absent, axis=axis, per_day=False,
    )  # fmt: skip

    def compute(_):
        mine = {"channel": {channel}}
        per_build = analysis.rollup(answers, by, ("build_id",), mine)
        rows = analysis.builds(per_build, previous, min_hours, fdr, min_change)
        cohort_chart = None
        if cohorts:
            # The original system's third query: main crashes by build and e10s cohort, outside experiments.
            outside = analysis.rollup(answers, by, ("build_id", "e10s_cohort"), {**mine, "experiment_id": {None}})
            cohort_chart = _cohort_chart(outside, min_hours)
        return rows, cohort_chart

    rows, cohort_chart = app.data.cached("builds", _cache_key(request), compute)
    chart = {
        "kind": "intervals",
        "x": "build id",
        "y": f"{stat} per 1,000 usage hours",
        "labels": [r.build_id for r in rows],
        "series": [
            {
                "name": stat,
                "values": [r.point.rate for r in rows],
                "lower": [r.point.lower for r in rows],
                "upper": [r.point.upper for r in rows],
                "thin": [r.point.thin for r in rows],
                "flag": [r.flag for r in rows],
            }
        ],
    }
    return _render(
        request,
        "builds.html",
        "builds",
        rows=rows,
        chart_data=chart,
        cohort_chart=cohort_chart,
        channel=channel,
        channels=channels if channel in channels else [channel, *channels],
        stat=stat,
        crash_stats=crash,
        start=start,
        end=end,
        axis=axis,
        previous=previous,
        min_hours=min_hours,
        min_change=min_change,
        fdr=fdr,
        flagged=[r for r in rows if r.flag == "regression"],
        sql=rates.presto_sql(q),
        sql_command=_sql_command(request, rates.presto_sql(q)),
    )


def _cohort_chart(answers, min_hours: float) -> dict:
    build_ids = sorted({a.group[0] for a in answers if a.group[0] is not None})
    cohorts = analysis.group_order([rates.Answer((a.group[1],), None, a.sums) for a in answers], 1)
    found = {(a.group[0], a.group[1]): a.sums for a in answers}
    series = []
    for (cohort,) in cohorts:
        pts = [analysis.point(cohort, None, *found.get((b, cohort), (0, 0)), min_hours) for b in build_ids]
        series.append(
            {
                "name": cohort if cohort is not None else "(absent)",
                "values": [pt.rate for pt in pts],
                "lower": [pt.lower for pt in pts],
                "upper": [pt.upper for pt in pts],
                "thin": [pt.thin for pt in pts],
            }
        )
    return {"kind": "lines", "x": "build id", "y": "per 1,000 usage hours", "labels": build_ids, "series": series}


def _default_populations(request: Request, start: date, end: date, axis: str):
    """The experiment with the most usage hours in the range: its treatment (or first) branch against control."""
    config = _app(request).config
    names = {d.name for d in config.dimensions}
    if not {"experiment_id", "experiment_branch"} <= names:
        return None
    exposure = rates.exposure_stat(config)
    q = _question(
        request, stats=(exposure,), start=start, end=end, by=("experiment_id", "experiment_branch"), axis=axis,
        per_day=False,
    )  # fmt: skip
    answers = [a for a in _app(request).data.ask(q) if a.group[0] is not None and a.group[1] is not None]
    if not answers:
        return None
    hours: dict = {}
    for a in answers:
        hours[a.group[0]] = hours.get(a.group[0], 0.0) + (a.sums[0] or 0.0)
    experiment = max(sorted(hours), key=lambda e: hours[e])
    branches = [a.group[1] for a in sorted(answers, key=lambda a: -(a.sums[0] or 0)) if a.group[0] == experiment]
    if len(branches) < 2:
        return None
    first = next((b for b in branches if b != "control"), branches[0])
    second = "control" if "control" in branches and first != "control" else next(b for b in branches if b != first)
    return (
        [("experiment_id", experiment), ("experiment_branch", first)],
        [("experiment_id", experiment), ("experiment_branch", second)],
    )


def compare(request: Request) -> Response:
    app = _app(request)
    config, settings = app.config, app.config.dashboard
    p = _params(request)
    published = app.data.dates()
    axis = p.choice("date", rates.AXES, "activity")
    start, end = p.date_range(published, DEFAULT_RANGE_DAYS)
    a, b = p.filters("a"), p.filters("b")
    if not a and not b:
        found = _default_populations(request, start, end, axis)
        if found is not None:
            params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("a", "b")]
            params += [("a", f"{d}:{v}") for d, v in found[0]] + [("b", f"{d}:{v}") for d, v in found[1]]
            return RedirectResponse(_link("/compare", params), status_code=302)
    if not a or not b:
        raise BadRequest("compare needs two populations: a=DIMENSION:VALUE and b=DIMENSION:VALUE (each repeatable)")
    align = p.choice("align", ("auto", "calendar", "release"), "auto")
    if align == "auto":
        align = "release" if any(d in BUILD_DIMENSIONS for d, _ in (*a, *b)) else "calendar"
    crash = rates.crash_stats(config)
    stat = p.stat("stat", crash[0] if crash else None, crash)
    min_hours = p.number("min_hours", settings.min_usage_hours, 0, 1e12)
    min_change = p.number("min_change", settings.min_change, 0, 10)
    fdr = settings.false_discovery_rate
    exposure, pings = rates.exposure_stat(config), rates.count_stat(config)
    if align == "release" and published:
        # Each population from its first appearance in all the published data.
        first = published[0] - timedelta(days=rates.LATE_DAYS) if axis == "activity" else published[0]
        start, end = first, published[-1]
    sums = (*crash, exposure, *([pings] if pings else []))
    width = len(sums)

    # One pass over the data, grouped by the dimensions the populations name, answers both and their peers;
    # a dimension that every one of them filters on is filtered in the query already.
    dims = tuple(dict.fromkeys(d for d, _ in (*a, *b)))
    populations = [a, b, *(_peers(f, align) for f in (a, b))]
    common = [
        (d, v) for d in dims if all(any(x == d for x, _ in f) for f in populations) for x, v in (*a, *b) if x == d
    ]
    everything = _question(
        request, stats=sums, start=start, end=end, by=dims, where=tuple(dict.fromkeys(common)), axis=axis
    )

    def per_day(filters) -> dict[str, tuple]:
        return {x.day: x.sums for x in analysis.rollup(app.data.ask(everything), dims, (), _allowed(filters))}

    def compute(_):
        result = {}
        windows = {}
        dailies = {}
        for name, filters in (("a", a), ("b", b)):
            shown = _question(request, stats=sums, start=start, end=end, where=filters, axis=axis)
            dailies[name] = (per_day(filters), per_day(_peers(filters, align)), shown)
        if align == "release":
            firsts = {n: analysis.first_day(d[0], len(crash)) for n, d in dailies.items()}
            if None in firsts.values():
                length = 0
            else:
                length = min((end - date.fromisoformat(f)).days + 1 for f in firsts.values())
            for n in dailies:
                windows[n] = analysis.aligned(dailies[n][0], firsts[n], length) if length else []
        else:
            for n in dailies:
                windows[n] = analysis.days(start, end)
        tot = {n: analysis.totals(dailies[n][0], windows[n], width) for n in dailies}
        result["rows"] = analysis.compare(tot["a"], tot["b"], crash, len(crash), min_hours, fdr, min_change)
        result["windows"] = windows
        result["totals"] = tot
        result["adoption"] = {
            n: _share(tot[n][len(crash)], analysis.totals(dailies[n][1], windows[n], width)[len(crash)])
            for n in dailies
        }
        i = crash.index(stat)
        length = max((len(w) for w in windows.values()), default=0)
        labels = [f"day {k}" for k in range(length)] if align == "release" else analysis.days(start, end)
        series, adoption = [], []
        for n, label in (("a", "A"), ("b", "B")):
            daily, base_daily, _ = dailies[n]
            pts = [
                analysis.point(label, d, *(daily.get(d, (0.0,) * width)[k] for k in (i, len(crash))), min_hours)
                for d in windows[n]
            ]
            series.append(
                {
                    "name": label,
                    "values": [pt.rate for pt in pts],
                    "lower": [pt.lower for pt in pts],
                    "upper": [pt.upper for pt in pts],
                    "thin": [pt.thin for pt in pts],
                }
            )
            adoption.append(
                {
                    "name": label,
                    "values": [
                        _share(pt.usage_hours, (base_daily.get(d) or (0.0,) * width)[len(crash)])
                        for pt, d in zip(pts, windows[n], strict=True)
                    ],
                }
            )
        result["chart"] = {"kind": "lines", "x": "day since first appearance" if align == "release" else f"{axis} date",
                           "y": f"{stat} per 1,000 usage hours", "labels": labels, "series": series}  # fmt: skip
        result["adoption_chart"] = {"kind": "lines", "x": result["chart"]["x"], "y": "share of usage hours (%)",
                                    "labels": labels, "series": adoption, "percent": True}  # fmt: skip
        result["sql"] = {n: rates.presto_sql(dailies[n][2]) for n in dailies}
        return result

    model = app.data.cached("compare", (_cache_key(request), align, start, end), compute)
    return _render(
        request,
        "compare.html",
        "compare",
        a=a,
        b=b,
        align=align,
        axis=axis,
        start=start,
        end=end,
        stat=stat,
        crash_stats=crash,
        min_hours=min_hours,
        min_change=min_change,
        fdr=fdr,
        model=model,
        exposure_index=len(crash),
        pings_index=len(crash) + 1 if pings else None,
    )


def _peers(filters, align: str) -> tuple:
    """Whom a population's adoption is a share of: its filters but the build (a release), or everything."""
    return tuple((d, v) for d, v in filters if d not in BUILD_DIMENSIONS) if align == "release" else ()


def _share(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _pings(row: dict | None, kind: str) -> int | None:
    return None if row is None else (row[f"main_pings_{kind}"] or 0) + (row[f"crash_pings_{kind}"] or 0)


def health(request: Request) -> Response:
    rows, missing = _health(request)
    reasons = sorted({r for row in rows if row for r in (row.get("ignored_by_reason") or {})})
    labels = []
    if rows:
        first = date.fromisoformat(next(r for r in rows if r)["submission_date"])
        labels = [(first + timedelta(days=i)).isoformat() for i in range(len(rows))]
    chart = {
        "kind": "bars",
        "x": "submission date",
        "y": "pings",
        "labels": labels,
        "series": [
            {"name": "processed", "values": [_pings(r, "processed") for r in rows]},
            {"name": "ignored", "values": [_pings(r, "ignored") for r in rows]},
        ],
    }
    return _render(
        request,
        "health.html",
        "health",
        rows=list(zip(labels, rows, strict=True)),
        missing=missing,
        reasons=reasons,
        chart_data=chart,
    )
