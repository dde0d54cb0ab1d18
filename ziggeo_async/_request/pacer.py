"""One pace for a whole batch: every worker waits on it, and a 429 slows them all.

Why AIMD, and a measured cut, rather than botocore's cubic token bucket: cubic is
made for a long-lived client whose traffic comes and goes, and it needs many
throttles to learn the ceiling. A batch is short and sends as fast as it may, so the
rate it *achieved* is a good measure of what the server allows. On a throttle (429, or
503 with ``Retry-After``) the pace drops to 90 % of the rate of successes since the
last cut (halved if there were none) and everyone waits out the
``Retry-After``. A throttle within two turns of the last cut is the same
overshoot and cuts nothing more; one that finds nothing got through since halves.
Then the pace grows additively, by 5 % a second (at least one request a second per second), up to
``max_per_second`` when one is given. That ramp keeps throttles rare once the ceiling
is found, which is the point: every 429 is a request sent for nothing.

The pacer is found by the request pipeline through a context variable that a batch's
workers set, so each attempt of each item, retries included, takes a turn.
"""

from __future__ import annotations

import contextvars
from typing import Final

import anyio

__all__ = ["CURRENT_PACER", "Pacer"]

_CUT_FACTOR: Final = 0.9
_TURNS_PER_CUT: Final = 2
_GROWTH_PER_SECOND: Final = 0.05
_MIN_GROWTH: Final = 1.0
_MIN_RATE: Final = 1.0


class Pacer:
    """The turns of a batch: ``take_turn`` before each attempt, then report its outcome."""

    def __init__(self, ceiling: float | None = None) -> None:
        self._ceiling = ceiling
        #: Requests a second; ``None``: as fast as the workers go (until a throttle).
        self.rate: float | None = ceiling
        self._next_turn = 0.0
        self._paused_until = 0.0
        self._last_cut: float | None = None
        self._first_turn: float | None = None
        self._last_growth: float | None = None
        #: Successes since the last cut (or the start): memory stays constant.
        self._successes = 0
        #: Throttles seen, for tests and figures.
        self.throttles = 0

    async def take_turn(self) -> None:
        """Wait for this request's slot: after any pause, one interval after the last."""
        if self.rate is None:
            # No ceiling and no throttle yet, so no pause either: nothing to wait for, and
            # the clock (anyio's costs a library lookup) is read once, for the first turn.
            if self._first_turn is None:
                self._first_turn = anyio.current_time()
            return
        now = anyio.current_time()
        if self._first_turn is None:
            self._first_turn = now
        slot = max(now, self._paused_until, self._next_turn)
        self._next_turn = slot + 1.0 / self.rate
        if slot > now:
            await anyio.sleep(slot - now)

    def succeeded(self) -> None:
        self._successes += 1
        if self.rate is None:
            return
        now = anyio.current_time()
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
        since = self._last_cut if self._last_cut is not None else self._first_turn or now
        span = now - since
        # One cut per overshoot: a throttle sooner than two turns after the last cut is
        # the same burst of 429s, already answered.
        if self.rate is not None and span < _TURNS_PER_CUT / self.rate:
            return
        self._last_cut = now
        # The rate the server let through since the last cut.
        recent, self._successes = self._successes, 0
        if recent and span > 0:
            cut = recent / span * _CUT_FACTOR
        else:  # nothing got through since: halve
            cut = (self.rate or 2 * _MIN_RATE) / 2
        self.rate = max(_MIN_RATE, cut if self.rate is None else min(self.rate, cut))
        self._last_growth = now


#: The pacer of the batch this task works for, if any.
CURRENT_PACER: Final[contextvars.ContextVar[Pacer | None]] = contextvars.ContextVar(
    "ziggeo_async_pacer", default=None
)
