"""Dimensions and stats as data: the SPEC defaults, TOML loading and printing.

A configuration file only has to hold what it changes; every table it leaves
out keeps its default. The ``[dimensions]`` and ``[stats]`` tables, when
present, replace the defaults as a whole, so that removing a dimension is as
easy as adding one.

>>> cfg = default_config()
>>> [d.name for d in cfg.dimensions][:3]
['build_version', 'build_id', 'channel']
>>> cfg.stat_columns()[:4]
['ping_count', 'usage_hours', 'usage_hours_squared', 'main_crashes']
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import CrashAggregatesError, ExitCode
from .watch import settings as watch_settings

#: Per-ping values computed by the rules in ``pings.py`` (SPEC section 5).
BUILTIN_STATS = ("ping_count", "usage_hours", "main_crashes")

CONFIG_ENV_VAR = "CRASH_AGGREGATES_CONFIG"

#: Lines longer than this many bytes are skipped unread (SPEC section 2, reason ``oversized``).
DEFAULT_MAX_LINE_SIZE = 16 << 20

_SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GIB": 1 << 30}
_SIZE_UNITS.update({"KB": 10**3, "MB": 10**6, "GB": 10**9})


class ConfigError(CrashAggregatesError, ValueError):
    """The configuration file cannot be read or does not make sense."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Dimension:
    """One key of the ``dimensions`` map, read from a JSON path of the ping."""

    name: str
    path: tuple[str, ...]
    absent_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stat:
    """One summed value: a built-in per-ping value or a count histogram."""

    name: str
    builtin: str | None = None
    histogram: tuple[str, ...] | None = None
    squared: bool = True


@dataclass(frozen=True)
class Dashboard:
    """The ``[dashboard]`` table: defaults of ``crash-aggregates serve`` and its access token."""

    #: Required of every request when set (a bearer token, or the login form's cookie).
    token: str | None = field(default=None, repr=False)
    #: Overview: days in each of the two windows compared.
    days: int = 7
    #: Cells and points below this many usage hours are "insufficient data".
    min_usage_hours: float = 100.0
    #: Smallest change (rate ratio away from 1) the overview colours.
    min_change: float = 0.2
    #: Explore: groups shown before the rest are summed as "other".
    top: int = 5
    #: Builds: how many previous builds each build is compared with.
    previous_builds: int = 3
    #: Builds: the false-discovery rate of the regression flags (Benjamini-Hochberg).
    false_discovery_rate: float = 0.05
    #: SQL console: queries that run at once (the rest wait in line).
    console_running: int = 2
    #: SQL console: queries that may wait in line (more are refused as busy).
    console_waiting: int = 50
    #: SQL console: a query's time limit in seconds.
    console_timeout: float = 60.0
    #: SQL console: rows an answer shows (the rest is cut, and the answer says so).
    console_max_rows: int = 10_000
    #: SQL console: MiB of data one answer may hold in memory.
    console_max_result_mb: float = 64.0
    #: SQL console: rows a download (CSV, JSON, Parquet) writes.
    console_download_rows: int = 1_000_000
    #: Where the dashboard is served for others: the watchdog's messages and reports link to it.
    url: str | None = None


_DASHBOARD_RANGES = {
    "days": (int, 1, 366),
    "min_usage_hours": ((int, float), 0, None),
    "min_change": ((int, float), 0, None),
    "top": (int, 1, 100),
    "previous_builds": (int, 1, 100),
    "false_discovery_rate": ((int, float), 0, 1),
    "console_running": (int, 1, 64),
    "console_waiting": (int, 0, 10_000),
    "console_timeout": ((int, float), 0.1, 3600),
    "console_max_rows": (int, 1, 10_000_000),
    "console_max_result_mb": ((int, float), 1, 65_536),
    "console_download_rows": (int, 1, 1_000_000_000),
}


@dataclass(frozen=True)
class Config:
    dimensions: tuple[Dimension, ...]
    stats: tuple[Stat, ...]
    input: str | None = None
    output: str | None = None
    s3_endpoint_url: str | None = None
    #: Most distinct aggregates a date may have (None: ``memory.default_max_aggregates()``).
    max_aggregates: int | None = None
    #: Bytes; a longer line is counted as ignored (``oversized``) without being held in memory.
    max_line_size: int = DEFAULT_MAX_LINE_SIZE
    source: str = "built-in defaults"
    dashboard: Dashboard = Dashboard()
    #: ``[state] path``: the SQLite state file (``state.py``); None: the default place.
    state_path: str | None = None
    #: ``[watchdog]``, ``[[alerts]]``, ``[notify]`` (``watch/settings.py``).
    watch: watch_settings.WatchSettings = field(default_factory=watch_settings.WatchSettings)

    def stat_columns(self) -> list[str]:
        """Names of the ``stats`` map keys, in output order."""
        names = []
        for stat in self.stats:
            names.append(stat.name)
            if stat.squared:
                names.append(stat.name + "_squared")
        return names


