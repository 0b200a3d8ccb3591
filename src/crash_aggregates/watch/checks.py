"""The data checks: missing dates, volume and quality, from the published partitions' reports.

The window is the ``window_days`` submission dates ending with the newest
date expected published (today minus ``lag_days``, UTC). In it:

- **missing**: every date without a published partition fires (from the
  dataset's first published date on: dates before a dataset began are not
  missing). Late data shows as its missing dates;
- **volume**: each published date's pings processed (main and crash) against
  the median of the ``baseline_days`` dates before it; fires below
  ``volume_low`` or above ``volume_high`` times that median;
- **quality**: each published date's share of pings ignored for each reason
  against that reason's median share over the same days before; fires above
  ``quality_ratio`` times the median when the share is also at least
  ``quality_min_share``.

A volume or quality check with fewer than ``min_baseline_days`` published
dates before it is INSUFFICIENT.
"""

from __future__ import annotations

import statistics
from datetime import date, timedelta

from .. import storage
from ..pings import REASONS
from .findings import FIRING, INSUFFICIENT, OK, Finding, percent
from .settings import Watchdog


def window(as_of: date, watchdog: Watchdog) -> list[date]:
    """The dates checked: ``window_days`` of them, ending ``lag_days`` before ``as_of``.

    >>> [d.day for d in window(date(2016, 3, 16), Watchdog(window_days=3))]
    [13, 14, 15]
    """
    last = as_of - timedelta(days=watchdog.lag_days)
    return [last - timedelta(days=i) for i in reversed(range(watchdog.window_days))]


def read_reports(root: str, dates: list[date]) -> tuple[dict[date, dict], date | None, date | None]:
    """The reports of the published dates among ``dates``, and the dataset's first and last published dates."""
    published = sorted(date.fromisoformat(d) for d in storage.published(root))
    found = set(published)
    reports = {d: storage.read_report(root, d) or {} for d in dates if d in found}
    return reports, (published[0] if published else None), (published[-1] if published else None)


def _processed(report: dict) -> int:
    return int(report.get("main_pings_processed") or 0) + int(report.get("crash_pings_processed") or 0)


def _total(report: dict) -> int:
    ignored = int(report.get("main_pings_ignored") or 0) + int(report.get("crash_pings_ignored") or 0)
    return _processed(report) + ignored


def evaluate(root: str, as_of: date, watchdog: Watchdog, health_link: str | None = None) -> list[Finding]:
    """Every data check's findings as of a date (FIRING, OK and INSUFFICIENT alike)."""
    dates = window(as_of, watchdog)
    before = [dates[0] - timedelta(days=i) for i in range(watchdog.baseline_days, 0, -1)]
    reports, first, last = read_reports(root, before + dates)
    findings = missing(dates, reports, first, last)
    for day in dates:
        if day in reports:
            baseline = [reports[d] for d in _days_before(day, watchdog.baseline_days) if d in reports]
            findings.append(volume(day, reports[day], baseline, watchdog))
            findings.extend(quality(day, reports[day], baseline, watchdog))
    for f in findings:
        f.link = health_link
    return findings


def _days_before(day: date, n: int) -> list[date]:
    return [day - timedelta(days=i) for i in range(n, 0, -1)]


def missing(dates: list[date], reports: dict, first: date | None, last: date | None) -> list[Finding]:
    if first is None:
        return [
            Finding("missing", "missing:all", FIRING, "no published partition at all",
                    f"nothing published, expected up to {dates[-1]}", 1.0, {"expected": dates[-1].isoformat()})
        ]  # fmt: skip
    # Once something is published, "nothing at all" is resolved (and said so).
    found = [Finding("missing", "missing:all", OK, f"partitions are published (from {first})", "", 0.0, {})]
    for day in dates:
        if day < first:
            continue
        key = f"missing:{day}"
        numbers = {"date": day.isoformat(), "latest_published": last.isoformat(), "expected": dates[-1].isoformat()}
        if day in reports:
            found.append(Finding("missing", key, OK, f"{day} is published", "", 0.0, numbers))
        else:
            late = " (the data is late)" if day > last else ""
            detail = f"latest published: {last}; expected up to {dates[-1]}{late}"
            found.append(Finding("missing", key, FIRING, f"submission date {day} is not published", detail, 1.0,
                                 numbers))  # fmt: skip
    return found


