"""The console's line: at most N queries run at once (in threads); the rest wait, knowing their place.

One query's time limit and memory bound (``sql/console.py``) keep it from
holding a place for long; the line keeps many from starving the pages. A
line that is full refuses at once (``Busy``) rather than letting requests
pile up without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from ..errors import CrashAggregatesError


class Busy(CrashAggregatesError):
    """The line is full: try again in a moment."""


class _Ticket:
    def __init__(self):
        self.moved = asyncio.Event()
        self.running = False


class QueryQueue:
    """First come, first served; ``running`` at once, at most ``waiting`` in line."""

    def __init__(self, running: int, waiting: int):
        self.limit, self.capacity = running, waiting
        self.running = 0
        self.line: deque[_Ticket] = deque()

    @property
    def waiting(self) -> int:
        return len(self.line)

    @asynccontextmanager
    async def turn(self, on_wait: Callable[[int], Awaitable[None]] | None = None) -> AsyncIterator[None]:
        """Wait for a place (``on_wait(position)`` each time the line moves; 1 is next), then hold it."""
        ticket = _Ticket()
        if self.running < self.limit and not self.line:
            self.running += 1
            ticket.running = True
        elif len(self.line) >= self.capacity:
            raise Busy(f"the console is busy: {self.running} queries running and {len(self.line)} waiting")
        else:
            self.line.append(ticket)
        try:
            while not ticket.running:
                if on_wait is not None:
                    await on_wait(self.line.index(ticket) + 1)
                ticket.moved.clear()
                if not ticket.running:
                    await ticket.moved.wait()
            yield
        finally:
            if ticket.running:
                self.running -= 1
            else:
                self.line.remove(ticket)
            self._advance()

    def _advance(self) -> None:
        while self.running < self.limit and self.line:
            admitted = self.line.popleft()
            admitted.running = True
            self.running += 1
            admitted.moved.set()
        for ticket in self.line:  # each learns its new place
            ticket.moved.set()

    def position(self) -> int:
        """Where a query asking now would stand: 0 runs at once."""
        return 0 if self.running < self.limit and not self.line else len(self.line) + 1
