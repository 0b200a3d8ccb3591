"""Hypothesis strategies: generated pings, valid and with every kind of damage SPEC section 2 names.

:func:`pings` draws a main or crash ping whose every rule input is valid
(doc type, submission date D or none, a usable activity date, a 14-digit
build id, a finite subsession length), with random dimension values of every
JSON type, random histogram counts, noise fields and duplicate keys whose
first value is replaced. It then applies some of the damages of
:data:`DAMAGES`, one per reason, and knows the outcome SPEC gives the line:
the first reason of SPEC's table among those applied, or processed. The
damages of ``malformed_json`` are the ways a line breaks: cut short, a NaN
token, bytes that are not UTF-8, an unpaired surrogate escape, a raw control
character, nesting deeper than any parser here allows, a root that is not an
object, text after the object, a byte order mark.

The one reason a ping's content cannot give is ``oversized``: a line is
oversized by its length against the run's limit (``max_line_size``), and is
skipped before any rule reads it. The file-level properties (test_properties
(c) and (d)) draw the limit too, so that generated lines fall on both sides.

Lines never hold a newline, so that a list of them is a valid NDJSON file.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import NamedTuple

from hypothesis import strategies as st
from pingcases import REASONS, Dup, Raw, encode

D = date(2016, 3, 15)
COMPACT = D.strftime("%Y%m%d")
MISSING = object()  # a field left out

#: The reasons the rules give a ping from its content (all of SPEC's but ``oversized``).
CONTENT_REASONS = [r for r in REASONS if r != "oversized"]

RULE_KEYS = {"type", "meta", "payload", "environment", "application", "creationDate"}


class GeneratedPing(NamedTuple):
    line: bytes
    reason: str | None  # None: processed
    is_crash: bool  # as counted: a malformed or other-doc-type line is a main ping


def is_iso_date(text: str) -> bool:
    """SPEC section 3's test of a date, written out here independently of pings.py."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text[:10]):
        return False
    try:
        date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


# Drawing costs Hypothesis about 0.3 ms a value: pools of telling values
# (one draw each) beside a few open-ended strategies keep a ping near 10 ms.
TEXTS = ["", " ", "none", "True", "release", "main", "é€😀", "a\u0000b", "\\", '"', "2016-03-14", "20160301123456"]
NUMBERS = [0, -0.0, 1, -1, 1.5, 1e16, 1e-07, 2**63, -(2**64), 10**25, 1.7976931348623157e308, 5e-324]
scalars = st.one_of(
    st.sampled_from([None, True, False, *TEXTS, *NUMBERS]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=4,
)
#: Any JSON value a dimension may hold, or nothing: from the pool (cheap), or open-ended (``open_values``).
dimension_values = st.sampled_from([MISSING, MISSING, None, True, False, {}, [], [1], *TEXTS, *NUMBERS])
open_values = st.one_of(
    st.text(max_size=8), st.integers(-(10**25), 10**25), st.floats(allow_nan=False, allow_infinity=False)
)
#: A value for a field the rules never read, or a duplicate key's replaced value.
other_values = st.one_of(
    scalars, st.sampled_from([{}, [], {"a": [1, {"b": None}]}, [[[]]], {"meta": {"docType": "x"}}])
)
#: Histogram bucket "0": counts, and what counts as 0 (negatives, non-numbers, huge numbers).
counts = st.one_of(
    st.sampled_from(
        [MISSING, MISSING, 0, 1, 7, 1e308, -1, -0.0, 2.5, Raw("1e400"), Raw("-1e400"), "3", True, None, {}, [1]]
    ),
    st.integers(-(10**20), 10**20),
)
date_suffixes = st.sampled_from(["", "T00:00:00.0+01:00", "T23:59:59.999Z", "x", " 12:00"])
valid_dates = st.builds(
    lambda offset, suffix: (D + timedelta(days=offset)).isoformat() + suffix, st.integers(-12, 3), date_suffixes
)
invalid_dates = st.one_of(
    st.just(MISSING),
    st.none(),
    st.integers(),
    st.booleans(),
    st.just({}),
    st.sampled_from(
        ["", "2016-02-30", "2016-13-01", "2016/03/14", "16-03-14", "2016-3-14", "２０１６-03-14", "yesterday"]
    ),
    st.text(max_size=12).filter(lambda t: not is_iso_date(t)),
)
build_ids = st.integers(0, 10**14 - 1).map(lambda n: f"{n:014d}")
invalid_build_ids = st.one_of(
    st.just(MISSING),
    st.none(),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 10**13 - 1).map(lambda n: f"{n:013d}"),
    st.integers(0, 10**15 - 1).map(lambda n: f"{n:015d}"),
    build_ids.map(lambda b: b[:7] + "x" + b[8:]),
    build_ids.map(lambda b: "".join(chr(0xFF10 + int(c)) for c in b)),  # full-width digits
    build_ids.map(lambda b: b + "\u0000"),
)
lengths = st.one_of(
    st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
)
invalid_lengths = st.one_of(
    st.just(MISSING),
    st.none(),
    st.text(max_size=5),
    st.booleans(),
    st.just({}),
    st.just([3600]),
    st.sampled_from([Raw("1e400"), Raw("-1e400"), 10**400]),
)
other_doc_types = st.one_of(
    st.text(max_size=8).filter(lambda t: t not in ("main", "crash")),
    st.sampled_from(["Main", "crash ", "event", ""]),
    st.integers(),
    st.booleans(),
    st.just({}),
)
content_process_types = st.one_of(
    st.sampled_from(["content", "gpu", "plugin", "", "Main"]),
    st.text(max_size=6).filter(lambda t: t != "main"),
    st.integers(),
    st.booleans(),
    st.just({}),
)
invalid_submission_dates = st.one_of(
    st.sampled_from(["20160314", "2016-03-15", "", "unknown", COMPACT + " "]),
    st.text(max_size=9).filter(lambda t: t != COMPACT),
    st.integers(),
    st.just(int(COMPACT)),
    st.booleans(),
    st.just({}),
)

