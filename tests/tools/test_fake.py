from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest

from ziggeo_async import (
    APIConnectionError,
    AsyncZiggeo,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ValidationError,
)
from ziggeo_async.testing import FakeZiggeo, RecordedRequest

pytestmark = pytest.mark.anyio


def basic(app_token: str = "fake-app-token", private_key: str = "fake-private-key") -> str:
    return "Basic " + base64.b64encode(f"{app_token}:{private_key}".encode()).decode()


FORM = ("content-type", "application/x-www-form-urlencoded")


def call(
    fake: FakeZiggeo,
    method: str,
    target: str,
    body: str = "",
    *,
    authorization: str | None = None,
    content_type: tuple[str, str] = FORM,
) -> tuple[int, str]:
    headers = [("authorization", authorization or basic()), content_type]
    answer = fake.handle(method, target, headers, body.encode())
    return answer.status, answer.body.decode()


@pytest.fixture
def fake() -> FakeZiggeo:
    return FakeZiggeo()


@pytest.fixture
async def ziggeo(fake: FakeZiggeo) -> AsyncIterator[AsyncZiggeo]:
    # Retries without waiting: the policy's backoff is not what these tests are about.
    async with httpx.AsyncClient(transport=fake.transport()) as http_client:
        client = AsyncZiggeo(
            fake.app_token,
            fake.private_key,
            fake.encryption_key,
            http_client=http_client,
            retry=RetryPolicy(max_retries=2, jitter=lambda: 0.0),
        )
        async with client:
            yield client


# -- semantics through the SDK -------------------------------------------------------


