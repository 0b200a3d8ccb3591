"""Partial aggregates of one submission date: summing pings, merging partials, counting.

Every engine builds these from lines with ``add_lines`` and combines them with
``merge``; the counters are what ``_report.json`` reports.

Two forms of the same sums: while lines are summed, a plain dict of lists
(the fastest to add a ping to); once partials are merged, or sent from a
worker to the parent, the compact :class:`Sums` (one row of doubles per
aggregate in a single array, keys flattened into one tuple, their strings
shared). A day of 400,000 distinct aggregates took ~1.1 KB each as dicts of
lists of floats in the parent; as ``Sums`` ~0.45 KB.
"""

from __future__ import annotations

import itertools
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from operator import add
from typing import TYPE_CHECKING

from .errors import CrashAggregatesError
from .memory import default_max_aggregates
from .pings import REASONS, PingRules

if TYPE_CHECKING:
    from .config import Config
    from .sources import LineBatch, Oversized

#: How many oversized lines a report locates: the first ones in (path, offset)
#: order, whatever the engine or the order its partials merge in. All are counted.
MAX_OVERSIZED_LISTED = 100


class DayAggregate:
    """Sums per (activity_date, dimensions) plus processed/ignored counters.

    ``aggregates`` maps each key to its stat sums: a dict of lists while
    lines are summed into it, :class:`Sums` once partials were merged into it
    or it was pickled (a worker's partial travels compactly).
    """

    def __init__(self):
        self.aggregates: dict[tuple, list[float]] | Sums = {}
        self.processed = Counter()  # doc type -> pings
        self.ignored = Counter()  # (doc type, reason) -> pings
        self.corrupt_files: list[dict] = []
        self.oversized_lines: list[Oversized] = []  # sorted, at most MAX_OVERSIZED_LISTED

    def add_lines(self, rules: PingRules, lines: Iterable, ascii: bool = False) -> None:
        """Evaluate and sum lines (bytes or memoryviews); blank lines are skipped, every other one counted.

        ``ascii``: the caller knows every line is ASCII, so none needs a UTF-8 check.
        With the C scanner, the rules' compiled form (``PingRules.summer``)
        does this, and hands back to ``_add_lines`` the lines it is not sure of.
        """
        summer = rules.summer
        if summer is None or type(self.aggregates) is not dict or type(lines) is not list:
            self._add_lines(rules, lines, ascii)
            return
        ignored: dict = {}
        main, crash = summer.add(lines, self.aggregates, ignored, lambda line: self._add_lines(rules, (line,), ascii))
        if main:
            self.processed["main"] += main
        if crash:
            self.processed["crash"] += crash
        for outcome, n in ignored.items():
            self.ignored["crash" if outcome.is_crash else "main", outcome.reason] += n

    def _add_lines(self, rules: PingRules, lines: Iterable, ascii: bool) -> None:
        """``add_lines`` in Python, line by line with ``PingRules.evaluate``: the reference."""
        aggregates, processed, ignored = self.aggregates, self.processed, self.ignored
        evaluate = rules.evaluate
        for line in lines:
            outcome = evaluate(line, ascii)
            doc_type = "crash" if outcome.is_crash else "main"
            if outcome.reason is not None:
                # A blank line is not JSON either: it is told apart only here, off the hot path.
                if outcome.reason != "malformed_json" or not _is_blank(line):
                    ignored[doc_type, outcome.reason] += 1
                continue
            processed[doc_type] += 1
            sums = aggregates.get(outcome.key)
            if sums is None:
                aggregates[outcome.key] = outcome.values  # a fresh list per ping
            else:
                sums[:] = map(add, sums, outcome.values)

    def add_batches(self, rules: PingRules, batches: Iterable[LineBatch]) -> None:
        """``add_lines`` for each batch of ``sources.read_batches``."""
        for batch in batches:
            # With the C scanner, which checks UTF-8 itself, the blocks are not scanned for ASCII.
            self.add_lines(rules, batch.lines, rules.checks_utf8 or batch.ascii)
            if batch.oversized:
                self.add_oversized(batch.oversized)

    def add_oversized(self, lines: Iterable[Oversized]) -> None:
        """Count lines skipped for their length: ignored as ``oversized``, and as main pings
        (SPEC section 2: their doc type is unknown)."""
        lines = list(lines)
        self.ignored["main", "oversized"] += len(lines)
        self.oversized_lines = _first_listed(self.oversized_lines, lines)

    def merge(self, other: DayAggregate) -> DayAggregate:
        """Add another partial into this one (in place) and return self; this one's sums become ``Sums``."""
        if type(self.aggregates) is not Sums:
            self.aggregates = Sums.of(self.aggregates)
        self.aggregates.merge(other.aggregates)
        self.processed.update(other.processed)
        self.ignored.update(other.ignored)
        self.corrupt_files.extend(other.corrupt_files)
        if other.oversized_lines:
            self.oversized_lines = _first_listed(self.oversized_lines, other.oversized_lines)
        return self

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if type(self.aggregates) is not Sums:  # a worker's partial: sent compactly
            state["aggregates"] = Sums.of(self.aggregates)
        return state

    @property
    def pings(self) -> int:
        return sum(self.processed.values()) + sum(self.ignored.values())

    def counters(self) -> dict:
        """The report's counters: per doc type, per reason, and both."""
        by_reason = {r: 0 for r in REASONS}
        by_doc_type = {"main": {}, "crash": {}}
        for (doc_type, reason), n in sorted(self.ignored.items()):
            by_reason[reason] += n
            by_doc_type[doc_type][reason] = n
        return {
            "main_pings_processed": self.processed["main"],
            "main_pings_ignored": sum(by_doc_type["main"].values()),
            "crash_pings_processed": self.processed["crash"],
            "crash_pings_ignored": sum(by_doc_type["crash"].values()),
            "ignored_by_reason": by_reason,
            "ignored_by_doc_type": by_doc_type,
        }


