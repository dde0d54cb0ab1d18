from __future__ import annotations

import base64
import pickle
from typing import Any

import httpx
import httpx2
import pytest
import respx

from tests._support import (
    _SHARED_TRANSPORT,
    APP_TOKEN,
    COLLECTION_URL,
    ENCRYPTION_KEY,
    HOST,
    PRIVATE_KEY,
    make_client,
)
from ziggeo_async import APIStatusError, AsyncZiggeo, ClientClosedError, ConfigurationError
from ziggeo_async.testing import FakeZiggeo


def lent_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=_SHARED_TRANSPORT)


def owned_client(client: AsyncZiggeo) -> Any:
    """The connection the client made for itself (None before first use)."""
    return client._owned


def expected_authorization() -> str:
    return "Basic " + base64.b64encode(f"{APP_TOKEN}:{PRIVATE_KEY}".encode()).decode("ascii")


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:pw@proxy.example",
        "https://user@proxy.example",
        "https://proxy.example/?a=1",
        "https://proxy.example#frag",
        "https://proxy.example?",
        "https://proxy.example/#",
        "ftp://proxy.example",
        "proxy.example",
        "https://",
    ],
)
def test_base_url_with_credentials_query_or_fragment_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url") as caught:
        AsyncZiggeo("app", "pk", base_url=base_url)
    assert "pw" not in str(caught.value)


# Each failed only on the first request, from below: a port out of range raised an
# ExceptionGroup (OverflowError) through httpx2 and ValueError through aiohttp, a host
# label too long or empty UnicodeError through aiohttp, a lone surrogate in the path
# UnicodeEncodeError and an httpx2.URL TypeError at once.
MALFORMED_BASE_URLS: list[object] = [
    "http://127.0.0.1:0",
    "http://127.0.0.1:65536",
    "http://127.0.0.1:99999999999",
    "http://127.0.0.1:-1",
    "http://[::1]:70000",
    "https://proxy.example ",
    "https://proxy%00.example",
    "https://%zz",
    "https://proxy..example",
    "https://.proxy.example",
    "https://" + "a" * 64 + ".example",
    "https://" + "a." * 127 + "example",
    "https://proxy\\example",
    "https://proxy;example",
    "https://proxy.example/\ud800",
    "https://proxy.example/%",
    "https://proxy.example/%zz/",
    httpx2.URL("https://proxy.example"),
]


@pytest.mark.parametrize("base_url", MALFORMED_BASE_URLS, ids=repr)
def test_a_base_url_no_request_could_go_to_is_refused(base_url: object) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncZiggeo("app", "pk", base_url=base_url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://proxy.example:65535", "https://proxy.example:65535"),
        ("http://127.0.0.1:1", "http://127.0.0.1:1"),
        ("https://[::1]:8443/ziggeo", "https://[::1]:8443/ziggeo"),
        ("https://Proxy.Example./", "https://proxy.example."),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://my_proxy.internal", "https://my_proxy.internal"),
        ("https://" + "a" * 63 + ".example", "https://" + "a" * 63 + ".example"),
        ("https://proxy.example/a%2Fb", "https://proxy.example/a%2Fb"),
    ],
)
def test_unusual_but_valid_base_urls_are_kept(base_url: str, expected: str) -> None:
    assert AsyncZiggeo("app", "pk", base_url=base_url).base_url == expected


# -- configuration and region routing ------------------------------------------------


