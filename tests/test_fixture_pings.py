"""The real telemetry fixtures (../shared/fixtures) through the per-ping rules.

The fixtures are client-side documents: each test adds the ingestion ``meta``
block (docType, submissionDate = the day D chosen per row, geoCountry) and
folds the pretty-printed file onto one NDJSON line, keeping every other byte as
published. The expected key and stats were read off the fixture JSON by hand
(environment.build.version/buildId, application.channel/name,
environment.system.os, payload.info.subsessionStartDate/subsessionLength,
payload.crashDate, payload.processType ...), never computed by the code under
test.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from helpers import SHARED
from pingcases import TIERS, Ignored, Processed, check, rules_for, stats

from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.config import default_config, parse_config

#: SPEC: "Real examples ... are in ../shared/fixtures/" (relative to the repository).
FIXTURES = SHARED / "fixtures"
assert FIXTURES.is_dir(), f"fixture directory {FIXTURES} not found (set CRASH_AGGREGATES_SHARED)"

MAIN_FIXTURES = sorted(p.name for p in FIXTURES.glob("main.4.*.pass.json"))
CRASH_FIXTURES = sorted(p.name for p in FIXTURES.glob("crash.4.*.pass.json"))


@pytest.fixture(params=TIERS)
def tier(request):
    return request.param


def fixture_line(name: str, day: date, country: str = "US", doc_type: str | None = "default", replace=()) -> bytes:
    """The fixture as one NDJSON line with a meta block for submission date ``day``.

    ``replace``: (old, new) byte edits, each of which must match exactly once.
    """
    raw = (FIXTURES / name).read_bytes().strip()
    assert raw.startswith(b"{") and "meta" not in json.loads(raw), name
    for old, new in replace:
        assert raw.count(old) == 1, (name, old)
        raw = raw.replace(old, new)
    meta = {"submissionDate": day.strftime("%Y%m%d"), "geoCountry": country}
    if doc_type == "default":
        meta["docType"] = name.split(".")[0]
    elif doc_type is not None:
        meta["docType"] = doc_type
    # JSON strings cannot hold raw newlines, so folding the file is byte-exact otherwise.
    body = raw[1:].replace(b"\r", b" ").replace(b"\n", b" ")
    line = b'{"meta": ' + json.dumps(meta).encode() + b", " + body
    assert b"\n" not in line
    return line


# -- hand-written expectations -------------------------------------------------------

# main.4.sample / latewrites / profile (Firefox 45.0 beta on Darwin 14.5.0):
# subsessionStartDate "2015-11-04T00:00:00.0-08:00", subsessionLength 38376,
# activeExperiment {}, e10sEnabled true, e10sCohort "unknown",
# SUBPROCESS_CRASHES_WITH_DUMP {}, no SUBPROCESS_KILL_HARD.
BETA_45 = {
    "build_version": "45.0",
    "build_id": "20151103030248",
    "channel": "beta",
    "application": "Firefox",
    "os_name": "Darwin",
    "os_version": "14.5.0",
    "architecture": "x86-64",
    "country": "US",
    "experiment_id": None,
    "experiment_branch": None,
    "e10s_enabled": "True",
    "e10s_cohort": "unknown",
}
BETA_45_STATS = stats(usage=38376 / 3600)  # 10.66 h

# main.4.gc_sample (Firefox 60.0a1 nightly on Darwin 17.4.0):
# subsessionStartDate "2018-03-08T00:00:00.0-04:00", subsessionLength 44742,
# no e10sCohort, compositor "opengl".
NIGHTLY_60 = {
    "build_version": "60.0a1",
    "build_id": "20180209220324",
    "channel": "nightly",
    "application": "Firefox",
    "os_name": "Darwin",
    "os_version": "17.4.0",
    "architecture": "x86-64",
    "country": "CA",
    "experiment_id": None,
    "experiment_branch": None,
    "e10s_enabled": "True",
    "e10s_cohort": None,
}
NIGHTLY_60_STATS = stats(usage=44742 / 3600)  # 12.43 h

# crash.4.* (Firefox 61.0a1 nightly, Windows_NT 6.1, x86): crashDate
# "2018-04-10", processType "content", e10sEnabled true, no e10sCohort, no
# activeExperiment, no keyedHistograms, compositor "d3d11".
NIGHTLY_61 = {
    "build_version": "61.0a1",
    "build_id": "20180409100035",
    "channel": "nightly",
    "application": "Firefox",
    "os_name": "Windows_NT",
    "os_version": "6.1",
    "architecture": "x86",
    "country": "FR",
    "experiment_id": None,
    "experiment_branch": None,
    "e10s_enabled": "True",
    "e10s_cohort": None,
}
CONTENT_TO_MAIN = ((b'"processType": "content"', b'"processType": "main"'),)
CONTENT_TO_NULL = ((b'"processType": "content"', b'"processType": null'),)
COUNTS = b'"SUBPROCESS_CRASHES_WITH_DUMP": {"content": {"values": {"0": 2, "1": 0}}, "gpu": {"values": {"0": 1}}},'
INJECT_TOP = (b'\n      "SUBPROCESS_CRASHES_WITH_DUMP": {},', b"\n      " + COUNTS)
INJECT_CONTENT_PROCESS = (b'\n          "SUBPROCESS_CRASHES_WITH_DUMP": {},', b"\n          " + COUNTS)

D_2015 = date(2015, 11, 5)  # creationDate of the 2015 main fixtures
D_2018_03 = date(2018, 3, 9)
D_2018_04 = date(2018, 4, 10)  # crashDate / creationDate of the crash fixtures

ROWS = [
    # (id, fixture, D, line options, expected)
    ("sample", "main.4.sample.pass.json", D_2015, {}, Processed(False, "2015-11-04", BETA_45, BETA_45_STATS)),
    ("latewrites", "main.4.latewrites.pass.json", D_2015, {}, Processed(False, "2015-11-04", BETA_45, BETA_45_STATS)),
    ("profile", "main.4.profile.pass.json", D_2015, {}, Processed(False, "2015-11-04", BETA_45, BETA_45_STATS)),
    (
        "gc_sample",
        "main.4.gc_sample.pass.json",
        D_2018_03,
        {"country": "CA"},
        Processed(False, "2018-03-08", NIGHTLY_60, NIGHTLY_60_STATS),
    ),
    # no environment at all: activity date from creationDate, then no buildId
    ("min", "main.4.min.pass.json", D_2015, {}, Ignored("invalid_build_id")),
    ("good_histogram", "main.4.good_histogram.pass.json", D_2015, {}, Ignored("invalid_build_id")),
    # environment.build.buildId present but no payload: no subsessionLength
    ("headless", "main.4.headless.pass.json", D_2015, {}, Ignored("invalid_subsession_length")),
    (
        "adapter_null_gpuactive",
        "main.4.adapter_null_gpuactive.pass.json",
        D_2015,
        {},
        Ignored("invalid_subsession_length"),
    ),
    # every crash fixture is a content-process crash
    *[
        (f"crash-{name.split('.')[2]}", name, D_2018_04, {"country": "FR"}, Ignored("content_crash", crash=True))
        for name in [
            "crash.4.null_minidumphashsha256.pass.json",
            "crash.4.null_stackTraces.pass.json",
            "crash.4.null_vendor.pass.json",
            "crash.4.sample.pass.json",
            "crash.4.stackTraces.pass.json",
        ]
    ],
    # ... and with processType "main" (or null) they are main-process crashes
    *[
        (
            f"crash-{name.split('.')[2]}-as-main-process",
            name,
            D_2018_04,
            {"country": "FR", "replace": CONTENT_TO_MAIN},
            Processed(True, "2018-04-10", NIGHTLY_61, stats(crash=True)),
        )
        for name in [
            "crash.4.null_minidumphashsha256.pass.json",
            "crash.4.null_stackTraces.pass.json",
            "crash.4.null_vendor.pass.json",
            "crash.4.sample.pass.json",
            "crash.4.stackTraces.pass.json",
        ]
    ],
    (
        "crash-sample-process-type-null",
        "crash.4.sample.pass.json",
        D_2018_04,
        {"country": "FR", "replace": CONTENT_TO_NULL},
        Processed(True, "2018-04-10", NIGHTLY_61, stats(crash=True)),
    ),
    # clamping: activity date 2015-11-04 seen from other days
    (
        "sample-exactly-d-minus-7",
        "main.4.sample.pass.json",
        date(2015, 11, 11),
        {},
        Processed(False, "2015-11-04", BETA_45, BETA_45_STATS),
    ),
    (
        "sample-d-minus-8-clamped",
        "main.4.sample.pass.json",
        date(2015, 11, 12),
        {},
        Processed(False, "2015-11-05", BETA_45, BETA_45_STATS),
    ),
    (
        "sample-long-after-clamped",
        "main.4.sample.pass.json",
        date(2016, 3, 5),
        {},
        Processed(False, "2016-02-27", BETA_45, BETA_45_STATS),
    ),
    (
        "sample-future-clamped",
        "main.4.sample.pass.json",
        date(2015, 11, 3),
        {},
        Processed(False, "2015-11-03", BETA_45, BETA_45_STATS),
    ),
    (
        "gc_sample-future-clamped",
        "main.4.gc_sample.pass.json",
        D_2015,
        {"country": "CA"},
        Processed(False, "2015-11-05", NIGHTLY_60, NIGHTLY_60_STATS),
    ),
    (
        "crash-sample-d-minus-8-clamped",
        "crash.4.sample.pass.json",
        date(2018, 4, 18),
        {"country": "FR", "replace": CONTENT_TO_MAIN},
        Processed(True, "2018-04-11", NIGHTLY_61, stats(crash=True)),
    ),
    ("min-clamped-still-no-build-id", "main.4.min.pass.json", date(2016, 1, 1), {}, Ignored("invalid_build_id")),
    # meta variations on a real ping
    (
        "sample-doc-type-from-type",
        "main.4.sample.pass.json",
        D_2015,
        {"doc_type": None},
        Processed(False, "2015-11-04", BETA_45, BETA_45_STATS),
    ),
    (
        "sample-other-doc-type",
        "main.4.sample.pass.json",
        D_2015,
        {"doc_type": "saved-session"},
        Ignored("other_doc_type"),
    ),
    (
        "crash-sample-doc-type-from-type",
        "crash.4.sample.pass.json",
        D_2018_04,
        {"doc_type": None},
        Ignored("content_crash", crash=True),
    ),
    (
        "sample-country-empty",
        "main.4.sample.pass.json",
        D_2015,
        {"country": ""},
        Processed(False, "2015-11-04", BETA_45 | {"country": ""}, BETA_45_STATS),
    ),
    # a real ping with counts injected where SPEC reads them (payload.keyedHistograms,
    # indented 6 spaces in the file) and where it does not (payload.processes.content.keyedHistograms)
    (
        "sample-with-keyed-counts",
        "main.4.sample.pass.json",
        D_2015,
        {"replace": (INJECT_TOP,)},
        Processed(False, "2015-11-04", BETA_45, stats(usage=38376 / 3600, content_crashes=2.0, gpu_crashes=1.0)),
    ),
    (
        "sample-with-content-process-counts-not-read",
        "main.4.sample.pass.json",
        D_2015,
        {"replace": (INJECT_CONTENT_PROCESS,)},
        Processed(False, "2015-11-04", BETA_45, BETA_45_STATS),
    ),
]


@pytest.mark.parametrize(
    "name, day, options, expected",
    [pytest.param(name, day, options, expected, id=rid) for rid, name, day, options, expected in ROWS],
)
def test_fixture(name, day, options, expected, tier):
    line = fixture_line(name, day, **options)
    check(line, expected, rules_for(submission_date=day, tier=tier))


def test_every_fixture_is_in_the_table():
    covered = {row[1] for row in ROWS}
    assert set(MAIN_FIXTURES) | set(CRASH_FIXTURES) <= covered
    assert len(MAIN_FIXTURES) == 8 and len(CRASH_FIXTURES) == 5


def test_row_ids_are_unique():
    ids = [row[0] for row in ROWS]
    assert len(ids) == len(set(ids))


GFX_CONFIG = parse_config(
    {
        "dimensions": {
            "build_id": "environment.build.buildId",
            "gfx_compositor": {"path": "environment.system.gfx.features.compositor", "absent": ["none"]},
        }
    }
)


@pytest.mark.parametrize(
    "name, day, options, compositor",
    [
        pytest.param("main.4.sample.pass.json", D_2015, {}, None, id="sample-none-is-absent"),
        pytest.param("main.4.gc_sample.pass.json", D_2018_03, {}, "opengl", id="gc_sample-opengl"),
        pytest.param(
            "crash.4.sample.pass.json", D_2018_04, {"replace": CONTENT_TO_MAIN}, "d3d11", id="crash-sample-d3d11"
        ),
    ],
)
def test_fixture_gfx_compositor_via_config(name, day, options, compositor, tier):
    line = fixture_line(name, day, **options)
    build_id = {"main.4.sample.pass.json": "20151103030248", "main.4.gc_sample.pass.json": "20180209220324"}.get(
        name, "20180409100035"
    )
    crash = name.startswith("crash")
    activity = {D_2015: "2015-11-04", D_2018_03: "2018-03-08", D_2018_04: "2018-04-10"}[day]
    usage = {D_2015: 38376 / 3600, D_2018_03: 44742 / 3600, D_2018_04: 0.0}[day]
    expected = Processed(
        crash,
        activity,
        {"build_id": build_id, "gfx_compositor": compositor},
        stats(crash=crash, usage=usage),
        dim_names=("build_id", "gfx_compositor"),
    )
    check(line, expected, rules_for(GFX_CONFIG, submission_date=day, tier=tier))


def test_all_fixtures_in_one_day(tier):
    """Every fixture submitted on 2015-11-05: what the day's counters and aggregates hold."""
    rules = rules_for(default_config(), D_2015, tier)
    lines = [fixture_line(name, D_2015) for name in MAIN_FIXTURES + CRASH_FIXTURES]
    lines.append(fixture_line("crash.4.sample.pass.json", D_2015, replace=CONTENT_TO_MAIN))
    agg = DayAggregate()
    agg.add_lines(rules, lines)
    counters = agg.counters()
    assert counters["main_pings_processed"] == 4  # sample, latewrites, profile, gc_sample
    assert counters["main_pings_ignored"] == 4
    assert counters["crash_pings_processed"] == 1
    assert counters["crash_pings_ignored"] == 5
    assert counters["ignored_by_doc_type"] == {
        "main": {"invalid_build_id": 2, "invalid_subsession_length": 2},
        "crash": {"content_crash": 5},
    }
    beta = ("2015-11-04", tuple(BETA_45.values()))
    nightly_60 = ("2015-11-05", tuple((NIGHTLY_60 | {"country": "US"}).values()))  # 2018-03-08 clamped to D
    nightly_61 = ("2015-11-05", tuple((NIGHTLY_61 | {"country": "US"}).values()))  # crashDate 2018-04-10 clamped to D
    assert set(agg.aggregates) == {beta, nightly_60, nightly_61}
    hours = 38376 / 3600
    assert agg.aggregates[beta][:5] == [3.0, hours + hours + hours, hours**2 + hours**2 + hours**2, 0.0, 0.0]
    assert agg.aggregates[nightly_60][:5] == [1.0, 44742 / 3600, (44742 / 3600) ** 2, 0.0, 0.0]
    assert agg.aggregates[nightly_61] == [0.0, 0.0, 0.0, 1.0, 1.0] + [0.0] * 10
