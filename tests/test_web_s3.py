"""The dashboard over s3:// data (a real S3 API: moto's server on loopback) answers as over a local copy."""

from __future__ import annotations

from datetime import date

from sqldata import ROWS, table
from starlette.testclient import TestClient

from crash_aggregates import storage
from crash_aggregates.config import default_config
from crash_aggregates.web import dataset
from crash_aggregates.web.app import create_app

PARAMS = {"stat": "main_crashes", "by": "channel", "from": "2016-03-12", "to": "2016-03-16"}


def publish(root, rows) -> None:
    for day in sorted({r["submission_date"] for r in rows}):
        some = [r for r in rows if r["submission_date"] == day]
        storage.publish_partition(root, date.fromisoformat(day), table(some), {"submission_date": day})


def test_s3_answers_as_local(s3, tmp_path, monkeypatch):  # noqa: F811
    root = s3.url("aggregates")
    publish(root, ROWS)
    publish(tmp_path / "local", ROWS)
    with TestClient(create_app(str(tmp_path / "local"), default_config())) as local:
        expected = local.get("/api/rates", params=PARAMS).json()["rows"]
    monkeypatch.setattr(dataset, "REMOTE_CHECK_SECONDS", 0.0)  # look at the markers on every request
    with TestClient(create_app(root, default_config())) as remote:
        assert remote.get("/api/rates", params=PARAMS).json()["rows"] == expected
        assert [d["submission_date"] for d in remote.get("/api/health").json()["dates"]] == ["2016-03-14", "2016-03-15"]
        for page in ("/overview", "/explore?by=channel", "/builds?channel=release", "/health"):
            assert remote.get(page).status_code == 200, page
        # A new partition on S3 is seen (the markers' listing changed).
        publish(root, [dict(ROWS[0], submission_date="2016-03-16", activity_date="2016-03-16")])
        rows = remote.get("/api/rates", params=PARAMS).json()["rows"]
    new = next(r for r in rows if r["group"] == "release" and r["date"] == "2016-03-16")
    assert new["events"] == ROWS[0]["stats"]["main_crashes"]