@pytest.mark.parametrize(
    ("app_token", "base_url", "expected"),
    [
        ("r1abcdef", None, "https://srv-api-eu-west-1.ziggeo.com"),
        ("abcdef", None, "https://srv-api.ziggeo.com"),
        ("R1abcdef", None, "https://srv-api.ziggeo.com"),
        ("xr1abcdef", None, "https://srv-api.ziggeo.com"),
        ("r1abcdef", "https://proxy.example/ziggeo/", "https://proxy.example/ziggeo"),
        ("abcdef", "http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
@pytest.mark.anyio
async def test_requests_go_to_the_region_host_or_base_url(
    app_token: str, base_url: str | None, expected: str
) -> None:
    client = AsyncZiggeo(app_token, "pk", base_url=base_url, http_client=lent_client())
    assert client.base_url == expected
    with respx.mock(assert_all_called=True) as router:
        route = router.get(f"{expected}/v1/authtokens/tok").respond(200, json={"token": "tok"})
        await client.authtokens.get("tok")
    request = route.calls.last.request
    assert request.url.userinfo == b""
    assert request.headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("arguments", "options", "message"),
    [
        (("", PRIVATE_KEY), {}, "app_token"),
        ((None, PRIVATE_KEY), {}, "app_token"),
        (("app:x", PRIVATE_KEY), {}, "app_token must not contain ':'"),
        (("app", ""), {}, "private_key"),
        (("app", PRIVATE_KEY.encode()), {}, "private_key"),
        (("app", PRIVATE_KEY, 5), {}, "encryption_key"),
        (("app", PRIVATE_KEY, ""), {}, "encryption_key must be a non-empty string"),
        (("app\udc80", PRIVATE_KEY), {}, "app_token must not contain a lone surrogate"),
        (("app", PRIVATE_KEY + "\ud800"), {}, "private_key must not contain a lone surrogate"),
        (("app", PRIVATE_KEY, "\udfffkey"), {}, "encryption_key must not contain a lone"),
        (("app", PRIVATE_KEY), {"max_retries": -1}, "max_retries"),
        (("app", PRIVATE_KEY), {"max_retries": True}, "max_retries"),
        (("app", PRIVATE_KEY), {"max_retries": 2.0}, "max_retries"),
        (("app", PRIVATE_KEY), {"timeout": 0}, "timeout"),
        (("app", PRIVATE_KEY), {"timeout": True}, "timeout"),
        (("app", PRIVATE_KEY), {"timeout": "30"}, "timeout"),
        (("app", PRIVATE_KEY), {"http_client": object()}, "http_client"),
        (("app", PRIVATE_KEY), {"base_url": 5}, "base_url"),
        (("app", PRIVATE_KEY), {"base_url": "https://[::1"}, "base_url"),
    ],
)
def test_bad_configuration_is_refused_by_name(
    arguments: tuple[object, ...], options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        AsyncZiggeo(*arguments, **options)  # type: ignore[arg-type]
    assert PRIVATE_KEY not in str(caught.value)
    assert not isinstance(caught.value.__context__, UnicodeError), "it would hold the secret"


@pytest.mark.parametrize(
    ("credentials", "named"),
    [
        (("app\n", PRIVATE_KEY), "app_token"),
        (("app", PRIVATE_KEY + "\n"), "private_key"),
        (("app", PRIVATE_KEY + "\r\n"), "private_key"),
        (("app", "\t" + PRIVATE_KEY), "private_key"),
        (("app", PRIVATE_KEY + "\x00"), "private_key"),
        (("app", PRIVATE_KEY + "\x85"), "private_key"),
        (("app", PRIVATE_KEY, ENCRYPTION_KEY + "\n"), "encryption_key"),
        (("app", PRIVATE_KEY, ENCRYPTION_KEY + "\x7f"), "encryption_key"),
    ],
)
def test_a_credential_with_a_control_character_is_refused_when_the_client_is_made(
    credentials: tuple[str, ...], named: str
) -> None:
    # A key read from a file or a mounted secret often ends in a line break: sent in
    # the Basic credentials it drew a 401, and in an encryption key it made client
    # tokens Ziggeo cannot read.
    with pytest.raises(ConfigurationError, match=f"{named} must not contain a control") as caught:
        AsyncZiggeo(*credentials)
    assert PRIVATE_KEY not in str(caught.value)
    assert ENCRYPTION_KEY not in str(caught.value)


def test_private_key_may_hold_a_colon_and_non_ascii() -> None:
    client = AsyncZiggeo("app", "pa:ss·wörd")
    assert client.app_token == "app"


# -- lifecycle -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_lent_http_client_is_used_and_left_open() -> None:
    lent = lent_client()
    client = AsyncZiggeo("app", "pk", http_client=lent)
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}tok").respond(200, json={"token": "tok"})
        await client.authtokens.get("tok")
    await client.aclose()
    assert client.closed
    assert not lent.is_closed
    assert client._owned is None


@pytest.mark.anyio
async def test_an_owned_http_client_is_made_on_first_use_and_closed(
    served_fake: tuple[FakeZiggeo, str],
) -> None:
    fake, url = served_fake
    client = AsyncZiggeo(fake.app_token, fake.private_key, base_url=url)
    assert owned_client(client) is None
    token = await client.authtokens.create(session_limit=1)
    await client.authtokens.get(token.token)
    owned = owned_client(client)
    assert owned is not None
    assert isinstance(owned.client, httpx2.AsyncClient)
    assert (owned.client.is_closed, client.closed) == (False, False)
    await client.aclose()
    assert owned.client.is_closed
    await client.aclose()  # idempotent
    assert client.closed


@pytest.mark.anyio
async def test_async_with_closes_the_client(served_fake: tuple[FakeZiggeo, str]) -> None:
    fake, url = served_fake
    async with AsyncZiggeo(fake.app_token, fake.private_key, base_url=url) as client:
        assert isinstance(client, AsyncZiggeo)
        token = await client.authtokens.create(session_limit=1)
        await client.authtokens.delete(token.token)
        owned = owned_client(client)
        assert owned is not None
    assert client.closed
    assert owned.client.is_closed
    assert fake.tokens == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.authtokens.create(session_limit=1),
        lambda client: client.authtokens.get("tok"),
        lambda client: client.authtokens.update("tok", hidden=True),
        lambda client: client.authtokens.delete("tok"),
        lambda client: client.authtokens.destroy("tok"),
    ],
    ids=["create", "get", "update", "delete", "destroy"],
)
@pytest.mark.anyio
async def test_a_closed_client_refuses_calls(call: Any) -> None:
    client = make_client()
    await client.aclose()
    with respx.mock(assert_all_called=False) as router:
        anything = router.route()
        with pytest.raises(ClientClosedError, match="closed"):
            await call(client)
    assert anything.call_count == 0


