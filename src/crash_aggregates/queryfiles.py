"""Saved queries and dashboards as files, for git: ``queries export DIR`` and ``queries import DIR``.

The layout of DIR::

    queries/<slug>.sql         one per saved query: a header of TOML in SQL comments, then the SQL
    dashboards/<slug>.toml     one per dashboard; its widgets name queries by slug

A query file stays a file that runs (the header is comments)::

    -- +++
    -- name = "Crash rates by channel"
    -- dialect = "presto"
    -- tags = ["stability"]
    -- chart = { type = "bar", x = "channel", y = ["rate"] }
    --
    -- [parameters.channel]
    -- type = "text"
    -- default = "release"
    -- +++
    SELECT ...

A plain ``.sql`` file without a header (the repository's ``examples/``) is
read too, in DIR or in DIR/queries: its first comment line gives the name
(the part before ``: ``; the rest is the description), its file name the slug.

An import is all or nothing (one transaction), and compares each file with
what is saved: a query or dashboard equal to its file is left alone, so a
second import of the same folder changes nothing and says so. A changed one
gets a new version (noted "imported"): history is kept, never overwritten.
No author, password or token is written to the files.

>>> text = render_query({"name": "Q", "description": "", "sql": "SELECT 1", "dialect": "presto",
...                      "parameters": {"c": {"type": "text"}}, "chart": {}, "tags": []})
>>> print(text, end="")
-- +++
-- name = "Q"
-- dialect = "presto"
--
-- [parameters.c]
-- type = "text"
-- +++
SELECT 1
>>> parse_query(text, "q.sql")["parameters"]
{'c': {'type': 'text'}}
"""

from __future__ import annotations

import os
import sqlite3
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import queries
from .config import _toml_key, _toml_value
from .errors import CrashAggregatesError, ExitCode
from .state import transaction

FENCE = "-- +++"
QUERY_DIR, DASHBOARD_DIR = "queries", "dashboards"


class QueryFileError(CrashAggregatesError):
    """A file of the folder cannot be read as a query or a dashboard (the line names the file)."""

    exit_code = ExitCode.USAGE


