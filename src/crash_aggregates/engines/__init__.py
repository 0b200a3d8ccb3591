"""Engines: where the per-ping rules of ``pings.py`` run (one process pool, or Spark)."""

from ..errors import CrashAggregatesError


class EngineError(CrashAggregatesError):
    """An engine failed a date; the message is one line for the user."""
