"""What a check or a rule found about one thing (a date, a reason, a rule's group): its state and numbers.

Every evaluation gives a :class:`Finding` per thing it looked at, in one of
three states: ``OK``, ``FIRING``, or ``INSUFFICIENT`` (too little data to
say). The ``key`` names the thing across runs, which is how the state file
knows a finding was already told (``dispatch.py``).

>>> f = Finding("volume", "volume:2016-03-13", FIRING, "2016-03-13: 38% of the usual pings", "4,012 pings", 2.6)
>>> f.line()
'FIRING        volume   2016-03-13: 38% of the usual pings: 4,012 pings'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

OK, FIRING, INSUFFICIENT = "OK", "FIRING", "INSUFFICIENT"
STATES = (OK, FIRING, INSUFFICIENT)


@dataclass
class Finding:
    #: ``missing`` | ``volume`` | ``quality`` | ``rule``
    check: str
    key: str
    state: str
    #: One line for people: what it is about and what is wrong (or fine).
    title: str
    #: The numbers, in words.
    detail: str
    #: Larger is worse; compared between runs to tell "worse" (``[notify] worse_factor``).
    severity: float = 0.0
    #: The numbers, for JSON and webhooks.
    numbers: dict = field(default_factory=dict)
    #: The dashboard view that shows it (``[dashboard] url``), if configured.
    link: str | None = None
    #: The rule's name, for rule findings.
    rule: str | None = None

    def line(self) -> str:
        """The finding on one line, as ``check --format text`` prints it."""
        return f"{self.state:<13} {self.check:<8} {self.title}: {self.detail}"

    def as_json(self) -> dict:
        doc = asdict(self)
        doc["numbers"] = json_safe(self.numbers)
        doc["severity"] = json_safe(self.severity)
        return doc


def json_safe(value):
    """NaN and infinities (which JSON lacks) become None, inside lists and dicts too.

    >>> json_safe({"a": float("inf"), "b": [1.5, float("nan")]})
    {'a': None, 'b': [1.5, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def percent(share: float) -> str:
    """A share as a percentage for people.

    >>> percent(0.381), percent(0.0612), percent(0.00042), percent(2.0)
    ('38%', '6.1%', '0.042%', '200%')
    """
    value = share * 100
    if value >= 10 or value == 0:
        return f"{value:.0f}%"
    if value >= 1:
        return f"{value:.1f}%"
    return f"{value:.2g}%"
