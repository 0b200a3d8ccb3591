"""The SQL console in a real browser: Debian's Chromium driven by Playwright, over `crash-aggregates serve`.

A user types the original README's first query with a parameter, runs it,
charts it, and downloads it; the fences refuse, in the page, what must be
refused. The numbers on screen are checked against `crash-aggregates sql`.
Without /usr/bin/chromium the tests fail (`make chromium`); Playwright never
downloads a browser. Screenshots go where test_web_browser.py puts its own.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest
from helpers import run, serving
from test_web_browser import CHROMIUM, IMAGES, browser, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

FIRST_QUERY = """SELECT dimensions['channel'] AS channel,
       sum(stats['usage_hours']) AS usage_hours,
       1000 * sum(stats['main_crashes']) / sum(stats['usage_hours']) AS main_crash_rate,
       1000 * sum(stats['content_crashes']) / sum(stats['usage_hours']) AS content_crash_rate
FROM crash_aggregates
WHERE dimensions['channel'] IN ({{ channels }})
GROUP BY dimensions['channel']
ORDER BY -sum(stats['usage_hours'])"""


@pytest.fixture
def page(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True, base_url=server)
    page = context.new_page()
    problems = []

    def console_message(m):
        # A refused query is a 400 from /api/sql, which Chromium logs as a failed resource: expected here.
        if m.type in ("error", "warning") and "status of 400" not in m.text:
            problems.append(m.text)

    page.on("console", console_message)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    assert problems == [], f"the browser reported: {problems}"  # CSP violations and script errors land here


def sql(data, query: str) -> list[list]:
    result = run("sql", "--data", data, "--format", "json", query)
    assert result.exit_code == 0, result.output
    return [list(json.loads(line).values()) for line in result.stdout.splitlines() if line.strip()]


def type_query(page, text: str) -> None:
    page.click(".cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def run_query(page) -> None:
    page.evaluate("document.getElementById('run').removeAttribute('data-rows')")
    page.click("#run")
    page.wait_for_selector("#run[data-rows], #error:not([hidden])", timeout=30000)


def table(page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#result-table tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))"
    )


def test_write_run_chart_and_download_a_query_with_a_parameter(page, demo_data, tmp_path):
    page.goto("/console")
    page.wait_for_selector(".cm-editor")
    page.wait_for_selector("#schema details")  # the sidebar: columns, dimensions with values, stats
    assert "channel" in page.inner_text("#schema")
    type_query(page, FIRST_QUERY)
    page.wait_for_selector(".parameter[data-name=channels]")
    page.select_option(".parameter[data-name=channels] select", "list")
    page.fill(".parameter[data-name=channels] input", "release, beta, nightly")
    # The editor highlights SQL: keywords and strings are their own spans.
    assert page.locator(".cm-content span").count() > 10
    run_query(page)
    assert page.is_hidden("#error")
    written = FIRST_QUERY.replace("{{ channels }}", "'release', 'beta', 'nightly'")
    expected = sql(demo_data, written)
    shown = table(page)
    assert [r[0] for r in shown] == [r[0] for r in expected] == ["release", "beta", "nightly"]
    for got, want in zip(shown, expected, strict=True):
        assert [float(x) for x in got[1:]] == pytest.approx(want[1:], rel=1e-12)
    assert page.inner_text("#status").startswith("3 rows in")

    page.click(".tab[data-tab=chart]")
    page.select_option("#chart-form select[name=type]", "bar")
    page.select_option("#chart-form select[name=x]", "channel")
    page.select_option("#chart-form select[name=y]", ["main_crash_rate", "content_crash_rate"])
    page.wait_for_selector("#chart canvas[data-ready='1'][data-series='2']")
    drawn = page.evaluate(
        """() => { const c = Chart.getChart(document.querySelector('#chart canvas'));
                   return {type: c.config.type, labels: c.data.labels,
                           data: c.data.datasets.map(d => [d.label, d.data])}; }"""
    )
    assert drawn["type"] == "bar" and drawn["labels"] == ["release", "beta", "nightly"]
    assert drawn["data"][0][0] == "main_crash_rate"
    assert drawn["data"][0][1] == pytest.approx([r[2] for r in expected], rel=1e-12)
    assert drawn["data"][1][1] == pytest.approx([r[3] for r in expected], rel=1e-12)
    page.screenshot(path=str(IMAGES / "console.png"), full_page=True)

    page.select_option("#chart-form select[name=type]", "number")
    page.select_option("#chart-form select[name=y]", ["usage_hours"])
    assert float(page.inner_text("#chart .single-number .value").replace(",", "")) == pytest.approx(
        expected[0][1], rel=1e-3
    )

    with page.expect_download() as info:
        page.click("#download-form button[value=csv]")
    target = tmp_path / "answer.csv"
    info.value.save_as(target)
    rows = list(csv.reader(target.open()))
    assert rows[0] == ["channel", "usage_hours", "main_crash_rate", "content_crash_rate"]
    assert [r[0] for r in rows[1:]] == ["release", "beta", "nightly"]


def test_a_big_answer_pages_and_says_it_was_cut(page):
    page.goto("/console")
    page.wait_for_selector(".cm-editor")
    type_query(page, "SELECT submission_date, activity_date, dimensions['os_name'] AS os FROM crash_aggregates")
    run_query(page)
    assert page.inner_text("#page-info") == "rows 1–50 of 10,000"
    assert "only the first 10,000 rows are shown (the row cap)" in page.inner_text("#cut")
    page.click("#pager button:has-text('next')")
    assert page.inner_text("#page-info") == "rows 51–100 of 10,000"


@pytest.mark.parametrize(
    ("query", "words", "where"),
    [
        ("SELECT *\nFROM read_csv('/etc/passwd')", "read_csv() at line 2, column 6 is refused", (2, 6)),
        ("SELECT * FROM '/etc/passwd'", "the file path '/etc/passwd' at line 1, column 15 is refused", (1, 15)),
        ("COPY crash_aggregates TO '/tmp/leak.csv'", "COPY statements are refused", None),
        ("ATTACH '/tmp/other.db' AS other", "ATTACH statements are refused", None),
    ],
)
def test_the_fences_through_the_console(page, query, words, where):
    page.goto("/console")
    page.wait_for_selector(".cm-editor")
    type_query(page, query)
    run_query(page)
    assert words in page.inner_text("#error")
    if where:  # the editor marks the place the message names
        page.wait_for_selector(".cm-lintRange-error")
        line = page.locator(".cm-line").nth(where[0] - 1)
        assert page.locator(".cm-lintRange-error").first.text_content() in line.text_content()
    if "passwd" in query:
        page.screenshot(path=str(IMAGES / "console-refused.png"))


# -- the team's flow: save, dashboard, parameter, export/import, a viewer -------------------------

CHANNEL_QUERY = FIRST_QUERY.replace("IN ({{ channels }})", "= {{ channel }}")
PASSWORDS = {"nina": "nina-password-1", "victor": "victor-password-2"}


def add_user(state, name: str, role: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crash_aggregates.cli", "users", "add", name, "--role", role, "--password-stdin",
         "--state", str(state)],
        input=PASSWORDS[name] + "\n", capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def signed_in(browser, base: str, name: str | None):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=base)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    if name:
        page.goto("/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORDS[name])
        page.click("form.login button")
        page.wait_for_url("**/overview")
    return context, page, problems


def widget_chart(page, index: int = 0) -> dict:
    page.wait_for_selector(f"#board .widget[data-index='{index}'][data-ready='1']", timeout=30000)
    return page.evaluate(
        """i => { const c = Chart.getChart(document.querySelector(`#board .widget[data-index="${i}"] canvas`));
                  return {type: c.config.type, labels: c.data.labels,
                          data: c.data.datasets.map(d => [d.label, d.data])}; }""",
        index,
    )


def test_a_team_saves_a_query_puts_it_on_a_dashboard_and_moves_it_to_another_server(browser, demo_data, tmp_path):  # noqa: F811
    state, fresh = tmp_path / "team.sqlite3", tmp_path / "fresh.sqlite3"
    add_user(state, "nina", "editor")
    add_user(state, "victor", "viewer")
    expected = {c: sql(demo_data, CHANNEL_QUERY.replace("{{ channel }}", f"'{c}'")) for c in ("release", "beta")}
    with serving(demo_data, "--state", str(state)) as base:
        context, page, problems = signed_in(browser, base, "nina")
        # The console: the README's first query with a channel parameter, run and charted.
        page.goto("/console")
        page.wait_for_selector(".cm-editor")
        type_query(page, CHANNEL_QUERY)
        page.wait_for_selector(".parameter[data-name=channel]")
        page.fill(".parameter[data-name=channel] input", "release")
        run_query(page)
        assert [r[0] for r in table(page)] == ["release"]
        page.click(".tab[data-tab=chart]")
        page.select_option("#chart-form select[name=type]", "bar")
        page.select_option("#chart-form select[name=x]", "channel")
        page.select_option("#chart-form select[name=y]", ["main_crash_rate"])
        page.wait_for_selector("#chart canvas[data-ready='1']")
        # Saved: a stable URL, where it runs again with its parameter and chart.
        page.fill("#save-new input[name=name]", "Crash rates by channel")
        page.click("#save-new button")
        page.wait_for_url(re.compile(r".*/queries/\d+$"))
        query_url = page.url
        page.wait_for_selector("#chart canvas[data-ready='1']")
        assert page.input_value("#query-name") == "Crash rates by channel"
        # On a new dashboard, whose channel parameter feeds the query.
        page.fill("#new-dashboard-name", "Stability team")
        page.click("#add-to-dashboard")
        page.wait_for_url(re.compile(r".*/dashboards/\d+$"))
        board_url = page.url
        drawn = widget_chart(page)
        assert drawn["type"] == "bar" and drawn["labels"] == ["release"]
        assert drawn["data"][0][1] == pytest.approx([expected["release"][0][2]], rel=1e-12)
        # The dashboard's parameter changes the chart, and the URL says so.
        page.fill("#board-parameters input[name=channel]", "beta")
        page.click("#board-parameters button")
        page.wait_for_url("**?channel=beta")
        drawn = widget_chart(page)
        assert drawn["labels"] == ["beta"]
        assert drawn["data"][0][1] == pytest.approx([expected["beta"][0][2]], rel=1e-12)
        page.screenshot(path=str(IMAGES / "console-dashboard.png"), full_page=True)
        context.close()
        assert problems == []

        # A viewer sees it all and changes nothing.
        context, page, problems = signed_in(browser, base, "victor")
        page.goto(board_url + "?channel=beta")
        assert widget_chart(page)["labels"] == ["beta"]
        assert page.locator("#board-edit").count() == 0 and page.locator(".remove-widget").count() == 0
        page.goto(query_url)
        page.wait_for_selector("#chart canvas[data-ready='1']")
        assert page.locator("#save").count() == 0 and page.locator("#query-name").count() == 0
        refused = page.evaluate(
            """url => fetch('/api/queries/' + url.split('/').pop(), {method: 'PUT', credentials: 'same-origin',
                 headers: {'Content-Type': 'application/json', 'X-CSRF-Token': document.querySelector('[data-csrf]').dataset.csrf},
                 body: JSON.stringify({name: 'mine now'})}).then(r => r.status)""",
            query_url,
        )
        assert refused == 403
        context.close()
        assert [p for p in problems if "status of 403" not in p] == []

    # Exported to files, imported on a fresh state file: the same dashboard.
    files = tmp_path / "files"
    for command in (["export", str(files), "--state", str(state)], ["import", str(files), "--state", str(fresh)]):
        result = run("queries", *command)
        assert result.exit_code == 0, result.output
    board_file = next((files / "dashboards").glob("*.toml")).read_text()
    assert "Stability team" in board_file and "[parameters.channel]" in board_file
    with serving(demo_data, "--state", str(fresh)) as base:
        context, page, problems = signed_in(browser, base, None)  # no users there: the local user
        page.goto("/dashboards")
        page.click("#dashboard-list a:has-text('Stability team')")
        page.wait_for_url(re.compile(r".*/dashboards/\d+$"))
        assert widget_chart(page)["labels"] == ["release"]
        page.fill("#board-parameters input[name=channel]", "beta")
        page.click("#board-parameters button")
        page.wait_for_url("**?channel=beta")
        drawn = widget_chart(page)
        assert drawn["labels"] == ["beta"]
        assert drawn["data"][0][1] == pytest.approx([expected["beta"][0][2]], rel=1e-12)
        context.close()
        assert problems == []


def test_edit_versions_restore_and_fork_a_saved_query(browser, demo_data, tmp_path):  # noqa: F811
    with serving(demo_data, "--state", str(tmp_path / "state.sqlite3")) as base:
        context, page, problems = signed_in(browser, base, None)
        page.goto("/console?sql=" + "SELECT 1 AS one")
        page.wait_for_selector(".cm-editor")
        page.fill("#save-new input[name=name]", "One")
        page.click("#save-new button")
        page.wait_for_url(re.compile(r".*/queries/\d+$"))
        query_url = page.url
        page.wait_for_selector("#run[data-rows]")
        type_query(page, "SELECT 2 AS two")
        page.fill("#query-description", "now two")
        page.click("#save")
        page.wait_for_selector("#save-status:has-text('saved: version 2')")
        page.goto(query_url + "/versions")
        assert page.eval_on_selector_all("#versions tbody tr td:nth-child(4)", "tds => tds.map(t => t.textContent)") == [
            "edited", "created",
        ]  # fmt: skip
        page.click("#versions a:text-is('1')")
        assert page.inner_text("#version-sql") == "SELECT 1 AS one"
        page.screenshot(path=str(IMAGES / "console-version.png"))
        page.click("#restore")
        page.wait_for_url(query_url)
        page.wait_for_selector("#run[data-rows]")
        assert table(page) == [["1"]]
        assert "version 3" in page.inner_text(".meta")
        page.click("#fork")
        page.wait_for_url(lambda url: url != query_url and re.search(r"/queries/\d+$", url))
        assert page.input_value("#query-name") == "One (fork)"
        assert "forked from" in page.inner_text(".meta")
        page.goto("/queries?search=fork")
        assert page.eval_on_selector_all("#query-list tbody a", "as => as.map(a => a.textContent)") == ["One (fork)"]
        context.close()
        assert problems == []


def test_a_list_parameter_chosen_among_a_querys_values(browser, demo_data, tmp_path):  # noqa: F811
    options = "SELECT DISTINCT dimensions['channel'] FROM crash_aggregates ORDER BY 1"
    channels = [r[0] for r in sql(demo_data, options)]
    spec = {"type": "list", "default": ["release"], "options_query": options}
    with serving(demo_data, "--state", str(tmp_path / "state.sqlite3")) as base:
        context, page, problems = signed_in(browser, base, None)
        page.goto("/console")  # the browser's cookie and CSRF token, then the API as the page's scripts use it
        token = page.get_attribute("#console", "data-csrf")

        def post(url, body):
            r = page.request.post(
                url, data=json.dumps(body), headers={"Content-Type": "application/json", "X-CSRF-Token": token}
            )
            assert r.ok, r.text()
            return r.json()

        query = post("/api/queries", {
            "name": "Rates of some channels", "sql": FIRST_QUERY, "parameters": {"channels": spec},
            "chart": {"type": "bar", "x": "channel", "y": ["main_crash_rate"]},
        })  # fmt: skip
        board = post("/api/dashboards", {
            "name": "Channels", "parameters": {"channels": spec}, "widgets": [{"type": "query", "query": query["id"]}],
        })  # fmt: skip
        # In the console: the list's field and a checkbox per value of the options query.
        page.goto(f"/queries/{query['id']}")
        page.wait_for_selector(".parameter[data-name=channels] .choices input")
        boxes = page.locator(".parameter[data-name=channels] .choices input")
        assert [boxes.nth(i).get_attribute("value") for i in range(boxes.count())] == channels
        page.check(".parameter[data-name=channels] .choices input[value=beta]")
        assert (
            page.input_value(".parameter[data-name=channels] input[name=value]") == "beta, release"
        )  # in the choices' order
        # On the dashboard: checkboxes too, and the URL names each value chosen.
        page.goto(f"/dashboards/{board['id']}")
        page.wait_for_selector("fieldset.choices[data-ready='1']")
        assert widget_chart(page)["labels"] == ["release"]
        page.check("fieldset.choices input[value=beta]")
        page.check("fieldset.choices input[value=nightly]")
        page.uncheck("fieldset.choices input[value=release]")
        page.click("#board-parameters button")
        page.wait_for_url("**?channels=beta&channels=nightly")
        drawn = widget_chart(page)
        expected = sql(demo_data, FIRST_QUERY.replace("{{ channels }}", "'beta', 'nightly'"))
        assert drawn["labels"] == [r[0] for r in expected]
        assert drawn["data"][0][1] == pytest.approx([r[2] for r in expected], rel=1e-12)
        context.close()
        assert problems == []


def test_the_starter_dashboard_of_examples_draws_every_widget(browser, demo_data, tmp_path):  # noqa: F811
    state = tmp_path / "state.sqlite3"
    result = run("queries", "import", "examples", "--state", str(state))
    assert result.exit_code == 0, result.output
    with serving(demo_data, "--state", str(state)) as base:
        context, page, problems = signed_in(browser, base, None)
        page.goto("/dashboards")
        page.click("#dashboard-list a:has-text('Stability')")
        page.wait_for_url(re.compile(r".*/dashboards/\d+$"))
        widgets = page.locator("#board .widget.query")
        assert widgets.count() == 3
        for i in range(page.locator("#board .widget").count()):
            if "query" in page.get_attribute(f"#board .widget[data-index='{i}']", "class"):
                page.wait_for_selector(f"#board .widget[data-index='{i}'][data-ready='1']", timeout=30000)
        page.fill("#board-parameters input[name=channel]", "nightly")
        page.click("#board-parameters button")
        page.wait_for_url("**?channel=nightly")
        page.wait_for_selector("#board .widget.query[data-ready='1'] >> nth=2", timeout=30000)
        assert page.locator("#board .widget.query .bad").count() == 0
        page.screenshot(path=str(IMAGES / "console-starter-dashboard.png"), full_page=True)
        context.close()
        assert problems == []
