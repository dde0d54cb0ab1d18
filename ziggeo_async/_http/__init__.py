"""The SDK's one place for HTTP: the client that carries a request, and what its failures mean.

Every request goes through an httpx-family ``AsyncClient``, one of three kinds:

* the one the SDK owns: an ``httpx2.AsyncClient`` with the SDK's defaults (limits,
  timeouts, no redirects; ``trust_env`` as httpx2 has it, so proxies and
  ``SSL_CERT_FILE`` work as users know them). Its transport is httpx2's own, or with
  ``http_backend="aiohttp"`` the SDK's aiohttp transport (``_aiohttp.py``, the ``fast``
  extra);
* an ``httpx2.AsyncClient`` the user lends;
* a legacy ``httpx.AsyncClient`` (httpx 0.28) the user lends, recognised through
  ``sys.modules``, so the SDK never imports httpx itself.

Above this module there is one ``HTTPConnection`` with one ``send``, and one reading of
failures (``classify_failure``) that looks both families' exceptions up in one table:
a failure is never misread because it came from the other family.

Responses are read up to ``MAX_RESPONSE_BYTES`` of decoded body. An auth token is a few
KiB; a server that declares or sends more, or whose compressed body inflates past it,
gets ``ResponseTooLarge`` and its connection closed (an unread body is not reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
import os
import ssl
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final, Literal, cast

import httpx2

from .._core.arguments import timeout_seconds
from .._core.defaults import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_KEEPALIVE_CONNECTIONS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_RESPONSE_BYTES,
)
from .._core.errors import ConfigurationError, Failure, Refusal
from .._core.token_ids import shorten_token_ids_in
from ._cache import remember

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "HTTP_BACKENDS",
    "HTTPConnection",
    "ResponseTooLarge",
    "aiohttp_installed",
    "classify_failure",
    "client_timeout",
    "is_http_client",
    "open_owned_connection",
]

#: The ``http_backend=`` choices: httpx2's own transport, or aiohttp under it (asyncio only).
HTTP_BACKENDS: Final = ("httpx2", "aiohttp")
HTTPBackend = Literal["httpx2", "aiohttp"]

#: The owned client's pool, from the numbers in ``_core.defaults``.
DEFAULT_LIMITS: Final = httpx2.Limits(
    max_connections=DEFAULT_MAX_CONNECTIONS,
    max_keepalive_connections=DEFAULT_MAX_KEEPALIVE_CONNECTIONS,
)
#: The clients' ``timeout=`` default, from the numbers in ``_core.defaults``.
DEFAULT_TIMEOUT: Final = httpx2.Timeout(
    DEFAULT_TIMEOUT_SECONDS, connect=DEFAULT_CONNECT_TIMEOUT_SECONDS
)

# Methods whose requests declare a body, even an empty one (as httpx2 does).
_BODY_METHODS: Final = frozenset(("POST", "PUT", "PATCH", "QUERY"))
# A compressed body is decoded from pieces this small, so no single decompression step
# (httpx 0.28 inflates each piece it is given whole) can grow far past the cap.
_DECODE_PIECE_BYTES: Final = 1024


class ResponseTooLarge(Exception):  # noqa: N818 - an internal signal, mapped by the pipeline
    """The response was larger than the SDK reads, or stacked content codings."""


#: Exception class names, most specific first, and what they say about the request.
#: The same names exist in httpx2 and in legacy httpx; one table serves both families.
_FAILURE_BY_NAME: Final = (
    # Before a byte of the request left: no connection, or none came free in time.
    ("ConnectError", Failure.NOT_SENT),
    ("ConnectTimeout", Failure.NOT_SENT),
    ("PoolTimeout", Failure.NOT_SENT),
    # What trying again cannot fix.
    ("UnsupportedProtocol", Failure.PERMANENT),
    ("LocalProtocolError", Failure.PERMANENT),
    ("InvalidURL", Failure.PERMANENT),
    # Anything else may have reached Ziggeo. A body that fails to decode is no usable
    # response either; DecodingError is no TransportError, so it is named.
    ("TransportError", Failure.MAYBE_SENT),
    ("DecodingError", Failure.MAYBE_SENT),
)


def _legacy_httpx() -> ModuleType | None:
    """Legacy httpx, if something in this process imported it (never imported here)."""
    return sys.modules.get("httpx")


def _families() -> tuple[ModuleType, ...]:
    legacy = _legacy_httpx()
    return (httpx2,) if legacy is None else (httpx2, legacy)


def classify_failure(error: BaseException) -> tuple[Failure, bool] | None:
    """What an HTTP-stack exception says: ``(failure, is_timeout)``, or ``None`` if it is
    not one (a bug, a cancellation), whichever httpx family raised it."""
    for family in _families():
        for name, failure in _FAILURE_BY_NAME:
            if isinstance(error, getattr(family, name)):
                return failure, isinstance(error, family.TimeoutException)
    return None


def _family_of(client: object) -> ModuleType | None:
    """The httpx family ``client`` is an ``AsyncClient`` of: ``httpx2`` or legacy ``httpx``."""
    return next((f for f in _families() if isinstance(client, f.AsyncClient)), None)


def is_http_client(value: object) -> bool:
    """Whether ``value`` is an ``httpx2.AsyncClient`` or a legacy ``httpx.AsyncClient``."""
    return _family_of(value) is not None


def client_timeout(value: object, refuse: Refusal) -> httpx2.Timeout:
    """A client's ``timeout=`` as the ``httpx2.Timeout`` every request is sent with.

    A number of seconds is every phase's timeout; an ``httpx2.Timeout`` or a legacy
    ``httpx.Timeout`` has each phase checked as a number is (``timeout_seconds``). A
    phase of ``None`` is httpx's "no timeout" for it, and stays allowed.
    """
    legacy = _legacy_httpx()
    if isinstance(value, httpx2.Timeout):
        timeout = value
    elif legacy is not None and isinstance(value, legacy.Timeout):
        timeout = httpx2.Timeout(**value.as_dict())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return httpx2.Timeout(timeout_seconds("timeout", value, refuse))
    else:
        raise refuse(
            "timeout",
            f"expected a number of seconds or an httpx2.Timeout, got {type(value).__name__}",
        )
    for phase in ("connect", "read", "write", "pool"):
        seconds = getattr(timeout, phase)
        if seconds is not None:
            timeout_seconds(f"timeout.{phase}", seconds, refuse)
    return timeout


def aiohttp_installed() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


class HTTPConnection:
    """An httpx-family ``AsyncClient`` the SDK sends through; closed by us only if ``owned``.

    ``send`` hands the request to ``AsyncClient.send``, so the client's transport,
    proxies, event hooks and instrumentation see it as any other request.
    """

    __slots__ = ("_headers", "_timeouts", "_urls", "client", "owned")

    def __init__(self, client: Any, *, owned: bool) -> None:
        self.client = client
        self.owned = owned
        # The family logs every request at INFO, its URL whole: token ids are cut there
        # too, whatever logging the program set up (a filter on the family's own logger).
        family = _family_of(client)
        if family is not None:
            shorten_token_ids_in(logging.getLogger(family.__name__))
        # For the owned client only: what build_request would work out again on every
        # request (the URL parsed, the headers normalised and merged with the client's,
        # the timeout as a dict), made once. Batch jobs send to few URLs with fixed
        # headers, and build_request cost about a quarter of a request's CPU.
        self._urls: dict[str, httpx2.URL] = {}
        self._headers: dict[
            tuple[bytes, tuple[tuple[str, str], ...], int | None, bool], httpx2.Headers
        ] = {}
        self._timeouts: dict[tuple[float | None, ...], dict[str, float | None]] = {}

    def __repr__(self) -> str:
        return (
            f"<HTTPConnection {'owned' if self.owned else 'lent'} {type(self.client).__module__}>"
        )

    async def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None,
        headers: Mapping[str, str],
        timeout: httpx2.Timeout,
    ) -> httpx2.Response:
        """Send one request; the response's body read whole (up to ``MAX_RESPONSE_BYTES``)."""
        # A legacy client wants its own Timeout type; the 4-tuple reads the same in both.
        timeouts = (timeout.connect, timeout.read, timeout.write, timeout.pool)
        client = self.client
        if self.owned:
            request = self._owned_request(method, url, content, headers, timeouts)
        else:  # a lent client: its owner's base URL, headers and cookies apply
            request = client.build_request(
                method, url, content=content, headers=headers, timeout=timeouts
            )
        # auth=None: the SDK's Authorization header is the only one a lent client sends.
        response = await client.send(request, stream=True, auth=None, follow_redirects=False)
        # A legacy client's response is a legacy httpx.Response: the same interface.
        return cast("httpx2.Response", await _read_capped(response))

    def _owned_request(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: Mapping[str, str],
        timeouts: tuple[float | None, float | None, float | None, float | None],
    ) -> httpx2.Request:
        """The request ``build_request`` would make on the owned client (no cookies, base
        URL or params are ever set on it), from parts made once."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = remember(self._urls, url, httpx2.URL(url))
        # The complete headers, Content-Length included, made once for each host, header
        # set and body length. Request() copies them, so what hooks change stays theirs.
        length = len(content) if content else None
        key = (parsed.netloc, tuple(headers.items()), length, method in _BODY_METHODS)
        request_headers = self._headers.get(key)
        if request_headers is None:
            request_headers = remember(
                self._headers,
                key,
                _complete_headers(parsed.netloc, self.client.headers.raw, headers, length, method),
            )
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = remember(self._timeouts, timeouts, httpx2.Timeout(timeouts).as_dict())
        # stream=, with the headers complete: httpx2 adds none and encodes nothing again.
        request = httpx2.Request(
            method,
            parsed,
            headers=request_headers,
            stream=httpx2.ByteStream(content or b""),
            extensions={"timeout": timeout},
        )
        request.read()  # as build_request leaves it: request.content readable, by hooks too
        return request

    async def aclose(self) -> None:
        if self.owned:
            await self.client.aclose()


def _complete_headers(
    netloc: bytes,
    client_headers: list[tuple[bytes, bytes]],
    headers: Mapping[str, str],
    length: int | None,
    method: str,
) -> httpx2.Headers:
    """The headers ``build_request`` gives a request, in its order: Host, the client's
    defaults, the request's own, and Content-Length where there is a body to declare."""
    complete = httpx2.Headers([(b"Host", netloc), *client_headers])
    complete.update(headers)
    if length is not None:
        complete["Content-Length"] = str(length)
    elif method in _BODY_METHODS:  # httpx2 puts an empty body's length after Host
        host, *rest = complete.raw
        complete = httpx2.Headers([host, (b"Content-Length", b"0"), *rest])
    return complete


