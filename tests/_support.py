"""Helpers shared by the test modules (import as ``tests._support``)."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from ziggeo_async import AsyncZiggeo, RetryPolicy
from ziggeo_async.cli._serve import serving

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

APP_TOKEN = "app-token-1234"
PRIVATE_KEY = "private-key-SECRET-5678"
ENCRYPTION_KEY = "encryption-key-SECRET-9012"
HOST = "https://srv-api.ziggeo.com"
COLLECTION_URL = f"{HOST}/v1/authtokens/"

# respx intercepts below the transport, so one transport serves every test; a fresh
# httpx.AsyncClient would build an SSL context each time (tens of ms, hundreds of tests).
_SHARED_TRANSPORT = httpx.AsyncHTTPTransport()


def make_client(*, max_retries: int = 2, **options: object) -> AsyncZiggeo:
    """A client with a lent HTTP client and its retry backoff pinned to 0 s.

    Retried tests therefore never really sleep; a Retry-After delay still applies,
    so tests that send one replace the pipeline's sleep.
    """
    options.setdefault("http_client", httpx.AsyncClient(transport=_SHARED_TRANSPORT))
    return AsyncZiggeo(
        APP_TOKEN,
        PRIVATE_KEY,
        ENCRYPTION_KEY,
        retry=RetryPolicy(max_retries=max_retries, jitter=lambda: 0.0),
        **options,  # type: ignore[arg-type]
    )


def serve_on_uvicorn(app: Callable[..., Any]) -> AbstractContextManager[str]:
    """``app`` on uvicorn on 127.0.0.1 and a free port, on a thread of its own, for the
    ``with`` block (whatever event loop the test runs, or none); yields the base URL.

    The one serving mechanism of ``ziggeo-async fake serve``, so the tests that reach
    the emulator over real HTTP also run the command's server.
    """
    return serving(app, "127.0.0.1", 0)


class ThreadedServer:
    """A server on 127.0.0.1 on threads of its own, whatever event loop the test runs.

    It accepts until the ``with`` block ends and hands each connection to ``handle``
    on a thread; ``stopping`` is set at the end, so a handler that holds a connection
    open polls it. Subclasses write ``handle``: the one socket-server skeleton the
    tests share.

    The server, not the handler, closes every connection: when ``handle`` returns,
    unless it kept the connection with ``hold`` (then when the server stops). So no
    socket outlives the test whatever path a handler took out, and a loaded machine,
    where a handler may still be running when the block ends, warns of none.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._handlers: list[threading.Thread] = []
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._thread.join(timeout=10)
        self._listener.close()
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            connection.close()
        for handler in self._handlers:
            handler.join(timeout=10)

    def handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def hold(self, connection: socket.socket) -> None:
        """Keep ``connection`` open after ``handle`` returns, until the server stops."""
        with self._lock:
            self._held.append(connection)

    def _serve(self, connection: socket.socket) -> None:
        try:
            self.handle(connection)
        finally:
            with self._lock:
                keep = connection in self._held
            if not keep:
                connection.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            handler = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._handlers.append(handler)
            handler.start()
