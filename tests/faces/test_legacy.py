"""ziggeo_async.legacy: the official SDK's shape, plain dicts and strings, typed errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest

from ziggeo_async import APIResponseValidationError, NotFoundError, ValidationError
from ziggeo_async._faces.portal import PORTAL_THREAD_NAME
from ziggeo_async.legacy import Ziggeo, official_arguments, official_grants

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


# -- what the official SDK accepted: form strings ------------------------------------------


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"session_limit": "1"}, {"session_limit": "1"}),
        ({"session_limit": 1}, {"session_limit": "1"}),
        ({"expiration_date": "1900000000"}, {"expiration_date": "1900000000"}),
        ({"usage_expiration_time": "86400"}, {"usage_expiration_time": "86400"}),
        ({"volatile": "true"}, {"volatile": "true"}),
        ({"volatile": "True"}, {"volatile": "true"}),
        ({"volatile": 1}, {"volatile": "true"}),
        ({"volatile": "1"}, {"volatile": "true"}),
        ({"hidden": "false"}, {"hidden": "false"}),
        ({"hidden": 0}, {"hidden": "false"}),
        ({"hidden": "False"}, {"hidden": "false"}),
        ({"hidden": False}, {"hidden": "false"}),
        (
            {"grants": '{"read": {"resources": ["v1"]}}'},
            {"grants": '{"read":{"resources":["v1"]}}'},
        ),
        ({"grants": '{"read": "all"}'}, {"grants": '{"read":{"all":true}}'}),
        ({"grants": {"read": "all"}}, {"grants": '{"read":{"all":true}}'}),
    ],
    ids=repr,
)
def test_create_accepts_what_the_official_sdk_sent_as_form_strings(
    ziggeo: Ziggeo, given: dict[str, object], sent: dict[str, str]
) -> None:
    ziggeo.authtokens().create(dict(given))
    ziggeo.authtokens().update("abc", dict(given))
    ziggeo.auth().generate(dict(given))
    create, update = SENT
    assert dict(parse_qsl(create.content.decode())) == sent
    assert dict(parse_qsl(update.content.decode())) == sent


def _short_id(value: object) -> str:
    try:
        return repr(value)[:40]
    except ValueError:  # repr() of 10**5000 exceeds the int-to-text limit
        return "huge"


def _deep_json(depth: int) -> str:
    return '{"read": ' * depth + "{}" + "}" * depth


@pytest.mark.parametrize(
    ("given", "argument"),
    [
        ({"session_limit": "ten"}, "session_limit"),
        ({"session_limit": "-1"}, "session_limit"),
        ({"session_limit": "1.5"}, "session_limit"),
        ({"session_limit": " 1"}, "session_limit"),
        ({"session_limit": "9" * 5000}, "session_limit"),  # int() of it raised ValueError
        ({"session_limit": "2147483648"}, "session_limit"),
        ({"session_limit": 10**5000}, "session_limit"),
        ({"expiration_date": "99999999999999999999"}, "expiration_date"),
        ({"volatile": "yes"}, "volatile"),
        ({"volatile": 2}, "volatile"),
        ({"hidden": "nope"}, "hidden"),
        ({"grants": "{not json"}, "grants"),
        ({"grants": "[1, 2]"}, "grants"),
        ({"grants": "[" * 100_000 + "]" * 100_000}, "grants"),  # RecursionError below
        ({"grants": _deep_json(100_000)}, "grants"),
        ({"grants": _deep_json(50)}, "grants.read.read"),
        ({"colour": "red"}, "colour"),
        # Names of the typed methods' own parameters, not arguments of the API: taken
        # as the call's timeout or deadline, or a TypeError from the call itself.
        ({"timeout": 1e-9, "session_limit": 1}, "timeout"),
        ({"deadline": 5, "session_limit": 1}, "deadline"),
        ({"self": 1}, "self"),
        ({"session_limit": 1, "token_or_key": "other"}, "token_or_key"),
        ({5: 1}, "5"),  # TypeError: keywords must be strings
    ],
    ids=_short_id,
)
def test_what_the_official_sdk_sent_unchecked_is_refused_by_name(
    ziggeo: Ziggeo, given: dict[str, object], argument: str
) -> None:
    for call in (
        lambda: ziggeo.authtokens().create(dict(given)),
        lambda: ziggeo.authtokens().update("abc", dict(given)),
        lambda: ziggeo.auth().generate(dict(given)),
    ):
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.argument == argument
    assert SENT == []


def test_a_token_id_beyond_the_cap_is_refused_before_it_is_sent(ziggeo: Ziggeo) -> None:
    for call in (ziggeo.authtokens().get, ziggeo.authtokens().delete):
        with pytest.raises(ValidationError):
            call("a" * 70_000)  # httpx's InvalidURL below
    assert SENT == []


def test_official_arguments_is_the_one_conversion_and_leaves_its_input_alone() -> None:
    given = {"session_limit": "3", "volatile": "true", "grants": '{"read": "all"}'}
    assert official_arguments(given) == {
        "session_limit": 3,
        "volatile": True,
        "grants": {"read": {"all": True}},
    }
    assert given == {"session_limit": "3", "volatile": "true", "grants": '{"read": "all"}'}
    assert official_grants('{"create": {"session_owned": true}}') == {
        "create": {"session_owned": True}
    }
    with pytest.raises(ValidationError) as caught:
        official_grants("{", argument="--grants")
    assert caught.value.argument == "--grants"


# -- what the drop-in does not provide ------------------------------------------------------

OFFICIAL_ONLY = [
    "videos",
    "streams",
    "audios",
    "audioStreams",
    "application",
    "effectProfiles",
    "effectProfileProcess",
    "metaProfiles",
    "metaProfileProcess",
    "webhooks",
    "analytics",
    "config",
    "connect",
    "api_connect",
    "cdn_connect",
    "js_cdn_connect",
    "token",
    "private_key",
    "encryption_key",
]


@pytest.mark.parametrize("name", [*OFFICIAL_ONLY, "no_such_thing"])
def test_what_the_drop_in_does_not_cover_says_only_auth_tokens_are_provided(
    ziggeo: Ziggeo, name: str
) -> None:
    with pytest.raises(AttributeError, match="provides only auth tokens") as caught:
        getattr(ziggeo, name)
    assert "private-key" not in str(caught.value)
    assert not hasattr(ziggeo, name)


@pytest.mark.parametrize("name", OFFICIAL_ONLY)
def test_setting_what_the_drop_in_does_not_cover_is_refused_not_ignored(
    ziggeo: Ziggeo, name: str
) -> None:
    # The official SDK read token, keys, config and connect at every call, so code set
    # them after construction (a key rotated, a connect mocked); here it would be ignored.
    with pytest.raises(AttributeError, match="provides only auth tokens") as caught:
        setattr(ziggeo, name, "new-value")
    assert "new-value" not in str(caught.value)
    assert not hasattr(ziggeo, name)
    client_token = ziggeo.auth().generate()
    assert ziggeo.client.auth.decode(client_token)["application_token"] == "app-token"


@pytest.mark.parametrize("data", [None, {}, {"session_limit": None}], ids=repr)
def test_update_with_nothing_to_change_is_refused_before_it_is_sent(
    ziggeo: Ziggeo, data: dict[str, object] | None
) -> None:
    # The official SDK sent an empty POST and returned the token unchanged.
    with pytest.raises(ValidationError) as caught:
        ziggeo.authtokens().update("abc", data)
    assert caught.value.argument == "arguments"
    assert SENT == []


def test_an_answer_that_is_no_auth_token_raises_where_the_official_sdk_returned_it() -> None:
    http_client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=[1, 2]))
    )
    with Ziggeo("app-token", "private-key", http_client=http_client) as ziggeo:
        with pytest.raises(APIResponseValidationError) as caught:
            ziggeo.authtokens().get("abc")
        assert caught.value.body == "[1,2]"
        assert ziggeo.authtokens().delete("abc") is None  # delete reads no body
