"""The dashboard over HTTP: the API against `crash-aggregates sql`, the views' conclusions, errors, security.

The data is the demo week of `make demo` (conftest.demo_data); every number is
checked against what the `sql` command answers for the same question, run as a
user would run it (the command line, JSON output).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import run
from sqldata import ROWS, table
from starlette.testclient import TestClient

from crash_aggregates import stats, storage, synth
from crash_aggregates.config import default_config, parse_config
from crash_aggregates.web.app import CSP, create_app

TOKEN = "s3cret-token-for-the-tests"
DEMO_FIRST, DEMO_LAST = date(2016, 3, 9), date(2016, 3, 15)


@pytest.fixture(scope="module")
def client(demo_data):
    with TestClient(create_app(str(demo_data), default_config())) as c:
        yield c


def sql(data, query: str) -> list[dict]:
    """What `crash-aggregates sql --format json` answers."""
    result = run("sql", "--data", data, "--format", "json", query)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def days(start: date, end: date) -> list[str]:
    return [date.fromordinal(o).isoformat() for o in range(start.toordinal(), end.toordinal() + 1)]


# -- /api/rates against sql ------------------------------------------------------------

API_CASES = [
    # (API parameters, the same question in hand-written Presto: group, date, events, usage hours)
    (
        {"stat": "main_crashes", "by": "channel", "from": "2016-03-09", "to": "2016-03-15"},
        "SELECT dimensions['channel'], activity_date, sum(stats['main_crashes']), sum(stats['usage_hours']) "
        "FROM crash_aggregates WHERE activity_date BETWEEN '2016-03-09' AND '2016-03-15' GROUP BY 1, 2",
    ),
    (
        {"stat": "content_crashes", "from": "2016-03-10", "to": "2016-03-12", "date": "submission"},
        "SELECT NULL, CAST(submission_date AS varchar), sum(stats['content_crashes']), sum(stats['usage_hours']) "
        "FROM crash_aggregates WHERE submission_date BETWEEN DATE '2016-03-10' AND DATE '2016-03-12' GROUP BY 2",
    ),
    (
        {
            "stat": "plugin_crashes",
            "by": "os_name",
            "from": "2016-03-05",
            "to": "2016-03-15",
            "where": ["channel:nightly", "channel:beta", "application:Firefox"],
        },
        "SELECT dimensions['os_name'], activity_date, sum(stats['plugin_crashes']), sum(stats['usage_hours']) "
        "FROM crash_aggregates WHERE activity_date BETWEEN '2016-03-05' AND '2016-03-15' "
        "AND dimensions['channel'] IN ('nightly', 'beta') AND dimensions['application'] = 'Firefox' GROUP BY 1, 2",
    ),
    (
        {
            "stat": "main_crashes",
            "by": "e10s_cohort",
            "from": "2016-03-09",
            "to": "2016-03-15",
            "absent": "experiment_id",
        },
        "SELECT dimensions['e10s_cohort'], activity_date, sum(stats['main_crashes']), sum(stats['usage_hours']) "
        "FROM crash_aggregates WHERE activity_date BETWEEN '2016-03-09' AND '2016-03-15' "
        "AND dimensions['experiment_id'] IS NULL GROUP BY 1, 2",
    ),
]


def _key(group, day) -> tuple:
    return (group, str(day))


@pytest.mark.parametrize("params, presto", API_CASES)
def test_api_rates_equals_sql(client, demo_data, params, presto):
    response = client.get("/api/rates", params=params)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    answer = {_key(*list(r.values())[:2]): list(r.values())[2:] for r in sql(demo_data, presto)}
    start, end = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
    groups = {g for g, _ in answer} if "by" in params else {None}
    # One row per group and date of the range, dates without aggregates included.
    assert sorted(((r["group"], r["date"]) for r in rows), key=str) == sorted(
        ((g, d) for g in groups for d in days(start, end)), key=str
    ), "rows are not one per group and date"
    for r in rows:
        events, hours = answer.get(_key(r["group"], r["date"]), (0.0, 0.0))
        assert r["events"] == events and math.isclose(r["usage_hours"], hours or 0.0, rel_tol=1e-9)
        if hours:
            assert (r["rate"], r["lower"], r["upper"]) == pytest.approx(stats.crash_rate(events, hours), rel=1e-12)
            assert math.isclose(r["rate"], 1000 * events / hours, rel_tol=1e-12)
        else:
            assert r["rate"] is None and r["lower"] is None and r["upper"] is None


def test_api_rates_sql_field_answers_the_same_through_sql(client, demo_data):
    params = {"stat": "main_crashes", "by": "build_id", "where": "channel:nightly", "top": "3", "from": "2016-03-09"}
    body = client.get("/api/rates", params=params).json()
    answer = {(r["build_id"], r["day"]): (r["main_crashes"], r["usage_hours"]) for r in sql(demo_data, body["sql"])}
    api = {(r["group"], r["date"]): (r["events"], r["usage_hours"]) for r in body["rows"] if r["usage_hours"]}
    assert answer.keys() == api.keys() and len({g for g, _ in api}) == 4  # the top 3 and "other"
    for key, (events, hours) in api.items():
        assert events == answer[key][0] and math.isclose(hours, answer[key][1], rel_tol=1e-9)


def test_api_rates_csv_has_the_json_numbers(client):
    params = {"stat": "main_crashes", "by": "channel", "from": "2016-03-13", "to": "2016-03-15"}
    rows = client.get("/api/rates", params=params).json()["rows"]
    response = client.get("/api/rates", params={**params, "format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert lines[0] == "group,date,events,usage_hours,rate,lower,upper"
    assert len(lines) == 1 + len(rows)
    for line, row in zip(lines[1:], rows, strict=True):
        group, day, events, hours, rate, lower, upper = line.split(",")
        assert (group, day, int(events)) == (row["group"], row["date"], row["events"])
        assert [float(hours), float(rate), float(lower), float(upper)] == [
            row["usage_hours"], row["rate"], row["lower"], row["upper"]
        ]  # fmt: skip


@pytest.mark.parametrize(
    "query, message",
    [
        ("stat=nope", "stat: unknown stat 'nope'"),
        ("", "stat is required"),
        ("stat=main_crashes&by=chanel", "by: unknown dimension 'chanel'"),
        ("stat=main_crashes&from=2016-3-9", "from: invalid date '2016-3-9'"),
        ("stat=main_crashes&from=2016-02-30", "from: invalid date '2016-02-30'"),
        ("stat=main_crashes&to=yesterday", "to: invalid date"),
        ("stat=main_crashes&from=2016-03-15&to=2016-03-09", "after to"),
        ("stat=main_crashes&from=2000-01-01&to=2016-03-09", "at most 400"),
        ("stat=main_crashes&where=channel", "where: expected DIMENSION:VALUE, not 'channel'"),
        ("stat=main_crashes&where=:nightly", "where: expected DIMENSION:VALUE"),
        ("stat=main_crashes&where=dimensions['channel']:x", "where: unknown dimension"),
        ("stat=main_crashes&absent=nope", "absent: unknown dimension 'nope'"),
        ("stat=main_crashes&date=server", "date: unknown value 'server'"),
        ("stat=main_crashes&by=channel&top=-1", "top: expected a whole number"),
        ("stat=main_crashes&by=channel&top=1e3", "top: expected a whole number"),
        ("stat=main_crashes&min_hours=nan", "min_hours: expected a number"),
        ("stat=main_crashes&stat=usage_hours", "stat is given 2 times"),
        ("stat=main_crashes&format=xml", "format: unknown value 'xml'"),
        ("stat=main_crashes&where=channel:" + "x" * 600, "longer than 500"),
        ("stat=main_crashes&where=channel:beta&absent=channel", "both have a value and be absent"),
    ],
)
def test_api_rates_bad_input_is_a_400_with_one_line(client, query, message):
    response = client.get("/api/rates?" + query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in response.text


PAGES = ["/overview", "/explore", "/builds", "/compare", "/health", "/api/rates", "/api/health"]
PARAMETERS = ["stat", "by", "from", "to", "date", "where", "absent", "top", "min_hours", "min_change", "days",
              "channel", "previous", "a", "b", "align", "format"]  # fmt: skip
NASTY = ["", " ", "%00", "%ff", "%", "'", '"', "\\", "<script>", "nan", "inf", "-1", "1e309", "9" * 30,
         "2016-13-01", "0000-00-00", "channel:", ":", "::", "channel:%0a", "../../etc/passwd", "%c0%ae",
         "dimensions['channel']", "x" * 2000, "日本"]  # fmt: skip


def test_malformed_requests_never_get_a_500(client):
    rng = random.Random(11)
    requests = [f"{page}?{name}={value}" for page in PAGES for name in PARAMETERS for value in NASTY[:8]]
    for _ in range(300):  # bounded: random combinations of the nasty values
        params = "&".join(f"{rng.choice(PARAMETERS)}={rng.choice(NASTY)}" for _ in range(rng.randint(1, 4)))
        requests.append(f"{rng.choice(PAGES)}?{params}")
    requests += ["/nope", "/static/../app.py", "/static/%2e%2e/app.py", "/api/", "/overview/"]
    for url in requests:
        response = client.get(url, follow_redirects=False)
        assert response.status_code in (200, 302, 307, 400, 404), (url, response.status_code)
        assert "Traceback" not in response.text and 'File "' not in response.text, url


def test_methods_other_than_get_are_refused(client):
    csrf = {"X-CSRF-Token": client.get("/api/me").json()["csrf_token"]}  # else refused before routing (403)
    assert client.post("/api/rates?stat=main_crashes", headers=csrf).status_code == 405
    assert client.delete("/overview", headers=csrf).status_code == 405


# -- the views ------------------------------------------------------------------------


def _attrs(html: str, tag_pattern: str) -> list[dict]:
    return [dict(re.findall(r'data-([\w-]+)="([^"]*)"', m)) for m in re.findall(tag_pattern, html)]


def test_builds_flags_the_planted_regression_and_nothing_else(client):
    planted = synth.regression_build_id([DEMO_FIRST, DEMO_LAST])
    html = client.get("/builds", params={"channel": "nightly"}).text
    rows = {a["build"]: a for a in _attrs(html, r"<tr [^>]*data-build=[^>]*>")}
    assert planted in rows
    assert [b for b, a in rows.items() if a["flag"] == "regression"] == [planted]
    assert re.search(rf"Regression:</strong>\s+build {planted} ", html)


def test_builds_numbers_equal_sql(client, demo_data):
    html = client.get("/builds", params={"channel": "nightly", "from": "2016-03-09", "to": "2016-03-15"}).text
    rows = {a["build"]: a for a in _attrs(html, r"<tr [^>]*data-build=[^>]*>")}
    answer = sql(
        demo_data,
        "SELECT dimensions['build_id'] AS b, sum(stats['main_crashes']) AS e, sum(stats['usage_hours']) AS h "
        "FROM crash_aggregates WHERE dimensions['channel'] = 'nightly' "
        "AND activity_date BETWEEN '2016-03-09' AND '2016-03-15' GROUP BY 1",
    )
    assert {r["b"] for r in answer} == set(rows)
    for r in answer:
        assert int(rows[r["b"]]["events"]) == r["e"] and math.isclose(float(rows[r["b"]]["hours"]), r["h"])


def test_overview_cells_equal_sql(client, demo_data):
    html = client.get("/overview", params={"days": "3", "to": "2016-03-15"}).text
    groups = re.findall(r'<tr data-group="([^"]+)">', html)
    assert sorted(groups) == ["beta", "esr", "nightly", "release"]
    cells = _attrs(html, r'<td class="cell [^>]*>')
    answer = sql(
        demo_data,
        "SELECT dimensions['channel'] AS c, activity_date >= '2016-03-13' AS now, sum(stats['main_crashes']) AS e, "
        "sum(stats['usage_hours']) AS h FROM crash_aggregates "
        "WHERE activity_date BETWEEN '2016-03-10' AND '2016-03-15' GROUP BY 1, 2",
    )
    main = [c for c in cells if c["stat"] == "main_crashes"]
    assert len(main) == 4
    for group, cell in zip(groups, main, strict=True):
        now = next(r for r in answer if r["c"] == group and r["now"])
        before = next(r for r in answer if r["c"] == group and not r["now"])
        assert int(cell["events"]) == now["e"] and math.isclose(float(cell["hours"]), now["h"])
        assert int(cell["events-before"]) == before["e"] and math.isclose(float(cell["hours-before"]), before["h"])
        ratio = stats.rate_ratio_test(now["e"], now["h"], before["e"], before["h"])
        assert float(cell["ratio"]) == pytest.approx(ratio.ratio)


def test_overview_says_insufficient_data_rather_than_colour(client):
    # The demo week has no earlier week: nothing may be coloured, the page offers a shorter window.
    html = client.get("/overview").text
    statuses = {c["status"] for c in _attrs(html, r'<td class="cell [^>]*>')}
    assert statuses == {"insufficient"} and "Compare the last 3 days with the 3 before" in html
    # With an absurd minimum exposure every cell is insufficient too.
    html = client.get("/overview", params={"days": "3", "min_hours": "1e9"}).text
    assert {c["status"] for c in _attrs(html, r'<td class="cell [^>]*>')} == {"insufficient"}


def test_compare_defaults_to_the_experiment_branches(client, demo_data):
    response = client.get("/compare", follow_redirects=False)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    experiment = query["a"][0].split(":", 1)[1]
    assert query["a"] == [f"experiment_id:{experiment}", "experiment_branch:treatment"]
    assert query["b"] == [f"experiment_id:{experiment}", "experiment_branch:control"]
    html = client.get(response.headers["location"]).text
    rows = {a["stat"]: a for a in _attrs(html, r"<tr data-stat=[^>]*>")}
    answer = sql(
        demo_data,
        "SELECT dimensions['experiment_branch'] AS b, sum(stats['main_crashes']) AS e, sum(stats['usage_hours']) AS h "
        f"FROM crash_aggregates WHERE dimensions['experiment_id'] = '{experiment}' "
        "AND activity_date BETWEEN '2016-03-09' AND '2016-03-15' GROUP BY 1",
    )
    branch = {r["b"]: r for r in answer}
    main = rows["main_crashes"]
    assert int(main["events-a"]) == branch["treatment"]["e"] and int(main["events-b"]) == branch["control"]["e"]
    assert math.isclose(float(main["hours-a"]), branch["treatment"]["h"])
    expected = stats.rate_ratio_test(
        branch["treatment"]["e"], branch["treatment"]["h"], branch["control"]["e"], branch["control"]["h"]
    )
    assert float(main["ratio"]) == pytest.approx(expected.ratio) and float(main["p"]) == pytest.approx(expected.p_value)


def test_compare_builds_since_first_appearance(client):
    planted = synth.regression_build_id([DEMO_FIRST, DEMO_LAST])
    html = client.get(
        "/compare",
        params={"a": ["channel:nightly", f"build_id:{planted}"], "b": ["channel:nightly", "build_id:20160310033149"]},
    ).text
    assert "days since first appearance" in html
    windows = re.findall(r"<td>(\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2}) \((\d+) days\)</td>", html)
    assert len(windows) == 2 and windows[0][2] == windows[1][2]  # the same number of days for both
    assert windows[0][0] < windows[1][0]  # each from its own first day


def test_health_api_is_the_reports(client, demo_data):
    body = client.get("/api/health").json()
    assert [d["submission_date"] for d in body["dates"]] == days(DEMO_FIRST, DEMO_LAST) and body["missing"] == []
    for row in body["dates"]:
        report = json.loads((demo_data / f"submission_date={row['submission_date']}" / "_report.json").read_text())
        for key in ("main_pings_processed", "crash_pings_ignored", "ignored_by_reason", "aggregates", "input_bytes"):
            assert row[key] == report[key]


def test_health_shows_missing_dates(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    (data / "submission_date=2016-03-12" / "_SUCCESS").unlink()
    with TestClient(create_app(str(data), default_config())) as c:
        assert c.get("/api/health").json()["missing"] == ["2016-03-12"]
        html = c.get("/health").text
    assert '<tr class="missing"><td class="day">2016-03-12</td>' in html


def test_a_new_partition_is_seen_at_once(tmp_path):
    data = tmp_path / "data"
    day = date(2016, 3, 14)
    storage.publish_partition(data, day, table(ROWS[:2]), {"submission_date": day.isoformat()})
    params = {"stat": "main_crashes", "by": "channel", "from": "2016-03-13", "to": "2016-03-16"}
    with TestClient(create_app(str(data), default_config())) as c:
        before = c.get("/api/rates", params=params).json()["rows"]
        assert c.get("/api/rates", params=params).json()["rows"] == before  # cached, same answer
        extra = dict(ROWS[0], activity_date="2016-03-16")
        storage.publish_partition(data, date(2016, 3, 16), table([extra]), {"submission_date": "2016-03-16"})
        after = c.get("/api/rates", params=params).json()["rows"]
        assert [d["submission_date"] for d in c.get("/api/health").json()["dates"]] == ["2016-03-14", "2016-03-16"]
    new = next(r for r in after if r["group"] == "release" and r["date"] == "2016-03-16")
    assert new["events"] == ROWS[0]["stats"]["main_crashes"]
    assert next(r for r in before if r["group"] == "release" and r["date"] == "2016-03-16")["events"] == 0


def test_no_published_partition_yet(tmp_path):
    with TestClient(create_app(str(tmp_path), default_config())) as c:
        for page in ("/overview", "/explore", "/builds", "/health", "/api/health"):
            response = c.get(page)
            assert response.status_code == 200, page
        assert c.get("/api/rates?stat=main_crashes").json()["rows"][0]["events"] == 0


# -- security ---------------------------------------------------------------------------


def test_security_headers_everywhere(client):
    for url in ("/overview", "/api/rates?stat=main_crashes", "/static/dashboard.js", "/api/rates", "/nope"):
        headers = client.get(url).headers
        assert headers["content-security-policy"] == CSP, url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in CSP and "script-src 'self';" in CSP and "unsafe" not in CSP


def test_pages_load_only_their_own_files(client):
    for page in ("/overview", "/explore?by=channel", "/builds", "/health", "/login"):
        html = client.get(page).text
        assert not re.search(r"(src|href)=\"(https?:)?//", html), page
        for attrs in re.findall(r"<script([^>]*)>", html):
            assert 'src="/static/' in attrs or 'type="application/json"' in attrs, (page, attrs)
        assert " style=" not in html and "<style" not in html, page
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
    chart = client.get("/static/vendor/chart.umd.min.js")
    assert chart.status_code == 200 and "Chart.js v4" in chart.text[:200]
    assert "MIT License" in client.get("/static/vendor/chart.js.LICENSE.md").text


def test_user_values_are_escaped_in_pages(client):
    html = client.get("/explore", params={"where": 'channel:<script>alert("x")</script>'}).text
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


# -- crash-aggregates serve ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "/nonexistent/aggregates"], "not a folder"),
        (["--port", "70000", "--data", "."], "70000"),
        ([], "no data: pass --data PATH"),
    ],
)
def test_serve_bad_arguments(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRASH_AGGREGATES_CONFIG", raising=False)
    result = run("serve", *args)
    assert result.exit_code == 2 and message in result.output


def test_config_dashboard_table():
    config = parse_config({"dashboard": {"token": TOKEN, "days": 14, "previous_builds": 5}})
    assert (config.dashboard.days, config.dashboard.previous_builds, config.dashboard.top) == (14, 5, 5)
    assert TOKEN not in repr(config)


def test_serve_prints_the_url_and_answers(demo_data, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CRASH_AGGREGATES_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", "serve", "--data", str(demo_data), "--port", "0",
         "--state", str(tmp_path / "state.sqlite3")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/) \(no users: you are its local user", line)
        assert match, line
        url = match.group(1)
        with urllib.request.urlopen(url + "api/health", timeout=30) as response:  # it listens before it prints
            assert response.status == 200 and len(json.load(response)["dates"]) == 7
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def test_concurrent_requests_while_a_partition_is_published(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    data = tmp_path / "data"
    storage.publish_partition(data, date(2016, 3, 14), table(ROWS[:5]), {"submission_date": "2016-03-14"})
    app = create_app(str(data), default_config())
    params = {"stat": "main_crashes", "by": "channel", "from": "2016-03-10", "to": "2016-03-20"}

    def hammer(n: int) -> list[int]:
        with TestClient(app) as c:
            return [c.get("/api/rates", params={**params, "top": str(1 + (n + i) % 3)}).status_code for i in range(15)]

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(hammer, n) for n in range(4)]
        for k, day in enumerate(("2016-03-15", "2016-03-16", "2016-03-17")):
            extra = dict(ROWS[k], submission_date=day, activity_date=day)
            storage.publish_partition(data, date.fromisoformat(day), table([extra]), {"submission_date": day})
        statuses = [s for r in running for s in r.result()]
    assert statuses == [200] * 60
    with TestClient(app) as c:
        rows = c.get("/api/rates", params=params).json()["rows"]
    assert sum(r["events"] for r in rows if r["date"] >= "2016-03-15") == sum(
        ROWS[k]["stats"]["main_crashes"] for k in range(3)
    )
