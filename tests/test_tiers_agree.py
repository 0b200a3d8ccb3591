"""The parser tiers agree on damaged and reshaped real pings, not only on the tables.

Each real fixture (and the tables' base pings) is mutated at random, with a
fixed seed, the way broken input arrives: a byte replaced by one that matters
to JSON, a byte dropped or doubled, the line cut short, a needed key repeated
with another value. The generic tier (the standard library's json) is the
reference; the C scanner and the msgspec decoder must give the same outcome
for every mutant.
"""

from __future__ import annotations

import json
import random
from datetime import date

import pytest
from helpers import SHARED
from pingcases import CRASH, MAIN, encode, rules_for

from crash_aggregates.config import default_config
from crash_aggregates.pings import PingRules

D = date(2016, 3, 15)
FIXTURES = sorted((SHARED / "fixtures").glob("*.pass.json"))
SIGNIFICANT = b'"\\{}[],:0-+.eE nt\x01\x7f\xc3'


def base_lines() -> list[bytes]:
    lines = [encode(MAIN), encode(CRASH)]
    for path in FIXTURES:
        doc = json.loads(path.read_text())
        doc["meta"] = {"submissionDate": D.strftime("%Y%m%d"), "docType": path.name.split(".")[0], "geoCountry": "DE"}
        lines.append(json.dumps(doc, separators=(",", ":")).encode())
    return lines


def mutants(line: bytes, rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        i = rng.randrange(len(line))
        kind = rng.randrange(5)
        if kind == 0:
            out.append(line[:i] + bytes([rng.choice(SIGNIFICANT)]) + line[i + 1 :])
        elif kind == 1:
            out.append(line[:i] + line[i + 1 :])
        elif kind == 2:
            out.append(line[:i] + line[i : i + 1] + line[i:])
        elif kind == 3:
            out.append(line[:i])
        else:  # a needed object or leaf given again, last (it wins) or first
            key = rng.choice([b'"payload":', b'"meta":', b'"environment":', b'"info":', b'"build":', b'"application":'])
            at = line.find(key)
            if at < 0:
                continue
            value = rng.choice([b"null", b"{}", b"3", b'{"x":1}', b'"2016-03-10"'])
            out.append(line[:at] + key + value + b"," + line[at:])
            out.append(line[:-1] + b"," + key + value + b"}")
    return out


@pytest.mark.parametrize("seed", range(3))
def test_tiers_agree_on_mutated_pings(seed):
    rng = random.Random(seed)
    fast, msgspec_tier, generic = (rules_for(submission_date=D, tier=t) for t in ("fast", "msgspec", "generic"))
    checked = 0
    for line in base_lines():
        for mutant in mutants(line, rng, 100):
            want = generic.evaluate(mutant)
            assert fast.evaluate(mutant) == want, mutant[:200]
            assert msgspec_tier.evaluate(mutant) == want, mutant[:200]
            checked += 1
    assert checked >= 1000


TOKENS = [b"{", b"}", b"[", b"]", b",", b":", b'"', b'"meta"', b'"payload"', b'"docType"', b'"main"',
          b'"crash"', b"\\", b"\\u", b"d83d", b"0", b"-", b"1e5", b".5", b"true", b"null", b"fals", b" ",
          b"\t", b"\x00", b"\x1f", b"\xc3\xa9", b"\xff", b"123456789012345678901", b'"environment"',
          b'"build"', b'"buildId"', b'"20160303000000"']  # fmt: skip


@pytest.mark.parametrize("seed", range(2))
def test_tiers_agree_on_token_soup(seed):
    """Lines built from JSON's own pieces, at random: the scanner's grammar is json's."""
    rng = random.Random(seed)
    fast, generic = rules_for(submission_date=D, tier="fast"), rules_for(submission_date=D, tier="generic")
    bases = [encode(MAIN), encode(CRASH)]
    for _ in range(3000):
        if rng.random() < 0.5:
            line = b"".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 40)))
        else:
            edited = bytearray(rng.choice(bases))
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(edited) + 1)
                edited[at : at + rng.randint(0, 3)] = rng.choice(TOKENS)
            line = bytes(edited)
        assert fast.evaluate(line) == generic.evaluate(line), line[:200]


# Raw JSON texts that decode to equal Python values (1 == 1.0 == True) or to
# equal floats (-0.0 == 0.0), but to different dimension values or rules.
LOOKALIKES = [b'"1"', b"1", b"1.0", b"1e0", b"10E-1", b"true", b"false", b"0", b"-0", b"0.0", b"-0.0", b'"\\u0031"',
              b"null", b'""', b'"True"', b"1e400", b"12345678901234567890", b'"20160303000000"',
              b'"2016030300000\\u0030"', b"20160303000000", b'"main"', b'"crash"', b'"m\\u0061in"']  # fmt: skip
