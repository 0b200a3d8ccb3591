"""The dashboard in a real browser: Debian's Chromium driven by Playwright, over `crash-aggregates serve`.

The tests click through every view, change the split, a filter and the date
range, read the charts' own data (Chart.js) and check it against the API and
against `crash-aggregates sql`, download the CSV, and save the screenshots
that docs/dashboard.md shows. Without /usr/bin/chromium they fail (`make
chromium` installs it); Playwright never downloads a browser of its own.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from datetime import date
from pathlib import Path

import pytest
from helpers import run, serving

from crash_aggregates import synth

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
#: Where the screenshots go: docs/images when `make screenshots` asks for them
#: (CRASH_AGGREGATES_SCREENSHOTS), else a scratch folder, so that a test run
#: does not leave the docs' images changed in the work tree.
IMAGES = Path(os.environ.get("CRASH_AGGREGATES_SCREENSHOTS") or tempfile.mkdtemp(prefix="screenshots-"))
PLANTED = synth.regression_build_id([date(2016, 3, 9), date(2016, 3, 15)])


@pytest.fixture(scope="module")
def server(demo_data):
    """`crash-aggregates serve` on a free loopback port, as `make dashboard` runs it."""
    with serving(demo_data) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True, base_url=server)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    assert problems == [], f"the browser reported: {problems}"  # CSP violations and script errors land here


def chart(page, canvas_id: str) -> dict:
    """The chart as Chart.js holds it: labels, and per dataset its label, data, and whether it is a band."""
    page.wait_for_selector(f"#{canvas_id}[data-ready='1']", timeout=15000)
    return page.evaluate(
        """id => {
            const c = Chart.getChart(document.getElementById(id));
            return {labels: c.data.labels,
                    datasets: c.data.datasets.map(d => ({label: d.label, data: d.data, band: !!d.band,
                                                          flag: d.flag || null, thin: d.thin || null}))};
        }""",
        canvas_id,
    )


def series(data: dict) -> list[dict]:
    return [d for d in data["datasets"] if not d["band"]]


def api(page, url: str) -> list[dict]:
    response = page.request.get(url)
    assert response.ok, response.text()
    return response.json()["rows"]


def sql(data, query: str) -> list[dict]:
    result = run("sql", "--data", data, "--format", "json", query)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def check_against_api(page, canvas_id: str) -> list[dict]:
    """The chart's series and numbers are the API's: one series per group, one point per date."""
    data = chart(page, canvas_id)
    url = page.get_attribute(f"#{canvas_id}", "data-api")
    rows = api(page, url)
    groups = list(dict.fromkeys(json.dumps(r["group"]) for r in rows))
    assert len(series(data)) == len(groups)
    assert data["labels"] == list(dict.fromkeys(r["date"] for r in rows))
    for s, group in zip(series(data), groups, strict=True):
        mine = [r for r in rows if json.dumps(r["group"]) == group]
        assert s["data"] == [r["rate"] for r in mine]  # the same doubles
        assert s["label"] == (json.loads(group) if json.loads(group) is not None else s["label"])
    return rows


def check_against_sql(rows: list[dict], answer: list[dict]) -> None:
    """Every API row with usage has sql's events and usage hours; the rate follows from them."""
    found = {(r["g"], r["d"]): (r["e"], r["h"]) for r in answer}
    with_usage = [r for r in rows if r["usage_hours"]]
    assert len(with_usage) == len(found)
    for r in with_usage:
        events, hours = found[(r["group"], r["date"])]
        assert r["events"] == events and math.isclose(r["usage_hours"], hours, rel_tol=1e-9)
        assert math.isclose(r["rate"], 1000 * events / hours, rel_tol=1e-9)


def shot(page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)


def test_click_through_every_view(page):
    page.goto("/")
    assert page.url.endswith("/overview")
    for label, path in [("Explore", "/explore"), ("Builds", "/builds"), ("Compare", "/compare"),
                        ("Data health", "/health"), ("Overview", "/overview")]:  # fmt: skip
        page.click(f"header nav >> text={label}")
        page.wait_for_load_state("networkidle")
        assert path in page.url and page.locator("h1").count() == 1
        assert page.locator("header nav a.active").inner_text() == label


def test_overview(page, demo_data):
    page.goto("/overview")
    assert page.locator("td.cell.insufficient").count() == page.locator("td.cell").count() > 0
    page.click("text=Compare the last 3 days with the 3 before")
    assert "days=3" in page.url
    rows = page.locator("table.overview tbody tr")
    assert rows.count() == 4
    release = page.locator('tr[data-group="release"] td.cell[data-stat="main_crashes"]')
    answer = sql(
        demo_data,
        "SELECT sum(stats['main_crashes']) AS e, sum(stats['usage_hours']) AS h FROM crash_aggregates "
        "WHERE dimensions['channel'] = 'release' AND activity_date BETWEEN '2016-03-13' AND '2016-03-15'",
    )[0]
    shown = float(release.locator(".rate").inner_text())
    assert shown == round(1000 * answer["e"] / answer["h"], 1)
    shot(page, "overview")
    page.click("text=channel and OS")
    assert "by=os_name" in page.url and page.locator("table.overview tbody tr").count() > 4


