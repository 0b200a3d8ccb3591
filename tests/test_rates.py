"""rates.py: questions answered from the fixed rows of sqldata.py, computed here in plain Python.

Each question is asked two ways, and both must give the Python sums: run on a
fenced connection with bound parameters (what the dashboard does), and as the
Presto text it shows users, through ``crash_aggregates.query`` (the ``sql``
command's path).
"""

from __future__ import annotations

import math
from datetime import date

import pytest
from sqldata import ROWS

import crash_aggregates
from crash_aggregates import rates
from crash_aggregates.config import default_config
from crash_aggregates.rates import OTHER, Question, QuestionError
from crash_aggregates.sql import connect

D14, D15 = date(2016, 3, 14), date(2016, 3, 15)


def expected(q: Question) -> dict:
    """{(group, day): sums} from ROWS, following the question's rules by hand."""
    wanted: dict[str, set] = {}
    for dim, value in q.where:
        wanted.setdefault(dim, set()).add(value)
    found: dict = {}
    for r in ROWS:
        day = r["activity_date"] if q.axis == "activity" else r["submission_date"]
        if not q.start.isoformat() <= day <= q.end.isoformat():
            continue
        dims = r["dimensions"]
        if any(dims.get(d) not in values for d, values in wanted.items()):
            continue
        if any(d in dims for d in q.absent):
            continue
        key = (tuple(dims.get(d) for d in q.by), day if q.per_day else None)
        sums = found.setdefault(key, [0.0] * len(q.stats))
        for i, s in enumerate(q.stats):
            sums[i] += r["stats"].get(s) or 0.0
    if q.top is not None:  # keep the top groups by the rank stat, sum the rest as "other"
        rank = q.stats.index(q.rank_stat)
        totals: dict = {}
        for (group, _), sums in found.items():
            totals[group] = totals.get(group, 0.0) + sums[rank]
        keep = sorted(totals, key=lambda g: (-totals[g], g[0] is None, g[0] or ""))[: q.top]
        merged: dict = {}
        for (group, day), sums in found.items():
            key = (group if group in keep else (OTHER,), day)
            merged[key] = [a + b for a, b in zip(merged.get(key, [0.0] * len(sums)), sums, strict=True)]
        found = merged
    return {k: tuple(v) for k, v in found.items()}


QUESTIONS = [
    Question(stats=("main_crashes", "usage_hours"), start=D14, end=D15),
    Question(stats=("main_crashes", "usage_hours"), start=date(2016, 3, 12), end=D15, by=("channel",)),
    Question(stats=("main_crashes", "usage_hours"), start=D14, end=D15, by=("channel",), axis="submission"),
    Question(stats=("content_crashes", "usage_hours"), start=D14, end=D15, by=("e10s_cohort",), per_day=False),
    Question(
        stats=("main_crashes", "usage_hours", "ping_count"),
        start=date(2016, 3, 1),
        end=D15,
        by=("channel", "os_name"),
        where=(("channel", "release"), ("channel", "beta")),
    ),
    Question(stats=("plugin_crashes", "usage_hours"), start=D14, end=D15, absent=("e10s_cohort",)),
    Question(
        stats=("main_crashes", "usage_hours"),
        start=D14,
        end=D15,
        where=(("channel", "nightly"), ("os_name", "Windows_NT")),
    ),
    Question(stats=("main_crashes", "usage_hours"), start=D14, end=D15, by=("channel",), top=2, per_day=False),
    Question(stats=("main_crashes", "usage_hours"), start=D14, end=D15, by=("e10s_cohort",), top=1),
    Question(stats=("main_crashes", "usage_hours"), start=D14, end=D15, by=("channel",), top=9),
    # A value that would end the string if it were pasted into SQL: it only ever matches itself.
    Question(stats=("main_crashes", "usage_hours"), start=D14, end=D15, where=(("channel", "x' OR '1'='1"),)),
    Question(stats=("main_crashes", "usage_hours"), start=date(2017, 1, 1), end=date(2017, 1, 2), by=("channel",)),
]


def as_dict(answers) -> dict:
    return {(a.group, a.day): a.sums for a in answers}


def close(found: dict, wanted: dict) -> bool:
    return found.keys() == wanted.keys() and all(
        all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(found[k], wanted[k], strict=True))
        for k in wanted
    )


@pytest.mark.parametrize("q", QUESTIONS, ids=range(len(QUESTIONS)))
def test_bound_parameters_answer_the_python_sums(dataset, q):
    q.check(default_config())
    with connect(dataset) as conn:
        found = as_dict(rates.ask(q, conn))
    assert close(found, expected(q)), (found, expected(q))


@pytest.mark.parametrize("q", QUESTIONS, ids=range(len(QUESTIONS)))
def test_the_presto_text_answers_the_same_through_the_sql_path(dataset, q):
    table = crash_aggregates.query(rates.presto_sql(q), dataset)
    width = len(q.by)
    found = {}
    for row in table.to_pylist():
        values = list(row.values())
        day = values[width] if q.per_day else None
        found[(tuple(values[:width]), day.isoformat() if isinstance(day, date) else day)] = tuple(
            values[width + q.per_day :]
        )
    assert close(found, expected(q)), (found, expected(q))


def test_values_are_parameters_not_sql_text():
    q = Question(stats=("main_crashes",), start=D14, end=D15, where=(("channel", "x' OR '1'='1"),))
    sql, values = rates.duckdb_sql(q, set())
    assert "OR '1'='1" not in sql and "x' OR '1'='1" in values.values()
    assert "'x'' OR ''1''=''1'" in rates.presto_sql(q)  # shown to users as one quoted literal


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"stats": ("nope",)}, "unknown stat 'nope'"),
        ({"by": ("nope",)}, "unknown dimension 'nope'"),
        ({"where": (("channel'", "x"),)}, "unknown dimension"),
        ({"absent": ("dimensions['x']",)}, "unknown dimension"),
        ({"axis": "server"}, "unknown date axis"),
        ({"start": D15, "end": D14}, "after it ends"),
        ({"by": ("channel", "channel")}, "twice"),
        ({"top": 3}, "exactly one dimension"),
        ({"by": ("channel",), "top": 3, "stats": ("main_crashes",)}, "must sum"),
        ({"where": (("channel", "beta"),), "absent": ("channel",)}, "both have a value and be absent"),
        ({"stats": ()}, "no stat"),
    ],
)
def test_names_are_checked_against_the_configuration(fields, message):
    q = Question(**{"stats": ("main_crashes", "usage_hours"), "start": D14, "end": D15, **fields})
    with pytest.raises(QuestionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        q.check(default_config())


def test_stat_roles_come_from_the_configuration():
    config = default_config()
    assert rates.exposure_stat(config) == "usage_hours"
    assert rates.count_stat(config) == "ping_count"
    assert "usage_hours" not in rates.crash_stats(config) and "main_crashes" in rates.crash_stats(config)
