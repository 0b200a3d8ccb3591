"""Shared helpers for the per-ping rule tables (SPEC sections 2-5).

A test case is a JSON document built from a small valid ping plus one change,
and the outcome SPEC prescribes for it, written out by hand. Documents are
encoded by :func:`encode`, which, unlike ``json.dumps``, can splice raw bytes
(``Raw``: NaN tokens, invalid UTF-8, huge numbers...) and repeat keys (``Dup``).

Every case is checked twice, once per parsing tier of ``PingRules`` (the fast
msgspec decoder and the generic standard-library one), and once more through
``DayAggregate`` so that the per-doc-type counters are checked as well.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import dataclass, field
from datetime import date

from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.config import default_config
from crash_aggregates.pings import PingRules

#: The submission date D of most tables; D - 7 is 2016-02-27.
D = date(2016, 3, 5)

#: SPEC section 4, in order (the key's dimension tuple follows this order).
DIMENSIONS = [
    "build_version",
    "build_id",
    "channel",
    "application",
    "os_name",
    "os_version",
    "architecture",
    "country",
    "experiment_id",
    "experiment_branch",
    "e10s_enabled",
    "e10s_cohort",
]

#: SPEC section 5: every stat but ping_count has a ``_squared`` twin.
STATS = [
    "ping_count",
    "usage_hours",
    "main_crashes",
    "content_crashes",
    "plugin_crashes",
    "gmplugin_crashes",
    "gpu_crashes",
    "content_shutdown_crashes",
]
STAT_COLUMNS = [c for s in STATS for c in ((s,) if s == "ping_count" else (s, s + "_squared"))]

#: SPEC section 2's table, in order.
REASONS = [
    "oversized",
    "malformed_json",
    "other_doc_type",
    "content_crash",
    "invalid_submission_date",
    "invalid_activity_date",
    "invalid_build_id",
    "invalid_subsession_length",
]


# -- building documents ------------------------------------------------------


class Raw:
    """JSON text spliced into a document verbatim (may be invalid on purpose)."""

    def __init__(self, text: bytes | str):
        self.text = text if isinstance(text, bytes) else text.encode()

    def __repr__(self):
        return f"Raw({self.text[:40]!r}{'...' if len(self.text) > 40 else ''})"

    def __deepcopy__(self, memo):
        return self


class Dup(list):
    """A JSON object given as (key, value) pairs, so that keys can repeat."""


DEL = object()  # as a value in mk(): remove that key


def encode(value) -> bytes:
    """One line of JSON; Raw is spliced, Dup may repeat keys."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, (dict, Dup)):
        items = value.items() if isinstance(value, dict) else value
        return (
            b"{"
            + b", ".join(encode(k if isinstance(k, Raw) else Raw(_scalar(k))) + b": " + encode(v) for k, v in items)
            + b"}"
        )
    if isinstance(value, list):
        return b"[" + b", ".join(encode(v) for v in value) + b"]"
    return _scalar(value)


