"""The watchdog's tables of the config file: ``[watchdog]``, ``[[alerts]]`` and ``[notify]``.

Pure parsing: dicts from TOML in, frozen dataclasses out, a ValueError with
one clear sentence for anything wrong (``config.py`` makes it a ConfigError
naming the file). Names of stats and dimensions are checked against the
configuration's, so a rule never reaches the SQL with a name the data
cannot have.

>>> rule = parse_alert({"name": "nightly", "stat": "main_crashes", "where": {"channel": "nightly"},
...                     "by": "build_id", "relative": 1.25, "baseline": "previous 3 builds"},
...                    ["channel", "build_id"], ["main_crashes", "usage_hours"])
>>> rule.by, rule.baseline, rule.alpha
(('build_id',), Baseline(kind='builds', count=3), 0.05)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Every key of ``[watchdog]``, with its default.
WATCHDOG_DEFAULTS = {
    "window_days": 14,
    "lag_days": 1,
    "baseline_days": 7,
    "min_baseline_days": 3,
    "volume_low": 0.5,
    "volume_high": 2.0,
    "quality_ratio": 2.0,
    "quality_min_share": 0.01,
}


@dataclass(frozen=True)
class Watchdog:
    """``[watchdog]``: the data checks' windows and bounds."""

    #: Dates looked at for missing days, volume and quality (and by ``run --catch-up``).
    window_days: int = 14
    #: The newest date expected published is today (UTC) minus this many days.
    lag_days: int = 1
    #: Volume and quality compare a date with the median of this many dates before it...
    baseline_days: int = 7
    #: ... of which at least this many must be published, else the check is INSUFFICIENT.
    min_baseline_days: int = 3
    #: Pings processed below this share of the median fire, and above ``volume_high`` times it.
    volume_low: float = 0.5
    volume_high: float = 2.0
    #: A reason's share of ignored pings fires above this multiple of its median...
    quality_ratio: float = 2.0
    #: ... when it is also at least this share of the date's pings.
    quality_min_share: float = 0.01


@dataclass(frozen=True)
class Baseline:
    """What a relative rule compares with: the ``count`` previous builds, or days."""

    kind: str  # "builds" | "days"
    count: int


@dataclass(frozen=True)
class Alert:
    """One ``[[alerts]]`` rule."""

    name: str
    stat: str
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    by: tuple[str, ...] = ()
    threshold: float | None = None
    relative: float | None = None
    baseline: Baseline | None = None
    alpha: float = 0.05
    min_usage_hours: float = 1000.0
    #: Submission dates the rate is computed over, ending with the newest expected date.
    days: int = 7
    exposure: str = "usage_hours"


@dataclass(frozen=True)
class EmailDestination:
    name: str
    smtp_host: str
    smtp_port: int
    sender: str
    to: tuple[str, ...]
    tls: str = "starttls"  # starttls | tls | none


@dataclass(frozen=True)
class WebhookDestination:
    name: str
    url: str
    format: str = "json"  # json | slack


@dataclass(frozen=True)
class Notify:
    """``[notify]``: where messages go, and when a finding is told again."""

    destinations: tuple[EmailDestination | WebhookDestination, ...] = ()
    #: Hours after which a finding still firing is told again; 0: never.
    renotify_hours: float = 0.0
    #: A firing finding is told again as "worse" once its severity grew by this factor.
    worse_factor: float = 1.25
    #: Attempts per destination and message, and the first wait between them (doubled each time).
    attempts: int = 3
    backoff_seconds: float = 2.0
    timeout_seconds: float = 10.0

    def emails(self) -> list[EmailDestination]:
        return [d for d in self.destinations if isinstance(d, EmailDestination)]


@dataclass(frozen=True)
class WatchSettings:
    watchdog: Watchdog = field(default_factory=Watchdog)
    alerts: tuple[Alert, ...] = ()
    notify: Notify = field(default_factory=Notify)


def _number(table: str, key: str, value, low: float, high: float | None = None, integer: bool = False):
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low or (high is not None and value > high):
        what = "a whole number" if integer else "a number"
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{table} {key} must be {what} {bounds}, not {value!r}")
    return value


def _unknown(table: str, given, known) -> None:
    extra = set(given) - set(known)
    if extra:
        raise ValueError(f"{table}: unknown keys {sorted(extra)} (known: {', '.join(known)})")


def parse_watchdog(table: dict) -> Watchdog:
    """``[watchdog]``, every value checked."""
    _unknown("[watchdog]", table, WATCHDOG_DEFAULTS)
    values = {}
    for key, default in WATCHDOG_DEFAULTS.items():
        if key in table:
            integer = isinstance(default, int)
            values[key] = _number("[watchdog]", key, table[key], 0 if key == "lag_days" else 1 if integer else 0,
                                  integer=integer)  # fmt: skip
    watchdog = Watchdog(**values)
    if watchdog.min_baseline_days > watchdog.baseline_days:
        raise ValueError("[watchdog] min_baseline_days cannot be more than baseline_days")
    if not watchdog.volume_low < 1 < watchdog.volume_high:
        raise ValueError("[watchdog] needs volume_low < 1 < volume_high (shares of the median)")
    return watchdog


