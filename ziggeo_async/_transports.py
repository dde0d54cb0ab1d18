"""``AiohttpTransport``: an ``httpx`` transport on aiohttp, for asyncio (the ``fast`` extra).

Why it exists: at dozens of requests in flight, httpcore's connection pool does
work per queued request per connection and takes a lock on every step, so stock
httpx spends many times more CPU per request than aiohttp's pool (measured in
benchmarks/README.md). The public client type stays ``httpx.AsyncClient``; only
the bytes move through aiohttp.

Two duties beyond moving bytes, both for the retry policy's sake:

* Truthful failures. A failure before the request could leave (connect refused,
  DNS, TLS verification, no connection in time) becomes ``httpx.ConnectError`` or
  ``httpx.ConnectTimeout``; anything after sending began becomes
  ``httpx.RemoteProtocolError``, ``httpx.ReadError`` or ``httpx.ReadTimeout``.
  ``_pipeline.classify_transport_error`` then decides, as for every transport.
* No silent retries. aiohttp re-sends a GET or DELETE once when a kept-alive
  connection turns out dead, and ``ClientSession`` has no public switch for it.
  The public hook that reaches it is a client middleware: ``_no_silent_retry``
  re-raises those failures as ``_FailedAfterSending``, a type aiohttp's retry
  branch does not catch, so each call sends at most once.

Response bodies are read whole: this transport serves the SDK's own small JSON
bodies, not streaming downloads.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import httpx
import yarl

__all__ = ["AiohttpTransport"]

_HTTP_1_1: Final = b"HTTP/1.1"
_URL_CACHE_SIZE: Final = 64


class _FailedAfterSending(Exception):  # noqa: N818 - an internal carrier, not an error type
    """A connection failure once the request was on its way; carries aiohttp's error."""

    def __init__(self, cause: aiohttp.ClientError) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def _no_silent_retry(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # not sent; aiohttp never retries these either
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as error:
        raise _FailedAfterSending(error) from error


# A URL's path and query, as aiohttp writes URLs into its messages.
_URL_PATH: Final = re.compile(r"(https?://[^/\s'\"]+)/[^\s'\"]*")


def _safe_message(error: BaseException) -> str:
    """What went wrong, without the request URL's path (a token id) or its headers.

    aiohttp puts the full URL in some messages (a connect timeout, a response it could
    not parse), and a ``ClientResponseError`` holds the request's headers, the
    Authorization header among them; so the mapped error carries only this text, and
    is raised without the aiohttp error in its chain.
    """
    detail = error.message if isinstance(error, aiohttp.ClientResponseError) else str(error)
    detail = _URL_PATH.sub(r"\1/…", detail)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def _mapped(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error that says truthfully how far ``request`` got."""
    if isinstance(error, _FailedAfterSending):
        error = error.cause
    message = _safe_message(error)
    mapped: httpx.TransportError
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout(message, request=request)
    elif isinstance(error, aiohttp.ClientConnectorError):
        mapped = httpx.ConnectError(message, request=request)
    elif isinstance(error, asyncio.TimeoutError):  # aiohttp.SocketTimeoutError and its kin
        mapped = httpx.ReadTimeout(message, request=request)
    elif isinstance(
        error,
        # ClientResponseError: aiohttp could not parse what the server sent back.
        (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError),
    ):
        mapped = httpx.RemoteProtocolError(message, request=request)
    elif isinstance(error, aiohttp.InvalidURL):
        mapped = httpx.UnsupportedProtocol(message, request=request)
    else:  # any other connection failure: it may have reached the server
        mapped = httpx.ReadError(message, request=request)
    return mapped


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one ``aiohttp.ClientSession``; asyncio only.

    ``limits.max_connections`` bounds the pool; ``verify`` is an SSL context or
    ``True`` for the same trust store httpx would use (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` honoured, else certifi). Cookies are not kept, redirects not
    followed, proxies not read from the environment.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        limits = limits or httpx.Limits()
        if isinstance(verify, ssl.SSLContext):
            self._ssl: ssl.SSLContext | bool = verify
        else:
            self._ssl = httpx.create_ssl_context(verify=verify, trust_env=True)
        self._limit = limits.max_connections or 0  # aiohttp: 0 means unbounded
        self._keepalive = limits.keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}

    def __repr__(self) -> str:
        return f"<AiohttpTransport limit={self._limit}>"

    def _open_session(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop that will own it.
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            ssl=self._ssl,
            keepalive_timeout=self._keepalive if self._keepalive is not None else 15.0,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # httpx decodes Content-Encoding itself
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
            middlewares=(_no_silent_retry,),
        )
        return self._session

    def _url_for(self, url: httpx.URL) -> yarl.URL:
        # Parsing a URL costs several microseconds, and batch jobs send to one URL.
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            parsed = self._urls[text] = yarl.URL(text, encoded=True)
        return parsed

    def _timeout_for(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout", {})
        connect, read, pool = spec.get("connect"), spec.get("read"), spec.get("pool")
        key = (connect, read, pool)
        timeout = self._timeouts.get(key)
        if timeout is None:
            # aiohttp's ``connect`` covers waiting for a pooled connection and connecting.
            waiting = None if connect is None or pool is None else connect + pool
            timeout = aiohttp.ClientTimeout(
                total=None, connect=waiting, sock_connect=connect, sock_read=read
            )
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open_session()
        body = await request.aread()  # the bytes already read, for the SDK's own requests
        try:
            async with session.request(
                request.method,
                self._url_for(request.url),
                data=body or None,
                headers=[
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in request.headers.raw
                ],
                allow_redirects=False,
                timeout=self._timeout_for(request),
            ) as response:
                content = await response.read()
                # stream=, not content=: no Content-Length to fill in, the body is decoded once.
                return httpx.Response(
                    response.status,
                    headers=response.raw_headers,
                    stream=httpx.ByteStream(content),
                    extensions={
                        "http_version": _HTTP_1_1,
                        "reason_phrase": (response.reason or "").encode("latin-1"),
                    },
                )
        except (aiohttp.ClientError, _FailedAfterSending, asyncio.TimeoutError) as error:
            failure = _mapped(error, request)
        # Raised here, outside the except block, so the aiohttp error is neither its cause
        # nor its context: see _safe_message.
        raise failure

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
