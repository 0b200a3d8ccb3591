"""The oracle of the fuzzer and of the property tests: every parsing tier of PingRules on one line.

The reference is the generic tier (the standard library's ``json``, then a
walk of plain dicts). For one line, :meth:`Tiers.check` asserts that

- the C scanner's own answer (``Scanner.extract``) is the reference's: the
  same leaf values, of the same types, when it returns them; "malformed" (None)
  exactly when the reference finds the line malformed; or "ask the generic
  tier" (False), which the reference then answers;
- ``PingRules.evaluate`` with the scanner (whose memory of signatures carries
  over from line to line, as in a run), with the msgspec tier, and with the
  msgspec tier told the line is ASCII when it is, give the reference's outcome.

The scanner reads the line from a buffer of exactly its length, allocated
with the C library's ``malloc`` (:func:`exact_buffer`): under AddressSanitizer
a read one byte past the end is reported (a ``bytes`` object would hide it
behind its terminating NUL).

The fuzzer (``fuzz/scanner.py``) runs every input through both
configurations of :data:`CONFIGS`, with each build of the scanner it loads.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from collections import Counter
from dataclasses import replace
from datetime import date
from unittest import mock

from crash_aggregates import pings, reading
from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.config import GFX_COMPOSITOR, Dimension, Stat, default_config
from crash_aggregates.pings import PingRules

DAY = date(2016, 3, 15)


def odd_config():
    """The defaults plus paths that stress the scanner's trie: a dimension on a
    path the rules also read (two slots for one leaf), a deeper one with an
    absent value, keys with a dot, non-ASCII and an empty-looking nesting, and a
    histogram whose leaf sits beside the rules' own."""
    defaults = default_config()
    return replace(
        defaults,
        dimensions=(
            *defaults.dimensions,
            GFX_COMPOSITOR,
            Dimension("doc_type", ("meta", "docType")),
            Dimension("dotted", ("payload", "a.b")),
            Dimension("accented", ("environment", "ünï", "côde")),
            Dimension("length", ("payload", "info", "subsessionLength")),
        ),
        stats=(*defaults.stats, Stat("deep_count", histogram=("payload", "keyedHistograms", "X", "y"))),
    )


CONFIGS = {"default": default_config(), "odd": odd_config()}

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]


@contextlib.contextmanager
def exact_buffer(data: bytes):
    """A writable buffer of exactly ``len(data)`` bytes from ``malloc`` (freed on exit)."""
    address = _libc.malloc(len(data)) or _libc.malloc(1)  # malloc(0) may answer NULL
    if not address:
        raise MemoryError
    try:
        array = (ctypes.c_char * len(data)).from_address(address)
        ctypes.memmove(address, data, len(data))
        with memoryview(array).cast("B") as view:
            yield view
    finally:
        _libc.free(address)


def same_value(a, b) -> bool:
    """Equal and of the same type (1, 1.0 and True differ; so do 0.0 and -0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def rules_with(config, day: date, build=None, tier: str = "fast") -> PingRules:
    """PingRules of one tier; "fast" with the ``Scanner`` and ``Summer`` of ``build`` (a ``_scan``
    module: default the installed one)."""
    if tier == "fast" and build is not None:
        with mock.patch.object(reading, "Scanner", build.Scanner), mock.patch.object(pings, "Summer", build.Summer):
            rules = PingRules(config, day)
    else:
        rules = PingRules(config, day)
    if tier == "fast":
        assert rules.reader.scanner is not None, "the C scanner is not built, or the configuration turns it off"
    else:
        rules.reader.scanner = None
        if tier == "generic":
            rules.reader.decoder = None
    return rules


class Disagreement(AssertionError):
    """Two tiers answered one line differently."""


class Tiers:
    """One configuration's tiers for one submission date, and the tally of the scanner's answers."""

    def __init__(self, config, day: date = DAY, builds: dict | None = None):
        self.reference = rules_with(config, day, tier="generic")
        self.msgspec = rules_with(config, day, tier="msgspec")
        self.fast = {name: rules_with(config, day, build) for name, build in (builds or {"installed": None}).items()}
        self.answers: Counter = Counter()  # "leaves" | "malformed" | "generic tier"

    def check(self, line: bytes) -> None:
        """Assert that every tier answers ``line`` as the reference does (raises Disagreement)."""
        want_leaves = self.reference.reader.generic_leaves(line)
        want = self.reference.evaluate(line)
        for name, rules in self.fast.items():
            with exact_buffer(line) as view:
                got = rules.reader.scanner.extract(view)
                if got is None:
                    self.answers["malformed"] += 1
                    if want_leaves is not None:
                        raise Disagreement(f"{name} scanner: malformed, reference: leaves {want_leaves!r}")
                elif got is False:
                    self.answers["generic tier"] += 1
                else:
                    self.answers["leaves"] += 1
                    leaves = got[:-1]
                    if want_leaves is None or len(leaves) != len(want_leaves):
                        raise Disagreement(f"{name} scanner: leaves {leaves!r}, reference: {want_leaves!r}")
                    for i, (a, b) in enumerate(zip(leaves, want_leaves, strict=True)):
                        if not same_value(a, b):
                            path = ".".join(rules.reader.paths[i])
                            raise Disagreement(f"{name} scanner: {path} = {a!r}, reference: {b!r}")
                outcome = rules.evaluate(view)
            if outcome != want:
                raise Disagreement(f"{name} scanner: {outcome}, reference: {want}")
            if rules.summer is not None:
                self._check_compiled(name, rules, line)
        for ascii in (False, True) if line.isascii() else (False,):
            outcome = self.msgspec.evaluate(line, ascii)
            if outcome != want:
                raise Disagreement(f"msgspec tier (ascii={ascii}): {outcome}, reference: {want}")

    def _check_compiled(self, name: str, rules: PingRules, line: bytes) -> None:
        """The compiled rules (``_scan.Summer``, as ``DayAggregate.add_lines`` runs them) sum the
        line as ``evaluate`` does: the same counters, keys and stats. The line is added three
        times: the second time its sums go into the aggregate the first one made (Summer adds
        in place to a float nobody else holds), the third time while another list holds those
        floats too (Summer must then make new ones, and leave the other list's alone)."""
        compiled, reference = DayAggregate(), DayAggregate()
        with exact_buffer(line) as view:
            compiled.add_lines(rules, [view, view])
            held = {key: list(sums) for key, sums in compiled.aggregates.items()}  # the same float objects
            bits = {key: [x.hex() for x in sums] for key, sums in held.items()}  # NaN-proof
            compiled.add_lines(rules, [view])
        if {key: [x.hex() for x in sums] for key, sums in held.items()} != bits:
            raise Disagreement(f"{name} compiled rules changed floats that another list holds: {held}")
        reference._add_lines(self.reference, [line, line, line], False)
        got = (compiled.aggregates, compiled.processed, compiled.ignored)
        want = (reference.aggregates, reference.processed, reference.ignored)
        if got != want:
            raise Disagreement(f"{name} compiled rules: {got}, reference: {want}")