async def test_create_stores_every_argument_decoded(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    token = await ziggeo.authtokens.create(
        volatile=True,
        hidden=False,
        expiration_date=1_900_000_000,
        usage_expiration_time=3600,
        session_limit=3,
        grants={"read": {"resources": ["v1"]}, "destroy": {"session_owned": True}},
    )
    stored = fake.tokens[token.token]
    assert stored == {
        "token": token.token,
        "nonce": token.nonce,
        "volatile": True,
        "hidden": False,
        "expiration_date": 1_900_000_000,
        "usage_expiration_time": 3600,
        "session_limit": 3,
        "grants": {"read": {"resources": ["v1"]}, "destroy": {"session_owned": True}},
    }
    assert len(token.token) == 32
    assert token.session_limit == 3


async def test_each_create_issues_a_fresh_token(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    first = await ziggeo.authtokens.create(session_limit=1)
    second = await ziggeo.authtokens.create(session_limit=1)
    assert first.token != second.token
    assert first.nonce != second.nonce
    assert set(fake.tokens) == {first.token, second.token}


async def test_get_update_delete_round(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    created = await ziggeo.authtokens.create(session_limit=1, grants={"read": {"all": True}})
    assert (await ziggeo.authtokens.get(created.token)).to_json() == created.to_json()
    updated = await ziggeo.authtokens.update(created.token, session_limit=5, hidden=True)
    assert updated.session_limit == 5
    assert updated.hidden is True
    assert updated.grants == created.grants
    assert fake.tokens[created.token]["session_limit"] == 5
    await ziggeo.authtokens.delete(created.token)
    assert fake.tokens == {}
    with pytest.raises(NotFoundError) as caught:
        await ziggeo.authtokens.get(created.token)
    assert caught.value.body == "Authorization token not found"


async def test_unknown_token_is_a_plain_text_404(ziggeo: AsyncZiggeo) -> None:
    for attempt in (
        ziggeo.authtokens.get("nope"),
        ziggeo.authtokens.update("nope", session_limit=1),
    ):
        with pytest.raises(NotFoundError) as caught:
            await attempt
        assert caught.value.response is not None
        assert caught.value.response.headers["content-type"].startswith("text/plain")


async def test_wrong_credentials_get_401(fake: FakeZiggeo) -> None:
    async with httpx.AsyncClient(transport=fake.transport()) as http_client:
        client = AsyncZiggeo(fake.app_token, "wrong-key", http_client=http_client)
        with pytest.raises(AuthenticationError):
            await client.authtokens.create(session_limit=1)
    assert fake.tokens == {}


def test_snapshot_is_a_copy(fake: FakeZiggeo) -> None:
    status, body = call(fake, "POST", "/v1/authtokens/", "grants=%7B%22read%22%3A%7B%7D%7D")
    assert status == 200
    token = json.loads(body)["token"]
    snapshot = fake.tokens
    snapshot[token]["grants"]["read"]["all"] = True
    assert fake.tokens[token]["grants"] == {"read": {}}


# -- the handler, request by request -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("session_limit=x", "session_limit"),
        ("session_limit=-1", "session_limit"),
        ("usage_expiration_time=1.5", "usage_expiration_time"),
        ("volatile=yes", "volatile"),
        ("hidden=True", "hidden"),
        ("grants=%7Bnot+json", "grants"),
        ("grants=%5B%5D", "grants"),
        ("colour=red", "colour"),
        ("session_limit=1&session_limit=2", "given twice"),
        ("key=", "key"),
        ("a=1&&=", "form"),
    ],
)
def test_malformed_form_fields_are_400(fake: FakeZiggeo, body: str, names: str) -> None:
    status, text = call(fake, "POST", "/v1/authtokens/", body)
    assert status == 400
    assert names in text
    assert fake.tokens == {}


def test_update_refuses_unknown_fields_and_key(fake: FakeZiggeo) -> None:
    token = json.loads(call(fake, "POST", "/v1/authtokens/", "session_limit=1")[1])["token"]
    status, text = call(fake, "POST", f"/v1/authtokens/{token}", "key=mine")
    assert (status, "key: unknown field" in text) == (400, True)
    assert fake.tokens[token]["session_limit"] == 1


def test_body_must_be_a_form(fake: FakeZiggeo) -> None:
    status, text = call(
        fake,
        "POST",
        "/v1/authtokens/",
        '{"session_limit": 1}',
        content_type=("content-type", "application/json"),
    )
    assert status == 400
    assert "application/x-www-form-urlencoded" in text
    answer = fake.handle("POST", "/v1/authtokens/", [("authorization", basic()), FORM], b"\xff=1")
    assert answer.status == 400


def test_key_given_on_create_reaches_update_and_delete(fake: FakeZiggeo) -> None:
    status, body = call(fake, "POST", "/v1/authtokens/", "key=welcome-page&session_limit=1")
    assert status == 200
    token = json.loads(body)["token"]
    assert call(fake, "POST", "/v1/authtokens/welcome-page", "session_limit=9")[0] == 200
    assert fake.tokens[token]["session_limit"] == 9
    # get takes the token only, as the API documents.
    assert call(fake, "GET", "/v1/authtokens/welcome-page")[0] == 404
    assert call(fake, "POST", "/v1/authtokens/", "key=welcome-page")[0] == 409
    assert call(fake, "DELETE", "/v1/authtokens/welcome-page")[0] == 200
    assert fake.tokens == {}
    # The key is free again once its token is gone.
    assert call(fake, "POST", "/v1/authtokens/", "key=welcome-page")[0] == 200


async def test_key_conflict_through_the_sdk(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    token = await ziggeo.authtokens.create(session_limit=1)
    assert call(fake, "POST", "/v1/authtokens/", f"key={token.token}")[0] == 409
    call(fake, "POST", "/v1/authtokens/", "key=k1")
    with pytest.raises(NotFoundError):
        await ziggeo.authtokens.get("k1")
    await ziggeo.authtokens.delete("k1")
    assert list(fake.tokens) == [token.token]


@pytest.mark.parametrize("target", ["/v1/authtokens/{}?_method=DELETE", "/v1/authtokens/{}"])
def test_post_with_method_override_deletes(fake: FakeZiggeo, target: str) -> None:
    token = json.loads(call(fake, "POST", "/v1/authtokens/", "session_limit=1")[1])["token"]
    body = "" if "?" in target else "_method=DELETE"
    assert call(fake, "POST", target.format(token), body)[0] == 200
    assert fake.tokens == {}


def test_method_override_other_than_delete_is_400(fake: FakeZiggeo) -> None:
    assert call(fake, "POST", "/v1/authtokens/x?_method=PUT")[0] == 400
    assert call(fake, "GET", "/v1/authtokens/x?_method=DELETE")[0] == 400


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/v1/authtokens/", 405),
        ("DELETE", "/v1/authtokens/", 405),
        ("PUT", "/v1/authtokens/abc", 405),
        ("GET", "/v1/videos/abc", 404),
        ("GET", "/v1/authtokens/a/b", 404),
        ("GET", "/v1/authtokens/%ff", 400),
        ("GET", "/_fake/tokens", 404),
    ],
)
def test_routing(fake: FakeZiggeo, method: str, target: str, status: int) -> None:
    assert call(fake, method, target)[0] == status


