"""Engines: where the per-ping rules of ``pings.py`` run (one process pool, or Spark).

An engine is an object with a ``name``, ``start`` and ``aggregate_day``
(the :class:`Engine` protocol), defined as ``ENGINE`` by a module listed in
:data:`ENGINES`. ``get(name)`` imports that module on first use, so the
command line and the embedded engine never import Spark's.

>>> names()
('embedded', 'spark')
>>> get("embedded").name
'embedded'
>>> get("flink")
Traceback (most recent call last):
...
crash_aggregates.engines.EngineError: unknown engine 'flink': use embedded or spark
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Protocol

from ..errors import CrashAggregatesError, ExitCode

if TYPE_CHECKING:
    from ..aggregate import DayAggregate
    from ..config import Config
    from ..sources import Split

#: Called with (bytes read, pings evaluated) since the previous call.
ProgressFn = Callable[[int, int], None]

#: Engine name -> the module whose ``ENGINE`` it is (the choices of ``run --engine``).
ENGINES = {"embedded": f"{__name__}.embedded", "spark": f"{__name__}.spark"}


class EngineError(CrashAggregatesError):
    """An engine failed a date; the message is one line for the user."""


class Engine(Protocol):
    """Sums the splits of a date with the project's own readers and rules (``engines.embedded.aggregate_split``)."""

    name: str

    def start(self, workers: int | None = None, master: str | None = None) -> int:
        """Get ready for a run of one or more dates; returns how many workers read at once.

        ``workers``: what the user asked for, if anything; ``master``: where
        to run, for an engine that runs elsewhere. Raises an EngineError
        with exit code ``ExitCode.USAGE`` when the engine cannot run here.
        """
        ...

    def aggregate_day(
        self,
        config: Config,
        day: date,
        splits: list[Split],
        *,
        workers: int | None = None,
        allow_corrupt: bool = False,
        progress: ProgressFn | None = None,
        prepare: Callable[[], object] | None = None,
    ) -> DayAggregate:
        """Every split of ``day`` summed into one DayAggregate.

        Raises ``sources.CorruptInput`` for a damaged compressed file unless
        ``allow_corrupt`` (then the file is listed in ``corrupt_files``), and
        EngineError when the engine fails the date. ``progress`` hears of the
        bytes and pings read; ``prepare`` is called once while the workers
        read (the job imports its Parquet writer then).
        """
        ...


def names() -> tuple[str, ...]:
    """The engines' names, for ``--engine``."""
    return tuple(ENGINES)


def get(name: str) -> Engine:
    """The engine called ``name``; an EngineError (exit code 2) for a name there is none of."""
    module = ENGINES.get(name)
    if module is None:
        raise EngineError(f"unknown engine {name!r}: use {' or '.join(ENGINES)}", ExitCode.USAGE)
    return importlib.import_module(module).ENGINE
