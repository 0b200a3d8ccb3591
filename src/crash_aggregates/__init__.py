"""crash-aggregates: crash-rate aggregates from telemetry pings.

``connect(path)`` and ``query(sql, path, dialect="presto")`` read the
aggregates with SQL (see ``crash_aggregates.sql``); they are imported on
first use so that importing the package stays light.
"""

__version__ = "0.1.0"

__all__ = ["connect", "query", "__version__"]


def __getattr__(name):
    if name in ("connect", "query"):
        import importlib

        return getattr(importlib.import_module(".sql", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