#: Breaking a line: (name, how). Noise values are spliced in as a field; the rest edit the encoded line.
MALFORMED_NOISE = {
    "nan": st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity")]),
    "not-utf8": st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf4\x90\x80\x80"]).map(
        lambda bad: Raw(b'"a' + bad + b'z"')
    ),
    "lone-surrogate": st.sampled_from(['"\\ud800"', '"x\\udfff"', '"\\ud83dx"', '"\\ude00\\ud83d"']).map(Raw),
    "control-character": st.sampled_from([b"\x00", b"\x01", b"\t", b"\x1f"]).map(lambda c: Raw(b'"a' + c + b'"')),
    "too-deep": st.integers(2000, 5000).map(lambda n: Raw("[" * n + "]" * n)),
}
MALFORMED_EDITS = ("cut-short", "not-an-object", "text-after", "byte-order-mark")
DAMAGES = {
    "malformed_json": (*MALFORMED_NOISE, *MALFORMED_EDITS),
    "other_doc_type": ("docType", "type"),
    "content_crash": ("processType",),
    "invalid_submission_date": ("submissionDate",),
    "invalid_activity_date": ("both dates",),
    "invalid_build_id": ("buildId",),
    "invalid_subsession_length": ("subsessionLength",),
}


def _put(tree: dict, path: str, value) -> None:
    if value is MISSING:
        return
    *parents, leaf = path.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