def test_path_segment_is_percent_decoded(fake: FakeZiggeo) -> None:
    call(fake, "POST", "/v1/authtokens/", "key=a%2Fb+c")
    assert call(fake, "DELETE", "/v1/authtokens/a%2Fb%20c")[0] == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic(private_key="other"),
        basic(app_token="other"),
        "Bearer fake-private-key",
        "Basic ümlaut",
    ],
)
def test_credentials_are_checked(fake: FakeZiggeo, authorization: str | None) -> None:
    headers = [] if authorization is None else [("Authorization", authorization)]
    answer = fake.handle("GET", "/v1/authtokens/x", headers, b"")
    assert answer.status == 401
    assert ("www-authenticate", 'Basic realm="FakeZiggeo"') in answer.headers


def test_inspection_routes_only_when_enabled() -> None:
    fake = FakeZiggeo("app", "key", "enc", inspect=True)
    auth = basic("app", "key")
    created = json.loads(
        call(fake, "POST", "/v1/authtokens/", "session_limit=4", authorization=auth)[1]
    )
    status, body = call(fake, "GET", "/_fake/tokens", authorization=auth)
    assert status == 200
    assert json.loads(body) == {created["token"]: created}
    assert call(fake, "POST", "/_fake/tokens", authorization=auth)[0] == 405
    assert call(fake, "GET", "/_fake/tokens", authorization=basic())[0] == 401
    # handle() does not record; serve() does, and the route reports it.
    assert json.loads(call(fake, "GET", "/_fake/requests", authorization=auth)[1]) == []


def _nested_grants(depth: int) -> str:
    return '{"read": ' * depth + "{}" + "}" * depth


@pytest.mark.parametrize(
    "grants",
    [
        _nested_grants(500),  # parsed, then broke deepcopy and so /_fake/tokens for good
        _nested_grants(100_000),  # json.loads itself recursed too deep
        "[" * 100_000 + "]" * 100_000,
        '{"read": {"all": NaN}}',
        '{"read": {"resources": [Infinity]}}',
    ],
    ids=["nested 500", "nested 100000", "list nested 100000", "NaN", "Infinity"],
)
@pytest.mark.parametrize("target", ["/v1/authtokens/", "/v1/authtokens/existing"])
def test_grants_no_api_can_mean_are_refused_and_the_fake_keeps_working(
    target: str, grants: str
) -> None:
    fake = FakeZiggeo(inspect=True)
    fake.handle("POST", "/v1/authtokens/", [("authorization", basic()), FORM], b"key=existing")
    body = urlencode({"grants": grants})
    status, message = call(fake, "POST", target, body)
    assert status == 400
    assert message.startswith("grants: ")
    status, tokens = call(fake, "GET", "/_fake/tokens")
    assert status == 200
    assert len(json.loads(tokens)) == 1
    assert len(fake.tokens) == 1


def test_grants_nested_as_deep_as_a_grant_goes_are_kept() -> None:
    fake = FakeZiggeo()
    grants = '{"read": {"resources": ["v1"]}, "create": {"session_owned": true}}'
    status, body = call(fake, "POST", "/v1/authtokens/", urlencode({"grants": grants}))
    assert status == 200
    assert json.loads(body)["grants"] == json.loads(grants)


