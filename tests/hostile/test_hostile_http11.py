"""The SDK's HTTP/1.1 connection, on a scripted stream: what it writes, what it accepts.

The stream hands the connection the server's bytes in pieces the test chooses, so
every split of a response (mid-line, mid-chunk, byte by byte) is exercised without a
socket. Loopback servers drive the same class in tests/test_network.py and the
fault suite.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile._profiles import HOSTILE
from ziggeo_async._http11 import AsyncioHTTP11Connection
from ziggeo_async._network import NetworkBackend

pytestmark = pytest.mark.anyio

ORIGIN = httpcore.Origin(b"http", b"api.test", 80)
URL = httpcore.URL("http://api.test/v1/authtokens/")


class ScriptedStream(httpcore.AsyncNetworkStream):
    """Gives the connection ``replies`` one read at a time, then end of stream."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = list(replies)
        self.written = b""
        self.closed = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self.replies:
            return b""
        reply = self.replies.pop(0)
        if len(reply) > max_bytes:
            self.replies.insert(0, reply[max_bytes:])
            reply = reply[:max_bytes]
        return reply

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> Any:
        return bool(self.replies) if info == "is_readable" else None


class ScriptedBackend(NetworkBackend):
    def __init__(self, stream: ScriptedStream) -> None:
        super().__init__()
        self.stream = stream
        self.connects = 0

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connects += 1
        return self.stream


def _connection(
    replies: list[bytes], *, keepalive_expiry: float | None = None
) -> tuple[AsyncioHTTP11Connection, ScriptedStream]:
    stream = ScriptedStream(replies)
    connection = AsyncioHTTP11Connection(
        ORIGIN,
        ssl_context=ssl.create_default_context(),
        keepalive_expiry=keepalive_expiry,
        network_backend=ScriptedBackend(stream),
    )
    return connection, stream


