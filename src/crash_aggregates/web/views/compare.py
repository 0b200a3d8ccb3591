"""Compare: two populations' rates, ratio and test, by calendar or days since release, with adoption."""

from __future__ import annotations

from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ... import rates
from .. import analysis
from ..params import BadRequest
from .common import (
    BUILD_DIMENSIONS,
    DEFAULT_RANGE_DAYS,
    _app,
    _cache_key,
    _link,
    _params,
    _question,
    _render,
)


def _allowed(filters, absent=()) -> dict:
    """``rollup``'s form of filters: each dimension's values (any of them), None for absent ones."""
    allowed: dict = {}
    for dimension, value in filters:
        allowed.setdefault(dimension, set()).add(value)
    allowed.update({dimension: {None} for dimension in absent})
    return allowed


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