def split_path(path: str | list[str]) -> tuple[str, ...]:
    """A dotted JSON path, or a list of keys for keys that contain dots.

    >>> split_path("environment.build.buildId")
    ('environment', 'build', 'buildId')
    >>> split_path(["payload", "keyedHistograms", "a.b"])
    ('payload', 'keyedHistograms', 'a.b')
    """
    parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise ConfigError(f"invalid JSON path {path!r}")
    return parts


def parse_size(value: str | int) -> int:
    """A size in bytes: an integer, or a number with a unit (K, M, G and KiB, MiB, GiB are
    powers of 1024; KB, MB, GB powers of 1000). At least 1 byte.

    >>> parse_size("16MiB"), parse_size("64m"), parse_size("1.5 GB"), parse_size(4096)
    (16777216, 67108864, 1500000000, 4096)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"invalid size {value!r}: expected bytes or a number with a unit such as 16MiB")
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = m and _SIZE_UNITS.get(m.group(2).upper())
    if not unit:
        raise ConfigError(f"invalid size {value!r}: expected bytes or a number with a unit such as 16MiB")
    size = int(float(m.group(1)) * unit) if "." in m.group(1) else int(m.group(1)) * unit
    if size < 1:
        raise ConfigError(f"invalid size {value!r}: must be at least 1 byte")
    return size


def format_size(size: int) -> str:
    """The shortest exact spelling of a size that ``parse_size`` reads back.

    >>> format_size(16 << 20), format_size(1536), format_size(1000)
    ('16MiB', '1536', '1000')
    >>> format_size(2048)
    '2KiB'
    """
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _histogram(name: str, key: str) -> tuple[str, ...]:
    return ("payload", "keyedHistograms", name, key)


DEFAULT_DIMENSIONS = (
    Dimension("build_version", split_path("environment.build.version")),
    Dimension("build_id", split_path("environment.build.buildId")),
    Dimension("channel", split_path("application.channel")),
    Dimension("application", split_path("application.name")),
    Dimension("os_name", split_path("environment.system.os.name")),
    Dimension("os_version", split_path("environment.system.os.version")),
    Dimension("architecture", split_path("environment.build.architecture")),
    Dimension("country", split_path("meta.geoCountry")),
    Dimension("experiment_id", split_path("environment.addons.activeExperiment.id")),
    Dimension("experiment_branch", split_path("environment.addons.activeExperiment.branch")),
    Dimension("e10s_enabled", split_path("environment.settings.e10sEnabled")),
    Dimension("e10s_cohort", split_path("environment.settings.e10sCohort")),
)

#: Off by default (SPEC section 4); enable it by listing it in a config file.
GFX_COMPOSITOR = Dimension("gfx_compositor", split_path("environment.system.gfx.features.compositor"), ("none",))

DEFAULT_STATS = (
    Stat("ping_count", builtin="ping_count", squared=False),
    Stat("usage_hours", builtin="usage_hours"),
    Stat("main_crashes", builtin="main_crashes"),
    Stat("content_crashes", histogram=_histogram("SUBPROCESS_CRASHES_WITH_DUMP", "content")),
    Stat("plugin_crashes", histogram=_histogram("SUBPROCESS_CRASHES_WITH_DUMP", "plugin")),
    Stat("gmplugin_crashes", histogram=_histogram("SUBPROCESS_CRASHES_WITH_DUMP", "gmplugin")),
    Stat("gpu_crashes", histogram=_histogram("SUBPROCESS_CRASHES_WITH_DUMP", "gpu")),
    Stat("content_shutdown_crashes", histogram=_histogram("SUBPROCESS_KILL_HARD", "ShutDownKill")),
)


def default_config() -> Config:
    return Config(dimensions=DEFAULT_DIMENSIONS, stats=DEFAULT_STATS)


def _parse_dimension(name: str, spec) -> Dimension:
    if isinstance(spec, (str, list)):
        return Dimension(name, split_path(spec))
    if isinstance(spec, dict):
        unknown = set(spec) - {"path", "absent"}
        if unknown or "path" not in spec:
            raise ConfigError(f"dimension {name!r}: expected keys 'path' and optional 'absent', got {sorted(spec)}")
        absent = spec.get("absent", [])
        if not isinstance(absent, list) or not all(isinstance(v, str) for v in absent):
            raise ConfigError(f"dimension {name!r}: 'absent' must be a list of strings")
        return Dimension(name, split_path(spec["path"]), tuple(absent))
    raise ConfigError(f"dimension {name!r}: expected a JSON path or a table, got {spec!r}")


def _parse_stat(name: str, spec) -> Stat:
    if not isinstance(spec, dict):
        raise ConfigError(f'stat {name!r}: expected a table such as {{ builtin = "usage_hours" }}')
    unknown = set(spec) - {"builtin", "histogram", "squared"}
    if unknown:
        raise ConfigError(f"stat {name!r}: unknown keys {sorted(unknown)}")
    squared = spec.get("squared", True)
    if not isinstance(squared, bool):
        raise ConfigError(f"stat {name!r}: 'squared' must be true or false")
    if ("builtin" in spec) == ("histogram" in spec):
        raise ConfigError(f"stat {name!r}: give exactly one of 'builtin' or 'histogram'")
    if "builtin" in spec:
        if spec["builtin"] not in BUILTIN_STATS:
            raise ConfigError(f"stat {name!r}: unknown builtin {spec['builtin']!r} (known: {', '.join(BUILTIN_STATS)})")
        return Stat(name, builtin=spec["builtin"], squared=squared)
    return Stat(name, histogram=split_path(spec["histogram"]), squared=squared)


def _check_names(kind: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if not name or not isinstance(name, str):
            raise ConfigError(f"{kind} names must be non-empty strings")
        if name in seen:
            raise ConfigError(f"{kind} {name!r} is declared twice")
        seen.add(name)


def parse_config(data: dict, source: str = "<config>") -> Config:
    """Build a Config from a parsed TOML document (missing tables keep defaults)."""
    config = default_config()
    known = {"dimensions", "stats", "data", "s3", "state", "dashboard", "limits", "watchdog", "alerts", "notify"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown table(s) {sorted(unknown)} (known: {sorted(known)})")
    if "dimensions" in data:
        dims = tuple(_parse_dimension(n, s) for n, s in data["dimensions"].items())
        _check_names("dimension", [d.name for d in dims])
        config = replace(config, dimensions=dims)
    if "stats" in data:
        stats = tuple(_parse_stat(n, s) for n, s in data["stats"].items())
        _check_names("stat", [s.name for s in stats])
        columns = [c for s in stats for c in ((s.name, s.name + "_squared") if s.squared else (s.name,))]
        _check_names("stat column", columns)
        config = replace(config, stats=stats)
    paths = data.get("data", {})
    unknown = set(paths) - {"input", "output"}
    if unknown:
        raise ConfigError(f"[data]: unknown keys {sorted(unknown)} (known: input, output)")
    s3 = data.get("s3", {})
    if set(s3) - {"endpoint_url"}:
        raise ConfigError(f"[s3]: unknown keys {sorted(set(s3) - {'endpoint_url'})} (known: endpoint_url)")
    state = data.get("state", {})
    if not isinstance(state, dict) or set(state) - {"path"}:
        raise ConfigError(f"[state]: unknown keys {sorted(set(state) - {'path'})} (known: path)")
    if "path" in state and (not isinstance(state["path"], str) or not state["path"]):
        raise ConfigError("[state] path must be a file name")
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise ConfigError("[limits] must be a table")
    if set(limits) - {"max_aggregates", "max_line_size"}:
        unknown = sorted(set(limits) - {"max_aggregates", "max_line_size"})
        raise ConfigError(f"[limits]: unknown keys {unknown} (known: max_aggregates, max_line_size)")
    max_aggregates = limits.get("max_aggregates")
    if max_aggregates is not None and (type(max_aggregates) is not int or max_aggregates < 1):
        raise ConfigError(f"[limits] max_aggregates: expected a whole number of at least 1, got {max_aggregates!r}")
    try:
        max_line_size = parse_size(limits.get("max_line_size", DEFAULT_MAX_LINE_SIZE))
    except ConfigError as e:
        raise ConfigError(f"[limits] max_line_size: {e}") from None
    try:
        watch = watch_settings.parse(data, [d.name for d in config.dimensions], config.stat_columns())
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return replace(
        config,
        input=paths.get("input"),
        output=paths.get("output"),
        s3_endpoint_url=s3.get("endpoint_url"),
        max_aggregates=max_aggregates,
        max_line_size=max_line_size,
        source=source,
        dashboard=_parse_dashboard(data.get("dashboard", {})),
        state_path=state.get("path"),
        watch=watch,
    )


def _parse_dashboard(table: dict) -> Dashboard:
    """The ``[dashboard]`` table, each value checked (type and range)."""
    known = ["token", "url", *_DASHBOARD_RANGES]
    unknown = set(table) - set(known)
    if unknown:
        raise ConfigError(f"[dashboard]: unknown keys {sorted(unknown)} (known: {', '.join(known)})")
    token = table.get("token")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise ConfigError("[dashboard] token must be a string of at least 16 characters")
    url = table.get("url")
    if url is not None and (not isinstance(url, str) or not re.match(r"https?://", url)):
        raise ConfigError("[dashboard] url must be an http:// or https:// URL (what messages link to)")
    for key, (kind, low, high) in _DASHBOARD_RANGES.items():
        value = table.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind) or value < low or (high is not None and value > high):
            bounds = f"{low} to {high}" if high is not None else f">= {low}"
            raise ConfigError(f"[dashboard] {key} must be a number {bounds}, not {value!r}")
    return Dashboard(**table)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read a TOML file (or ``$CRASH_AGGREGATES_CONFIG``); no file means the defaults."""
    path = path or os.environ.get(CONFIG_ENV_VAR)
    if not path:
        return default_config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    try:
        return parse_config(data, source=str(Path(path)))
    except ConfigError as e:
        raise ConfigError(f"config file {path}: {e}") from None


