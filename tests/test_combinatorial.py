"""The original project's combinatorial data set: 15 two-valued fields, 2^15 pings.

Every combination appears once, so the expected aggregates follow from
counting alone: per submission day, the doc type is the only field that is
not a dimension, so each of the 2^13 keys gets exactly one main and one crash
ping.
"""

from __future__ import annotations

import itertools
import math

import pytest
from helpers import read_partition, read_report, run, write_day

FIELDS = {
    "submission_date": ["20160305", "20160607"],
    "activity": ["2016-03-02T08:10:03.503Z", "2016-06-01T08:10:17.492Z"],
    "application": ["Firefox", "Fennec"],
    "doc_type": ["main", "crash"],
    "channel": ["nightly", "aurora"],
    "build_version": ["45.0a1", "45"],
    "build_id": ["20160301000000", "20160302000000"],
    "os_name": ["Linux", "Windows_NT"],
    "os_version": ["6.1", "3.1.12"],
    "architecture": ["x86", "x86-64"],
    "e10s": [True, False],
    "e10s_cohort": ["control", "test"],
    "country": ["US", "UK"],
    "experiment_id": [None, "displayport-tuning-nightly@experiments.mozilla.org"],
    "experiment_branch": ["control", "experiment"],
}
assert len(FIELDS) == 15


def make_ping(v: dict) -> dict:
    histograms = {
        "SUBPROCESS_CRASHES_WITH_DUMP": {k: {"values": {"0": 42}} for k in ("content", "plugin", "gmplugin")},
        "SUBPROCESS_KILL_HARD": {"ShutDownKill": {"values": {"0": 42}}},
    }
    payload = {"keyedHistograms": histograms, "info": {"subsessionLength": 42}}
    if v["doc_type"] == "main":
        payload["info"]["subsessionStartDate"] = v["activity"]
    else:
        payload["crashDate"] = v["activity"][:10]
    experiment = {"branch": v["experiment_branch"]}
    if v["experiment_id"] is not None:
        experiment["id"] = v["experiment_id"]
    return {
        "type": v["doc_type"],
        "creationDate": v["activity"],
        "meta": {"submissionDate": v["submission_date"], "docType": v["doc_type"], "geoCountry": v["country"]},
        "application": {"name": v["application"], "channel": v["channel"]},
        "environment": {
            "build": {"version": v["build_version"], "buildId": v["build_id"], "architecture": v["architecture"]},
            "system": {"os": {"name": v["os_name"], "version": v["os_version"]}},
            "settings": {"e10sEnabled": v["e10s"], "e10sCohort": v["e10s_cohort"]},
            "addons": {"activeExperiment": experiment},
        },
        "payload": payload,
    }


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("combinatorial")
    days = {}
    for values in itertools.product(*FIELDS.values()):
        ping = make_ping(dict(zip(FIELDS, values, strict=True)))
        day = ping["meta"]["submissionDate"]
        days.setdefault(f"{day[:4]}-{day[4:6]}-{day[6:]}", []).append(ping)
    for day, pings in days.items():
        half = len(pings) // 2  # two files per day, one of them gzip
        write_day(root / "in", day, pings[:half], "a.ndjson")
        write_day(root / "in", day, pings[half:], "b.ndjson.gz", compression="gzip")
    result = run(
        "run",
        "--input",
        root / "in",
        "--output",
        root / "out",
        "--min-submission-date",
        "20160305",
        "--max-submission-date",
        "20160607",
        "--workers",
        "2",
    )
    assert result.exit_code == 3, result.output  # the days in between have no input
    return root / "out"


@pytest.mark.parametrize(
    "day, activity_dates",
    [
        ("2016-03-05", {"2016-03-02", "2016-03-05"}),
        ("2016-06-07", {"2016-05-31", "2016-06-01"}),
    ],
)
def test_aggregates_per_day(published, day, activity_dates):
    rows = read_partition(published, day)
    assert len(rows) == 2**13
    assert {activity for activity, _ in rows} == activity_dates
    for stats in rows.values():
        assert stats["ping_count"] == 1
        assert stats["main_crashes"] == 1
        assert stats["main_crashes_squared"] == 1
        assert math.isclose(stats["usage_hours"], 42 / 3600, rel_tol=1e-12)
        assert math.isclose(stats["usage_hours_squared"], (42 / 3600) ** 2, rel_tol=1e-12)
        for name in ("content_crashes", "plugin_crashes", "gmplugin_crashes", "content_shutdown_crashes"):
            assert stats[name] == 84
            assert stats[name + "_squared"] == 3528
        assert stats["gpu_crashes"] == 0


def test_dimensions_present_and_absent(published):
    rows = read_partition(published, "2016-03-05")
    with_id = [dict(d) for _, d in rows if "experiment_id" in dict(d)]
    without_id = [dict(d) for _, d in rows if "experiment_id" not in dict(d)]
    assert len(with_id) == len(without_id) == 2**12
    assert all(len(d) == 12 for d in with_id) and all(len(d) == 11 for d in without_id)
    assert {d["e10s_enabled"] for d in with_id} == {"True", "False"}


def test_report_counts(published):
    for day in ("2016-03-05", "2016-06-07"):
        report = read_report(published, day)
        assert report["main_pings_processed"] == report["crash_pings_processed"] == 2**13
        assert report["main_pings_ignored"] == report["crash_pings_ignored"] == 0
        assert report["aggregates"] == 2**13
        assert report["input_files"] == 2
    assert not (published / "submission_date=2016-03-06").exists()
