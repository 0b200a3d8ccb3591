"""The SQL console: its page, ``POST /api/sql`` (whole or streamed), downloads, and the schema sidebar's data.

The handlers read the request and call ``sql.console``; queries wait their turn
in the console's line (``query_queue``) and run in threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ...sql import DIALECTS, QueryError
from ...sql import console as library
from ..params import BadRequest
from ..query_queue import Busy, QueryQueue
from .common import _app, _render

LOG = logging.getLogger("crash_aggregates.web")
#: The longest SQL text the console takes.
MAX_SQL = 200_000
#: Recent days the schema sidebar's common values are counted over.
SCHEMA_DAYS = 7


@dataclass
class Console:
    """The console's line and limits, made from the ``[dashboard]`` configuration on first use."""

    queue: QueryQueue
    limits: library.Limits


def _console(request: Request) -> Console:
    state = request.app.state
    found = getattr(state, "console", None)
    if found is None:
        settings = _app(request).config.dashboard
        found = state.console = Console(
            QueryQueue(settings.console_running, settings.console_waiting),
            library.Limits(
                timeout=settings.console_timeout,
                max_rows=settings.console_max_rows,
                max_bytes=int(settings.console_max_result_mb * 2**20),
                download_rows=settings.console_download_rows,
            ),
        )
    return found


def _refused(message: str, status: int = 400) -> JSONResponse:
    body = {"error": message}
    if where := library.error_position(message):
        body["line"], body["column"] = where
    return JSONResponse(body, status_code=status)


def _statement(body) -> library.Statement:
    """The request's query, parameters bound, checked (a QueryError or BadRequest says what is wrong)."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object: {"sql": ..., "dialect": ..., "parameters": {...}}')
    sql, dialect = body.get("sql"), body.get("dialect") or "presto"
    params, declared = body.get("parameters") or {}, body.get("declarations") or {}
    if not isinstance(sql, str) or not sql.strip():
        raise BadRequest("sql: give the query as a string")
    if len(sql) > MAX_SQL:
        raise BadRequest(f"sql: at most {MAX_SQL:,} characters")
    if dialect not in DIALECTS:
        raise BadRequest(f"dialect: one of {', '.join(DIALECTS)}, not {dialect!r}")
    if not isinstance(params, dict) or not isinstance(declared, dict):
        raise BadRequest("parameters: an object of name: value")
    return library.statement(sql, dialect, declared, params)


async def _json_body(request: Request):
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None


async def api_sql(request: Request) -> Response:
    """``POST /api/sql``: ``{"sql", "dialect", "parameters"}`` -> ``{"columns", "rows"}`` (NDJSON if ``stream``)."""
    body = await _json_body(request)
    try:
        stmt = _statement(body)
    except (QueryError, BadRequest) as e:
        return _refused(str(e))
    console, data = _console(request), _app(request).data
    if body.get("stream"):
        return StreamingResponse(_stream(console, data, stmt), media_type="application/x-ndjson")

    def work():
        with data.connection() as conn:
            return library.answer(stmt, conn, console.limits)

    try:
        async with console.queue.turn():
            started = time.monotonic()
            found = await anyio.to_thread.run_sync(work)
    except Busy as e:
        return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": "2"})
    except QueryError as e:
        return _refused(str(e))
    return JSONResponse({**found.as_json(), "seconds": round(time.monotonic() - started, 3)})


async def _stream(console: Console, data, stmt: library.Statement):
    """NDJSON: ``{"queued": n}`` while waiting, ``{"columns"}``, ``{"rows"}`` per page, ``{"done"}``/``{"error"}``."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def put(item) -> None:
        loop.call_soon_threadsafe(events.put_nowait, item)

    def work() -> None:
        started = time.monotonic()
        with data.connection() as conn, library.pages(stmt, conn, console.limits) as found:
            put({"columns": [c["name"] for c in found.columns], "types": [c["type"] for c in found.columns]})
            for page in found:
                if stop.is_set():
                    return
                put({"rows": page})
            put({"done": True, "row_count": found.rows, "cut": found.cut,
                 "seconds": round(time.monotonic() - started, 3)})  # fmt: skip

    async def waited(position: int) -> None:
        await events.put({"queued": position})

    async def run() -> None:
        try:
            async with console.queue.turn(waited):
                await events.put({"running": True})
                await anyio.to_thread.run_sync(work)
        except Busy as e:
            await events.put({"error": str(e)})
        except QueryError as e:
            message = str(e)
            where = library.error_position(message)
            await events.put({"error": message, **({"line": where[0], "column": where[1]} if where else {})})
        except Exception:
            LOG.exception("console query failed")
            await events.put({"error": "internal error: the server log has the details"})
        finally:
            await events.put(None)

    task = asyncio.create_task(run())
    try:
        while (item := await events.get()) is not None:
            yield json.dumps(item, ensure_ascii=False, allow_nan=False) + "\n"
    finally:
        stop.set()  # the reader went away: the query stops at its next page
        await task


