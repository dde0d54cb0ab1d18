from __future__ import annotations

import base64
import pickle

import httpx
import pytest

from ziggeo_async import APIResponseValidationError, AsyncZiggeo, BadRequestError

pytestmark = pytest.mark.anyio

PRIVATE_KEY = "private-key-that-must-not-leak"
CREDENTIALS = base64.b64encode(f"app-token:{PRIVATE_KEY}".encode()).decode()


def _client(status: int, body_for: str) -> AsyncZiggeo:
    def handler(request: httpx.Request) -> httpx.Response:
        echoed = {"header": request.headers["authorization"], "key": PRIVATE_KEY}[body_for]
        return httpx.Response(status, text=f"<pre>you sent {echoed}</pre>")

    lent = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncZiggeo("app-token", PRIVATE_KEY, base_url="https://x.test", http_client=lent)


@pytest.mark.parametrize("body_for", ["header", "key"])
async def test_status_error_body_echoing_credentials_is_cut(body_for: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        await _client(400, body_for).authtokens.get("abc")
    error = caught.value
    for text in (str(error), repr(error), error.body, repr(pickle.dumps(error))):
        assert CREDENTIALS not in text
        assert PRIVATE_KEY not in text
    expected = {"header": "Basic [credentials removed]", "key": "[credentials removed]"}
    assert error.body == f"<pre>you sent {expected[body_for]}</pre>"


async def test_unusable_success_body_echoing_credentials_is_cut() -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        await _client(200, "header").authtokens.get("abc")
    assert caught.value.body == "<pre>you sent Basic [credentials removed]</pre>"


async def test_bodies_without_credentials_are_kept_as_received() -> None:
    lent = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(404, text="Not found"))
    )
    client = AsyncZiggeo("app-token", PRIVATE_KEY, base_url="https://x.test", http_client=lent)
    with pytest.raises(Exception, match="Not found") as caught:
        await client.authtokens.get("abc")
    assert caught.value.body == "Not found"  # type: ignore[attr-defined]
