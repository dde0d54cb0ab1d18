"""A one-line progress bar with rate and ETA, redrawn at most ten times a second."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Final, TextIO

__all__ = ["Progress", "terminal_columns"]

_WIDTH: Final = 30
_REDRAW_EVERY: Final = 0.1


def _clock_text(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` draws on: ``COLUMNS`` if set, else the
    terminal's own size, else what ``shutil.get_terminal_size`` falls back to."""
    if "COLUMNS" not in os.environ:
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):  # not a terminal, or no file descriptor
            pass
    return shutil.get_terminal_size().columns


class Progress:
    """Draws ``[#####.....] done/total pct rate/s ETA h:mm:ss`` on ``stream``.

    Draws nothing when ``enabled`` is false, so callers need no branches. The line is
    cut to one column less than the terminal's width, so it never wraps.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        enabled: bool,
        label: str = "",
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] | None = None,
    ) -> None:
        self._total = total
        self._stream = stream
        self.enabled = enabled and total > 0
        self._label = label
        self._clock = clock
        self._columns = columns or (lambda: terminal_columns(stream))
        self._started = clock()
        self._last_drawn = float("-inf")
        self.done = 0

    def line(self) -> str:
        """The bar as text, without the carriage return, cut to the terminal's width."""
        elapsed = self._clock() - self._started
        fraction = self.done / self._total if self._total else 1.0
        filled = int(fraction * _WIDTH)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = _clock_text((self._total - self.done) / rate) if rate > 0 else "?:??:??"
        text = (
            f"{self._label}[{'#' * filled}{'.' * (_WIDTH - filled)}] "
            f"{self.done}/{self._total} {fraction:4.0%} {rate:,.0f}/s ETA {eta}"
        )
        # The last column is left free: some terminals wrap as soon as it is written.
        return text[: max(1, self._columns() - 1)]

    def _draw(self, end: str = "") -> None:
        # Clear to the end of the line too: a cut line can be shorter than the last one.
        self._stream.write("\r" + self.line() + "\x1b[K" + end)
        self._stream.flush()

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self._clock()
        if self.enabled and now - self._last_drawn >= _REDRAW_EVERY:
            self._last_drawn = now
            self._draw()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw("\n")