def _request(
    method: bytes = b"GET",
    content: bytes | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> httpcore.Request:
    return httpcore.Request(method, URL, headers=headers or [], content=content)


async def _exchange(
    connection: AsyncioHTTP11Connection, request: httpcore.Request | None = None
) -> tuple[httpcore.Response, bytes]:
    response = await connection.handle_async_request(request or _request())
    try:
        body = await response.aread()
    finally:
        await response.aclose()
    return response, body


# -- what it writes ------------------------------------------------------------------


async def test_the_request_goes_out_in_one_write_as_http11(anyio_backend: str) -> None:
    connection, stream = _connection([b"HTTP/1.1 204 No Content\r\n\r\n"])
    request = _request(
        b"POST",
        b"session_limit=1",
        [(b"Host", b"api.test"), (b"Content-Type", b"text/plain"), (b"Content-Length", b"15")],
    )
    await _exchange(connection, request)
    assert stream.written == (
        b"POST /v1/authtokens/ HTTP/1.1\r\nHost: api.test\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 15\r\n\r\nsession_limit=1"
    )


async def test_a_streamed_body_is_sent_chunked(anyio_backend: str) -> None:
    async def parts() -> Any:
        yield b"ab"
        yield b""
        yield b"cde"

    connection, stream = _connection([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    request = httpcore.Request(
        b"POST", URL, headers=[(b"Transfer-Encoding", b"chunked")], content=parts()
    )
    await _exchange(connection, request)
    assert stream.written.endswith(
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    )


@pytest.mark.parametrize(
    "headers",
    [[(b"X-Bad", b"a\r\nInjected: yes")], [(b"Bad Name", b"v")], [(b"X-Nul", b"a\x00b")]],
)
async def test_a_header_that_would_break_the_request_is_refused_before_writing(
    anyio_backend: str, headers: list[tuple[bytes, bytes]]
) -> None:
    connection, stream = _connection([])
    with pytest.raises(httpcore.LocalProtocolError):
        await connection.handle_async_request(_request(headers=headers))
    assert stream.written == b""
    assert connection.is_closed()


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"body without a framing header", []),
        (b"longer than declared", [(b"Content-Length", b"3")]),
        (b"", [(b"Content-Length", b"3")]),
    ],
)
async def test_a_body_its_headers_do_not_frame_is_refused_before_writing(
    anyio_backend: str, content: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    connection, stream = _connection([])
    with pytest.raises(httpcore.LocalProtocolError):
        await connection.handle_async_request(_request(b"POST", content, headers))
    assert stream.written == b""


# -- what it accepts ------------------------------------------------------------------

framings = st.sampled_from(["length", "chunked", "close"])
field_names = st.from_regex(rb"\A[A-Za-z][A-Za-z0-9-]{0,12}\Z").filter(
    lambda name: (
        name.lower() not in (b"content-length", b"transfer-encoding", b"connection", b"host")
    )
)
field_values = st.from_regex(rb"\A[!-~]([ -~]{0,20}[!-~])?\Z")


@settings(HOSTILE, max_examples=max(1, HOSTILE.max_examples // 3))
@given(
    status=st.integers(200, 599).filter(lambda status: status not in (204, 304)),
    fields=st.lists(st.tuples(field_names, field_values), max_size=5),
    body=st.binary(max_size=300),
    framing=framings,
    chunk_sizes=st.lists(st.integers(1, 50), min_size=1, max_size=8),
    split_at=st.lists(st.integers(1, 40), min_size=1, max_size=20),
    interim=st.booleans(),
)
def test_any_well_formed_response_is_read_whole_however_it_arrives(
    *,
    status: int,
    fields: list[tuple[bytes, bytes]],
    body: bytes,
    framing: str,
    chunk_sizes: list[int],
    split_at: list[int],
    interim: bool,
) -> None:
    import anyio

    head = b"HTTP/1.1 %d Something\r\n" % status
    head += b"".join(b"%s: %s\r\n" % field for field in fields)
    if framing == "length":
        wire = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    elif framing == "chunked":
        encoded, rest, sizes = b"", body, iter(chunk_sizes * 400)
        while rest:
            size = next(sizes)
            encoded += b"%X;ext=1\r\n%s\r\n" % (
                min(size, len(rest)),
                rest[:size],
            )
            rest = rest[size:]
        wire = head + b"Transfer-Encoding: chunked\r\n\r\n" + encoded + b"0\r\nTrailer: t\r\n\r\n"
    else:
        wire = head + b"\r\n" + body
    if interim:
        wire = b"HTTP/1.1 100 Continue\r\n\r\n" + wire
    pieces, offset, sizes = [], 0, iter(split_at * 400)
    while offset < len(wire):
        size = next(sizes)
        pieces.append(wire[offset : offset + size])
        offset += size

    async def exchange() -> None:
        connection, stream = _connection(pieces)
        response, received = await _exchange(connection)
        assert response.status == status
        assert response.headers[: len(fields)] == fields
        assert received == body
        assert connection.is_idle() is (framing != "close")
        assert stream.closed is (framing == "close")

    anyio.run(exchange)


async def test_a_kept_alive_connection_serves_the_next_request(anyio_backend: str) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    connection, stream = _connection([reply, reply])
    for _ in range(2):
        _response, body = await _exchange(connection)
        assert body == b"ok"
        assert connection.is_available()
    assert stream.written.count(b"GET ") == 2
    assert "Request Count: 2" in connection.info()
    assert "IDLE" in repr(connection)


@pytest.mark.parametrize(
    ("reply", "request_headers"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok", []),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", []),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", [(b"Connection", b"close")]),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", []),
    ],
    ids=["server says close", "HTTP/1.0", "request says close", "bytes after the body"],
)
async def test_a_connection_that_may_not_be_reused_is_closed_after_the_response(
    anyio_backend: str, reply: bytes, request_headers: list[tuple[bytes, bytes]]
) -> None:
    connection, stream = _connection([reply])
    _response, body = await _exchange(connection, _request(headers=request_headers))
    assert body == b"ok"
    assert connection.is_closed()
    assert stream.closed


@pytest.mark.parametrize(
    ("method", "reply"),
    [
        (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
        (b"GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n"),
        (b"GET", b"HTTP/1.1 304 Not Modified\r\n\r\n"),
    ],
)
async def test_responses_without_a_body_read_none(
    anyio_backend: str, method: bytes, reply: bytes
) -> None:
    connection, _stream = _connection([reply])
    _response, body = await _exchange(connection, _request(method))
    assert body == b""
    assert connection.is_idle()


MALFORMED = {
    "nothing at all": [],
    "HTTP/2 status line": [b"HTTP/2 200 OK\r\n\r\n"],
    "four-digit status": [b"HTTP/1.1 2000 OK\r\n\r\n"],
    "not HTTP": [b"SSH-2.0-OpenSSH\r\n\r\n"],
    "field without a colon": [b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n"],
    "folded field": [b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n"],
    "space before the colon": [b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"],
    "bare LF in a value": [b"HTTP/1.1 200 OK\r\nX-A: 1\n2\r\nContent-Length: 0\r\n\r\n"],
    "two Content-Lengths": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"],
    "Content-Length list": [b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok"],
    "negative Content-Length": [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
    "huge Content-Length": [b"HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n"],
    "length and chunked": [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ],
    "gzip transfer coding": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"],
    "two Transfer-Encodings": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
    ],
    "bad chunk size": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    "chunk longer than said": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"
    ],
    "switching protocols": [b"HTTP/1.1 101 Switching Protocols\r\n\r\n"],
    "head cut short": [b"HTTP/1.1 200 OK\r\nContent-Le"],
    "body cut short": [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
    "chunked body cut short": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"],
    "endless head": [b"HTTP/1.1 200 OK\r\n" + b"X-A: " + b"a" * (70 * 1024)],
    "endless chunk line": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * (70 * 1024)
    ],
}


@pytest.mark.parametrize("replies", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_response_is_a_remote_protocol_error_and_closes(
    anyio_backend: str, replies: list[bytes]
) -> None:
    connection, stream = _connection(replies)
    with pytest.raises(httpcore.RemoteProtocolError):
        await _exchange(connection)
    assert connection.is_closed()
    assert stream.closed


async def test_a_response_abandoned_part_way_closes_the_connection(anyio_backend: str) -> None:
    connection, stream = _connection([b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", b"cd"])
    response = await connection.handle_async_request(_request())
    await response.aclose()  # before reading any of the body
    assert connection.is_closed()
    assert stream.closed


async def test_a_busy_connection_refuses_a_second_request(anyio_backend: str) -> None:
    connection, _stream = _connection([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    response = await connection.handle_async_request(_request())
    assert not connection.is_available()
    with pytest.raises(httpcore.ConnectionNotAvailable):
        await connection.handle_async_request(_request())
    await response.aclose()


async def test_a_request_for_another_origin_is_a_bug_not_a_send(anyio_backend: str) -> None:
    connection, stream = _connection([])
    other = httpcore.Request(b"GET", httpcore.URL("http://elsewhere.test/"))
    with pytest.raises(RuntimeError, match="elsewhere"):
        await connection.handle_async_request(other)
    assert stream.written == b""


async def test_an_idle_connection_expires_with_its_keepalive_or_stray_bytes(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ziggeo_async._http11 as http11

    now = [1000.0]
    monkeypatch.setattr(http11.time, "monotonic", lambda: now[0])
    connection, stream = _connection(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], keepalive_expiry=5.0
    )
    assert not connection.has_expired()  # not yet connected
    await _exchange(connection)
    assert not connection.has_expired()
    now[0] += 6
    assert connection.has_expired()
    now[0] -= 6
    stream.replies.append(b"unasked")
    assert connection.has_expired()


# -- never more lenient than h11 -----------------------------------------------------


def _h11_reading(wire: bytes, method: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """What h11 makes of ``wire`` as the answer to ``method``: None if it refuses it."""
    import h11

    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "api.test")]))
    client.send(h11.EndOfMessage())
    client.receive_data(wire)
    client.receive_data(b"")
    status, headers, body = 0, [], b""
    try:
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers.raw_items())
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, body
            elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return None
    except h11.RemoteProtocolError:
        return None


interesting_bytes = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b";", b",", b"0", b"9", b"a", b"-", b"\x00", b"\x0b"]
)
valid_responses = st.sampled_from(
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b c\r\n\r\nhello",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nServer: t\r\n\r\nuntil close",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
    ]
)


@settings(HOSTILE, max_examples=max(1, HOSTILE.max_examples // 2))
@given(
    wire=valid_responses,
    edits=st.lists(
        st.tuples(st.integers(0, 120), st.integers(0, 2), interesting_bytes), min_size=1, max_size=3
    ),
)
def test_what_it_accepts_h11_accepts_and_reads_alike(
    wire: bytes, edits: list[tuple[int, int, bytes]]
) -> None:
    import anyio

    for offset, removed, inserted in edits:
        position = min(offset, len(wire))
        wire = wire[:position] + inserted + wire[position + removed :]

    async def ours() -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        connection, _stream = _connection([wire])
        try:
            response, body = await _exchange(connection)
        except httpcore.RemoteProtocolError:
            return None
        return response.status, response.headers, body

    reading = anyio.run(ours)
    if reading is not None:  # refusing what h11 reads is allowed; reading what it refuses is not
        assert _h11_reading(wire, b"GET") == reading
