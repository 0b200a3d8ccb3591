"""Overview: each crash stat's rate per channel (and OS) over the last days, against the days before."""

from __future__ import annotations

from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ... import rates
from .. import analysis
from ..params import BadRequest
from .common import (
    _app,
    _cache_key,
    _filter_params,
    _link,
    _params,
    _question,
    _render,
)


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
