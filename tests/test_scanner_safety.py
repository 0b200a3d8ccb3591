"""The C scanner's hardening: what fuzzing found, the corpus it keeps, and the refusals of its constructor.

``make fuzz`` (fuzz/scanner.py) feeds the scanner, built with AddressSanitizer
and UndefinedBehaviorSanitizer, arbitrary bytes and mutations of real and
generated pings, and checks every answer against the standard library's
reference tier (tests/differential.py). Here, in every test run:

- every finding is a table case, with the outcome SPEC gives it written out by hand;
- the regression corpus (``fuzz/regression/``: the inputs that together reached
  all the coverage the fuzzer found, merged by libFuzzer) is replayed through every tier;
- the constructor refuses malformed specs with a Python exception, never a crash.

``make test-sanitized`` runs this file (with the rule tables) against the
sanitized builds, each line in a buffer of exactly its length.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from differential import CONFIGS, Tiers
from pingcases import CRASH, MAIN, TIERS, Dup, Ignored, Raw, check, crash_ok, encode, main_ok, mk, rules_for

from crash_aggregates import _scan

REPO = Path(__file__).resolve().parents[1]
REGRESSION = REPO / "fuzz" / "regression"
FINDINGS = REPO / "fuzz" / "findings"


def replaced(base: dict, key: str, first) -> Dup:
    """``base`` with ``key`` given twice: ``first``, then base's own value (which wins)."""
    return Dup([(key, first), *base.items()])


# Each finding of the fuzzer, and its neighbours, with the outcome SPEC (and
# the decisions in test_pings.py) give it; run on every tier.
FINDING_CASES = [
    # 1. An unpaired surrogate escape in a value that a duplicate key replaced:
    # the generic tier looked for surrogates in the decoded document only, and
    # so counted the line (msgspec, rightly, called it malformed). Found as a
    # crash ping that the generic tier counted as invalid_build_id.
    ("lone-surrogate-replaced-value", replaced(MAIN, "payload", {"x": Raw('"\\ud800"')}), Ignored("malformed_json")),
    ("lone-surrogate-replaced-crash", replaced(CRASH, "payload", {"x": Raw('"a\\udfff"')}), Ignored("malformed_json")),
    ("lone-surrogate-replaced-key", replaced(MAIN, "meta", {Raw('"\\udc00"'): 1}), Ignored("malformed_json")),
    ("lone-surrogate-in-an-array", replaced(MAIN, "x", [Raw('"\\ud83d"')]), Ignored("malformed_json")),
    ("two-high-surrogates", replaced(MAIN, "x", Raw('"\\ud83d\\ud83d\\ude00"')), Ignored("malformed_json")),
    ("pair-in-replaced-value", replaced(MAIN, "payload", Raw('"\\ud83d\\ude00"')), main_ok()),
    ("escaped-backslash-then-u", replaced(CRASH, "payload", Raw('"\\\\ud800"')), crash_ok()),
    ("pair-in-a-dimension", mk(MAIN, {"application.channel": Raw('"\\ud83d\\ude00"')}), main_ok(channel="\U0001f600")),
]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("doc, expected", [pytest.param(d, e, id=name) for name, d, e in FINDING_CASES])
def test_findings(doc, expected, tier):
    check(encode(doc), expected, rules_for(tier=tier))


@pytest.mark.parametrize("path", sorted(FINDINGS.iterdir()), ids=lambda p: p.name)
def test_finding_reproducers_agree_with_the_reference(path, tiers):
    """The fuzzer's own inputs, as it found them (fuzz/findings/)."""
    for t in tiers:
        t.check(path.read_bytes())


@pytest.fixture(scope="module")
def tiers():
    return [Tiers(config) for config in CONFIGS.values()]


def regression_inputs() -> list[Path]:
    return sorted(REGRESSION.iterdir())


def test_regression_corpus_is_there():
    assert len(regression_inputs()) >= 100, "fuzz/regression/ holds the merged corpus of `make fuzz`"


def test_regression_corpus_agrees_with_the_reference(tiers):
    """Every input of the merged corpus: the scanner (both configurations) and msgspec answer as json does."""
    for path in regression_inputs():
        data = path.read_bytes()
        for t in tiers:
            try:
                t.check(data)
            except AssertionError as e:
                raise AssertionError(f"{path.name}: {e}") from None
    answers = sum((t.answers for t in tiers), start=type(tiers[0].answers)())
    # The corpus reaches each of the scanner's three answers.
    assert answers["leaves"] and answers["malformed"] and answers["generic tier"], answers


GOOD_SPEC = ((b"a", (0,), None), (b"b", (1,), ((b"c", (1,), None),)))

CONSTRUCTOR_CASES = [
    ("spec-not-a-tuple", ([("a", (0,), None)], 1), TypeError),
    ("entry-not-a-tuple", ((b"a",),), TypeError),
    ("key-not-bytes", (((("a", (0,), None),), 1)), TypeError),
    ("slots-not-a-tuple", ((((b"a", [0], None),), 1)), TypeError),
    ("slot-not-an-int", ((((b"a", ("0",), None),), 1)), TypeError),
    ("slot-out-of-range", ((((b"a", (1,), None),), 1)), ValueError),
    ("negative-slot", ((((b"a", (-1,), None),), 1)), ValueError),
    ("bad-child-deep-down", (((b"a", (0,), ((b"b", (0,), ((b"c", (5,), None),)),)),), 1), ValueError),
    ("child-not-a-tuple", ((((b"a", (0,), [1]),), 1)), TypeError),
    ("negative-slot-count", (GOOD_SPEC, -1), ValueError),
    ("signature-slot-out-of-range", (GOOD_SPEC, 2, (0, 2)), ValueError),
    ("signature-slot-not-an-int", (GOOD_SPEC, 2, (0, "1")), TypeError),
    ("signature-not-a-tuple", (GOOD_SPEC, 2, [0]), TypeError),
]


@pytest.mark.parametrize("args, error", [pytest.param(a, e, id=name) for name, a, e in CONSTRUCTOR_CASES])
def test_constructor_refuses_bad_specs(args, error):
    """A spec that reading.scan_spec would never make is refused with an exception (the partly built trie is freed)."""
    with pytest.raises(error):
        _scan.Scanner(*args)


def test_extract_wants_a_buffer():
    scanner = _scan.Scanner(GOOD_SPEC, 2)
    with pytest.raises(TypeError):
        scanner.extract("{}")
    assert scanner.extract(b'{"b": {"c": 2}, "a": "x"}') == ["x", 2]
