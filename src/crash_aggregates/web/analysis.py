"""What the views conclude from the sums: rates with intervals, changes, build regressions, comparisons.

Pure functions over ``rates.Answer`` rows; the statistics are ``crash_aggregates.stats``.
A rate is per 1,000 usage hours. A cell or point below the minimum exposure
is "thin": shown, greyed, and never coloured, flagged or tested.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from .. import stats
from ..rates import OTHER, Answer


def days(start: date, end: date) -> list[str]:
    """Every date from start to end inclusive, as ISO strings.

    >>> days(date(2016, 2, 28), date(2016, 3, 1))
    ['2016-02-28', '2016-02-29', '2016-03-01']
    """
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def finite(value: float) -> float | None:
    """The value, or None for NaN and infinities (JSON has neither).

    >>> finite(1.5), finite(float("inf")), finite(float("nan"))
    (1.5, None, None)
    """
    return value if math.isfinite(value) else None


@dataclass
class Point:
    """One group on one date (or over the range): the sums and the rate with its interval."""

    group: object
    day: str | None
    events: int
    usage_hours: float
    rate: float | None
    lower: float | None
    upper: float | None
    thin: bool

    def as_json(self) -> dict:
        return {
            "group": self.group,
            "date": self.day,
            "events": self.events,
            "usage_hours": self.usage_hours,
            "rate": self.rate,
            "lower": self.lower,
            "upper": self.upper,
        }


def point(group, day, events: float, usage_hours: float, min_hours: float) -> Point:
    """A point with its exact interval; no rate where there were no usage hours."""
    events = int(round(events or 0))
    usage_hours = float(usage_hours or 0.0)
    if usage_hours > 0:
        rate, lower, upper = stats.crash_rate(events, usage_hours)
    else:
        rate = lower = upper = math.nan
    return Point(group, day, events, usage_hours, finite(rate), finite(lower), finite(upper), usage_hours < min_hours)


def group_order(answers: Iterable[Answer], exposure: int) -> list:
    """Groups by usage hours, most first ("other" last); ties by name."""
    hours: dict = {}
    for a in answers:
        hours[a.group] = hours.get(a.group, 0.0) + (a.sums[exposure] or 0.0)
    return sorted(hours, key=lambda g: (g == (OTHER,), -hours[g], str(g)))


def rollup(
    answers: list[Answer], by: tuple[str, ...], keep: tuple[str, ...], where: dict | None = None
) -> list[Answer]:
    """Answers grouped by ``by``, summed again by the dimensions ``keep``, over the groups ``where`` allows.

    ``where`` maps a dimension to the values it may have (None: absent). One
    question grouped by a few dimensions answers several narrower ones this
    way, for the cost of one pass over the data.

    >>> answers = [Answer(("beta", "a"), None, (1.0, 10.0)), Answer(("beta", "b"), None, (2.0, 5.0)),
    ...            Answer(("nightly", "a"), None, (4.0, 1.0))]
    >>> rollup(answers, ("channel", "build"), ("build",), {"channel": {"beta"}})
    [Answer(group=('a',), day=None, sums=(1.0, 10.0)), Answer(group=('b',), day=None, sums=(2.0, 5.0))]
    >>> rollup(answers, ("channel", "build"), ())
    [Answer(group=(), day=None, sums=(7.0, 16.0))]
    """
    where = where or {}
    checks = [(by.index(d), allowed) for d, allowed in where.items()]
    positions = [by.index(d) for d in keep]
    found: dict[tuple, list[float]] = {}
    for a in answers:
        if all(a.group[i] in allowed for i, allowed in checks):
            sums = found.setdefault((tuple(a.group[i] for i in positions), a.day), [0.0] * len(a.sums))
            for k, v in enumerate(a.sums):
                sums[k] += v or 0.0
    return [Answer(group, day, tuple(sums)) for (group, day), sums in found.items()]


def series(answers: list[Answer], start: date, end: date, min_hours: float, events=0, exposure=1) -> list[Point]:
    """One point per group and date from start to end; dates without aggregates have no usage and no rate."""
    found = {(a.group, a.day): a for a in answers}
    points = []
    for group in group_order(answers, exposure) or [()]:
        label = group[0] if len(group) == 1 else (None if not group else list(group))
        for day in days(start, end):
            a = found.get((group, day))
            sums = a.sums if a is not None else (0.0,) * (max(events, exposure) + 1)
            points.append(point(label, day, sums[events], sums[exposure], min_hours))
    return points


def sparkline(
    values: list[float | None], split: int, width: float = 120.0, height: float = 24.0, pad: float = 2.0
) -> tuple[list[str], list[str]]:
    """SVG polyline ``points`` of the values on one scale: the runs before index ``split``, and from it on.

    Each list has one string per run without gaps; the second part starts at
    the last point of the first, so the line is continuous.

    >>> sparkline([1.0, None, 2.0, 3.0], 2, width=30, height=10, pad=0)
    (['0.0,10.0', '20.0,5.0'], ['20.0,5.0 30.0,0.0'])
    """
    known = [v for v in values if v is not None]
    if not known:
        return [], []
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    xy = [
        None if v is None else f"{pad + i * step:.1f},{pad + (height - 2 * pad) * (1 - (v - low) / span):.1f}"
        for i, v in enumerate(values)
    ]

    def runs(points: list[str | None]) -> list[str]:
        found, current = [], []
        for p in [*points, None]:
            if p is None:
                if current:
                    found.append(" ".join(current))
                current = []
            else:
                current.append(p)
        return found

    return runs(xy[:split] + ([xy[split]] if split < len(xy) and split > 0 else [])), runs(xy[split:])


def verdict(lower: float, upper: float, adjusted: float, fdr: float, min_change: float) -> str:
    """ "worse", "better" or "same": a change counts only when significant after false-discovery control
    and its whole interval lies at least ``min_change`` away from no change (noise never earns a colour).

    >>> verdict(1.25, 1.9, 0.01, 0.05, 0.2), verdict(1.05, 1.9, 0.01, 0.05, 0.2), verdict(0.3, 0.75, 0.001, 0.05, 0.2)
    ('worse', 'same', 'better')
    """
    if adjusted <= fdr and lower >= 1 + min_change:
        return "worse"
    if adjusted <= fdr and upper <= 1 - min_change:
        return "better"
    return "same"


# -- overview -------------------------------------------------------------------


@dataclass
class Change:
    """A rate ratio (this window / the one before) with its test; ``status`` decides the colour."""

    ratio: float  # nan: no events in either window; inf: none before
    lower: float
    upper: float
    p_value: float
    adjusted: float = 1.0
    status: str = "insufficient"  # insufficient | same | worse | better


@dataclass
class Cell:
    stat: str
    now: Point
    before: Point
    change: Change
    spark_before: list[str] = field(default_factory=list)
    spark_now: list[str] = field(default_factory=list)


@dataclass
class OverviewRow:
    group: tuple
    usage_hours: float
    usage_hours_before: float
    pings: int | None
    cells: list[Cell]


def overview(
    answers: list[Answer],
    crash_stats: list[str],
    now: tuple[date, date],
    before: tuple[date, date] | None,
    *,
    exposure: int,
    pings: int | None,
    min_hours: float,
    min_change: float,
    fdr: float,
) -> list[OverviewRow]:
    """Per group, each crash stat's rate in the window ``now`` and its change against ``before`` (None: no data).

    ``answers`` have one row per group and date over both windows; their sums
    are the crash stats in order, then the usage hours (index ``exposure``)
    and the pings (index ``pings``, if any).
    """
    by_group: dict[tuple, dict[str, tuple]] = {}
    for a in answers:
        by_group.setdefault(a.group, {})[a.day] = a.sums
    window_now, window_before = days(*now), days(*before) if before else []
    rows = []
    for group in group_order(answers, exposure):
        daily = by_group[group]

        def total(i, window, daily=daily):
            return sum((daily[d][i] or 0.0) for d in window if d in daily)

        hours_now, hours_before = total(exposure, window_now), total(exposure, window_before)
        cells = []
        for i, stat in enumerate(crash_stats):
            cur = point(group, None, total(i, window_now), hours_now, min_hours)
            old = point(group, None, total(i, window_before), hours_before, min_hours)
            change = Change(*stats.rate_ratio_test(cur.events, hours_now, old.events, hours_before))

            def rate(d, i=i, daily=daily):
                s = daily.get(d)
                return None if s is None or not (s[exposure] or 0) > 0 else 1000 * (s[i] or 0) / s[exposure]

            before_runs, now_runs = sparkline([rate(d) for d in window_before + window_now], len(window_before))
            cells.append(Cell(stat, cur, old, change, before_runs, now_runs))
        count = None if pings is None else int(round(total(pings, window_now)))
        rows.append(OverviewRow(group, hours_now, hours_before, count, cells))
    _classify([c for r in rows for c in r.cells], min_hours, min_change, fdr)
    return rows


def _classify(cells: list[Cell], min_hours: float, min_change: float, fdr: float) -> None:
    """Colour only what is significant after false-discovery control, big enough, and not thin."""
    tested = [c for c in cells if not c.now.thin and not c.before.thin]
    adjusted = stats.benjamini_hochberg([c.change.p_value for c in tested])
    for c in cells:
        c.change.status = "insufficient"
    for c, p in zip(tested, adjusted, strict=True):
        c.change.adjusted = p
        c.change.status = verdict(c.change.lower, c.change.upper, p, fdr, min_change)


# -- builds ---------------------------------------------------------------------


@dataclass
class BuildRow:
    build_id: str
    point: Point
    baseline: list[str]
    baseline_point: Point | None
    ratio: float | None = None  # None: not tested (thin, or no baseline); inf: no events in the baseline
    lower: float | None = None
    upper: float | None = None
    p_value: float | None = None
    adjusted: float | None = None
    flag: str | None = None  # regression | improvement


#: Rounds of flags and baselines in :func:`builds` (one more than a regression followed by its fix needs).
ROUNDS = 4


def builds(answers: list[Answer], previous: int, min_hours: float, fdr: float, min_change: float) -> list[BuildRow]:
    """Each build's rate, and its ratio against the ``previous`` builds before it, pooled.

    ``answers``: one row per build id (sums: events, usage hours). Builds are
    ordered by id (a build id is its build time). The baseline of a build is
    the ``previous`` builds before it that are neither thin nor flagged
    regressions (a bad build is no baseline: the builds after it would look
    like improvements). Regressions and improvements are flagged when the
    exact test stays significant after Benjamini-Hochberg over every build
    tested and the interval of the ratio lies ``min_change`` or more away from
    1 (:func:`verdict`); the flags and baselines are worked out again until
    they agree.
    """
    ordered = sorted((a for a in answers if a.group[0] is not None), key=lambda a: a.group[0])
    points = [point(a.group[0], None, a.sums[0], a.sums[1], min_hours) for a in ordered]
    regressions: frozenset[str] = frozenset()
    seen = {regressions}
    for _ in range(ROUNDS):
        rows = _test_builds(points, previous, regressions, min_hours, fdr, min_change)
        regressions = frozenset(r.build_id for r in rows if r.flag == "regression")
        if regressions in seen:  # agreed (or going round in a circle): stop
            break
        seen.add(regressions)
    return rows


def _test_builds(
    points: list[Point], previous: int, excluded: set[str], min_hours: float, fdr: float, min_change: float
):
    rows, solid = [], []
    for p in points:
        base = solid[-previous:]
        row = BuildRow(p.group, p, [b.group for b in base], None)
        if base:
            events = sum(b.events for b in base)
            hours = sum(b.usage_hours for b in base)
            row.baseline_point = point(None, None, events, hours, min_hours)
            if not p.thin:
                row.ratio, row.lower, row.upper, row.p_value = stats.rate_ratio_test(
                    p.events, p.usage_hours, events, hours
                )
        if not p.thin and p.group not in excluded:
            solid.append(p)
        rows.append(row)
    tested = [r for r in rows if r.p_value is not None]
    for r, adjusted in zip(tested, stats.benjamini_hochberg([r.p_value for r in tested]), strict=True):
        r.adjusted = adjusted
        r.flag = {"worse": "regression", "better": "improvement"}.get(
            verdict(r.lower, r.upper, adjusted, fdr, min_change)
        )
    return rows


# -- compare --------------------------------------------------------------------


@dataclass
class Comparison:
    stat: str
    a: Point
    b: Point
    ratio: float  # nan: no events on either side; inf: none in B
    lower: float
    upper: float
    p_value: float
    adjusted: float = 1.0
    status: str = "same"  # worse | better | same (A against B), or insufficient


def compare(
    totals_a: tuple,
    totals_b: tuple,
    crash_stats: list[str],
    exposure: int,
    min_hours: float,
    fdr: float,
    min_change: float,
) -> list[Comparison]:
    """Each crash stat of A against B: both rates, the ratio A/B with its interval, p-values (raw and BH over stats)."""
    found = []
    for i, stat in enumerate(crash_stats):
        a = point("A", None, totals_a[i], totals_a[exposure], min_hours)
        b = point("B", None, totals_b[i], totals_b[exposure], min_hours)
        found.append(Comparison(stat, a, b, *stats.rate_ratio_test(a.events, a.usage_hours, b.events, b.usage_hours)))
    for c, p in zip(found, stats.benjamini_hochberg([c.p_value for c in found]), strict=True):
        c.adjusted = p
        c.status = "insufficient" if c.a.thin or c.b.thin else verdict(c.lower, c.upper, p, fdr, min_change)
    return found


def first_day(daily: dict[str, tuple], exposure: int) -> str | None:
    """The first date with usage hours (the population's first appearance in the data)."""
    used = sorted(d for d, sums in daily.items() if (sums[exposure] or 0) > 0)
    return used[0] if used else None


def aligned(daily: dict[str, tuple], start: str, length: int) -> list[str]:
    """The ``length`` dates from ``start`` on: day 0, 1, ... since first appearance.

    >>> aligned({}, "2016-03-09", 3)
    ['2016-03-09', '2016-03-10', '2016-03-11']
    """
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(length)]


def totals(daily: dict[str, tuple], window: list[str], width: int) -> tuple:
    """The sums over the dates of ``window``."""
    sums = [0.0] * width
    for d in window:
        for i, v in enumerate(daily.get(d, ())):
            sums[i] += v or 0.0
    return tuple(sums)