async def api_sql_download(request: Request) -> Response:
    """``POST /api/sql/download`` (a form: sql, dialect, parameters as JSON, format): the answer as a file."""
    form = await request.form()
    fmt = str(form.get("format", "csv"))
    if fmt not in library.DOWNLOADS:
        return _refused(f"format: one of {', '.join(library.DOWNLOADS)}")
    try:
        params = json.loads(str(form.get("parameters") or "{}"))
    except ValueError:
        return _refused("parameters: not JSON")
    try:
        stmt = _statement({"sql": form.get("sql"), "dialect": form.get("dialect"), "parameters": params})
    except (QueryError, BadRequest) as e:
        return _refused(str(e))
    console, data = _console(request), _app(request).data
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 2**20)  # larger answers go to disk, not memory

    def work() -> int:
        with data.connection() as conn:
            if fmt == "parquet":
                # Parquet needs a file it can seek in and close; the spool is read back after.
                with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
                    n = library.download(stmt, conn, fmt, f.name, console.limits)
                    with open(f.name, "rb") as written:
                        shutil.copyfileobj(written, spool)
                    return n
            return library.download(stmt, conn, fmt, spool, console.limits)

    try:
        async with console.queue.turn():
            rows = await anyio.to_thread.run_sync(work)
    except Busy as e:
        spool.close()
        return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": "2"})
    except QueryError as e:
        spool.close()
        return _refused(str(e))
    spool.seek(0)

    def chunks():
        with spool:
            while chunk := spool.read(256 * 1024):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=library.DOWNLOADS[fmt],
        headers={"Content-Disposition": f'attachment; filename="query.{fmt}"', "X-Rows": str(rows)},
    )


async def api_schema(request: Request) -> Response:
    """``GET /api/schema``: columns, each dimension key's most common values (recent days), the stat keys."""
    data = _app(request).data
    dates = data.dates()
    since = (dates[-1] - timedelta(days=SCHEMA_DAYS - 1)).isoformat() if dates else "9999-12-31"
    stats = _app(request).config.stat_columns()

    def compute(_version):
        with data.connection() as conn:
            return library.schema(conn, since, stats)

    try:
        found = await anyio.to_thread.run_sync(lambda: data.cached("console-schema", since, compute))
    except QueryError as e:
        return _refused(str(e), 503)
    return JSONResponse(found)


def console_page(request: Request) -> Response:
    """``GET /console``: the editor (``?sql=`` fills it), the schema sidebar, results, downloads, the chart builder."""
    settings = _app(request).config.dashboard
    return _render(
        request,
        "console.html",
        "console",
        sql=request.query_params.get("sql", ""),
        dialect=request.query_params.get("dialect", "presto"),
        dialects=DIALECTS,
        limits={"max_rows": settings.console_max_rows, "timeout": settings.console_timeout},
    )