async def _read_capped(response: Any) -> Any:
    """``response`` with its body read, or ``ResponseTooLarge`` with the connection closed.

    A plain body with a Content-Length is framed by it (h11 reads no further), so it is
    read as is; a chunked or compressed one is counted as it arrives and as it inflates.
    """
    try:
        if response.is_stream_consumed:
            # A transport that answered from memory (the aiohttp transport's small bodies
            # of declared size among them): the body is decoded, only its size is left.
            if len(response.content) > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge("the response body is larger than the limit")
            return response
        headers = response.headers
        declared = headers.get("content-length")
        if (
            declared is not None
            and declared.isascii()
            and declared.isdigit()
            and int(declared) > MAX_RESPONSE_BYTES
        ):
            raise ResponseTooLarge(f"the response declares {declared} bytes")
        codings = [
            value.strip().lower()
            for value in headers.get_list("content-encoding", split_commas=True)
            if value.strip().lower() not in ("", "identity")
        ]
        if len(codings) > 1:
            raise ResponseTooLarge(f"the response stacks {len(codings)} content codings")
        if declared is not None and not codings:
            await response.aread()
            return response
        raw = bytearray()
        # aclosing: leaving early must finish the iterator here, not in the garbage collector.
        async with contextlib.aclosing(response.aiter_raw()) as chunks:
            async for chunk in chunks:
                raw += chunk
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise ResponseTooLarge("the response body grew past the limit")
    finally:
        # Closing a response whose body was not read to its end closes its connection.
        await response.aclose()
    # The httpx family the response comes from (``httpx2`` or legacy ``httpx``).
    family = sys.modules[type(response).__module__.partition(".")[0]]
    if codings:
        await _check_inflated_size(family, response, bytes(raw))
    whole = type(response)(
        response.status_code,
        headers=headers,
        stream=family.ByteStream(bytes(raw)),
        request=response.request,
        extensions=response.extensions,
    )
    await whole.aread()
    return whole


