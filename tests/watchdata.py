"""A dataset for the watchdog whose findings are known by construction.

Partitions are published with the storage module (no pings): 2016-03-01 to
2016-03-15, with

- 2016-03-12 missing (never published);
- 2016-03-13 a volume drop: 4,000 pings processed, against 10,000 every other day;
- 2016-03-14 an ignored-share spike: 800 malformed_json lines (7.4% of 10,800),
  against 20 (0.2%) every other day;
- nightly builds: one built each day, used for the 7 days after (5,000 usage
  hours a day each) at 2 main crashes per 1,000 hours, except the planted
  regression, built 2016-03-08 (so present from 2016-03-09), at 10;
- release: one build, 100,000 usage hours a day at 1 main crash per 1,000 hours.

As of 2016-03-16 (the newest expected date 2016-03-15), exactly these fire:
``missing:2016-03-12``, ``volume:2016-03-13``,
``quality:2016-03-14:malformed_json`` and the regression build of a
``previous 3 builds`` rule on nightly.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from crash_aggregates.config import default_config
from crash_aggregates.pings import REASONS
from crash_aggregates.storage import aggregates_table, publish_partition

FIRST, LAST = date(2016, 3, 1), date(2016, 3, 15)
MISSING = date(2016, 3, 12)
VOLUME_DROP = date(2016, 3, 13)
QUALITY_SPIKE = date(2016, 3, 14)
REGRESSION_BUILT = date(2016, 3, 8)
NIGHTLY_HOURS = 5000.0
NIGHTLY_RATE, REGRESSION_RATE, RELEASE_RATE = 2.0, 10.0, 1.0
RELEASE_HOURS = 100_000.0
BUILD_DAYS = 7


def build_id(built: date) -> str:
    return f"{built:%Y%m%d}030000"


REGRESSION = build_id(REGRESSION_BUILT)


def nightly_builds(day: date) -> list[date]:
    """The nightly builds used on a submission date: built in the 7 days before it."""
    return [day - timedelta(days=k) for k in range(BUILD_DAYS, 0, -1)]


def rows(day: date) -> dict:
    """``aggregates_table``'s input for one submission date."""
    config = default_config()
    dims = [d.name for d in config.dimensions]
    columns = config.stat_columns()
    found = {}

    def add(channel, build, hours, crashes):
        key_dims = tuple({"channel": channel, "build_id": build, "application": "Firefox"}.get(d) for d in dims)
        values = dict.fromkeys(columns, 0.0)
        values.update(ping_count=hours, usage_hours=hours, main_crashes=float(crashes))
        found[(day.isoformat(), key_dims)] = [values[c] for c in columns]

    for built in nightly_builds(day):
        rate = REGRESSION_RATE if built == REGRESSION_BUILT else NIGHTLY_RATE
        add("nightly", build_id(built), NIGHTLY_HOURS, round(rate * NIGHTLY_HOURS / 1000))
    add("release", "20160301160000", RELEASE_HOURS, round(RELEASE_RATE * RELEASE_HOURS / 1000))
    return found


def report(day: date) -> dict:
    processed = 4000 if day == VOLUME_DROP else 10_000
    by_reason = dict.fromkeys(REASONS, 0)
    by_reason["malformed_json"] = 800 if day == QUALITY_SPIKE else 20
    by_reason["invalid_build_id"] = 5
    ignored = sum(by_reason.values())
    return {
        "submission_date": day.isoformat(),
        "main_pings_processed": processed * 9 // 10,
        "main_pings_ignored": ignored,
        "crash_pings_processed": processed // 10,
        "crash_pings_ignored": 0,
        "ignored_by_reason": by_reason,
        "aggregates": 8,
        "input_files": 1,
        "input_bytes": 1000,
        "engine": "test",
        "duration_seconds": 0.1,
    }


def publish(root: Path, day: date) -> None:
    config = default_config()
    table = aggregates_table(rows(day), [d.name for d in config.dimensions], config.stat_columns())
    publish_partition(root, day, table, report(day))


def build(root: Path, first: date = FIRST, last: date = LAST, missing=(MISSING,)) -> Path:
    day = first
    while day <= last:
        if day not in missing:
            publish(root, day)
        day += timedelta(days=1)
    return root


CONFIG = """
[dashboard]
url = "http://dashboard.test"

[notify]
attempts = 3
backoff_seconds = 0.05
timeout_seconds = 5

[[alerts]]
name = "nightly main crash regression"
stat = "main_crashes"
where = {{ channel = "nightly" }}
by = "build_id"
relative = 1.25
baseline = "previous 3 builds"
alpha = 0.01
min_usage_hours = 1000
days = 7

[[alerts]]
name = "release main crash rate"
stat = "main_crashes"
where = {{ channel = "release" }}
threshold = 1.5
min_usage_hours = 1000
days = 1

[[alerts]]
name = "esr main crash rate"
stat = "main_crashes"
where = {{ channel = "esr" }}
threshold = 1.5
{extra}
"""


def write_config(path: Path, extra: str = "") -> Path:
    path.write_text(CONFIG.format(extra=extra))
    return path
