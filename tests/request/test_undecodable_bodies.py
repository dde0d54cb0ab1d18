from __future__ import annotations

import httpx
import pytest

from ziggeo_async import APIResponseValidationError, AsyncZiggeo, BadRequestError

pytestmark = pytest.mark.anyio

# httpx raises UnicodeError from response.text for a UTF-16 body without a byte-order mark.
# Three bytes are not UTF-16 at all.
UTF16_WITHOUT_BOM = {"Content-Type": "text/plain; charset=utf-16"}


def _client(status: int, body: bytes) -> AsyncZiggeo:
    lent = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(status, content=body, headers=UTF16_WITHOUT_BOM)
        )
    )
    return AsyncZiggeo("app", "key", base_url="https://x.test", http_client=lent)


async def test_error_body_in_a_charset_it_does_not_match_still_gives_the_typed_error() -> None:
    with pytest.raises(BadRequestError) as caught:
        await _client(400, b"\x00\x00\x00").authtokens.get("t")  # an odd length: not UTF-16
    assert caught.value.body == "\x00\x00\x00"


async def test_success_body_in_a_charset_it_does_not_match_is_a_validation_error() -> None:
    with pytest.raises(APIResponseValidationError) as caught:
        await _client(200, b"\x00\x00").authtokens.get("t")
    assert caught.value.status_code == 200