@pytest.mark.anyio
async def test_a_closed_client_cannot_be_entered_again() -> None:
    client = make_client()
    async with client:
        pass
    with pytest.raises(ClientClosedError):
        async with client:
            pass  # pragma: no cover - never entered


@pytest.mark.anyio
async def test_closing_during_a_retry_stops_the_retry() -> None:
    client = make_client()

    def close_then_fail(request: httpx.Request) -> httpx.Response:
        client._closed = True  # as aclose() would, from another task, during the backoff
        return httpx.Response(503)

    with respx.mock(assert_all_called=True) as router:
        route = router.get(f"{COLLECTION_URL}tok").mock(side_effect=close_then_fail)
        with pytest.raises(ClientClosedError):
            await client.authtokens.get("tok")
    assert route.call_count == 1


# -- repr and pickling ---------------------------------------------------------------


@pytest.mark.anyio
async def test_repr_shows_app_token_and_host_but_no_secret() -> None:
    client = make_client()
    text = repr(client)
    assert text == f"AsyncZiggeo(app_token={APP_TOKEN!r}, base_url={HOST!r})"
    await client.aclose()
    assert repr(client).endswith(", closed)")
    secrets = (PRIVATE_KEY, ENCRYPTION_KEY, base64.b64encode(PRIVATE_KEY.encode()).decode())
    for shown in (
        repr(client),
        repr(client.authtokens),
        repr(client.auth),
        repr(client.auth._cipher),
        repr(client._pipeline),
        str(client),
    ):
        for secret in secrets:
            assert secret not in shown
    assert repr(AsyncZiggeo("a", "p").auth) == "<Auth without an encryption key>"


def test_client_and_cipher_refuse_to_pickle() -> None:
    client = make_client()
    with pytest.raises(TypeError, match="does not pickle"):
        pickle.dumps(client)
    with pytest.raises(TypeError, match="does not pickle"):
        pickle.dumps(client.auth._cipher)


# -- per-call timeout ----------------------------------------------------------------


def seconds(value: float, connect: float | None = None) -> dict[str, float]:
    return {"connect": value if connect is None else connect, "read": value, "write": value,
            "pool": value}  # fmt: skip


@pytest.mark.parametrize(
    ("configured", "per_call", "expected"),
    [
        (None, None, seconds(30.0, connect=10.0)),
        (None, 2.5, seconds(2.5)),
        (None, 1, seconds(1)),
        (7, None, seconds(7)),
        (httpx.Timeout(4.0, connect=1.0), None, seconds(4.0, connect=1.0)),
        (7, 0.25, seconds(0.25)),
    ],
)
@pytest.mark.parametrize("operation", ["create", "get", "update", "delete"])
@pytest.mark.anyio
async def test_timeout_reaches_httpx(
    operation: str,
    configured: float | httpx.Timeout | None,
    per_call: float | None,
    expected: dict[str, float],
) -> None:
    options: dict[str, Any] = {} if configured is None else {"timeout": configured}
    client = make_client(**options)
    calls: dict[str, tuple[tuple[object, ...], dict[str, object]]] = {
        "create": ((), {"session_limit": 1}),
        "get": (("tok",), {}),
        "update": (("tok",), {"session_limit": 1}),
        "delete": (("tok",), {}),
    }
    positional, keywords = calls[operation]
    with respx.mock(assert_all_called=True) as router:
        route = router.route().respond(200, json={"token": "tok"})
        await getattr(client.authtokens, operation)(*positional, **keywords, timeout=per_call)
    assert route.calls.last.request.extensions["timeout"] == expected


# -- the lent client's own settings do not leak in ---------------------------------


@pytest.mark.anyio
async def test_lent_client_defaults_do_not_override_credentials_or_redirects() -> None:
    lent = httpx.AsyncClient(
        auth=("intruder", "pw"),
        headers={"Authorization": "Bearer other", "X-Trace": "kept"},
        base_url="https://elsewhere.example",
        follow_redirects=True,
        transport=_SHARED_TRANSPORT,
    )
    client = make_client(http_client=lent, max_retries=0)
    with respx.mock(assert_all_called=False) as router:
        route = router.get(f"{COLLECTION_URL}tok").respond(
            302, headers={"Location": "https://elsewhere.example/steal"}
        )
        elsewhere = router.route(host="elsewhere.example")
        with pytest.raises(APIStatusError) as caught:
            await client.authtokens.get("tok")
    request = route.calls.last.request
    assert caught.value.status_code == 302
    assert request.headers["Authorization"] == expected_authorization()
    assert request.headers["X-Trace"] == "kept"
    assert elsewhere.call_count == 0