def _toml_value(value) -> str:
    """A TOML literal for a string, bool, list or inline table.

    >>> _toml_value({"path": "a.b", "absent": ["none"], "squared": False})
    '{ path = "a.b", absent = ["none"], squared = false }'
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON strings are TOML basic strings
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _path_to_toml(path: tuple[str, ...]):
    return ".".join(path) if not any("." in p for p in path) else list(path)


def to_toml(config: Config) -> str:
    """The effective configuration as a TOML document that ``load_config`` reads back."""
    lines = [f"# crash-aggregates configuration (from {config.source})", ""]
    data = [(k, v) for k, v in (("input", config.input), ("output", config.output)) if v]
    if data:
        lines += ["[data]", *(f"{k} = {_toml_value(v)}" for k, v in data), ""]
    if config.s3_endpoint_url:
        lines += ["[s3]", f"endpoint_url = {_toml_value(config.s3_endpoint_url)}", ""]
    changed = [(k, getattr(config.dashboard, k)) for k in _DASHBOARD_RANGES]
    changed = [(k, v) for k, v in changed if v != getattr(Dashboard(), k)]
    if config.dashboard.url:
        changed.insert(0, ("url", config.dashboard.url))
    if config.dashboard.token or changed:
        # The token itself is a secret: it is never printed.
        token = ["# token = (set in the file read; not shown)"] if config.dashboard.token else []
        lines += ["[dashboard]", *token, *(f"{k} = {_toml_value(v)}" for k, v in changed), ""]
    lines += ["# A date with more distinct aggregates fails before they fill the memory.", "[limits]"]
    if config.max_aggregates is None:
        from .memory import default_max_aggregates

        lines.append(f"# max_aggregates = {default_max_aggregates()}  (the default: for this machine's memory)")
    else:
        lines.append(f"max_aggregates = {config.max_aggregates}")
    lines += [
        "# Lines longer than max_line_size are skipped unread and counted as ignored (oversized).",
        f"max_line_size = {_toml_value(format_size(config.max_line_size))}",
        "",
        "# name = JSON path in the ping, or { path = ..., absent = [values that mean absent] }",
        "[dimensions]",
    ]
    for d in config.dimensions:
        spec = (
            {"path": _path_to_toml(d.path), "absent": list(d.absent_values)}
            if d.absent_values
            else _path_to_toml(d.path)
        )
        lines.append(f"{_toml_key(d.name)} = {_toml_value(spec)}")
    lines += ["", f"# builtin = one of {', '.join(BUILTIN_STATS)}, or histogram = path of a count histogram", "[stats]"]
    for st in config.stats:
        entry = {"builtin": st.builtin} if st.builtin else {"histogram": _path_to_toml(st.histogram)}
        if not st.squared:
            entry["squared"] = False
        lines.append(f"{_toml_key(st.name)} = {_toml_value(entry)}")
    if config.state_path:
        lines += ["", "[state]", f"path = {_toml_value(config.state_path)}"]
    for table, entries in watch_settings.to_tables(config.watch):
        for entry in entries:
            header = f"[[{table}]]" if table in ("alerts", "notify.email", "notify.webhook") else f"[{table}]"
            lines += ["", header, *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in entry.items())]
    return "\n".join(lines) + "\n"