def volume(day: date, report: dict, baseline: list[dict], watchdog: Watchdog) -> Finding:
    key = f"volume:{day}"
    count = _processed(report)
    numbers = {"date": day.isoformat(), "processed": count, "baseline_days": len(baseline)}
    if len(baseline) < watchdog.min_baseline_days or not statistics.median(map(_processed, baseline)):
        detail = (
            f"{count:,} pings processed; {len(baseline)} published date(s) in the {watchdog.baseline_days} before it "
            f"(at least {watchdog.min_baseline_days} with pings needed)"
        )
        return Finding("volume", key, INSUFFICIENT, f"{day}: volume not checked", detail, 0.0, numbers)
    median = statistics.median(map(_processed, baseline))
    ratio = count / median
    numbers.update(median=median, ratio=ratio, low=watchdog.volume_low, high=watchdog.volume_high)
    detail = (
        f"{count:,} pings processed (main {int(report.get('main_pings_processed') or 0):,}, "
        f"crash {int(report.get('crash_pings_processed') or 0):,}); median of the {len(baseline)} dates before: "
        f"{median:,.0f}; bounds {percent(watchdog.volume_low)}-{percent(watchdog.volume_high)}"
    )
    if ratio < watchdog.volume_low or ratio > watchdog.volume_high:
        severity = 1 / ratio if ratio > 0 else 1e9
        severity = max(severity, ratio)
        word = "fewer" if ratio < 1 else "more"
        title = f"{day}: {percent(ratio)} of the usual pings processed ({word} than expected)"
        return Finding("volume", key, FIRING, title, detail, severity, numbers)
    return Finding("volume", key, OK, f"{day}: {percent(ratio)} of the usual pings processed", detail, 0.0, numbers)


def quality(day: date, report: dict, baseline: list[dict], watchdog: Watchdog) -> list[Finding]:
    reasons = dict.fromkeys(REASONS)
    for r in [report, *baseline]:
        reasons.update(dict.fromkeys(r.get("ignored_by_reason") or {}))
    total = _total(report)
    if sum(1 for r in baseline if _total(r)) < watchdog.min_baseline_days:
        detail = (
            f"{len(baseline)} published date(s) in the {watchdog.baseline_days} before it "
            f"(at least {watchdog.min_baseline_days} needed)"
        )
        numbers = {"date": day.isoformat(), "pings": total, "baseline_days": len(baseline)}
        return [Finding("quality", f"quality:{day}", INSUFFICIENT, f"{day}: quality not checked", detail, 0.0, numbers)]
    found = []
    for reason in reasons:
        key = f"quality:{day}:{reason}"
        count = int((report.get("ignored_by_reason") or {}).get(reason) or 0)
        share = count / total if total else 0.0
        shares = [int((r.get("ignored_by_reason") or {}).get(reason) or 0) / _total(r) for r in baseline if _total(r)]
        numbers = {"date": day.isoformat(), "reason": reason, "ignored": count, "pings": total, "share": share}
        median = statistics.median(shares)
        numbers.update(median_share=median, ratio=watchdog.quality_ratio, min_share=watchdog.quality_min_share)
        detail = (
            f"{count:,} of {total:,} pings; median share of the {len(shares)} dates before: {percent(median)}; "
            f"fires above {watchdog.quality_ratio:g}x the median and {percent(watchdog.quality_min_share)}"
        )
        title = f"{day}: {percent(share)} of pings ignored as {reason}"
        firing = share >= watchdog.quality_min_share and share > watchdog.quality_ratio * median
        found.append(Finding("quality", key, FIRING if firing else OK, title, detail, share, numbers))
    return found
