"""One pace for a whole batch: every worker waits on it, and a 429 slows them all.

Why AIMD, and a measured cut, rather than botocore's cubic token bucket: cubic is
made for a long-lived client whose traffic comes and goes, and it needs many
throttles to learn the ceiling. A batch is short and sends as fast as it may, so the
rate it *achieved* is a good measure of what the server allows. On a throttle (429, or
503 with ``Retry-After``) the pace drops to 90 % of the successes of the last second
(halved if there were none) and everyone waits out the ``Retry-After``; at most one
cut a fifth of a second, so one burst of 429s counts once. Then the pace grows
additively, by 5 % a second (at least one request a second per second), up to
``max_per_second`` when one is given. That ramp keeps throttles rare once the ceiling
is found, which is the point: every 429 is a request sent for nothing.

The pacer is found by the request pipeline through a context variable that a batch's
workers set, so each attempt of each item, retries included, takes a turn.
"""

from __future__ import annotations

import contextvars
from collections import deque
from typing import Final

import anyio

__all__ = ["CURRENT_PACER", "Pacer"]

_CUT_FACTOR: Final = 0.9
_CUT_SPACING: Final = 0.2  # seconds between two cuts
_GROWTH_PER_SECOND: Final = 0.05
_MIN_GROWTH: Final = 1.0
_MIN_RATE: Final = 1.0
_WINDOW: Final = 1.0  # seconds of successes the cut measures


class Pacer:
    """The turns of a batch: ``take_turn`` before each attempt, then report its outcome."""

    def __init__(self, ceiling: float | None = None) -> None:
        self._ceiling = ceiling
        #: Requests a second; ``None``: as fast as the workers go (until a throttle).
        self.rate: float | None = ceiling
        self._next_turn = 0.0
        self._paused_until = 0.0
        self._last_cut = -_CUT_SPACING
        self._last_growth: float | None = None
        self._successes: deque[float] = deque()
        #: Throttles seen, for tests and figures.
        self.throttles = 0

    async def take_turn(self) -> None:
        """Wait for this request's slot: after any pause, one interval after the last."""
        now = anyio.current_time()
        slot = max(now, self._paused_until)
        if self.rate is not None:
            slot = max(slot, self._next_turn)
            self._next_turn = slot + 1.0 / self.rate
        if slot > now:
            await anyio.sleep(slot - now)

    def succeeded(self) -> None:
        now = anyio.current_time()
        successes = self._successes
        successes.append(now)
        while successes and successes[0] < now - _WINDOW:
            successes.popleft()
        if self.rate is None:
            return
        if self._last_growth is not None:
            step = max(_MIN_GROWTH, self.rate * _GROWTH_PER_SECOND) * (now - self._last_growth)
            self.rate += step
            if self._ceiling is not None:
                self.rate = min(self.rate, self._ceiling)
        self._last_growth = now

    def throttled(self, retry_after: float | None) -> None:
        """A 429 (or a 503 with ``Retry-After``): pause everyone, and cut the pace once."""
        now = anyio.current_time()
        self.throttles += 1
        if retry_after is not None:
            self._paused_until = max(self._paused_until, now + retry_after)
        if now - self._last_cut < _CUT_SPACING:
            return
        self._last_cut = now
        recent = sum(1 for when in self._successes if when >= now - _WINDOW)
        measured = recent / _WINDOW
        cut = measured * _CUT_FACTOR if measured else (self.rate or 2 * _MIN_RATE) / 2
        self.rate = max(_MIN_RATE, cut if self.rate is None else min(self.rate, cut))
        self._last_growth = now


#: The pacer of the batch this task works for, if any.
CURRENT_PACER: Final[contextvars.ContextVar[Pacer | None]] = contextvars.ContextVar(
    "ziggeo_async_pacer", default=None
)
