"""``run --catch-up``: which dates of a window need a run, and why.

A date needs a run when it has input and either no published partition, or
input that changed since its partition was published: files added (late
data), removed, or rewritten (a re-delivery). What was read is recorded in
the partition's report as ``input_listing``: one entry per file, its name
under the date's folder, its size, and its ``etag`` (S3) or ``mtime_ns``
(local disk). A partition published before listings were recorded is
compared by its file count and bytes only.

>>> old = [{"name": "a.ndjson", "size": 10, "mtime_ns": 1}, {"name": "b.ndjson", "size": 5, "mtime_ns": 1}]
>>> new = [{"name": "a.ndjson", "size": 12, "mtime_ns": 2}, {"name": "c.ndjson", "size": 7, "mtime_ns": 3}]
>>> changes(old, new)
'1 new file, 1 changed, 1 removed'
>>> changes(old, old) is None
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta

from .location import partition_name
from .sources import InputFile, NoInput, list_input
from .storage import published, read_report
from .stores import store_for

#: Days looked at by ``--catch-up`` without ``--since``: the last 14 up to yesterday.
DEFAULT_WINDOW_DAYS = 14
#: The reason of a date that has no input (yet): not run, not "up to date" either.
NO_INPUT_YET = "no input yet"


@dataclass(frozen=True)
class Plan:
    """What catch-up does with one date: ``run`` it or not, and ``reason`` (for people)."""

    day: date
    run: bool
    reason: str


def window(today: date, since: date | None = None, days: int = DEFAULT_WINDOW_DAYS) -> list[date]:
    """The dates catch-up looks at: from ``since`` (default ``days`` back) to yesterday.

    >>> [d.isoformat() for d in window(date(2016, 3, 16), days=3)]
    ['2016-03-13', '2016-03-14', '2016-03-15']
    >>> window(date(2016, 3, 16), since=date(2016, 3, 16))
    []
    """
    last = today - timedelta(days=1)
    first = since if since is not None else last - timedelta(days=days - 1)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def listing(files: list[InputFile], root: str, day: date) -> list[dict]:
    """The report's ``input_listing``: name under the date's folder, size, and ETag or mtime."""
    folder = store_for(root).join(partition_name(day))
    entries = []
    for f in files:
        # A store lists the files under the folder as it joined it: the rest is the name.
        name = f.path[len(folder) :].lstrip("/" + os.sep).replace(os.sep, "/")
        entry = {"name": name, "size": f.size}
        if f.etag is not None:
            entry["etag"] = f.etag
        if f.mtime_ns is not None:
            entry["mtime_ns"] = f.mtime_ns
        entries.append(entry)
    return entries


def changes(recorded: list[dict], current: list[dict]) -> str | None:
    """What differs between two listings, for people; None when they are the same."""
    before = {e["name"]: e for e in recorded}
    now = {e["name"]: e for e in current}
    added = [n for n in now if n not in before]
    removed = [n for n in before if n not in now]
    changed = [n for n in now if n in before and now[n] != before[n]]
    parts = []
    if added:
        parts.append(f"{len(added)} new file{'s' if len(added) != 1 else ''}")
    if changed:
        parts.append(f"{len(changed)} changed")
    if removed:
        parts.append(f"{len(removed)} removed")
    return ", ".join(parts) or None


def plan(input_root: str, output_root: str, dates: list[date]) -> list[Plan]:
    """One Plan per date. Raises StorageError when a location cannot be used."""
    done = published(output_root)
    plans = []
    for day in dates:
        try:
            files = list_input(input_root, day)
        except NoInput:
            plans.append(Plan(day, False, NO_INPUT_YET))
            continue
        if day.isoformat() not in done:
            plans.append(Plan(day, True, "not published"))
            continue
        report = read_report(output_root, day) or {}
        recorded = report.get("input_listing")
        if recorded is None:
            now = (len(files), sum(f.size for f in files))
            then = (report.get("input_files"), report.get("input_bytes"))
            if then != now:
                reason = f"input is {now[0]} files, {now[1]} bytes; {then[0]} files, {then[1]} bytes when published"
                plans.append(Plan(day, True, reason))
            else:
                plans.append(Plan(day, False, "up to date (same file count and bytes; no listing recorded)"))
            continue
        difference = changes(recorded, listing(files, input_root, day))
        if difference:
            plans.append(Plan(day, True, f"input changed since published: {difference}"))
        else:
            plans.append(Plan(day, False, "up to date"))
    return plans
