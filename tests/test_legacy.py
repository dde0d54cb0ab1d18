"""ziggeo_async.legacy: the official SDK's shape, plain dicts and strings, typed errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest

from ziggeo_async import NotFoundError, ValidationError
from ziggeo_async._portal import PORTAL_THREAD_NAME
from ziggeo_async.legacy import Ziggeo

SENT: list[httpx.Request] = []


def handle(request: httpx.Request) -> httpx.Response:
    SENT.append(request)
    token_id = request.url.path.removeprefix("/v1/authtokens/")
    fields: dict[str, object] = dict(parse_qsl(request.content.decode()))
    if "grants" in fields:
        fields["grants"] = json.loads(str(fields["grants"]))
    if token_id == "missing":
        return httpx.Response(404, text="Authorization token not found")
    if request.method == "DELETE":
        return httpx.Response(200, json={})
    body = {"token": token_id or "new-token", "undocumented": "kept", **fields}
    return httpx.Response(201 if not token_id else 200, json=body)


@pytest.fixture
def ziggeo() -> Iterator[Ziggeo]:
    SENT.clear()
    http_client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    with Ziggeo("app-token", "private-key", "encryption-key", http_client=http_client) as client:
        yield client
    assert PORTAL_THREAD_NAME not in [thread.name for thread in threading.enumerate()]


def test_create_takes_the_official_demos_arguments_and_returns_the_json_dict(
    ziggeo: Ziggeo,
) -> None:
    arguments = {"session_limit": 10, "grants": '{"read": "all"}'}
    created = ziggeo.authtokens().create(arguments)
    assert type(created) is dict
    assert created["token"] == "new-token"
    assert created["undocumented"] == "kept"
    (request,) = SENT
    form = dict(parse_qsl(request.content.decode()))
    assert form["session_limit"] == "10"
    assert json.loads(form["grants"]) == {"read": {"all": True}}
    assert arguments == {"session_limit": 10, "grants": '{"read": "all"}'}


def test_get_update_delete_take_and_return_plain_values(ziggeo: Ziggeo) -> None:
    authtokens = ziggeo.authtokens()
    assert ziggeo.authtokens() is authtokens
    assert authtokens.get("abc") == {"token": "abc", "undocumented": "kept"}
    updated = authtokens.update("abc", {"volatile": True})
    assert updated["volatile"] == "true"
    assert authtokens.delete("abc") is None
    assert [request.method for request in SENT] == ["GET", "POST", "DELETE"]


def test_failures_raise_typed_errors_instead_of_returning_strings(ziggeo: Ziggeo) -> None:
    with pytest.raises(NotFoundError) as caught:
        ziggeo.authtokens().get("missing")
    assert caught.value.status_code == 404
    with pytest.raises(ValidationError, match="grants"):
        ziggeo.authtokens().create({"grants": "{not json"})
    with pytest.raises(ValidationError, match="data"):
        ziggeo.authtokens().create(["session_limit", 1])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="colour"):
        ziggeo.authtokens().update("abc", {"colour": "red"})
    assert [request.url.path for request in SENT] == ["/v1/authtokens/missing"]


def test_generate_returns_a_token_string_and_leaves_the_options_alone(ziggeo: Ziggeo) -> None:
    options = {"session_limit": 1, "grants": '{"create": {"session_owned": true}}'}
    token = ziggeo.auth().generate(options)
    assert isinstance(token, str)
    assert options == {"session_limit": 1, "grants": '{"create": {"session_owned": true}}'}
    payload = ziggeo.client.auth.decode(token)
    assert payload["grants"] == {"create": {"session_owned": True}}
    assert payload["application_token"] == "app-token"
    assert "nonce" in payload
    assert ziggeo.auth().generate() != ziggeo.auth().generate()  # fresh IV and nonce
    assert SENT == []
