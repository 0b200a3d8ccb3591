"""queries.py against a real state file: saving, versions, restore, fork, search, conflicts, dashboards."""

from __future__ import annotations

import pytest

from crash_aggregates import queries
from crash_aggregates.queries import (
    Conflict,
    InvalidItem,
    NotFound,
    create_dashboard,
    create_query,
    fork_query,
    get_dashboard,
    get_query,
    list_queries,
    query_version,
    query_versions,
    restore_query,
    update_dashboard,
    update_query,
)
from crash_aggregates.state import open_state

RATES = {
    "name": "Crash rates by channel",
    "description": "Main crashes per 1,000 usage hours.",
    "sql": "SELECT dimensions['channel'] AS channel, 1000 * sum(stats['main_crashes']) / sum(stats['usage_hours'])\n"
    "FROM crash_aggregates WHERE dimensions['channel'] = {{ channel }} GROUP BY 1",
    "parameters": {"channel": {"type": "text", "default": "release"}},
    "chart": {"type": "bar", "x": "channel", "y": ["_col1"]},
    "tags": ["stability", "channel"],
}
BUILDS = {
    "name": "Nightly builds",
    "sql": "SELECT dimensions['build_id'], sum(stats['usage_hours']) FROM crash_aggregates GROUP BY 1",
    "tags": ["nightly"],
}


@pytest.fixture
def db(tmp_path):
    connection = open_state(tmp_path / "state.sqlite3")
    yield connection
    connection.close()


