"""Request parameters: every control of a view is one, read here and checked, or refused with one line (HTTP 400)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from ..config import Config
from ..errors import CrashAggregatesError, ExitCode

#: Longest date range a view or the API answers (days): bounds the rows a request can ask for.
MAX_RANGE_DAYS = 400
MAX_VALUE_LENGTH = 500
MAX_FILTERS = 20
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


class BadRequest(CrashAggregatesError, ValueError):
    """A parameter that cannot be used: the message is shown as it is (one line)."""

    exit_code = ExitCode.USAGE


class Params:
    """The query parameters of one request, read with checks."""

    def __init__(self, multi, config: Config):
        # ``multi``: a mapping with getlist() (Starlette's QueryParams); blank values count as absent.
        self.config = config
        self.items: dict[str, list[str]] = {}
        for name in set(multi.keys()):
            values = [v for v in multi.getlist(name) if v.strip() != ""]
            for v in values:
                if len(v) > MAX_VALUE_LENGTH:
                    raise BadRequest(f"{name}: value longer than {MAX_VALUE_LENGTH} characters")
            if values:
                self.items[name] = values

    def one(self, name: str, default: str | None = None) -> str | None:
        values = self.items.get(name)
        if not values:
            return default
        if len(values) > 1:
            raise BadRequest(f"{name} is given {len(values)} times; give it once")
        return values[0].strip()

    def many(self, name: str) -> list[str]:
        values = self.items.get(name, [])
        if len(values) > MAX_FILTERS:
            raise BadRequest(f"{name}: at most {MAX_FILTERS} values")
        return [v.strip() for v in values]

    def choice(self, name: str, choices, default: str) -> str:
        value = self.one(name, default)
        if value not in choices:
            raise BadRequest(f"{name}: unknown value {value!r} (known: {', '.join(choices)})")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.one(name)
        if text is None:
            return default
        if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
            raise BadRequest(f"{name}: expected a whole number from {low} to {high}, not {text!r}")
        return int(text)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        text = self.one(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:  # nan and inf fail here
            raise BadRequest(f"{name}: expected a number from {low:g} to {high:g}, not {text!r}")
        return value

    def day(self, name: str, default: date | None) -> date | None:
        text = self.one(name)
        if text is None:
            return default
        try:
            if not _DATE_RE.match(text):
                raise ValueError
            return date.fromisoformat(text)
        except ValueError:
            raise BadRequest(f"{name}: invalid date {text!r}: expected YYYY-MM-DD") from None

    def stat(self, name: str, default: str | None, allowed: list[str] | None = None) -> str:
        allowed = allowed if allowed is not None else self.config.stat_columns()
        value = self.one(name, default)
        if value is None:
            raise BadRequest(f"{name} is required (one of: {', '.join(allowed)})")
        if value not in allowed:
            raise BadRequest(f"{name}: unknown stat {value!r} (known: {', '.join(allowed)})")
        return value

    def dimension_names(self) -> list[str]:
        return [d.name for d in self.config.dimensions]

    def dimension(self, name: str, default: str | None = None) -> str | None:
        value = self.one(name, default)
        if value is not None and value not in self.dimension_names():
            raise BadRequest(f"{name}: unknown dimension {value!r} (known: {', '.join(self.dimension_names())})")
        return value

    def dimensions(self, name: str, default: list[str]) -> list[str]:
        values = self.many(name) or list(default)
        for value in values:
            if value not in self.dimension_names():
                raise BadRequest(f"{name}: unknown dimension {value!r} (known: {', '.join(self.dimension_names())})")
        if len(set(values)) != len(values):
            raise BadRequest(f"{name}: a dimension is given twice")
        return values

    def filters(self, name: str = "where") -> tuple[tuple[str, str], ...]:
        """``DIM:VALUE`` pairs (the value may hold colons; it is compared exactly)."""
        found = []
        for text in self.many(name):
            dimension, colon, value = text.partition(":")
            if not colon or not dimension:
                raise BadRequest(f"{name}: expected DIMENSION:VALUE, not {text!r}")
            if dimension not in self.dimension_names():
                raise BadRequest(
                    f"{name}: unknown dimension {dimension!r} (known: {', '.join(self.dimension_names())})"
                )
            found.append((dimension, value))
        return tuple(found)

    def absent(self, name: str = "absent") -> tuple[str, ...]:
        found = self.many(name)
        for dimension in found:
            if dimension not in self.dimension_names():
                raise BadRequest(
                    f"{name}: unknown dimension {dimension!r} (known: {', '.join(self.dimension_names())})"
                )
        return tuple(dict.fromkeys(found))

    def date_range(self, published: list[date], default_days: int) -> tuple[date, date]:
        """``from`` and ``to``: by default the last ``default_days`` published dates (today without data)."""
        last = published[-1] if published else date.today()
        end = self.day("to", last)
        first = published[0] if published else end
        start = self.day("from", max(first, end - timedelta(days=default_days - 1)))
        if start > end:
            raise BadRequest(f"from ({start}) is after to ({end})")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise BadRequest(
                f"the range from {start} to {end} is {(end - start).days + 1} days; at most {MAX_RANGE_DAYS}"
            )
        return start, end
