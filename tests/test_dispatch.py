"""Who is told what, when: a finding's life in the state file, one check after another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crash_aggregates.state import open_state
from crash_aggregates.watch import dispatch
from crash_aggregates.watch.findings import FIRING, INSUFFICIENT, OK, Finding

T0 = datetime(2016, 3, 16, tzinfo=UTC)


def finding(key: str, state: str = FIRING, severity: float = 2.0) -> Finding:
    return Finding("rule", key, state, f"title of {key}", "detail", severity, {"n": severity})


class Checker:
    """Runs record/pending/delivered as ``check`` does, for one destination that may fail."""

    def __init__(self, path, renotify_hours=0.0, worse_factor=1.25):
        self.db = open_state(path)
        self.renotify, self.worse = renotify_hours, worse_factor

    def run(self, findings, now, evaluated_prefixes=("rule:",), destination="email", fail=False):
        dispatch.record(self.db, findings, now, lambda key: key.startswith(evaluated_prefixes))
        events = dispatch.pending(self.db, destination, now, self.renotify, self.worse)
        if events and not fail:
            dispatch.delivered(self.db, destination, events, now)
        return [(e.kind, e.finding.key) for e in events]


@pytest.fixture
def checker(tmp_path):
    return Checker(tmp_path / "state.sqlite3")


def test_a_findings_life(checker):
    a, b = "rule:r:build_id=1", "rule:r:build_id=2"
    assert checker.run([finding(a), finding(b, OK)], T0) == [("firing", a)]
    assert checker.run([finding(a), finding(b, OK)], T0 + timedelta(days=1)) == []  # nothing new
    assert checker.run([finding(a, severity=2.4), finding(b, OK)], T0) == []  # 20% worse: below the factor
    assert checker.run([finding(a, severity=2.6), finding(b, OK)], T0) == [("worse", a)]  # 30% above the told 2.0
    assert checker.run([finding(a, severity=2.7)], T0) == []  # compared with 2.6 now
    assert checker.run([finding(a, INSUFFICIENT)], T0) == []  # too little data: still firing, nothing said
    assert checker.run([finding(a, OK)], T0) == [("resolved", a)]
    assert checker.run([finding(a, OK)], T0) == []
    assert checker.run([finding(a)], T0 + timedelta(days=3)) == [("firing", a)]  # fires again: told again
    since = checker.db.execute("SELECT first_fired_at FROM alert_findings WHERE key = ?", (a,)).fetchone()[0]
    assert since == "2016-03-19T00:00:00+00:00"


def test_reminders_after_the_renotify_period(tmp_path):
    checker = Checker(tmp_path / "state.sqlite3", renotify_hours=24)
    key = "rule:r"
    assert checker.run([finding(key)], T0) == [("firing", key)]
    assert checker.run([finding(key)], T0 + timedelta(hours=23)) == []
    assert checker.run([finding(key)], T0 + timedelta(hours=24)) == [("reminder", key)]
    assert checker.run([finding(key)], T0 + timedelta(hours=30)) == []


def test_a_failed_destination_is_told_later_and_the_other_is_not_told_twice(checker):
    key = "rule:r"
    assert checker.run([finding(key)], T0, destination="webhook") == [("firing", key)]
    assert checker.run([finding(key)], T0, destination="email", fail=True) == [("firing", key)]
    assert checker.run([finding(key)], T0, destination="email") == [("firing", key)]
    assert checker.run([finding(key)], T0, destination="webhook") == []
    # Resolved before a failing destination heard of it: it is told the resolution only after the firing.
    assert checker.run([finding(key, OK)], T0, destination="email", fail=True) == [("resolved", key)]
    assert checker.run([finding(key, OK)], T0, destination="email") == [("resolved", key)]
    assert checker.run([finding(key, OK)], T0, destination="webhook") == [("resolved", key)]


def test_never_told_then_resolved_says_nothing(checker):
    key = "rule:r"
    dispatch.record(checker.db, [finding(key)], T0, lambda k: True)
    assert checker.run([finding(key, OK)], T0) == []


def test_findings_no_longer_evaluated_expire_quietly(checker):
    old, other = "volume:2016-03-01", "rule:gone:build_id=1"
    told = checker.run([finding(old), finding(other)], T0, evaluated_prefixes=("volume:", "rule:"))
    assert sorted(told) == [("firing", other), ("firing", old)]
    # Neither is in the next evaluation; only the volume check was evaluated as a whole.
    assert checker.run([], T0, evaluated_prefixes=("volume:",)) == []
    states = dict(checker.db.execute("SELECT key, state FROM alert_findings").fetchall())
    assert states == {old: "expired", other: "firing"}
    assert [f.key for f, _ in dispatch.firing(checker.db)] == [other]
