"""Engines: where the per-ping rules of ``pings.py`` run (one process pool, or Spark)."""


class EngineError(Exception):
    """An engine cannot run or failed a date; the message is one line for the user."""
