"""``ziggeo-async fake serve``: an ASGI app on uvicorn (the ``serve`` extra), on loopback.

uvicorn runs on a thread of its own: there it installs no signal handlers, so the
command's own loop owns SIGINT and SIGTERM, and stopping is one flag
(``Server.should_exit``) whatever uvicorn version does with signals in the main thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from ._errors import UsageError

__all__ = ["serve_until_signalled", "serving"]

_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# How long uvicorn may take to start or stop on a loaded machine before it counts as stuck.
_THREAD_PATIENCE: Final = 60.0
_POLL: Final = 0.005
# Seconds a stopping server lets requests in progress finish (a FakeZiggeo with
# --latency may hold one for minutes) before it cancels them, so a stop stays prompt.
_GRACE: Final = 1


class _WithoutCancelledRequests(logging.Filter):
    """Drops uvicorn's traceback for each request it cancelled itself, once the grace
    ran out: that is the stop working, not the app failing (its count is still logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


@contextlib.contextmanager
def serving(app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on uvicorn on ``host:port`` for the ``with`` block; yields the base URL.

    The listening socket is bound here, so ``port=0`` gives a free port whose number is
    known before uvicorn starts. Leaving the block stops uvicorn: it stops accepting,
    closes idle connections, and gives requests in progress a second to finish.
    """
    try:
        import uvicorn  # noqa: PLC0415 - optional: only `fake serve` needs it
    except ImportError:
        raise UsageError(
            "fake serve runs on uvicorn, which is not installed: pip install 'ziggeo-async[serve]'"
        ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family) as listener:
        bound_host, bound_port = listener.getsockname()[:2]
        shown_host = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
        # No access log: it would print every path, whole token ids included. No logging
        # configuration either (log_config=None): uvicorn's warnings and errors go where
        # the process sends its logs, stderr by default.
        config = uvicorn.Config(
            app,
            loop="asyncio",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=_GRACE,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="fake-serve", daemon=True
        )
        quiet = _WithoutCancelledRequests()
        logging.getLogger("uvicorn.error").addFilter(quiet)
        thread.start()
        try:
            deadline = time.monotonic() + _THREAD_PATIENCE
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start on {shown_host}:{bound_port}")
                time.sleep(_POLL)
            yield f"http://{shown_host}:{bound_port}"
        finally:
            server.should_exit = True
            thread.join(_THREAD_PATIENCE)
            logging.getLogger("uvicorn.error").removeFilter(quiet)


async def serve_until_signalled(
    app: Callable[..., Any], host: str, port: int, on_ready: Callable[[str], None]
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then stop cleanly; ``on_ready(url)`` when up."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        with serving(app, host, port) as url:
            on_ready(url)
            await stop.wait()
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