BASELINE_RE = re.compile(r"previous (\d+) (builds?|days?)\Z")
ALERT_KEYS = ("name", "stat", "where", "by", "threshold", "relative", "baseline", "alpha", "min_usage_hours", "days",
              "exposure")  # fmt: skip


def parse_alert(table: dict, dimensions: list[str], stats: list[str]) -> Alert:
    """One ``[[alerts]]`` entry, its names checked against the configured dimensions and stats."""
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("[[alerts]]: every rule needs a name")
    where_ = f"[[alerts]] {name!r}"
    _unknown(where_, table, ALERT_KEYS)
    stat = table.get("stat")
    exposure = table.get("exposure", "usage_hours")
    for key, value in (("stat", stat), ("exposure", exposure)):
        if value not in stats:
            raise ValueError(f"{where_}: {key} {value!r} is not a configured stat (known: {', '.join(stats)})")
    where = []
    raw_where = table.get("where", {})
    if not isinstance(raw_where, dict):
        raise ValueError(f'{where_}: where must be a table such as {{ channel = "nightly" }}')
    for dim, values in raw_where.items():
        if dim not in dimensions:
            raise ValueError(f"{where_}: where names {dim!r}, not a configured dimension")
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{where_}: where {dim} must be a string or a list of strings")
        where.append((dim, tuple(values)))
    by = table.get("by", [])
    by = [by] if isinstance(by, str) else by
    if not isinstance(by, list) or not all(isinstance(d, str) for d in by) or len(set(by)) != len(by):
        raise ValueError(f"{where_}: by must be a dimension or a list of different dimensions")
    for dim in by:
        if dim not in dimensions:
            raise ValueError(f"{where_}: by names {dim!r}, not a configured dimension")
    threshold, relative = table.get("threshold"), table.get("relative")
    if (threshold is None) == (relative is None):
        raise ValueError(f"{where_}: give exactly one of threshold (absolute) or relative")
    baseline = None
    if threshold is not None:
        _number(where_, "threshold", threshold, 0)
        if "baseline" in table:
            raise ValueError(f"{where_}: baseline goes with relative, not threshold")
    else:
        _number(where_, "relative", relative, 1)
        text = table.get("baseline")
        m = BASELINE_RE.match(text.strip()) if isinstance(text, str) else None
        if not m or int(m.group(1)) < 1:
            raise ValueError(f'{where_}: baseline must be "previous N builds" or "previous N days", not {text!r}')
        baseline = Baseline("builds" if m.group(2).startswith("build") else "days", int(m.group(1)))
        if baseline.kind == "builds" and "build_id" not in by:
            raise ValueError(f'{where_}: baseline "previous N builds" needs by to include "build_id"')
    alpha = _number(where_, "alpha", table.get("alpha", 0.05), 0)
    if not 0 < alpha < 1:
        raise ValueError(f"{where_}: alpha must be between 0 and 1, not {alpha!r}")
    return Alert(
        name=name.strip(),
        stat=stat,
        where=tuple(where),
        by=tuple(by),
        threshold=None if threshold is None else float(threshold),
        relative=None if relative is None else float(relative),
        baseline=baseline,
        alpha=float(alpha),
        min_usage_hours=float(_number(where_, "min_usage_hours", table.get("min_usage_hours", 1000.0), 0)),
        days=_number(where_, "days", table.get("days", 7), 1, 366, integer=True),
        exposure=exposure,
    )


def parse_alerts(entries, dimensions: list[str], stats: list[str]) -> tuple[Alert, ...]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("alerts must be an array of tables: [[alerts]]")
    alerts = tuple(parse_alert(e, dimensions, stats) for e in entries)
    names = [a.name for a in alerts]
    for n in names:
        if names.count(n) > 1:
            raise ValueError(f"[[alerts]]: two rules are named {n!r}")
    return alerts


NOTIFY_KEYS = ("email", "webhook", "renotify_hours", "worse_factor", "attempts", "backoff_seconds", "timeout_seconds")
EMAIL_KEYS = ("name", "smtp_host", "smtp_port", "sender", "to", "tls")
WEBHOOK_KEYS = ("name", "url", "format")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def _entries(value, table: str) -> list[dict]:
    """A table, or an array of tables (several destinations of one kind)."""
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"[{table}] must be a table or an array of tables")
    return entries


