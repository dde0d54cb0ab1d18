"""examples/fastapi_app against FakeZiggeo, through httpx2.ASGITransport (no sockets)."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest

from examples.fastapi_app.main import Settings, create_app, get_ziggeo
from ziggeo_async import AsyncZiggeo
from ziggeo_async.testing import FakeZiggeo

SECRETS = ("fake-private-key-9f3c", "fake-encryption-key-77ab")


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run the app's ASGI lifespan as a server would: startup, then shutdown on exit."""
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](1)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, Any]](1)
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tasks:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        tasks.start_soon(app, scope, app_inbox.receive, app_outbox.send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


class Site:
    def __init__(self, fake: FakeZiggeo, app: Any, client: httpx2.AsyncClient) -> None:
        self.fake = fake
        self.app = app
        self.client = client

    @property
    def ziggeo(self) -> AsyncZiggeo:
        ziggeo: AsyncZiggeo = self.app.state.ziggeo
        return ziggeo


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    fake = FakeZiggeo("site-app-token", *SECRETS)
    settings = Settings(fake.app_token, fake.private_key, fake.encryption_key)
    async with httpx2.AsyncClient(transport=fake.transport()) as to_ziggeo:
        app = create_app(settings, http_client=to_ziggeo)
        async with (
            lifespan(app),
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url="http://site.test"
            ) as client,
        ):
            yield Site(fake, app, client)


def assert_no_secret(response: httpx2.Response) -> None:
    for secret in (*SECRETS, "Authorization", "Basic "):
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())


@pytest.mark.anyio
async def test_recorder_token_may_create_own_videos_once_for_a_short_time(site: Site) -> None:
    before = int(time.time())
    response = await site.client.post("/tokens/recorder")
    assert response.status_code == 200
    payload = site.fake.verify_client_token(response.json()["client_auth"])
    assert payload["grants"] == {"create": {"session_owned": True}}
    assert payload["session_limit"] == 1
    assert before + 9 * 60 <= payload["expiration_date"] <= before + 11 * 60
    assert site.fake.tokens == {}  # made locally: nothing was sent to Ziggeo


@pytest.mark.anyio
async def test_player_token_may_read_only_that_video(site: Site) -> None:
    response = await site.client.post("/videos/vid_42/player-token")
    assert response.status_code == 200
    payload = site.fake.verify_client_token(response.json()["client_auth"])
    assert payload["grants"] == {"read": {"resources": ["vid_42"]}}
    assert payload["session_limit"] == 1


@pytest.mark.anyio
async def test_server_token_is_created_shown_and_revoked(site: Site) -> None:
    created = await site.client.post("/server-tokens", json={"video": "vid_1", "session_limit": 3})
    assert created.status_code == 201
    token = created.json()["server_auth"]
    stored = site.fake.tokens[token]
    assert stored["grants"] == {"read": {"resources": ["vid_1"]}}
    assert stored["session_limit"] == 3
    assert stored["usage_expiration_time"] == 24 * 3600

    shown = await site.client.get(f"/server-tokens/{token}")
    assert shown.json() == {"server_auth": token, "session_limit": 3}

    revoked = await site.client.delete(f"/server-tokens/{token}")
    assert revoked.status_code == 204
    assert token not in site.fake.tokens


@pytest.mark.anyio
async def test_unknown_token_is_404_without_ziggeo_body(site: Site) -> None:
    for response in (
        await site.client.get("/server-tokens/nosuchtoken"),
        await site.client.delete("/server-tokens/nosuchtoken"),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "no such auth token"}
        assert "Authorization token not found" not in response.text


@pytest.mark.parametrize(
    ("fault", "expected_status", "expected_detail"),
    [
        ({"status": 500}, 502, "Ziggeo request failed"),
        ({"status": 401}, 502, "Ziggeo request failed"),
        ({"status": 503}, 503, "Ziggeo is busy"),
        ({"status": 429, "retry_after": "61"}, 503, "Ziggeo is busy"),
        ({"drop": "before"}, 503, "Ziggeo is unreachable"),
    ],
)
@pytest.mark.anyio
async def test_upstream_failures_are_5xx_without_secrets(
    site: Site, fault: dict[str, Any], expected_status: int, expected_detail: str
) -> None:
    if "drop" in fault:
        site.fake.drop_next(10, when=fault["drop"])
    else:
        site.fake.fail_next(10, **fault, body=f"upstream says {SECRETS[0]}")
    with anyio.fail_after(10):  # the SDK's retries back off for well under a second here
        response = await site.client.post("/server-tokens", json={"video": "vid_1"})
    assert response.status_code == expected_status
    assert response.json() == {"detail": expected_detail}
    assert_no_secret(response)


