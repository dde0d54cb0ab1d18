"""Every argument is checked before anything is sent, and the error names it."""

from __future__ import annotations

import enum
import operator
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any

import httpx
import pytest
import respx

from tests._support import make_client
from ziggeo_async import (
    AsyncZiggeo,
    ConfigurationError,
    Grant,
    Grants,
    RetryPolicy,
    ValidationError,
)
from ziggeo_async._core.arguments import encode_form, normalize_arguments, timeout_seconds

Call = Callable[[AsyncZiggeo, dict[str, Any]], Awaitable[object]]


def _nested_dict(depth: int) -> dict[str, Any]:
    """``{"read": {"read": ...}}``, ``depth`` levels: far past the recursion limit."""
    nested: dict[str, Any] = {}
    for _ in range(depth):
        nested = {"read": nested}
    return nested


def _nested_list(depth: int) -> list[Any]:
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


async def create(client: AsyncZiggeo, arguments: dict[str, Any]) -> object:
    return await client.authtokens.create(**arguments)


async def update(client: AsyncZiggeo, arguments: dict[str, Any]) -> object:
    return await client.authtokens.update("tok", **arguments)


async def generate(client: AsyncZiggeo, arguments: dict[str, Any]) -> object:
    return client.auth.generate(**arguments)


ARGUMENT_CALLS = [create, update, generate]

DEEP_LIST = _nested_list(100_000)
BAD_ARGUMENTS: list[tuple[dict[str, Any], str, str]] = [
    ({"colour": "red"}, "colour", "unknown argument"),
    ({"token": "abc"}, "token", "unknown argument"),
    ({"volatile": "true"}, "volatile", "True or False"),
    ({"volatile": 1}, "volatile", "True or False"),
    ({"hidden": 0}, "hidden", "True or False"),
    ({"expiration_date": "1900000000"}, "expiration_date", "expected an int"),
    ({"expiration_date": 1.9e9}, "expiration_date", "expected an int"),
    ({"expiration_date": True}, "expiration_date", "expected an int"),
    ({"expiration_date": -1}, "expiration_date", "negative"),
    ({"expiration_date": datetime(2030, 1, 1)}, "expiration_date", "naive datetime"),  # noqa: DTZ001
    ({"usage_expiration_time": 1.5}, "usage_expiration_time", "expected an int"),
    ({"usage_expiration_time": False}, "usage_expiration_time", "expected an int"),
    ({"usage_expiration_time": -5}, "usage_expiration_time", "negative"),
    ({"usage_expiration_time": timedelta(seconds=-1)}, "usage_expiration_time", "negative"),
    ({"session_limit": True}, "session_limit", "expected an int"),
    ({"session_limit": "3"}, "session_limit", "expected an int"),
    ({"session_limit": 3.0}, "session_limit", "expected an int"),
    ({"session_limit": -1}, "session_limit", "negative"),
    ({"grants": '{"read": {"all": true}}'}, "grants", "not a JSON string"),
    ({"grants": [("read", {})]}, "grants", "expected a dict"),
    ({"grants": {"admin": {"all": True}}}, "grants.admin", "unknown grant"),
    ({"grants": {"read": "all"}}, "grants.read", "expected a Grant or a dict"),
    ({"grants": {"read": {"everything": True}}}, "grants.read.everything", "unknown grant field"),
    ({"grants": {"read": {"resources": "v1"}}}, "grants.read.resources", "list of video tokens"),
    ({"grants": {"read": {"resources": b"v1"}}}, "grants.read.resources", "list of video tokens"),
    ({"grants": {"read": {"resources": {"v1"}}}}, "grants.read.resources", "list of video tokens"),
    ({"grants": {"read": {"resources": ["v1", ""]}}}, "grants.read.resources[1]", "non-empty"),
    ({"grants": {"read": {"resources": [7]}}}, "grants.read.resources[0]", "non-empty string"),
    ({"grants": {"destroy": {"all": 1}}}, "grants.destroy.all", "True or False"),
    ({"grants": {"create": {"session_owned": "yes"}}}, "grants.create.session_owned", "True"),
    ({"grants": Grants(update=Grant(all=1))}, "grants.update.all", "True or False"),  # type: ignore[arg-type]
    # Integers beyond what the API can mean: str() of 10**5000 raised ValueError below.
    ({"session_limit": 10**5000}, "session_limit", "at most 2147483647"),
    ({"session_limit": 2**31}, "session_limit", "at most 2147483647"),
    ({"expiration_date": 10**5000}, "expiration_date", "at most 1099511627776"),
    ({"expiration_date": 2**40 + 1}, "expiration_date", "at most 1099511627776"),
    ({"usage_expiration_time": 10**5000}, "usage_expiration_time", "at most 1099511627776"),
    ({"usage_expiration_time": timedelta.max}, "usage_expiration_time", "at most 1099511627776"),
    ({"grants": _nested_dict(100_000)}, "grants.read.read", "unknown grant field"),
    ({"grants": {"read": _nested_list(100_000)}}, "grants.read", "expected a Grant or a dict"),
    ({"grants": {"read": {"resources": DEEP_LIST}}}, "grants.read.resources[0]", "non-empty"),
    ({"grants": {"read": {"all": _nested_dict(100_000)}}}, "grants.read.all", "True or False"),
]  # fmt: skip


