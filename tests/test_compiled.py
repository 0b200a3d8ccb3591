"""The compiled per-ping rules (``_scan.Summer``) sum exactly like the Python reference.

Where the C scanner is built, ``DayAggregate.add_lines`` runs the rules'
compiled form (``PingRules.summer``); ``DayAggregate._add_lines``, line by
line through ``PingRules.evaluate``, is the reference. Both run here on the
same lines: every table case of test_pings (with its configuration), the real
fixtures, synth's seeded days (every ignore reason), mutants of those, and
random values at the leaves the compiled code reads itself (the dates, the
subsession length, the histogram counts). The sums (to the bit, in order),
the keys and the counters must be identical; each line goes through twice, so
that the second time its signature is known and the compiled code answers.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import pytest
import test_pings
from helpers import SHARED
from pingcases import CRASH, MAIN, encode
from test_tiers_agree import _with_raw, base_lines, mutants

from crash_aggregates import synth
from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.config import default_config
from crash_aggregates.pings import PingRules

D = date(2016, 3, 15)
FIXTURES = sorted((SHARED / "fixtures").glob("*.pass.json"))


def summed(rules: PingRules, lines: list[bytes]) -> tuple[DayAggregate, int]:
    """The lines summed twice; and how many of them the C code answered."""
    agg = DayAggregate()
    reference = agg._add_lines
    handed_back = 0

    def counting(rules, lines, ascii):
        nonlocal handed_back
        handed_back += len(lines)
        reference(rules, lines, ascii)

    agg._add_lines = counting
    views = [memoryview(line) for line in lines]
    for _ in range(2):
        agg.add_lines(rules, views)
    return agg, 2 * len(lines) - handed_back


def both_rules(config, day: date) -> tuple[PingRules, PingRules]:
    """PingRules with the compiled form, and without it (the reference)."""
    compiled, reference = PingRules(config, day), PingRules(config, day)
    assert compiled.summer is not None, "the C scanner was not built"
    reference._summer = None
    return compiled, reference


def state(agg: DayAggregate) -> tuple:
    """Everything a partial holds, floats to the bit, aggregates in insertion order."""
    return (
        [(key, [x.hex() for x in sums]) for key, sums in agg.aggregates.items()],
        sorted(agg.processed.items()),
        sorted(agg.ignored.items()),
    )


def assert_same(lines: list[bytes], config=None, day: date = D) -> int:
    """Compiled and reference sums agree on ``lines``, all summed together and each one alone
    (then it is the first of its aggregate); returns how many lines the C code answered."""
    compiled, reference = both_rules(config or default_config(), day)
    got, answered = summed(compiled, lines)
    want, _ = summed(reference, lines)
    assert state(got) == state(want)
    assert got.counters() == want.counters()
    for line in lines:  # the signatures are known now: the C code answers where it can
        got, want = DayAggregate(), DayAggregate()
        got.add_lines(compiled, [memoryview(line)])
        want.add_lines(reference, [memoryview(line)])
        assert state(got) == state(want), line
    return answered


def table_lines(rows) -> list[bytes]:
    return [param.values[0] for param in rows]


TABLES = {
    name: (table_lines(getattr(test_pings, name)), config)
    for name, config in [
        ("MALFORMED_CASES", None),
        ("VALID_JSON_CASES", None),
        ("DUPLICATE_KEY_CASES", None),
        ("DOC_TYPE_CASES", None),
        ("CONTENT_CRASH_CASES", None),
        ("SUBMISSION_DATE_CASES", None),
        ("ACTIVITY_DATE_CASES", None),
        ("BUILD_ID_CASES", None),
        ("SUBSESSION_LENGTH_CASES", None),
        ("DIMENSION_CASES", None),
        ("STATS_CASES", None),
        ("GFX_CASES", "GFX_CONFIG"),
        ("CUSTOM_DIMENSION_CASES", "CUSTOM_DIMS_CONFIG"),
        ("CUSTOM_STATS_CASES", "CUSTOM_STATS_CONFIG"),
    ]
}
TABLES["PRECEDENCE"] = (table_lines(test_pings.SINGLES + test_pings.PAIRS + test_pings.CASCADE), None)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_table_case(table):
    lines, config = TABLES[table]
    config = getattr(test_pings, config) if config else None
    answered = assert_same(lines, config, test_pings.D)
    if table in ("STATS_CASES", "ACTIVITY_DATE_CASES", "DIMENSION_CASES", "SUBSESSION_LENGTH_CASES"):
        assert answered > len(lines) // 2  # the compiled code, not only the fallback, was compared


@pytest.mark.parametrize("day", [date(2016, 3, 5), date(2016, 3, 1), date(2016, 2, 29), date(2017, 1, 3)])
def test_fixtures(day):
    assert FIXTURES, "no fixtures: set CRASH_AGGREGATES_SHARED"
    lines = []
    for path in FIXTURES:
        doc = json.loads(path.read_text())
        doc["meta"] = {"submissionDate": day.strftime("%Y%m%d"), "docType": path.name.split(".")[0]}
        lines.append(json.dumps(doc, separators=(",", ":")).encode())
    assert_same(lines, day=day)


@pytest.mark.parametrize("profile", ["small", "realistic"])
def test_seeded_days(tmp_path, profile):
    """synth's days: every ignore reason, blank lines, several activity dates."""
    pings = 3000 if profile == "small" else 60
    synth.generate(str(tmp_path), [D], pings, seed=7, profile=profile, compression="none")
    lines = []
    for path in sorted((tmp_path / f"submission_date={D}").glob("pings-*")):
        lines += path.read_bytes().split(b"\n")
    assert_same(lines)


