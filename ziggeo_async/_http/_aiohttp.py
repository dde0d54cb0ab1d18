"""``AiohttpTransport``: an ``httpx2`` transport on aiohttp, for asyncio (the ``fast`` extra).

Why it exists: at dozens of requests in flight, httpcore's connection pool does
work per queued request per connection and takes a lock on every step, so stock
httpx 0.28 spent many times more CPU per request than aiohttp's pool (measured in
benchmarks/README.md). The public client type stays ``httpx2.AsyncClient``; only
the bytes move through aiohttp.

Two duties beyond moving bytes, both for the retry policy's sake:

* Truthful failures. A failure before the request could leave (connect refused,
  DNS, TLS verification, no connection in time) becomes ``httpx2.ConnectError`` or
  ``httpx2.ConnectTimeout``; anything after sending began becomes
  ``httpx2.RemoteProtocolError``, ``httpx2.ReadError`` or ``httpx2.ReadTimeout``.
  ``_http.classify_failure`` then reads it, as for every transport.
* No silent retries. aiohttp re-sends a GET or DELETE once when a kept-alive
  connection turns out dead, and ``ClientSession`` has no public switch for it.
  The public hook that reaches it is a client middleware: ``_no_silent_retry``
  re-raises those failures as ``_FailedAfterSending``, a type aiohttp's retry
  branch does not catch, so each call sends at most once.

Response bodies are streamed as they arrive, so the SDK's reader (``_http``) caps
them as it does for httpx2's own transport.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import aiohttp
import httpx2
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from .._core.defaults import MAX_RESPONSE_BYTES
from ._cache import remember

__all__ = ["AiohttpTransport"]


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


def _mapped(error: BaseException, request: httpx2.Request) -> httpx2.TransportError:
    """The httpx2 error that says truthfully how far ``request`` got."""
    if isinstance(error, _FailedAfterSending):
        error = error.cause
    message = _safe_message(error)
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx2.ConnectTimeout(message, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(message, request=request)
    if isinstance(error, asyncio.TimeoutError):  # aiohttp.SocketTimeoutError and its kin
        return httpx2.ReadTimeout(message, request=request)
    if isinstance(
        error,
        # ClientResponseError: aiohttp could not parse what the server sent back.
        (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError),
    ):
        return httpx2.RemoteProtocolError(message, request=request)
    if isinstance(error, aiohttp.InvalidURL):
        return httpx2.UnsupportedProtocol(message, request=request)
    # Any other connection failure: it may have reached the server.
    return httpx2.ReadError(message, request=request)


@functools.cache  # a handful of versions exist; each response asked for its text anew
def _version_text(version: aiohttp.HttpVersion | None) -> bytes:
    version = version or aiohttp.HttpVersion11
    return f"HTTP/{version.major}.{version.minor}".encode("ascii")


class _BodyStream(httpx2.AsyncByteStream):
    """An aiohttp response's body as it arrives; closing it releases the connection
    (back to the pool when the body was read to its end, closed otherwise)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            failure = _mapped(error, self._request)
        else:
            return
        raise failure

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx2 requests through one ``aiohttp.ClientSession``; asyncio only.

    ``limits.max_connections`` bounds the pool; ``verify`` is an SSL context or
    ``True`` for the same trust store httpx2 would use (the operating
    system's; ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured). Cookies are not kept, redirects not
    followed, proxies not read from the environment.
    """

    def __init__(
        self,
        *,
        limits: httpx2.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        limits = limits or httpx2.Limits()
        if isinstance(verify, ssl.SSLContext):
            self._ssl: ssl.SSLContext | bool = verify
        else:
            self._ssl = httpx2.create_ssl_context(verify=verify, trust_env=True)
        self._limit = limits.max_connections or 0  # aiohttp: 0 means unbounded
        self._keepalive = limits.keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}
        self._headers: dict[tuple[tuple[bytes, bytes], ...], CIMultiDictProxy[str]] = {}

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
            auto_decompress=False,  # httpx2 decodes Content-Encoding itself
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
            middlewares=(_no_silent_retry,),
        )
        return self._session

    def _url_for(self, url: httpx2.URL) -> yarl.URL:
        # Parsing a URL costs several microseconds, and batch jobs send to one URL.
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            parsed = remember(self._urls, text, yarl.URL(text, encoded=True))
        return parsed

    def _headers_for(self, raw: list[tuple[bytes, bytes]]) -> CIMultiDictProxy[str]:
        # Decoded once for each set of header lines (a batch sends one set per body
        # length); read-only, so what aiohttp is handed cannot change under a later request.
        key = tuple(raw)
        headers = self._headers.get(key)
        if headers is None:
            decoded = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
            headers = remember(self._headers, key, CIMultiDictProxy(CIMultiDict(decoded)))
        return headers

    def _timeout_for(self, request: httpx2.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout", {})
        connect, read, pool = spec.get("connect"), spec.get("read"), spec.get("pool")
        key = (connect, read, pool)
        timeout = self._timeouts.get(key)
        if timeout is None:
            # aiohttp's ``connect`` covers waiting for a pooled connection and connecting.
            waiting = None if connect is None or pool is None else connect + pool
            timeout = remember(
                self._timeouts,
                key,
                aiohttp.ClientTimeout(
                    total=None, connect=waiting, sock_connect=connect, sock_read=read
                ),
            )
        return timeout

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._session or self._open_session()
        body = await request.aread()  # the bytes already read, for the SDK's own requests
        try:
            response = await session.request(
                request.method,
                self._url_for(request.url),
                data=body or None,
                headers=self._headers_for(request.headers.raw),
                allow_redirects=False,
                timeout=self._timeout_for(request),
            )
        except (aiohttp.ClientError, _FailedAfterSending, asyncio.TimeoutError) as error:
            failure = _mapped(error, request)
        else:
            extensions = {
                # The version aiohttp read off the status line (it does the parsing).
                "http_version": _version_text(response.version),
                "reason_phrase": (response.reason or "").encode("latin-1"),
            }
            length = response.content_length
            if (
                length is not None
                and length <= MAX_RESPONSE_BYTES
                and response.headers.get("Content-Encoding", "identity") == "identity"
            ):
                # What every auth-token answer is: a small body of declared size, nothing
                # to inflate. Read here in one piece, which costs a fraction of streaming
                # it through httpx2; the reader's cap has nothing left to count.
                try:
                    body = await response.read()
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    failure = _mapped(error, request)
                else:
                    # stream=, then read(): content= would only work out again the
                    # Content-Length this branch already has, at a microsecond or two.
                    answer = httpx2.Response(
                        response.status,
                        headers=response.raw_headers,
                        stream=httpx2.ByteStream(body),
                        extensions=extensions,
                    )
                    answer.read()
                    return answer
            else:
                # stream=, not content=: no Content-Length to fill in, and the reader above
                # decides how much of the body it takes.
                return httpx2.Response(
                    response.status,
                    headers=response.raw_headers,
                    stream=_BodyStream(response, request),
                    extensions=extensions,
                )
        # Raised here, outside the except block, so the aiohttp error is neither its cause
        # nor its context: see _safe_message.
        raise failure

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