def _email(entry: dict, default_name: str) -> EmailDestination:
    _unknown("[notify.email]", entry, EMAIL_KEYS)
    for key in ("smtp_host", "sender"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"[notify.email] needs {key}")
    tls = entry.get("tls", "starttls")
    if tls not in DEFAULT_PORTS:
        raise ValueError(f'[notify.email] tls must be "starttls", "tls" or "none", not {tls!r}')
    to = entry.get("to")
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
        raise ValueError("[notify.email] to must be an address or a list of addresses")
    port = _number("[notify.email]", "smtp_port", entry.get("smtp_port", DEFAULT_PORTS[tls]), 1, 65535, integer=True)
    return EmailDestination(entry.get("name", default_name), entry["smtp_host"], port, entry["sender"], tuple(to), tls)


def _webhook(entry: dict, default_name: str) -> WebhookDestination:
    _unknown("[notify.webhook]", entry, WEBHOOK_KEYS)
    url = entry.get("url")
    if not isinstance(url, str) or not re.match(r"https?://", url):
        raise ValueError("[notify.webhook] url must be an http:// or https:// URL")
    fmt = entry.get("format", "json")
    if fmt not in ("json", "slack"):
        raise ValueError(f'[notify.webhook] format must be "json" or "slack", not {fmt!r}')
    return WebhookDestination(entry.get("name", default_name), url, fmt)


def parse_notify(table: dict) -> Notify:
    """``[notify]`` with its ``email`` and ``webhook`` destinations (a table, or an array of tables each)."""
    if not isinstance(table, dict):
        raise ValueError("[notify] must be a table")
    _unknown("[notify]", table, NOTIFY_KEYS)
    destinations: list = []
    for i, entry in enumerate(_entries(table.get("email", []), "notify.email")):
        destinations.append(_email(entry, "email" if i == 0 else f"email-{i + 1}"))
    for i, entry in enumerate(_entries(table.get("webhook", []), "notify.webhook")):
        destinations.append(_webhook(entry, "webhook" if i == 0 else f"webhook-{i + 1}"))
    names = [d.name for d in destinations]
    for n in names:
        if not isinstance(n, str) or not n or names.count(n) > 1:
            raise ValueError(f"[notify]: destination names must be distinct strings ({n!r})")
    return Notify(
        destinations=tuple(destinations),
        renotify_hours=float(_number("[notify]", "renotify_hours", table.get("renotify_hours", 0), 0)),
        worse_factor=float(_number("[notify]", "worse_factor", table.get("worse_factor", 1.25), 1)),
        attempts=_number("[notify]", "attempts", table.get("attempts", 3), 1, 20, integer=True),
        backoff_seconds=float(_number("[notify]", "backoff_seconds", table.get("backoff_seconds", 2.0), 0)),
        timeout_seconds=float(_number("[notify]", "timeout_seconds", table.get("timeout_seconds", 10.0), 0.1)),
    )


def parse(data: dict, dimensions: list[str], stats: list[str]) -> WatchSettings:
    """The watchdog's part of a parsed config file (tables it does not find keep their defaults)."""
    watchdog = data.get("watchdog", {})
    if not isinstance(watchdog, dict):
        raise ValueError("[watchdog] must be a table")
    return WatchSettings(
        watchdog=parse_watchdog(watchdog),
        alerts=parse_alerts(data.get("alerts", []), dimensions, stats),
        notify=parse_notify(data.get("notify", {})),
    )


def to_tables(settings: WatchSettings) -> list[tuple[str, list[dict]]]:
    """The settings as TOML tables (name, entries) for ``crash-aggregates config``; defaults shown too."""
    from dataclasses import asdict

    tables: list[tuple[str, list[dict]]] = [("watchdog", [asdict(settings.watchdog)])]
    notify = settings.notify
    policy = {k: v for k, v in asdict(notify).items() if k != "destinations"}
    tables.append(("notify", [policy]))
    for kind, table in ((EmailDestination, "notify.email"), (WebhookDestination, "notify.webhook")):
        entries = [
            {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(d).items()}
            for d in notify.destinations
            if isinstance(d, kind)
        ]
        if entries:
            tables.append((table, entries))
    alerts = []
    for a in settings.alerts:
        entry = {"name": a.name, "stat": a.stat}
        if a.where:
            entry["where"] = {d: list(v) if len(v) > 1 else v[0] for d, v in a.where}
        if a.by:
            entry["by"] = list(a.by) if len(a.by) > 1 else a.by[0]
        if a.threshold is not None:
            entry["threshold"] = a.threshold
        else:
            entry["relative"] = a.relative
            entry["baseline"] = f"previous {a.baseline.count} {a.baseline.kind}"
        entry.update(alpha=a.alpha, min_usage_hours=a.min_usage_hours, days=a.days, exposure=a.exposure)
        alerts.append(entry)
    if alerts:
        tables.append(("alerts", alerts))
    return tables