def test_explore_split_filter_range_and_csv(page, demo_data, tmp_path):
    page.goto("/explore")
    rows = check_against_api(page, "explore-chart")
    assert len(series(chart(page, "explore-chart"))) == 1

    # Split by channel: one series per channel.
    page.select_option("select[name=by]", "channel")
    page.click("form.controls button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "by=channel" in page.url
    rows = check_against_api(page, "explore-chart")
    assert {s["label"] for s in series(chart(page, "explore-chart"))} == {"release", "beta", "nightly", "esr"}
    check_against_sql(
        rows,
        sql(
            demo_data,
            "SELECT dimensions['channel'] AS g, activity_date AS d, sum(stats['main_crashes']) AS e, "
            "sum(stats['usage_hours']) AS h FROM crash_aggregates "
            "WHERE activity_date BETWEEN '2016-03-09' AND '2016-03-15' GROUP BY 1, 2",
        ),
    )
    shot(page, "explore")

    # A filter and a date range.
    page.fill("input[aria-label='new filter']", "os_name:Windows_NT")
    page.fill("input[name=from]", "2016-03-11")
    page.fill("input[name=to]", "2016-03-14")
    page.select_option("select[name=stat]", "content_crashes")
    page.click("form.controls button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "where=os_name%3AWindows_NT" in page.url and "from=2016-03-11" in page.url
    rows = check_against_api(page, "explore-chart")
    assert chart(page, "explore-chart")["labels"] == ["2016-03-11", "2016-03-12", "2016-03-13", "2016-03-14"]
    check_against_sql(
        rows,
        sql(
            demo_data,
            "SELECT dimensions['channel'] AS g, activity_date AS d, sum(stats['content_crashes']) AS e, "
            "sum(stats['usage_hours']) AS h FROM crash_aggregates WHERE dimensions['os_name'] = 'Windows_NT' "
            "AND activity_date BETWEEN '2016-03-11' AND '2016-03-14' GROUP BY 1, 2",
        ),
    )
    # The table beneath shows the same numbers.
    cells = page.locator("#explore-table tbody tr")
    assert cells.count() == len(rows)
    assert [int(v) for v in cells.evaluate_all("trs => trs.map(t => t.dataset.events)")] == [r["events"] for r in rows]

    # The CSV download has the API's rows.
    with page.expect_download() as info:
        page.click("text=Download CSV")
    path = tmp_path / "rates.csv"
    info.value.save_as(path)
    with open(path, newline="") as f:
        downloaded = list(csv.DictReader(f))
    assert [(r["group"], r["date"], int(r["events"])) for r in downloaded] == [
        (r["group"], r["date"], r["events"]) for r in rows
    ]

    # "Open as SQL" shows a query that `sql` answers with the same numbers.
    page.click("text=Open as SQL")
    shown = page.locator("details.sql pre code").first.inner_text()
    answer = sql(demo_data, shown)
    assert {(r["channel"], r["day"], r["content_crashes"]) for r in answer} == {
        (r["group"], r["date"], r["events"]) for r in rows if r["usage_hours"]
    }


def test_builds_flags_the_planted_regression(page, demo_data):
    page.goto("/builds")
    data = chart(page, "builds-chart")
    points = series(data)[0]
    flagged = [label for label, flag in zip(data["labels"], points["flag"], strict=True) if flag == "regression"]
    assert flagged == [PLANTED]
    assert page.locator("tr.regression").count() == 1
    assert page.locator("tr.regression td").first.inner_text() == PLANTED
    assert PLANTED in page.locator(".alert").inner_text()
    answer = sql(
        demo_data,
        "SELECT dimensions['build_id'] AS b, sum(stats['main_crashes']) AS e, sum(stats['usage_hours']) AS h "
        "FROM crash_aggregates WHERE dimensions['channel'] = 'nightly' "
        "AND activity_date BETWEEN '2016-03-09' AND '2016-03-15' GROUP BY 1 ORDER BY 1",
    )
    assert data["labels"] == [r["b"] for r in answer]
    for value, r in zip(points["data"], answer, strict=True):
        assert math.isclose(value, 1000 * r["e"] / r["h"], rel_tol=1e-9)
    cohorts = chart(page, "cohort-chart")
    assert len(series(cohorts)) >= 1
    shot(page, "builds")
    page.select_option("select[name=channel]", "beta")
    page.click("form.controls button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "channel=beta" in page.url and len(series(chart(page, "builds-chart"))) == 1


def test_compare_experiment_branches(page):
    page.goto("/compare")
    assert "experiment_branch%3Atreatment" in page.url
    data = chart(page, "compare-chart")
    assert [s["label"] for s in series(data)] == ["A", "B"]
    adoption = chart(page, "adoption-chart")
    assert len(series(adoption)) == 2
    assert page.locator("#compare-table tbody tr").count() == 6
    shot(page, "compare")


def test_health(page, demo_data):
    page.goto("/health")
    data = chart(page, "health-chart")
    assert [s["label"] for s in series(data)] == ["processed", "ignored"]
    assert data["labels"] == [f"2016-03-{d:02d}" for d in range(9, 16)]
    reports = [json.loads((demo_data / f"submission_date={d}" / "_report.json").read_text()) for d in data["labels"]]
    assert series(data)[0]["data"] == [r["main_pings_processed"] + r["crash_pings_processed"] for r in reports]
    assert page.locator("#health-table tbody tr").count() == 7
    shot(page, "health")
