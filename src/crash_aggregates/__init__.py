"""crash-aggregates: crash-rate aggregates from telemetry pings."""

__version__ = "0.1.0"