@pytest.mark.parametrize("seed", range(3))
def test_mutants(seed):
    rng = random.Random(seed)
    lines = [m for line in base_lines() for m in mutants(line, rng, 80)]
    assert len(lines) > 1000
    assert_same(lines)


# Raw JSON texts for the leaves the compiled code reads itself.
DATES = [b'"2016-03-15"', b'"2016-03-08"', b'"2016-03-07"', b'"2016-03-16"', b'"2015-12-31T23:59:59Z"',
         b'"2016-02-29"', b'"2015-02-29"', b'"2000-02-29x"', b'"1900-02-29"', b'"0000-01-01"', b'"0001-01-01"',
         b'"9999-12-31"', b'"2016-13-01"', b'"2016-00-10"', b'"2016-04-31"', b'"2016-03-00"', b'"2016-3-15"',
         b'"2016-03-1"', b'"2016/03/15"', b'"\\u0032016-03-15"', b'"2016-03-1\\u0035"', b'"2016-03-15\\u0041"',
         b'"2016-03-15\\n"', b'"\xc3\xa9016-03-15"', b'"2016-03-15\xc3\xa9"', b'"\xef\xbc\x92016-03-15"', b'""',
         b'"2016"', b"20160315", b"null", b"true", b'"2016-03-15 12:00"', b'" 2016-03-15"']  # fmt: skip
NUMBERS = [b"0", b"-0", b"0.0", b"-0.0", b"1", b"-1", b"7200", b"3599.9", b"90000", b"89999.99999", b"1e3", b"1E-3",
           b"-5e2", b"1e400", b"-1e400", b"123456789012345678", b"1234567890123456789", b"-12345678901234567",
           b"99999999999999999999999", b"2.5e-320", b'"3600"', b"true", b"false", b"null", b"{}", b"[1]",
           b"1.7976931348623157e308", b"0.30000000000000004"]  # fmt: skip
DATE_PATHS = [("payload", "info", "subsessionStartDate"), ("payload", "crashDate"), ("creationDate",)]
NUMBER_PATHS = [("payload", "info", "subsessionLength"),
                ("payload", "keyedHistograms", "SUBPROCESS_CRASHES_WITH_DUMP", "content", "values", "0"),
                ("payload", "keyedHistograms", "SUBPROCESS_KILL_HARD", "ShutDownKill", "values", "0")]  # fmt: skip


def _template(doc: dict) -> tuple[bytes, dict[tuple, bytes]]:
    """``doc`` encoded with a marker at each path of DATE_PATHS and NUMBER_PATHS, and the markers."""
    doc = json.loads(encode(doc))
    doc["meta"]["submissionDate"] = D.strftime("%Y%m%d")
    markers = {}
    for i, path in enumerate(DATE_PATHS + NUMBER_PATHS):
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {})
        old = node.get(path[-1])
        markers[path] = (json.dumps(f"\x00marker{i}\x00").encode(), encode(old) if old is not None else b"null")
        node[path[-1]] = f"\x00marker{i}\x00"
    return encode(doc), markers


@pytest.mark.parametrize("seed", range(3))
def test_random_dates_and_numbers(seed):
    """Each line gets random raw values at 1-4 of the leaves read in C, the others as in MAIN or CRASH."""
    rng = random.Random(seed)
    templates = [_template(MAIN), _template(CRASH)]
    lines = []
    for _ in range(3000):
        line, markers = rng.choice(templates)
        chosen = {path: rng.choice(DATES) for path in rng.sample(DATE_PATHS, rng.randint(0, 2))}
        chosen |= {path: rng.choice(NUMBERS) for path in rng.sample(NUMBER_PATHS, rng.randint(1, 2))}
        for path, (marker, base) in markers.items():
            line = line.replace(marker, chosen.get(path, base))
        lines.append(line)
    answered = assert_same(lines)
    assert answered > len(lines)  # most of the second pass, at least


def test_every_ignore_reason_and_day_of_the_window():
    """Each reason is counted by both, and every activity date of the window [D - 7, D] is met."""
    rng = random.Random(5)
    lines = [m for line in base_lines() for m in mutants(line, rng, 20)]
    main = json.loads(encode(MAIN))
    main["meta"]["submissionDate"] = D.strftime("%Y%m%d")
    for days in range(-2, 12):
        start = (D - timedelta(days=days)).isoformat()
        lines.append(_with_raw(main, ("payload", "info", "subsessionStartDate"), f'"{start}T00:00:00"'.encode()))
    agg, _ = summed(both_rules(default_config(), D)[0], lines)
    reasons = {reason for _, reason in agg.ignored}
    assert reasons >= {"malformed_json", "invalid_activity_date", "invalid_build_id", "invalid_subsession_length"}
    activity = {key[0] for key in agg.aggregates}
    assert {(D - timedelta(days=n)).isoformat() for n in range(8)} <= activity
    assert_same(lines)
