"""A fast stand-in for Ziggeo's create endpoint, for benchmarks only.

An asyncio protocol that answers every request with a fresh auth token object,
after an optional added latency, over plain HTTP or TLS. It runs in its own
process (pinned to the last core where the OS allows) so the client under test is
not competing with it for the interpreter. It prints ``PORT <n>`` once listening,
and on SIGTERM or stdin EOF it prints ``SERVED <n>`` (requests answered) and exits.

    python benchmarks/stub_server.py [--latency-ms 20] [--cert C --key K]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import ssl
import sys

_HEADER_END = b"\r\n\r\n"


class _Counter:
    served = 0


class StubProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for the SDKs under test."""

    def __init__(self, latency: float, counter: _Counter) -> None:
        self._latency = latency
        self._counter = counter
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._pending = 0
        self._close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                return
            head = self._buffer[:end]
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            self._buffer = self._buffer[total:]
            self._counter.served += 1
            body = (
                b'{"token":"%032x","nonce":"n%d","volatile":false,"hidden":false,'
                b'"session_limit":1,"usage_expiration_time":86400,'
                b'"grants":{"read":{"resources":["1234567890"]}}}'
                % (self._counter.served, self._counter.served)
            )
            response = (
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n%s\r\n%s"
                % (len(body), b"Connection: close\r\n" if close else b"", body)
            )
            if self._latency:
                self._pending += 1
                self._loop.call_later(self._latency, self._send, response, close)
            else:
                self._send(response, close, delayed=False)

    def _send(self, response: bytes, close: bool, *, delayed: bool = True) -> None:
        if delayed:
            self._pending -= 1
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(response)
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self._transport = None


async def serve(latency: float, cert: str | None, key: str | None) -> None:
    counter = _Counter()
    context = None
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: StubProtocol(latency, counter), "127.0.0.1", 0, ssl=context, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # The parent going away (stdin EOF) stops the server too, so none is left behind.
    loop.add_reader(sys.stdin.fileno(), stop.set)
    await stop.wait()
    server.close()
    print(f"SERVED {counter.served}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to")
    options = parser.parse_args()
    if options.cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {options.cpu})
    asyncio.run(serve(options.latency_ms / 1000, options.cert, options.key))


if __name__ == "__main__":
    main()
