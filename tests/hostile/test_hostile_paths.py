"""Any token id either is refused before I/O or becomes exactly one encoded path segment."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.hostile._profiles import HOSTILE
from ziggeo_async import AsyncZiggeo, ValidationError

pytestmark = pytest.mark.anyio

HOST = "https://api.ziggeo.test:8443"
PREFIX = b"/v1/authtokens/"
TOKEN_BODY = b'{"token": "t"}'

# Every code point hypothesis can make, surrogates and controls included, weighted
# towards the characters that mean something in a URL.
URL_CHARACTERS = st.sampled_from(list("/\\?#%.;:@&=+$,[] \t\r\n\x00\x7f\u0085\u2028\ufeff"))
TOKEN_IDS = st.one_of(
    st.text(st.characters(codec=None), max_size=40),
    st.text(st.one_of(URL_CHARACTERS, st.characters(codec="ascii")), max_size=20),
    st.sampled_from(["", ".", "..", "%2e%2e", "../../v1/x", "a/../b", "//evil.test/x", "?a=1"]),
)
OPERATIONS = ["get", "update", "delete"]


def should_refuse(text: str) -> bool:
    """The ids no path segment can carry: empty, dot segments, surrogates, controls."""
    return text in ("", ".", "..") or any(
        unicodedata.category(char) == "Cs" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F
        for char in text
    )


def _client(sent: list[httpx.Request]) -> AsyncZiggeo:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=TOKEN_BODY)

    lent = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncZiggeo("app", "private-key", base_url=HOST, http_client=lent, max_retries=0)


async def _call(client: AsyncZiggeo, operation: str, token: object) -> None:
    if operation == "get":
        await client.authtokens.get(token)  # type: ignore[arg-type]
    elif operation == "update":
        await client.authtokens.update(token, session_limit=1)  # type: ignore[arg-type]
    else:
        await client.authtokens.delete(token)  # type: ignore[arg-type]


@HOSTILE
@given(token=TOKEN_IDS, operation=st.sampled_from(OPERATIONS))
@example(token="..", operation="get")
@example(token="a/b?c#d", operation="delete")
@example(token="\udcff", operation="update")
async def test_token_id_is_refused_or_sent_as_exactly_one_segment(
    token: str, operation: str
) -> None:
    sent: list[httpx.Request] = []
    client = _client(sent)
    refused: ValidationError | None = None
    try:
        await _call(client, operation, token)
    except ValidationError as error:
        refused = error
    assert (refused is not None) == should_refuse(token), refused
    if refused is not None:
        assert refused.argument in ("token", "token_or_key")
        assert sent == [], "refused, yet something was sent"
        return
    assert len(sent) == 1
    url = sent[0].url
    assert (url.scheme, url.host, url.port) == ("https", "api.ziggeo.test", 8443)
    assert url.query == b""
    assert url.fragment == ""
    assert url.raw_path.startswith(PREFIX)
    segment = url.raw_path[len(PREFIX) :].decode("ascii")
    assert segment
    assert not set(segment) & set("/?#\\ "), segment
    assert unquote(segment, errors="strict") == token  # the server reads back the same id


@HOSTILE
@given(
    token=st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text(), max_size=2)),
    operation=st.sampled_from(OPERATIONS),
)
async def test_a_token_that_is_not_a_string_is_refused_before_io(
    token: object, operation: str
) -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(ValidationError) as caught:
        await _call(_client(sent), operation, token)
    assert caught.value.argument in ("token", "token_or_key")
    assert sent == []