# -- writing ------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    """A TOML string: multi-line text as a literal block, so that it reads as written.

    >>> _toml_string("one"), _toml_string("two\\nlines")
    ('"one"', "'''\\ntwo\\nlines'''")
    """
    if "\n" in text and "'''" not in text and not any(ord(c) < 32 and c not in "\n\t" for c in text):
        return "'''\n" + text + "'''"
    return _toml_value(text)


def _assignment(key: str, value) -> str:
    return f"{_toml_key(key)} = {_toml_string(value) if isinstance(value, str) else _toml_value(value)}"


def _toml_lines(head: dict, parameters: dict) -> list[str]:
    lines = [_assignment(k, v) for k, v in head.items() if v not in ("", [], {})]
    for name, spec in parameters.items():
        lines += ["", f"[parameters.{_toml_key(name)}]", *(_assignment(k, v) for k, v in spec.items())]
    return lines


def render_query(content: dict) -> str:
    """The file of a query (its content as ``queries.QUERIES.fields``)."""
    head = {k: content[k] for k in ("name", "description", "dialect", "tags", "chart")}
    commented = [
        f"-- {line}" if line else "--" for line in "\n".join(_toml_lines(head, content["parameters"])).split("\n")
    ]
    return "\n".join([FENCE, *commented, FENCE, content["sql"]]) + "\n"


def render_dashboard(content: dict, slugs: dict[int, str]) -> str:
    """The file of a dashboard; ``slugs`` turns the query ids of its widgets into slugs."""
    head = {k: content[k] for k in ("name", "description", "tags")}
    lines = [
        "# A dashboard of crash-aggregates: `crash-aggregates queries import DIR` loads it.",
        '# Each widget of type "query" names a file of ../queries/ by its name without .sql.',
        *_toml_lines(head, content["parameters"]),
    ]
    for widget in content["widgets"]:
        shown = {**widget, "query": slugs[widget["query"]]} if widget["type"] == "query" else widget
        lines += ["", "[[widgets]]", *(_assignment(k, v) for k, v in shown.items())]
    return "\n".join(lines) + "\n"


@dataclass
class Export:
    written: list[str] = field(default_factory=list)  # files created or changed
    unchanged: int = 0


def _write(path: Path, text: str, done: Export) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        done.unchanged += 1
        return
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    done.written.append(str(path))


def export(db: sqlite3.Connection, folder: str | os.PathLike) -> Export:
    """Write every saved query and dashboard under ``folder`` (files equal to what they would be are not touched)."""
    folder = Path(folder)
    done = Export()
    saved = queries.list_queries(db)
    boards = queries.list_dashboards(db)
    try:
        (folder / QUERY_DIR).mkdir(parents=True, exist_ok=True)
        if boards:
            (folder / DASHBOARD_DIR).mkdir(exist_ok=True)
        for query in sorted(saved, key=lambda q: q.slug):
            content = {k: getattr(query, k) for k in queries.QUERIES.fields}
            _write(folder / QUERY_DIR / f"{query.slug}.sql", render_query(content), done)
        slugs = {q.id: q.slug for q in saved}
        for board in sorted(boards, key=lambda d: d.slug):
            content = {k: getattr(board, k) for k in queries.DASHBOARDS.fields}
            _write(folder / DASHBOARD_DIR / f"{board.slug}.toml", render_dashboard(content, slugs), done)
    except OSError as e:
        raise QueryFileError(f"cannot write to {e.filename or folder}: {e.strerror or e}") from None
    return done


# -- reading ---------------------------------------------------------------------------------


def _toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise QueryFileError(f"{where}: the header is not valid TOML: {e}") from None


def parse_query(text: str, where: str) -> dict:
    """A query file's content: the header's fields and the SQL (a file without a header: see the module)."""
    lines = text.splitlines()
    if lines and lines[0].strip() == FENCE:
        try:
            end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == FENCE)
        except StopIteration:
            raise QueryFileError(f"{where}: the header opened by '{FENCE}' has no closing '{FENCE}'") from None
        header = []
        for line in lines[1:end]:
            if line == "--":  # an empty line ("-- " + a line of spaces keeps its spaces)
                header.append("")
            elif line.startswith("-- "):
                header.append(line[3:])
            else:
                raise QueryFileError(f"{where}: every line of the header must start with '-- ': {line[:60]!r}")
        item = _toml("\n".join(header), where)
        unknown = set(item) - {"name", "description", "dialect", "tags", "chart", "parameters"}
        if unknown:
            raise QueryFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} in the header")
        return {**item, "sql": "\n".join(lines[end + 1 :])}
    first = lines[0].strip() if lines else ""
    name, description = Path(where).stem, ""
    if first.startswith("--") and first.lstrip("- "):
        name, _, description = first.lstrip("- ").partition(": ")
    return {"name": name.strip(), "description": description.strip(), "sql": text}


def parse_dashboard(text: str, where: str) -> dict:
    item = _toml(text, where)
    unknown = set(item) - {"name", "description", "tags", "parameters", "widgets"}
    if unknown:
        raise QueryFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return item


def _slug(path: Path) -> str:
    try:
        return queries.check_slug(path.stem)
    except queries.InvalidItem as e:
        raise QueryFileError(f"{path}: the file name must be a slug: {e}") from None


def read_folder(folder: str | os.PathLike) -> tuple[dict[str, dict], dict[str, dict]]:
    """``({slug: query}, {slug: dashboard})`` from the files of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise QueryFileError(f"{folder} is not a folder")
    found_queries: dict[str, dict] = {}
    for path in sorted([*folder.glob("*.sql"), *(folder / QUERY_DIR).glob("*.sql")]):
        slug = _slug(path)
        if slug in found_queries:
            raise QueryFileError(f"{path}: a query named {slug!r} is in {folder} and in {folder / QUERY_DIR}")
        found_queries[slug] = parse_query(_read(path), str(path))
    found_boards = {
        _slug(p): parse_dashboard(_read(p), str(p)) for p in sorted((folder / DASHBOARD_DIR).glob("*.toml"))
    }
    if not found_queries and not found_boards:
        raise QueryFileError(f"no query (*.sql, {QUERY_DIR}/*.sql) or dashboard ({DASHBOARD_DIR}/*.toml) in {folder}")
    return found_queries, found_boards


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise QueryFileError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


@dataclass
class Import:
    """What an import did (or, with ``dry_run``, would do): ``(kind, slug)`` pairs."""

    created: list[tuple[str, str]] = field(default_factory=list)
    updated: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def import_folder(
    db: sqlite3.Connection, folder: str | os.PathLike, author: str | None, *, dry_run: bool = False
) -> Import:
    """Load the queries and dashboards of ``folder``: all or nothing; what is equal is left alone."""
    found_queries, found_boards = read_folder(folder)
    done = Import()

    def apply(kind: str, slug: str, item: dict, get, create, update) -> None:
        try:
            current = get(db, slug)
        except queries.NotFound:
            create(db, item, author, slug=slug, note="imported")
            done.created.append((kind, slug))
            return
        before = current.version
        if update(db, current.id, item, author, note="imported").version == before:
            done.unchanged.append((kind, slug))
        else:
            done.updated.append((kind, slug))

    def apply_all() -> None:
        for slug, item in found_queries.items():
            where = f"{QUERY_DIR}/{slug}.sql"
            _named(where, apply, "query", slug, item, queries.get_query, queries.create_query, queries.update_query)
        for slug, item in found_boards.items():
            where = f"{DASHBOARD_DIR}/{slug}.toml"
            _named(where, apply, "dashboard", slug, item, queries.get_dashboard, queries.create_dashboard,
                   queries.update_dashboard)  # fmt: skip

    if dry_run:  # everything done as for real, in a transaction that is then rolled back
        db.execute("BEGIN IMMEDIATE")
        try:
            apply_all()
        finally:
            db.execute("ROLLBACK")
    else:
        with transaction(db):
            apply_all()
    return done


def _named(where: str, apply, *args) -> None:
    """``apply(*args)``, a refusal of the library naming the file it came from."""
    try:
        apply(*args)
    except (queries.InvalidItem, queries.NotFound) as e:
        raise QueryFileError(f"{where}: {e}") from None
