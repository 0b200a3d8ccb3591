"""One ping -> (aggregate key, stats) or an ignore reason.

This module is the only copy of SPEC sections 2-5; every engine calls it.
The rules read a few leaves of a ping (the values at the JSON paths that
they and the configuration name); ``reading.LeafReader`` gets those from a
line by the fastest parser tier that can, with the line's signature: the
raw JSON text of the leaves that the rules on the doc type, submission date,
build id and dimensions read. Equal text means equal values, so what those
rules made of a signature is remembered (``_known``) and most pings, which
repeat the dimensions of earlier ones, skip them; the activity date and the
stats are worked out for every ping. What is remembered is bounded by the
limits of ``reading.py``.

Where the C scanner is built, the per-ping remainder of ``evaluate`` (the
activity date, the usage hours, the counts, the template of the doc type)
and the summing also run compiled, in ``_scan.Summer`` (``PingRules.summer``,
used by ``DayAggregate.add_lines``): it reads the answers of
``_signed_rules`` from ``_known`` and hands every line it is not sure of back
to ``evaluate``. The rules are defined here; tests/test_compiled.py checks
that both give the same sums, to the bit, on every table case and on
thousands of real, seeded and mutated lines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any, NamedTuple

from . import reading
from .config import Config
from .reading import LeafReader, LongInt, remember

try:
    from ._scan import Summer
except ImportError:  # built without a C compiler: the rules run in Python only
    Summer = None

#: Ignore reasons, in SPEC precedence order: the first that applies is counted.
#: ``oversized`` is decided by the readers (``sources.py``) from a line's length
#: alone, before it is parsed; the others by ``PingRules.evaluate``.
REASONS = (
    "oversized",
    "malformed_json",
    "other_doc_type",
    "content_crash",
    "invalid_submission_date",
    "invalid_activity_date",
    "invalid_build_id",
    "invalid_subsession_length",
)
#: The reasons that ``PingRules.evaluate`` gives: all but ``oversized``.
RULE_REASONS = REASONS[1:]

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
_BUILD_ID_RE = re.compile(r"[0-9]{14}\Z")


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
    >>> as_double(10**400), as_double(LongInt("-1" + "0" * 5000))
    (inf, -inf)
    """
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if type(value) is LongInt:
        return -math.inf if value.startswith("-") else math.inf
    return None


def dimension_value(value: Any) -> str | None:
    """SPEC section 4's value rules; None means the dimension is absent.

    >>> [dimension_value(v) for v in ("x", "", True, 42, 1.5, None, {}, [])]
    ['x', '', 'True', '42', '1.5', None, None, None]

    A double that overflowed (``1e400``) has no decimal form: absent.

    >>> dimension_value(math.inf), dimension_value(LongInt("1" + "0" * 5000))[:3]
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
    if kind is LongInt:
        return str(value)
    return None


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

        # The leaves that _signed_rules reads make a line's signature.
        r = self._rule_slots
        signed = (
            r.doc_type,
            r.type,
            r.submission_date,
            r.process_type,
            r.build_id,
            *range(len(self._paths))[self._dim_slice],
        )
        self.reader = LeafReader(self._paths, signed)
        # What the rules made of values seen before, bounded (reading.remember):
        # of each signature (_signed_rules), date string and dimension value types.
        self._known: dict[bytes, Outcome | tuple] = {}
        self._activity_dates: dict[str, str | None] = {}
        self._conversions: dict[tuple, list[tuple[int, Callable]]] = {}
        self._summer = self._compile() if self.reader.scanner is not None and Summer else None

    def _compile(self):
        """The per-ping part of these rules in C (``_scan.Summer``), from this object's tables.

        It reads what ``_signed_rules`` made of each signature from ``_known``
        and works out the rest of ``evaluate`` (activity date, usage hours,
        counts, the template of the doc type) and the summing of
        ``DayAggregate.add_lines``; a line it is not sure of comes back to
        ``evaluate``. tests/test_compiled.py checks that both give the same.
        """
        r = self._rule_slots
        days = [(self.earliest + timedelta(days=i)).isoformat() for i in range(MAX_LATENESS_DAYS + 1)]
        hist = self._hist_slice.start
        return Summer(
            self.reader.scanner,
            self._known,
            tuple(days),
            self.submission_date.toordinal(),
            (r.crash_date, r.subsession_start, r.creation_date, r.subsession_length),
            (tuple(self._templates[False]), tuple(self._templates[True])),
            tuple((column, int(squared)) for column, squared in self._usage_columns),
            tuple((hist + slot, column, int(squared)) for slot, column, squared in self._count_columns),
            (
                Outcome(False, "invalid_activity_date"),
                Outcome(True, "invalid_activity_date"),
                Outcome(False, "invalid_build_id"),
                Outcome(True, "invalid_build_id"),
                _INVALID_SUBSESSION_LENGTH,
            ),
        )

    @property
    def summer(self):
        """The compiled per-ping rules (``_compile``), or None where the C scanner is not in use."""
        return self._summer if self.reader.scanner is not None else None

    def leaves(self, line: bytes | memoryview, ascii: bool = False) -> list | None:
        """The values at the paths the rules read (None where missing), or None if malformed."""
        return self.reader.leaves(line, ascii)

    @property
    def checks_utf8(self) -> bool:
        """Whether evaluate checks every line's UTF-8 itself, so that an ``ascii`` hint is of no use."""
        return self.reader.checks_utf8

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
                remember(self._activity_dates, candidate, cached, reading.MAX_KNOWN_DATES)
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
        return remember(self._conversions, types, convert, reading.MAX_KNOWN_TYPES)

    def evaluate(self, line: bytes | memoryview, ascii: bool = False) -> Outcome:
        """Apply SPEC sections 2-5 to one line (a blank one is malformed JSON)."""
        leaves = self.reader.read(line, ascii)
        if leaves is None:
            return _MALFORMED
        signature = leaves[-1]
        known = self._known.get(signature) if signature is not None else None
        if known is None:
            known = self._signed_rules(leaves)
            if signature is not None and len(self._known) < reading.MAX_KNOWN_SIGNATURES:
                self._known[signature] = known  # reading.remember, inlined: once per new signature
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