async def _check_inflated_size(family: ModuleType, response: Any, raw: bytes) -> None:
    """Decode ``raw`` in small pieces, counting, and refuse it once past the limit."""
    probe = type(response)(
        response.status_code,
        headers=response.headers,
        stream=_pieces_stream(family)(raw),
        request=response.request,
    )
    size = 0
    async with contextlib.aclosing(probe.aiter_bytes()) as pieces:
        async for piece in pieces:
            size += len(piece)
            if size > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge("the response inflates past the limit")


class _Pieces:
    """An async iterator over ``body`` in ``_DECODE_PIECE_BYTES`` pieces; mixed into a
    family's ``AsyncByteStream`` (``_pieces_stream``), a stream that is its own iterator.

    Not an async generator: one left early needs no closing, so the garbage collector
    finds nothing to finalise (httpx 0.28 does not close the iterators it is given).
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._start = 0

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        start = self._start
        if start >= len(self._body):
            raise StopAsyncIteration
        self._start = start + _DECODE_PIECE_BYTES
        return self._body[start : self._start]


@functools.cache
def _pieces_stream(family: ModuleType) -> type[Any]:
    """A byte stream class of ``family`` that yields a body in small pieces."""
    return type("PieceStream", (_Pieces, family.AsyncByteStream), {})


_TRUST_VARIABLES: Final = ("SSL_CERT_FILE", "SSL_CERT_DIR")
_trust: dict[tuple[str | None, ...], ssl.SSLContext] = {}


def trust_context() -> ssl.SSLContext:
    """The SSL context httpx2 would make (its trust store, ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` honoured), made once per process for each value of those variables.

    Loading a trust store costs 20 to 40 ms of CPU; a program that makes a client per
    request (a web handler, say) paid that on every one. A context is safe to share.
    """
    key = tuple(os.environ.get(name) for name in _TRUST_VARIABLES)
    context = _trust.get(key)
    if context is None:
        context = _trust[key] = httpx2.create_ssl_context(trust_env=True)
    return context


def open_owned_connection(timeout: httpx2.Timeout, backend: str) -> HTTPConnection:
    """The ``httpx2.AsyncClient`` the SDK owns, on ``backend`` (one of ``HTTP_BACKENDS``).

    Made on first use, inside the running event loop that will use it.
    """
    transport: httpx2.AsyncBaseTransport | None = None
    if backend == "aiohttp":
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "http_backend='aiohttp' runs on asyncio only; use the default under trio"
            ) from None
        from ._aiohttp import AiohttpTransport  # noqa: PLC0415 - the optional extra

        transport = AiohttpTransport(limits=DEFAULT_LIMITS, verify=trust_context())
    client = httpx2.AsyncClient(
        timeout=timeout,
        limits=DEFAULT_LIMITS,
        follow_redirects=False,
        transport=transport,
        verify=trust_context(),
    )
    return HTTPConnection(client, owned=True)
