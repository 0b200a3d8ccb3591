"""Data health: each published date's report counters, missing dates as gaps; and ``/api/health``."""

from __future__ import annotations

from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .common import (
    _app,
    _render,
)


def api_health(request: Request) -> Response:
    """``GET /api/health``: each published date's report counters, and the dates missing between them."""
    rows, missing = _health(request)
    return JSONResponse(
        {"dates": [r for r in rows if r is not None], "missing": missing, "watchdog": _watchdog(request)}
    )


REPORT_KEYS = (
    "main_pings_processed",
    "main_pings_ignored",
    "crash_pings_processed",
    "crash_pings_ignored",
    "ignored_by_reason",
    "aggregates",
    "input_files",
    "input_bytes",
    "engine",
    "duration_seconds",
)


def _watchdog(request: Request) -> dict | None:
    """What the last ``crash-aggregates check`` found (``watch.command.status``), if one ran with this config."""
    from ...state import StateError, resolve_path
    from ...watch.command import status

    config = _app(request).config
    try:
        return status(config, resolve_path(None, config.state_path))
    except StateError:
        return None


def _health(request: Request) -> tuple[list[dict | None], list[str]]:
    data = _app(request).data
    reports = data.reports()
    dates = sorted(reports)
    rows: list[dict | None] = []
    missing = []
    if dates:
        day = dates[0]
        while day <= dates[-1]:
            if day in reports:
                report = reports[day] or {}
                row = {"submission_date": day.isoformat(), **{k: report.get(k) for k in REPORT_KEYS}}
                row["report"] = reports[day] is not None
                rows.append(row)
            else:
                missing.append(day.isoformat())
                rows.append(None)
            day += timedelta(days=1)
    return rows, missing


def _pings(row: dict | None, kind: str) -> int | None:
    return None if row is None else (row[f"main_pings_{kind}"] or 0) + (row[f"crash_pings_{kind}"] or 0)


def health(request: Request) -> Response:
    rows, missing = _health(request)
    reasons = sorted({r for row in rows if row for r in (row.get("ignored_by_reason") or {})})
    labels = []
    if rows:
        first = date.fromisoformat(next(r for r in rows if r)["submission_date"])
        labels = [(first + timedelta(days=i)).isoformat() for i in range(len(rows))]
    chart = {
        "kind": "bars",
        "x": "submission date",
        "y": "pings",
        "labels": labels,
        "series": [
            {"name": "processed", "values": [_pings(r, "processed") for r in rows]},
            {"name": "ignored", "values": [_pings(r, "ignored") for r in rows]},
        ],
    }
    return _render(
        request,
        "health.html",
        "health",
        rows=list(zip(labels, rows, strict=True)),
        missing=missing,
        reasons=reasons,
        chart_data=chart,
        watchdog=_watchdog(request),
    )
