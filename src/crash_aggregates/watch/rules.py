"""The crash-rate rules of ``[[alerts]]``: every group of every rule, OK, FIRING or INSUFFICIENT.

A rule's rate is ``stat`` per 1,000 ``exposure`` hours (usage hours) over
the ``days`` submission dates ending with the newest expected date (as of
the check, minus ``[watchdog] lag_days``; UTC), for the rows its ``where``
keeps, per group of its ``by`` dimensions (one group without ``by``). A group
is evaluated when it has usage in that window; below ``min_usage_hours`` it
is INSUFFICIENT and says so.

- **absolute** (``threshold``): fires when the lower bound of the exact
  (Garwood) ``1 - alpha`` interval of the rate is above the threshold;
- **relative** (``relative`` and ``baseline``): the exact conditional test
  of the rate ratio against the baseline, Benjamini-Hochberg adjusted over
  every group of the rule that was tested; fires when the adjusted p-value
  is at most ``alpha`` and the whole ``1 - alpha`` interval of the ratio is
  at ``relative`` or above. The baseline is

  - ``previous N days``: the same group over the N submission dates before
    the window (INSUFFICIENT below ``min_usage_hours`` there too);
  - ``previous N builds``: the N builds before the group's build (build ids
    sort by build time) with the same values of the other ``by``
    dimensions, over the same window, pooled; a build below
    ``min_usage_hours`` or itself firing is no baseline (a bad build would make
    the next ones look fine), worked out again until the firing set is
    stable, as the dashboard's Builds view does.

The sums come from one question per rule (``rates.Question``, as the
dashboard asks them) on the library's fenced connection
(``crash_aggregates.sql.connect``): every value a bound parameter, every
name checked against the configuration, the flat sidecars read where they
can be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from .. import rates, stats
from .findings import FIRING, INSUFFICIENT, OK, Finding
from .settings import Alert

#: Rounds of firing builds and baselines (``previous N builds``) before giving up on agreement.
ROUNDS = 4


@dataclass
class Sums:
    events: float = 0.0
    exposure: float = 0.0

    def add(self, events, exposure) -> None:
        self.events += events or 0.0
        self.exposure += exposure or 0.0


def window(rule: Alert, as_of: date, lag_days: int) -> tuple[date, date]:
    """The submission dates a rule's rate covers.

    >>> window(Alert("r", "main_crashes", days=7), date(2016, 3, 16), 1)
    (datetime.date(2016, 3, 9), datetime.date(2016, 3, 15))
    """
    end = as_of - timedelta(days=lag_days)
    return end - timedelta(days=rule.days - 1), end


def question(rule: Alert, start: date, end: date, baseline_start: date) -> rates.Question:
    """The rule's sums per group and submission date, from ``baseline_start`` to ``end`` (the dashboard's questions).

    >>> q = question(Alert("r", "main_crashes", where=(("channel", ("nightly", "aurora")),), by=("build_id",)),
    ...              date(2016, 3, 9), date(2016, 3, 15), date(2016, 3, 6))
    >>> q.stats, q.by, q.axis, q.start
    (('main_crashes', 'usage_hours'), ('build_id',), 'submission', datetime.date(2016, 3, 6))
    >>> q.where
    (('channel', 'nightly'), ('channel', 'aurora'))
    """
    where = tuple((dimension, value) for dimension, values in rule.where for value in values)
    return rates.Question(
        stats=(rule.stat, rule.exposure), start=baseline_start, end=end, by=rule.by, where=where, axis="submission"
    )


def sums(rule: Alert, conn, start: date, end: date) -> tuple[dict[tuple, Sums], dict[tuple, Sums]]:
    """``(now, before)``: each group's sums in the window, and in the baseline days before it."""
    before_days = rule.baseline.count if rule.baseline and rule.baseline.kind == "days" else 0
    now: dict[tuple, Sums] = {}
    before: dict[tuple, Sums] = {}
    for answer in rates.ask(question(rule, start, end, start - timedelta(days=before_days)), conn):
        current = date.fromisoformat(answer.day) >= start
        (now if current else before).setdefault(answer.group, Sums()).add(*answer.sums)
    return now, before


def label(rule: Alert, group: tuple) -> str:
    """``build_id=2016...`` (absent dimensions shown as ``(absent)``); empty without ``by``."""
    return ", ".join(f"{d}={'(absent)' if v is None else v}" for d, v in zip(rule.by, group, strict=True))


def key(rule: Alert, group: tuple) -> str:
    return f"rule:{rule.name}" + (f":{label(rule, group)}" if rule.by else "")