def test_a_saved_query_keeps_what_it_was_given(db):
    saved = create_query(db, RATES, "alice")
    assert {k: getattr(saved, k) for k in RATES} == RATES
    assert (saved.id, saved.slug, saved.version, saved.author, saved.updated_by, saved.dialect) == (
        1, "crash-rates-by-channel", 1, "alice", "alice", "presto",
    )  # fmt: skip
    assert get_query(db, saved.id) == get_query(db, "crash-rates-by-channel") == get_query(db, "1") == saved


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": ""}, "name is required"),
        ({"name": "two\nlines"}, "name must be one line"),
        ({"sql": "  "}, "sql is required"),
        ({"dialect": "mysql"}, "unknown dialect 'mysql'"),
        ({"parameters": {"1x": {}}}, "invalid name '1x'"),
        ({"parameters": {"x": {"type": "color"}}}, "unknown type 'color'"),
        ({"parameters": ["x"]}, "parameters must be an object"),
        ({"chart": {"type": "pie"}}, "unknown type 'pie'"),
        ({"chart": {"y": [None]}}, "a list may not hold null"),
        ({"tags": "stability"}, "tags must be a list of strings"),
        ({"tags": [""]}, "invalid tag"),
        ({"owner": "bob"}, "unknown field(s) owner"),
    ],
)
def test_what_cannot_be_saved_is_refused_and_nothing_is_written(db, change, message):
    with pytest.raises(InvalidItem, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_query(db, {**RATES, **change}, "alice")
    assert list_queries(db) == []


def test_every_edit_is_a_version_that_can_be_read_and_restored(db):
    q = create_query(db, RATES, "alice")
    q = update_query(db, q.id, {"sql": "SELECT 2"}, "bob")
    q = update_query(db, q.slug, {"name": "Renamed", "tags": ["x"]}, "carol")
    assert (q.version, q.name, q.slug, q.sql, q.updated_by, q.author) == (
        3, "Renamed", "crash-rates-by-channel", "SELECT 2", "carol", "alice",
    )  # fmt: skip
    history = query_versions(db, q.id)
    assert [(v.number, v.author, v.note, v.name, v.sql) for v in history] == [
        (1, "alice", "created", RATES["name"], RATES["sql"]),
        (2, "bob", "edited", RATES["name"], "SELECT 2"),
        (3, "carol", "edited", "Renamed", "SELECT 2"),
    ]
    assert query_version(db, q.slug, 1).content == {
        k: RATES.get(k, "presto" if k == "dialect" else "") for k in queries.QUERIES.fields
    }
    restored = restore_query(db, q.id, 1, "dave")
    assert (restored.version, restored.name, restored.sql, restored.tags) == (
        4,
        RATES["name"],
        RATES["sql"],
        RATES["tags"],
    )
    assert query_versions(db, q.id)[-1].note == "restored version 1"
    assert len(query_versions(db, q.id)) == 4  # history only grows


def test_saving_the_same_content_makes_no_version(db):
    q = create_query(db, RATES, "alice")
    assert update_query(db, q.id, {"sql": RATES["sql"] + "\n\n", "name": " " + RATES["name"]}, "bob") == q
    assert len(query_versions(db, q.id)) == 1


def test_a_save_over_an_older_version_is_a_conflict(db):
    q = create_query(db, RATES, "alice")
    update_query(db, q.id, {"sql": "SELECT 2"}, "bob", base_version=1)
    with pytest.raises(Conflict, match="at version 2, not 1"):
        update_query(db, q.id, {"sql": "SELECT 3"}, "carol", base_version=1)
    assert get_query(db, q.id).sql == "SELECT 2"


@pytest.mark.parametrize(
    "ref, number, message",
    [(99, None, "no query 99"), ("nope", None, "no query 'nope'"), (1, 7, "has no version 7")],
)
def test_unknown_queries_and_versions(db, ref, number, message):
    create_query(db, RATES, "alice")
    with pytest.raises(NotFound, match=message):
        query_version(db, ref, number) if number else get_query(db, ref)


def test_a_fork_is_a_new_query_that_remembers_its_source(db):
    source = update_query(db, create_query(db, RATES, "alice").id, {"sql": "SELECT 2"}, "alice")
    fork = fork_query(db, source.id, "bob")
    assert (fork.id, fork.slug, fork.name, fork.author, fork.forked_from, fork.version, fork.sql) == (
        2, "crash-rates-by-channel-fork", "Crash rates by channel (fork)", "bob", source.id, 1, "SELECT 2",
    )  # fmt: skip
    assert query_versions(db, fork.id)[0].note == "forked from crash-rates-by-channel version 2"
    update_query(db, fork.id, {"sql": "SELECT 3"}, "bob")
    assert get_query(db, source.id).sql == "SELECT 2"  # the source is untouched
    named = fork_query(db, source.id, "carol", "Mine")
    assert (named.name, named.slug) == ("Mine", "mine")


def test_slugs_stay_unique_and_stable(db):
    first = create_query(db, RATES, "alice")
    second = create_query(db, RATES, "alice")
    assert (first.slug, second.slug) == ("crash-rates-by-channel", "crash-rates-by-channel-2")
    assert update_query(db, first.id, {"name": "Other name"}, "alice").slug == "crash-rates-by-channel"
    with pytest.raises(InvalidItem, match="already a query with the slug"):
        create_query(db, BUILDS, "alice", slug="crash-rates-by-channel")
    with pytest.raises(InvalidItem, match="invalid slug '12'"):
        create_query(db, BUILDS, "alice", slug="12")


@pytest.mark.parametrize(
    "search, tag, author, expected",
    [
        (None, None, None, ["Nightly builds", "Crash rates by channel"]),
        ("crash rates", None, None, ["Crash rates by channel"]),
        ("BUILD_ID", None, None, ["Nightly builds"]),  # in the SQL, whatever the case
        ("1,000 usage", None, None, ["Crash rates by channel"]),  # in the description
        ("100%", None, None, []),  # % and _ are letters, not wildcards
        ("_", None, None, ["Nightly builds", "Crash rates by channel"]),
        (None, "nightly", None, ["Nightly builds"]),
        (None, "night", None, []),  # a tag matches whole
        (None, None, "bob", ["Nightly builds"]),
        ("channel", "stability", "alice", ["Crash rates by channel"]),
        ("channel", "nightly", None, []),
    ],
)
def test_search(db, search, tag, author, expected):
    create_query(db, RATES, "alice")
    create_query(db, BUILDS, "bob")
    found = list_queries(db, search=search, tag=tag, author=author)
    assert [q.name for q in found] == expected


# -- dashboards --------------------------------------------------------------------------------------


def board(*query_ids, text="Crash rates of the week") -> dict:
    return {
        "name": "Stability",
        "parameters": {"channel": {"type": "text", "default": "beta"}},
        "widgets": [{"type": "text", "text": text, "x": 0, "y": 0, "w": 12, "h": 1}]
        + [
            {"type": "query", "query": q, "x": 6 * (i % 2), "y": 1 + 4 * (i // 2), "w": 6, "h": 4}
            for i, q in enumerate(query_ids)
        ],  # fmt: skip
        "tags": ["stability"],
    }


def test_a_dashboard_keeps_its_grid_and_names_queries_by_id(db):
    rates, builds = create_query(db, RATES, "alice"), create_query(db, BUILDS, "alice")
    d = create_dashboard(db, board(rates.slug, builds.id), "alice")
    assert d.widgets[1:] == [
        {"type": "query", "query": rates.id, "x": 0, "y": 1, "w": 6, "h": 4},
        {"type": "query", "query": builds.id, "x": 6, "y": 1, "w": 6, "h": 4},
    ]
    assert d.query_ids() == [rates.id, builds.id] and get_dashboard(db, d.slug) == d
    d = update_dashboard(db, d.id, {"widgets": d.widgets[:2]}, "bob", base_version=1)
    assert d.version == 2 and d.query_ids() == [rates.id]
    assert queries.restore_dashboard(db, d.id, 1, "carol").query_ids() == [rates.id, builds.id]


@pytest.mark.parametrize(
    "widget, message",
    [
        ({"type": "chart"}, "widget type must be one of"),
        ({"type": "query", "query": 99}, "no query 99"),
        ({"type": "query", "query": 1, "x": 12}, "widget x must be a whole number from 0 to 11"),
        ({"type": "query", "query": 1, "x": 8, "w": 6}, "widget w must be a whole number from 1 to 4"),
        ({"type": "query", "query": 1, "h": 0}, "widget h"),
        ({"type": "text", "text": "x", "query": 1}, "unknown field(s) query"),
    ],
)
def test_bad_widgets_are_refused(db, widget, message):
    create_query(db, RATES, "alice")
    with pytest.raises((InvalidItem, NotFound), match=message.replace("(", r"\(").replace(")", r"\)")):
        create_dashboard(db, {"name": "D", "widgets": [widget]}, "alice")


@pytest.mark.parametrize(
    "query_parameters, dashboard_parameters, given, expected",
    [
        ({"channel": {"default": "release"}}, {}, {}, {"channel": "release"}),
        ({"channel": {"default": "release"}}, {"channel": {"default": "beta"}}, {}, {"channel": "beta"}),
        ({"channel": {"default": "release"}}, {"channel": {"default": "beta"}}, {"channel": "nightly"},
         {"channel": "nightly"}),
        # a value given for a parameter the dashboard does not declare is not the dashboard's to pass
        ({"channel": {"default": "release"}}, {}, {"channel": "nightly"}, {"channel": "release"}),
        # a dashboard parameter no query declares feeds nothing
        ({}, {"os": {"default": "Linux"}}, {"os": "Darwin"}, {}),
        ({"a": {}, "b": {"default": 3}}, {"b": {}, "c": {"default": 1}}, {"b": 5}, {"a": None, "b": 5}),
    ],
)  # fmt: skip
def test_dashboard_parameters_feed_the_queries_that_declare_them(
    db, query_parameters, dashboard_parameters, given, expected
):
    q = create_query(db, {**RATES, "parameters": query_parameters}, "alice")
    d = create_dashboard(db, {"name": "D", "parameters": dashboard_parameters,
                              "widgets": [{"type": "query", "query": q.id}]}, "alice")  # fmt: skip
    assert queries.widget_parameters(q, d, given) == expected
