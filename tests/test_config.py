"""Configuration as data: defaults equal SPEC's tables, TOML round trip, dimensions added by config only."""

from __future__ import annotations

import tomllib

import pytest
from helpers import read_partition, run, run_process, write_day

from crash_aggregates.config import ConfigError, default_config, load_config, parse_config, to_toml

SPEC_DIMENSIONS = {
    "build_version": "environment.build.version",
    "build_id": "environment.build.buildId",
    "channel": "application.channel",
    "application": "application.name",
    "os_name": "environment.system.os.name",
    "os_version": "environment.system.os.version",
    "architecture": "environment.build.architecture",
    "country": "meta.geoCountry",
    "experiment_id": "environment.addons.activeExperiment.id",
    "experiment_branch": "environment.addons.activeExperiment.branch",
    "e10s_enabled": "environment.settings.e10sEnabled",
    "e10s_cohort": "environment.settings.e10sCohort",
}
SPEC_STAT_COLUMNS = [
    "ping_count",
    "usage_hours",
    "usage_hours_squared",
    "main_crashes",
    "main_crashes_squared",
    "content_crashes",
    "content_crashes_squared",
    "plugin_crashes",
    "plugin_crashes_squared",
    "gmplugin_crashes",
    "gmplugin_crashes_squared",
    "gpu_crashes",
    "gpu_crashes_squared",
    "content_shutdown_crashes",
    "content_shutdown_crashes_squared",
]


def test_defaults_are_the_spec_tables():
    config = default_config()
    assert {d.name: ".".join(d.path) for d in config.dimensions} == SPEC_DIMENSIONS
    assert [d.name for d in config.dimensions] == list(SPEC_DIMENSIONS)
    assert config.stat_columns() == SPEC_STAT_COLUMNS


def test_config_command_prints_toml_that_reads_back(tmp_path):
    result = run("config")
    assert result.exit_code == 0
    path = tmp_path / "c.toml"
    path.write_text(result.output)
    loaded = load_config(path)
    assert loaded.dimensions == default_config().dimensions
    assert loaded.stats == default_config().stats
    assert tomllib.loads(result.output)["stats"]["content_shutdown_crashes"]["histogram"] == (
        "payload.keyedHistograms.SUBPROCESS_KILL_HARD.ShutDownKill"
    )


def test_adding_a_dimension_is_a_config_change(tmp_path):
    """gfx_compositor (with "none" as absent) and a renamed stat, with no code change."""
    text = run("config").output
    text = text.replace(
        "[dimensions]\n",
        '[dimensions]\ngfx_compositor = { path = "environment.system.gfx.features.compositor", absent = ["none"] }\n',
    )
    text = text.replace("usage_hours = {", "hours = {")
    (tmp_path / "c.toml").write_text(text)
    base = {
        "type": "main",
        "meta": {"submissionDate": "20160305", "docType": "main"},
        "environment": {"build": {"buildId": "20160301000000"}},
        "payload": {"info": {"subsessionLength": 7200, "subsessionStartDate": "2016-03-05"}},
    }
    pings = []
    for compositor in ("D3D11", "none", None):
        p = {
            **base,
            "environment": {**base["environment"], "system": {"gfx": {"features": {"compositor": compositor}}}},
        }
        pings.append(p)
    write_day(tmp_path / "in", "2016-03-05", pings)
    result = run(
        "run",
        "--config",
        tmp_path / "c.toml",
        "--input",
        tmp_path / "in",
        "--output",
        tmp_path / "out",
        "--min-submission-date",
        "2016-03-05",
        "--max-submission-date",
        "2016-03-05",
    )
    assert result.exit_code == 0, result.output
    rows = read_partition(tmp_path / "out", "2016-03-05")
    by_compositor = {dict(d).get("gfx_compositor"): stats for (_, d), stats in rows.items()}
    assert set(by_compositor) == {"D3D11", None}
    assert by_compositor[None]["ping_count"] == 2  # "none" counts as absent
    assert by_compositor["D3D11"]["hours"] == 2.0 and "usage_hours" not in by_compositor["D3D11"]


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"dimensions": {"a": 3}}, "expected a JSON path"),
        ({"dimensions": {"a": ""}}, "invalid JSON path"),
        ({"stats": {"x": {"builtin": "nope"}}}, "unknown builtin"),
        ({"stats": {"x": {"builtin": "usage_hours", "histogram": "a.b"}}}, "exactly one"),
        ({"stats": {"x": {"builtin": "usage_hours"}, "x_squared": {"builtin": "ping_count"}}}, "declared twice"),
        ({"dimension": {}}, "unknown table"),
    ],
)
def test_bad_config_is_one_clear_error(doc, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(doc)


def test_bad_config_file_exit_2(tmp_path):
    (tmp_path / "c.toml").write_text("[dimensions\n")
    result = run_process("config", "--config", tmp_path / "c.toml")
    assert result.returncode == 2 and "not valid TOML" in result.stderr and "Traceback" not in result.stderr


def test_config_from_environment(tmp_path, monkeypatch):
    (tmp_path / "c.toml").write_text('[dimensions]\nchannel = "application.channel"\n')
    monkeypatch.setenv("CRASH_AGGREGATES_CONFIG", str(tmp_path / "c.toml"))
    assert [d.name for d in load_config().dimensions] == ["channel"]
    assert to_toml(load_config()).count("=") > 1
