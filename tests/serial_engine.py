"""A third engine, outside the package: every split in this process, one after the other.

It shows what an engine needs (``engines.Engine``): a name, ``start`` and
``aggregate_day`` built on the project's own ``aggregate_split``, so that it
has no rule of its own. ``test_engines.py`` plugs it into the registry.
"""

from __future__ import annotations

from crash_aggregates.aggregate import DayAggregate
from crash_aggregates.engines.embedded import aggregate_split
from crash_aggregates.pings import PingRules


class SerialEngine:
    name = "serial"

    def start(self, workers=None, master=None) -> int:
        return 1

    def aggregate_day(self, config, day, splits, *, workers=None, allow_corrupt=False, progress=None, prepare=None):
        if prepare:
            prepare()
        rules, total = PingRules(config, day), DayAggregate()
        for split in splits:
            aggregate_split(rules, split, allow_corrupt, progress, into=total)
        return total


ENGINE = SerialEngine()