# A dimension, and the leaves the rules read first.
LOOKALIKE_PATHS = [("application", "channel"), ("environment", "settings", "e10sEnabled"),
                   ("environment", "build", "buildId"), ("meta", "docType"), ("type",), ("payload", "processType"),
                   ("meta", "submissionDate")]  # fmt: skip


def _with_raw(doc: dict, path: tuple, raw: bytes) -> bytes:
    marker = "\x00marker\x00"
    node = doc = json.loads(json.dumps(doc))
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = marker
    return encode(doc).replace(json.dumps(marker).encode(), raw)


def test_remembered_signatures_answer_like_the_first_time():
    """The scanner's memory of signatures (the raw text of the leaves the rules
    read before the activity date) never mixes up values that compare equal in
    Python, nor escaped and plain spellings; a line answered from memory gets
    the same outcome as when it was first evaluated, and as the generic tier."""
    fast = PingRules(default_config(), date(2016, 3, 5))
    generic = rules_for(submission_date=date(2016, 3, 5), tier="generic")
    lines = [_with_raw(base, path, raw) for base in (MAIN, CRASH) for path in LOOKALIKE_PATHS for raw in LOOKALIKES]
    first = [fast.evaluate(line) for line in lines]
    assert len(fast._known) > len(LOOKALIKES)  # most of them were remembered
    for line, outcome in zip(lines, first, strict=True):
        assert fast.evaluate(line) == outcome == generic.evaluate(line), line


@pytest.mark.parametrize("seed", range(2))
def test_remembered_signatures_on_mutated_pings(seed):
    """Mutants evaluated twice by the same scanner: the second answer, from memory, is the first."""
    rng = random.Random(seed)
    fast, generic = PingRules(default_config(), D), rules_for(submission_date=D, tier="generic")
    lines = [m for line in base_lines() for m in mutants(line, rng, 60)]
    first = [fast.evaluate(line) for line in lines]
    assert first == [generic.evaluate(line) for line in lines]
    assert [fast.evaluate(line) for line in lines] == first


# Bytes at the edges of UTF-8's ranges: ASCII, continuation bytes, overlong
# leads, the surrogate lead (ED), the last planes (F4) and never-valid bytes.
UTF8_EDGES = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
              0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]  # fmt: skip


def test_scanner_checks_utf8_like_python():
    """Every sequence of up to three edge bytes, and random longer ones, in a
    skipped string and in a needed one: the C scanner, which checks UTF-8
    itself, calls the line malformed exactly when Python's decoder refuses it."""
    fast, generic = rules_for(submission_date=D, tier="fast"), rules_for(submission_date=D, tier="generic")
    rng = random.Random(3)
    sequences = [bytes([a]) for a in UTF8_EDGES]
    sequences += [bytes([a, b]) for a in UTF8_EDGES for b in UTF8_EDGES]
    sequences += [bytes([a, b, c]) for a in UTF8_EDGES[8:] for b in UTF8_EDGES for c in UTF8_EDGES]
    sequences += [bytes(rng.choice(UTF8_EDGES) for _ in range(rng.randint(4, 9))) for _ in range(3000)]
    main = json.loads(json.dumps(MAIN))
    main["meta"]["submissionDate"] = D.strftime("%Y%m%d")
    malformed = 0
    for seq in sequences:
        for path in (("x",), ("application", "channel")):
            line = _with_raw(main, path, b'"a' + seq + b'z"')
            want = generic.evaluate(line)
            assert fast.evaluate(line) == want, line
            assert fast.evaluate(memoryview(line)) == want, line
            malformed += want.reason == "malformed_json"
    assert 0 < malformed < 2 * len(sequences)  # both kinds were met


def test_signatures_past_the_limit_are_worked_out_every_time(monkeypatch):
    """Once MAX_KNOWN_SIGNATURES are remembered, new ones are not, and still get the right outcome."""
    from crash_aggregates import reading

    monkeypatch.setattr(reading, "MAX_KNOWN_SIGNATURES", 3)
    fast = PingRules(default_config(), date(2016, 3, 5))
    generic = rules_for(submission_date=date(2016, 3, 5), tier="generic")
    lines = [_with_raw(MAIN, ("application", "channel"), b'"c%d"' % i) for i in range(10)]
    for _ in range(2):
        assert [fast.evaluate(line) for line in lines] == [generic.evaluate(line) for line in lines]
    assert len(fast._known) == 3