class TooManyAggregates(CrashAggregatesError):
    """A date has more distinct aggregates than the limit: it fails before they fill the memory.

    ``distinct``: (dimension, number of distinct values), kept most first:
    the usual cause is a dimension that should not be one (an id, a
    timestamp). ``read``: the share of the date's input read when the
    aggregates were counted (None: all of it).
    """

    def __init__(self, limit: int, count: int, distinct: Iterable[tuple[str, int]], read: float | None = None):
        self.limit, self.count, self.read = limit, count, read
        self.distinct = sorted(distinct, key=lambda pair: -pair[1])  # stable: ties in the configured order
        super().__init__(str(self))

    def __reduce__(self):
        return TooManyAggregates, (self.limit, self.count, self.distinct, self.read)

    def __str__(self) -> str:
        where = f" after reading {self.read:.0%} of the input" if self.read is not None else ""
        most = ", ".join(f"{name} {n:,}" for name, n in self.distinct[:SHOWN_DIMENSIONS]) or "none"
        return (
            f"more than {self.limit:,} distinct aggregates ({self.count:,}{where}); the dimensions with the most "
            f"distinct values: {most} (a dimension with a value per ping or per client should not be one; "
            "--max-aggregates or [limits] max_aggregates raises the limit)"
        )


#: How many dimensions the message of ``TooManyAggregates`` names.
SHOWN_DIMENSIONS = 3


def aggregate_limit(config: Config) -> int:
    """The most distinct aggregates a date may have: the configuration's limit, else the machine's default."""
    return config.max_aggregates if config.max_aggregates is not None else default_max_aggregates()


def check_limit(day: DayAggregate, limit: int, dimension_names: list[str], read: float | None = None) -> None:
    """Raise ``TooManyAggregates`` if ``day`` has more than ``limit`` distinct aggregates."""
    if len(day.aggregates) > limit:
        raise TooManyAggregates(limit, len(day.aggregates), distinct_values(day.aggregates, dimension_names), read)


