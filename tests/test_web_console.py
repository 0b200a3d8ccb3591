"""The console over HTTP: POST /api/sql against `crash-aggregates sql`, its refusals, streaming, downloads, the line.

Every answer is compared with what the `sql` command gives for the same
query with the values written in by hand.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from helpers import run
from starlette.testclient import TestClient

from crash_aggregates.config import default_config, parse_config
from crash_aggregates.web.app import create_app
from crash_aggregates.web.query_queue import Busy, QueryQueue

#: The original README's first query: crash rates per channel, by usage hours.
FIRST_QUERY = """SELECT dimensions['channel'] AS channel,
       sum(stats['usage_hours']) AS usage_hours,
       1000 * sum(stats['main_crashes']) / sum(stats['usage_hours']) AS main_crash_rate,
       1000 * sum(stats['content_crashes']) / sum(stats['usage_hours']) AS content_crash_rate
FROM crash_aggregates
WHERE dimensions['channel'] IN ({{ channels }}) AND submission_date BETWEEN {{ days.start }} AND {{ days.end }}
GROUP BY dimensions['channel']
ORDER BY -sum(stats['usage_hours'])"""
WRITTEN = (
    FIRST_QUERY.replace("{{ channels }}", "'release', 'nightly'")
    .replace("{{ days.start }}", "DATE '2016-03-10'")
    .replace("{{ days.end }}", "DATE '2016-03-13'")
)
PARAMETERS = {"channels": ["release", "nightly"], "days": {"start": "2016-03-10", "end": "2016-03-13"}}


def browser_like(c: TestClient) -> TestClient:
    """The client as a page's script is: the browser cookie, and the CSRF token the page was given."""
    c.headers["X-CSRF-Token"] = c.get("/api/me").json()["csrf_token"]
    return c


@pytest.fixture(scope="module")
def client(demo_data):
    with TestClient(create_app(str(demo_data), default_config())) as c:
        yield browser_like(c)


def test_a_post_from_a_browser_without_its_csrf_token_is_refused(demo_data):
    with TestClient(create_app(str(demo_data), default_config())) as c:
        c.get("/console")  # the browser's cookie
        r = c.post("/api/sql", json={"sql": "SELECT 1 AS one"})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
        assert browser_like(c).post("/api/sql", json={"sql": "SELECT 1 AS one"}).json()["rows"] == [[1]]


def sql(data, query: str) -> list[list]:
    result = run("sql", "--data", data, "--format", "json", query)
    assert result.exit_code == 0, result.output
    return [list(json.loads(line).values()) for line in result.stdout.splitlines() if line.strip()]


def same(rows: list[list], expected: list[list]) -> bool:
    """Equal rows; floats to 12 digits (sums may add up in another order)."""
    return len(rows) == len(expected) and all(
        len(a) == len(b)
        and all(x == (pytest.approx(y, rel=1e-12) if isinstance(y, float) else y) for x, y in zip(a, b, strict=True))
        for a, b in zip(rows, expected, strict=True)
    )


