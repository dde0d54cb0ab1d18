"""Which event loop library, if any, runs in the calling thread."""

from __future__ import annotations

import asyncio
import sys


def running_async_library() -> str | None:
    """The event loop library running in the calling thread (``"asyncio"``, ``"trio"``), if any."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    # Only a program that imported trio can be running it; never import it here.
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    return None