class Limit:
    """The limit of a date's aggregates, checked as its input is read: ``check(day, bytes read)``.

    >>> day = DayAggregate()
    >>> day.aggregates = {("d1", ("a",)): [1.0], ("d1", ("b",)): [1.0]}
    >>> Limit(2, ["os"], 100).check(day, 50)
    >>> Limit(1, ["os"], 100).check(day, 50)
    Traceback (most recent call last):
    ...
    crash_aggregates.aggregate.TooManyAggregates: more than 1 distinct aggregates (2 after reading 50% ...); ...
    """

    def __init__(self, limit: int, dimension_names: list[str], total_bytes: int):
        self.limit, self.dimension_names, self.total_bytes = limit, dimension_names, total_bytes

    @classmethod
    def of(cls, config: Config, total_bytes: int) -> Limit:
        return cls(aggregate_limit(config), [d.name for d in config.dimensions], total_bytes)

    def check(self, day: DayAggregate, read_bytes: int) -> None:
        """``read_bytes``: of the date's input, read when ``day`` was summed (all of it: the share is not told)."""
        read = read_bytes / self.total_bytes if read_bytes < self.total_bytes else None
        check_limit(day, self.limit, self.dimension_names, read)


def distinct_values(aggregates: Mapping, dimension_names: list[str]) -> list[tuple[str, int]]:
    """(dimension, its number of distinct values, absent not counted) for each dimension.

    >>> aggregates = {("d1", ("a", "x")): [1.0], ("d1", ("b", None)): [1.0], ("d2", ("c", "x")): [1.0]}
    >>> distinct_values(aggregates, ["os", "country"])
    [('os', 3), ('country', 1)]
    """
    counts = (aggregates if type(aggregates) is Sums else Sums.of(aggregates)).distinct_values()
    return list(zip(dimension_names, counts[1:], strict=True)) if counts else [(name, 0) for name in dimension_names]


def _first_listed(a: list, b: list) -> list:
    """The first MAX_OVERSIZED_LISTED of two lists of locations, in order.

    >>> _first_listed([("b", 5, 9)], [("a", 7, 9), ("b", 1, 9)])
    [('a', 7, 9), ('b', 1, 9), ('b', 5, 9)]
    """
    return sorted([*a, *b])[:MAX_OVERSIZED_LISTED]


def _is_blank(line) -> bool:
    """Empty or only whitespace (space, tab, CR, LF, VT, FF).

    >>> _is_blank(b""), _is_blank(memoryview(b" \\t\\r")), _is_blank(b" {}")
    (True, True, False)
    """
    return not line or bytes(line).isspace()


#: How many distinct strings a ``Sums`` shares among its keys; past that, new
#: ones are kept as they come (a day with a value per ping would only fill it).
MAX_SHARED_STRINGS = 1 << 16