async def test_inspection_skips_faults_latency_and_records() -> None:
    fake = FakeZiggeo(inspect=True)
    fake.fail_next(status=500)
    fake.latency = 30
    transport = httpx.ASGITransport(app=fake.asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        with anyio.fail_after(10):
            answer = await client.get("/_fake/requests", headers={"authorization": basic()})
    assert (answer.status_code, answer.json()) == (200, [])
    fake.latency = 0
    assert fake.handle("GET", "/x", [("authorization", basic())], b"").status == 404
    assert fake.requests == ()


def test_constructor_refuses_bad_credentials() -> None:
    with pytest.raises(ConfigurationError, match="app_token"):
        FakeZiggeo("a:b")
    with pytest.raises(ConfigurationError, match="private_key"):
        FakeZiggeo("a", "")


@pytest.mark.parametrize(
    ("credentials", "named"),
    [
        (("app", "private-key-SECRET\udcff"), "private_key"),
        (("app", "private-key", "encryption-key-SECRET\udcff"), "encryption_key"),
    ],
)
def test_a_credential_with_no_utf8_form_is_refused_without_being_quoted(
    credentials: tuple[str, ...], named: str
) -> None:
    """As an environment variable with a byte that is not UTF-8 gives it (the CLI's --fake)."""
    with pytest.raises(ConfigurationError, match=named) as caught:
        FakeZiggeo(*credentials)
    error: BaseException | None = caught.value
    while error is not None:  # the whole chain, every argument of every exception in it
        assert "SECRET" not in repr(error.args) + str(error) + repr(vars(error))
        error = error.__cause__ or error.__context__


def test_repr_and_pickle_keep_secrets_in(fake: FakeZiggeo) -> None:
    assert "private" not in repr(fake)
    assert "encryption" not in repr(fake)
    assert repr(fake.transport()).startswith("<FakeTransport")
    assert repr(fake.asgi_app).startswith("<FakeASGIApp")
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(fake)


def test_store_is_thread_safe(fake: FakeZiggeo) -> None:
    made: list[str] = []

    def create_many() -> None:
        for _ in range(200):
            answer = fake.handle(
                "POST", "/v1/authtokens/", [("authorization", basic()), FORM], b"session_limit=1"
            )
            made.append(json.loads(answer.body)["token"])

    threads = [threading.Thread(target=create_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 800
    assert set(fake.tokens) == set(made)


# -- client auth tokens --------------------------------------------------------------


async def test_verify_client_token(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    token = ziggeo.auth.generate(session_limit=2, grants={"read": {"all": True}})
    payload = fake.verify_client_token(token)
    assert payload["application_token"] == fake.app_token
    assert payload["session_limit"] == 2
    other_app = AsyncZiggeo("other-app", "p", fake.encryption_key).auth.generate(session_limit=1)
    with pytest.raises(ValidationError, match="of this application and key"):
        fake.verify_client_token(other_app)
    other_key = AsyncZiggeo(fake.app_token, "p", "another-encryption-key").auth.generate(
        session_limit=1
    )
    with pytest.raises(ValidationError):
        fake.verify_client_token(other_key)


# -- records and faults --------------------------------------------------------------


async def test_requests_are_recorded(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    token = await ziggeo.authtokens.create(session_limit=2, volatile=True)
    with pytest.raises(NotFoundError):
        await ziggeo.authtokens.get("missing")
    assert fake.requests == (
        RecordedRequest(
            "POST", "/v1/authtokens/", {"volatile": "true", "session_limit": "2"}, True, 200
        ),
        RecordedRequest("GET", "/v1/authtokens/missing", {}, False, 404),
    )
    assert fake.requests[0].to_json()["form"] == {"volatile": "true", "session_limit": "2"}
    assert token.token in fake.tokens


async def test_drop_after_create_never_duplicates(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    fake.drop_next(when="after")
    with pytest.raises(APIConnectionError) as caught:
        await ziggeo.authtokens.create(session_limit=7)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert [stored["session_limit"] for stored in fake.tokens.values()] == [7]
    assert len(fake.requests) == 1
    assert fake.requests[0].took_effect is True
    assert fake.requests[0].status is None


async def test_drop_before_create_is_retried_once(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    fake.drop_next(when="before")
    token = await ziggeo.authtokens.create(session_limit=1)
    assert list(fake.tokens) == [token.token]
    assert [(r.took_effect, r.status) for r in fake.requests] == [(False, None), (True, 200)]


@pytest.mark.parametrize("when", ["before", "after"])
async def test_get_and_delete_retry_through_drops(
    fake: FakeZiggeo, ziggeo: AsyncZiggeo, when: Any
) -> None:
    token = await ziggeo.authtokens.create(session_limit=1)
    fake.drop_next(2, when=when)
    assert (await ziggeo.authtokens.get(token.token)).token == token.token
    fake.drop_next(when=when)
    await ziggeo.authtokens.delete(token.token)
    assert fake.tokens == {}
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    # After a drop that took effect, the retry meets a 404, which delete counts as done.
    assert [r.status for r in deletes] == [None, 404 if when == "after" else 200]


async def test_drops_beyond_the_retry_budget_fail(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    fake.drop_next(3, when="before")
    with pytest.raises(APIConnectionError):
        await ziggeo.authtokens.get("anything")
    assert len(fake.requests) == 3


async def test_fail_next_with_retry_after(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    fake.fail_next(2, status=429, retry_after=0)
    token = await ziggeo.authtokens.create(session_limit=1)
    assert list(fake.tokens) == [token.token]
    assert [(r.status, r.took_effect) for r in fake.requests] == [
        (429, False),
        (429, False),
        (200, True),
    ]
    fake.fail_next(3, status=429, retry_after="0")
    with pytest.raises(RateLimitError) as caught:
        await ziggeo.authtokens.get(token.token)
    assert caught.value.response is not None
    assert caught.value.response.headers["retry-after"] == "0"


async def test_fail_next_500_is_not_retried_for_create(
    fake: FakeZiggeo, ziggeo: AsyncZiggeo
) -> None:
    fake.fail_next(status=500, body="boom")
    with pytest.raises(InternalServerError) as caught:
        await ziggeo.authtokens.create(session_limit=1)
    assert caught.value.body == "boom"
    assert fake.tokens == {}
    assert len(fake.requests) == 1
    token = await ziggeo.authtokens.create(session_limit=1)
    fake.fail_next(status=500)
    assert (await ziggeo.authtokens.get(token.token)).token == token.token


async def test_clear_faults(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    fake.fail_next(5, status=400)
    fake.clear_faults()
    await ziggeo.authtokens.create(session_limit=1)
    assert len(fake.requests) == 1


async def test_latency_delays_each_request(fake: FakeZiggeo, ziggeo: AsyncZiggeo) -> None:
    fake.latency = 0.2
    assert fake.latency == 0.2
    with anyio.move_on_after(0.05) as scope:
        await ziggeo.authtokens.create(session_limit=1)
    assert scope.cancelled_caught
    fake.latency = 0
    await ziggeo.authtokens.create(session_limit=1)
    assert len(fake.tokens) == 1


@pytest.mark.parametrize(
    ("call_fault", "message"),
    [
        (lambda fake: fake.fail_next(0), "count"),
        (lambda fake: fake.fail_next(True), "count"),
        (lambda fake: fake.fail_next(status=200), "status"),
        (lambda fake: fake.drop_next(when="during"), "when"),
        (lambda fake: setattr(fake, "latency", -1), "latency"),
        (lambda fake: setattr(fake, "latency", True), "latency"),
    ],
)
def test_bad_fault_plans_are_refused(fake: FakeZiggeo, call_fault: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call_fault(fake)


# -- the ASGI app through httpx.ASGITransport ------------------------------------------


@pytest.fixture
async def asgi_ziggeo(fake: FakeZiggeo) -> AsyncIterator[AsyncZiggeo]:
    transport = httpx.ASGITransport(app=fake.asgi_app)
    async with httpx.AsyncClient(transport=transport) as http_client:
        client = AsyncZiggeo(
            fake.app_token, fake.private_key, max_retries=0, http_client=http_client
        )
        async with client:
            yield client


async def test_asgi_app_round(fake: FakeZiggeo, asgi_ziggeo: AsyncZiggeo) -> None:
    token = await asgi_ziggeo.authtokens.create(session_limit=1, grants={"read": {"all": True}})
    assert (await asgi_ziggeo.authtokens.get(token.token)).grants == token.grants
    await asgi_ziggeo.authtokens.update(token.token, session_limit=3)
    assert fake.tokens[token.token]["session_limit"] == 3
    await asgi_ziggeo.authtokens.delete(token.token)
    with pytest.raises(NotFoundError):
        await asgi_ziggeo.authtokens.delete(token.token)
    # A key with URL-special characters travels quoted and arrives whole.
    call(fake, "POST", "/v1/authtokens/", "key=x%3Fy%2Fz")
    assert (await asgi_ziggeo.authtokens.update("x?y/z", session_limit=2)).session_limit == 2


async def test_asgi_app_faults(fake: FakeZiggeo, asgi_ziggeo: AsyncZiggeo) -> None:
    fake.drop_next(when="after")
    with pytest.raises(APIConnectionError):
        await asgi_ziggeo.authtokens.create(session_limit=1)
    assert len(fake.tokens) == 1
    fake.drop_next(when="before")
    with pytest.raises(APIConnectionError):
        await asgi_ziggeo.authtokens.create(session_limit=1)
    assert len(fake.tokens) == 1
    fake.fail_next(status=409)
    with pytest.raises(ConflictError) as caught:
        await asgi_ziggeo.authtokens.create(session_limit=1)
    assert caught.value.body == "409 injected by FakeZiggeo"
    fake.latency = 0.2
    with anyio.move_on_after(0.05) as scope:
        await asgi_ziggeo.authtokens.create(session_limit=1)
    assert scope.cancelled_caught
    assert [r.took_effect for r in fake.requests] == [True, False, False]


async def test_asgi_app_reads_a_body_in_parts(fake: FakeZiggeo) -> None:
    parts = [
        {"type": "http.request", "body": b"session_", "more_body": True},
        {"type": "http.request", "body": b"limit=6", "more_body": False},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return parts.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/authtokens/",
        "query_string": b"",
        "headers": [
            (b"authorization", basic().encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
    }
    await fake.asgi_app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["session_limit"] == 6


@pytest.mark.parametrize(
    ("method", "path", "first_part"),
    [
        ("POST", "/v1/authtokens/", b"session_limit=6"),
        ("POST", "/v1/authtokens/known", b"session_limit=6"),
        ("DELETE", "/v1/authtokens/known", b""),
    ],
    ids=["create", "update", "delete"],
)
async def test_asgi_app_ignores_a_request_whose_client_left_mid_body(
    fake: FakeZiggeo, method: str, path: str, first_part: bytes
) -> None:
    call(fake, "POST", "/v1/authtokens/", "key=known&session_limit=1")
    before = fake.tokens
    parts = [
        {"type": "http.request", "body": first_part, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return parts.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [
            (b"authorization", basic().encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
    }
    await fake.asgi_app(scope, receive, send)
    assert parts == []  # it read up to the disconnect
    assert fake.tokens == before
    assert fake.requests == ()  # never received whole, so not recorded either
    assert sent == []  # nobody is left to answer


async def test_asgi_lifespan_and_other_scopes(fake: FakeZiggeo) -> None:
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await fake.asgi_app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    with pytest.raises(ValueError, match="websocket"):
        await fake.asgi_app({"type": "websocket"}, receive, send)


async def test_a_body_that_is_not_utf8_is_recorded_with_an_empty_form(fake: FakeZiggeo) -> None:
    async with httpx.AsyncClient(transport=fake.transport()) as http_client:
        response = await http_client.post(
            "https://x/v1/authtokens/",
            content=b"\xff=1",
            headers={"authorization": basic(), "content-type": FORM[1]},
        )
    assert response.status_code == 400
    assert fake.requests[0].form == {}
    assert fake.requests[0].took_effect is False
