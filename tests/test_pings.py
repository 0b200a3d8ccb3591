"""SPEC sections 2-5, one rule at a time: tables of (ping line -> expected outcome).

Each case starts from a minimal valid main ping (``MAIN``) or crash ping
(``CRASH``) and changes one thing; the expected outcome is written out by hand
from SPEC. Every case runs through both parsing tiers of ``PingRules`` (the fast
msgspec decoder and the generic standard-library fallback) and through
``DayAggregate`` (the per-doc-type counters). Submission date D is 2016-03-05
unless a test says otherwise, so D - 7 is 2016-02-27.

Where SPEC is silent, these tables pin the following decisions:

- An unpaired UTF-16 surrogate escape (``"\\ud800"``), anywhere in the line, is
  ``malformed_json``: it cannot be UTF-8 text. A UTF-8 byte order mark too.
- Nesting deeper than the parser allows: the limit is the interpreter's
  recursion limit (about 990 levels, less the caller's own stack depth, for
  msgspec and for the json module alike), so the tables only use depths that
  are clearly fine (100) or clearly too deep (2,000 to 100,000 levels).
- "An integer" is a JSON number written without fraction or exponent: it
  becomes its digits at any length ("-0" becomes "0"). Every other number is
  Python's ``repr`` of the double: "1.0", "1E2" -> "100.0", 1e16 -> "1e+16",
  1e-7 -> "1e-07", "-0.0" -> "-0.0", 1e-400 -> "0.0".
- A number beyond the double range (1e400, or the integer 10**400: the same
  JSON number) is not finite once read as a double: an invalid
  subsessionLength and a histogram count of 0. As a dimension an integer
  literal keeps its digits; 1e400 is absent (no decimal form; the
  implementation used to write "inf").
- A negative zero is "negative -> 0": usage and counts are +0.0, never -0.0.
- A finite count whose square overflows (1e308) gives an infinite
  ``_squared``; recorded as is.
- ``payload.processType`` that is present, not null and not "main" is a
  content crash whatever its type (0, false, {}, "").
- A ``meta.docType`` that is present and not null is never replaced by
  ``type``, even when it is not a string. ``meta`` that is not an object is
  missing as a whole (its docType falls back to ``type``).
- A usable but out-of-range activity date is clamped; creationDate is only
  used when the primary date is unusable.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from pingcases import (
    BARE_CRASH,
    BARE_DIMS,
    BARE_MAIN,
    CRASH,
    CRASH_DIMS,
    CRASH_STATS,
    DEL,
    DIMENSIONS,
    HISTOGRAMS,
    MAIN,
    MAIN_DIMS,
    MAIN_STATS,
    REASONS,
    STAT_COLUMNS,
    TIERS,
    D,
    Dup,
    Ignored,
    Processed,
    Raw,
    add_raw,
    as_line,
    check,
    crash_ok,
    deep,
    encode,
    main_ok,
    mk,
    rules_for,
    stats,
)

from crash_aggregates import pings, reading
from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.config import GFX_COMPOSITOR, default_config, parse_config


@pytest.fixture(params=TIERS)
def tier(request):
    return request.param


def cases(*rows):
    """pytest params from (id, document or line, expected) rows; ids must be unique."""
    ids = [row[0] for row in rows]
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, dupes
    return [pytest.param(as_line(doc), expected, id=name) for name, doc, expected in rows]


MALFORMED = Ignored("malformed_json")
M = encode(MAIN)


def with_top(doc: dict, *pairs, first: bool = False) -> Dup:
    """``doc`` as pairs plus more top-level pairs (repeated keys allowed), after or before."""
    return Dup([*pairs, *doc.items()]) if first else Dup([*doc.items(), *pairs])


def without(doc: dict, *keys) -> dict:
    return {k: v for k, v in doc.items() if k not in keys}


# -- the contract's constants -----------------------------------------------------


def test_reason_names_and_order_are_the_contract():
    assert list(pings.REASONS) == REASONS


def test_default_config_matches_spec_tables():
    config = default_config()
    assert [d.name for d in config.dimensions] == DIMENSIONS
    assert config.stat_columns() == STAT_COLUMNS
    assert GFX_COMPOSITOR not in config.dimensions


def test_fast_tiers_handle_the_base_pings():
    """The "fast" and "msgspec" runs of every table really exercise the C scanner
    and the msgspec decoder: neither hands these lines to the generic tier."""
    rules = rules_for()
    for doc in (MAIN, CRASH, BARE_MAIN, BARE_CRASH):
        assert isinstance(rules.reader.scanner.extract(encode(doc)), list)
        assert rules.reader.decoder.decode(encode(doc)) is not None


# What the C scanner leaves to the generic tier (False), answers itself (a list),
# or calls malformed (None). The outcomes of all of these are checked on every
# tier in the tables below; this only pins down who answers.
SCAN_CASES = [
    ("plain", encode(MAIN), list),
    ("object-at-a-leaf", encode(mk(MAIN, {"application.channel": {"a": 1}})), False),
    ("array-at-a-leaf", encode(mk(MAIN, {"application.channel": [1]})), False),
    ("array-below-a-needed-key", encode(mk(MAIN, {"application": [1, 2]})), list),
    ("int-of-19-digits", encode(mk(MAIN, {"payload.info.subsessionLength": 10**18})), False),
    ("int-of-18-digits", encode(mk(MAIN, {"payload.info.subsessionLength": 10**17})), list),
    ("float-overflow", encode(mk(MAIN, {"payload.info.subsessionLength": Raw("1e400")})), False),
    ("float-overflow-skipped", add_raw(MAIN, "x", "1e400"), list),
    ("surrogate-escape-anywhere", add_raw(MAIN, "x", '"\\ud83d\\ude00"'), False),
    ("other-escape", add_raw(MAIN, "x", '"\\u00e9\\n"'), list),
    ("utf8-text", add_raw(MAIN, "x", '"\u00e9\u20ac\U0001f600"'), list),
    ("not-utf8-in-a-skipped-string", add_raw(MAIN, "x", b'"\xe9t\xe9"'), None),
    ("utf8-surrogate-bytes", add_raw(MAIN, "x", b'"\xed\xa0\x80"'), None),
    ("escaped-needed-level-key", encode(MAIN).replace(b'"meta"', b'"m\\u0065ta"'), False),
    ("deep-nesting", add_raw(MAIN, "x", "[" * 600 + "]" * 600), False),
    ("moderate-nesting", add_raw(MAIN, "x", "[" * 100 + "]" * 100), list),
    ("nan", add_raw(MAIN, "x", "NaN"), None),
    ("not-an-object", b"[1]", None),
    ("empty", b"", None),
    ("trailing-text", encode(MAIN) + b" x", None),
]


@pytest.mark.parametrize("line, answer", [pytest.param(line, answer, id=name) for name, line, answer in SCAN_CASES])
def test_who_answers(line, answer):
    got = rules_for().reader.scanner.extract(line)
    assert type(got) is answer if answer is list else got is answer


SIGNATURE_CASES = [
    ("strings-keep-quotes", b'{"a": "x", "b": {"c": 1.0}}', b'"x"\x001.0\x00'),
    ("raw-text-not-value", b'{"a": 1e0, "b": {"c": "\\u0031"}}', b'1e0\x00"\\u0031"\x00'),
    ("missing-is-not-null", b'{"a": null}', b"null\x00\x01\x00"),
    ("last-duplicate-wins", b'{"a": 1, "a": 2}', b"2\x00\x01\x00"),
    ("replaced-subtree-empties", b'{"b": {"c": 1}, "b": 3}', b"\x01\x00\x01\x00"),
    ("whitespace-left-out", b'{ "a" :  true , "b":{"c": 7 }}', b"true\x007\x00"),
    ("container-at-a-leaf", b'{"a": true, "b": {"c": []}}', None),  # the generic tier's: no signature
]


@pytest.mark.parametrize("line, signature", [pytest.param(line, sig, id=name) for name, line, sig in SIGNATURE_CASES])
def test_scanner_signature(line, signature):
    """The signature is the raw text of the signed slots as finally read (each then NUL, missing: \\x01)."""
    scanner = reading.Scanner(reading.scan_spec([("a",), ("b", "c")]), 2, (0, 1))
    got = scanner.extract(line)
    assert (got[-1] if got else None) == signature


# -- 2. malformed_json ---------------------------------------------------------------

MALFORMED_CASES = cases(
    ("not-json", b"hello world", MALFORMED),
    ("truncated-half", M[: len(M) // 2], MALFORMED),
    ("truncated-last-brace", M[:-1], MALFORMED),
    ("truncated-in-string", M[: M.index(b"release") + 3], MALFORMED),
    ("trailing-garbage", M + b" x", MALFORMED),
    ("two-objects", M + M, MALFORMED),
    ("two-objects-with-space", M + b" " + M, MALFORMED),
    ("single-quotes", b"{'type': 'main'}", MALFORMED),
    ("unquoted-key", b'{type: "main"}', MALFORMED),
    ("trailing-comma-object", M[:-1] + b",}", MALFORMED),
    ("trailing-comma-array", add_raw(MAIN, "x", "[1,]"), MALFORMED),
    ("missing-colon", add_raw(MAIN, "x", '{"a" 1}'), MALFORMED),
    ("comment-after", M + b" // comment", MALFORMED),
    ("block-comment-inside", add_raw(MAIN, "x", "/* c */ 1"), MALFORMED),
    # NaN / Infinity tokens, in an unrelated field and in fields the rules read
    ("nan-unrelated", add_raw(MAIN, "x", "NaN"), MALFORMED),
    ("infinity-unrelated", add_raw(MAIN, "x", "Infinity"), MALFORMED),
    ("minus-infinity-unrelated", add_raw(MAIN, "x", "-Infinity"), MALFORMED),
    ("nan-inside-unrelated-array", add_raw(MAIN, "x", "[1, NaN]"), MALFORMED),
    ("nan-lowercase-unrelated", add_raw(MAIN, "x", "nan"), MALFORMED),
    ("inf-lowercase-unrelated", add_raw(MAIN, "x", "inf"), MALFORMED),
    ("nan-subsession-length", mk(MAIN, {"payload.info.subsessionLength": Raw("NaN")}), MALFORMED),
    ("infinity-subsession-length", mk(MAIN, {"payload.info.subsessionLength": Raw("Infinity")}), MALFORMED),
    ("minus-infinity-subsession-length", mk(MAIN, {"payload.info.subsessionLength": Raw("-Infinity")}), MALFORMED),
    ("nan-dimension", mk(MAIN, {"application.channel": Raw("NaN")}), MALFORMED),
    (
        "infinity-histogram",
        mk(MAIN, {"payload.keyedHistograms.SUBPROCESS_KILL_HARD.ShutDownKill.values.0": Raw("Infinity")}),
        MALFORMED,
    ),
    ("nan-crash-ping", mk(CRASH, {"x": Raw("NaN")}), MALFORMED),  # counted as a main ping
    # invalid UTF-8
    ("invalid-utf8-dimension", mk(MAIN, {"application.channel": Raw(b'"rel\xffease"')}), MALFORMED),
    ("invalid-utf8-build-id", mk(MAIN, {"environment.build.buildId": Raw(b'"2016030112345\xff"')}), MALFORMED),
    ("invalid-utf8-doc-type", mk(MAIN, {"meta.docType": Raw(b'"ma\xffin"')}), MALFORMED),
    ("invalid-utf8-unrelated", add_raw(MAIN, "clientId", b'"\xff\xfe"'), MALFORMED),
    ("latin1-unrelated", add_raw(MAIN, "x", b'"caf\xe9"'), MALFORMED),
    ("overlong-utf8-unrelated", add_raw(MAIN, "x", b'"\xc0\xaf"'), MALFORMED),
    ("truncated-utf8-sequence-unrelated", add_raw(MAIN, "x", b'"\xe2\x82"'), MALFORMED),
    ("utf8-encoded-surrogate-unrelated", add_raw(MAIN, "x", b'"\xed\xa0\x80"'), MALFORMED),
    ("utf8-beyond-u10ffff-unrelated", add_raw(MAIN, "x", b'"\xf4\x90\x80\x80"'), MALFORMED),
    ("invalid-utf8-in-key", with_top(MAIN, (Raw(b'"k\xff"'), 1)), MALFORMED),
    ("invalid-utf8-outside-string", M[:-1] + b", \xff}", MALFORMED),
    ("invalid-utf8-after-generic-fallback", mk(MAIN, {"environment.system": 3, "x": Raw(b'"\xff"')}), MALFORMED),
    # Unpaired UTF-16 surrogate escapes cannot be UTF-8: decided malformed_json
    # (msgspec refuses them; the output's UTF-8 map values could not hold them).
    ("lone-high-surrogate-unrelated", add_raw(MAIN, "x", r'"\ud800"'), MALFORMED),
    ("lone-low-surrogate-unrelated", add_raw(MAIN, "x", r'"\udc00"'), MALFORMED),
    ("reversed-surrogate-pair-unrelated", add_raw(MAIN, "x", r'"\ude00\ud83d"'), MALFORMED),
    ("lone-surrogate-dimension", mk(MAIN, {"application.channel": Raw(r'"\ud800"')}), MALFORMED),
    ("lone-surrogate-in-key", with_top(MAIN, (Raw(r'"\udbff"'), 1)), MALFORMED),
    (
        "lone-surrogate-unrelated-after-generic-fallback",
        mk(MAIN, {"environment.system": 3, "x": Raw(r'"\ud800"')}),
        MALFORMED,
    ),
    (
        "lone-surrogate-dimension-after-generic-fallback",
        mk(
            MAIN,
            {
                "environment": Dup(
                    [("system", 3), ("build", {"version": Raw(r'"\udfff"'), "buildId": "20160301123456"})]
                )
            },
        ),
        MALFORMED,
    ),
    # raw control characters in strings
    ("raw-tab-in-dimension", mk(MAIN, {"application.channel": Raw(b'"rel\tease"')}), MALFORMED),
    ("raw-control-char-unrelated", add_raw(MAIN, "x", b'"\x01"'), MALFORMED),
    ("raw-nul-unrelated", add_raw(MAIN, "x", b'"\x00"'), MALFORMED),
    ("raw-nul-outside-string", M[:-1] + b"\x00}", MALFORMED),
    # number syntax
    ("leading-zero-unrelated", add_raw(MAIN, "x", "01"), MALFORMED),
    ("leading-zero-subsession-length", mk(MAIN, {"payload.info.subsessionLength": Raw("07200")}), MALFORMED),
    ("plus-sign-unrelated", add_raw(MAIN, "x", "+1"), MALFORMED),
    ("leading-dot-unrelated", add_raw(MAIN, "x", ".5"), MALFORMED),
    ("trailing-dot-unrelated", add_raw(MAIN, "x", "1."), MALFORMED),
    ("bare-minus-unrelated", add_raw(MAIN, "x", "-"), MALFORMED),
    ("hex-unrelated", add_raw(MAIN, "x", "0x10"), MALFORMED),
    ("exponent-without-digits-unrelated", add_raw(MAIN, "x", "1e"), MALFORMED),
    # string escapes and literals
    ("invalid-escape-unrelated", add_raw(MAIN, "x", r'"\x41"'), MALFORMED),
    ("short-unicode-escape-unrelated", add_raw(MAIN, "x", r'"\u12"'), MALFORMED),
    ("capitalised-true-unrelated", add_raw(MAIN, "x", "True"), MALFORMED),
    ("python-none-unrelated", add_raw(MAIN, "x", "None"), MALFORMED),
    ("undefined-unrelated", add_raw(MAIN, "x", "undefined"), MALFORMED),
    ("utf8-bom", b"\xef\xbb\xbf" + M, MALFORMED),
    # valid JSON that is not an object
    ("top-level-empty-array", b"[]", MALFORMED),
    ("top-level-array-of-ping", b"[" + M + b"]", MALFORMED),
    ("top-level-string", b'"main"', MALFORMED),
    ("top-level-integer", b"42", MALFORMED),
    ("top-level-float", b"1.5", MALFORMED),
    ("top-level-null", b"null", MALFORMED),
    ("top-level-true", b"true", MALFORMED),
    ("top-level-false", b"false", MALFORMED),
    # nesting deeper than the parser allows (must not crash): recorded outcome
    # is malformed_json, in an unrelated field and in fields the rules read.
    ("deep-100000-arrays-unrelated", add_raw(MAIN, "x", deep(100_000).text), MALFORMED),
    ("deep-100000-objects-unrelated", add_raw(MAIN, "x", deep(100_000, b'{"a":', b"}", b"1").text), MALFORMED),
    ("deep-100000-arrays-subsession-length", mk(MAIN, {"payload.info.subsessionLength": deep(100_000)}), MALFORMED),
    ("deep-100000-arrays-dimension", mk(MAIN, {"application.channel": deep(100_000)}), MALFORMED),
    ("deep-100000-arrays-doc-type", mk(MAIN, {"meta.docType": deep(100_000)}), MALFORMED),
    (
        "deep-100000-arrays-histogram",
        mk(MAIN, {"payload.keyedHistograms.SUBPROCESS_CRASHES_WITH_DUMP.gpu.values.0": deep(100_000)}),
        MALFORMED,
    ),
    ("deep-100000-arrays-top-level", deep(100_000).text, MALFORMED),
    ("deep-100000-arrays-after-generic-fallback", mk(MAIN, {"environment.system": 3, "x": deep(100_000)}), MALFORMED),
    ("deep-5000-arrays-unrelated", add_raw(MAIN, "x", deep(5000).text), MALFORMED),
    ("deep-100000-unclosed-arrays", add_raw(MAIN, "x", b"[" * 100_000), MALFORMED),
)


@pytest.mark.parametrize("line, expected", MALFORMED_CASES)
def test_malformed_json(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# Valid JSON whose shape is unusual: parsed normally (both tiers).
BIG_INT = "1" + "0" * 4999  # beyond CPython's default int() limit of 4300 digits

VALID_JSON_CASES = cases(
    ("trailing-newline", M + b"\n", main_ok()),
    ("trailing-crlf", M + b"\r\n", main_ok()),
    ("leading-whitespace", b" \t\r " + M, main_ok()),
    ("json-whitespace-tab-cr", json.dumps(MAIN, separators=(",\t", ":\r")).encode(), main_ok()),
    ("compact-separators", json.dumps(MAIN, separators=(",", ":")).encode(), main_ok()),
    (
        "ascii-escaped-unicode",
        json.dumps(mk(MAIN, {"application.channel": "nïght-日本-😀"})).encode(),
        main_ok(channel="nïght-日本-😀"),
    ),
    ("escaped-surrogate-pair", mk(MAIN, {"application.channel": Raw(r'"\ud83d\ude00"')}), main_ok(channel="😀")),
    ("escaped-key-meta", Dup([(Raw(r'"\u006deta"') if k == "meta" else k, v) for k, v in MAIN.items()]), main_ok()),
    ("escaped-slash", mk(MAIN, {"application.channel": Raw(r'"rel\/ease"')}), main_ok(channel="rel/ease")),
    ("escaped-nul", mk(MAIN, {"application.channel": Raw(r'"a\u0000b"')}), main_ok(channel="a\x00b")),
    ("raw-del-char", mk(MAIN, {"application.channel": Raw(b'"rel\x7fease"')}), main_ok(channel="rel\x7fease")),
    (
        "escaped-backslash-then-u-d800-text",
        mk(MAIN, {"application.channel": Raw(r'"\\ud800"')}),
        main_ok(channel="\\ud800"),
    ),
    ("deep-100-arrays-unrelated", add_raw(MAIN, "x", deep(100).text), main_ok()),
    ("deep-100-objects-unrelated", add_raw(MAIN, "x", deep(100, b'{"a":', b"}", b"1").text), main_ok()),
    ("deep-100-arrays-dimension", mk(MAIN, {"application.channel": deep(100)}), main_ok(channel=None)),
    (
        "deep-100-arrays-after-generic-fallback",
        mk(MAIN, {"environment.system": 3, "x": deep(100)}),
        main_ok(os_name=None, os_version=None),
    ),
    ("field-named-like-decoder-attribute", add_raw(MAIN, "f0", '{"f0": "crash", "docType": "crash"}'), main_ok()),
    ("empty-key-unrelated", add_raw(MAIN, "", "1"), main_ok()),
    ("unicode-key-unrelated", add_raw(MAIN, "ключ", '"значение"'), main_ok()),
    ("long-string-unrelated", add_raw(MAIN, "x", '"' + "a" * 200_000 + '"'), main_ok()),
    ("huge-float-unrelated", add_raw(MAIN, "x", "1e400"), main_ok()),
    ("huge-negative-float-unrelated", add_raw(MAIN, "x", "-1e400"), main_ok()),
    ("tiny-float-unrelated", add_raw(MAIN, "x", "1e-400"), main_ok()),
    ("5000-digit-int-unrelated", add_raw(MAIN, "x", BIG_INT), main_ok()),
    (
        "5000-digit-int-unrelated-after-generic-fallback",
        mk(MAIN, {"environment.system": 3, "x": Raw(BIG_INT)}),
        main_ok(os_name=None, os_version=None),
    ),
    ("5000-digit-float-unrelated", add_raw(MAIN, "x", "1." + "0" * 5000), main_ok()),
)


@pytest.mark.parametrize("line, expected", VALID_JSON_CASES)
def test_valid_json_edge_cases(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# Duplicate keys: the last one wins, at every level.
def _build(**changes):
    return {"version": "45.0", "buildId": "20160301123456", "architecture": "x86-64"} | changes


def _build_dup(*pairs):
    return mk(MAIN, {"environment.build": Dup([("version", "45.0"), *pairs, ("architecture", "x86-64")])})


DUPLICATE_KEY_CASES = cases(
    (
        "two-meta-last-other-doc-type",
        with_top(MAIN, ("meta", {"docType": "event", "submissionDate": "20160305"})),
        Ignored("other_doc_type"),
    ),
    ("two-meta-first-other-doc-type", with_top(MAIN, ("meta", {"docType": "event"}), first=True), main_ok()),
    (
        "two-meta-last-lacks-doc-type-falls-back-to-type",
        with_top(MAIN, ("meta", {"geoCountry": "FR"})),
        main_ok(country="FR"),
    ),
    (
        "two-meta-last-lacks-doc-type-no-type",
        with_top(without(MAIN, "type"), ("meta", {"geoCountry": "FR"})),
        Ignored("other_doc_type"),
    ),
    (
        "two-meta-last-wrong-submission-date",
        with_top(MAIN, ("meta", MAIN["meta"] | {"submissionDate": "20160304"})),
        Ignored("invalid_submission_date"),
    ),
    (
        "two-meta-first-wrong-submission-date",
        with_top(MAIN, ("meta", MAIN["meta"] | {"submissionDate": "20160304"}), first=True),
        main_ok(),
    ),
    ("meta-then-null-meta", with_top(MAIN, ("meta", None)), main_ok(country=None)),
    ("meta-then-meta-3", with_top(MAIN, ("meta", 3)), main_ok(country=None)),
    ("meta-3-then-meta", with_top(MAIN, ("meta", 3), first=True), main_ok()),
    (
        "two-doc-types-crash-then-main",
        mk(MAIN, {"meta": Dup([("docType", "crash"), ("docType", "main"), ("geoCountry", "US")])}),
        main_ok(),
    ),
    (
        "two-doc-types-main-then-other",
        mk(MAIN, {"meta": Dup([("docType", "main"), ("docType", "event"), ("geoCountry", "US")])}),
        Ignored("other_doc_type"),
    ),
    (
        "two-types-crash-then-main-no-doc-type",
        with_top(without(mk(MAIN, {"meta.docType": DEL}), "type"), ("type", "crash"), ("type", "main")),
        main_ok(),
    ),
    (
        "two-build-ids-valid-then-invalid",
        _build_dup(("buildId", "20160301123456"), ("buildId", "2016030112345")),
        Ignored("invalid_build_id"),
    ),
    (
        "two-build-ids-invalid-then-valid",
        _build_dup(("buildId", "2016030112345"), ("buildId", "20160301123456")),
        main_ok(),
    ),
    (
        "two-build-ids-valid-then-null",
        _build_dup(("buildId", "20160301123456"), ("buildId", None)),
        Ignored("invalid_build_id"),
    ),
    (
        "two-build-ids-valid-then-number",
        _build_dup(("buildId", "20160301123456"), ("buildId", 20160301123456)),
        Ignored("invalid_build_id"),
    ),
    (
        "two-build-ids-both-valid",
        _build_dup(("buildId", "20160301123456"), ("buildId", "20160302000000")),
        main_ok(build_id="20160302000000"),
    ),
    (
        "two-subsession-lengths-valid-then-string",
        mk(
            MAIN,
            {
                "payload.info": Dup(
                    [("subsessionStartDate", "2016-03-03"), ("subsessionLength", 7200), ("subsessionLength", "7200")]
                )
            },
        ),
        Ignored("invalid_subsession_length"),
    ),
    (
        "two-subsession-lengths-string-then-valid",
        mk(
            MAIN,
            {
                "payload.info": Dup(
                    [("subsessionStartDate", "2016-03-03"), ("subsessionLength", "7200"), ("subsessionLength", 3600)]
                )
            },
        ),
        main_ok(stats=stats(usage=1.0)),
    ),
    (
        "two-environments-last-partial",
        with_top(MAIN, ("environment", {"build": {"buildId": "20160302000000"}})),
        main_ok(
            build_version=None,
            build_id="20160302000000",
            os_name=None,
            os_version=None,
            architecture=None,
            experiment_id=None,
            experiment_branch=None,
            e10s_enabled=None,
            e10s_cohort=None,
        ),
    ),
    ("environment-then-3", with_top(MAIN, ("environment", 3)), Ignored("invalid_build_id")),
    ("environment-then-null", with_top(MAIN, ("environment", None)), Ignored("invalid_build_id")),
    ("environment-3-then-environment", with_top(MAIN, ("environment", 3), first=True), main_ok()),
    ("environment-list-then-environment", with_top(MAIN, ("environment", [1, 2]), first=True), main_ok()),
    (
        "two-channels",
        mk(MAIN, {"application": Dup([("name", "Firefox"), ("channel", "release"), ("channel", "beta")])}),
        main_ok(channel="beta"),
    ),
    (
        "channel-then-null-channel",
        mk(MAIN, {"application": Dup([("name", "Firefox"), ("channel", "release"), ("channel", None)])}),
        main_ok(channel=None),
    ),
    (
        "two-process-types-content-then-main",
        mk(CRASH, {"payload": Dup([("crashDate", "2016-03-02"), ("processType", "content"), ("processType", "main")])}),
        crash_ok(),
    ),
    (
        "two-process-types-main-then-content",
        mk(CRASH, {"payload": Dup([("crashDate", "2016-03-02"), ("processType", "main"), ("processType", "content")])}),
        Ignored("content_crash", crash=True),
    ),
    (
        "two-crash-dates-valid-then-invalid",
        mk(CRASH, {"payload": Dup([("crashDate", "2016-03-02"), ("crashDate", "2016-3-2")])}),
        crash_ok("2016-03-04"),
    ),
    (
        "two-histogram-counts",
        mk(MAIN, {"payload.keyedHistograms.SUBPROCESS_CRASHES_WITH_DUMP.content.values": Dup([("0", 5), ("0", 2)])}),
        main_ok(stats=stats(usage=2.0, content_crashes=2.0)),
    ),
    ("duplicate-unrelated-key", with_top(MAIN, ("x", 1), ("x", [2])), main_ok()),
)


@pytest.mark.parametrize("line, expected", DUPLICATE_KEY_CASES)
def test_duplicate_keys_last_wins(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# -- 2. doc type -----------------------------------------------------------------------

OTHER = Ignored("other_doc_type")
NO_DOC_TYPE = mk(MAIN, {"meta.docType": DEL})

DOC_TYPE_CASES = cases(
    ("meta-main", MAIN, main_ok()),
    ("meta-crash", CRASH, crash_ok()),
    ("bare-main", BARE_MAIN, Processed(False, "2016-03-03", BARE_DIMS, stats(usage=1.0))),
    ("bare-crash", BARE_CRASH, Processed(True, "2016-03-01", BARE_DIMS, CRASH_STATS)),
    *[
        (f"meta-{name}", mk(MAIN, {"meta.docType": value}), OTHER)
        for name, value in [
            ("core", "core"),
            ("event", "event"),
            ("Main", "Main"),
            ("MAIN", "MAIN"),
            ("CRASH", "CRASH"),
            ("space-main", " main"),
            ("main-space", "main "),
            ("empty", ""),
            ("main-nul", "main\x00"),
            ("int-1", 1),
            ("int-0", 0),
            ("true", True),
            ("false", False),
            ("list-main", ["main"]),
            ("object", {"main": 1}),
        ]
    ],
    # present but not a string: no fallback to `type`, even when `type` is "main"
    ("meta-number-with-type-main", mk(MAIN, {"meta.docType": 4, "type": "main"}), OTHER),
    ("meta-other-with-type-main", mk(MAIN, {"meta.docType": "core", "type": "main"}), OTHER),
    # fallback to the top-level `type` when meta.docType is missing or null
    ("missing-type-main", NO_DOC_TYPE, main_ok()),
    ("null-type-main", mk(MAIN, {"meta.docType": None}), main_ok()),
    ("missing-type-crash", mk(CRASH, {"meta.docType": DEL}), crash_ok()),
    ("null-type-crash", mk(CRASH, {"meta.docType": None}), crash_ok()),
    ("missing-type-missing", mk(NO_DOC_TYPE, {"type": DEL}), OTHER),
    ("missing-type-null", mk(NO_DOC_TYPE, {"type": None}), OTHER),
    ("null-type-null", mk(MAIN, {"meta.docType": None, "type": None}), OTHER),
    ("missing-type-Main", mk(NO_DOC_TYPE, {"type": "Main"}), OTHER),
    ("missing-type-core", mk(NO_DOC_TYPE, {"type": "core"}), OTHER),
    ("missing-type-number", mk(NO_DOC_TYPE, {"type": 1}), OTHER),
    ("missing-type-object", mk(NO_DOC_TYPE, {"type": {"name": "main"}}), OTHER),
    ("meta-absent-type-main", without(MAIN, "meta"), main_ok(country=None)),
    ("meta-empty-type-main", mk(MAIN, {"meta": {}}), main_ok(country=None)),
    ("meta-null-type-main", mk(MAIN, {"meta": None}), main_ok(country=None)),
    ("meta-number-type-main", mk(MAIN, {"meta": 3}), main_ok(country=None)),
    ("meta-string-type-main", mk(MAIN, {"meta": "main"}), main_ok(country=None)),
    ("meta-list-type-main", mk(MAIN, {"meta": [{"docType": "crash"}]}), main_ok(country=None)),
    ("meta-absent-type-crash", without(CRASH, "meta"), crash_ok(country=None)),
    # meta.docType wins over `type`
    ("meta-main-type-crash", mk(MAIN, {"type": "crash"}), main_ok()),
    ("meta-crash-type-main", mk(CRASH, {"type": "main"}), crash_ok()),
    # the doc type alone decides which rules apply: MAIN's content as a crash ping
    (
        "main-content-as-crash",
        mk(MAIN, {"meta.docType": "crash"}),
        Processed(True, "2016-03-04", MAIN_DIMS, CRASH_STATS),
    ),
    ("crash-content-as-main", mk(CRASH, {"meta.docType": "main"}), Ignored("invalid_subsession_length")),
    ("empty-object", b"{}", OTHER),
    ("empty-object-spaces", b" { } ", OTHER),
)


@pytest.mark.parametrize("line, expected", DOC_TYPE_CASES)
def test_doc_type(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


def test_counters_per_doc_type(tier):
    """Malformed lines and other doc types count as main pings; blank lines are not counted."""
    rules = rules_for(tier=tier)
    lines = [
        encode(MAIN),
        encode(MAIN),
        encode(CRASH),
        b"",
        b"   ",
        b"\t\r\n",
        b"not json",
        encode(mk(CRASH, {"x": Raw("NaN")})),  # a malformed crash ping is a main ping
        b"[" + encode(CRASH) + b"]",
        encode(mk(CRASH, {"meta.docType": "Crash"})),  # other doc type: a main ping
        encode(mk(MAIN, {"meta.docType": "core"})),
        encode(mk(CRASH, {"payload.processType": "content"})),
        encode(mk(CRASH, {"meta.submissionDate": "20160304"})),
        encode(mk(MAIN, {"environment.build.buildId": None})),
        encode(mk(MAIN, {"payload.info.subsessionLength": None})),
    ]
    agg = DayAggregate()
    agg.add_lines(rules, lines)
    counters = agg.counters()
    assert counters["main_pings_processed"] == 2
    assert counters["crash_pings_processed"] == 1
    assert counters["main_pings_ignored"] == 7
    assert counters["crash_pings_ignored"] == 2
    assert counters["ignored_by_reason"] == {
        "oversized": 0,
        "malformed_json": 3,
        "other_doc_type": 2,
        "content_crash": 1,
        "invalid_submission_date": 1,
        "invalid_activity_date": 0,
        "invalid_build_id": 1,
        "invalid_subsession_length": 1,
    }
    assert counters["ignored_by_doc_type"] == {
        "main": {"malformed_json": 3, "other_doc_type": 2, "invalid_build_id": 1, "invalid_subsession_length": 1},
        "crash": {"content_crash": 1, "invalid_submission_date": 1},
    }
    assert agg.pings == len(lines) - 3  # every non-blank line, exactly once
    assert agg.aggregates[("2016-03-03", tuple(MAIN_DIMS.values()))] == [2 * v for v in MAIN_STATS.values()]
    assert agg.aggregates[("2016-03-02", tuple(CRASH_DIMS.values()))] == list(CRASH_STATS.values())


# -- 2. content_crash ------------------------------------------------------------------

CONTENT = Ignored("content_crash", crash=True)

CONTENT_CRASH_CASES = cases(
    *[
        (f"process-type-{name}", mk(CRASH, {"payload.processType": value}), CONTENT)
        for name, value in [
            ("content", "content"),
            ("gpu", "gpu"),
            ("plugin", "plugin"),
            ("gmplugin", "gmplugin"),
            ("rdd", "rdd"),
            ("empty-string", ""),
            ("Main", "Main"),
            ("MAIN", "MAIN"),
            ("space-main", " main"),
            ("main-space", "main "),
            ("int-0", 0),
            ("int-1", 1),
            ("float", 1.5),
            ("false", False),
            ("true", True),
            ("empty-object", {}),
            ("object", {"type": "main"}),
            ("empty-list", []),
            ("list-main", ["main"]),
        ]
    ],
    ("process-type-main", mk(CRASH, {"payload.processType": "main"}), crash_ok()),
    ("process-type-null", mk(CRASH, {"payload.processType": None}), crash_ok()),
    ("process-type-missing", CRASH, crash_ok()),
    ("payload-number", mk(CRASH, {"payload": 3}), crash_ok("2016-03-04")),
    ("payload-list", mk(CRASH, {"payload": [{"processType": "content"}]}), crash_ok("2016-03-04")),
    ("payload-null", mk(CRASH, {"payload": None}), crash_ok("2016-03-04")),
    ("payload-missing", without(CRASH, "payload"), crash_ok("2016-03-04")),
    # a main ping is never a content crash
    ("main-ping-process-type-content", mk(MAIN, {"payload.processType": "content"}), main_ok()),
    ("main-ping-process-type-gpu", mk(MAIN, {"payload.processType": "gpu"}), main_ok()),
    ("main-ping-process-type-empty", mk(MAIN, {"payload.processType": ""}), main_ok()),
    # the doc type comes from meta.docType, falling back to `type`
    ("type-crash-only-content", mk(CRASH, {"meta.docType": None, "payload.processType": "content"}), CONTENT),
    (
        "doc-type-main-type-crash-content",
        mk(CRASH, {"meta.docType": "main", "payload.processType": "content"}),
        Ignored("invalid_subsession_length"),
    ),
)


@pytest.mark.parametrize("line, expected", CONTENT_CRASH_CASES)
def test_content_crash(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# -- 2. invalid_submission_date (D = 2016-03-05) --------------------------------------

BAD_SUBMISSION = Ignored("invalid_submission_date")

SUBMISSION_DATE_CASES = cases(
    ("same-day", mk(MAIN, {"meta.submissionDate": "20160305"}), main_ok()),
    ("null", mk(MAIN, {"meta.submissionDate": None}), main_ok()),
    ("missing", mk(MAIN, {"meta.submissionDate": DEL}), main_ok()),
    *[
        (f"bad-{name}", mk(MAIN, {"meta.submissionDate": value}), BAD_SUBMISSION)
        for name, value in [
            ("day-before", "20160304"),
            ("day-after", "20160306"),
            ("year-before", "20150305"),
            ("year-after", "20170305"),
            ("dashes", "2016-03-05"),
            ("slashes", "2016/03/05"),
            ("iso-timestamp", "2016-03-05T00:00:00Z"),
            ("yymmdd", "160305"),
            ("nine-digits", "201603050"),
            ("seven-digits", "2016035"),
            ("leading-space", " 20160305"),
            ("trailing-space", "20160305 "),
            ("trailing-newline", "20160305\n"),
            ("empty", ""),
            ("february-30", "20160230"),
            ("month-13", "20161305"),
            ("zeros", "00000000"),
            ("fullwidth-digits", "２０１６０３０５"),
            ("arabic-indic-digits", "٢٠١٦٠٣٠٥"),
            ("integer", 20160305),
            ("float", 20160305.0),
            ("true", True),
            ("list", ["20160305"]),
            ("object", {"date": "20160305"}),
        ]
    ],
    (
        "crash-ping-other-day",
        mk(CRASH, {"meta.submissionDate": "20160304"}),
        Ignored("invalid_submission_date", crash=True),
    ),
    (
        "crash-ping-integer",
        mk(CRASH, {"meta.submissionDate": 20160305}),
        Ignored("invalid_submission_date", crash=True),
    ),
    ("crash-ping-null", mk(CRASH, {"meta.submissionDate": None}), crash_ok()),
)


@pytest.mark.parametrize("line, expected", SUBMISSION_DATE_CASES)
def test_submission_date(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


@pytest.mark.parametrize(
    "day, submission_date, valid",
    [
        (date(2016, 2, 29), "20160229", True),  # leap day
        (date(2016, 2, 29), "20160301", False),
        (date(2016, 1, 1), "20160101", True),
        (date(2016, 1, 1), "20151231", False),
        (date(2015, 12, 31), "20151231", True),
    ],
)
def test_submission_date_other_days(day, submission_date, valid, tier):
    doc = mk(MAIN, {"meta.submissionDate": submission_date, "payload.info.subsessionStartDate": day.isoformat()})
    expected = main_ok(day.isoformat()) if valid else BAD_SUBMISSION
    check(encode(doc), expected, rules_for(submission_date=day, tier=tier))


# -- 3. activity date (D = 2016-03-05, D - 7 = 2016-02-27) ------------------------------
# MAIN: subsessionStartDate 2016-03-03, creationDate 2016-03-04; CRASH: crashDate
# 2016-03-02, creationDate 2016-03-04. "fallback" means creationDate was used.

NO_ACTIVITY = Ignored("invalid_activity_date")
START = "payload.info.subsessionStartDate"

UNUSABLE_DATES = [
    ("no-zero-padding", "2016-3-3"),
    ("february-30", "2016-02-30"),
    ("february-29-non-leap", "2015-02-29"),
    ("iso-week", "2016-W10-3"),
    ("ordinal", "2016-063"),
    ("month-13", "2016-13-01"),
    ("month-00", "2016-00-10"),
    ("day-00", "2016-03-00"),
    ("day-32", "2016-03-32"),
    ("year-0000", "0000-01-01"),
    ("compact", "20160303"),
    ("slashes", "2016/03/03"),
    ("dots", "2016.03.03"),
    ("nine-chars", "2016-03-0"),
    ("empty", ""),
    ("leading-space", " 2016-03-03"),
    ("us-order", "03-03-2016"),
    ("two-digit-year", "16-03-03T00:00:00"),
    ("fullwidth-digit", "2016-03-0３"),
    ("arabic-indic-digits", "٢٠١٦-٠٣-٠٣"),
    ("signed-year", "+2016-03-03"),
    ("word", "yesterday"),
    ("integer", 20160303),
    ("float", 1457000000.0),
    ("true", True),
    ("list", ["2016-03-03"]),
    ("object", {"date": "2016-03-03"}),
    ("null", None),
    ("missing", DEL),
]

ACTIVITY_DATE_CASES = cases(
    ("main-start-date", MAIN, main_ok("2016-03-03")),
    ("main-start-date-exactly-10-chars", mk(MAIN, {START: "2016-03-03"}), main_ok("2016-03-03")),
    ("main-start-date-first-10-chars-of-garbage", mk(MAIN, {START: "2016-03-03garbage"}), main_ok("2016-03-03")),
    ("main-start-date-utc-offset-ignored", mk(MAIN, {START: "2016-03-03T23:30:00.0-11:00"}), main_ok("2016-03-03")),
    ("main-start-date-non-ascii-after-10", mk(MAIN, {START: "2016-03-03日本"}), main_ok("2016-03-03")),
    ("main-start-date-is-d", mk(MAIN, {START: "2016-03-05T23:59:59"}), main_ok("2016-03-05")),
    ("main-start-date-d-minus-7", mk(MAIN, {START: "2016-02-27T00:00:00"}), main_ok("2016-02-27")),
    ("main-start-date-d-minus-8-clamped", mk(MAIN, {START: "2016-02-26T23:59:59"}), main_ok("2016-02-27")),
    ("main-start-date-long-ago-clamped", mk(MAIN, {START: "2015-01-01"}), main_ok("2016-02-27")),
    ("main-start-date-year-0001-clamped", mk(MAIN, {START: "0001-01-01"}), main_ok("2016-02-27")),
    ("main-start-date-d-plus-1-clamped", mk(MAIN, {START: "2016-03-06T00:00:00"}), main_ok("2016-03-05")),
    ("main-start-date-next-year-clamped", mk(MAIN, {START: "2017-01-01"}), main_ok("2016-03-05")),
    ("main-start-date-year-9999-clamped", mk(MAIN, {START: "9999-12-31"}), main_ok("2016-03-05")),
    ("main-start-date-leap-day", mk(MAIN, {START: "2016-02-29"}), main_ok("2016-02-29")),
    # a usable but out-of-range primary date is clamped, never replaced by creationDate
    (
        "main-out-of-range-start-date-not-replaced",
        mk(MAIN, {START: "2016-01-01", "creationDate": "2016-03-04T00:00:00Z"}),
        main_ok("2016-02-27"),
    ),
    *[
        (f"main-start-date-{name}-fallback", mk(MAIN, {START: value}), main_ok("2016-03-04"))
        for name, value in UNUSABLE_DATES
    ],
    ("main-payload-info-3-fallback", mk(MAIN, {"payload.info": 3}), Ignored("invalid_subsession_length")),
    (
        "main-fallback-clamped-early",
        mk(MAIN, {START: "bad", "creationDate": "2016-01-01T00:00:00Z"}),
        main_ok("2016-02-27"),
    ),
    (
        "main-fallback-clamped-late",
        mk(MAIN, {START: "bad", "creationDate": "2016-03-09T00:00:00Z"}),
        main_ok("2016-03-05"),
    ),
    ("main-fallback-exactly-10-chars", mk(MAIN, {START: None, "creationDate": "2016-03-01"}), main_ok("2016-03-01")),
    *[
        (f"main-no-start-date-creation-{name}", mk(MAIN, {START: DEL, "creationDate": value}), NO_ACTIVITY)
        for name, value in UNUSABLE_DATES
    ],
    ("main-both-unusable", mk(MAIN, {START: "2016-3-3", "creationDate": "2016-3-4"}), NO_ACTIVITY),
    # a main ping does not read payload.crashDate
    (
        "main-ignores-crash-date",
        mk(MAIN, {START: DEL, "creationDate": DEL, "payload.crashDate": "2016-03-03"}),
        NO_ACTIVITY,
    ),
    # crash pings read payload.crashDate
    ("crash-crash-date", CRASH, crash_ok("2016-03-02")),
    (
        "crash-crash-date-timestamp",
        mk(CRASH, {"payload.crashDate": "2016-03-02T23:59:59.999Z"}),
        crash_ok("2016-03-02"),
    ),
    ("crash-crash-date-d-minus-8-clamped", mk(CRASH, {"payload.crashDate": "2016-02-26"}), crash_ok("2016-02-27")),
    ("crash-crash-date-d-plus-1-clamped", mk(CRASH, {"payload.crashDate": "2016-03-06"}), crash_ok("2016-03-05")),
    *[
        (f"crash-crash-date-{name}-fallback", mk(CRASH, {"payload.crashDate": value}), crash_ok("2016-03-04"))
        for name, value in UNUSABLE_DATES
    ],
    (
        "crash-fallback-clamped-early",
        mk(CRASH, {"payload.crashDate": None, "creationDate": "2015-12-31T23:00:00Z"}),
        crash_ok("2016-02-27"),
    ),
    (
        "crash-no-dates",
        mk(CRASH, {"payload.crashDate": DEL, "creationDate": DEL}),
        Ignored("invalid_activity_date", crash=True),
    ),
    (
        "crash-both-unusable",
        mk(CRASH, {"payload.crashDate": "2016-02-30", "creationDate": 20160304}),
        Ignored("invalid_activity_date", crash=True),
    ),
    # a crash ping does not read payload.info.subsessionStartDate
    (
        "crash-ignores-start-date",
        mk(CRASH, {"payload.crashDate": DEL, "creationDate": DEL, START: "2016-03-03"}),
        Ignored("invalid_activity_date", crash=True),
    ),
)


@pytest.mark.parametrize("line, expected", ACTIVITY_DATE_CASES)
def test_activity_date(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


@pytest.mark.parametrize(
    "day, start_date, activity",
    [
        (date(2016, 1, 3), "2015-12-27", "2015-12-27"),  # D - 7 across a year boundary
        (date(2016, 1, 3), "2015-12-26", "2015-12-27"),
        (date(2016, 1, 3), "2016-01-04", "2016-01-03"),
        (date(2016, 3, 1), "2016-02-23", "2016-02-23"),  # D - 7 across a leap day
        (date(2016, 3, 1), "2016-02-22", "2016-02-23"),
        (date(2015, 3, 1), "2015-02-22", "2015-02-22"),
        (date(2015, 3, 1), "2015-02-21", "2015-02-22"),
    ],
)
def test_activity_date_clamp_other_days(day, start_date, activity, tier):
    doc = mk(MAIN, {"meta.submissionDate": day.strftime("%Y%m%d"), START: start_date + "T12:00:00"})
    check(encode(doc), main_ok(activity), rules_for(submission_date=day, tier=tier))


def test_activity_date_cache_does_not_leak_between_days():
    """PingRules caches parsed prefixes; the clamp depends on D."""
    line = encode(mk(MAIN, {"meta.submissionDate": None, START: "2016-02-20"}))
    assert pings.PingRules(default_config(), date(2016, 3, 5)).evaluate(line).key[0] == "2016-02-27"
    assert pings.PingRules(default_config(), date(2016, 2, 21)).evaluate(line).key[0] == "2016-02-20"


# -- 2. invalid_build_id -------------------------------------------------------------------

BAD_BUILD = Ignored("invalid_build_id")
BUILD_ID = "environment.build.buildId"

BUILD_ID_CASES = cases(
    ("valid", MAIN, main_ok()),
    ("all-zeros", mk(MAIN, {BUILD_ID: "00000000000000"}), main_ok(build_id="00000000000000")),
    ("all-nines", mk(MAIN, {BUILD_ID: "99999999999999"}), main_ok(build_id="99999999999999")),
    *[
        (f"bad-{name}", mk(MAIN, {BUILD_ID: value}), BAD_BUILD)
        for name, value in [
            ("13-digits", "2016030112345"),
            ("15-digits", "201603011234567"),
            ("integer", 20160301123456),
            ("float", 20160301123456.0),
            ("letter", "2016030112345a"),
            ("hex", "2016030112345f"),
            ("dashes", "2016-03-01-123"),
            ("leading-space", " 20160301123456"),
            ("trailing-space", "20160301123456 "),
            ("trailing-newline", "20160301123456\n"),
            ("signed", "+2016030112345"),
            ("empty", ""),
            ("fullwidth-digits", "２０１６０３０１１２３４５６"),
            ("arabic-indic-digits", "٢٠١٦٠٣٠١١٢٣٤٥٦"),
            ("extended-arabic-indic-digits", "۲۰۱۶۰۳۰۱۱۲۳۴۵۶"),
            ("devanagari-digits", "२०१६०३०११२३४५६"),
            ("math-bold-digits", "𝟐𝟎𝟏𝟔𝟎𝟑𝟎𝟏𝟏𝟐𝟑𝟒𝟓𝟔"),
            ("one-non-ascii-digit", "2016030112345٦"),
            ("superscript-digit", "2016030112345²"),
            ("true", True),
            ("list", ["20160301123456"]),
            ("object", {"id": "20160301123456"}),
            ("null", None),
            ("missing", DEL),
        ]
    ],
    ("build-missing", mk(MAIN, {"environment.build": DEL}), BAD_BUILD),
    ("build-string", mk(MAIN, {"environment.build": "20160301123456"}), BAD_BUILD),
    ("environment-number", mk(MAIN, {"environment": 3}), BAD_BUILD),
    ("environment-string", mk(MAIN, {"environment": {"build": "x"}}), BAD_BUILD),
    ("environment-missing", without(MAIN, "environment"), BAD_BUILD),
    # only environment.build.buildId counts, not application.buildId
    ("only-application-build-id", mk(MAIN, {BUILD_ID: DEL, "application.buildId": "20160301123456"}), BAD_BUILD),
    ("crash-13-digits", mk(CRASH, {BUILD_ID: "2016022900000"}), Ignored("invalid_build_id", crash=True)),
    ("crash-missing", mk(CRASH, {BUILD_ID: DEL}), Ignored("invalid_build_id", crash=True)),
)


@pytest.mark.parametrize("line, expected", BUILD_ID_CASES)
def test_build_id(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# -- 2. invalid_subsession_length / 5. usage_hours ---------------------------------------

BAD_LENGTH = Ignored("invalid_subsession_length")
LENGTH = "payload.info.subsessionLength"


def usage(hours: float) -> Processed:
    return main_ok(stats=stats(usage=hours))


SUBSESSION_LENGTH_CASES = cases(
    ("zero", mk(MAIN, {LENGTH: 0}), usage(0.0)),
    ("float-zero", mk(MAIN, {LENGTH: 0.0}), usage(0.0)),
    ("one-hour", mk(MAIN, {LENGTH: 3600}), usage(1.0)),
    ("fraction", mk(MAIN, {LENGTH: 1800.5}), usage(1800.5 / 3600)),
    ("exponent-form", mk(MAIN, {LENGTH: Raw("3.6e3")}), usage(1.0)),
    ("negative-one", mk(MAIN, {LENGTH: -1}), usage(0.0)),
    ("negative-hour", mk(MAIN, {LENGTH: -3600}), usage(0.0)),
    ("negative-zero", mk(MAIN, {LENGTH: Raw("-0.0")}), usage(0.0)),
    ("negative-huge", mk(MAIN, {LENGTH: -1e308}), usage(0.0)),
    ("exactly-25-hours", mk(MAIN, {LENGTH: 25 * 3600}), usage(25.0)),
    ("25-hours-plus-one-second", mk(MAIN, {LENGTH: 25 * 3600 + 1}), usage(25.0)),
    ("1e308", mk(MAIN, {LENGTH: 1e308}), usage(25.0)),
    ("max-double", mk(MAIN, {LENGTH: Raw("1.7976931348623157e308")}), usage(25.0)),
    ("2-pow-64-int", mk(MAIN, {LENGTH: 2**64}), usage(25.0)),
    ("10-pow-300-int", mk(MAIN, {LENGTH: Raw("1" + "0" * 300)}), usage(25.0)),
    ("tiny-denormal", mk(MAIN, {LENGTH: 5e-324}), usage(5e-324 / 3600)),
    ("underflow-to-zero", mk(MAIN, {LENGTH: Raw("1e-400")}), usage(0.0)),
    # not finite once read as a double: 1e400 parses to inf; an integer
    # literal of the same magnitude is the same JSON number, so it too
    ("1e400-literal", mk(MAIN, {LENGTH: Raw("1e400")}), BAD_LENGTH),
    ("minus-1e400-literal", mk(MAIN, {LENGTH: Raw("-1e400")}), BAD_LENGTH),
    ("10-pow-400-int-literal", mk(MAIN, {LENGTH: Raw("1" + "0" * 400)}), BAD_LENGTH),
    ("minus-10-pow-400-int-literal", mk(MAIN, {LENGTH: Raw("-1" + "0" * 400)}), BAD_LENGTH),
    ("5000-digit-int-literal", mk(MAIN, {LENGTH: Raw(BIG_INT)}), BAD_LENGTH),
    ("missing", mk(MAIN, {LENGTH: DEL}), BAD_LENGTH),
    ("null", mk(MAIN, {LENGTH: None}), BAD_LENGTH),
    ("string-number", mk(MAIN, {LENGTH: "7200"}), BAD_LENGTH),
    ("empty-string", mk(MAIN, {LENGTH: ""}), BAD_LENGTH),
    ("string-nan", mk(MAIN, {LENGTH: "NaN"}), BAD_LENGTH),
    ("true", mk(MAIN, {LENGTH: True}), BAD_LENGTH),
    ("false", mk(MAIN, {LENGTH: False}), BAD_LENGTH),
    ("list", mk(MAIN, {LENGTH: [7200]}), BAD_LENGTH),
    ("object", mk(MAIN, {LENGTH: {"value": 7200}}), BAD_LENGTH),
    ("info-missing", mk(MAIN, {"payload.info": DEL}), BAD_LENGTH),
    ("info-string", mk(MAIN, {"payload.info": "x"}), BAD_LENGTH),
    ("payload-missing", without(MAIN, "payload"), BAD_LENGTH),
    ("payload-number", mk(MAIN, {"payload": 3}), BAD_LENGTH),
    # crash pings: subsessionLength is not read, usage is 0
    ("crash-missing", CRASH, crash_ok()),
    ("crash-string", mk(CRASH, {LENGTH: "x"}), crash_ok()),
    ("crash-one-hour", mk(CRASH, {LENGTH: 3600}), crash_ok()),
    ("crash-1e400", mk(CRASH, {LENGTH: Raw("1e400")}), crash_ok()),
)


@pytest.mark.parametrize("line, expected", SUBSESSION_LENGTH_CASES)
def test_subsession_length(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# -- 2. precedence -------------------------------------------------------------------------

# ``oversized``, first of all, is the readers' (test_oversized.py); the rest are PingRules'.
RULE_REASONS = REASONS[1:]
DEFECTS = {
    "malformed_json": {"zz": Raw("NaN")},
    "other_doc_type": {"meta.docType": "event"},
    "content_crash": {"payload.processType": "content"},
    "invalid_submission_date": {"meta.submissionDate": "20160304"},
    "invalid_activity_date": {START: "bad", "payload.crashDate": "bad", "creationDate": DEL},
    "invalid_build_id": {BUILD_ID: "2016"},
    "invalid_subsession_length": {LENGTH: "7200"},
}
assert list(DEFECTS) == RULE_REASONS


def _applicable(base_name: str, reason: str) -> bool:
    if reason == "content_crash":
        return base_name == "crash"
    if reason == "invalid_subsession_length":
        return base_name == "main"
    return True


def _with_defects(base_name: str, reasons) -> bytes:
    doc = MAIN if base_name == "main" else CRASH
    for reason in reasons:
        doc = mk(doc, DEFECTS[reason])
    return encode(doc)


def _expected(base_name: str, reason: str) -> Ignored:
    return Ignored(reason, crash=base_name == "crash" and reason not in ("malformed_json", "other_doc_type"))


PAIRS = [
    pytest.param(_with_defects(base, (first, second)), _expected(base, first), id=f"{base}-{first}-beats-{second}")
    for base in ("main", "crash")
    for i, first in enumerate(RULE_REASONS)
    for second in RULE_REASONS[i + 1 :]
    if _applicable(base, first) and _applicable(base, second)
]
SINGLES = [
    pytest.param(_with_defects(base, (reason,)), _expected(base, reason), id=f"{base}-only-{reason}")
    for base in ("main", "crash")
    for reason in RULE_REASONS
    if _applicable(base, reason)
]
CASCADE = [
    pytest.param(
        _with_defects(base, [r for r in RULE_REASONS[i:] if _applicable(base, r)]),
        _expected(base, RULE_REASONS[i]),
        id=f"{base}-all-from-{RULE_REASONS[i]}",
    )
    for base in ("main", "crash")
    for i in range(len(RULE_REASONS))
    if _applicable(base, RULE_REASONS[i])
]


@pytest.mark.parametrize("line, expected", SINGLES + PAIRS + CASCADE)
def test_precedence(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# -- 4. dimensions -------------------------------------------------------------------------

CHANNEL = "application.channel"

DIMENSION_CASES = cases(
    ("all-present", MAIN, main_ok()),
    ("crash-all-present", CRASH, crash_ok()),
    # strings are kept as they are
    ("string-empty", mk(MAIN, {CHANNEL: ""}), main_ok(channel="")),
    ("string-space", mk(MAIN, {CHANNEL: " "}), main_ok(channel=" ")),
    ("string-unicode", mk(MAIN, {CHANNEL: "nïght-日本-😀"}), main_ok(channel="nïght-日本-😀")),
    ("string-none-word", mk(MAIN, {CHANNEL: "none"}), main_ok(channel="none")),
    ("string-null-word", mk(MAIN, {CHANNEL: "null"}), main_ok(channel="null")),
    ("string-true-word", mk(MAIN, {CHANNEL: "true"}), main_ok(channel="true")),
    ("string-digits", mk(MAIN, {CHANNEL: "007"}), main_ok(channel="007")),
    ("string-long", mk(MAIN, {CHANNEL: "x" * 10_000}), main_ok(channel="x" * 10_000)),
    ("string-newline-escape", mk(MAIN, {CHANNEL: "a\nb"}), main_ok(channel="a\nb")),
    ("country-empty", mk(MAIN, {"meta.geoCountry": ""}), main_ok(country="")),
    ("country-unknown", mk(MAIN, {"meta.geoCountry": "??"}), main_ok(country="??")),
    # booleans
    ("true", mk(MAIN, {"environment.settings.e10sEnabled": True}), main_ok(e10s_enabled="True")),
    ("false", mk(MAIN, {"environment.settings.e10sEnabled": False}), main_ok(e10s_enabled="False")),
    ("true-in-string-dimension", mk(MAIN, {CHANNEL: True}), main_ok(channel="True")),
    # integers: decimal digits
    ("int", mk(MAIN, {"environment.settings.e10sCohort": 42}), main_ok(e10s_cohort="42")),
    ("int-zero", mk(MAIN, {CHANNEL: 0}), main_ok(channel="0")),
    ("int-negative", mk(MAIN, {CHANNEL: -7}), main_ok(channel="-7")),
    ("int-minus-zero", mk(MAIN, {CHANNEL: Raw("-0")}), main_ok(channel="0")),
    ("int-2-pow-63", mk(MAIN, {CHANNEL: 2**63}), main_ok(channel="9223372036854775808")),
    ("int-2-pow-64", mk(MAIN, {CHANNEL: 2**64}), main_ok(channel="18446744073709551616")),
    ("int-minus-2-pow-63-minus-1", mk(MAIN, {CHANNEL: -(2**63) - 1}), main_ok(channel="-9223372036854775809")),
    ("int-10-pow-400", mk(MAIN, {CHANNEL: Raw("1" + "0" * 400)}), main_ok(channel="1" + "0" * 400)),
    ("int-5000-digits", mk(MAIN, {CHANNEL: Raw(BIG_INT)}), main_ok(channel=BIG_INT)),
    ("int-minus-5000-digits", mk(MAIN, {CHANNEL: Raw("-" + BIG_INT)}), main_ok(channel="-" + BIG_INT)),
    # other numbers: shortest round-trip form, as Python's repr() writes it
    ("float-1.5", mk(MAIN, {CHANNEL: 1.5}), main_ok(channel="1.5")),
    ("float-0.1", mk(MAIN, {CHANNEL: 0.1}), main_ok(channel="0.1")),
    ("float-1.0-keeps-its-point", mk(MAIN, {CHANNEL: Raw("1.0")}), main_ok(channel="1.0")),
    ("float-exponent-1E2", mk(MAIN, {CHANNEL: Raw("1E2")}), main_ok(channel="100.0")),
    ("float-1e16", mk(MAIN, {CHANNEL: Raw("1e16")}), main_ok(channel="1e+16")),
    ("float-1e22", mk(MAIN, {CHANNEL: Raw("1e22")}), main_ok(channel="1e+22")),
    ("float-1e-7", mk(MAIN, {CHANNEL: Raw("1e-7")}), main_ok(channel="1e-07")),
    ("float-minus-zero", mk(MAIN, {CHANNEL: Raw("-0.0")}), main_ok(channel="-0.0")),
    ("float-excess-digits", mk(MAIN, {CHANNEL: Raw("123456789.123456789")}), main_ok(channel="123456789.12345679")),
    ("float-denormal", mk(MAIN, {CHANNEL: Raw("5e-324")}), main_ok(channel="5e-324")),
    ("float-max", mk(MAIN, {CHANNEL: Raw("1.7976931348623157e308")}), main_ok(channel="1.7976931348623157e+308")),
    ("float-underflow", mk(MAIN, {CHANNEL: Raw("1e-400")}), main_ok(channel="0.0")),
    (
        "float-large-mantissa",
        mk(MAIN, {CHANNEL: Raw("123456789012345678901234567890.5")}),
        main_ok(channel="1.2345678901234568e+29"),
    ),
    # a double that overflows has no decimal form: absent (decision, see the module doc)
    ("float-overflow", mk(MAIN, {CHANNEL: Raw("1e400")}), main_ok(channel=None)),
    ("float-negative-overflow", mk(MAIN, {CHANNEL: Raw("-1e400")}), main_ok(channel=None)),
    # absent
    ("null", mk(MAIN, {CHANNEL: None}), main_ok(channel=None)),
    ("missing", mk(MAIN, {CHANNEL: DEL}), main_ok(channel=None)),
    ("empty-object", mk(MAIN, {CHANNEL: {}}), main_ok(channel=None)),
    ("object", mk(MAIN, {CHANNEL: {"name": "release"}}), main_ok(channel=None)),
    ("empty-array", mk(MAIN, {CHANNEL: []}), main_ok(channel=None)),
    ("array", mk(MAIN, {CHANNEL: ["release"]}), main_ok(channel=None)),
    (
        "active-experiment-empty",
        mk(MAIN, {"environment.addons.activeExperiment": {}}),
        main_ok(experiment_id=None, experiment_branch=None),
    ),
    # a path that runs into a non-object is missing
    ("application-number", mk(MAIN, {"application": 3}), main_ok(channel=None, application=None)),
    ("application-string", mk(MAIN, {"application": "Firefox"}), main_ok(channel=None, application=None)),
    ("application-array", mk(MAIN, {"application": [{"channel": "release"}]}), main_ok(channel=None, application=None)),
    ("application-null", mk(MAIN, {"application": None}), main_ok(channel=None, application=None)),
    ("system-number", mk(MAIN, {"environment.system": 3}), main_ok(os_name=None, os_version=None)),
    ("os-string", mk(MAIN, {"environment.system.os": "Windows_NT 10.0"}), main_ok(os_name=None, os_version=None)),
    ("addons-array", mk(MAIN, {"environment.addons": []}), main_ok(experiment_id=None, experiment_branch=None)),
    (
        "active-experiment-string",
        mk(MAIN, {"environment.addons.activeExperiment": "exp"}),
        main_ok(experiment_id=None, experiment_branch=None),
    ),
    ("settings-false", mk(MAIN, {"environment.settings": False}), main_ok(e10s_enabled=None, e10s_cohort=None)),
    ("meta-string-country", mk(MAIN, {"meta": "US"}), main_ok(country=None)),
    (
        "build-keeps-build-id-only",
        mk(MAIN, {"environment.build": {"buildId": "20160301123456"}}),
        main_ok(build_version=None, architecture=None),
    ),
    # compositor is not a default dimension
    ("gfx-not-a-default-dimension", mk(MAIN, {"environment.system.gfx.features.compositor": "d3d11"}), main_ok()),
)


@pytest.mark.parametrize("line, expected", DIMENSION_CASES)
def test_dimensions(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


# gfx_compositor, enabled by configuration only
GFX_CONFIG = parse_config(
    {
        "dimensions": {
            "channel": "application.channel",
            "gfx_compositor": {"path": "environment.system.gfx.features.compositor", "absent": ["none"]},
        }
    }
)
COMPOSITOR = "environment.system.gfx.features.compositor"


def gfx(value) -> Processed:
    return Processed(
        False,
        "2016-03-03",
        {"channel": "release", "gfx_compositor": value},
        MAIN_STATS,
        dim_names=("channel", "gfx_compositor"),
    )


GFX_CASES = cases(
    ("d3d11", mk(MAIN, {COMPOSITOR: "D3D11"}), gfx("D3D11")),
    ("opengl", mk(MAIN, {COMPOSITOR: "opengl"}), gfx("opengl")),
    ("none-is-absent", mk(MAIN, {COMPOSITOR: "none"}), gfx(None)),
    ("None-capitalised-kept", mk(MAIN, {COMPOSITOR: "None"}), gfx("None")),
    ("none-with-space-kept", mk(MAIN, {COMPOSITOR: "none "}), gfx("none ")),
    ("empty-string-kept", mk(MAIN, {COMPOSITOR: ""}), gfx("")),
    ("null", mk(MAIN, {COMPOSITOR: None}), gfx(None)),
    ("missing", MAIN, gfx(None)),
    ("true", mk(MAIN, {COMPOSITOR: True}), gfx("True")),
    ("features-number", mk(MAIN, {"environment.system.gfx.features": 3}), gfx(None)),
    ("object", mk(MAIN, {COMPOSITOR: {"name": "d3d11"}}), gfx(None)),
)


@pytest.mark.parametrize("line, expected", GFX_CASES)
def test_gfx_compositor_via_config(line, expected, tier):
    check(line, expected, rules_for(GFX_CONFIG, tier=tier))


def test_gfx_compositor_appended_to_default_dimensions(tier):
    config = parse_config(
        {
            "dimensions": {d.name: ".".join(d.path) for d in default_config().dimensions}
            | {"gfx_compositor": {"path": COMPOSITOR, "absent": ["none"]}}
        }
    )
    assert config.dimensions[-1] == GFX_COMPOSITOR
    expected = Processed(
        False,
        "2016-03-03",
        MAIN_DIMS | {"gfx_compositor": "d3d11"},
        MAIN_STATS,
        dim_names=(*DIMENSIONS, "gfx_compositor"),
    )
    check(encode(mk(MAIN, {COMPOSITOR: "d3d11"})), expected, rules_for(config, tier=tier))


# Adding, removing and renaming dimensions is configuration only.
CUSTOM_DIMS_CONFIG = parse_config(
    {
        "dimensions": {
            "locale": "environment.settings.locale",  # added
            "release_channel": "application.channel",  # renamed
            "dotted_key": ["environment", "settings", "a.b"],  # a key holding a dot
            "length_as_dimension": "payload.info.subsessionLength",  # a path the rules read too
        }
    }
)
CUSTOM_DIM_NAMES = ("locale", "release_channel", "dotted_key", "length_as_dimension")


def custom(**dims) -> Processed:
    base = {"locale": "en-US", "release_channel": "release", "dotted_key": None, "length_as_dimension": "7200"}
    return Processed(False, "2016-03-03", base | dims, MAIN_STATS, dim_names=CUSTOM_DIM_NAMES)


CUSTOM_DIMENSION_CASES = cases(
    ("added-dimension", mk(MAIN, {"environment.settings.locale": "en-US"}), custom()),
    ("added-dimension-missing", MAIN, custom(locale=None)),
    ("added-dimension-number", mk(MAIN, {"environment.settings.locale": 1.25}), custom(locale="1.25")),
    (
        "dotted-key",
        mk(MAIN, {"environment.settings.locale": "en-US", ("environment", "settings", "a.b"): "x"}),
        custom(dotted_key="x"),
    ),
    (
        "dotted-key-not-nested-path",
        mk(MAIN, {"environment.settings.locale": "en-US", "environment.settings.a.b": "x"}),
        custom(),
    ),
    (
        "shared-path-with-rules",
        mk(MAIN, {"environment.settings.locale": "en-US", LENGTH: 3600}),
        Processed(
            False,
            "2016-03-03",
            custom().dims | {"length_as_dimension": "3600"},
            stats(usage=1.0),
            dim_names=CUSTOM_DIM_NAMES,
        ),
    ),
)


@pytest.mark.parametrize("line, expected", CUSTOM_DIMENSION_CASES)
def test_dimensions_from_config(line, expected, tier):
    check(line, expected, rules_for(CUSTOM_DIMS_CONFIG, tier=tier))


def test_dimension_path_that_prefixes_a_rule_path():
    """A dimension whose path is a prefix of another path disables the fast tier;
    the rules still hold (an object value is absent)."""
    config = parse_config({"dimensions": {"build": "environment.build", "channel": "application.channel"}})
    rules = pings.PingRules(config, D)
    assert rules.reader.decoder is None and rules.reader.scanner is None
    expected = Processed(
        False, "2016-03-03", {"build": None, "channel": "release"}, MAIN_STATS, dim_names=("build", "channel")
    )
    check(encode(MAIN), expected, rules)
    check(encode(mk(MAIN, {"environment.build.buildId": "x"})), Ignored("invalid_build_id"), rules)
    check(add_raw(MAIN, "x", "NaN"), MALFORMED, rules)


# -- 5. stats ------------------------------------------------------------------------------

KH = "payload.keyedHistograms"
DUMP = KH + ".SUBPROCESS_CRASHES_WITH_DUMP"
CONTENT_VALUE = DUMP + ".content.values.0"


def hist(**counts) -> Processed:
    return main_ok(stats=stats(usage=2.0, **counts))


STATS_CASES = cases(
    (
        "main-base",
        MAIN,
        Processed(
            False,
            "2016-03-03",
            MAIN_DIMS,
            {
                "ping_count": 1.0,
                "usage_hours": 2.0,
                "usage_hours_squared": 4.0,
                "main_crashes": 0.0,
                "main_crashes_squared": 0.0,
                "content_crashes": 0.0,
                "content_crashes_squared": 0.0,
                "plugin_crashes": 0.0,
                "plugin_crashes_squared": 0.0,
                "gmplugin_crashes": 0.0,
                "gmplugin_crashes_squared": 0.0,
                "gpu_crashes": 0.0,
                "gpu_crashes_squared": 0.0,
                "content_shutdown_crashes": 0.0,
                "content_shutdown_crashes_squared": 0.0,
            },
        ),
    ),
    (
        "crash-base",
        CRASH,
        Processed(
            True,
            "2016-03-02",
            CRASH_DIMS,
            {
                "ping_count": 0.0,
                "usage_hours": 0.0,
                "usage_hours_squared": 0.0,
                "main_crashes": 1.0,
                "main_crashes_squared": 1.0,
                "content_crashes": 0.0,
                "content_crashes_squared": 0.0,
                "plugin_crashes": 0.0,
                "plugin_crashes_squared": 0.0,
                "gmplugin_crashes": 0.0,
                "gmplugin_crashes_squared": 0.0,
                "gpu_crashes": 0.0,
                "gpu_crashes_squared": 0.0,
                "content_shutdown_crashes": 0.0,
                "content_shutdown_crashes_squared": 0.0,
            },
        ),
    ),
    (
        "main-all-histograms",
        mk(MAIN, {KH: HISTOGRAMS}),
        Processed(
            False,
            "2016-03-03",
            MAIN_DIMS,
            {
                "ping_count": 1.0,
                "usage_hours": 2.0,
                "usage_hours_squared": 4.0,
                "main_crashes": 0.0,
                "main_crashes_squared": 0.0,
                "content_crashes": 3.0,
                "content_crashes_squared": 9.0,
                "plugin_crashes": 2.0,
                "plugin_crashes_squared": 4.0,
                "gmplugin_crashes": 1.0,
                "gmplugin_crashes_squared": 1.0,
                "gpu_crashes": 5.0,
                "gpu_crashes_squared": 25.0,
                "content_shutdown_crashes": 4.0,
                "content_shutdown_crashes_squared": 16.0,
            },
        ),
    ),
    (
        "crash-all-histograms",
        mk(CRASH, {KH: HISTOGRAMS}),
        Processed(
            True,
            "2016-03-02",
            CRASH_DIMS,
            {
                "ping_count": 0.0,
                "usage_hours": 0.0,
                "usage_hours_squared": 0.0,
                "main_crashes": 1.0,
                "main_crashes_squared": 1.0,
                "content_crashes": 3.0,
                "content_crashes_squared": 9.0,
                "plugin_crashes": 2.0,
                "plugin_crashes_squared": 4.0,
                "gmplugin_crashes": 1.0,
                "gmplugin_crashes_squared": 1.0,
                "gpu_crashes": 5.0,
                "gpu_crashes_squared": 25.0,
                "content_shutdown_crashes": 4.0,
                "content_shutdown_crashes_squared": 16.0,
            },
        ),
    ),
    ("main-usage-half-hour", mk(MAIN, {LENGTH: 1800}), main_ok(stats=stats(usage=0.5) | {"usage_hours_squared": 0.25})),
    ("main-usage-capped", mk(MAIN, {LENGTH: 90001}), main_ok(stats=stats(usage=25.0) | {"usage_hours_squared": 625.0})),
    # each histogram lands in its own column only
    ("content-only", mk(MAIN, {CONTENT_VALUE: 7}), hist(content_crashes=7.0)),
    ("plugin-only", mk(MAIN, {DUMP + ".plugin.values.0": 7}), hist(plugin_crashes=7.0)),
    ("gmplugin-only", mk(MAIN, {DUMP + ".gmplugin.values.0": 7}), hist(gmplugin_crashes=7.0)),
    ("gpu-only", mk(MAIN, {DUMP + ".gpu.values.0": 7}), hist(gpu_crashes=7.0)),
    (
        "shutdown-kill-only",
        mk(MAIN, {KH + ".SUBPROCESS_KILL_HARD.ShutDownKill.values.0": 7}),
        hist(content_shutdown_crashes=7.0),
    ),
    (
        "full-count-histogram",
        mk(
            MAIN,
            {
                DUMP + ".content": {
                    "bucket_count": 3,
                    "histogram_type": 4,
                    "range": [1, 2],
                    "sum": 6,
                    "values": {"0": 6, "1": 0},
                }
            },
        ),
        hist(content_crashes=6.0),
    ),
    (
        "fractional-count",
        mk(MAIN, {CONTENT_VALUE: 2.5}),
        main_ok(stats=stats(usage=2.0, content_crashes=2.5) | {"content_crashes_squared": 6.25}),
    ),
    ("int-2-pow-53-plus-1", mk(MAIN, {CONTENT_VALUE: 2**53 + 1}), hist(content_crashes=9007199254740992.0)),
    ("huge-finite-count", mk(MAIN, {CONTENT_VALUE: 1e200}), hist(content_crashes=1e200)),
    # recorded: a finite count whose square overflows gives an infinite _squared
    (
        "count-1e308-square-overflows",
        mk(MAIN, {CONTENT_VALUE: 1e308}),
        main_ok(stats=stats(usage=2.0, content_crashes=1e308) | {"content_crashes_squared": float("inf")}),
    ),
    # missing, non-numeric, boolean, negative or non-finite means 0
    *[
        (f"count-{name}", mk(MAIN, {CONTENT_VALUE: value}), hist())
        for name, value in [
            ("zero", 0),
            ("null", None),
            ("missing", DEL),
            ("string", "3"),
            ("empty-string", ""),
            ("true", True),
            ("false", False),
            ("negative", -1),
            ("negative-float", -0.5),
            ("negative-zero", Raw("-0.0")),
            ("negative-huge", -1e308),
            ("1e400", Raw("1e400")),
            ("minus-1e400", Raw("-1e400")),
            ("10-pow-400-int", Raw("1" + "0" * 400)),
            ("5000-digit-int", Raw(BIG_INT)),
            ("list", [3]),
            ("object", {"count": 3}),
        ]
    ],
    ("only-bucket-1", mk(MAIN, {DUMP + ".content.values": {"1": 3}}), hist()),
    ("bucket-0-as-int-key-text", mk(MAIN, {DUMP + ".content.values": {"00": 3, " 0": 3}}), hist()),
    ("values-array", mk(MAIN, {DUMP + ".content.values": [3]}), hist()),
    ("histogram-number", mk(MAIN, {DUMP + ".content": 3}), hist()),
    ("histograms-string", mk(MAIN, {DUMP: "content"}), hist()),
    ("keyed-histograms-list", mk(MAIN, {KH: [HISTOGRAMS]}), hist()),
    ("plain-histograms-not-read", mk(MAIN, {"payload.histograms": HISTOGRAMS}), hist()),
    ("wrong-key-case", mk(MAIN, {DUMP + ".Content.values.0": 3}), hist()),
    (
        "crash-ping-usage-stays-zero",
        mk(CRASH, {LENGTH: 7200, CONTENT_VALUE: 2}),
        crash_ok(stats=stats(crash=True, content_crashes=2.0)),
    ),
)


@pytest.mark.parametrize("line, expected", STATS_CASES)
def test_stats(line, expected, tier):
    check(line, expected, rules_for(tier=tier))


def test_squares_are_summed_per_ping(tier):
    """ΣX² over pings, not (ΣX)²: two pings of 1 h and 2 h give 3 h and 5 h²."""
    rules = rules_for(tier=tier)
    lines = [
        encode(mk(MAIN, {LENGTH: 3600, CONTENT_VALUE: 1, DUMP + ".gpu.values.0": 3})),
        encode(mk(MAIN, {LENGTH: 7200, CONTENT_VALUE: 2})),
        # MAIN's content sent as a crash ping: same key, main_crashes 1, usage 0
        encode(mk(MAIN, {"meta.docType": "crash", "payload.crashDate": "2016-03-03", CONTENT_VALUE: 4})),
    ]
    agg = DayAggregate()
    agg.add_lines(rules, lines)
    assert list(agg.aggregates) == [("2016-03-03", tuple(MAIN_DIMS.values()))]
    sums = dict(zip(STAT_COLUMNS, agg.aggregates[("2016-03-03", tuple(MAIN_DIMS.values()))], strict=True))
    assert sums == {
        "ping_count": 2.0,
        "usage_hours": 3.0,
        "usage_hours_squared": 5.0,
        "main_crashes": 1.0,
        "main_crashes_squared": 1.0,
        "content_crashes": 7.0,
        "content_crashes_squared": 21.0,
        "plugin_crashes": 0.0,
        "plugin_crashes_squared": 0.0,
        "gmplugin_crashes": 0.0,
        "gmplugin_crashes_squared": 0.0,
        "gpu_crashes": 3.0,
        "gpu_crashes_squared": 9.0,
        "content_shutdown_crashes": 0.0,
        "content_shutdown_crashes_squared": 0.0,
    }


# Stats are configuration too: a renamed builtin, no square, another histogram.
CUSTOM_STATS_CONFIG = parse_config(
    {
        "dimensions": {"channel": "application.channel"},
        "stats": {
            "pings": {"builtin": "ping_count"},
            "hours": {"builtin": "usage_hours", "squared": False},
            "crashes": {"builtin": "main_crashes", "squared": False},
            "aborts": {"histogram": "payload.keyedHistograms.SUBPROCESS_ABNORMAL_ABORT.content"},
        },
    }
)
CUSTOM_COLUMNS = ("pings", "pings_squared", "hours", "crashes", "aborts", "aborts_squared")


def custom_stats(crash: bool, **values) -> Processed:
    base = dict.fromkeys(CUSTOM_COLUMNS, 0.0)
    return Processed(
        crash,
        "2016-03-02" if crash else "2016-03-03",
        {"channel": "beta" if crash else "release"},
        base | values,
        dim_names=("channel",),
        stat_columns=CUSTOM_COLUMNS,
    )


CUSTOM_STATS_CASES = cases(
    ("main", MAIN, custom_stats(False, pings=1.0, pings_squared=1.0, hours=2.0)),
    (
        "main-abort",
        mk(MAIN, {KH + ".SUBPROCESS_ABNORMAL_ABORT.content.values.0": 3}),
        custom_stats(False, pings=1.0, pings_squared=1.0, hours=2.0, aborts=3.0, aborts_squared=9.0),
    ),
    (
        "main-abort-negative",
        mk(MAIN, {KH + ".SUBPROCESS_ABNORMAL_ABORT.content.values.0": -3}),
        custom_stats(False, pings=1.0, pings_squared=1.0, hours=2.0),
    ),
    (
        "main-default-histograms-not-read",
        mk(MAIN, {KH: HISTOGRAMS}),
        custom_stats(False, pings=1.0, pings_squared=1.0, hours=2.0),
    ),
    ("crash", CRASH, custom_stats(True, crashes=1.0)),
    (
        "crash-abort",
        mk(CRASH, {KH + ".SUBPROCESS_ABNORMAL_ABORT.content.values.0": 2}),
        custom_stats(True, crashes=1.0, aborts=2.0, aborts_squared=4.0),
    ),
)


@pytest.mark.parametrize("line, expected", CUSTOM_STATS_CASES)
def test_stats_from_config(line, expected, tier):
    check(line, expected, rules_for(CUSTOM_STATS_CONFIG, tier=tier))