def _scalar(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


def mk(base: dict, changes: dict) -> dict:
    """A deep copy of ``base`` with ``{"dotted.path": value}`` changes (DEL removes).

    A tuple path is used as is, for keys that contain dots.
    """
    doc = copy.deepcopy(base)
    for path, value in changes.items():
        keys = path.split(".") if isinstance(path, str) else list(path)
        node = doc
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is DEL:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return doc


def add_raw(base: dict, key: str, raw: bytes | str) -> bytes:
    """``base`` encoded with one more top-level field (unrelated to the rules) holding raw JSON."""
    return encode(mk(base, {key: Raw(raw)}))


def deep(n: int, opener: bytes = b"[", closer: bytes = b"]", inner: bytes = b"") -> Raw:
    return Raw(opener * n + inner + closer * n)


# -- the two minimal valid pings --------------------------------------------

#: Minimal valid main ping with every default dimension set. Its activity date
#: (payload.info.subsessionStartDate) and creationDate differ, so a test can
#: tell which one was used.
MAIN = {
    "type": "main",
    "meta": {"docType": "main", "submissionDate": "20160305", "geoCountry": "US"},
    "creationDate": "2016-03-04T21:14:07.123Z",
    "application": {"name": "Firefox", "channel": "release"},
    "environment": {
        "build": {"version": "45.0", "buildId": "20160301123456", "architecture": "x86-64"},
        "system": {"os": {"name": "Windows_NT", "version": "10.0"}},
        "settings": {"e10sEnabled": True, "e10sCohort": "test"},
        "addons": {"activeExperiment": {"id": "exp@mozilla.org", "branch": "control"}},
    },
    "payload": {"info": {"subsessionStartDate": "2016-03-03T00:00:00.0+01:00", "subsessionLength": 7200}},
}

MAIN_DIMS = {
    "build_version": "45.0",
    "build_id": "20160301123456",
    "channel": "release",
    "application": "Firefox",
    "os_name": "Windows_NT",
    "os_version": "10.0",
    "architecture": "x86-64",
    "country": "US",
    "experiment_id": "exp@mozilla.org",
    "experiment_branch": "control",
    "e10s_enabled": "True",
    "e10s_cohort": "test",
}

#: Minimal valid crash ping (no processType: a main-process crash).
CRASH = {
    "type": "crash",
    "meta": {"docType": "crash", "submissionDate": "20160305", "geoCountry": "DE"},
    "creationDate": "2016-03-04T08:00:00.000Z",
    "application": {"name": "Firefox", "channel": "beta"},
    "environment": {
        "build": {"version": "46.0b1", "buildId": "20160229000000", "architecture": "x86"},
        "system": {"os": {"name": "Darwin", "version": "15.3.0"}},
        "settings": {"e10sEnabled": False},
    },
    "payload": {"crashDate": "2016-03-02"},
}

CRASH_DIMS = {
    "build_version": "46.0b1",
    "build_id": "20160229000000",
    "channel": "beta",
    "application": "Firefox",
    "os_name": "Darwin",
    "os_version": "15.3.0",
    "architecture": "x86",
    "country": "DE",
    "experiment_id": None,
    "experiment_branch": None,
    "e10s_enabled": "False",
    "e10s_cohort": None,
}

#: Bare pings: only what the rules need, no dimension but build_id.
BARE_MAIN = {
    "meta": {"docType": "main"},
    "environment": {"build": {"buildId": "20160301123456"}},
    "payload": {"info": {"subsessionStartDate": "2016-03-03", "subsessionLength": 3600}},
}
BARE_CRASH = {
    "type": "crash",
    "environment": {"build": {"buildId": "20160301123456"}},
    "creationDate": "2016-03-01T00:00:00Z",
}
BARE_DIMS = {name: None for name in DIMENSIONS} | {"build_id": "20160301123456"}

#: Histograms of SPEC section 5, each with a distinct count.
HISTOGRAMS = {
    "SUBPROCESS_CRASHES_WITH_DUMP": {
        "content": {"values": {"0": 3}},
        "plugin": {"values": {"0": 2}},
        "gmplugin": {"values": {"0": 1}},
        "gpu": {"values": {"0": 5}},
    },
    "SUBPROCESS_KILL_HARD": {"ShutDownKill": {"values": {"0": 4}}},
}


# -- expected outcomes ---------------------------------------------------------


@dataclass(frozen=True)
class Ignored:
    reason: str
    crash: bool = False


@dataclass(frozen=True)
class Processed:
    crash: bool
    activity: str
    dims: dict
    stats: dict = field(default_factory=dict)
    dim_names: tuple = tuple(DIMENSIONS)
    stat_columns: tuple = tuple(STAT_COLUMNS)


def stats(crash: bool = False, usage: float = 0.0, **counts: float) -> dict:
    """All stat columns: per-ping values, squares as the plain square of each value."""
    values = {
        "ping_count": 0.0 if crash else 1.0,
        "usage_hours": usage,
        "main_crashes": 1.0 if crash else 0.0,
        "content_crashes": 0.0,
        "plugin_crashes": 0.0,
        "gmplugin_crashes": 0.0,
        "gpu_crashes": 0.0,
        "content_shutdown_crashes": 0.0,
    }
    for name, x in counts.items():
        assert name in values, name
        values[name] = x
    out = {}
    for name, x in values.items():
        out[name] = x
        if name != "ping_count":
            out[name + "_squared"] = x * x
    return out


MAIN_STATS = stats(usage=2.0)  # subsessionLength 7200 s
CRASH_STATS = stats(crash=True)


def main_ok(activity: str = "2016-03-03", stats: dict | None = None, **dims) -> Processed:
    """MAIN's expectation with some dimensions changed (keyword = dimension name)."""
    assert set(dims) <= set(DIMENSIONS), dims
    return Processed(False, activity, MAIN_DIMS | dims, stats or MAIN_STATS)


def crash_ok(activity: str = "2016-03-02", stats: dict | None = None, **dims) -> Processed:
    assert set(dims) <= set(DIMENSIONS), dims
    return Processed(True, activity, CRASH_DIMS | dims, stats or CRASH_STATS)


# -- running a case ----------------------------------------------------------

TIERS = ["fast", "msgspec", "generic"]


@functools.cache
def rules_for(config=None, submission_date: date = D, tier: str = "fast") -> PingRules:
    """PingRules of one tier: "fast" (the C scanner, which must have been built),
    "msgspec" (its stand-in where no compiler was at hand) or "generic" (the
    standard library for every line). All three must agree on every case."""
    rules = PingRules(config or default_config(), submission_date)
    assert rules.reader.scanner is not None and rules.reader.decoder is not None, "the fast tiers are off"
    if tier != "fast":
        rules.reader.scanner = None
    if tier == "generic":
        rules.reader.decoder = None
    return rules


def as_line(doc) -> bytes:
    return doc if isinstance(doc, bytes) else encode(doc)


def check(line: bytes, expected, rules: PingRules) -> None:
    """The outcome of one line, and what DayAggregate counts for it."""
    out = rules.evaluate(line)
    doc_type = "crash" if expected.crash else "main"
    counters = _counters(rules, line)
    # The job hands the rules memoryviews of its read buffer, with the reader's word
    # on whether the line is ASCII: the same outcome and counters.
    for view, ascii in ((memoryview(line), False), (memoryview(line), line.isascii())):
        assert rules.evaluate(view, ascii) == out
        agg = DayAggregate()
        agg.add_lines(rules, [view], ascii)
        assert agg.counters() == counters
    if isinstance(expected, Ignored):
        assert (out.reason, out.is_crash) == (expected.reason, expected.crash), out
        assert out.key is None and out.values is None
        assert counters["ignored_by_doc_type"][doc_type] == {expected.reason: 1}
        assert counters[f"{doc_type}_pings_ignored"] == 1
        assert sum(counters["ignored_by_reason"].values()) == 1
        assert counters["main_pings_processed"] + counters["crash_pings_processed"] == 0
        return
    assert out.reason is None, out
    assert out.is_crash == expected.crash
    activity, dims = out.key
    assert activity == expected.activity
    assert len(dims) == len(expected.dim_names)
    assert dict(zip(expected.dim_names, dims, strict=True)) == expected.dims
    assert all(v is None or type(v) is str for v in dims)
    assert len(out.values) == len(expected.stat_columns)
    got = dict(zip(expected.stat_columns, out.values, strict=True))
    assert got == expected.stats
    assert all(type(v) is float for v in out.values), "stats are doubles"
    # "negative -> 0": no stat is ever -0.0 either (it would read as "-0").
    assert all(math.copysign(1.0, v) > 0 for v in out.values), got
    assert counters[f"{doc_type}_pings_processed"] == 1
    assert counters["main_pings_ignored"] + counters["crash_pings_ignored"] == 0


def _counters(rules: PingRules, line: bytes) -> dict:
    agg = DayAggregate()
    agg.add_lines(rules, [line])
    return agg.counters()
