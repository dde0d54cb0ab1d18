"""One pace for a whole batch: every worker waits on it, and a 429 slows them all.

Why AIMD, and a measured cut, rather than botocore's cubic token bucket: cubic is
made for a long-lived client whose traffic comes and goes, and it needs many
throttles to learn the ceiling. A batch is short and sends as fast as it may, so the
rate it *achieved* is a good measure of what the server allows.

A batch starts unpaced. On a throttle (429, or 503 with ``Retry-After``) everyone
waits out the ``Retry-After``, and the pace is cut once for that overshoot: to 90 % of
the rate of successes since the last cut, never above the pace nor below half of it.
Throttles of turns taken before a cut are the same overshoot, already answered, and
cut nothing more. After a cut the pace grows by 5 % a second (at least one request a
second per second), up to ``max_per_second`` when one is given. That ramp keeps
throttles rare once the ceiling is found, which is the point: every 429 is a request
sent for nothing.

The first throttle may come before the batch could measure anything: the server
refused the first wave at once, beyond its burst. Cutting from the burst's rate would
be a guess, so the pace then starts low and doubles as successes come back, in
``_RAMP_SECONDS`` or two round trips, whichever is longer, until the next throttle,
which cuts it from there. A turn is booked only a
little ahead (``_BOOKING_SECONDS``), and a cut books the waiting turns again, so no
worker keeps a slot worked out at a pace that has since changed.

The pacer is found by the request pipeline through a context variable that a batch's
workers set, so each attempt of each item, retries included, takes a turn.
"""

from __future__ import annotations

import contextvars
from typing import Final

import anyio

__all__ = ["CURRENT_PACER", "Pacer"]

_CUT_FACTOR: Final = 0.9
_DEEPEST_CUT: Final = 0.5
_GROWTH_PER_SECOND: Final = 0.05
_MIN_GROWTH: Final = 1.0
_MIN_RATE: Final = 1.0
# A first throttle sooner than this after the first answer measured the server's burst,
# not its rate; and the ramp that follows doubles the pace in no less than this. (Against
# a token bucket on a mock clock, benchmarks/pacing_grid.py, 0.3 s gave batches within
# 1.4x of their ideal time; 0.1 s lost items to repeated overshoots, 0.5 s was slower.)
_RAMP_SECONDS: Final = 0.3
# A turn further off than this is not booked yet: the pace may grow meanwhile.
_BOOKING_SECONDS: Final = 0.1


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
        self._first_answer: float | None = None
        #: Seconds in which the ramp doubles the pace.
        self._doubling = _RAMP_SECONDS
        self._last_growth: float | None = None
        #: Cuts so far; a turn's mark is the count when it was booked.
        self._cuts = 0
        #: Whether the pace doubles as it goes (after a first throttle that measured nothing).
        self._ramping = False
        #: Successes since the last cut (or the start): memory stays constant.
        self._successes = 0
        #: Throttles seen, for tests and figures.
        self.throttles = 0

    async def take_turn(self) -> int:
        """Wait for this request's slot: after any pause, one interval after the last.

        Returns the turn's mark, for ``throttled``.
        """
        if self.rate is None:
            # No ceiling and no throttle yet, so no pause either: nothing to wait for, and
            # the clock (anyio's costs a library lookup) is read once, for the first turn.
            if self._first_turn is None:
                self._first_turn = anyio.current_time()
            return self._cuts
        while True:
            now = anyio.current_time()
            if self._first_turn is None:
                self._first_turn = now
            slot = max(now, self._paused_until, self._next_turn)
            if slot - max(now, self._paused_until) > _BOOKING_SECONDS:
                await anyio.sleep(max(_BOOKING_SECONDS, self._paused_until - now))
                continue
            mark = self._cuts
            self._next_turn = slot + 1.0 / self.rate
            if slot > now:
                await anyio.sleep(slot - now)
            if mark == self._cuts:
                return mark
            # The pace was cut while this turn waited: book again, at the new pace.

    def succeeded(self) -> None:
        self._successes += 1
        if self._first_answer is None:  # the clock read once more, for the first answer
            self._first_answer = anyio.current_time()
        if self.rate is None:
            return
        now = anyio.current_time()
        if self._ramping:
            # Each success adds 1/_doubling a second (at most doubling the pace), so the
            # pace doubles in _doubling if successes keep up with it, slower if not.
            self.rate += min(self.rate, 1.0 / self._doubling)
        elif self._last_growth is not None:
            step = max(_MIN_GROWTH, self.rate * _GROWTH_PER_SECOND) * (now - self._last_growth)
            self.rate += step
        if self._ceiling is not None:
            self.rate = min(self.rate, self._ceiling)
        self._last_growth = now

    def throttled(self, retry_after: float | None, turn: int) -> None:
        """A 429 (or a 503 with ``Retry-After``) to the attempt of the turn marked
        ``turn``: pause everyone, and cut the pace once for each overshoot."""
        now = anyio.current_time()
        self.throttles += 1
        if retry_after is not None:
            self._paused_until = max(self._paused_until, now + retry_after)
        if turn < self._cuts:
            return  # booked before the last cut: the same overshoot, already answered
        if self._first_answer is None:
            self._first_answer = now
        # Measured from the first answer on: before it, nothing could have come back.
        since = self._last_cut if self._last_cut is not None else self._first_answer
        span = now - since
        recent, self._successes = self._successes, 0
        # The rate the server let through since the last cut.
        measured = recent / span if recent and span > 0 else 0.0
        self._cuts += 1
        self._last_cut = self._last_growth = now
        if self.rate is None and span < _RAMP_SECONDS:
            # The first wave's answers: the server's burst, not its rate. Start low and ramp,
            # doubling in no less than two round trips (the first answer's wait): a throttle
            # takes one to come back, and the pace must not have doubled twice by then.
            first_turn = self._first_turn if self._first_turn is not None else now
            self._doubling = max(_RAMP_SECONDS, 2 * (self._first_answer - first_turn))
            self.rate = max(_MIN_RATE, recent / self._doubling)
            self._ramping = True
        elif self.rate is None:
            self.rate = max(_MIN_RATE, measured * _CUT_FACTOR)
        else:
            # Never above the pace, nor below half of it: the workers may have been busy
            # with something else (retry waits, slow answers) and sent less than it allowed.
            cut = min(measured, self.rate) * _CUT_FACTOR
            self.rate = max(_MIN_RATE, self.rate * _DEEPEST_CUT, cut)
            self._ramping = False
        # Turns booked at the old pace are booked again (see take_turn), the first of them
        # one interval on: the server has had no time to let anything more through.
        self._next_turn = now + 1.0 / self.rate


#: The pacer of the batch this task works for, if any.
CURRENT_PACER: Final[contextvars.ContextVar[Pacer | None]] = contextvars.ContextVar(
    "ziggeo_async_pacer", default=None
)