@pytest.mark.parametrize(("arguments", "argument", "reason"), BAD_ARGUMENTS)
@pytest.mark.parametrize("call", ARGUMENT_CALLS, ids=lambda call: call.__name__)
@pytest.mark.anyio
async def test_bad_argument_is_refused_by_name_and_nothing_is_sent(
    call: Call, arguments: dict[str, Any], argument: str, reason: str
) -> None:
    client = make_client()
    with respx.mock(assert_all_called=False) as router:
        anything = router.route()
        with pytest.raises(ValidationError) as caught:
            await call(client, {"session_limit": 1, **arguments})
    assert caught.value.argument == argument
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{argument}: ")
    assert anything.call_count == 0


BAD_TOKEN_IDS: list[object] = [
    "",
    ".",
    "..",
    "ab\x00cd",
    "line\nbreak",
    "tab\t",
    "\x1f",
    "del\x7f",
    "c1\x85",
    "\x9f",
    "lone\ud800",
    "\udfff",
    123,
    None,
    b"tok",
    "a" * 257,  # beyond MAX_TOKEN_ID_CHARS; 70,000 raised httpx's InvalidURL below
    "a" * 70_000,
    "🎥" * 257,
]


@pytest.mark.parametrize("token", BAD_TOKEN_IDS, ids=repr)
@pytest.mark.parametrize("operation", ["get", "update", "delete", "destroy"])
@pytest.mark.anyio
async def test_bad_token_id_is_refused_and_nothing_is_sent(operation: str, token: object) -> None:
    client = make_client()
    argument = "token" if operation == "get" else "token_or_key"
    extra = {"session_limit": 1} if operation == "update" else {}
    with respx.mock(assert_all_called=False) as router:
        anything = router.route()
        with pytest.raises(ValidationError) as caught:
            await getattr(client.authtokens, operation)(token, **extra)
    assert caught.value.argument == argument
    assert anything.call_count == 0


@pytest.mark.parametrize("token", ["...", ". ", "a.b", "%2e%2e", "~user", "vidé", "🎥", "\u00a0"])
@pytest.mark.anyio
async def test_unusual_but_valid_token_ids_are_sent_quoted(token: str) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.get().respond(200, json={"token": token})
        await client.authtokens.get(token)
    url = route.calls.last.request.url
    assert url.path == f"/v1/authtokens/{token}"
    assert url.raw_path.count(b"/") == 3


