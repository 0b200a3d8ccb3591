"""Saved queries and dashboards: what a team writes once, keeps, changes, and puts on a screen.

A saved query has a name, a description, its SQL and dialect, its
parameters (``{{ name }}`` placeholders: name -> type and default), the chart
builder's settings, tags, an author and times. A dashboard is a grid of
widgets (a saved query's chart, or a block of text) with parameters of its
own that feed every query that declares one of the same name.

Each has a stable ``id`` (links) and a stable ``slug`` (files: export and
import refer to queries by slug), neither changed by a rename. Every change
is kept as a numbered version that can be listed, read and restored (a
restore is itself a new version: history only grows).

This module knows the state file and nothing of the web: the HTTP API
(``web/api_queries.py``) and the files (``queryfiles.py``) call it.

>>> import tempfile, os
>>> from crash_aggregates.state import open_state
>>> with tempfile.TemporaryDirectory() as d:
...     db = open_state(os.path.join(d, "state.sqlite3"))
...     q = create_query(db, {"name": "Rates", "sql": "SELECT 1"}, "alice")
...     q = update_query(db, q.id, {"sql": "SELECT 2"}, "bob")
...     q = restore_query(db, q.id, 1, "alice")
...     history = [(v.number, v.sql, v.note) for v in query_versions(db, q.slug)]
...     db.close()
>>> q.slug, q.version, q.sql
('rates', 3, 'SELECT 1')
>>> history
[(1, 'SELECT 1', 'created'), (2, 'SELECT 2', 'edited'), (3, 'SELECT 1', 'restored version 1')]
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import CrashAggregatesError, ExitCode
from .state import now_text, transaction

DIALECTS = ("presto", "duckdb")
PARAMETER_TYPES = ("text", "number", "date", "date_range", "list")
CHART_TYPES = ("line", "bar", "area", "scatter", "table", "number")
WIDGET_TYPES = ("query", "text")
#: Dashboards are laid out on a grid this many columns wide.
GRID_COLUMNS = 12
MAX_SQL = 200_000
MAX_TEXT = 20_000

PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
SLUG = re.compile(r"(?=[a-z0-9_-]*[a-z])[a-z0-9][a-z0-9_-]{0,79}")


class InvalidItem(CrashAggregatesError):
    """A query or dashboard that cannot be saved as given (one line says why)."""

    exit_code = ExitCode.USAGE


class NotFound(CrashAggregatesError):
    """No saved query, dashboard or version of that id or slug."""

    exit_code = ExitCode.USAGE


class Conflict(CrashAggregatesError):
    """Saved over a version that is no longer the newest: someone saved in between."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class SavedQuery:
    id: int
    slug: str
    name: str
    description: str
    sql: str
    dialect: str
    parameters: dict
    chart: dict
    tags: list
    author: str | None
    forked_from: int | None
    version: int
    created_at: str
    updated_at: str
    updated_by: str | None

    def as_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Dashboard:
    id: int
    slug: str
    name: str
    description: str
    parameters: dict
    widgets: list
    tags: list
    author: str | None
    version: int
    created_at: str
    updated_at: str
    updated_by: str | None

    def as_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def query_ids(self) -> list[int]:
        return [w["query"] for w in self.widgets if w["type"] == "query"]


@dataclass(frozen=True)
class Version:
    """One version of a query or a dashboard: its content then, who wrote it, when and how."""

    number: int
    content: dict
    author: str | None
    note: str
    created_at: str

    def __getattr__(self, name):  # v.sql, v.name: the content's fields
        try:
            return self.__dict__["content"][name]
        except KeyError:
            raise AttributeError(name) from None

    def as_json(self) -> dict:
        return {"version": self.number, **self.content, "author": self.author, "note": self.note,
                "created_at": self.created_at}  # fmt: skip


# -- checking what is saved -------------------------------------------------------------


