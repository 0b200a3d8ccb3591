"""Builds: each build's rate against the previous builds', regressions flagged; the e10s cohort chart."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from ... import rates
from .. import analysis
from ..params import BadRequest
from .common import (
    DEFAULT_RANGE_DAYS,
    _app,
    _cache_key,
    _params,
    _question,
    _render,
    _sql_command,
)


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
    # Two narrow questions: the channels (by usage hours), then the chosen channel's builds and
    # cohorts. One question grouped by channel as well took twice the CPU (516 ms against
    # 106 + 192 ms on 30 days of 100,000 aggregates), as every other channel's builds were summed too.
    listing = _question(
        request, stats=(exposure,), start=start, end=end, by=("channel",), where=filters, absent=absent, axis=axis,
        per_day=False,
    )  # fmt: skip
    channels = [g[0] for g in analysis.group_order(app.data.ask(listing), 0) if g[0] is not None]
    channel = p.one("channel", "nightly" if "nightly" in channels or not channels else channels[0])
    cohorts = {"e10s_cohort", "experiment_id"} <= names
    by = ("build_id", *(("e10s_cohort", "experiment_id") if cohorts else ()))
    # The question the page answers, as a user would ask it (what "open as SQL" shows).
    q = _question(
        request, stats=(stat, exposure), start=start, end=end, by=("build_id",), where=(("channel", channel), *filters),
        absent=absent, axis=axis, per_day=False,
    )  # fmt: skip
    answers = app.data.ask(replace(q, by=by))

    def compute(_):
        per_build = analysis.rollup(answers, by, ("build_id",))
        rows = analysis.builds(per_build, previous, min_hours, fdr, min_change)
        cohort_chart = None
        if cohorts:
            # The original system's third query: main crashes by build and e10s cohort, outside experiments.
            outside = analysis.rollup(answers, by, ("build_id", "e10s_cohort"), {"experiment_id": {None}})
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