def test_api_sql_answers_what_sql_answers(client, demo_data):
    r = client.post("/api/sql", json={"sql": FIRST_QUERY, "dialect": "presto", "parameters": PARAMETERS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["channel", "usage_hours", "main_crash_rate", "content_crash_rate"]
    assert [row[0] for row in body["rows"]] == ["release", "nightly"]
    assert same(body["rows"], sql(demo_data, WRITTEN))
    assert body["cut"] is None and body["row_count"] == 2


def test_duckdb_dialect(client, demo_data):
    query = "SELECT dimensions['channel'] AS c, count(*) // 2 AS half FROM crash_aggregates GROUP BY ALL ORDER BY 1"
    r = client.post("/api/sql", json={"sql": query, "dialect": "duckdb"})
    assert r.status_code == 200, r.text
    expected = sql(
        demo_data, "SELECT dimensions['channel'] AS c, count(*) / 2 AS half FROM crash_aggregates GROUP BY 1 ORDER BY 1"
    )
    assert r.json()["rows"] == expected


def test_injection_through_a_parameter_is_a_value(client):
    query = "SELECT count(*) AS n FROM crash_aggregates WHERE dimensions['channel'] = {{ c }}"
    for attempt in ("x' OR '1'='1", "x'); ATTACH '/tmp/evil.db' AS e; --"):
        r = client.post("/api/sql", json={"sql": query, "parameters": {"c": attempt}})
        assert r.status_code == 200 and r.json()["rows"] == [[0]], r.text


REFUSED = [
    # (body, words of the one-line error, (line, column) or None)
    ({"sql": "SELECT * FROM read_csv('/etc/passwd')"}, "read_csv() at line 1, column 15 is refused", (1, 15)),
    ({"sql": "SELECT * FROM '/etc/passwd'"}, "the file path '/etc/passwd' at line 1, column 15 is refused", (1, 15)),
    ({"sql": "SELECT * FROM read_text('/etc/passwd')", "dialect": "duckdb"}, "read_text() at line 1, column 15 is refused", (1, 15)),
    ({"sql": "COPY crash_aggregates TO '/tmp/leak.csv'"}, "COPY statements are refused", None),
    ({"sql": "ATTACH '/tmp/other.db' AS other"}, "ATTACH statements are refused", None),
    ({"sql": "INSTALL httpfs", "dialect": "duckdb"}, "INSTALL statements are refused", None),
    ({"sql": "SELECT 1; SELECT 2"}, "only one statement at a time: a second statement starts at line 1, column 11", (1, 11)),
    ({"sql": "SELECT nosuch\nFROM crash_aggregates"}, "unknown column nosuch at line 1, column 8", (1, 8)),
    ({"sql": "SELECT {{ a }}"}, "parameter a has no value", None),
    ({"sql": "SELECT {{ a }}", "parameters": {"a": {"type": "number", "value": "1 OR 1=1"}}}, "is not a number", None),
    ({"sql": "SELECT 1", "dialect": "mysql"}, "dialect: one of presto, duckdb", None),
    ({"sql": ""}, "sql: give the query", None),
    ({"query": "SELECT 1"}, "sql: give the query", None),
]  # fmt: skip


@pytest.mark.parametrize(("body", "words", "where"), REFUSED)
def test_refused_or_wrong_queries_get_a_400_with_one_line(client, body, words, where):
    r = client.post("/api/sql", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert words in error and "\n" not in error and "Traceback" not in error
    assert (r.json().get("line"), r.json().get("column")) == (where or (None, None))


def test_a_body_that_is_not_json(client):
    r = client.post("/api/sql", content=b"SELECT 1", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "the body is not JSON"}


def test_streamed_answer_comes_in_pages_and_says_where_the_cap_cut(demo_data):
    config = parse_config({"dashboard": {"console_max_rows": 1200}})
    with TestClient(create_app(str(demo_data), config)) as c:
        browser_like(c)
        r = c.post("/api/sql", json={"sql": "SELECT * FROM crash_aggregates", "stream": True})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.text.splitlines()]
        assert lines[0] == {"running": True}
        assert lines[1]["columns"] == ["submission_date", "activity_date", "dimensions", "stats"]
        pages = [line["rows"] for line in lines if "rows" in line]
        assert [len(p) for p in pages] == [500, 500, 200]
        done = lines[-1]
        assert done["done"] and done["row_count"] == 1200 and "first 1,200 rows" in done["cut"]
        whole = c.post("/api/sql", json={"sql": "SELECT * FROM crash_aggregates"}).json()
        assert whole["rows"] == [row for p in pages for row in p] and whole["cut"] == done["cut"]


def test_streamed_error_is_a_line(client):
    r = client.post("/api/sql", json={"sql": "SELECT CAST('x' AS INTEGER) AS n", "stream": True})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert "error" in lines[-1] and "\n" not in lines[-1]["error"]


def test_time_limit_is_a_400(demo_data):
    config = parse_config({"dashboard": {"console_timeout": 0.3}})
    with TestClient(create_app(str(demo_data), config)) as c:
        browser_like(c)
        slow = "SELECT count(*) FROM crash_aggregates a, crash_aggregates b, crash_aggregates c"
        r = c.post("/api/sql", json={"sql": slow})
        assert r.status_code == 400 and "time limit of 0.3 s" in r.json()["error"]
        assert c.post("/api/sql", json={"sql": "SELECT 1 AS one"}).json()["rows"] == [[1]]  # its place was given back


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_downloads(client, demo_data, fmt):
    form = {"sql": FIRST_QUERY, "dialect": "presto", "parameters": json.dumps(PARAMETERS), "format": fmt}
    r = client.post("/api/sql/download", data=form)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="query.{fmt}"'
    expected = sql(demo_data, WRITTEN)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["channel", "usage_hours", "main_crash_rate", "content_crash_rate"]
        found = [[row[0], *map(float, row[1:])] for row in rows[1:]]
    elif fmt == "json":
        found = [list(json.loads(line).values()) for line in r.text.splitlines()]
    else:
        found = [list(row.values()) for row in pq.read_table(io.BytesIO(r.content)).to_pylist()]
    assert same(found, expected)


def test_download_refuses_like_the_api(client):
    r = client.post("/api/sql/download", data={"sql": "COPY crash_aggregates TO '/tmp/x'", "format": "csv"})
    assert r.status_code == 400 and "COPY statements are refused" in r.json()["error"]
    r = client.post("/api/sql/download", data={"sql": "SELECT 1", "format": "xlsx"})
    assert r.status_code == 400 and "format" in r.json()["error"]


def test_schema(client, demo_data):
    r = client.get("/api/schema")
    assert r.status_code == 200
    body = r.json()
    keys = [d["key"] for d in body["dimensions"]]
    assert "channel" in keys and "os_name" in keys
    assert body["stats"] == default_config().stat_columns()
    channels = next(d for d in body["dimensions"] if d["key"] == "channel")["values"]
    expected = sql(
        demo_data,
        f"SELECT dimensions['channel'], count(*) FROM crash_aggregates WHERE submission_date >= DATE '{body['since']}' "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    assert [[v["value"], v["aggregates"]] for v in channels] == expected


def test_console_page(client):
    r = client.get("/console?sql=SELECT+1")
    assert r.status_code == 200
    assert 'data-initial="SELECT 1"' in r.text
    assert "/static/vendor/codemirror.min.js" in r.text and "<script>" not in r.text
    assert client.get("/static/vendor/codemirror.min.js").status_code == 200


# -- the line -------------------------------------------------------------------------


def test_the_line_runs_n_at_once_first_come_first_served():
    async def scenario():
        queue = QueryQueue(running=2, waiting=3)
        log, running, most = [], 0, 0
        gates = {i: asyncio.Event() for i in range(5)}

        async def query(i):
            nonlocal running, most
            seen = []

            async def waited(position):
                seen.append(position)

            async with queue.turn(waited):
                running += 1
                most = max(most, running)
                log.append(i)
                await gates[i].wait()
                running -= 1
            return seen

        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(query(i)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert log == [0, 1] and queue.waiting == 3
        with pytest.raises(Busy, match="2 queries running and 3 waiting"):
            async with queue.turn():
                pass
        for i in range(5):
            gates[i].set()
            await asyncio.sleep(0.01)
        positions = await asyncio.gather(*tasks)
        return log, most, positions, queue.running, queue.waiting

    log, most, positions, running, waiting = asyncio.run(scenario())
    assert log == [0, 1, 2, 3, 4] and most == 2 and (running, waiting) == (0, 0)
    assert positions == [[], [], [1], [2, 1], [3, 2, 1]]


def test_a_waiter_that_leaves_gives_its_place_up():
    async def scenario():
        queue = QueryQueue(running=1, waiting=5)
        hold = asyncio.Event()

        async def first():
            async with queue.turn():
                await hold.wait()

        async def second():
            async with queue.turn():
                return "ran"

        a = asyncio.create_task(first())
        await asyncio.sleep(0)
        b = asyncio.create_task(second())
        await asyncio.sleep(0.01)
        assert queue.waiting == 1
        b.cancel()
        await asyncio.sleep(0.01)
        assert queue.waiting == 0
        hold.set()
        await a
        c = await asyncio.create_task(second())
        return c, queue.running

    assert asyncio.run(scenario()) == ("ran", 0)


def test_saved_query_and_dashboard_pages(client):
    query = client.post("/api/queries", json={"name": "Per channel", "sql": "SELECT dimensions['channel'] AS c FROM crash_aggregates WHERE dimensions['channel'] = {{ channel }}",
                                             "parameters": {"channel": {"type": "text", "default": "beta"}}}).json()  # fmt: skip
    board = client.post("/api/dashboards", json={"name": "Board", "parameters": {"channel": {"type": "text", "default": "release"}},
                                                 "widgets": [{"type": "query", "query": query["id"]}, {"type": "text", "text": "<b>hi</b>"}]}).json()  # fmt: skip
    for url in ("/queries", f"/queries/{query['id']}", f"/queries/{query['slug']}", f"/queries/{query['id']}/versions",
                f"/queries/{query['id']}/versions/1", "/dashboards", f"/dashboards/{board['id']}"):  # fmt: skip
        assert client.get(url).status_code == 200, url
    page = client.get(f"/dashboards/{board['id']}?channel=nightly").text
    data = json.loads(page.split('<script type="application/json" id="board-data">')[1].split("</script>")[0])
    assert data["widgets"][0]["query"]["parameters"] == {"channel": "nightly"}  # the URL's value wins
    assert "&lt;b&gt;hi&lt;/b&gt;" in page and "<b>hi</b>" not in page  # text blocks are text
    default = client.get(f"/dashboards/{board['id']}").text
    assert '"parameters": {"channel": "release"}' in default  # else the dashboard's default
    for url in ("/queries/999", "/queries/no-such-query", f"/queries/{query['id']}/versions/7", "/dashboards/999"):
        r = client.get(url)
        assert r.status_code == 404 and "Traceback" not in r.text, url