def evaluate(rule: Alert, conn, as_of: date, lag_days: int, dashboard: str | None = None) -> list[Finding]:
    """Every group's finding for one rule as of a date."""
    start, end = window(rule, as_of, lag_days)
    now, before = sums(rule, conn, start, end)
    groups = sorted((g for g, s in now.items() if s.exposure > 0), key=lambda g: tuple(str(v) for v in g))
    link = _link(rule, dashboard, start, end)
    if not groups:
        detail = "no rows with usage hours match the rule"
        found = [Finding("rule", f"rule:{rule.name}", INSUFFICIENT, f"{rule.name}: no usage", detail, 0.0, {})]
    elif rule.threshold is not None:
        found = [_absolute(rule, g, now[g]) for g in groups]
    elif rule.baseline.kind == "days":
        found = _relative(rule, groups, now, {g: before.get(g, Sums()) for g in groups}, {})
    else:
        found = _by_builds(rule, groups, now)
    for f in found:
        f.rule = rule.name
        f.link = link
        f.numbers.update(window=[start.isoformat(), end.isoformat()])
        f.detail += f"; submission dates {start}..{end}"
    return found


def _rate_words(s: Sums, level: float) -> tuple[stats.Rate, str]:
    rate = stats.crash_rate(int(round(s.events)), s.exposure, level)
    return rate, (
        f"{rate.estimate:,.2f} per 1,000 h ({level:.0%} interval {rate.lower:,.2f}-{rate.upper:,.2f}), "
        f"{int(round(s.events)):,} events in {s.exposure:,.0f} usage hours"
    )


def _thin(rule: Alert, group: tuple, s: Sums, what: str = "") -> Finding:
    detail = f"{s.exposure:,.0f} usage hours{what}, below min_usage_hours {rule.min_usage_hours:,.0f}: not evaluated"
    title = f"{rule.name}{_bracket(rule, group)}: too little usage to tell"
    numbers = {"group": _group_json(rule, group), "events": s.events, "usage_hours": s.exposure}
    return Finding("rule", key(rule, group), INSUFFICIENT, title, detail, 0.0, numbers)


def _bracket(rule: Alert, group: tuple) -> str:
    return f" [{label(rule, group)}]" if rule.by else ""


def _group_json(rule: Alert, group: tuple) -> dict:
    return dict(zip(rule.by, group, strict=True))


def _absolute(rule: Alert, group: tuple, s: Sums) -> Finding:
    if s.exposure < rule.min_usage_hours:
        return _thin(rule, group, s)
    rate, words = _rate_words(s, 1 - rule.alpha)
    firing = rate.lower > rule.threshold
    title = (
        f"{rule.name}{_bracket(rule, group)}: {rule.stat} {rate.estimate:,.2f} per 1,000 h, "
        f"{'above' if firing else 'not clearly above'} {rule.threshold:g}"
    )
    numbers = {
        "group": _group_json(rule, group),
        "stat": rule.stat,
        "events": s.events,
        "usage_hours": s.exposure,
        "rate": rate.estimate,
        "lower": rate.lower,
        "upper": rate.upper,
        "threshold": rule.threshold,
    }
    return Finding(
        "rule", key(rule, group), FIRING if firing else OK, title, f"{words}; threshold {rule.threshold:g}",
        rate.lower, numbers,
    )  # fmt: skip


@dataclass
class _Tested:
    group: tuple
    now: Sums
    base: Sums
    base_label: str
    ratio: stats.RateRatio | None = None  # None: not tested (thin)


def _relative(rule, groups, now, bases: dict[tuple, Sums], labels: dict[tuple, str]) -> list[Finding]:
    """Test each group against its baseline; BH over the tested ones; findings in the groups' order."""
    level = 1 - rule.alpha
    tested = []
    for g in groups:
        base = bases[g]
        t = _Tested(g, now[g], base, labels.get(g, f"previous {rule.baseline.count} days"))
        if now[g].exposure >= rule.min_usage_hours and base.exposure >= rule.min_usage_hours:
            t.ratio = stats.rate_ratio_test(
                int(round(now[g].events)), now[g].exposure, int(round(base.events)), base.exposure, level
            )
        tested.append(t)
    with_p = [t for t in tested if t.ratio is not None]
    adjusted = dict(zip((t.group for t in with_p), stats.benjamini_hochberg([t.ratio.p_value for t in with_p]),
                        strict=True))  # fmt: skip
    found = []
    for t in tested:
        if t.ratio is None:
            if t.now.exposure < rule.min_usage_hours:
                found.append(_thin(rule, t.group, t.now))
            else:
                found.append(_thin(rule, t.group, t.base, f" in the baseline ({t.base_label})"))
            continue
        found.append(_relative_finding(rule, t, adjusted[t.group], level, len(with_p)))
    return found


