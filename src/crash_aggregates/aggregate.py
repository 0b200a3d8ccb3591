"""Partial aggregates of one submission date: summing pings, merging partials, counting.

Every engine builds these from lines with ``add_lines`` and combines them with
``merge``; the counters are what ``_report.json`` reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import add
from typing import TYPE_CHECKING

from .pings import REASONS, PingRules

if TYPE_CHECKING:
    from .sources import LineBatch


class DayAggregate:
    """Sums per (activity_date, dimensions) plus processed/ignored counters."""

    def __init__(self):
        self.aggregates: dict[tuple, list[float]] = {}
        self.processed = Counter()  # doc type -> pings
        self.ignored = Counter()  # (doc type, reason) -> pings
        self.corrupt_files: list[dict] = []

    def add_lines(self, rules: PingRules, lines: Iterable, ascii: bool = False) -> None:
        """Evaluate and sum lines (bytes or memoryviews); blank lines are skipped, every other one counted.

        ``ascii``: the caller knows every line is ASCII, so none needs a UTF-8 check.
        """
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

    def merge(self, other: DayAggregate) -> DayAggregate:
        """Add another partial into this one (in place) and return self."""
        aggregates = self.aggregates
        for key, values in other.aggregates.items():
            sums = aggregates.get(key)
            if sums is None:
                aggregates[key] = list(values)
            else:
                sums[:] = map(add, sums, values)
        self.processed.update(other.processed)
        self.ignored.update(other.ignored)
        self.corrupt_files.extend(other.corrupt_files)
        return self

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


def _is_blank(line) -> bool:
    """Empty or only whitespace (space, tab, CR, LF, VT, FF).

    >>> _is_blank(b""), _is_blank(memoryview(b" \\t\\r")), _is_blank(b" {}")
    (True, True, False)
    """
    return not line or bytes(line).isspace()
