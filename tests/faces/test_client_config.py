from __future__ import annotations

import inspect

import httpx
import pytest

from ziggeo_async import AsyncZiggeo, ConfigurationError
from ziggeo_async._faces.client import ClientConfig


def test_config_takes_exactly_the_constructor_arguments() -> None:
    constructor = list(inspect.signature(AsyncZiggeo).parameters.values())
    builder = list(inspect.signature(ClientConfig.from_arguments).parameters.values())
    assert builder == constructor


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"app_token": ""}, "app_token"),
        ({"app_token": "a:b"}, "app_token"),
        ({"private_key": None}, "private_key"),
        ({"encryption_key": 5}, "encryption_key"),
        ({"max_retries": -1}, "max_retries"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"http_client": object()}, "http_client"),
    ],
)
def test_bad_argument_is_refused_by_the_config(arguments: dict[str, object], named: str) -> None:
    given: dict[str, object] = {"app_token": "app", "private_key": "key", **arguments}
    with pytest.raises(ConfigurationError, match=named):
        ClientConfig.from_arguments(**given)  # type: ignore[arg-type]


def test_config_repr_shows_no_secret() -> None:
    config = ClientConfig.from_arguments("app", "PRIVATE-SECRET", "ENCRYPTION-SECRET")
    assert "SECRET" not in repr(config)
    assert "Basic" not in repr(config)


async def _get_through(client: AsyncZiggeo) -> str:
    return (await client.authtokens.get("tok")).token


@pytest.mark.anyio
async def test_client_from_config_behaves_as_constructed() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"token": "tok"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http_client:
        config = ClientConfig.from_arguments("app", "key", "enc", http_client=http_client)
        from_config = AsyncZiggeo._from_config(config)
        constructed = AsyncZiggeo("app", "key", "enc", http_client=http_client)
        assert await _get_through(from_config) == await _get_through(constructed) == "tok"
        assert seen[0] == seen[1]
        assert repr(from_config) == repr(constructed)
        assert from_config.auth is config.auth
        assert from_config.auth.decode(constructed.auth.generate(session_limit=1))
