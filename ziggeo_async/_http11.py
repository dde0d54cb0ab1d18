"""One HTTP/1.1 connection on asyncio, for the connection pools the SDK owns.

httpcore's pool makes its connections through ``create_connection`` (the hook its
own proxy pools override). Under asyncio the SDK's pool returns this class: one
request at a time on one ``AsyncioStream``, the request written in one piece, the
response parsed here. httpcore's own connection spends most of a request's client
CPU around the bytes (two anyio locks, a cancellation shield and six trace events
per request, and h11's general state machine); this one does what an API client
needs and refuses the rest. Under trio the pool makes httpcore's own connections.

What it accepts from a server is what h11 accepts, minus what an API never sends:
a status line ``HTTP/1.x NNN reason``, header fields ``name: value`` (no obsolete
line folding), a body framed by ``Content-Length`` (one value), by
``Transfer-Encoding: chunked``, or by the end of the connection; interim 1xx
responses are skipped. Anything else is ``httpcore.RemoteProtocolError``, and the
connection is closed. A failure or cancellation at any point closes the connection,
so a half-read response is never mistaken for the next one.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import AsyncIterable
from enum import Enum
from typing import Final, cast

import httpcore

from ._network import NetworkBackend

__all__ = ["AsyncioHTTP11Connection"]

# A response head (status line and header fields) larger than this is refused.
_MAX_HEAD: Final = 64 * 1024
_READ_SIZE: Final = 64 * 1024
# The grammar below is h11's (RFC 9110/9112 as h11 0.16 reads them), narrowed to HTTP/1.x.
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ((?:[ \t]|[^\x00\s])*))?")
_FIELD_NAME: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE: Final = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
# What may not appear in a request target: it would end the request line.
_TARGET_BREAK: Final = re.compile(rb"[\x00\s]")
_CHUNK_SIZE: Final = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;.*)?[ \t]*")
_NO_BODY_STATUSES: Final = frozenset({204, 304})
# A Content-Length of more digits than this is refused (no body here is an exabyte).
_MAX_LENGTH_DIGITS: Final = 18


class _State(Enum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    IDLE = "IDLE"
    CLOSED = "CLOSED"


class _Framing(Enum):
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until close"


def _request_head(request: httpcore.Request) -> bytes:
    target = request.url.target
    if _TARGET_BREAK.search(target) or not _FIELD_NAME.fullmatch(request.method):
        raise httpcore.LocalProtocolError("the request method or target is malformed")
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method, target)]
    for name, value in request.headers:
        if not _FIELD_NAME.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise httpcore.LocalProtocolError("a request header has an invalid name or value")
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


def _framing_fields(headers: list[tuple[bytes, bytes]]) -> tuple[set[bytes], bytes | None, bool]:
    """The Content-Length values, the Transfer-Encoding, and whether it says Connection: close."""
    lengths: set[bytes] = set()
    transfer_encoding: bytes | None = None
    close = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.update(part.strip() for part in value.split(b","))
        elif lowered == b"transfer-encoding":
            if transfer_encoding is not None:
                raise httpcore.RemoteProtocolError("the response has two Transfer-Encoding fields")
            transfer_encoding = value.lower()
        elif lowered == b"connection" and _has_token(value, b"close"):
            close = True
    return lengths, transfer_encoding, close


def _framing(
    request: httpcore.Request, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[_Framing, int, bool]:
    """How the body ends, its length if framed by one, and whether the response lets the
    connection be reused after it."""
    lengths, transfer_encoding, close = _framing_fields(headers)
    if request.method == b"HEAD" or status in _NO_BODY_STATUSES:
        return _Framing.LENGTH, 0, not close
    if transfer_encoding is not None:
        if lengths:
            raise httpcore.RemoteProtocolError(
                "the response has both Content-Length and Transfer-Encoding"
            )
        if transfer_encoding != b"chunked":
            raise httpcore.RemoteProtocolError(
                "the response uses a Transfer-Encoding other than chunked"
            )
        return _Framing.CHUNKED, 0, not close
    if lengths:
        (length,) = lengths if len(lengths) == 1 else (b"",)
        if not length.isdigit() or len(length) > _MAX_LENGTH_DIGITS:
            raise httpcore.RemoteProtocolError("the response has an invalid Content-Length")
        return _Framing.LENGTH, int(length), not close
    return _Framing.UNTIL_CLOSE, 0, False


def _has_token(value: bytes, token: bytes) -> bool:
    return token in (part.strip().lower() for part in value.split(b","))


class AsyncioHTTP11Connection(httpcore.AsyncConnectionInterface):
    """A connection to one origin, made on first use, reused while the server allows."""

    def __init__(
        self,
        origin: httpcore.Origin,
        *,
        ssl_context: ssl.SSLContext,
        keepalive_expiry: float | None,
        network_backend: NetworkBackend,
    ) -> None:
        self._origin = origin
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._network_backend = network_backend
        self._stream: httpcore.AsyncNetworkStream | None = None
        self._state = _State.NEW
        self._expire_at: float | None = None
        self._buffer = bytearray()
        self._requests = 0

    def __repr__(self) -> str:
        return f"<AsyncioHTTP11Connection [{self.info()}]>"

    # -- what the pool asks ------------------------------------------------------------

    def info(self) -> str:
        return (
            f"{str(self._origin)!r}, HTTP/1.1, {self._state.value}, Request Count: {self._requests}"
        )

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self._origin

    def is_available(self) -> bool:
        return self._state is _State.IDLE

    def has_expired(self) -> bool:
        if self._state is not _State.IDLE:
            return False
        if self._expire_at is not None and time.monotonic() > self._expire_at:
            return True
        # Idle and readable: the server closed it, or sent what nobody asked for.
        return bool(self._buffer) or bool(
            self._stream and self._stream.get_extra_info("is_readable")
        )

    def is_idle(self) -> bool:
        return self._state is _State.IDLE

    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    async def aclose(self) -> None:
        self._state = _State.CLOSED
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    # -- one request -----------------------------------------------------------------

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if not self.can_handle_request(request.url.origin):
            raise RuntimeError(
                f"a request to {request.url.origin} reached a connection to {self._origin}"
            )
        timeouts = request.extensions.get("timeout", {})
        if self._state is _State.NEW:
            self._state = _State.ACTIVE
            try:
                self._stream = await self._connect(request, timeouts.get("connect"))
            except BaseException:
                self._state = _State.CLOSED
                raise
        elif self._state is _State.IDLE:
            self._state = _State.ACTIVE
            self._expire_at = None
        else:
            raise httpcore.ConnectionNotAvailable
        self._requests += 1
        try:
            request_says_close = await self._send(request, timeouts.get("write"))
            read_timeout = timeouts.get("read")
            http10, status, reason, headers = await self._receive_head(read_timeout)
            framing, length, reusable = _framing(request, status, headers)
            reusable = reusable and not (request_says_close or http10)
        except BaseException:
            await self.aclose()
            raise
        return httpcore.Response(
            status,
            headers=headers,
            content=_ResponseBody(self, framing, length, read_timeout, reusable=reusable),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def _connect(
        self, request: httpcore.Request, timeout: float | None
    ) -> httpcore.AsyncNetworkStream:
        host = self._origin.host.decode("ascii")
        stream = await self._network_backend.connect_tcp(host, self._origin.port, timeout)
        if self._origin.scheme == b"https":
            server_hostname = request.extensions.get("sni_hostname") or host
            stream = await stream.start_tls(self._ssl_context, server_hostname, timeout)
        return stream

    async def _send(self, request: httpcore.Request, timeout: float | None) -> bool:
        """Write the request; True if it asks for the connection to close after it."""
        assert self._stream is not None
        head = _request_head(request)
        declared_length: int | None = None
        chunked = close = False
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length" and value.isdigit():
                declared_length = int(value)
            elif lowered == b"transfer-encoding":
                chunked = _has_token(value, b"chunked")
            elif lowered == b"connection":
                close = _has_token(value, b"close")
        parts = [head]
        sent = 0
        async for chunk in cast("AsyncIterable[bytes]", request.stream):  # async, from httpx
            if chunk:
                sent += len(chunk)
                parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            parts.append(b"0\r\n\r\n")
        elif sent != (declared_length or 0):
            # The server would read the difference as the start of another request.
            raise httpcore.LocalProtocolError(
                "the request body does not match its Content-Length (or has no framing header)"
            )
        # One write: over TLS, one record for the whole request when it is small.
        await self._stream.write(b"".join(parts), timeout)
        return close

    async def _fill(self, timeout: float | None) -> bool:
        """Read more into the buffer; False when the server has closed the connection."""
        assert self._stream is not None
        data = await self._stream.read(_READ_SIZE, timeout)
        self._buffer += data
        return bool(data)

    async def _receive_head(
        self, timeout: float | None
    ) -> tuple[bool, int, bytes, list[tuple[bytes, bytes]]]:
        """The final response's head: (HTTP/1.0?, status, reason, header fields)."""
        while True:  # interim 1xx responses are read and skipped
            buffer = self._buffer
            searched = 0
            while (end := buffer.find(b"\r\n\r\n", max(0, searched - 3))) < 0:
                if len(buffer) > _MAX_HEAD:
                    raise httpcore.RemoteProtocolError("the response head is too large")
                searched = len(buffer)
                if not await self._fill(timeout):
                    raise httpcore.RemoteProtocolError(
                        "Server disconnected without sending a response."
                        if not buffer
                        else "Server disconnected in the middle of the response head."
                    )
            if end > _MAX_HEAD:
                raise httpcore.RemoteProtocolError("the response head is too large")
            lines = bytes(buffer[:end]).split(b"\r\n")
            del buffer[: end + 4]
            status_line = _STATUS_LINE.fullmatch(lines[0])
            if status_line is None:
                raise httpcore.RemoteProtocolError(
                    "the response does not start with an HTTP/1.x status line"
                )
            minor, code, reason = status_line.groups()
            headers = [self._field(line) for line in lines[1:]]
            status = int(code)
            if status == 101:  # noqa: PLR2004 - Switching Protocols: never asked for here
                raise httpcore.RemoteProtocolError("the server switched protocols unasked")
            if status >= 200:  # noqa: PLR2004 - the final response
                return minor == b"0", status, reason or b"", headers

    @staticmethod
    def _field(line: bytes) -> tuple[bytes, bytes]:
        name, colon, value = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise httpcore.RemoteProtocolError("a response header field is malformed")
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            raise httpcore.RemoteProtocolError("a response header value has a control character")
        return name, value

    # -- the response body (read by _ResponseBody) ----------------------------------

    async def _read_body(self, framing: _Framing, length: int, timeout: float | None) -> bytes:
        if framing is _Framing.LENGTH:
            return await self._read_exactly(length, timeout)
        if framing is _Framing.CHUNKED:
            return await self._read_chunked(timeout)
        while await self._fill(timeout):  # until the server closes the connection
            pass
        body = bytes(self._buffer)
        self._buffer.clear()
        return body

    async def _read_exactly(self, length: int, timeout: float | None) -> bytes:
        buffer = self._buffer
        while len(buffer) < length:
            if not await self._fill(timeout):
                raise httpcore.RemoteProtocolError(
                    "peer closed connection without sending complete message body: "
                    f"received {len(buffer)} bytes, expected {length}"
                )
        body = bytes(buffer[:length])
        del buffer[:length]
        return body

    async def _read_line(self, timeout: float | None) -> bytes:
        buffer = self._buffer
        while (end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > _MAX_HEAD:
                raise httpcore.RemoteProtocolError("a chunked body line is too long")
            if not await self._fill(timeout):
                raise httpcore.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        return line

    async def _read_chunked(self, timeout: float | None) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = _CHUNK_SIZE.fullmatch(await self._read_line(timeout))
            if size_line is None:
                raise httpcore.RemoteProtocolError("a chunk size line is malformed")
            size = int(size_line.group(1), 16)
            if size == 0:
                while await self._read_line(timeout):  # trailer fields, then an empty line
                    pass
                return b"".join(chunks)
            chunks.append(await self._read_exactly(size, timeout))
            if await self._read_line(timeout):
                raise httpcore.RemoteProtocolError("a chunk is longer than its size line says")

    def _response_complete(self, *, reusable: bool) -> bool:
        """Back to idle if the server allows it; True if the connection is reusable."""
        if reusable and not self._buffer and self._state is _State.ACTIVE:
            self._state = _State.IDLE
            if self._keepalive_expiry is not None:
                self._expire_at = time.monotonic() + self._keepalive_expiry
            return True
        return False


class _ResponseBody:
    """The body as httpcore's response stream: one piece, read when first asked for.

    A plain async iterator rather than an async generator: one left unfinished (a
    cancelled read) would be finalized by the garbage collector, which trio reports.
    The SDK reads every body whole anyway; they are small.
    """

    def __init__(
        self,
        connection: AsyncioHTTP11Connection,
        framing: _Framing,
        length: int,
        timeout: float | None,
        *,
        reusable: bool,
    ) -> None:
        self._connection = connection
        self._framing = framing
        self._length = length
        self._timeout = timeout
        self._reusable = reusable
        self._complete = False
        self._closed = False

    def __aiter__(self) -> _ResponseBody:
        return self

    async def __anext__(self) -> bytes:
        if self._complete or self._closed:
            raise StopAsyncIteration
        try:
            body = await self._connection._read_body(  # noqa: SLF001
                self._framing, self._length, self._timeout
            )
        except BaseException:
            await self.aclose()
            raise
        self._complete = True
        return body

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        connection = self._connection
        if not (self._complete and connection._response_complete(reusable=self._reusable)):  # noqa: SLF001
            await connection.aclose()

    def __repr__(self) -> str:
        return f"<_ResponseBody {self._framing.value}>"