def _text(item: Mapping, key: str, *, required: bool = False, limit: int = 200, one_line: bool = True) -> str:
    value = item.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidItem(f"{key} must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidItem(f"{key} is required")
    if len(value) > limit:
        raise InvalidItem(f"{key} is longer than {limit:,} characters")
    if one_line and ("\n" in value or "\r" in value):
        raise InvalidItem(f"{key} must be one line")
    return value


def _without_nulls(value, where: str):
    """JSON settings without null members (TOML, which the files use, has no null).

    >>> _without_nulls({"a": None, "b": [1, {"c": None}]}, "chart")
    {'b': [1, {}]}
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidItem(f"{where}: keys must be strings")
            if v is not None:
                out[k] = _without_nulls(v, where)
        return out
    if isinstance(value, list):
        if any(v is None for v in value):
            raise InvalidItem(f"{where}: a list may not hold null")
        return [_without_nulls(v, where) for v in value]
    if isinstance(value, float) and value != value:
        raise InvalidItem(f"{where}: NaN is not a value")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise InvalidItem(f"{where}: {type(value).__name__} is not a JSON value")


def check_parameters(value, where: str = "parameters") -> dict:
    """``{name: {"type": ..., "default": ..., ...}}``: names as in ``{{ name }}``, known types.

    >>> check_parameters({"channel": {"type": "text", "default": "release"}})
    {'channel': {'type': 'text', 'default': 'release'}}
    >>> check_parameters({"1st": {}})
    Traceback (most recent call last):
    ...
    crash_aggregates.queries.InvalidItem: parameters: invalid name '1st' (letters, digits, _; not first a digit)
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidItem(f"{where} must be an object of name: settings")
    value = _without_nulls(value, where)
    for name, spec in value.items():
        if not PARAMETER_NAME.fullmatch(name):
            raise InvalidItem(f"{where}: invalid name {name!r} (letters, digits, _; not first a digit)")
        if not isinstance(spec, dict):
            raise InvalidItem(f"{where}: {name} must be an object (type, default, ...)")
        kind = spec.get("type", "text")
        if kind not in PARAMETER_TYPES:
            raise InvalidItem(f"{where}: {name} has unknown type {kind!r} (one of {', '.join(PARAMETER_TYPES)})")
    return value


def check_chart(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidItem("chart must be an object")
    value = _without_nulls(value, "chart")
    kind = value.get("type")
    if kind is not None and kind not in CHART_TYPES:
        raise InvalidItem(f"chart: unknown type {kind!r} (one of {', '.join(CHART_TYPES)})")
    return value


def check_tags(value) -> list[str]:
    """Tags: short strings, each kept once, in the order given.

    >>> check_tags(["stability", " nightly", "stability"])
    ['stability', 'nightly']
    """
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidItem("tags must be a list of strings")
    tags = []
    for tag in (t.strip() for t in value):
        if not tag or len(tag) > 50 or "\n" in tag:
            raise InvalidItem(f"invalid tag {tag!r}: 1 to 50 characters on one line")
        if tag not in tags:
            tags.append(tag)
    return tags


def check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        raise InvalidItem(
            f"invalid slug {slug!r}: lower-case letters, digits, - and _ (at least one letter, at most 80)"
        )
    return slug


def slugify(name: str, fallback: str = "query") -> str:
    """A slug made from a name.

    >>> slugify("Crash rates by channel (7 days)"), slugify("2016"), slugify("Über!")
    ('crash-rates-by-channel-7-days', 'query-2016', 'ber')
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    if not slug or not re.search("[a-z]", slug):
        slug = f"{fallback}-{slug}" if slug else fallback
    return slug


def _query_content(item: Mapping) -> dict:
    unknown = set(item) - set(QUERIES.fields) - {"id", "slug", "version", "author", "created_at", "updated_at",
                                                 "updated_by", "forked_from"}  # fmt: skip
    if unknown:
        raise InvalidItem(f"unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(QUERIES.fields)})")
    sql = item.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidItem("sql is required")
    if len(sql) > MAX_SQL:
        raise InvalidItem(f"sql is longer than {MAX_SQL:,} characters")
    dialect = item.get("dialect") or "presto"
    if dialect not in DIALECTS:
        raise InvalidItem(f"unknown dialect {dialect!r} (one of {', '.join(DIALECTS)})")
    return {
        "name": _text(item, "name", required=True),
        "description": _text(item, "description", limit=MAX_TEXT, one_line=False),
        "sql": sql.strip(),
        "dialect": dialect,
        "parameters": check_parameters(item.get("parameters")),
        "chart": check_chart(item.get("chart")),
        "tags": check_tags(item.get("tags")),
    }


def _integer(widget: Mapping, key: str, low: int, high: int, default: int | None = None) -> int:
    value = widget.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidItem(f"widget {key} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _widget(db: sqlite3.Connection, widget) -> dict:
    if not isinstance(widget, dict):
        raise InvalidItem("each widget must be an object")
    kind = widget.get("type")
    if kind not in WIDGET_TYPES:
        raise InvalidItem(f"widget type must be one of {', '.join(WIDGET_TYPES)}, not {kind!r}")
    known = {"type", "x", "y", "w", "h", "title"} | ({"query"} if kind == "query" else {"text"})
    if set(widget) - known - {"query_slug"}:
        raise InvalidItem(f"{kind} widget: unknown field(s) {', '.join(sorted(set(widget) - known))}")
    out = {"type": kind}
    if kind == "query":
        out["query"] = get_query(db, widget.get("query")).id
    else:
        out["text"] = _text(widget, "text", limit=MAX_TEXT, one_line=False)
    title = _text(widget, "title")
    if title:
        out["title"] = title
    out["x"] = _integer(widget, "x", 0, GRID_COLUMNS - 1, 0)
    out["y"] = _integer(widget, "y", 0, 10_000, 0)
    out["w"] = _integer(widget, "w", 1, GRID_COLUMNS - out["x"], min(6, GRID_COLUMNS - out["x"]))
    out["h"] = _integer(widget, "h", 1, 100, 4)
    return out


def _dashboard_content(db: sqlite3.Connection, item: Mapping) -> dict:
    unknown = set(item) - set(DASHBOARDS.fields) - {"id", "slug", "version", "author", "created_at", "updated_at",
                                                    "updated_by"}  # fmt: skip
    if unknown:
        raise InvalidItem(f"unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(DASHBOARDS.fields)})")
    widgets = item.get("widgets") or []
    if not isinstance(widgets, list):
        raise InvalidItem("widgets must be a list")
    return {
        "name": _text(item, "name", required=True),
        "description": _text(item, "description", limit=MAX_TEXT, one_line=False),
        "parameters": check_parameters(item.get("parameters")),
        "widgets": [_widget(db, w) for w in widgets],
        "tags": check_tags(item.get("tags")),
    }


# -- one implementation for both kinds ---------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """Where a kind of item is kept. The names are constants of this module, never input."""

    noun: str
    table: str
    versions: str
    key: str
    fields: tuple[str, ...]
    json_fields: tuple[str, ...]

    def item(self, row: sqlite3.Row):
        values = {k: row[k] for k in row.keys()}
        for name in self.json_fields:
            values[name] = json.loads(values[name])
        return (SavedQuery if self is QUERIES else Dashboard)(**values)

    def version(self, row: sqlite3.Row) -> Version:
        content = {name: json.loads(row[name]) if name in self.json_fields else row[name] for name in self.fields}
        return Version(row["version"], content, row["author"], row["note"], row["created_at"])


QUERIES = _Kind(
    "query",
    "saved_queries",
    "saved_query_versions",
    "query_id",
    ("name", "description", "sql", "dialect", "parameters", "chart", "tags"),
    ("parameters", "chart", "tags"),
)
DASHBOARDS = _Kind(
    "dashboard",
    "dashboards",
    "dashboard_versions",
    "dashboard_id",
    ("name", "description", "parameters", "widgets", "tags"),
    ("parameters", "widgets", "tags"),
)


def _stored(kind: _Kind, content: dict) -> list:
    return [json.dumps(content[f], ensure_ascii=False) if f in kind.json_fields else content[f] for f in kind.fields]


def _get(db: sqlite3.Connection, kind: _Kind, ref):
    """By id (an int, or a string of digits) or by slug."""
    if isinstance(ref, bool) or ref is None:
        raise NotFound(f"no {kind.noun} {ref!r}")
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        row = db.execute(f"SELECT * FROM {kind.table} WHERE id = ?", (int(ref),)).fetchone()
    else:
        row = db.execute(f"SELECT * FROM {kind.table} WHERE slug = ?", (str(ref),)).fetchone()
    if row is None:
        raise NotFound(f"no {kind.noun} {ref!r}")
    return kind.item(row)


def _free_slug(db: sqlite3.Connection, kind: _Kind, wanted: str) -> str:
    slug, n = wanted, 1
    while db.execute(f"SELECT 1 FROM {kind.table} WHERE slug = ?", (slug,)).fetchone():
        n += 1
        slug = f"{wanted[:75]}-{n}"
    return slug


def _record_version(db, kind: _Kind, item_id: int, version: int, content: dict, author, note: str, now: str):
    db.execute(
        f"INSERT INTO {kind.versions} ({kind.key}, version, {', '.join(kind.fields)}, author, note, created_at) "
        f"VALUES (?, ?, {', '.join('?' * len(kind.fields))}, ?, ?, ?)",
        (item_id, version, *_stored(kind, content), author, note, now),
    )


def _create(db, kind: _Kind, content: dict, author, slug: str | None, note: str, extra: dict | None = None):
    now = now_text()
    extra = extra or {}
    with transaction(db):
        if slug is None:
            slug = _free_slug(db, kind, slugify(content["name"], kind.noun))
        elif db.execute(f"SELECT 1 FROM {kind.table} WHERE slug = ?", (check_slug(slug),)).fetchone():
            raise InvalidItem(f"there is already a {kind.noun} with the slug {slug!r}")
        columns = ["slug", *kind.fields, *extra, "author", "version", "created_at", "updated_at", "updated_by"]
        values = [slug, *_stored(kind, content), *extra.values(), author, 1, now, now, author]
        cursor = db.execute(
            f"INSERT INTO {kind.table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values
        )
        _record_version(db, kind, cursor.lastrowid, 1, content, author, note, now)
    return _get(db, kind, cursor.lastrowid)


def _content(item) -> dict:
    return {name: getattr(item, name) for name in (QUERIES if isinstance(item, SavedQuery) else DASHBOARDS).fields}


def _update(db, kind: _Kind, ref, content: dict, author, base_version: int | None, note: str):
    """Save ``content`` as the item's next version (nothing if it is the current one)."""
    with transaction(db):
        current = _get(db, kind, ref)
        if base_version is not None and base_version != current.version:
            raise Conflict(
                f"{kind.noun} {current.slug!r} is at version {current.version}, not {base_version}: "
                "someone saved it meanwhile; reload it and apply your change again"
            )
        if content == _content(current):
            return current
        now, version = now_text(), current.version + 1
        assignments = ", ".join(f"{f} = ?" for f in kind.fields)
        db.execute(
            f"UPDATE {kind.table} SET {assignments}, version = ?, updated_at = ?, updated_by = ? WHERE id = ?",
            (*_stored(kind, content), version, now, author, current.id),
        )
        _record_version(db, kind, current.id, version, content, author, note, now)
    return _get(db, kind, current.id)


def _versions(db, kind: _Kind, ref) -> list[Version]:
    item = _get(db, kind, ref)
    rows = db.execute(f"SELECT * FROM {kind.versions} WHERE {kind.key} = ? ORDER BY version", (item.id,))
    return [kind.version(row) for row in rows]


def _version(db, kind: _Kind, ref, number: int) -> Version:
    item = _get(db, kind, ref)
    row = db.execute(
        f"SELECT * FROM {kind.versions} WHERE {kind.key} = ? AND version = ?", (item.id, number)
    ).fetchone()
    if row is None:
        raise NotFound(f"{kind.noun} {item.slug!r} has no version {number} (it is at version {item.version})")
    return kind.version(row)


def _search(db, kind: _Kind, text: str | None, tag: str | None, author: str | None, columns: tuple[str, ...]):
    where, values = [], []
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
        values += [pattern] * len(columns)
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(tags) WHERE json_each.value = ?)")
        values.append(tag)
    if author:
        where.append("author = ?")
        values.append(author)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(f"SELECT * FROM {kind.table} {clause} ORDER BY updated_at DESC, id DESC", values)
    return [kind.item(row) for row in rows]


# -- saved queries -----------------------------------------------------------------------


def create_query(
    db: sqlite3.Connection,
    item: Mapping,
    author: str | None,
    *,
    slug: str | None = None,
    note: str = "created",
    forked_from: int | None = None,
) -> SavedQuery:
    """Save a new query (``item``: name and sql required; description, dialect, parameters, chart, tags)."""
    return _create(db, QUERIES, _query_content(item), author, slug, note, {"forked_from": forked_from})


def get_query(db: sqlite3.Connection, ref: int | str) -> SavedQuery:
    return _get(db, QUERIES, ref)


def list_queries(
    db: sqlite3.Connection, search: str | None = None, tag: str | None = None, author: str | None = None
) -> list[SavedQuery]:
    """Saved queries, the last changed first; ``search`` looks in names, descriptions, SQL and tags."""
    return _search(db, QUERIES, search, tag, author, ("name", "description", "sql", "tags", "slug"))


def update_query(
    db: sqlite3.Connection,
    ref: int | str,
    changes: Mapping,
    author: str | None,
    *,
    base_version: int | None = None,
    note: str = "edited",
) -> SavedQuery:
    """Change some fields of a query (the others keep their values): a new version, unless nothing changed.

    ``base_version``: the version the change was made on; if another was
    saved since, :class:`Conflict` (nothing is overwritten unseen).
    """
    current = get_query(db, ref)
    content = _query_content({**_content(current), **changes})
    return _update(db, QUERIES, current.id, content, author, base_version, note)


def fork_query(db: sqlite3.Connection, ref: int | str, author: str | None, name: str | None = None) -> SavedQuery:
    """A copy of the query's current version, owned by ``author``, that remembers where it came from."""
    source = get_query(db, ref)
    item = {**_content(source), "name": name or f"{source.name} (fork)"}
    return create_query(db, item, author, note=f"forked from {source.slug} version {source.version}",
                        forked_from=source.id)  # fmt: skip


def query_versions(db: sqlite3.Connection, ref: int | str) -> list[Version]:
    return _versions(db, QUERIES, ref)


def query_version(db: sqlite3.Connection, ref: int | str, number: int) -> Version:
    return _version(db, QUERIES, ref, number)


def restore_query(db: sqlite3.Connection, ref: int | str, number: int, author: str | None) -> SavedQuery:
    """Make version ``number``'s content the newest version (history is kept)."""
    old = query_version(db, ref, number)
    return _update(db, QUERIES, get_query(db, ref).id, old.content, author, None, f"restored version {number}")


# -- dashboards --------------------------------------------------------------------------


def create_dashboard(
    db: sqlite3.Connection, item: Mapping, author: str | None, *, slug: str | None = None, note: str = "created"
) -> Dashboard:
    """Save a new dashboard (``item``: name required; description, parameters, widgets, tags).

    A query widget names its query by id or slug: ``{"type": "query", "query": 3, "x": 0, "y": 0, "w": 6,
    "h": 4}``; a text widget holds ``text``. The grid is :data:`GRID_COLUMNS` wide.
    """
    return _create(db, DASHBOARDS, _dashboard_content(db, item), author, slug, note)


def get_dashboard(db: sqlite3.Connection, ref: int | str) -> Dashboard:
    return _get(db, DASHBOARDS, ref)


def list_dashboards(
    db: sqlite3.Connection, search: str | None = None, tag: str | None = None, author: str | None = None
) -> list[Dashboard]:
    return _search(db, DASHBOARDS, search, tag, author, ("name", "description", "tags", "slug"))


def update_dashboard(
    db: sqlite3.Connection,
    ref: int | str,
    changes: Mapping,
    author: str | None,
    *,
    base_version: int | None = None,
    note: str = "edited",
) -> Dashboard:
    current = get_dashboard(db, ref)
    content = _dashboard_content(db, {**_content(current), **changes})
    return _update(db, DASHBOARDS, current.id, content, author, base_version, note)


def dashboard_versions(db: sqlite3.Connection, ref: int | str) -> list[Version]:
    return _versions(db, DASHBOARDS, ref)


def dashboard_version(db: sqlite3.Connection, ref: int | str, number: int) -> Version:
    return _version(db, DASHBOARDS, ref, number)


def restore_dashboard(db: sqlite3.Connection, ref: int | str, number: int, author: str | None) -> Dashboard:
    old = dashboard_version(db, ref, number)
    current = get_dashboard(db, ref)
    content = _dashboard_content(db, old.content)  # its queries must still exist
    return _update(db, DASHBOARDS, current.id, content, author, None, f"restored version {number}")


def widget_parameters(query: SavedQuery, dashboard: Dashboard, given: Mapping[str, Any] | None = None) -> dict:
    """The values a query on a dashboard runs with: for each parameter the query declares, the value
    ``given`` (e.g. from the dashboard's URL), else the dashboard's default, else the query's default.

    A dashboard parameter feeds every query that declares one of the same name; the others ignore it.

    >>> q = SavedQuery(1, "q", "Q", "", "SELECT", "presto", {"channel": {"default": "release"}, "days": {}},
    ...                {}, [], None, None, 1, "", "", None)
    >>> d = Dashboard(1, "d", "D", "", {"channel": {"default": "beta"}, "os": {"default": "Linux"}}, [], [],
    ...               None, 1, "", "", None)
    >>> widget_parameters(q, d), widget_parameters(q, d, {"channel": "nightly", "os": "Darwin"})
    ({'channel': 'beta', 'days': None}, {'channel': 'nightly', 'days': None})
    """
    given = given or {}
    values = {}
    for name, spec in query.parameters.items():
        value = spec.get("default")
        if "default" in dashboard.parameters.get(name, {}):
            value = dashboard.parameters[name]["default"]
        if name in given and name in dashboard.parameters:
            value = given[name]
        values[name] = value
    return values
