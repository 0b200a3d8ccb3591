"""Saved queries and dashboards as files: export, import on a fresh state, idempotence, refusals, examples/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import REPO, run

from crash_aggregates import queries, queryfiles, users
from crash_aggregates.queryfiles import QueryFileError, import_folder
from crash_aggregates.state import open_state

# Contents chosen to trip a naive writer: quotes, backslashes, a TOML-looking line in the SQL,
# a multi-line description (one with ''' in it), nested parameter defaults, unicode, booleans and numbers.
QUERIES = [
    {
        "name": 'Rates "by channel"',
        "description": "Line one.\n   \n\nLine 'two' with a \\ backslash,\n\tindented.",
        "sql": "SELECT dimensions['channel'] AS channel -- +++\nFROM crash_aggregates\nWHERE x = {{ channel }}",
        "dialect": "presto",
        "parameters": {
            "channel": {"type": "list", "default": ["release", "beta"], "options_query": "channels"},
            "days": {"type": "date_range", "default": {"start": "2016-03-09", "end": "2016-03-15"}},
            "n": {"type": "number", "default": 2.5},
        },
        "chart": {"type": "line", "x": "channel", "y": ["a", "b"], "series": "os", "stacked": True, "height": 300},
        "tags": ["stabilité", "a,b"],
    },
    {
        "name": "Plain",
        "description": "has ''' inside\nand two lines",
        "sql": "SELECT 1",
        "dialect": "duckdb",
        "parameters": {},
        "chart": {},
        "tags": [],
    },
]


@pytest.fixture
def db(tmp_path):
    connection = open_state(tmp_path / "state.sqlite3")
    yield connection
    connection.close()


def fresh(tmp_path, name: str):
    return open_state(tmp_path / name)


def fill(db) -> tuple[list, queries.Dashboard]:
    saved = [queries.create_query(db, q, "alice") for q in QUERIES]
    board = queries.create_dashboard(
        db,
        {
            "name": "Stability",
            "description": "Two\nlines",
            "parameters": {"channel": {"type": "list", "default": ["beta"]}},
            "widgets": [
                {"type": "text", "text": "Read me\n'''first'''", "x": 0, "y": 0, "w": 12, "h": 1},
                {"type": "query", "query": saved[1].id, "x": 0, "y": 1, "w": 6, "h": 4, "title": "Ones"},
                {"type": "query", "query": saved[0].id, "x": 6, "y": 1, "w": 6, "h": 4},
            ],
            "tags": ["team"],
        },
        "alice",
    )
    return saved, board


def content(item) -> dict:
    kind = queries.QUERIES if isinstance(item, queries.SavedQuery) else queries.DASHBOARDS
    return {f: getattr(item, f) for f in kind.fields}


def test_export_then_import_on_a_fresh_state_gives_the_same_queries_and_dashboards(db, tmp_path):
    saved, board = fill(db)
    written = queryfiles.export(db, tmp_path / "files")
    assert sorted(Path(p).name for p in written.written) == [
        "plain.sql", "rates-by-channel.sql", "stability.toml",
    ]  # fmt: skip
    other = fresh(tmp_path, "other.sqlite3")
    try:
        done = import_folder(other, tmp_path / "files", "bob")
        assert (len(done.created), done.updated, done.unchanged) == (3, [], [])
        for query in saved:
            copy = queries.get_query(other, query.slug)
            assert content(copy) == content(query) and copy.author == "bob"
        copy = queries.get_dashboard(other, board.slug)
        by_slug = {q.id: q.slug for q in queries.list_queries(other)}
        assert [by_slug.get(w.get("query")) for w in copy.widgets] == [None, "plain", "rates-by-channel"]
        original = {q.id: q.slug for q in saved}
        assert [{**w, "query": by_slug[w["query"]]} if "query" in w else w for w in copy.widgets] == [
            {**w, "query": original[w["query"]]} if "query" in w else w for w in board.widgets
        ]
        assert {k: v for k, v in content(copy).items() if k != "widgets"} == {
            k: v for k, v in content(board).items() if k != "widgets"
        }
        # and the fresh state exports the same bytes
        queryfiles.export(other, tmp_path / "again")
        for path in sorted((tmp_path / "files").rglob("*.*")):
            assert (tmp_path / "again" / path.relative_to(tmp_path / "files")).read_text() == path.read_text()
    finally:
        other.close()


def test_a_second_import_changes_nothing_and_says_so(db, tmp_path):
    fill(db)
    queryfiles.export(db, tmp_path / "files")
    done = import_folder(db, tmp_path / "files", "bob")  # into the state it came from
    assert (done.created, done.updated, len(done.unchanged), done.changed) == ([], [], 3, False)
    assert all(len(queries.query_versions(db, q.id)) == 1 for q in queries.list_queries(db))
    again = run("queries", "import", tmp_path / "files", "--state", tmp_path / "state.sqlite3")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "0 created, 0 updated, 3 unchanged: nothing to change, the state already matches the files"
    ]
    exported = run("queries", "export", tmp_path / "files", "--state", tmp_path / "state.sqlite3")
    assert exported.stdout.splitlines() == [f"0 file(s) written, 3 unchanged, in {tmp_path / 'files'}"]


def test_an_edited_file_becomes_a_new_version(db, tmp_path):
    saved, _ = fill(db)
    queryfiles.export(db, tmp_path / "files")
    path = tmp_path / "files" / "queries" / "plain.sql"
    path.write_text(path.read_text().replace("SELECT 1", "SELECT 2").replace('name = "Plain"', 'name = "Two"'))
    done = import_folder(db, tmp_path / "files", "bob")
    assert done.updated == [("query", "plain")] and len(done.unchanged) == 2
    query = queries.get_query(db, "plain")
    assert (query.sql, query.name, query.version, query.updated_by) == ("SELECT 2", "Two", 2, "bob")
    assert [v.note for v in queries.query_versions(db, "plain")] == ["created", "imported"]


def test_a_dry_run_changes_nothing(db, tmp_path):
    fill(db)
    queryfiles.export(db, tmp_path / "files")
    other = fresh(tmp_path, "other.sqlite3")
    try:
        done = import_folder(other, tmp_path / "files", "bob", dry_run=True)
        assert len(done.created) == 3 and queries.list_queries(other) == [] and queries.list_dashboards(other) == []
    finally:
        other.close()
    result = run("queries", "import", tmp_path / "files", "--dry-run", "--state", tmp_path / "x.sqlite3")
    assert "would create query plain" in result.stdout and "(dry run: nothing was changed)" in result.stdout


@pytest.mark.parametrize(
    "files, message",
    [
        ({"queries/a.sql": "-- +++\n-- name = \n-- +++\nSELECT 1"}, "queries/a.sql: the header is not valid TOML"),
        ({"queries/a.sql": "-- +++\n-- name = 'A'\nSELECT 1"}, "has no closing '-- +++'"),
        ({"queries/a.sql": "-- +++\n-- name = 'A'\nname2 = 1\n-- +++\nSELECT 1"}, "must start with '-- '"),
        ({"queries/a.sql": "-- +++\n-- owner = 'me'\n-- +++\nSELECT 1"}, "unknown key(s) owner"),
        ({"queries/a.sql": "-- +++\n-- name = 'A'\n-- dialect = 'mysql'\n-- +++\nSELECT 1"}, "unknown dialect"),
        ({"queries/Bad Name.sql": "SELECT 1"}, "the file name must be a slug"),
        ({"dashboards/d.toml": 'name = "D"\n[[widgets]]\ntype = "query"\nquery = "missing"\n'},
         "dashboards/d.toml: no query 'missing'"),
        ({"a.sql": "SELECT 1", "queries/a.sql": "SELECT 2"}, "a query named 'a' is in"),
        ({"notes.txt": "hello"}, "no query (*.sql"),
    ],
)  # fmt: skip
def test_a_bad_file_is_named_and_nothing_is_imported(db, tmp_path, files, message):
    folder = tmp_path / "files"
    if "notes.txt" not in files:  # a good file beside the bad one: it must not be imported either
        files = {"queries/good.sql": "-- +++\n-- name = 'Good'\n-- +++\nSELECT 1\n", **files}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    with pytest.raises(QueryFileError, match=re.escape(message)):
        import_folder(db, folder, "bob")
    assert queries.list_queries(db) == []  # all or nothing: the good file is not in either


def test_the_cli_refuses_a_bad_folder_with_one_line(tmp_path):
    result = run("queries", "import", tmp_path / "none", "--state", tmp_path / "s.sqlite3")
    assert result.exit_code == 2 and "is not a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_exported_files_hold_no_secret(db, tmp_path):
    users.add(db, "alice", "admin", "a secret password")
    token = users.new_token(db, "alice")
    fill(db)
    queryfiles.export(db, tmp_path / "files")
    everything = "".join(p.read_text() for p in (tmp_path / "files").rglob("*.*"))
    assert token not in everything and "argon2" not in everything and "a secret password" not in everything
    assert "alice" not in everything  # not even who wrote them


def test_the_examples_are_a_starter_set(tmp_path):
    state = tmp_path / "state.sqlite3"
    result = run("queries", "import", REPO / "examples", "--state", state)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "4 created, 0 updated, 0 unchanged"
    db = open_state(state)
    try:
        board = queries.get_dashboard(db, "stability")
        slugs = {q.id: q.slug for q in queries.list_queries(db)}
        assert [slugs[i] for i in board.query_ids()] == [
            "crash_rates_by_channel", "daily_crash_rate", "regression_by_build",
        ]  # fmt: skip
        daily = queries.get_query(db, "daily_crash_rate")
        assert daily.parameters == {"channel": {"type": "text", "default": "release"}}
        assert queries.widget_parameters(daily, board, {"channel": "nightly"}) == {"channel": "nightly"}
        assert queries.get_query(db, "crash_rates_by_channel").chart["type"] == "bar"
    finally:
        db.close()
    # exporting the starter set gives back the examples' own files
    run("queries", "export", tmp_path / "out", "--state", state)
    for name in ("queries/daily_crash_rate.sql", "dashboards/stability.toml"):
        assert (tmp_path / "out" / name).read_text() == (REPO / "examples" / name).read_text()
    for name in ("crash_rates_by_channel.sql", "regression_by_build.sql"):
        assert (tmp_path / "out" / "queries" / name).read_text() == (REPO / "examples" / name).read_text()


def test_a_plain_sql_file_takes_its_name_from_its_first_comment(tmp_path):
    assert queryfiles.parse_query("-- Rates: per channel\nSELECT 1\n", "rates.sql") == {
        "name": "Rates",
        "description": "per channel",
        "sql": "-- Rates: per channel\nSELECT 1\n",
    }
    assert queryfiles.parse_query("SELECT 1", "x/ones.sql")["name"] == "ones"