class _NeverEqual(str):
    """A token id whose comparisons say it is no dot segment."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


class _EncodesAsDots(str):
    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b".."


class _IteratesClean(str):
    __slots__ = ()

    def __iter__(self) -> Iterator[str]:
        return iter("clean")


class _ShortLength(str):
    __slots__ = ()

    def __len__(self) -> int:
        return 1


# str subclasses whose methods disagree with their text: the checks read the text.
LYING_TOKEN_IDS: list[tuple[str, str | None]] = [
    (_NeverEqual(".."), None),
    (_NeverEqual(""), None),
    (_IteratesClean("ab\x00cd"), None),
    (_ShortLength("a" * 70_000), None),
    (_EncodesAsDots("tok"), "/v1/authtokens/tok"),
    (_EncodesAsDots("a/b"), "/v1/authtokens/a%2Fb"),
]


@pytest.mark.parametrize(("token", "raw_path"), LYING_TOKEN_IDS, ids=lambda value: repr(value)[:20])
@pytest.mark.parametrize("operation", ["get", "update", "delete"])
@pytest.mark.anyio
async def test_a_str_subclass_token_id_is_checked_and_sent_by_its_text(
    operation: str, token: str, raw_path: str | None
) -> None:
    client = make_client()
    extra = {"session_limit": 1} if operation == "update" else {}
    with respx.mock(assert_all_called=False) as router:
        anything = router.route().respond(200, json={"token": "tok"})
        if raw_path is None:
            with pytest.raises(ValidationError, match="token"):
                await getattr(client.authtokens, operation)(token, **extra)
        else:
            await getattr(client.authtokens, operation)(token, **extra)
    if raw_path is None:
        assert anything.call_count == 0
    else:
        assert anything.calls.last.request.url.raw_path == raw_path.encode()


class _EqualsAnything(str):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


class _PosesAsVolatile(_EqualsAnything):
    def __hash__(self) -> int:
        return hash("volatile")

    def __str__(self) -> str:
        return "volatile=true&hidden"


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({_PosesAsVolatile("colour"): True}, "colour"),
        ({"grants": {_EqualsAnything("admin"): {"all": True}}}, "grants.admin"),
        ({"grants": {"read": {_EqualsAnything("everything"): True}}}, "grants.read.everything"),
        ({"grants": {"read": {"resources": [_ShortLength("")]}}}, "grants.read.resources[0]"),
    ],
    ids=["argument name", "grant name", "grant field", "resource"],
)
def test_str_subclasses_in_arguments_are_checked_by_their_text(
    arguments: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_arguments(arguments)
    assert caught.value.argument == argument


BAD_TIMEOUTS: list[object] = [
    0,
    -1,
    "5",
    True,
    float("nan"),
    [5],
    float("inf"),
    -float("inf"),
    86_400.5,  # beyond a day
    1e300,
    10**400,  # float() of it raised OverflowError below
]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
@pytest.mark.parametrize("operation", ["create", "get", "update", "delete"])
@pytest.mark.anyio
async def test_bad_timeout_is_refused_and_nothing_is_sent(operation: str, timeout: object) -> None:
    client = make_client()
    calls: dict[str, tuple[tuple[object, ...], dict[str, object]]] = {
        "create": ((), {"session_limit": 1}),
        "get": (("tok",), {}),
        "update": (("tok",), {"session_limit": 1}),
        "delete": (("tok",), {}),
    }
    positional, keywords = calls[operation]
    with respx.mock(assert_all_called=False) as router:
        anything = router.route()
        with pytest.raises(ValidationError) as caught:
            await getattr(client.authtokens, operation)(*positional, **keywords, timeout=timeout)
    assert caught.value.argument == "timeout"
    assert anything.call_count == 0


@pytest.mark.parametrize("token", ["a" * 256, "🎥" * 256])
@pytest.mark.anyio
async def test_the_longest_token_id_allowed_is_sent(token: str) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.get().respond(200, json={"token": token})
        await client.authtokens.get(token)
    assert route.calls.last.request.url.path == f"/v1/authtokens/{token}"


@pytest.mark.parametrize(
    ("name", "largest"),
    [("session_limit", 2**31 - 1), ("expiration_date", 2**40), ("usage_expiration_time", 2**40)],
)
def test_the_largest_counts_allowed_are_kept(name: str, largest: int) -> None:
    assert normalize_arguments({name: largest}) == {name: largest}
    assert encode_form(normalize_arguments({name: largest})) == f"{name}={largest}".encode()


def test_the_latest_datetime_python_has_is_an_expiration_date_within_bounds() -> None:
    latest = datetime.max.replace(tzinfo=timezone.utc)
    assert normalize_arguments({"expiration_date": latest}) == {"expiration_date": 253402300799}


@pytest.mark.parametrize("timeout", [0.001, 1, 30.5, 86_400])
def test_timeouts_up_to_a_day_are_accepted(timeout: float) -> None:
    assert timeout_seconds("timeout", timeout) == timeout


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_bad_timeout_or_timeout_part_is_a_configuration_error(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        AsyncZiggeo("app", "private-key", timeout=timeout)  # type: ignore[arg-type]
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        with pytest.raises(ConfigurationError, match=r"timeout\.read"):
            AsyncZiggeo("app", "private-key", timeout=httpx.Timeout(5.0, read=timeout))


@pytest.mark.parametrize(
    "seconds",
    [0, -1, float("nan"), 86_400.5, 10**400],
    ids=["zero", "negative", "nan", "over_a_day", "huge_int"],
)
@pytest.mark.parametrize("argument", ["timeout", "deadline"])
@pytest.mark.anyio
async def test_a_timeout_or_deadline_is_refused_for_one_reason_wherever_it_is_given(
    argument: str, seconds: object
) -> None:
    """One check: a call's argument is a ValidationError, a client's a ConfigurationError,
    and both say the same thing the same way."""
    with pytest.raises(ValidationError) as at_call:
        await make_client().authtokens.get("tok", **{argument: seconds})  # type: ignore[arg-type]
    reason = at_call.value.reason
    assert at_call.value.argument == argument
    client = AsyncZiggeo("app", "private-key")
    for configure in (
        lambda: AsyncZiggeo("app", "private-key", **{argument: seconds}),  # type: ignore[arg-type]
        lambda: client.with_options(**{argument: seconds}),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError) as at_client:
            configure()
        assert str(at_client.value) == f"{argument}: {reason}"


def test_a_client_timeout_of_the_wrong_type_says_what_it_may_be() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncZiggeo("app", "private-key", timeout="5")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "timeout: expected a number of seconds or an httpx2.Timeout, got str"
    )


def test_a_timeout_part_of_none_is_httpx_s_no_timeout_and_stays_allowed() -> None:
    AsyncZiggeo("app", "private-key", timeout=httpx.Timeout(None, connect=5.0))


@pytest.mark.parametrize("max_retries", [101, 10**100, 10**5000], ids=["101", "1e100", "1e5000"])
def test_max_retries_beyond_the_cap_is_a_configuration_error(max_retries: int) -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        AsyncZiggeo("app", "private-key", max_retries=max_retries)
    with pytest.raises(ConfigurationError, match="max_retries"):
        RetryPolicy(max_retries=max_retries)
    AsyncZiggeo("app", "private-key", max_retries=100)


def test_generate_many_of_more_than_the_cap_is_refused() -> None:
    client = AsyncZiggeo("app", "private-key", "encryption-key-0123456789")
    with pytest.raises(ValidationError) as caught:
        client.auth.generate_many(10**20)  # os.urandom() raised OverflowError below
    assert caught.value.argument == "count"


@pytest.mark.anyio
async def test_update_needs_an_argument_to_change() -> None:
    client = make_client()
    with respx.mock(assert_all_called=False) as router:
        anything = router.route()
        with pytest.raises(ValidationError) as caught:
            await client.authtokens.update("tok", volatile=None)
    assert caught.value.argument == "arguments"
    assert anything.call_count == 0


@pytest.mark.parametrize("resources", ["video-token", b"video-token"])
def test_grant_model_refuses_resources_given_as_a_bare_string(resources: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Grant(resources=resources)  # type: ignore[arg-type]
    assert caught.value.argument == "resources"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("usage_expiration_time", timedelta(microseconds=-1)),
        ("usage_expiration_time", timedelta(seconds=-0.5)),
        ("expiration_date", datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=timezone.utc)),
    ],
)
def test_a_moment_before_zero_is_negative_not_rounded_to_zero(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match="negative") as caught:
        normalize_arguments({name: value})
    assert caught.value.argument == name


class _ZoneWithoutOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> None:
        return None


def test_a_datetime_whose_zone_gives_no_offset_counts_as_naive() -> None:
    moment = datetime(2030, 1, 1, tzinfo=_ZoneWithoutOffset())
    with pytest.raises(ValidationError, match="naive"):
        normalize_arguments({"expiration_date": moment})


class _ZoneWithOffset(tzinfo):
    """A zone whose offset is whatever it was given, valid or not."""

    def __init__(self, offset: object) -> None:
        self.offset = offset

    def utcoffset(self, dt: datetime | None) -> Any:
        return self.offset

    def dst(self, dt: datetime | None) -> None:
        return None


@pytest.mark.parametrize(
    "offset",
    # datetime raises ValueError for an offset of a day or more, TypeError for a non-timedelta.
    [timedelta(hours=30), timedelta(days=-1), "+01:00", 3600],
    ids=repr,
)
@pytest.mark.parametrize("call", ARGUMENT_CALLS, ids=lambda call: call.__name__)
@pytest.mark.anyio
async def test_a_datetime_whose_zone_gives_a_bad_offset_is_refused(
    call: Call, offset: object
) -> None:
    client = make_client()
    moment = datetime(2030, 1, 1, tzinfo=_ZoneWithOffset(offset))
    with respx.mock(assert_all_called=False) as router:
        anything = router.route()
        with pytest.raises(ValidationError) as caught:
            await call(client, {"expiration_date": moment})
    assert caught.value.argument == "expiration_date"
    assert "offset" in caught.value.reason
    assert anything.call_count == 0


def test_non_text_argument_name_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_arguments({5: 1})  # type: ignore[dict-item]
    assert caught.value.argument == "5"


def test_accepted_values_are_normalized() -> None:
    caller_grants = MappingProxyType(
        {
            "read": Grant(resources=("v1",)),
            "update": {"resources": ("v2", "v3"), "session_owned": None},
            "destroy": None,
            "create": {},
        }
    )
    assert normalize_arguments(
        {
            "volatile": True,
            "hidden": None,
            "expiration_date": datetime(2030, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
            "usage_expiration_time": timedelta(minutes=1, microseconds=999_999),
            "session_limit": 0,
            "grants": caller_grants,
        }
    ) == {
        "volatile": True,
        "expiration_date": 1_893_456_000,
        "usage_expiration_time": 60,
        "session_limit": 0,
        "grants": {
            "read": {"resources": ["v1"]},
            "update": {"resources": ["v2", "v3"]},
            "create": {},
        },
    }


def test_form_encoding_matches_the_wire_contract() -> None:
    body = encode_form(
        normalize_arguments(
            {"grants": {"read": {"all": True}}, "volatile": False, "session_limit": 2}
        )
    )
    assert body == (
        b"grants=%7B%22read%22%3A%7B%22all%22%3Atrue%7D%7D&volatile=false&session_limit=2"
    )


class _Seats(enum.IntEnum):
    TWO = 2


class _LoudInt(int):
    def __str__(self) -> str:
        return "many"

    __repr__ = __str__


@pytest.mark.parametrize("value", [_Seats.TWO, _LoudInt(2)], ids=["IntEnum", "int-subclass"])
def test_int_subclasses_are_sent_as_digits(value: int) -> None:
    normalized = normalize_arguments({"session_limit": value, "expiration_date": value})
    assert type(normalized["session_limit"]) is int
    assert encode_form(normalized) == b"session_limit=2&expiration_date=2"


def _mirrored(base: type[Any]) -> type[Any]:
    """A subclass of ``base`` that compares as its absolute value: -5 passes for 5 in
    every check that trusts the value's own comparisons."""

    def compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        return lambda self, other: op(abs(base(self)), other)

    methods = {f"__{name}__": compare(getattr(operator, name)) for name in ("lt", "le", "gt", "ge")}
    return type(f"_Mirrored{base.__name__.title()}", (base,), methods)


