"""From findings to notifications, remembered in the state file (``state.py``).

A finding is told to each destination

- once when it starts firing (``firing``);
- again only when its severity has grown by ``[notify] worse_factor`` since
  it was last told (``worse``), or when ``[notify] renotify_hours`` have passed
  (``reminder``; 0, the default, never reminds);
- once more when an evaluation finds it OK (``resolved``).

Each destination's last message about each finding is kept
(``alert_deliveries``), so a destination that failed is told on the next
check and the others are not told twice. A finding that is no longer
evaluated at all (its date left the window, its build is gone from the
data, its rule was removed) is closed quietly as ``expired``: nothing says
it got better. INSUFFICIENT changes nothing: a firing finding stays firing.

Messages are sent after the findings are saved and recorded once sent: a
process killed in between sends them again on the next check (at least
once, never lost).

The clock is the check's: the real time, or midnight UTC of ``--as-of``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..state import now_text, transaction
from .findings import FIRING, OK, Finding

EVENTS = ("firing", "worse", "reminder", "resolved")


@dataclass
class Event:
    """One thing to tell: ``kind`` is one of EVENTS; ``since`` when the finding started firing."""

    kind: str
    finding: Finding
    since: str


def record(db: sqlite3.Connection, findings: list[Finding], now: datetime, stale: Callable[[str], bool]) -> None:
    """Save this evaluation: findings that start firing, still fire, stop, or are no longer evaluated."""
    stamp = now_text(now)
    evaluated = {f.key for f in findings}
    with transaction(db):
        firing = {r["key"]: r for r in db.execute("SELECT * FROM alert_findings WHERE state = 'firing'")}
        for f in findings:
            details = json.dumps(f.as_json(), sort_keys=True)
            if f.state == FIRING:
                if f.key in firing:
                    db.execute(
                        "UPDATE alert_findings SET title = ?, severity = ?, details = ?, last_seen_at = ? "
                        "WHERE key = ?",
                        (f.title, _finite(f.severity), details, stamp, f.key),
                    )
                else:
                    db.execute(
                        "INSERT INTO alert_findings "
                        "(key, title, state, severity, details, first_fired_at, last_seen_at) "
                        "VALUES (?, ?, 'firing', ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET title = excluded.title, "
                        "state = 'firing', severity = excluded.severity, details = excluded.details, "
                        "first_fired_at = excluded.first_fired_at, last_seen_at = excluded.last_seen_at, "
                        "resolved_at = NULL",
                        (f.key, f.title, _finite(f.severity), details, stamp, stamp),
                    )
            elif f.state == OK and f.key in firing:
                db.execute(
                    "UPDATE alert_findings SET state = 'resolved', resolved_at = ?, last_seen_at = ?, details = ? "
                    "WHERE key = ?",
                    (stamp, stamp, details, f.key),
                )
        for key in firing:
            if key not in evaluated and stale(key):
                db.execute("UPDATE alert_findings SET state = 'expired', resolved_at = ? WHERE key = ?", (stamp, key))


def pending(db: sqlite3.Connection, destination: str, now: datetime, renotify_hours: float, worse_factor: float):
    """The events one destination has not been told yet, oldest finding first."""
    rows = db.execute(
        "SELECT f.key, f.state, f.severity, f.details, f.first_fired_at, d.event, d.severity AS told, d.sent_at "
        "FROM alert_findings f LEFT JOIN alert_deliveries d ON d.finding_key = f.key AND d.destination = ? "
        "WHERE f.state IN ('firing', 'resolved') ORDER BY f.first_fired_at, f.key",
        (destination,),
    ).fetchall()
    events = []
    for r in rows:
        finding = _finding(r["details"])
        told = r["event"]
        if r["state"] == "resolved":
            if told is not None and told != "resolved":
                events.append(Event("resolved", finding, r["first_fired_at"]))
            continue
        if told is None or told == "resolved":
            kind = "firing"
        elif r["severity"] > r["told"] * worse_factor and r["severity"] > r["told"]:
            kind = "worse"
        elif renotify_hours > 0 and now - datetime.fromisoformat(r["sent_at"]) >= timedelta(hours=renotify_hours):
            kind = "reminder"
        else:
            continue
        events.append(Event(kind, finding, r["first_fired_at"]))
    return events


def delivered(db: sqlite3.Connection, destination: str, events: list[Event], now: datetime) -> None:
    """Remember that ``destination`` was told these events."""
    stamp = now_text(now)
    with transaction(db):
        for e in events:
            db.execute(
                "INSERT INTO alert_deliveries (finding_key, destination, event, severity, sent_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (finding_key, destination) DO UPDATE SET event = excluded.event, "
                "severity = excluded.severity, sent_at = excluded.sent_at",
                (e.finding.key, destination, e.kind, _finite(e.finding.severity), stamp),
            )


def log_attempt(
    db: sqlite3.Connection, destination: str, events: list[Event], ok: bool, attempts: int, error: str | None, now
) -> None:
    """One row per event in ``alert_notifications``: sent, or failed with the reason."""
    stamp = now_text(now)
    with transaction(db):
        db.executemany(
            "INSERT INTO alert_notifications (finding_key, destination, event, status, attempts, error, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.finding.key, destination, e.kind, "sent" if ok else "failed", attempts, error, stamp) for e in events],
        )


def firing(db: sqlite3.Connection) -> list[tuple[Finding, str]]:
    """The findings firing as of the last check, with when each started."""
    rows = db.execute(
        "SELECT details, first_fired_at FROM alert_findings WHERE state = 'firing' ORDER BY first_fired_at, key"
    )
    return [(_finding(r["details"]), r["first_fired_at"]) for r in rows]


def _finding(details: str) -> Finding:
    return Finding(**json.loads(details))


def _finite(value: float) -> float:
    """Severities are compared as numbers: an infinite one is stored as a very large one."""
    return min(float(value), 1e300) if value == value else 0.0
