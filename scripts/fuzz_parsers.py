"""Coverage-guided fuzzing (atheris) of what reads untrusted input.

Run through ``nox -s fuzz``, or ``python scripts/fuzz_parsers.py -runs=100000``.
The first byte picks the target; the rest is the input:

- a response body and Content-Type, through the real request pipeline (an httpx2
  mock transport answers 200): an ``AuthToken`` or ``APIResponseValidationError``;
- a ``Retry-After`` value: ``None`` or a finite delay >= 0, never an exception;
- a token id: ``ValidationError`` or one percent-encoded segment that decodes back.
"""

from __future__ import annotations

import asyncio
import math
import sys
from urllib.parse import unquote

import atheris

with atheris.instrument_imports():
    import httpx2

    from ziggeo_async import APIResponseValidationError, AsyncZiggeo, AuthToken, ValidationError
    from ziggeo_async._core.arguments import path_segment
    from ziggeo_async._request.retry import parse_retry_after

_LOOP = asyncio.new_event_loop()


def _response_body(data: atheris.FuzzedDataProvider) -> None:
    content_type = data.ConsumeUnicodeNoSurrogates(24)
    body = data.ConsumeBytes(data.remaining_bytes())
    headers = [(b"Content-Type", content_type.encode("utf-8", "replace"))]

    def handler(_request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers=headers)

    lent = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    client = AsyncZiggeo("app", "key", base_url="https://fuzz.test", http_client=lent)
    try:
        token = _LOOP.run_until_complete(client.authtokens.get("t"))
    except APIResponseValidationError:
        return
    assert isinstance(token, AuthToken)


def _retry_after(data: atheris.FuzzedDataProvider) -> None:
    seconds = parse_retry_after(data.ConsumeUnicode(data.remaining_bytes()))
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


def _token_id(data: atheris.FuzzedDataProvider) -> None:
    token = data.ConsumeUnicode(data.remaining_bytes())
    try:
        segment = path_segment("token", token)
    except ValidationError:
        return
    assert segment
    assert not set(segment) & set("/?#")
    assert unquote(segment, errors="strict") == token


_TARGETS = (_response_body, _retry_after, _token_id)


def test_one_input(raw: bytes) -> None:
    data = atheris.FuzzedDataProvider(raw)
    _TARGETS[data.ConsumeIntInRange(0, len(_TARGETS) - 1)](data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