_MirroredInt = _mirrored(int)
_MirroredFloat = _mirrored(float)


def _auth() -> Any:
    return make_client().auth


# Each took the mirrored -5 for 5: a form sent with session_limit=-5, a negative timeout
# handed to httpx, os.urandom(-80) raising ValueError, anyio.Semaphore(-5) ValueError.
MIRRORED_NUMBERS: list[tuple[Callable[[Any], object], str, type[Exception]]] = [
    (lambda n: normalize_arguments({"session_limit": n}), "session_limit", ValidationError),
    (lambda n: normalize_arguments({"expiration_date": n}), "expiration_date", ValidationError),
    (
        lambda n: normalize_arguments({"usage_expiration_time": n}),
        "usage_expiration_time",
        ValidationError,
    ),
    (lambda n: timeout_seconds("timeout", n), "timeout", ValidationError),
    (lambda n: AsyncZiggeo("app", "pk", timeout=n), "timeout", ConfigurationError),
    (lambda n: AsyncZiggeo("app", "pk", deadline=n), "deadline", ConfigurationError),
    (lambda n: AsyncZiggeo("app", "pk", max_retries=n), "max_retries", ConfigurationError),
    (lambda n: RetryPolicy(backoff_base=n), "backoff_base", ConfigurationError),
    (lambda n: RetryPolicy(retry_after_cap=n), "retry_after_cap", ConfigurationError),
    (lambda n: _auth().generate_many(n), "count", ValidationError),  # a float: count_or_items
]


