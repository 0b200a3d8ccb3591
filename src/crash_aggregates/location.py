"""Where data lives: a local path or a URL (``scheme://...``), parsed once.

Every data location of the project (``run --input/--output``, ``sql --data``,
``generate --output``, the config's ``[data]`` keys) is a string that is
either a local path or a URL. This module only parses and names them; what
is done with a location (listing, reading, publishing) is its store's work
(``stores/``), chosen by the URL's scheme with ``stores.store_for``.

>>> scheme("s3://bucket/aggregates"), scheme("/data/aggregates"), scheme("s3:/x")
('s3', None, None)
>>> join("s3://bucket/pings/", "submission_date=2016-03-05", "a.ndjson")
's3://bucket/pings/submission_date=2016-03-05/a.ndjson'
>>> name("s3://bucket/pings/a.ndjson"), name("/data/pings/a.ndjson")
('a.ndjson', 'a.ndjson')
"""

from __future__ import annotations

import os
import re

from .errors import CrashAggregatesError


def partition_name(day) -> str:
    """The Hive partition folder of a date (``datetime.date``), in input and output alike.

    >>> from datetime import date
    >>> partition_name(date(2016, 3, 5))
    'submission_date=2016-03-05'
    """
    return f"submission_date={day.isoformat()}"


_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class StorageError(CrashAggregatesError, OSError):
    """A location cannot be used (credentials, bucket, endpoint, permission…).

    ``str()`` is one sentence for people that names the URL; no traceback is
    needed to understand it.
    """

    def __init__(self, url: str, reason: str, action: str = "use"):
        super().__init__(f"cannot {action} {url}: {reason}")
        self.url, self.reason, self.action = url, reason, action

    def __reduce__(self):  # crosses process boundaries intact
        return StorageError, (self.url, self.reason, self.action)


def scheme(location) -> str | None:
    """The URL scheme of a location (as written: ``S3://`` is not ``s3://``); None for a local path."""
    m = _URL_RE.match(location) if isinstance(location, str) else None
    return m.group(1) if m else None


def is_url(location) -> bool:
    """Whether a location is a URL (``scheme://...``) rather than a local path."""
    return scheme(location) is not None


def join(location, *names: str) -> str:
    """A child of a location (``/`` for a URL, ``os.path.join`` for a local path)."""
    if is_url(location):
        return "/".join([location.rstrip("/"), *names])
    return os.path.join(os.fspath(location), *names)


def name(location: str) -> str:
    """The last component of a path or URL."""
    return location.rstrip("/").rsplit("/", 1)[-1]