@st.composite
def pings(draw, damage: bool = True) -> GeneratedPing:
    """A ping line and the outcome SPEC gives it (see the module docstring)."""
    crash = draw(st.booleans())
    reasons = set()
    if damage:
        reasons = set(draw(st.lists(st.sampled_from(CONTENT_REASONS), max_size=3, unique=True)))
    reasons.discard("content_crash" if not crash else "invalid_subsession_length")
    doc_type = "crash" if crash else "main"
    tree: dict = {}

    if "other_doc_type" in reasons:
        doc_type = draw(other_doc_types)
    if draw(st.booleans()):  # meta.docType, and a top-level type that it overrides
        _put(tree, "meta.docType", doc_type)
        _put(tree, "type", draw(st.one_of(st.just(MISSING), st.sampled_from(["main", "crash", "event"]))))
    else:  # meta.docType missing or null: the top-level type decides
        _put(tree, "meta.docType", draw(st.sampled_from([MISSING, None])))
        _put(tree, "type", doc_type)

    if "invalid_submission_date" in reasons:
        _put(tree, "meta.submissionDate", draw(invalid_submission_dates))
    else:
        _put(tree, "meta.submissionDate", draw(st.sampled_from([COMPACT, COMPACT, None, MISSING])))
    _put(tree, "meta.geoCountry", draw(dimension_values))

    primary_path = "payload.crashDate" if crash else "payload.info.subsessionStartDate"
    if "invalid_activity_date" in reasons:
        primary, creation = draw(invalid_dates), draw(invalid_dates)
    elif draw(st.booleans()):
        primary, creation = draw(valid_dates), draw(st.one_of(valid_dates, invalid_dates))
    else:  # the primary date unusable: creationDate is used
        primary, creation = draw(invalid_dates), draw(valid_dates)
    _put(tree, primary_path, primary)
    _put(tree, "creationDate", creation)

    _put(tree, "environment.build.buildId", draw(invalid_build_ids if "invalid_build_id" in reasons else build_ids))

    if "invalid_subsession_length" in reasons:
        _put(tree, "payload.info.subsessionLength", draw(invalid_lengths))
    elif crash:
        _put(tree, "payload.info.subsessionLength", draw(st.one_of(st.just(MISSING), scalars)))
    else:
        _put(tree, "payload.info.subsessionLength", draw(lengths))

    if "content_crash" in reasons:
        _put(tree, "payload.processType", draw(content_process_types))
    elif crash:
        _put(tree, "payload.processType", draw(st.sampled_from([MISSING, None, "main"])))
    else:
        _put(tree, "payload.processType", draw(st.one_of(st.just(MISSING), scalars)))

    dimension_paths = (
        "environment.build.version",
        "application.channel",
        "application.name",
        "environment.system.os.name",
        "environment.system.os.version",
        "environment.build.architecture",
        "environment.addons.activeExperiment.id",
        "environment.addons.activeExperiment.branch",
        "environment.settings.e10sEnabled",
        "environment.settings.e10sCohort",
        "environment.system.gfx.features.compositor",
    )
    open_ended = draw(st.sets(st.sampled_from(dimension_paths), max_size=2))
    for path in dimension_paths:
        _put(tree, path, draw(open_values if path in open_ended else dimension_values))
    for histogram, key in (
        ("SUBPROCESS_CRASHES_WITH_DUMP", "content"),
        ("SUBPROCESS_CRASHES_WITH_DUMP", "plugin"),
        ("SUBPROCESS_CRASHES_WITH_DUMP", "gmplugin"),
        ("SUBPROCESS_CRASHES_WITH_DUMP", "gpu"),
        ("SUBPROCESS_KILL_HARD", "ShutDownKill"),
    ):
        _put(tree, f"payload.keyedHistograms.{histogram}.{key}.values.0", draw(counts))

    # Noise beside the rules' fields, and duplicate keys whose first value is replaced.
    noise_keys = st.text(max_size=6).filter(lambda k: k not in RULE_KEYS)
    for key, value in draw(st.dictionaries(noise_keys, st.one_of(other_values, json_values), max_size=2)).items():
        tree.setdefault(key, value)
    malformed = None
    if "malformed_json" in reasons:
        malformed = draw(st.sampled_from(DAMAGES["malformed_json"]))
        if malformed in MALFORMED_NOISE:
            tree[draw(noise_keys)] = draw(MALFORMED_NOISE[malformed])
    items = draw(st.permutations(list(tree.items())))
    shadowed = draw(st.lists(st.sampled_from(sorted(tree)), max_size=1)) if tree else []
    doc = Dup([*((key, draw(other_values)) for key in shadowed), *items])
    line = encode(doc)

    if malformed == "cut-short":
        line = line[: draw(st.integers(1, len(line) - 1))]
    elif malformed == "not-an-object":
        line = draw(st.sampled_from([b"[" + line + b"]", json.dumps(line.decode("utf-8", "replace")).encode(), b"3"]))
    elif malformed == "text-after":
        line = line + draw(st.sampled_from([b" x", b",", b"}", b" " + line, b"\x00"]))
    elif malformed == "byte-order-mark":
        line = b"\xef\xbb\xbf" + line
    assert b"\n" not in line

    reason = next((r for r in CONTENT_REASONS if r in reasons), None)
    return GeneratedPing(line, reason, crash and reason not in ("malformed_json", "other_doc_type"))


#: Lines that are blank: skipped and never counted.
blank_lines = st.sampled_from([b"", b" ", b"\t", b"\r", b"  \t\r"])

#: One NDJSON file's lines: generated pings and blank lines.
ping_files = st.lists(st.one_of(pings(), pings(), blank_lines), max_size=12)