class Sums(Mapping):
    """Stat sums per aggregate key, compactly: a mapping of (activity_date, dimensions) -> list of sums.

    Row ``i`` of ``values`` (``width`` doubles from ``i * width``) holds the
    sums of the ``i``-th key; keys are kept flattened,
    ``(activity_date, *dimensions)``, in row order, and found through an index
    made when first needed (a partial that only travels from a worker to the
    parent never makes one). ``Sums.of`` shares the strings of the keys, each
    value once (up to ``MAX_SHARED_STRINGS``), where the signatures of a
    worker bring a copy of ``"release"`` per key.

    Memory: a day of 400,000 distinct aggregates took ~1.1 KB each in the
    parent as a dict of lists of floats, ~0.45 KB as ``Sums``; merging keeps
    the tuples of the partials it receives and makes no other object per key,
    so that when the sums are freed their memory goes back to the system
    instead of staying behind in half-used pages of the heap.

    >>> sums = Sums.of({("2016-03-01", ("a", None)): [1.0, 2.0]})
    >>> sums.merge({("2016-03-01", ("a", None)): [1.0, 0.5], ("2016-03-02", ("b", "x")): [3.0, 4.0]})
    >>> dict(sums)
    {('2016-03-01', ('a', None)): [2.0, 2.5], ('2016-03-02', ('b', 'x')): [3.0, 4.0]}
    """

    def __init__(self, width: int = 0, keys: list[tuple] | None = None, values: array | None = None):
        self.width = width
        self._keys: list[tuple] = [] if keys is None else keys  # flattened, in row order
        self._rows: dict[tuple, int] | None = None  # flattened key -> row
        self.values = array("d") if values is None else values

    @classmethod
    def of(cls, aggregates: Mapping) -> Sums:
        """The sums of a dict of lists (or a copy of another ``Sums``), their keys' strings shared."""
        if type(aggregates) is Sums:
            return cls(aggregates.width, list(aggregates._keys), array("d", aggregates.values))
        first = next(iter(aggregates.values()), None)
        strings: dict = {}
        keys = []
        for activity_date, dimensions in aggregates:
            key = (activity_date, *dimensions)
            if len(strings) < MAX_SHARED_STRINGS:
                keys.append(tuple(map(strings.setdefault, key, key)))
            else:
                keys.append(tuple(map(strings.get, key, key)))
        values = array("d", itertools.chain.from_iterable(aggregates.values()))
        return cls(len(first) if first is not None else 0, keys, values)

    @property
    def _index(self) -> dict[tuple, int]:
        if self._rows is None:
            self._rows = dict(zip(self._keys, range(len(self._keys)), strict=True))
        return self._rows

    def merge(self, other: Mapping) -> None:
        """Add the sums of ``other`` (a ``Sums`` or a dict of lists) into these, in place.

        A key already here gets the other's sums added (one addition per
        double, as ``a + b`` in Python); a new one gets a copy of them.
        """
        if type(other) is not Sums:
            other = Sums.of(other)
        if not other._keys:
            return
        import numpy as np

        if not self.width:
            self.width = other.width
        keys, rows = self._keys, self._index
        get, append = rows.get, keys.append
        before = len(keys)
        targets = array("q")
        target = targets.append
        for key in other._keys:
            row = get(key)
            if row is None:
                row = rows[key] = len(keys)
                append(key)
            target(row)
        theirs = np.frombuffer(other.values, np.float64).reshape(-1, self.width)
        new = np.frombuffer(targets, np.int64) >= before
        if not new.all():
            old = ~new
            ours = np.frombuffer(self.values, np.float64).reshape(-1, self.width)
            # Keys are unique: one addition per row. A sum past the largest double is
            # inf, as ``a + b`` gives it in Python, without numpy's warning on stderr.
            with np.errstate(over="ignore"):
                ours[np.frombuffer(targets, np.int64)[old]] += theirs[old]
            del ours  # (the array cannot grow while numpy holds its buffer)
            self.values.frombytes(theirs[new].tobytes())
        else:
            self.values.extend(other.values)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[tuple]:
        return ((key[0], key[1:]) for key in self._keys)

    def __contains__(self, key) -> bool:
        return (key[0], *key[1]) in self._index

    def __getitem__(self, key: tuple) -> list[float]:
        row = self._index[(key[0], *key[1])]
        return self.values[row * self.width : (row + 1) * self.width].tolist()

    def __reduce__(self):
        return Sums, (self.width, self._keys, self.values)

    def columns(self, clear: bool = False) -> tuple[list[tuple], array]:
        """The keys as columns, in row order (activity dates, then each dimension's values; none
        without keys), and the sums, row after row. ``clear``: empty this ``Sums`` meanwhile,
        so that the keys' tuples are freed while their strings live on in the columns.

        >>> Sums.of({("d1", ("a", None)): [1.0, 2.0], ("d0", ("b", "x")): [3.0, 4.0]}).columns()
        ([('d1', 'd0'), ('a', 'b'), (None, 'x')], array('d', [1.0, 2.0, 3.0, 4.0]))
        """
        columns, values = list(zip(*self._keys, strict=True)), self.values
        if clear:
            self._keys, self._rows, self.values = [], None, array("d")
        return columns, values

    def distinct_values(self) -> list[int]:
        """Distinct values (absent ones not counted) of each part of the keys: activity date, then each dimension.

        >>> sums = Sums.of({("d1", ("a", None)): [1.0], ("d1", ("b", None)): [1.0], ("d2", ("a", "x")): [1.0]})
        >>> sums.distinct_values()
        [2, 2, 1]
        """
        if not self._keys:
            return []
        counts = []
        for position in range(len(self._keys[0])):
            seen = {key[position] for key in self._keys}
            counts.append(len(seen) - (None in seen))
        return counts