def _relative_finding(rule: Alert, t: _Tested, adjusted: float, level: float, tests: int) -> Finding:
    ratio, lower, upper, p = t.ratio
    firing = adjusted <= rule.alpha and lower >= rule.relative
    _, now_words = _rate_words(t.now, level)
    base_rate, base_words = _rate_words(t.base, level)
    shown = "inf" if math.isinf(ratio) else f"{ratio:.2f}"
    title = f"{rule.name}{_bracket(rule, t.group)}: {rule.stat} {shown}x the baseline" + (
        f" (at least {rule.relative:g}x)" if firing else ""
    )
    detail = (
        f"{now_words}; baseline {t.base_label}: {base_words}; ratio {shown} ({level:.0%} interval "
        f"{lower:.2f}-{upper:.2f}), p {p:.2g}, adjusted {adjusted:.2g} over {tests} test(s); "
        f"fires at ratio >= {rule.relative:g} with adjusted p <= {rule.alpha:g}"
    )
    now_rate = stats.crash_rate(int(round(t.now.events)), t.now.exposure, level)
    numbers = {
        "group": _group_json(rule, t.group),
        "stat": rule.stat,
        "events": t.now.events,
        "usage_hours": t.now.exposure,
        "rate": now_rate.estimate,
        "lower": now_rate.lower,
        "upper": now_rate.upper,
        "baseline": t.base_label,
        "baseline_events": t.base.events,
        "baseline_usage_hours": t.base.exposure,
        "baseline_rate": base_rate.estimate,
        "ratio": ratio,
        "ratio_lower": lower,
        "ratio_upper": upper,
        "p_value": p,
        "adjusted_p_value": adjusted,
        "relative": rule.relative,
        "alpha": rule.alpha,
    }
    return Finding("rule", key(rule, t.group), FIRING if firing else OK, title, detail, lower, numbers)


def _by_builds(rule: Alert, groups: list[tuple], now: dict[tuple, Sums]) -> list[Finding]:
    """``previous N builds``: within each combination of the other ``by`` values, builds in id order."""
    at = rule.by.index("build_id")
    families: dict[tuple, list[tuple]] = {}
    for g in groups:
        if g[at] is not None:
            families.setdefault(g[:at] + g[at + 1 :], []).append(g)
    ordered = [g for family in families.values() for g in sorted(family, key=lambda g: g[at])]
    firing: frozenset = frozenset()
    seen = {firing}
    for _ in range(ROUNDS):
        bases, labels = {}, {}
        for family in families.values():
            solid: list[tuple] = []
            for g in sorted(family, key=lambda g: g[at]):
                chosen = solid[-rule.baseline.count :]
                base = Sums()
                for b in chosen:
                    base.add(now[b].events, now[b].exposure)
                bases[g] = base
                labels[g] = (
                    f"previous {rule.baseline.count} builds ({', '.join(b[at] for b in chosen)})"
                    if chosen
                    else "no earlier build"
                )
                if now[g].exposure >= rule.min_usage_hours and g not in firing:
                    solid.append(g)
        found = _relative(rule, ordered, now, bases, labels)
        now_firing = frozenset(g for g, f in zip(ordered, found, strict=True) if f.state == FIRING)
        if now_firing in seen:
            break
        seen.add(now_firing)
        firing = now_firing
    # Groups without a build id cannot be ordered among builds: said, not tested.
    for g in groups:
        if g[at] is None:
            found.append(
                Finding("rule", key(rule, g), INSUFFICIENT, f"{rule.name}{_bracket(rule, g)}: no build id",
                        "rows without a build id have no previous builds", 0.0, {"group": _group_json(rule, g)})
            )  # fmt: skip
    return found


def _link(rule: Alert, dashboard: str | None, start: date, end: date) -> str | None:
    """The dashboard view of the rule: Builds for rules by build, else Explore."""
    if not dashboard:
        return None
    base = dashboard.rstrip("/")
    common = [("stat", rule.stat), ("date", "submission"), ("from", start.isoformat()), ("to", end.isoformat()),
              ("min_hours", f"{rule.min_usage_hours:g}")]  # fmt: skip
    where = dict(rule.where)
    if "build_id" in rule.by and "channel" in where and len(where["channel"]) == 1:
        params = [*common, ("channel", where["channel"][0])]
        if rule.baseline and rule.baseline.kind == "builds":
            params.append(("previous", str(rule.baseline.count)))
        params += [("where", f"{d}:{v}") for d, values in rule.where if d != "channel" for v in values]
        return f"{base}/builds?{urlencode(params)}"
    params = [*common, *([("by", rule.by[0])] if len(rule.by) == 1 else [])]
    params += [("where", f"{d}:{v}") for d, values in rule.where for v in values]
    return f"{base}/explore?{urlencode(params)}"
