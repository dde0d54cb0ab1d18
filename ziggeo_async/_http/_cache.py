"""The HTTP layer's caches of what it works out per request, all kept within one bound."""

from __future__ import annotations

from typing import Final, TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: How many entries each cache of the HTTP layer keeps (parsed URLs, header sets, timeouts
#: worked out). Token paths, body lengths and per-call timeouts vary without end, so a
#: full cache starts again empty: a bound, not a leak. A batch needs one entry of each.
CACHE_ENTRIES: Final = 64


def remember(cache: dict[K, V], key: K, value: V) -> V:
    """``cache[key] = value``, ``cache`` emptied first when it holds ``CACHE_ENTRIES``."""
    if len(cache) >= CACHE_ENTRIES:
        cache.clear()
    cache[key] = value
    return value
