"""One ping -> (aggregate key, stats) or an ignore reason.

This module is the only copy of SPEC sections 2-5; every engine calls it.

Parsing is done in two tiers. The fast tier decodes a line with a msgspec
decoder whose schema names only the JSON paths that the configuration needs,
so the hundreds of unrelated histograms of a real main ping are scanned but
never turned into Python objects. When a needed path runs into a value of an
unexpected type (``"payload": 3``) or a number it cannot represent (``1e400``,
an integer of thousands of digits), that decoder refuses the line, and the
generic tier decodes it in full with the standard library and walks plain
dicts; it refuses what msgspec refuses (NaN, unpaired surrogate escapes).
Both tiers yield the same tuple of leaf values, to which the rules are applied
once.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, timedelta
from typing import Any, NamedTuple

import msgspec

from .config import Config

#: Ignore reasons, in SPEC precedence order: the first that applies is counted.
REASONS = (
    "malformed_json",
    "other_doc_type",
    "content_crash",
    "invalid_submission_date",
    "invalid_activity_date",
    "invalid_build_id",
    "invalid_subsession_length",
)

#: Look-back window of activity dates (SPEC section 3).
MAX_LATENESS_DAYS = 7

# Paths that the rules themselves read, whatever the configuration says.
_RULE_PATHS = {
    "doc_type": ("meta", "docType"),
    "type": ("type",),
    "submission_date": ("meta", "submissionDate"),
    "process_type": ("payload", "processType"),
    "subsession_start": ("payload", "info", "subsessionStartDate"),
    "crash_date": ("payload", "crashDate"),
    "creation_date": ("creationDate",),
    "build_id": ("environment", "build", "buildId"),
    "subsession_length": ("payload", "info", "subsessionLength"),
}

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_SUBMISSION_DATE_RE = re.compile(r"[0-9]{8}\Z")
_BUILD_ID_RE = re.compile(r"[0-9]{14}\Z")
# A \uD800-\uDFFF escape: the only way a (possibly unpaired) surrogate gets in.
_SURROGATE_ESCAPE_RE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class _LongInt(str):
    """An integer literal with more digits than ``int()`` accepts
    (``sys.get_int_max_str_digits()``), kept as its text. Only the generic
    tier makes these; msgspec hands such a value at a needed path over to it.
    """


class Outcome(NamedTuple):
    """What the rules make of one line."""

    is_crash: bool
    reason: str | None  # None when the ping is processed
    key: tuple | None = None  # (activity_date, dimension values)
    values: tuple[float, ...] | None = None  # one per stat column


def parse_iso_date(text: str) -> date | None:
    """A strict ``YYYY-MM-DD`` date, or None.

    >>> parse_iso_date("2016-03-02")
    datetime.date(2016, 3, 2)
    >>> parse_iso_date("2016-02-30") is None, parse_iso_date("2016-W01-1") is None
    (True, True)
    """
    if not _DATE_RE.match(text):
        return None
    try:
        return date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return None


def as_double(value: Any) -> float | None:
    """A JSON number as a double; None for booleans and non-numbers.

    >>> as_double(3), as_double(2.5), as_double(True), as_double("3")
    (3.0, 2.5, None, None)
    >>> as_double(10**400), as_double(_LongInt("-1" + "0" * 5000))
    (inf, -inf)
    """
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if type(value) is _LongInt:
        return -math.inf if value.startswith("-") else math.inf
    return None


def dimension_value(value: Any) -> str | None:
    """SPEC section 4's value rules; None means the dimension is absent.

    >>> [dimension_value(v) for v in ("x", "", True, 42, 1.5, None, {}, [])]
    ['x', '', 'True', '42', '1.5', None, None, None]

    A double that overflowed (``1e400``) has no decimal form: absent.

    >>> dimension_value(math.inf), dimension_value(_LongInt("1" + "0" * 5000))[:3]
    (None, '100')
    """
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "True" if value else "False"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else None
    if kind is _LongInt:
        return str(value)
    return None


def _build_schema(paths: list[tuple[str, ...]]):
    """A msgspec Struct type that decodes exactly ``paths``, plus a leaf getter.

    Returns None when one path is a prefix of another (then the generic tier
    is used for every line: correct, only slower).
    """
    if any(len(q) < len(p) and p[: len(q)] == q for p in paths for q in paths):
        return None
    trie: dict = {}
    for path in paths:
        node = trie
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = None  # a leaf, decoded as any JSON value

    counter = iter(range(10**9))

    def make(node: dict):
        fields, rename, attrs = [], {}, {}
        for key, child in node.items():
            attr = f"f{len(fields)}"
            rename[attr] = key
            if child is None:
                fields.append((attr, Any, None))
            else:
                struct, child_attrs = make(child)
                fields.append((attr, struct | None, None))
                attrs.update({(key, *k): (attr, *v) for k, v in child_attrs.items()})
                continue
            attrs[(key,)] = (attr,)
        struct = msgspec.defstruct(
            f"Node{next(counter)}", fields, rename=rename, forbid_unknown_fields=False
        )
        return struct, attrs

    root, attrs = make(trie)
    return root, [attrs[p] for p in paths]


class PingRules:
    """The SPEC rules compiled for one configuration and one submission date."""

    def __init__(self, config: Config, submission_date: date):
        self.config = config
        self.submission_date = submission_date
        self.submission_date_compact = submission_date.strftime("%Y%m%d")
        self.earliest = submission_date - timedelta(days=MAX_LATENESS_DAYS)
        self.stat_columns = config.stat_columns()
        self._dims = config.dimensions
        self._stats = config.stats

        paths = list(_RULE_PATHS.values())
        paths += [d.path for d in self._dims]
        paths += [s.histogram + ("values", "0") for s in self._stats if s.histogram]
        self._paths = list(dict.fromkeys(paths))  # de-duplicated, order kept
        self._index = {p: i for i, p in enumerate(self._paths)}
        self._rule_index = {name: self._index[p] for name, p in _RULE_PATHS.items()}
        self._dim_index = [self._index[d.path] for d in self._dims]
        self._dim_absent = [frozenset(d.absent_values) for d in self._dims]
        self._hist_index = {
            s.name: self._index[s.histogram + ("values", "0")] for s in self._stats if s.histogram
        }

        schema = _build_schema(self._paths)
        if schema is None:
            self._decoder, self._attr_paths = None, None
        else:
            root, self._attr_paths = schema
            self._decoder = msgspec.json.Decoder(root)
        self._activity_dates: dict[str, str | None] = {}

    # -- decoding ---------------------------------------------------------

    def leaves(self, line: bytes) -> tuple | None:
        """The values at the needed paths (None where missing), or None if malformed."""
        if not line.isascii():
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if self._decoder is not None:
            try:
                root = self._decoder.decode(line)
            except msgspec.ValidationError:
                pass  # a needed path holds an unexpected type: use the generic tier
            except (msgspec.DecodeError, RecursionError):
                return None
            else:
                out = []
                for attrs in self._attr_paths:
                    node = root
                    for attr in attrs:
                        node = getattr(node, attr)
                        if node is None:
                            break
                    out.append(node)
                return tuple(out)
        return self._generic_leaves(line)

    def _generic_leaves(self, line: bytes) -> tuple | None:
        try:
            doc = json.loads(line.decode("utf-8"), parse_constant=_reject_constant, parse_int=_parse_int)
        except (ValueError, RecursionError):
            return None
        if not isinstance(doc, dict):
            return None
        if _SURROGATE_ESCAPE_RE.search(line) and _has_surrogate(doc):
            return None  # an unpaired \uD800-\uDFFF escape is not UTF-8 text (msgspec refuses it too)
        out = []
        for path in self._paths:
            node = doc
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
                if node is None:
                    break
            out.append(node)
        return tuple(out)

    # -- rules ------------------------------------------------------------

    def activity_date(self, primary: Any, creation_date: Any) -> str | None:
        """SPEC section 3: first usable date, clamped into [D - 7, D]."""
        for candidate in (primary, creation_date):
            if type(candidate) is not str:
                continue
            prefix = candidate[:10]
            cached = self._activity_dates.get(prefix, False)
            if cached is False:
                parsed = parse_iso_date(prefix)
                if parsed is None:
                    cached = None
                else:
                    cached = min(max(parsed, self.earliest), self.submission_date).isoformat()
                if len(self._activity_dates) < 100_000:
                    self._activity_dates[prefix] = cached
            if cached is not None:
                return cached
        return None

    def evaluate(self, line: bytes) -> Outcome:
        """Apply SPEC section 2-5 to one non-blank line."""
        leaves = self.leaves(line)
        if leaves is None:
            return Outcome(False, "malformed_json")
        r = self._rule_index

        doc_type = leaves[r["doc_type"]]
        if doc_type is None:
            doc_type = leaves[r["type"]]
        is_crash = doc_type == "crash"
        if not is_crash and doc_type != "main":
            return Outcome(False, "other_doc_type")

        if is_crash:
            process_type = leaves[r["process_type"]]
            if process_type is not None and process_type != "main":
                return Outcome(True, "content_crash")

        submission = leaves[r["submission_date"]]
        if submission is not None and submission != self.submission_date_compact:
            # Equal to D's YYYYMMDD text means valid; anything else is invalid.
            return Outcome(is_crash, "invalid_submission_date")

        primary = leaves[r["crash_date"] if is_crash else r["subsession_start"]]
        activity = self.activity_date(primary, leaves[r["creation_date"]])
        if activity is None:
            return Outcome(is_crash, "invalid_activity_date")

        build_id = leaves[r["build_id"]]
        if type(build_id) is not str or not _BUILD_ID_RE.match(build_id) or not build_id.isascii():
            return Outcome(is_crash, "invalid_build_id")

        if is_crash:
            usage = 0.0
        else:
            length = as_double(leaves[r["subsession_length"]])
            if length is None or not math.isfinite(length):
                return Outcome(False, "invalid_subsession_length")
            usage = min(length / 3600.0, 25.0) if length > 0 else 0.0  # -0.0 too

        dims = []
        for index, absent in zip(self._dim_index, self._dim_absent):
            value = dimension_value(leaves[index])
            if value is not None and value in absent:
                value = None
            dims.append(value)

        values = []
        for stat in self._stats:
            if stat.builtin == "ping_count":
                x = 0.0 if is_crash else 1.0
            elif stat.builtin == "usage_hours":
                x = usage
            elif stat.builtin == "main_crashes":
                x = 1.0 if is_crash else 0.0
            else:
                x = histogram_count(leaves[self._hist_index[stat.name]])
            values.append(x)
            if stat.squared:
                values.append(x * x)
        return Outcome(is_crash, None, (activity, tuple(dims)), tuple(values))


def histogram_count(value: Any) -> float:
    """A count histogram's bucket "0": missing, bad, negative or non-finite -> 0.

    >>> histogram_count(42), histogram_count(-1), histogram_count("3"), histogram_count(None)
    (42.0, 0.0, 0.0, 0.0)
    """
    x = as_double(value)
    if x is None or not math.isfinite(x) or x <= 0:
        return 0.0  # -0.0 too
    return x


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str):
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts: still a valid JSON number
        return _LongInt(text)


def _has_surrogate(doc) -> bool:
    """Whether any key or string in ``doc`` holds a surrogate code point (iteratively)."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if type(node) is str:
            if _SURROGATE_RE.search(node):
                return True
        elif type(node) is dict:
            stack.extend(node)
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return False
