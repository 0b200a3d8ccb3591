"""Engines: where the per-ping rules of ``pings.py`` run (one process pool, or Spark)."""
