"""The dashboard's Data health view shows what the last ``check`` found: the findings firing, each rule's state."""

from __future__ import annotations

import watchdata
from helpers import run
from starlette.testclient import TestClient
from test_watch import AS_OF, EXPECTED

from crash_aggregates.config import load_config
from crash_aggregates.web.app import create_app


def test_health_lists_current_findings_and_rule_states(tmp_path):
    data = watchdata.build(tmp_path / "aggregates")
    config_path = watchdata.write_config(tmp_path / "config.toml", f'\n[state]\npath = "{tmp_path / "s.sqlite3"}"\n')
    config = load_config(config_path)
    with TestClient(create_app(str(data), config)) as client:
        before = client.get("/api/health").json()
        assert before["watchdog"] is None
        assert "No <code>crash-aggregates check</code> has run" in client.get("/health").text
        assert not (tmp_path / "s.sqlite3").exists()  # looking never creates the state file

        assert run("check", "--data", data, "--config", config_path, "--as-of", AS_OF, "--no-notify").exit_code == 1
        status = client.get("/api/health").json()["watchdog"]
        html = client.get("/health").text
    assert {f["key"] for f in status["firing"]} == EXPECTED
    assert status["as_of"] == AS_OF
    rules = {r["name"]: (r["FIRING"], r["INSUFFICIENT"], r["OK"]) for r in status["rules"]}
    assert rules["nightly main crash regression"][0] == 1 and sum(rules["nightly main crash regression"]) == 13
    assert rules["release main crash rate"] == (0, 0, 1) and rules["esr main crash rate"] == (0, 1, 0)
    assert status["checks"]["missing"]["FIRING"] == 1
    assert "4 findings firing" in html
    assert f"nightly main crash regression [build_id={watchdata.REGRESSION}]" in html
    assert '<tr class="firing"><td>nightly main crash regression</td><td class="num">1</td>' in html
