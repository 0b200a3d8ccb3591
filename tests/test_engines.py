"""The engine interface: the registry, each engine's shape, and a third engine plugged in."""

from __future__ import annotations

import inspect
from datetime import date

import pytest
from helpers import read_partition, read_report, write_day
from pingcases import CRASH, MAIN

from crash_aggregates import engines
from crash_aggregates.config import default_config
from crash_aggregates.engines.embedded import default_workers
from crash_aggregates.errors import ExitCode
from crash_aggregates.job import run_job

KEYWORDS = ["workers", "allow_corrupt", "progress", "prepare"]


@pytest.mark.parametrize("name", engines.names())
def test_every_engine_has_the_interface(name):
    engine = engines.get(name)
    assert engine.name == name
    parameters = inspect.signature(engine.aggregate_day).parameters
    assert list(parameters)[:3] == ["config", "day", "splits"]
    assert set(KEYWORDS) <= set(parameters)
    assert list(inspect.signature(engine.start).parameters) == ["workers", "master"]


def test_an_unknown_engine_is_a_usage_error():
    with pytest.raises(engines.EngineError, match="unknown engine 'flink': use embedded or spark") as info:
        engines.get("flink")
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("asked, expected", [(None, default_workers()), (3, 3), (1, 1)])
def test_the_embedded_engine_starts_as_many_workers_as_asked(asked, expected):
    assert engines.get("embedded").start(workers=asked) == expected


def test_a_third_engine_runs_the_job_like_the_embedded_one(tmp_path, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "serial", "serial_engine")  # tests/serial_engine.py
    day = "2016-03-05"
    pings = (
        [dict(MAIN, application={"name": "Firefox", "channel": f"c{i % 7}"}) for i in range(300)]
        + [CRASH] * 20
        + ["{not json"]
    )
    write_day(tmp_path / "in", day, pings)
    for name in ("embedded", "serial"):
        result = run_job(default_config(), str(tmp_path / "in"), str(tmp_path / name), [date(2016, 3, 5)], name)
        assert result.exit_code == ExitCode.OK
    assert read_partition(tmp_path / "serial", day) == read_partition(tmp_path / "embedded", day)
    serial, embedded = (read_report(tmp_path / name, day) for name in ("serial", "embedded"))
    assert serial["engine"] == "serial" and serial["aggregates"] == embedded["aggregates"] >= 7
    assert serial["ignored_by_reason"] == embedded["ignored_by_reason"]
    counted = ("main_pings_processed", "main_pings_ignored", "crash_pings_processed", "crash_pings_ignored")
    assert [serial[k] for k in counted] == [embedded[k] for k in counted]
