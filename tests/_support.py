"""Helpers shared by the test modules (import as ``tests._support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import httpx

from ziggeo_async import AsyncZiggeo, RetryPolicy
from ziggeo_async.cli._serve import serving

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


class Unusual(BaseException):
    """A BaseException that is neither a cancellation nor a request to stop the program."""


class Unreadable(Mapping[str, Any]):
    """A batch item that raises ``error`` when it is read."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getitem__(self, key: str) -> Any:
        raise self.error

    def __iter__(self) -> Iterator[str]:
        raise self.error

    def __len__(self) -> int:
        return 1
