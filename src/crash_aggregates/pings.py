"""One ping -> (aggregate key, stats) or an ignore reason.

This module is the only copy of SPEC sections 2-5; every engine calls it.

Parsing is done in tiers. The fast tier is ``_scan``, a small C scanner
(``_scan.c``, built at install time) that validates the whole line but makes
Python objects only for the values at the JSON paths the configuration
needs, so the hundreds of unrelated histograms of a real main ping are never
turned into objects. Where the extension could not be built, a msgspec
decoder whose schema names only those paths does the same job, more slowly.
Both hand the rare odd line (an object where a scalar is needed, a number
they cannot represent such as ``1e400`` or an integer of thousands of digits,
a surrogate escape, very deep nesting) to the generic tier, which decodes it
in full with the standard library and walks plain dicts; it refuses NaN and
unpaired surrogate escapes. Every tier yields the same list of leaf values,
to which the rules are applied once.

The C scanner also hands back each line's signature: the raw JSON text of
the leaves that the rules on the doc type, submission date, build id and
dimensions read. Equal text means equal values, so what those rules made of
a signature is remembered (``_known``) and most pings, which repeat the
dimensions of earlier ones, skip them; the activity date and the stats are
worked out for every ping.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any, NamedTuple

import msgspec

from .config import Config

try:
    from ._scan import Scanner
except ImportError:  # built without a C compiler: the msgspec tier does the work
    Scanner = None

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

#: How many signatures a PingRules remembers: about 0.4 KB each, so at most
#: ~40 MB per process. Past that, new signatures are worked out every time.
MAX_KNOWN_SIGNATURES = 100_000

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
    values: list[float] | None = None  # one per stat column


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
    """A msgspec Struct type that decodes exactly ``paths``, and its leaf extractor.

    The extractor is generated Python (see ``source``): one attribute walk per
    tree node instead of one per path, which matters at millions of pings.
    Returns None when one path is a prefix of another (then the generic tier
    is used for every line: correct, only slower).

    >>> root, extract = _build_schema([("a", "b"), ("a", "c"), ("d",)])
    >>> print(extract.source)
    def extract(n0):
        out = [None] * 3
        n1 = n0.f0
        if n1 is not None:
            out[0] = n1.f0
            out[1] = n1.f1
        out[2] = n0.f1
        return out
    >>> extract(msgspec.json.decode(b'{"a": {"c": 1, "x": [2]}, "d": null}', type=root))
    [None, 1, None]
    """
    if not _prefix_free(paths):
        return None
    lines = ["def extract(n0):", f"    out = [None] * {len(paths)}"]
    counter = iter(range(1, 10**9))

    def make(node: dict, var: str, indent: str):
        fields, rename = [], {}
        for key, child in node.items():
            attr = f"f{len(fields)}"
            rename[attr] = key
            if isinstance(child, list):  # a leaf, decoded as any JSON value
                fields.append((attr, Any, None))
                targets = " = ".join(f"out[{i}]" for i in child)
                lines.append(f"{indent}{targets} = {var}.{attr}")
            else:
                child_var = f"n{next(counter)}"
                lines.append(f"{indent}{child_var} = {var}.{attr}")
                lines.append(f"{indent}if {child_var} is not None:")
                struct = make(child, child_var, indent + "    ")
                fields.append((attr, struct | None, None))
        return msgspec.defstruct(f"Node_{var}", fields, rename=rename, forbid_unknown_fields=False)

    root = make(_path_trie(paths), "n0", "    ")
    lines.append("    return out")
    namespace: dict = {}
    exec("\n".join(lines), namespace)  # code built above from the config's paths
    extract = namespace["extract"]
    extract.source = "\n".join(lines)
    return root, extract


def _prefix_free(paths: list[tuple[str, ...]]) -> bool:
    """Whether no path is a prefix of another (the fast tiers need that)."""
    return not any(len(q) < len(p) and p[: len(q)] == q for p in paths for q in paths)


def _path_trie(paths: list[tuple[str, ...]]) -> dict:
    """Prefix-free ``paths`` as nested dicts; a path ends in the list of its slots
    (its positions in ``paths``: a path listed twice fills both).

    >>> _path_trie([("a", "b"), ("c",), ("a", "d"), ("c",)])
    {'a': {'b': [0], 'd': [2]}, 'c': [1, 3]}
    """
    trie: dict = {}
    for slot, path in enumerate(paths):
        node = trie
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], []).append(slot)
    return trie


def scan_spec(paths: list[tuple[str, ...]]) -> tuple:
    """The trie of prefix-free ``paths`` as ``_scan.Scanner`` takes it: (key, slots, child) per key.

    A leaf lists the slots it fills; an inner key lists every slot below it,
    which the scanner empties when the key comes again (the last one wins).

    >>> scan_spec([("a", "b"), ("c",), ("a", "d"), ("c",)])
    ((b'a', (0, 2), ((b'b', (0,), None), (b'd', (2,), None))), (b'c', (1, 3), None))
    """

    def below(node) -> list[int]:
        return node if isinstance(node, list) else [slot for child in node.values() for slot in below(child)]

    def build(node: dict) -> tuple:
        return tuple(
            (key.encode(), tuple(below(child)), None if isinstance(child, list) else build(child))
            for key, child in node.items()
        )

    return build(_path_trie(paths))


_BOOL_TEXT = {True: "True", False: "False"}
# Outcome(...) without the Python-level __new__ of a NamedTuple: once per ping.
_processed = partial(tuple.__new__, Outcome)

_MALFORMED = Outcome(False, "malformed_json")
_OTHER_DOC_TYPE = Outcome(False, "other_doc_type")
_CONTENT_CRASH = Outcome(True, "content_crash")
_INVALID_SUBSESSION_LENGTH = Outcome(False, "invalid_subsession_length")

_RuleSlots = NamedTuple("_RuleSlots", [(name, int) for name in _RULE_PATHS])


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

        # The leaves come in three contiguous blocks, so that the dimensions
        # and the histogram counts of a ping are each one C-level slice.
        histograms = [s.histogram + ("values", "0") for s in self._stats if s.histogram]
        self._paths = [*_RULE_PATHS.values(), *(d.path for d in self._dims), *histograms]
        self._rule_slots = _RuleSlots(*range(len(_RULE_PATHS)))
        self._dim_slice = slice(len(_RULE_PATHS), len(_RULE_PATHS) + len(self._dims))
        self._hist_slice = slice(self._dim_slice.stop, len(self._paths))
        self._dim_absent = [frozenset(d.absent_values) for d in self._dims]
        self._conversions: dict[tuple, list[int]] = {}

        # Stats start from a template per doc type (built-ins filled in, counts
        # at 0); usage hours and the counts that are present are then set.
        self._templates = {False: [], True: []}
        self._usage_columns: list[tuple[int, bool]] = []
        self._count_columns: list[tuple[int, int, bool]] = []
        hist_slot = iter(range(len(histograms)))
        for st in self._stats:
            column = len(self._templates[False])
            if st.histogram:
                self._count_columns.append((next(hist_slot), column, st.squared))
            elif st.builtin == "usage_hours":
                self._usage_columns.append((column, st.squared))
            for is_crash, template in self._templates.items():
                x = (
                    float(is_crash)
                    if st.builtin == "main_crashes"
                    else float(not is_crash)
                    if st.builtin == "ping_count"
                    else 0.0
                )
                template.append(x)
                if st.squared:
                    template.append(x * x)

        schema = _build_schema(self._paths)
        if schema is None:  # one path is a prefix of another: generic tier only
            self._scanner = self._decoder = self._extract = None
        else:
            root, self._extract = schema
            self._decoder = msgspec.json.Decoder(root)
            r = self._rule_slots
            signed = (
                r.doc_type,
                r.type,
                r.submission_date,
                r.process_type,
                r.build_id,
                *range(len(self._paths))[self._dim_slice],
            )
            self._scanner = Scanner(scan_spec(self._paths), len(self._paths), signed) if Scanner else None
        self._activity_dates: dict[str, str | None] = {}
        # What _signed_rules made of each signature (the raw text of the
        # leaves it reads, from the C scanner): pings repeat their dimensions,
        # so most are answered by one lookup.
        self._known: dict[bytes, Outcome | tuple] = {}

    # -- decoding ---------------------------------------------------------

    def leaves(self, line: bytes | memoryview, ascii: bool = False) -> list | None:
        """The values at the needed paths (None where missing), or None if malformed.

        ``ascii``: the caller knows the line is ASCII. Otherwise the msgspec
        tier checks it here to be UTF-8, because msgspec does not look inside
        the text it skips; the C scanner and json check it themselves.
        """
        leaves = self._leaves(line, ascii)
        if leaves is not None:
            del leaves[-1]
        return leaves

    def _leaves(self, line: bytes | memoryview, ascii: bool) -> list | None:
        """``leaves``, then the line's signature: the scanner's, or None from the other tiers."""
        if self._scanner is not None:
            leaves = self._scanner.extract(line)
            if leaves is not False:
                return leaves
        elif self._decoder is not None:
            if not ascii and not (type(line) is bytes and line.isascii()):
                try:
                    str(line, "utf-8")
                except UnicodeDecodeError:
                    return None
            try:
                root = self._decoder.decode(line)
            except msgspec.ValidationError:
                pass  # a needed path holds an unexpected type: use the generic tier
            except (msgspec.DecodeError, RecursionError):
                return None
            else:
                leaves = self._extract(root)
                leaves.append(None)
                return leaves
        leaves = self._generic_leaves(line)  # json.loads refuses what is not UTF-8
        if leaves is not None:
            leaves.append(None)
        return leaves

    @property
    def checks_utf8(self) -> bool:
        """Whether evaluate checks every line's UTF-8 itself, so that an ``ascii`` hint is of no use."""
        return self._scanner is not None

    def _generic_leaves(self, line: bytes) -> tuple | None:
        try:
            doc = json.loads(str(line, "utf-8"), parse_constant=_reject_constant, parse_int=_parse_int)
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
        return out

    # -- rules ------------------------------------------------------------

    def activity_date(self, primary: Any, creation_date: Any) -> str | None:
        """SPEC section 3: first usable date, clamped into [D - 7, D].

        Results are cached by the whole string, which pings share often
        (``subsessionStartDate`` has a resolution of a day).
        """
        for candidate in (primary, creation_date):
            if type(candidate) is not str:
                continue
            cached = self._activity_dates.get(candidate, False)
            if cached is False:
                parsed = parse_iso_date(candidate[:10])
                if parsed is None:
                    cached = None
                else:
                    cached = min(max(parsed, self.earliest), self.submission_date).isoformat()
                if len(self._activity_dates) < 100_000:
                    self._activity_dates[candidate] = cached
            if cached is not None:
                return cached
        return None

    def _dimension_conversions(self, types: tuple) -> list[tuple[int, Callable]]:
        """Which dimension values of a ping with these value types need converting, and how."""
        convert = []
        for i, (kind, absent) in enumerate(zip(types, self._dim_absent, strict=False)):
            if kind is bool and not absent:
                convert.append((i, _BOOL_TEXT.__getitem__))  # dimension_value's answer, as a C call
            elif absent or kind not in (str, type(None)):
                convert.append((i, partial(_dimension, absent=absent)))
        if len(self._conversions) < 10_000:
            self._conversions[types] = convert
        return convert

    def evaluate(self, line: bytes | memoryview, ascii: bool = False) -> Outcome:
        """Apply SPEC sections 2-5 to one line (a blank one is malformed JSON)."""
        leaves = self._leaves(line, ascii)
        if leaves is None:
            return _MALFORMED
        signature = leaves[-1]
        known = self._known.get(signature) if signature is not None else None
        if known is None:
            known = self._signed_rules(leaves)
            if signature is not None and len(self._known) < MAX_KNOWN_SIGNATURES:
                self._known[signature] = known
        if type(known) is Outcome:
            return known  # ignored before the activity date is looked at
        is_crash, build_id_ok, dims = known

        r = self._rule_slots
        primary = leaves[r.crash_date if is_crash else r.subsession_start]
        activity = self._activity_dates.get(primary) if type(primary) is str else None
        if activity is None:
            activity = self.activity_date(primary, leaves[r.creation_date])
            if activity is None:
                return Outcome(is_crash, "invalid_activity_date")
        if not build_id_ok:
            return Outcome(is_crash, "invalid_build_id")

        if is_crash:
            usage = 0.0
        else:
            length = leaves[r.subsession_length]
            length = length if type(length) is float else as_double(length)
            if length is None or not math.isfinite(length):
                return _INVALID_SUBSESSION_LENGTH
            usage = min(length / 3600.0, 25.0) if length > 0 else 0.0  # -0.0 too

        values = self._templates[is_crash].copy()
        if usage:
            for column, squared in self._usage_columns:
                values[column] = usage
                if squared:
                    values[column + 1] = usage * usage
        counts = leaves[self._hist_slice]
        if counts.count(None) != len(counts):
            for slot, column, squared in self._count_columns:
                x = counts[slot]
                if x is not None:
                    x = values[column] = histogram_count(x)
                    if squared:
                        values[column + 1] = x * x
        return _processed((is_crash, None, (activity, dims), values))

    def _signed_rules(self, leaves: list) -> Outcome | tuple[bool, bool, tuple]:
        """The rules on the signed leaves: the doc type, the submission date,
        the build id and the dimension values (SPEC sections 2 and 4).

        An Outcome when the ping is ignored before its activity date is
        looked at; else (is_crash, whether the build id is valid, dimension values).
        """
        r = self._rule_slots
        doc_type = leaves[r.doc_type]
        if doc_type is None:
            doc_type = leaves[r.type]
        if doc_type == "crash":
            is_crash = True
            process_type = leaves[r.process_type]
            if process_type is not None and process_type != "main":
                return _CONTENT_CRASH
        elif doc_type == "main":
            is_crash = False
        else:
            return _OTHER_DOC_TYPE

        submission = leaves[r.submission_date]
        if submission is not None and submission != self.submission_date_compact:
            # Equal to D's YYYYMMDD text means valid; anything else is invalid.
            return Outcome(is_crash, "invalid_submission_date")

        build_id = leaves[r.build_id]
        build_id_ok = type(build_id) is str and _BUILD_ID_RE.match(build_id) is not None and build_id.isascii()

        dims = tuple(leaves[self._dim_slice])
        types = tuple(map(type, dims))
        convert = self._conversions.get(types)
        if convert is None:
            convert = self._dimension_conversions(types)
        if convert:
            dims = list(dims)
            for i, conversion in convert:
                dims[i] = conversion(dims[i])
            dims = tuple(dims)
        return is_crash, build_id_ok, dims


def _dimension(value: Any, absent: frozenset) -> str | None:
    value = dimension_value(value)
    return None if value in absent else value


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
