"""What each endpoint puts on the wire, and how it reads the answer.

These tests use pytest-asyncio's own marker (not anyio's) so that plugin's
strict mode is exercised beside the anyio plugin.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
import sniffio

from tests._support import APP_TOKEN, COLLECTION_URL, PRIVATE_KEY, make_client
from ziggeo_async import APIResponseValidationError, AuthToken, Grant, Grants

EXPECTED_AUTHORIZATION = "Basic " + base64.b64encode(f"{APP_TOKEN}:{PRIVATE_KEY}".encode()).decode(
    "ascii"
)
TOKEN_JSON = {
    "token": "a1b2c3d4e5f6",
    "nonce": "n-1",
    "volatile": False,
    "hidden": True,
    "expiration_date": 1_900_000_000,
    "usage_expiration_time": 86400,
    "session_limit": 3,
    "grants": {"read": {"resources": ["v1"]}, "create": {"session_owned": True}},
}


def form_of(request: httpx.Request) -> dict[str, str]:
    fields = parse_qsl(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert len({name for name, _ in fields}) == len(fields), "a field was sent twice"
    return dict(fields)


def assert_common_headers(request: httpx.Request, *, with_form: bool) -> None:
    assert request.headers["Authorization"] == EXPECTED_AUTHORIZATION
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("ziggeo-async/")
    if with_form:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    else:
        assert "Content-Type" not in request.headers
        assert request.content == b""


@pytest.mark.asyncio
async def test_create_posts_every_argument_as_a_form() -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.post(COLLECTION_URL).respond(201, json=TOKEN_JSON)
        token = await client.authtokens.create(
            volatile=False,
            hidden=True,
            expiration_date=datetime(2030, 3, 17, 17, 46, 40, 999_999, tzinfo=timezone.utc),
            usage_expiration_time=timedelta(days=1, microseconds=999_999),
            session_limit=3,
            grants=Grants(read=Grant(resources=["v1", "vidé/o"]), create=Grant(session_owned=True)),
        )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url == COLLECTION_URL
    assert_common_headers(request, with_form=True)
    assert form_of(request) == {
        "volatile": "false",
        "hidden": "true",
        "expiration_date": "1900000000",
        "usage_expiration_time": "86400",
        "session_limit": "3",
        "grants": '{"read":{"resources":["v1","vid\\u00e9/o"]},"create":{"session_owned":true}}',
    }
    assert token.token == "a1b2c3d4e5f6"
    assert route.call_count == 1


@pytest.mark.asyncio
async def test_create_with_no_arguments_sends_an_empty_form() -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.post(COLLECTION_URL).respond(200, json={"token": "t"})
        await client.authtokens.create()
    assert route.calls.last.request.content == b""
    assert_common_headers(route.calls.last.request, with_form=True)


@pytest.mark.asyncio
async def test_create_sends_an_aware_datetime_in_any_zone_as_utc_seconds() -> None:
    client = make_client()
    zone = timezone(timedelta(hours=-5, minutes=-30))
    moment = datetime(2030, 1, 1, 0, 0, 0, tzinfo=zone)
    with respx.mock(assert_all_called=True) as router:
        route = router.post(COLLECTION_URL).respond(200, json={"token": "t"})
        await client.authtokens.create(expiration_date=moment, volatile=True)
    assert form_of(route.calls.last.request) == {
        "expiration_date": str(int(moment.timestamp())),
        "volatile": "true",
    }


@pytest.mark.asyncio
async def test_grants_as_plain_dicts_are_sent_as_compact_json() -> None:
    client = make_client()
    grants: dict[str, dict[str, object]] = {
        "read": {"resources": ["1234567890"]},
        "destroy": {"all": True},
    }
    with respx.mock(assert_all_called=True) as router:
        route = router.post(COLLECTION_URL).respond(200, json={"token": "t"})
        await client.authtokens.create(grants=grants, session_limit=0)
    assert form_of(route.calls.last.request) == {
        "grants": '{"read":{"resources":["1234567890"]},"destroy":{"all":true}}',
        "session_limit": "0",
    }


@pytest.mark.asyncio
async def test_get_sends_a_bare_get_on_the_quoted_token() -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.get(f"{COLLECTION_URL}a%2Fb%3Fc%20d").respond(200, json=TOKEN_JSON)
        token = await client.authtokens.get("a/b?c d")
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.raw_path == b"/v1/authtokens/a%2Fb%3Fc%20d"
    assert not request.url.query
    assert_common_headers(request, with_form=False)
    assert token == AuthToken.from_json(TOKEN_JSON)


@pytest.mark.asyncio
async def test_update_posts_only_the_given_arguments() -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{COLLECTION_URL}my-key").respond(200, json=TOKEN_JSON)
        await client.authtokens.update(
            "my-key",
            session_limit=5,
            hidden=False,
            expiration_date=1_900_000_000,
            usage_expiration_time=3600,
            grants={"update": {"resources": ("v9",), "session_owned": False}},
        )
    request = route.calls.last.request
    assert request.method == "POST"
    assert_common_headers(request, with_form=True)
    assert form_of(request) == {
        "session_limit": "5",
        "hidden": "false",
        "expiration_date": "1900000000",
        "usage_expiration_time": "3600",
        "grants": '{"update":{"resources":["v9"],"session_owned":false}}',
    }


@pytest.mark.parametrize("name", ["delete", "destroy"])
@pytest.mark.asyncio
async def test_delete_is_a_real_delete_without_body(name: str) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.delete(f"{COLLECTION_URL}tok-9").respond(200, text="")
        result = await getattr(client.authtokens, name)("tok-9")
    request = route.calls.last.request
    assert result is None
    assert request.method == "DELETE"
    assert "_method" not in str(request.url)
    assert_common_headers(request, with_form=False)


@pytest.mark.asyncio
async def test_response_keeps_unknown_fields_and_the_raw_object() -> None:
    body = {**TOKEN_JSON, "created": 17, "owner": {"id": "x"}, "grants": {"future": {}, "read": {}}}
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}t").respond(200, json=body)
        token = await client.authtokens.get("t")
    assert dict(token.extra) == {"created": 17, "owner": {"id": "x"}}
    assert dict(token.raw) == body
    assert token.to_json() == body
    assert token.grants == Grants(read=Grant())
    assert token.raw["grants"]["future"] == {}
    with pytest.raises(TypeError):
        token.raw["token"] = "other"  # type: ignore[index]


@pytest.mark.asyncio
async def test_response_ints_and_bools_are_read_leniently() -> None:
    body = {
        "token": "t",
        "nonce": 12345,
        "volatile": "True",
        "hidden": 0,
        "expiration_date": "1900000000",
        "usage_expiration_time": 86400.0,
        "session_limit": "-1",
        "grants": {"read": "all", "update": {"all": 1, "session_owned": "false"}},
    }
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}t").respond(200, json=body)
        token = await client.authtokens.get("t")
    assert token.nonce == "12345"
    assert token.volatile is True
    assert token.hidden is False
    assert token.expiration_date == 1_900_000_000
    assert token.usage_expiration_time == 86400
    assert token.session_limit == -1
    assert token.grants == Grants(read=Grant(all=True), update=Grant(all=True, session_owned=False))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\xfd", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'["token"]', "expected a JSON object"),
        (b"{}", "token"),
        (b'{"token": ""}', "token"),
        (b'{"token": 5}', "token"),
        (b'{"token": "t", "session_limit": 1.5}', "session_limit"),
        (b'{"token": "t", "session_limit": true}', "session_limit"),
        (b'{"token": "t", "expiration_date": "soon"}', "expiration_date"),
        (b'{"token": "t", "volatile": "yes"}', "volatile"),
        (b'{"token": "t", "grants": []}', "grants"),
        (b'{"token": "t", "grants": {"read": 3}}', "grants.read"),
        (b'{"token": "t", "grants": {"read": {"resources": "v1"}}}', "grants.read.resources"),
        (b'{"token": "t", "grants": {"read": {"all": 2}}}', "grants.read.all"),
    ],
)
@pytest.mark.asyncio
async def test_a_success_with_an_unusable_body_is_a_response_validation_error(
    content: bytes, reason: str
) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.get(f"{COLLECTION_URL}abcdefgh").respond(200, content=content)
        with pytest.raises(APIResponseValidationError) as caught:
            await client.authtokens.get("abcdefgh")
    error = caught.value
    assert route.call_count == 1, "a bad body is not retried"
    assert reason in str(error)
    assert error.status_code == 200
    assert error.method == "GET"
    assert error.path == "/v1/authtokens/…efgh"
    assert error.body == httpx.Response(200, content=content).text
    assert error.__cause__ is None


@pytest.mark.asyncio
async def test_create_result_equals_the_parsed_body() -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        router.post(COLLECTION_URL).respond(201, content=json.dumps(TOKEN_JSON).encode())
        token = await client.authtokens.create(session_limit=3)
    assert token.token == TOKEN_JSON["token"]
    assert token.grants == Grants(read=Grant(resources=("v1",)), create=Grant(session_owned=True))
    assert token.session_limit == 3
    assert token.expiration_date == 1_900_000_000


@pytest.mark.asyncio
async def test_pytest_asyncio_runs_these_tests_on_its_own_loop() -> None:
    # Strict mode: only the marker brings pytest-asyncio in; the anyio plugin stays out.
    assert sniffio.current_async_library() == "asyncio"
    assert asyncio.get_running_loop().is_running()
