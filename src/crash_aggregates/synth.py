"""Synthetic main and crash pings in the job's input layout (SPEC section 1).

``generate`` writes ``<output>/submission_date=YYYY-MM-DD/pings-NNNNN.ndjson.gz``
(or ``.ndjson`` / ``.ndjson.zst``). The same arguments always give the same
bytes: each day draws from its own ``random.Random`` seeded with (seed, day),
and nothing depends on the clock.

The shape of a day, so that queries over the aggregates have something to show:

- clients on release/beta/nightly/esr (70/15/10/5 %), mostly on Windows, some on
  macOS, Linux and (as ``Fennec``) Android, in about twenty countries;
- versions follow six-week cycles from Firefox 45 (2016-03-08): nightly gets a
  new build every day, beta every week, release every two weeks (dot releases),
  esr every cycle; most clients run one of the newest builds (``builds``);
- two thirds of beta clients (~10 % of all) are enrolled in
  ``e10s-beta<N>-noapz@experiments.mozilla.org``, branch ``control`` (e10s off)
  or ``treatment`` (e10s on, 25 % more main crashes); others have no experiment;
- about 10 % of the pings are crash pings; the odds differ by channel, OS and
  build, and content/plugin/... crashes come in the main pings' histograms
  (present in most main pings, not all), at rates per usage hour;
- **the regression**: the nightly build compiled two days before the earliest
  submission date (``regression_build_id(dates)``, also
  ``Summary.regression_build_id``) crashes five times as often as the other
  nightly builds (main crashes per usage hour);
- ~10 % of the clients send late pings: activity dates go back up to 10 days
  before the submission date (the job clamps them to 7); a few clocks run a
  day ahead; a few main pings lack ``subsessionStartDate`` (the job falls back
  to ``creationDate``) and a few pings lack the optional ``meta.submissionDate``;
- subsession lengths are log-normal (median one hour, at most a day), and a
  few sessions left open run past the job's 25-hour cap.

About 2 % of the lines are bad, spread evenly over every reason of SPEC's
table and over several variants of each (``BAD_KINDS``); ``Summary.bad`` counts
them per reason. A few blank lines come on top of ``pings_per_day``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

import msgspec
from isal import igzip

from . import location
from .pings import RULE_REASONS
from .sources import zstd
from .stores import Store, store_for

Raw = msgspec.Raw
_encode = msgspec.json.Encoder().encode

CHANNELS = {"release": 70, "beta": 15, "nightly": 10, "esr": 5}
_CHANNEL_CRASH = {"release": 0.8, "beta": 1.1, "nightly": 1.6, "esr": 0.6}
_E10S_SHARE = {"release": 0.15, "beta": 0.4, "nightly": 0.9, "esr": 0.0}
_BASE_CRASH_ODDS = 0.09
REGRESSION_FACTOR = 5.0
BAD_SHARE = 0.02
_BLANK_SHARE = 0.001
_MAX_CLIENTS = 20_000  # per day; bounds memory when a day has millions of pings
MAX_FILE_BYTES = 64 << 20
_LINE_BYTES = {"small": 2_000, "realistic": 200_000}  # upper bounds, for the number of files
EXTENSIONS = {"gzip": ".ndjson.gz", "none": ".ndjson", "zstd": ".ndjson.zst"}

#: Reason -> variants of bad input written for it, in rotation.
BAD_KINDS = {
    "malformed_json": ("truncated", "nan", "utf8", "utf8_deep", "array"),
    "other_doc_type": ("event", "first-shutdown", "type_only"),
    "content_crash": ("content", "gpu", "plugin"),
    "invalid_submission_date": ("yesterday", "dashes", "text", "number"),
    "invalid_activity_date": ("text", "missing", "impossible", "number"),
    "invalid_build_id": ("13_digits", "number", "missing"),
    "invalid_subsession_length": ("missing", "null", "string", "boolean"),
}
assert tuple(BAD_KINDS) == RULE_REASONS

_APP_IDS = {"Firefox": "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}", "Fennec": "{aa3c5121-dab2-40e2-81ca-7ea25febc110}"}
_OSES = [  # (name, version, weight, crash factor)
    ("Windows_NT", "6.1", 34, 1.1),
    ("Windows_NT", "10.0", 25, 1.0),
    ("Windows_NT", "6.3", 7, 1.0),
    ("Windows_NT", "6.2", 2, 1.1),
    ("Windows_NT", "5.1", 6, 1.6),
    ("Darwin", "15.4.0", 7, 0.8),
    ("Darwin", "15.3.0", 3, 0.8),
    ("Darwin", "14.5.0", 3, 0.9),
    ("Linux", "4.4.0-21-generic", 4, 0.9),
    ("Linux", "4.2.0-35-generic", 3, 0.9),
    ("Linux", "3.13.0-85-generic", 3, 1.0),
    ("Android", "23", 2, 1.3),
    ("Android", "22", 1, 1.4),
]
_ARCHES = {  # os name -> ((architecture, xpcomAbi), ...) drawn uniformly
    "Windows_NT": (("x86", "x86-msvc"),) * 7 + (("x86-64", "x86_64-msvc"),) * 3,
    "Darwin": (("x86-64", "x86_64-gcc3"),),
    "Linux": (("x86-64", "x86_64-gcc3"),) * 6 + (("x86", "x86-gcc3"),),
    "Android": (("arm", "arm-eabi-gcc3"),),
}
_COMPOSITORS = {  # os name -> (compositors, weights); the job's optional dimension treats "none" as absent
    "Windows_NT": (("d3d11", "d3d9", "basic", "none"), (65, 10, 15, 10)),
    "Darwin": (("opengl", "none"), (90, 10)),
    "Linux": (("basic", "opengl", "none"), (60, 30, 10)),
    "Android": (("opengl",), (1,)),
}
_COUNTRIES = [  # (country, weight, locale, UTC offsets in minutes)
    ("US", 24, "en-US", (-300, -360, -420, -480)),
    ("DE", 10, "de", (60,)),
    ("FR", 6, "fr", (60,)),
    ("BR", 6, "pt-BR", (-180,)),
    ("IN", 5, "en-US", (330,)),
    ("GB", 5, "en-GB", (0,)),
    ("RU", 5, "ru", (180,)),
    ("PL", 4, "pl", (60,)),
    ("JP", 4, "ja", (540,)),
    ("IT", 4, "it", (60,)),
    ("ES", 4, "es-ES", (60,)),
    ("CA", 3, "en-CA", (-300, -480)),
    ("CN", 3, "zh-CN", (480,)),
    ("ID", 3, "id", (420,)),
    ("MX", 3, "es-MX", (-360,)),
    ("TR", 2, "tr", (120,)),
    ("UA", 2, "uk", (120,)),
    ("NL", 2, "nl", (60,)),
    ("AU", 2, "en-AU", (600,)),
    ("??", 1, "en-US", (0,)),
]
# Days a client is behind (-1: its clock is a day ahead); each ping adds 0 or 1 day.
_LAGS, _LAG_WEIGHTS = (-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (0.5, 70, 14, 4, 3, 2, 1.5, 1.2, 1.2, 1, 1)
# Child-process crashes per usage hour, by key of SUBPROCESS_CRASHES_WITH_DUMP (content needs e10s).
_CHILD_RATES = (("content", 0.02), ("plugin", 0.01), ("gmplugin", 0.002), ("gpu", 0.002))
_COUNT_HISTOGRAM = b'{"bucket_count":3,"histogram_type":4,"range":[1,2],"sum":%d,"values":{"0":%d,"1":0}}'


class Build(NamedTuple):
    channel: str
    version: str
    display_version: str
    build_id: str


@dataclass
class Summary:
    """What ``generate`` wrote; ``main_*``/``crash_*`` count lines by the job's doc type (SPEC 2)."""

    pings: int = 0  # non-blank lines, bad ones included
    main_pings: int = 0
    crash_pings: int = 0
    main_ignored: int = 0
    crash_ignored: int = 0
    bad: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULE_REASONS, 0))
    blank_lines: int = 0
    files: int = 0
    bytes: int = 0  # on disk
    uncompressed_bytes: int = 0
    regression_build_id: str = ""
    by_day: dict[date, Summary] = field(default_factory=dict)

    def add(self, other: Summary) -> None:
        """Add the counts of ``other`` to this summary."""
        for name in (
            "pings",
            "main_pings",
            "crash_pings",
            "main_ignored",
            "crash_ignored",
            "blank_lines",
            "files",
            "bytes",
            "uncompressed_bytes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.bad.items():
            self.bad[reason] += count


# -- release calendar ----------------------------------------------------------

_ANCHOR, _CYCLE = date(2016, 3, 8), 42  # Firefox 45's release date; a major every six weeks


def _cycle(day: date) -> tuple[int, date]:
    k = max((day - _ANCHOR).days // _CYCLE, -30)  # keeps versions two-digit for very old dates
    return k, _ANCHOR + timedelta(days=_CYCLE * k)


def _build_id(built: date, hour: int) -> str:
    o = built.toordinal()
    return f"{built:%Y%m%d}{hour:02d}{o * 7 % 60:02d}{o * 13 % 60:02d}"


def _grid(day: date, step: int, count: int) -> list[date]:
    """The last ``count`` dates before ``day`` on a grid of ``step`` days from the anchor."""
    newest = _ANCHOR + timedelta(days=(day - timedelta(days=1) - _ANCHOR).days // step * step)
    return [newest - timedelta(days=step * j) for j in range(count)]


def builds(channel: str, day: date) -> list[tuple[Build, float]]:
    """The builds that clients of ``channel`` run on ``day``, newest first, with weights.

    >>> [b.display_version for b, _ in builds("beta", date(2016, 3, 10))]
    ['46.0b1', '45.0b6', '45.0b5', '45.0b4']
    """
    out = []
    if channel == "nightly":  # one build a day, used from the next day on
        for j, built in enumerate(_grid(day, 1, 14)):
            version = f"{_cycle(built)[0] + 47}.0a1"
            out.append((Build(channel, version, version, _build_id(built, 3)), 0.6**j))
    elif channel == "beta":  # weekly betas b1..b6 of the next major
        for j, built in enumerate(_grid(day, 7, 4)):
            k, start = _cycle(built)
            display = f"{k + 46}.0b{(built - start).days // 7 + 1}"
            out.append((Build(channel, f"{k + 46}.0", display, _build_id(built, 14)), 0.5**j))
    elif channel == "release":  # M.0, then dot releases two and four weeks later
        for j, released in enumerate(_grid(day, 14, 3)):
            k, start = _cycle(released)
            dot = (released - start).days // 14
            version = f"{k + 45}.0" + (f".{dot}" if dot else "")
            built = released - timedelta(days=5)  # release builds are made ahead of the date
            out.append((Build(channel, version, version, _build_id(built, 16)), 0.2**j))
    elif channel == "esr":  # a major every seven cycles, a minor every cycle
        for j, released in enumerate(_grid(day, _CYCLE, 2)):
            k = _cycle(released)[0]
            version = f"{45 + 7 * (k // 7)}.{k % 7}.0"
            built = released - timedelta(days=6)
            out.append((Build(channel, version, version + "esr", _build_id(built, 12)), 0.25**j))
    else:
        raise ValueError(f"unknown channel {channel!r}")
    return out


def regression_build_id(dates: list[date]) -> str:
    """The nightly build id with the crash regression in a run over ``dates``.

    >>> regression_build_id([date(2016, 3, 15), date(2016, 3, 9)])
    '20160307031010'
    """
    return _build_id(min(dates) - timedelta(days=2), 3)


# -- random helpers ----------------------------------------------------------------


def _table(items, weights) -> tuple[tuple, tuple]:
    return tuple(items), tuple(itertools.accumulate(weights))


def _draw(rng: random.Random, table: tuple[tuple, tuple]):
    return rng.choices(table[0], cum_weights=table[1])[0]


_CHANNEL_TABLE = _table(CHANNELS, CHANNELS.values())
_OS_TABLE = _table(_OSES, (row[2] for row in _OSES))
_COUNTRY_TABLE = _table(_COUNTRIES, (row[1] for row in _COUNTRIES))
_LAG_TABLE = _table(_LAGS, _LAG_WEIGHTS)
_COMPOSITOR_TABLES = {name: _table(*pair) for name, pair in _COMPOSITORS.items()}


@functools.lru_cache(maxsize=512)
def _build_table(channel: str, day: date) -> tuple[tuple, tuple]:
    return _table(*zip(*builds(channel, day), strict=False))


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _timestamp(rng: random.Random, day: date) -> str:
    ms = rng.getrandbits(32) % 86_400_000
    h, m, s = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60
    return f"{day.isoformat()}T{h:02d}:{m:02d}:{s:02d}.{ms % 1000:03d}Z"


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k, p = k + 1, p * rng.random()
    return k


# -- bulk: the many unrelated measurements of a real ping -------------------------

_WORDS = (
    (
        "GC",
        "CYCLE_COLLECTOR",
        "HTTP",
        "NETWORK",
        "DNS",
        "SSL",
        "FX_TAB",
        "FX_SESSION_RESTORE",
        "PLACES",
        "STARTUP",
        "MEMORY",
        "TELEMETRY",
        "CANVAS",
        "WEBRTC",
        "MEDIA",
        "IMAGE_DECODE",
        "FONTLIST",
        "SEARCH",
        "PWMGR",
        "DEVTOOLS",
        "A11Y",
        "PLUGIN",
        "UPDATE",
        "CACHE",
        "SPDY",
        "URLCLASSIFIER",
        "SHUTDOWN",
        "PAINT",
    ),
    (
        "PAGE_LOAD",
        "OPEN",
        "CLOSE",
        "READ",
        "WRITE",
        "COMPLETE",
        "FIRST_PAINT",
        "SLICE",
        "MAX_PAUSE",
        "RESPONSE",
        "CONNECT",
        "LOOKUP",
        "CHECK",
        "INIT",
        "FLUSH",
        "EVICT",
    ),
    ("_MS", "_US", "_COUNT", "_KB", "_FLAG", "", "_RATIO", "_V2"),
)


def _histogram(rng: random.Random) -> dict:
    kind = rng.choice((0, 0, 0, 1, 2, 3, 4, 5))  # exponential, linear, boolean, flag, count, categorical
    if kind in (2, 3, 4):
        a, b = rng.randrange(50), rng.randrange(5)
        values = {"0": a, "1": b, "2": 0} if kind == 2 else {"0": a, "1": 0}
        return {
            "bucket_count": 3,
            "histogram_type": kind,
            "range": [1, 2],
            "sum": b if kind == 2 else a,
            "values": values,
        }
    count, high = rng.choice(((20, 1000), (50, 10000), (100, 60000))) if kind == 0 else (51, 50)
    first = rng.randrange(count - 12)
    bounds = [round(high ** (i / count)) + i for i in range(first, first + rng.randrange(3, 12))]
    values = {str(b): rng.randrange(1, 400) for b in bounds}
    values[str(bounds[-1] + 1)] = 0  # real histograms end a run of buckets with a zero
    return {
        "bucket_count": count,
        "histogram_type": kind,
        "range": [1, high],
        "sum": sum(values.values()) * bounds[0],
        "values": values,
    }


def _section(rng: random.Random, pieces: list[bytes], low: int, high: int) -> bytes:
    """The inside of an object: distinct ``"name":{...}`` pieces, ``low``..``high`` bytes or a bit more."""
    target, size, chosen = rng.randrange(low, high), 0, []
    for i in rng.sample(range(len(pieces)), len(pieces)):
        if size >= target:
            break
        chosen.append(pieces[i])
        size += len(pieces[i]) + 1
    return b",".join(chosen)


class _Pool:
    """Encoded variants of the bulky parts of a realistic ping, built once per ``generate``.

    A ping picks one variant of each part: it costs a copy of bytes rather than
    the construction of hundreds of histograms, which is what makes gigabytes
    quick to write; twelve variants of each part still give every ping its own mix.
    """

    def __init__(self, rng: random.Random):
        names = rng.sample([a + "_" + b + c for a in _WORDS[0] for b in _WORDS[1] for c in _WORDS[2]], 1600)
        pieces = [_encode(n) + b":" + _encode(_histogram(rng)) for n in names]
        keys = ("content", "gpu", "socket", "extension", "google", "bing", "idb", "localStorage")
        keyed = [
            _encode(n) + b":" + _encode({k: _histogram(rng) for k in rng.sample(keys, rng.randrange(1, 4))})
            for n in names[:300]
        ]
        # Sizes chosen so that main pings weigh 105-190 KB, like the real ones in shared/fixtures.
        self.histograms = [_section(rng, pieces, 56_000, 80_000) for _ in range(12)]
        self.content_histograms = [_section(rng, pieces, 36_000, 58_000) for _ in range(12)]
        self.keyed = [_section(rng, keyed, 3_000, 8_000) for _ in range(12)]
        self.content_keyed = [_section(rng, keyed, 2_000, 5_000) for _ in range(12)]
        timings = (
            "start",
            "main",
            "firstPaint",
            "sessionRestored",
            "totalTime",
            "uptime",
            "activeTicks",
            "AMI_startup_begin",
            "AMI_startup_end",
            "XPI_startup_begin",
            "XPI_startup_end",
        )
        self.simple = [_encode({k: rng.randrange(10, 90000) for k in timings}) for _ in range(8)]
        self.scalars = [
            _encode(
                {
                    f"browser.engagement.{k}": rng.randrange(1, 500)
                    for k in (
                        "max_concurrent_tab_count",
                        "tab_open_event_count",
                        "unique_domains_count",
                        "total_uri_count",
                    )
                }
            )
            for _ in range(8)
        ]
        self.addons = [
            _encode(
                {
                    f"addon{i}@example.org": {
                        "name": f"Add-on {i}",
                        "description": f"Synthetic add-on number {i}",
                        "version": f"{i % 7 + 1}.{i}",
                        "type": "extension",
                        "scope": 1,
                        "blocklisted": False,
                        "userDisabled": False,
                        "appDisabled": False,
                        "foreignInstall": False,
                        "hasBinaryComponents": False,
                        "signedState": 2,
                        "isSystem": False,
                        "isWebExtension": bool(i % 2),
                        "multiprocessCompatible": True,
                        "installDay": 15000 + 17 * i,
                        "updateDay": 16800,
                    }
                    for i in rng.sample(range(60), rng.randrange(3, 12))
                }
            )
            for _ in range(8)
        ]


# -- clients and pings -----------------------------------------------------------


class _Client:
    """One profile: what all its pings share (environment, crash odds, lateness)."""

    __slots__ = ("id", "build", "country", "tz", "lag", "crash_odds", "e10s", "application", "environment")

    def __init__(self, rng: random.Random, day: date, regression_id: str, pool: _Pool | None):
        self.id = _uuid(rng)
        self.lag = _draw(rng, _LAG_TABLE)
        channel = _draw(rng, _CHANNEL_TABLE)
        # A build that existed before the client's (possibly late) pings.
        self.build = build = _draw(rng, _build_table(channel, day - timedelta(days=max(self.lag, 0) + 1)))
        os_name, os_version, _, factor = _draw(rng, _OS_TABLE)
        app_name = "Fennec" if os_name == "Android" else "Firefox"
        arch, abi = rng.choice(_ARCHES[os_name])
        self.country, _, locale, offsets = _draw(rng, _COUNTRY_TABLE)
        self.tz = rng.choice(offsets)
        factor *= _CHANNEL_CRASH[channel]
        experiment = {}
        if channel == "beta" and rng.random() < 2 / 3:
            branch = rng.choice(("control", "treatment"))
            major = build.version.split(".")[0]
            experiment = {"id": f"e10s-beta{major}-noapz@experiments.mozilla.org", "branch": branch}
            self.e10s, cohort = branch == "treatment", "test" if branch == "treatment" else "control"
            factor *= 1.25 if self.e10s else 1.0
        else:
            self.e10s = rng.random() < _E10S_SHARE[channel]
            cohort = "unsupportedChannel"
            if channel == "beta":
                cohort = rng.choice(("disqualified", "optedIn", "optedOut"))
        # Builds differ a little from one another, and one differs a lot.
        factor *= 0.8 + 0.4 * (zlib.crc32(build.build_id.encode()) % 1000) / 1000
        self.crash_odds = _BASE_CRASH_ODDS * factor * (REGRESSION_FACTOR if build.build_id == regression_id else 1)
        self.application = Raw(
            _encode(
                {
                    "architecture": arch,
                    "buildId": build.build_id,
                    "channel": channel,
                    "name": app_name,
                    "platformVersion": build.version,
                    "version": build.version,
                    "displayVersion": build.display_version,
                    "vendor": "Mozilla",
                    "xpcomAbi": abi,
                }
            )
        )
        os_info = {"name": os_name, "version": os_version, "locale": locale}
        if os_name == "Windows_NT":
            os_info.update(servicePackMajor=0, windowsBuildNumber=rng.choice((7601, 9600, 10586)))
        settings = {
            "telemetryEnabled": channel != "release",
            "locale": locale,
            "update": {"channel": channel},
            "e10sEnabled": self.e10s,
            "e10sCohort": cohort,
        }
        if rng.random() < 0.03:
            del settings["e10sCohort"]  # older builds did not report it
        addons = {"activeAddons": Raw(rng.choice(pool.addons)) if pool else {}, "activeExperiment": experiment}
        self.environment = _encode(
            {
                "build": {
                    "applicationId": _APP_IDS[app_name],
                    "applicationName": app_name,
                    "architecture": arch,
                    "buildId": build.build_id,
                    "version": build.version,
                    "vendor": "Mozilla",
                    "platformVersion": build.version,
                    "xpcomAbi": abi,
                },
                "partner": {},
                "settings": settings,
                "system": {
                    "memoryMB": rng.choice((2048, 4096, 8192, 16384)),
                    "os": os_info,
                    "gfx": {"features": {"compositor": _draw(rng, _COMPOSITOR_TABLES[os_name])}},
                },
                "profile": {"creationDate": rng.randrange(14000, 16800)},
                "addons": addons,
            }
        )


def _main_payload(rng: random.Random, client: _Client, active: date, pool: _Pool | None) -> dict:
    if rng.random() < 0.005:  # a session left open for days: above the job's 25-hour cap
        length = rng.randrange(90_000, 260_000)
    else:  # median an hour; subsessions are split at midnight, so at most a day
        length = min(int(rng.lognormvariate(8.19, 1.1)), 86_400)
    tz = client.tz  # local time, hour precision, as Firefox writes it
    offset = f"{'-' if tz < 0 else '+'}{abs(tz) // 60:02d}:{abs(tz) % 60:02d}"
    start = f"{active.isoformat()}T{rng.randrange(24):02d}:00:00.0{offset}"
    info = {
        "reason": rng.choice(("shutdown", "daily", "environment-change")),
        "timezoneOffset": tz,
        "sessionId": _uuid(rng),
        "subsessionId": _uuid(rng),
        "profileSubsessionCounter": rng.randrange(1, 900),
        "subsessionCounter": rng.randrange(1, 6),
        "sessionStartDate": start,
        "subsessionStartDate": start,
        "sessionLength": length + rng.randrange(3600),
        "subsessionLength": length,
    }
    keyed, hours = {}, length / 3600
    if rng.random() < 0.85:  # clients only send the histogram when they recorded it
        counts = {k: _poisson(rng, rate * hours * (k != "content" or client.e10s)) for k, rate in _CHILD_RATES}
        keyed["SUBPROCESS_CRASHES_WITH_DUMP"] = {k: Raw(_COUNT_HISTOGRAM % (n, n)) for k, n in counts.items() if n}
    if client.e10s and rng.random() < 0.85:
        n = _poisson(rng, 0.03 * hours)
        keyed["SUBPROCESS_KILL_HARD"] = {"ShutDownKill": Raw(_COUNT_HISTOGRAM % (n, n))}
    payload = {"ver": 4, "info": info, "keyedHistograms": keyed, "histograms": {}}
    if pool:
        ours = _encode(keyed)[1:-1]
        payload["keyedHistograms"] = Raw(b"{" + ours + (b"," if ours else b"") + rng.choice(pool.keyed) + b"}")
        payload["histograms"] = Raw(b"{" + rng.choice(pool.histograms) + b"}")
        payload["simpleMeasurements"] = Raw(rng.choice(pool.simple))
        payload["processes"] = Raw(
            b'{"parent":{"scalars":'
            + rng.choice(pool.scalars)
            + b'},"content":{"histograms":{'
            + rng.choice(pool.content_histograms)
            + b'},"keyedHistograms":{'
            + rng.choice(pool.content_keyed)
            + b"}}}"
        )
    return payload


def _crash_payload(rng: random.Random, client: _Client, active: date, pool: _Pool | None) -> dict:
    build = client.build
    seconds = (active - date(1970, 1, 1)).days * 86400 + rng.randrange(86400)
    payload = {
        "crashDate": active.isoformat(),
        "crashTime": f"{active}T{seconds // 3600 % 24:02d}:00:00.000Z",
        "sessionId": _uuid(rng),
        "version": 1,
        "crashId": _uuid(rng),
        "minidumpSha256Hash": f"{rng.getrandbits(256):064x}",
        "hasCrashEnvironment": True,
        "metadata": {
            "ReleaseChannel": build.channel,
            "Version": build.version,
            "BuildID": build.build_id,
            "StartupCrash": "1" if rng.random() < 0.1 else "0",
            "CrashTime": str(seconds),
            "UptimeTS": f"{rng.uniform(1, 40000):.7f}",
        },
    }
    if rng.random() < 0.6:  # older clients do not say which process crashed: the main one
        payload["processType"] = "main"
    return payload


def _spoil(doc: dict, reason: str, variant: str, day: date, client: _Client) -> bytes:
    """Encode ``doc`` broken so that ``reason`` applies and no reason before it in SPEC's order."""
    payload, meta = doc["payload"], doc["meta"]
    if reason == "malformed_json":
        if variant == "nan":
            doc["version"] = Raw(b"NaN")
        elif variant == "utf8":
            meta["geoCountry"] = Raw(b'"\xff\xfe"')
        elif variant == "utf8_deep":  # Latin-1 bytes, in a field the job never reads
            doc["clientId"] = Raw(b'"caf\xe9"')
        line = _encode(doc)
        if variant == "truncated":
            return line[: len(line) // 2]
        return b"[" + line + b"]" if variant == "array" else line
    if reason == "other_doc_type":
        doc["type"] = meta["docType"] = "event" if variant == "type_only" else variant
        if variant == "type_only":  # the job falls back to the top-level type
            del meta["docType"]
    elif reason == "content_crash":
        payload["processType"] = variant
    elif reason == "invalid_submission_date":
        meta["submissionDate"] = {
            "yesterday": f"{day - timedelta(days=1):%Y%m%d}",
            "dashes": day.isoformat(),
            "text": "unknown",
            "number": int(f"{day:%Y%m%d}"),
        }[variant]
    elif reason == "invalid_activity_date":  # the activity date and its creationDate fallback both unusable
        crash = doc["type"] == "crash"
        holder, key = (payload, "crashDate") if crash else (payload["info"], "subsessionStartDate")
        primary, creation = {
            "text": ("yesterday", "today"),
            "missing": (None, None),
            "impossible": (f"{day.year}-02-30", f"{day.year}-13-01T00:00:00.000Z"),
            "number": (int(f"{day:%Y%m%d}"), 1457395200000),
        }[variant]
        for target, name, value in ((holder, key, primary), (doc, "creationDate", creation)):
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
    elif reason == "invalid_build_id":  # buildId is never the last key of environment.build
        bid = client.build.build_id.encode()
        old = b'"buildId":"' + bid + b'",'
        new = {"13_digits": old.replace(bid, bid[:13]), "number": old.replace(b'"' + bid + b'"', bid), "missing": b""}[
            variant
        ]
        doc["environment"] = Raw(client.environment.replace(old, new, 1))
    elif reason == "invalid_subsession_length":
        info = payload["info"]
        if variant == "missing":
            del info["subsessionLength"]
        else:
            length = info["subsessionLength"]
            info["subsessionLength"] = {"null": None, "string": str(length), "boolean": True}[variant]
    return _encode(doc)


# -- files -----------------------------------------------------------------------


@contextlib.contextmanager
def _open(store: Store, path: str, compression: str):
    """A compressed file of a store, there only if the block succeeds."""
    with store.open_output(path) as raw:
        if compression == "gzip":  # isal at level 1 is several times faster than zlib
            # filename="": the header names no (temporary) file, so the bytes are reproducible.
            with igzip.IGzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0) as out:
                yield out
        elif compression == "zstd":
            with zstd.ZstdFile(raw, "wb", level=1) as out:
                yield out
        else:
            yield raw


def _write_day(
    store: Store,
    folder: str,
    day: date,
    n: int,
    files: int,
    seed: int,
    pool: _Pool | None,
    regression_id: str,
    compression: str,
) -> Summary:
    rng = random.Random(f"{seed}/{day.isoformat()}")
    summary = Summary(pings=n, files=files, regression_build_id=regression_id)
    clients = [_Client(rng, day, regression_id, pool) for _ in range(min(n // 3 + 1, _MAX_CLIENTS))]
    # Bad lines at random places, reasons in rotation so that each one shows up.
    n_bad = max(round(n * BAD_SHARE), min(len(RULE_REASONS), n // 20))
    bad = {pos: j for j, pos in enumerate(sorted(rng.sample(range(n), n_bad)))}
    compact = f"{day:%Y%m%d}"
    for f in range(files):
        path = location.join(folder, f"pings-{f:05d}{EXTENSIONS[compression]}")
        with _open(store, path, compression) as out:
            buffer, size = [], 0
            for i in range(f * n // files, (f + 1) * n // files):
                client = rng.choice(clients)
                j = bad.get(i)
                reason = None if j is None else RULE_REASONS[j % len(RULE_REASONS)]
                odds = client.crash_odds
                is_crash = reason == "content_crash" or (
                    reason != "invalid_subsession_length" and rng.random() * (1 + odds) < odds
                )
                active = day - timedelta(days=client.lag + (rng.random() < 0.2))
                created = min(active + timedelta(days=rng.random() < 0.5), max(day, active))
                doc_type = "crash" if is_crash else "main"
                doc = {
                    "type": doc_type,
                    "id": _uuid(rng),
                    "creationDate": _timestamp(rng, created),
                    "version": 4,
                    "clientId": client.id,
                    "application": client.application,
                    "environment": Raw(client.environment),
                    "payload": (_crash_payload if is_crash else _main_payload)(rng, client, active, pool),
                    "meta": {"submissionDate": compact, "docType": doc_type, "geoCountry": client.country},
                }
                if reason is None:
                    r = rng.random()
                    if r < 0.005:  # optional (SPEC section 1)
                        del doc["meta"]["submissionDate"]
                    elif r < 0.008 and not is_crash:  # the job falls back to creationDate
                        del doc["payload"]["info"]["subsessionStartDate"]
                    line = _encode(doc)
                else:
                    variants = BAD_KINDS[reason]
                    line = _spoil(doc, reason, variants[j // len(RULE_REASONS) % len(variants)], day, client)
                    summary.bad[reason] += 1
                # SPEC 2: lines that do not parse as a crash ping count as main pings.
                as_crash = is_crash and reason not in ("malformed_json", "other_doc_type")
                summary.crash_pings += as_crash
                summary.main_pings += not as_crash
                summary.crash_ignored += as_crash and reason is not None
                summary.main_ignored += not as_crash and reason is not None
                buffer.append(line + b"\n")
                size += len(line) + 1
                if rng.random() < _BLANK_SHARE:
                    buffer.append(b"\n")
                    size += 1
                    summary.blank_lines += 1
                if size >= 4 << 20 or i + 1 == (f + 1) * n // files:
                    out.write(b"".join(buffer))
                    summary.uncompressed_bytes += size
                    buffer, size = [], 0
        summary.bytes += store.size(path)
    return summary


def generate(
    output: str,
    dates: list[date],
    pings_per_day: int,
    seed: int = 0,
    profile: str = "small",
    compression: str = "gzip",
    files_per_day: int | None = None,
) -> Summary:
    """Write ``pings_per_day`` pings for each of ``dates`` under ``output``; return what was written.

    ``profile`` is ``small`` (1-2 KB pings) or ``realistic`` (100-200 KB main
    pings); ``compression`` is ``gzip``, ``none`` or ``zstd``. By default a day
    gets enough files to keep each under ~64 MB uncompressed, and at least two.
    The day's existing ``pings-*`` files are replaced.
    """
    if profile not in _LINE_BYTES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(_LINE_BYTES)})")
    if compression not in EXTENSIONS:
        raise ValueError(f"unknown compression {compression!r} (known: {', '.join(EXTENSIONS)})")
    if not dates or pings_per_day < 0 or (files_per_day is not None and files_per_day < 1):
        raise ValueError("need at least one date, pings_per_day >= 0 and files_per_day >= 1")
    pool = _Pool(random.Random(f"{seed}/pool")) if profile == "realistic" else None
    regression_id = regression_build_id(dates)
    if files_per_day is None:
        files_per_day = max(2, -(-pings_per_day * _LINE_BYTES[profile] // MAX_FILE_BYTES))
        files_per_day = min(files_per_day, max(1, pings_per_day))  # no empty files
    total = Summary(regression_build_id=regression_id)
    store = store_for(output)
    for day in sorted(set(dates)):
        folder = store.join(location.partition_name(day))
        store.makedirs(folder)
        # A rerun with fewer files or another compression leaves nothing stale behind.
        store.delete_matching(folder, "pings-*.ndjson*")
        summary = _write_day(store, folder, day, pings_per_day, files_per_day, seed, pool, regression_id, compression)
        total.add(summary)
        total.by_day[day] = summary
    return total