@pytest.mark.parametrize(("call", "named", "error"), MIRRORED_NUMBERS)
@pytest.mark.parametrize("number", [_MirroredInt(-5), _MirroredFloat(-5.0)], ids=["int", "float"])
def test_a_number_is_checked_by_its_value_not_by_its_comparisons(
    call: Callable[[Any], object], named: str, error: type[Exception], number: object
) -> None:
    # Refused by name either way: the float ones by their type where an int is expected.
    with pytest.raises(error, match=named):
        call(number)


@pytest.mark.parametrize(
    "options", [{"concurrency": _MirroredInt(-5)}, {"max_per_second": _MirroredFloat(-5.0)}]
)
@pytest.mark.anyio
async def test_batch_options_are_checked_by_their_value_not_by_their_comparisons(
    options: dict[str, Any],
) -> None:
    client = make_client()
    with pytest.raises(ValidationError) as caught:
        client.authtokens.create_many([], **options)
    assert caught.value.argument == next(iter(options))


@pytest.mark.anyio
async def test_a_batch_item_nested_without_end_is_that_items_validation_error() -> None:
    client = make_client()
    with respx.mock(assert_all_called=False) as router:
        anything = router.route()
        async with client.authtokens.create_many([DEEP_LIST]) as results:
            (result,) = [result async for result in results]
    assert isinstance(result.error, ValidationError)
    assert result.error.argument == "items[0]"
    assert anything.call_count == 0