@pytest.mark.anyio
async def test_retry_after_from_ziggeo_is_passed_on(site: Site) -> None:
    site.fake.fail_next(10, status=429, retry_after="120")  # beyond the SDK's 60 s bound
    response = await site.client.post("/server-tokens", json={"video": "vid_1"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "120"


@pytest.mark.anyio
async def test_bad_input_is_refused_before_ziggeo_is_asked(site: Site) -> None:
    too_many = await site.client.post(
        "/server-tokens", json={"video": "vid_1", "session_limit": 1000}
    )
    empty_video = await site.client.post("/server-tokens", json={"video": ""})
    no_hours = await site.client.post("/server-tokens", json={"video": "v", "hours": 0})
    assert [too_many.status_code, empty_video.status_code, no_hours.status_code] == [422] * 3
    assert site.fake.requests == ()


@pytest.mark.anyio
async def test_sdk_validation_error_is_422_naming_the_argument(site: Site) -> None:
    # FastAPI lets ".." through as a path parameter; the SDK refuses it as a token id.
    shown = await site.client.get("/server-tokens/%2E%2E")
    revoked = await site.client.delete("/server-tokens/%2E%2E")
    assert (shown.status_code, shown.json()) == (422, {"detail": "invalid token"})
    assert (revoked.status_code, revoked.json()) == (422, {"detail": "invalid token_or_key"})
    assert site.fake.requests == ()


@pytest.mark.anyio
async def test_page_carries_client_auth_tokens_for_player_and_recorder(site: Site) -> None:
    response = await site.client.get("/videos/vid_7")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    player = re.search(
        r'<ziggeoplayer ziggeo-video="vid_7" ziggeo-client-auth="(\w+)"', response.text
    )
    recorder = re.search(r'<ziggeorecorder ziggeo-client-auth="(\w+)"', response.text)
    assert player is not None
    assert recorder is not None
    assert site.fake.verify_client_token(player[1])["grants"] == {"read": {"resources": ["vid_7"]}}
    assert site.fake.verify_client_token(recorder[1])["grants"] == {
        "create": {"session_owned": True}
    }
    assert '{token: "site-app-token", auth: true}' in response.text
    assert_no_secret(response)


@pytest.mark.anyio
async def test_page_can_carry_a_server_auth_token(site: Site) -> None:
    response = await site.client.get("/videos/vid_7", params={"server_auth": "true"})
    match = re.search(r'ziggeo-server-auth="(\w+)"', response.text)
    assert match is not None
    assert site.fake.tokens[match[1]]["grants"] == {"read": {"resources": ["vid_7"]}}
    assert site.fake.tokens[match[1]]["session_limit"] == 1


@pytest.mark.anyio
async def test_lifespan_opens_one_client_and_closes_it(fake_ziggeo: FakeZiggeo) -> None:
    fake = fake_ziggeo  # the SDK's pytest plugin
    settings = Settings(fake.app_token, fake.private_key, fake.encryption_key)
    async with httpx2.AsyncClient(transport=fake.transport()) as to_ziggeo:
        app = create_app(settings, http_client=to_ziggeo)
        async with (
            lifespan(app),
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as c,
        ):
            ziggeo = app.state.ziggeo
            await c.post("/server-tokens", json={"video": "v"})
            await c.post("/server-tokens", json={"video": "v"})
            assert app.state.ziggeo is ziggeo
            assert not ziggeo.closed
        assert ziggeo.closed
        assert not to_ziggeo.is_closed  # lent by the caller: the app leaves it open
        assert len(fake.tokens) == 2


@pytest.mark.anyio
async def test_the_sdks_pytest_fixtures_stand_in_for_the_apps_client(
    fake_ziggeo: FakeZiggeo, ziggeo_client: AsyncZiggeo
) -> None:
    """The SDK's pytest plugin: ``ziggeo_client`` overrides the app's dependency."""
    app = create_app(Settings(fake_ziggeo.app_token, fake_ziggeo.private_key, "unused-key-xx"))
    app.dependency_overrides[get_ziggeo] = lambda: ziggeo_client
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://t"
    ) as c:
        created = await c.post("/server-tokens", json={"video": "v"})
    assert created.status_code == 201
    assert list(fake_ziggeo.tokens) == [created.json()["server_auth"]]


@pytest.mark.anyio
async def test_without_credentials_the_app_runs_on_an_embedded_fake(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("ZIGGEO_APP_TOKEN", "ZIGGEO_PRIVATE_KEY", "ZIGGEO_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    app = create_app()
    with caplog.at_level(logging.WARNING, logger="fastapi_app"):
        async with (
            lifespan(app),
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as c,
        ):
            created = await c.post("/server-tokens", json={"video": "v"})
            token = created.json()["server_auth"]
            assert (await c.get(f"/server-tokens/{token}")).status_code == 200
    assert created.status_code == 201
    assert "embedded FakeZiggeo" in caplog.text


def test_settings_from_env() -> None:
    assert Settings.from_env({}) is None
    settings = Settings.from_env(
        {
            "ZIGGEO_APP_TOKEN": "r1app",
            "ZIGGEO_PRIVATE_KEY": "pk-secret",
            "ZIGGEO_ENCRYPTION_KEY": "ek-secret",
            "ZIGGEO_BASE_URL": "http://127.0.0.1:8000",
        }
    )
    assert settings == Settings("r1app", "pk-secret", "ek-secret", "http://127.0.0.1:8000")
    assert "secret" not in repr(settings)
    with pytest.raises(RuntimeError, match="ZIGGEO_PRIVATE_KEY and ZIGGEO_ENCRYPTION_KEY"):
        Settings.from_env({"ZIGGEO_APP_TOKEN": "app"})
